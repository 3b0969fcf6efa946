"""Interactive views comparing DEMS runs of several groups (samples) on shared axes and units.

Used by ``operando compare`` and the comparison tab of ``operando serve``. Colour means gas
(:mod:`dems.palette`, as in every other view); groups are told apart by line dash and bar
opacity (:func:`operando_core.print_style.group_style`) and named in the legend. No I/O.

Inputs
------
``fluxes``
    ``{group: flux}``, each ``DataArray(gas, time)`` with the coordinates of
    :func:`dems.result_views.result_flux`, all in the same unit (mol/s or mol/(s·g)).
``onsets``
    ``{group: {gas: {"potential_V", "uncertainty_V"}}}`` (first charge).
``amounts``
    ``{group: {cycle: {gas: (amount, uncertainty)}}}`` in mol or mol/g.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import holoviews as hv
import numpy as np
import xarray as xr

from dems.amount_views import Amounts
from dems.display import display_scale, envelope, first_charge, reference_of
from dems.palette import gas_colour
from dems.plots import WIDTH, Onsets, potential_dimension
from operando_core.formatting import finite, format_uncertain
from operando_core.print_style import group_style

__all__ = ["amount_comparison", "comparison_gases", "flux_comparison", "onset_text"]


def onset_text(potential: Any, spread: Any, unit: str) -> str:
    """``onset 4.391 ± 0.002 V vs Li/Li⁺``, or ``no onset``: a group's legend entry."""
    if not finite(potential):
        return "no onset"
    return f"onset {format_uncertain(potential, spread, 3, unit)}"


def _tooltips(element: hv.Element, group: str) -> list[tuple[str, str]]:
    dims = [*element.kdims, *element.vdims]
    return [("group", group), *((d.pprint_label, f"@{{{d.name}}}") for d in dims)]


def flux_comparison(
    fluxes: Mapping[str, xr.DataArray],
    onsets: Mapping[str, Onsets] | None = None,
    gas: str = "O2",
    *,
    max_points: int = 4000,
) -> hv.Overlay:
    """One gas's flux against potential during the first charge, every group on one axis.

    Parameters
    ----------
    fluxes, onsets
        See the module docstring; one display unit is chosen for all groups.
    gas
        The gas drawn (its colour); a group without it is named "not measured" in the legend.
    max_points
        Longest curve per group (min/max envelope, :func:`dems.display.envelope`).

    Returns
    -------
    holoviews.Overlay
        Per group: the curve (legend: the group and its onset ± uncertainty), the onset as a
        dashed line in the group's dash with a ±uncertainty band.
    """
    values = [np.asarray(f.sel(gas=gas)) for f in fluxes.values() if gas in f["gas"].values]
    unit = str(next(iter(fluxes.values())).attrs.get("units", "mol/s"))
    factor, shown = display_scale(np.concatenate(values) if values else np.zeros(1), unit)
    kdim = potential_dimension(next((reference_of(f) for f in fluxes.values()), None))
    vdim = hv.Dimension("flux", label=f"{gas} flux", unit=shown)
    top = max((float(np.nanmax(v)) * factor for v in values if v.size), default=1.0)
    colour, elements = gas_colour(gas), []
    for index, (group, flux) in enumerate(fluxes.items()):
        style = group_style(index)
        onset = ((onsets or {}).get(group) or {}).get(gas) or {}
        potential, spread = onset.get("potential_V"), onset.get("uncertainty_V")
        if gas not in flux["gas"].values:
            elements.append(_legend_only(kdim, vdim, f"{group}: {gas} not measured", style.dash))
            continue
        mask, _ = first_charge(flux)
        x = np.asarray(flux["potential"], float)
        y = np.asarray(flux.sel(gas=gas), float) * factor
        keep = mask & np.isfinite(x) & np.isfinite(y)
        curve = hv.Curve(envelope(x[keep], y[keep], max_points), kdims=[kdim], vdims=[vdim],
                         label=f"{group}: {onset_text(potential, spread, kdim.unit)}")  # fmt: skip
        tooltips = _tooltips(curve, group)
        elements.append(
            curve.opts(
                color=colour,
                line_dash=style.dash,
                tools=["hover"],
                hover_tooltips=tooltips,
                hover_mode="vline",
                backend="bokeh",
            )
        )
        if finite(potential):
            if finite(spread) and spread > 0:
                band = hv.VSpan(potential - spread, potential + spread)
                elements.append(band.opts(color=colour, alpha=0.15, backend="bokeh"))
            line = hv.VLine(potential).opts(
                color=colour, line_dash=style.dash, line_width=1.5, backend="bokeh"
            )
            elements.append(line)
    title = f"{gas} during the first charge"
    return hv.Overlay(elements).opts(
        width=WIDTH // 2 + 160, height=360, legend_position="top_left", title=title,
        ylim=(None, top * 1.05 if top > 0 else None), backend="bokeh",
    )  # fmt: skip


