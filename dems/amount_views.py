"""HoloViews views of the gas evolved: running total within each cycle and bars per cycle.

Inputs are described in :mod:`dems.plots`; ``amounts`` is ``{cycle: {gas: (amount,
uncertainty or None)}}`` in the unit of the flux integrated over time (mol or mol/g).
"""

from __future__ import annotations

from collections.abc import Mapping

import holoviews as hv
import numpy as np
import xarray as xr

from dems.cycles import amount_per_cycle, running_amount
from dems.display import AMOUNT_UNITS, display_scale
from dems.palette import gas_colour
from dems.view_elements import HEIGHT, TIME, WIDTH
from dems.view_elements import styled_series as _series
from dems.view_elements import units as _units
from operando_core.formatting import finite, format_uncertain

__all__ = ["Amounts", "amount_bars", "cumulative_gas"]

#: ``{cycle: {gas: (amount, uncertainty)}}`` in the unit of the flux integrated over time.
Amounts = Mapping[int, Mapping[str, tuple[float, float | None]]]


def _amounts_of(flux: xr.DataArray) -> dict[int, dict[str, tuple[float, None]]]:
    """Per-cycle integrals of the flux (no uncertainty: that needs the summary's budget)."""
    amount = amount_per_cycle(flux).transpose("cycle", "gas")
    return {
        int(cycle): {
            str(gas): (float(amount.sel(cycle=cycle, gas=gas)), None)
            for gas in amount["gas"].values
        }
        for cycle in amount["cycle"].values
    }


def amount_bars(amounts: Amounts, unit: str, *, title: str = "Gas evolved per cycle") -> hv.Overlay:
    """Bars of the gas evolved per cycle, in each gas's colour, with ±uncertainty whiskers.

    Parameters
    ----------
    amounts
        ``{cycle: {gas: (amount, uncertainty or None)}}`` in ``unit``.
    unit
        ``"mol"`` or ``"mol/g"`` (shown with an SI prefix, e.g. µmol/g).
    title
        Panel title (``(± 1σ)`` is appended when whiskers are drawn).

    Returns
    -------
    holoviews.Overlay
        ``Bars`` (one per gas and cycle; the x labels name the cycle when there are several)
        and ``ErrorBars`` where an uncertainty is known.
    """
    values = [v for per_gas in amounts.values() for v, _ in per_gas.values()]
    factor, shown = display_scale(np.asarray(values, dtype=float), unit)
    dimension = hv.Dimension("amount", label="Gas evolved", unit=shown)
    several = len(amounts) > 1
    xdim = hv.Dimension("bar", label="Gas, cycle" if several else "Gas")
    rows, whiskers = [], []
    for cycle, per_gas in amounts.items():
        for gas, (value, spread) in per_gas.items():
            name = f"{gas} · {cycle}" if several else gas
            rows.append(
                (
                    name,
                    value * factor,
                    format_uncertain(
                        value * factor, None if spread is None else spread * factor, 3
                    ),
                    gas,
                )
            )
            if finite(spread):
                whiskers.append((name, value * factor, spread * factor))
    colours = {gas: gas_colour(gas) for per_gas in amounts.values() for gas in per_gas}
    title = f"{title} (± 1σ)" if whiskers else title
    bars = hv.Bars(rows, kdims=[xdim], vdims=[dimension, hv.Dimension("text", label="±"), "gas"])
    colour = hv.dim("gas").categorize(colours)
    tooltips = [(xdim.label, "@{bar}"), (dimension.pprint_label, "@{text}")]
    bars = bars.opts(color=colour, tools=["hover"], hover_tooltips=tooltips, backend="bokeh").opts(
        color=colour, backend="matplotlib"
    )
    errors = hv.ErrorBars(whiskers, kdims=[xdim], vdims=[dimension, "spread"])
    overlay = bars * errors.opts(color="black", backend="bokeh")
    return overlay.opts(
        width=WIDTH, height=HEIGHT - 80, title=title, show_legend=False, backend="bokeh"
    ).opts(title=title, backend="matplotlib")


def cumulative_gas(flux: xr.DataArray, amounts: Amounts | None = None) -> hv.Layout:
    """Gas evolved: running total within each cycle, and the total per cycle as bars.

    Parameters
    ----------
    flux
        ``DataArray(gas, time)`` in mol/s (or mol/(s·g)) with a ``cycle`` coordinate.
    amounts
        ``{cycle: {gas: (amount, uncertainty)}}`` in mol (mol/g for a per-gram flux), e.g.
        the summary's (:func:`dems.result_views.amounts_from_summary`): the bars show these
        numbers with their ± whiskers; default: the flux integrated per cycle, no ±.

    Returns
    -------
    holoviews.Layout
        ``[running total against time (restarting every cycle), bars per cycle and gas]``,
        with hover values, in µmol (µmol/g) or the prefix that suits the numbers.
    """
    unit = AMOUNT_UNITS.get(_units(flux, "mol/s"), f"{_units(flux, 'mol/s')}·s")
    bars = amount_bars(_amounts_of(flux) if amounts is None else amounts, unit)
    running = running_amount(flux)
    factor, shown = display_scale(np.asarray(running), unit)
    dimension = hv.Dimension("amount", label="Gas evolved", unit=shown)
    t = np.asarray(flux["time"])
    curves = [
        _series(
            hv.Curve(
                (t, np.asarray(running.sel(gas=gas)) * factor),
                kdims=[TIME],
                vdims=[dimension],
                label=str(gas),
            ),
            "gas",
            str(gas),
            gas_colour(str(gas)),
        )
        for gas in running["gas"].values
    ]
    total = (
        hv.Overlay(curves)
        .opts(
            {
                "Curve": {"hover_mode": "vline"},
                "Overlay": {
                    # full width, legend outside: frames line up with the panels above
                    "width": WIDTH,
                    "height": HEIGHT - 80,
                    "title": "Running total",
                    "legend_position": "right",
                },
            },
            backend="bokeh",
        )
        .opts(
            {"Overlay": {"title": "Running total", "legend_position": "top_left"}},
            backend="matplotlib",
        )
    )
    return (total + bars).opts(fig_inches=(10, 4), backend="matplotlib")
