"""HoloViews views of DEMS data: ion currents, gas fluxes, onsets, calibration, gas per cycle.

The page of a ``dems process`` result (its store + ``summary.json``) is assembled in
:mod:`dems.result_views`; the gas-evolved views live in :mod:`dems.amount_views` and are
re-exported here.

Every function takes xarray objects and returns a HoloViews object (no I/O, no ``.compute()``
of anything larger than the curves it draws). Render them in a notebook, serve them with
``operando serve`` or save them with :mod:`pipelines.report` (offline HTML with inline
resources, PNG through matplotlib).

Inputs
------
``ms``
    Mass-spectrometer dataset (``docs/conventions.md``): ``signal(channel, sample)`` with each
    channel's own ``time(channel, sample)`` in s.
``ec``
    Potentiostat dataset: ``potential(time)`` in V on ``time`` in s, ideally aligned to the MS
    clock with :func:`dems.align`.
``flux``
    Calibrated gas fluxes, ``DataArray(gas, time)`` in mol/s (``units`` attribute), with a
    ``potential`` coordinate (V) along ``time`` and, optionally, a ``cycle`` coordinate (int)
    along ``time``. An optional ``charge`` coordinate (bool along ``time``) marks the charging
    half-cycles; without it a sample counts as charging when the potential rises.
``onsets``
    ``{gas: {"potential_V": float, "uncertainty_V": float, "method": str}}``, e.g.
    ``{"O2": {"potential_V": 4.39, "uncertainty_V": 0.01, "method": "3-sigma"}}``;
    ``NaN``/``None`` potentials are not drawn.
``calibration``
    ``Dataset(gas, point)`` with ``flux`` (mol/s) known during each calibration step and the
    measured ``signal`` (A); ``sensitivity(gas)`` in C/mol (slope of signal against flux)
    and an optional ``intercept(gas)`` in A.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import holoviews as hv
import numpy as np
import xarray as xr

from dems.amount_views import Amounts, amount_bars, cumulative_gas
from dems.cycles import amount_per_cycle, running_amount
from dems.display import (
    charging,
    display_scale,
    envelope,
    potential_unit,
    reference_label,
    reference_of,
)
from dems.palette import gas_colour
from dems.view_elements import HEIGHT, TIME, WIDTH
from dems.view_elements import styled_series as _series
from dems.view_elements import units as _units
from operando_core.formatting import finite, format_uncertain

__all__ = [
    "Amounts",
    "amount_bars",
    "amount_per_cycle",
    "calibration_fit",
    "cumulative_gas",
    "display_scale",
    "ec_ms",
    "envelope",
    "flux_vs_potential",
    "flux_vs_time",
    "ion_currents",
    "potential_dimension",
    "potentiostat",
    "reference_label",
    "running_amount",
]

Onsets = Mapping[str, Mapping[str, Any]]


def potential_dimension(reference: str | None = None) -> hv.Dimension:
    """Return the potential axis: ``Potential (V vs Li/Li⁺)`` when the reference is known."""
    return hv.Dimension("potential", label="Potential", unit=potential_unit(reference))


def _align(plot: Any, element: Any) -> None:
    """Bokeh hook: the same left border on every panel, so stacked frames line up."""
    plot.state.min_border_left = 90


def _potential_curve(ec: xr.Dataset) -> hv.Curve:
    potential = ec["potential"]
    # named "ewe", not "potential": a potential *axis* of another panel (flux against
    # potential) must not share its range with this y axis
    ewe = hv.Dimension("ewe", label="Potential", unit=potential_unit(reference_of(ec)))
    curve = hv.Curve(
        (np.asarray(ec["time"]), np.asarray(potential)),
        kdims=[TIME],
        vdims=[ewe],
        label="Ewe",  # must differ from the dimension name and label (style mapping)
    )
    return _series(curve, "trace", "Ewe", "black", "dashed")


def _current_curve(ec: xr.Dataset, against: str = "time") -> hv.Curve:
    kdim = TIME if against == "time" else potential_dimension(reference_of(ec))
    current = hv.Curve(
        (np.asarray(ec[against]), np.asarray(ec["current"])),
        kdims=[kdim],
        vdims=[hv.Dimension("current", label="Current", unit=_units(ec["current"], "mA"))],
        label="I",
    )
    return _series(current, "trace", "I", "#7F7F7F")


def _with_potential(
    overlay: hv.Overlay, ec: xr.Dataset | None, title: str, stacked: bool
) -> hv.Overlay | hv.Layout:
    """Add the potential: on a twin y axis, or (``stacked``) in a panel below sharing x."""
    overlay = overlay.opts(
        width=WIDTH, height=HEIGHT, legend_position="right", title=title, backend="bokeh"
    ).opts(fig_inches=(9, 4), legend_position="right", title=title, backend="matplotlib")
    if ec is None:
        return overlay
    potential = _potential_curve(ec)
    if stacked:
        overlay = overlay.opts(aspect=3, legend_position="best", backend="matplotlib")
        potential = potential.opts(width=WIDTH, height=HEIGHT // 2, backend="bokeh").opts(
            aspect=3, show_legend=False, backend="matplotlib"
        )
        return (
            (overlay + potential.relabel(""))
            .cols(1)
            .opts(sublabel_format="", fig_inches=(9, 6), backend="matplotlib")
        )
    twin = overlay * potential  # a new Overlay: the size and title options are set again
    return twin.opts(
        multi_y=True,
        width=WIDTH,
        height=HEIGHT,
        legend_position="right",
        title=title,
        backend="bokeh",
    )


def ion_currents(
    ms: xr.Dataset,
    ec: xr.Dataset | None = None,
    channels: Sequence[str] | None = None,
    *,
    logy: bool = True,
    stacked: bool = False,
    max_points: int | None = 20_000,
) -> hv.Overlay | hv.Layout:
    """Ion currents against time, one curve per channel, with the potential on a twin axis.

    Parameters
    ----------
    ms
        Mass-spectrometer dataset (``signal`` in A or mbar, each channel on its own clock).
    ec
        Potentiostat dataset on the same clock (``potential`` in V); omitted if ``None``.
    channels
        Channel ids to draw (default: all).
    logy
        Logarithmic signal axis (ion currents span decades).
    stacked
        Draw the potential in a panel below (shared time axis) instead of on a twin axis; use
        it for PNG figures, as the matplotlib backend has no twin axes.
    max_points
        Longest curve drawn per channel; longer ones keep the minimum and maximum of each of
        ``max_points / 2`` time buckets (:func:`envelope`). ``None`` draws every sample.

    Returns
    -------
    holoviews.Overlay or holoviews.Layout
        Curves with hover values; with ``ec`` a second y axis (``multi_y``) for the potential.
    """
    names = list(ms["channel"].values) if channels is None else list(channels)
    shown = ms.sel(channel=names)
    factor, unit = display_scale(np.asarray(shown["signal"]), _units(ms["signal"], "A"))
    signal = hv.Dimension("signal", label=ms.attrs.get("quantity", "signal"), unit=unit)
    curves = []
    for name in names:
        one = shown.sel(channel=name)
        t, y = np.asarray(one["time"]), np.asarray(one["signal"]) * factor
        keep = np.isfinite(t) & np.isfinite(y) & ((y > 0) if logy else True)
        thinned = envelope(t[keep], y[keep], max_points)
        curve = hv.Curve(thinned, kdims=[TIME], vdims=[signal], label=str(name))
        curves.append(_series(curve, "channel", str(name), None))
    overlay = (
        hv.Overlay(curves)
        .opts({"Curve": {"hover_mode": "vline", "logy": logy}}, backend="bokeh")
        .opts({"Curve": {"logy": logy}}, backend="matplotlib")
    )
    return _with_potential(overlay, ec, "Ion currents", stacked)


def potentiostat(ec: xr.Dataset) -> hv.Overlay:
    """Potential and current against time (current on a twin axis).

    Parameters
    ----------
    ec
        Potentiostat dataset with ``potential`` (V) and, if present, ``current`` (mA).

    Returns
    -------
    holoviews.Overlay
    """
    overlay = hv.Overlay([_potential_curve(ec)])
    if "current" in ec:
        overlay = (overlay * _current_curve(ec)).opts(multi_y=True, backend="bokeh")
    title = f"Potentiostat ({ec.attrs.get('technique', 'EC')})"
    return overlay.opts(
        width=WIDTH, height=HEIGHT, legend_position="right", title=title, backend="bokeh"
    )


def _flux_curves(
    flux: xr.DataArray,
    kdim: hv.Dimension,
    x: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    logy: bool = False,
    max_points: int | None = None,
) -> list[hv.Curve]:
    """One curve per gas, in the gas's colour, in the display unit of the whole flux."""
    factor, unit = display_scale(np.asarray(flux), _units(flux, "mol/s"))
    rate = hv.Dimension("flux", label="Gas flux", unit=unit)
    mask = np.ones(x.size, bool) if mask is None else mask
    curves = []
    for gas in flux["gas"].values:
        y = np.asarray(flux.sel(gas=gas)) * factor
        keep = mask & np.isfinite(y) & ((y > 0) if logy else True)
        thinned = envelope(x[keep], y[keep], max_points)
        curve = hv.Curve(thinned, kdims=[kdim], vdims=[rate], label=str(gas))
        curves.append(_series(curve, "gas", str(gas), gas_colour(str(gas))))
    return curves