def _legend_only(kdim: hv.Dimension, vdim: hv.Dimension, label: str, dash: str) -> hv.Curve:
    """Make an empty curve for a legend entry only (an absent series is said, not drawn)."""
    curve = hv.Curve(([np.nan], [np.nan]), kdims=[kdim], vdims=[vdim], label=label)
    return curve.opts(color="#999999", line_dash=dash, backend="bokeh")


def amount_comparison(amounts: Mapping[str, Amounts], unit: str) -> hv.Overlay:
    """Gas evolved per cycle, grouped bars (gas colour, group opacity) with ±1σ whiskers.

    Parameters
    ----------
    amounts
        ``{group: {cycle: {gas: (amount, uncertainty)}}}`` in ``unit``.
    unit
        ``"mol"`` or ``"mol/g"`` (shown with an SI prefix, e.g. µmol/g).

    Returns
    -------
    holoviews.Overlay
        ``Bars`` on the categories ``gas · group`` (``gas · group · cycle n`` with several
        cycles), hover giving the value ± uncertainty, and ``ErrorBars``.
    """
    values = [v for a in amounts.values() for g in a.values() for v, _ in g.values()]
    factor, shown = display_scale(np.asarray(values or [0.0], dtype=float), unit)
    dimension = hv.Dimension("amount", label="Gas evolved", unit=shown)
    xdim = hv.Dimension("bar", label="Gas · group")
    cycles = sorted({cycle for a in amounts.values() for cycle in a})
    gases = list(dict.fromkeys(gas for a in amounts.values() for g in a.values() for gas in g))
    rows: list[tuple[Any, ...]] = []
    whiskers = []
    opacity = {group: group_style(i).alpha for i, group in enumerate(amounts)}
    for cycle in cycles:
        for gas in gases:
            for group, per_cycle in amounts.items():
                value, spread = per_cycle.get(cycle, {}).get(gas, (np.nan, None))
                if not finite(value):
                    continue
                name = f"{gas} · {group}" + (f" · cycle {cycle}" if len(cycles) > 1 else "")
                scaled = None if spread is None else spread * factor
                text = format_uncertain(value * factor, scaled, 2, shown)
                rows.append((name, value * factor, text, gas, group))
                if finite(spread):
                    whiskers.append((name, value * factor, spread * factor))
    bars = hv.Bars(rows, kdims=[xdim], vdims=[dimension, "text", "gas", "group"])
    colours = {gas: gas_colour(gas) for gas in gases}
    tooltips = [(xdim.label, "@{bar}"), (dimension.pprint_label, "@{text}")]
    bars = bars.opts(
        color=hv.dim("gas").categorize(colours),
        fill_alpha=hv.dim("group").categorize(opacity),
        line_color="black",
        tools=["hover"],
        hover_tooltips=tooltips,
        xrotation=30,
        backend="bokeh",
    )
    errors = hv.ErrorBars(whiskers, kdims=[xdim], vdims=[dimension, "spread"])
    return (bars * errors.opts(color="black", backend="bokeh")).opts(
        width=WIDTH, height=380, title="Gas evolved per cycle (± 1σ)", backend="bokeh"
    )


def comparison_gases(fluxes: Mapping[str, xr.DataArray], gases: Sequence[str] | None) -> list[str]:
    """Return the gases to compare: those asked for, else every gas of any group, in order."""
    if gases:
        return list(gases)
    return list(dict.fromkeys(str(g) for f in fluxes.values() for g in f["gas"].values))
