"""HoloViews views of DEMS data: ion currents, gas fluxes, onsets, calibration, gas per cycle.

The page of a ``dems process`` result (its store + ``summary.json``) is assembled in
:mod:`dems.result_views`.

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

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import holoviews as hv
import numpy as np
import xarray as xr

from dems.cycles import amount_per_cycle, running_amount

import holoviews.plotting.bokeh  # isort: skip - registers the bokeh options
import holoviews.plotting.mpl  # isort: skip - registers the matplotlib options

__all__ = [
    "amount_per_cycle",
    "calibration_fit",
    "cumulative_gas",
    "display_scale",
    "envelope",
    "flux_vs_potential",
    "flux_vs_time",
    "ion_currents",
    "potentiostat",
    "running_amount",
]

WIDTH = 800
HEIGHT = 380
Onsets = Mapping[str, Mapping[str, Any]]


def _units(obj: xr.DataArray | xr.Dataset, default: str = "") -> str:
    return str(obj.attrs.get("units", default))


#: SI prefixes tried for display, and the units they apply to (others are shown as stored).
PREFIXES = ((1e-15, "f"), (1e-12, "p"), (1e-9, "n"), (1e-6, "µ"), (1e-3, "m"), (1.0, ""))
SCALABLE_UNITS = ("A", "mol/s", "mol")


def display_scale(values: np.ndarray, unit: str) -> tuple[float, str]:
    """Choose the display unit that puts the largest magnitude between 1 and 1000.

    Parameters
    ----------
    values
        Data in ``unit`` (NaN ignored).
    unit
        Stored unit; only ``A``, ``mol/s`` and ``mol`` are rescaled (e.g. to ``pA``, ``nmol/s``).

    Returns
    -------
    factor, unit
        Multiply the data by ``factor`` to express it in the returned unit.
    """
    finite = np.abs(np.asarray(values, dtype=float))
    finite = finite[np.isfinite(finite)]
    if unit not in SCALABLE_UNITS or finite.size == 0 or finite.max() == 0:
        return 1.0, unit
    peak = finite.max()
    size, prefix = max(((f, p) for f, p in PREFIXES if f <= peak), default=PREFIXES[0])
    return 1.0 / size, prefix + unit


def envelope(t: np.ndarray, y: np.ndarray, max_points: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Thin a long curve to at most ``max_points`` samples, keeping every peak and dip.

    The samples are cut into ``max_points // 2`` consecutive buckets and each bucket keeps its
    minimum and its maximum (in time order), so spikes survive, unlike plain striding.

    Parameters
    ----------
    t, y
        Times (s) and values, same length, NaN-free.
    max_points
        Largest number of samples to keep; ``None`` keeps all.

    Returns
    -------
    t, y
        The kept samples.
    """
    if max_points is None or t.size <= max_points:
        return t, y
    edges = np.linspace(0, t.size, max(max_points // 2, 1) + 1).astype(int)
    keep = []
    for start, stop in itertools.pairwise(edges):
        bucket = y[start:stop]
        keep += [start + int(np.argmin(bucket)), start + int(np.argmax(bucket))]
    kept = np.unique(keep)
    return t[kept], y[kept]


def _potential_curve(ec: xr.Dataset) -> hv.Curve:
    potential = ec["potential"]
    dim = hv.Dimension("potential", label="Potential", unit=_units(potential, "V"))
    curve = hv.Curve(
        (np.asarray(ec["time"]), np.asarray(potential)),
        kdims=[hv.Dimension("time", label="Time", unit="s")],
        vdims=[dim],
        label="Ewe",  # must differ from the dimension name and label (style mapping)
    )
    return curve.opts(color="black", line_dash="dashed", tools=["hover"], backend="bokeh").opts(
        color="black", linestyle="--", backend="matplotlib"
    )


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
    time = hv.Dimension("time", label="Time", unit="s")
    curves = []
    for name in names:
        one = shown.sel(channel=name)
        t, y = np.asarray(one["time"]), np.asarray(one["signal"]) * factor
        keep = np.isfinite(t) & np.isfinite(y) & ((y > 0) if logy else True)
        thinned = envelope(t[keep], y[keep], max_points)
        curves.append(hv.Curve(thinned, kdims=[time], vdims=[signal], label=str(name)))
    overlay = (
        hv.Overlay(curves)
        .opts({"Curve": {"tools": ["hover"], "hover_mode": "vline", "logy": logy}}, backend="bokeh")
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
    potential = _potential_curve(ec)
    overlay = hv.Overlay([potential])
    if "current" in ec:
        current = hv.Curve(
            (np.asarray(ec["time"]), np.asarray(ec["current"])),
            kdims=[hv.Dimension("time", label="Time", unit="s")],
            vdims=[hv.Dimension("current", label="Current", unit=_units(ec["current"], "mA"))],
            label="I",
        ).opts(tools=["hover"], backend="bokeh")
        overlay = (overlay * current).opts(multi_y=True, backend="bokeh")
    title = f"Potentiostat ({ec.attrs.get('technique', 'EC')})"
    return overlay.opts(
        width=WIDTH, height=HEIGHT, legend_position="right", title=title, backend="bokeh"
    )


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
        ``DataArray(gas, time)`` in mol/s with a ``potential`` coordinate along ``time``.
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
    time = hv.Dimension("time", label="Time", unit="s")
    factor, unit = display_scale(np.asarray(flux), _units(flux, "mol/s"))
    rate = hv.Dimension("flux", label="Gas flux", unit=unit)
    t = np.asarray(flux["time"])
    curves = []
    for gas in flux["gas"].values:
        y = np.asarray(flux.sel(gas=gas)) * factor
        keep = np.isfinite(y) & ((y > 0) if logy else True)
        thinned = envelope(t[keep], y[keep], max_points)
        curves.append(hv.Curve(thinned, kdims=[time], vdims=[rate], label=str(gas)))
    overlay = hv.Overlay(curves).opts(
        {"Curve": {"tools": ["hover"], "hover_mode": "vline", "logy": logy}}, backend="bokeh"
    )
    ec = None
    if "potential" in flux.coords:
        ec = xr.Dataset({"potential": flux["potential"]}, coords={"time": flux["time"]})
    return _with_potential(overlay, ec, "Gas flux", stacked)


def _charging(flux: xr.DataArray) -> np.ndarray:
    if "charge" in flux.coords:
        return np.asarray(flux["charge"], dtype=bool)
    potential = np.asarray(flux["potential"], dtype=float)
    rising = np.gradient(potential) > 0 if potential.size > 1 else np.ones(potential.size, bool)
    return rising


def _onset_markers(onsets: Onsets, gases: Sequence[str], top: float) -> list[hv.Element]:
    markers: list[hv.Element] = []
    palette = hv.Cycle.default_cycles["default_colors"]
    for index, gas in enumerate(gases):
        onset = onsets.get(gas)
        potential = None if onset is None else onset.get("potential_V")
        if potential is None or not np.isfinite(potential):
            continue
        spread = onset.get("uncertainty_V") or 0.0
        colour = palette[index % len(palette)]
        if np.isfinite(spread) and spread > 0:
            markers.append(
                hv.VSpan(potential - spread, potential + spread).opts(color=colour, alpha=0.2)
            )
        markers.append(hv.VLine(potential, label=f"{gas} onset").opts(color=colour))
        label = f"{gas} onset {potential:.3f} V"
        if spread:
            label += f" ± {spread:.3f} V"
        height = top * (1 - 0.09 * index)  # one text line per gas, so labels never overlap
        markers.append(
            hv.Text(potential, height, f"{label} ", halign="right", valign="top", fontsize=9)
        )
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
        ``DataArray(gas, time)`` in mol/s with coordinates ``potential`` (V) and, optionally,
        ``cycle`` (int) and ``charge`` (bool) along ``time``.
    onsets
        ``{gas: {"potential_V", "uncertainty_V", "method"}}`` in V; each onset is drawn as a
        vertical line with a shaded ±uncertainty band.
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
    keep = _charging(flux) if charge_only else np.ones(flux.sizes["time"], bool)
    potential = hv.Dimension("potential", label="Potential", unit="V")
    factor, unit = display_scale(np.asarray(flux), _units(flux, "mol/s"))
    rate = hv.Dimension("flux", label="Gas flux", unit=unit)
    values = {gas: np.asarray(flux.sel(gas=gas)) * factor for gas in gases}
    x = np.asarray(flux["potential"])
    finite = [v[np.isfinite(v)] for v in values.values()]
    top = max((float(v.max()) for v in finite if v.size), default=1.0)
    frames = {}
    for cycle in np.unique(cycles[np.isfinite(cycles)]):
        mask = keep & (cycles == cycle)
        curves = [
            hv.Curve((x[mask], values[gas][mask]), kdims=[potential], vdims=[rate], label=gas)
            for gas in gases
        ]
        shown = (cycle_onsets or {}).get(int(cycle), onsets or {})
        frames[int(cycle)] = hv.Overlay([*curves, *_onset_markers(shown, gases, top)])
    title = "Gas flux during charge" if charge_only else "Gas flux"
    bokeh = {
        "Curve": {"tools": ["hover"], "hover_mode": "vline"},
        "Overlay": {"width": WIDTH, "height": HEIGHT, "legend_position": "right", "title": title},
    }
    matplotlib = {
        "Overlay": {
            "fig_inches": (8, 4),
            "aspect": 2,
            "legend_position": "top_left",
            "title": title,
        }
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
        One panel per gas: calibration points (hover values) and the line
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
        finite = x[np.isfinite(x)]
        line_x = np.linspace(min(0.0, finite.min()), finite.max(), 50)
        points = hv.Scatter((x * fx, y * fy), kdims=[flux_dim], vdims=[signal_dim], label="steps")
        line = hv.Curve(
            (line_x * fx, (slope * line_x + offset) * fy),
            kdims=[flux_dim],
            vdims=[signal_dim],
            label="fit",
        )
        title = f"{gas}: {slope:.4g} C/mol"
        panels.append((points * line).opts(title=title))
    bokeh = {"Scatter": {"size": 8, "tools": ["hover"]}, "Overlay": {"width": 400, "height": 320}}
    return hv.Layout(panels).cols(2).opts(bokeh, backend="bokeh")


def cumulative_gas(flux: xr.DataArray) -> hv.Layout:
    """Gas evolved: running total within each cycle, and the total per cycle as bars.

    Parameters
    ----------
    flux
        ``DataArray(gas, time)`` in mol/s with a ``cycle`` coordinate along ``time``.

    Returns
    -------
    holoviews.Layout
        ``[running total against time (µmol, restarting every cycle), bars per cycle and gas
        (µmol)]``, with hover values.
    """
    amount = amount_per_cycle(flux).transpose("cycle", "gas")
    rows = [
        (str(int(cycle)), str(gas), float(amount.sel(cycle=cycle, gas=gas)) * 1e6)
        for cycle in amount["cycle"].values
        for gas in amount["gas"].values
    ]
    micromol = hv.Dimension("amount", label="Gas evolved", unit="µmol")
    bars = hv.Bars(rows, kdims=["cycle", "gas"], vdims=[micromol])
    bars = bars.opts(
        tools=["hover"],
        width=WIDTH // 2,
        height=HEIGHT,
        title="Per cycle",
        xlabel="Cycle, gas",
        backend="bokeh",
    ).opts(title="Per cycle", backend="matplotlib")
    running = running_amount(flux)
    time = hv.Dimension("time", label="Time", unit="s")
    t = np.asarray(flux["time"])
    curves = (
        hv.Overlay(
            [
                hv.Curve(
                    (t, np.asarray(running.sel(gas=gas)) * 1e6),
                    kdims=[time],
                    vdims=[micromol],
                    label=str(gas),
                )
                for gas in running["gas"].values
            ]
        )
        .opts(
            {
                "Curve": {"tools": ["hover"], "hover_mode": "vline"},
                "Overlay": {
                    "width": WIDTH // 2 + 100,
                    "height": HEIGHT,
                    "title": "Running total",
                    "legend_position": "top_left",
                },
            },
            backend="bokeh",
        )
        .opts(
            {"Overlay": {"title": "Running total", "legend_position": "top_left"}},
            backend="matplotlib",
        )
    )
    return (curves + bars).opts(fig_inches=(10, 4), backend="matplotlib")