def _ec_of_flux(flux: xr.DataArray) -> xr.Dataset | None:
    if "potential" not in flux.coords:
        return None
    return xr.Dataset({"potential": flux["potential"]}, coords={"time": flux["time"]})


def flux_vs_time(
    flux: xr.DataArray,
    *,
    logy: bool = False,
    stacked: bool = False,
    max_points: int | None = 20_000,
) -> hv.Overlay | hv.Layout:
    """Calibrated gas fluxes against time with the potential on a twin axis.

    Parameters
    ----------
    flux
        ``DataArray(gas, time)`` in mol/s (or mol/(s·g)) with a ``potential`` coordinate.
    logy
        Logarithmic flux axis.
    stacked
        Potential in a panel below instead of on a twin axis (for PNG figures).
    max_points
        Longest curve drawn per gas (see :func:`ion_currents`).

    Returns
    -------
    holoviews.Overlay or holoviews.Layout
    """
    curves = _flux_curves(flux, TIME, np.asarray(flux["time"]), logy=logy, max_points=max_points)
    overlay = hv.Overlay(curves).opts(
        {"Curve": {"hover_mode": "vline", "logy": logy}}, backend="bokeh"
    )
    return _with_potential(overlay, _ec_of_flux(flux), "Gas flux", stacked)


def ec_ms(
    flux: xr.DataArray,
    ec: xr.Dataset | None = None,
    *,
    against: str = "time",
    max_points: int | None = 20_000,
) -> hv.Layout:
    """Draw the standard EC-MS figure: gas fluxes above, potential and current below.

    As ixdat's ``plot_measurement`` (``against="time"``) and ``plot_vs_potential``
    (``against="potential"``): the panels share their x axis (zooming one zooms both).

    Parameters
    ----------
    flux
        ``DataArray(gas, time)`` in mol/s or mol/(s·g), with a ``potential`` coordinate.
    ec
        Potentiostat dataset on the same clock: ``potential`` (V) and ``current`` (mA) along
        ``time``; default: the flux's ``potential`` coordinate (no current).
    against
        ``"time"``: potential (left axis) and current (right axis) against time below the
        fluxes; ``"potential"``: fluxes and current against the potential.
    max_points
        Longest curve drawn per gas (see :func:`ion_currents`).

    Returns
    -------
    holoviews.Layout
        Two panels in one column, their frames aligned.
    """
    if against not in ("time", "potential"):
        raise ValueError(f"against must be 'time' or 'potential', not {against!r}")
    ec = _ec_of_flux(flux) if ec is None else ec
    if ec is None:
        raise KeyError("the EC-MS figure needs the potential: no 'potential' coordinate")
    if against == "time":
        kdim, x = TIME, np.asarray(flux["time"])
        lower = hv.Overlay([_potential_curve(ec)])
        if "current" in ec:
            lower = (lower * _current_curve(ec)).opts(multi_y=True, backend="bokeh")
    else:
        kdim, x = potential_dimension(reference_of(ec)), np.asarray(flux["potential"])
        lower = hv.Overlay([_current_curve(ec, "potential")] if "current" in ec else [])
    upper = hv.Overlay(_flux_curves(flux, kdim, x, max_points=max_points))
    panel = {"width": WIDTH, "legend_position": "right", "hooks": [_align]}
    upper = upper.opts(height=HEIGHT - 60, title="Gas flux", backend="bokeh", **panel)
    if not lower:  # against the potential without a current: nothing to draw below
        return hv.Layout([upper]).cols(1)
    lower = lower.opts(height=HEIGHT // 2 + 40, title="Electrochemistry", backend="bokeh", **panel)
    return (upper + lower).cols(1).opts(shared_axes=True, backend="bokeh")


def _onset_markers(
    onsets: Onsets,
    gases: Sequence[str],
    span: tuple[float, float],
    kdim: hv.Dimension,
    vdim: hv.Dimension,
) -> list[hv.Element]:
    """Per onset: a band of ±uncertainty and a dashed line named in the legend, gas-coloured.

    The value is in the legend entry (``O2 onset 4.391 ± 0.002 V``), so labels never collide
    with each other, the curves or the legend.
    """
    markers: list[hv.Element] = []
    for gas in gases:
        onset = onsets.get(gas) or {}
        potential = onset.get("potential_V")
        if not finite(potential):
            continue
        colour, spread = gas_colour(gas), onset.get("uncertainty_V")
        if finite(spread) and spread > 0:
            band = hv.VSpan(potential - spread, potential + spread)
            markers.append(
                band.opts(color=colour, alpha=0.2, backend="bokeh").opts(
                    facecolor=colour, edgecolor="none", alpha=0.2, backend="matplotlib"
                )
            )
        label = f"{gas} onset {format_uncertain(potential, spread, 3, kdim.unit)}"
        line = hv.Curve(([potential] * 2, list(span)), kdims=[kdim], vdims=[vdim], label=label)
        markers.append(_series(line, "onset", label, colour, "dashed"))
    return markers


def flux_vs_potential(
    flux: xr.DataArray,
    onsets: Onsets | None = None,
    *,
    charge_only: bool = True,
    cycle_onsets: Mapping[int, Onsets] | None = None,
) -> hv.HoloMap:
    """Gas flux against potential, one frame per cycle, with onset markers.

    Parameters
    ----------
    flux
        ``DataArray(gas, time)`` in mol/s (or mol/(s·g)) with coordinates ``potential`` (V)
        and, optionally, ``cycle`` (int) and ``charge`` (bool) along ``time``.
    onsets
        ``{gas: {"potential_V", "uncertainty_V", "method"}}`` in V; each onset is drawn as a
        dashed line in the gas's colour, named with its value in the legend, with a shaded
        ±uncertainty band.
    charge_only
        Keep only charging samples (``charge`` coordinate, else rising potential).
    cycle_onsets
        ``{cycle: onsets}``: the onsets found in each cycle's charge, drawn in that cycle's
        frame instead of ``onsets`` (cycles missing here fall back to ``onsets``).

    Returns
    -------
    holoviews.HoloMap
        Keyed by ``cycle`` (a slider in the browser); one frame when there is no ``cycle``.
    """
    gases = [str(g) for g in flux["gas"].values]
    cycles = np.asarray(flux["cycle"]) if "cycle" in flux.coords else np.zeros(flux.sizes["time"])
    keep = charging(flux) if charge_only else np.ones(flux.sizes["time"], bool)
    potential = potential_dimension(reference_of(flux))
    x = np.asarray(flux["potential"])
    frames = {}
    for cycle in np.unique(cycles[np.isfinite(cycles)]):
        mask = keep & (cycles == cycle)
        curves = _flux_curves(flux, potential, x, mask)
        values = np.concatenate([c.dimension_values(1) for c in curves] or [np.zeros(1)])
        values = values[np.isfinite(values)] if values.size else np.zeros(1)
        span = (min(0.0, float(values.min(initial=0.0))), float(values.max(initial=1.0)))
        shown = (cycle_onsets or {}).get(int(cycle), onsets or {})
        vdim = curves[0].vdims[0] if curves else hv.Dimension("flux")
        markers = _onset_markers(shown, gases, span, potential, vdim)
        frames[int(cycle)] = hv.Overlay([*curves, *markers])
    title = "Gas flux during charge" if charge_only else "Gas flux"
    bokeh = {
        "Curve": {"hover_mode": "vline"},
        "Overlay": {"width": WIDTH, "height": HEIGHT, "legend_position": "right", "title": title},
    }
    matplotlib = {
        "Overlay": {"fig_inches": (8, 4), "aspect": 2, "legend_position": "right", "title": title}
    }
    holomap = hv.HoloMap(frames, kdims=[hv.Dimension("cycle", label="Cycle")])
    return holomap.opts(bokeh, backend="bokeh").opts(matplotlib, backend="matplotlib")


def calibration_fit(calibration: xr.Dataset) -> hv.Layout:
    """Measured signal against known flux per gas, with the fitted calibration line.

    Parameters
    ----------
    calibration
        ``Dataset(gas, point)``: ``flux`` (mol/s), ``signal`` (A), ``sensitivity(gas)``
        (C/mol) and optionally ``intercept(gas)`` (A).

    Returns
    -------
    holoviews.Layout
        One panel per gas: calibration points (hover values) in the gas's colour and the line
        ``signal = sensitivity·flux + intercept``, titled with the sensitivity.
    """
    fx, x_unit = display_scale(
        np.asarray(calibration["flux"]), _units(calibration["flux"], "mol/s")
    )
    fy, y_unit = display_scale(
        np.asarray(calibration["signal"]), _units(calibration["signal"], "A")
    )
    flux_dim = hv.Dimension("flux", label="Flux", unit=x_unit)
    signal_dim = hv.Dimension("signal", label="Signal", unit=y_unit)
    panels = []
    for gas in calibration["gas"].values:
        one = calibration.sel(gas=gas)
        x, y = np.asarray(one["flux"]), np.asarray(one["signal"])
        slope = float(one["sensitivity"])
        offset = float(one["intercept"]) if "intercept" in one else 0.0
        finite_x = x[np.isfinite(x)]
        line_x = np.linspace(min(0.0, finite_x.min()), finite_x.max(), 50)
        points = hv.Scatter((x * fx, y * fy), kdims=[flux_dim], vdims=[signal_dim], label="steps")
        points = points.opts(color=gas_colour(str(gas)), backend="bokeh")
        line = hv.Curve(
            (line_x * fx, (slope * line_x + offset) * fy),
            kdims=[flux_dim],
            vdims=[signal_dim],
            label="fit",
        ).opts(color="black", backend="bokeh")
        title = f"{gas}: {slope:.4g} C/mol"
        panels.append((points * line).opts(title=title))
    bokeh = {"Scatter": {"size": 8, "tools": ["hover"]}, "Overlay": {"width": 400, "height": 320}}
    return hv.Layout(panels).cols(2).opts(bokeh, backend="bokeh")
