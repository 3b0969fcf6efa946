"""Paper figures of DEMS results: matplotlib, sized in millimetres for print.

The figure of one run (``dems process --png``) and the comparisons of several samples
(``operando compare``). Colours come from :mod:`dems.palette` (one per gas, as in the HTML
views and the app); samples are told apart by line style and bar hatch
(:func:`operando_core.print_style.group_style`). Every function returns a
:class:`matplotlib.figure.Figure` (no pyplot, no I/O); save it with
:func:`pipelines.report.save_figure`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from dems.comparison import onset_text
from dems.display import (
    AMOUNT_UNITS,
    display_scale,
    envelope,
    first_charge,
    potential_unit,
    reference_of,
)
from dems.palette import gas_colour
from operando_core.formatting import finite, format_uncertain
from operando_core.print_style import (
    DOUBLE_COLUMN_MM,
    SINGLE_COLUMN_MM,
    group_style,
    legend_below,
    panel_grid,
    panel_title,
    print_figure,
    print_style,
)

__all__ = ["amount_comparison_figure", "flux_comparison_figure", "process_figure"]

Onsets = Mapping[str, Mapping[str, Any]]
Amounts = Mapping[int, Mapping[str, tuple[float, float | None]]]
#: Points drawn per curve in a print figure (far more than a column width resolves).
PRINT_POINTS = 4000
LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _flux_scale(fluxes: Sequence[xr.DataArray]) -> tuple[float, str]:
    """One display unit for several fluxes (shared axes compare like with like)."""
    unit = str(fluxes[0].attrs.get("units", "mol/s"))
    values = np.concatenate([np.asarray(f, dtype=float).ravel() for f in fluxes])
    return display_scale(values, unit)


def _draw_fluxes(
    axes: Any,
    flux: xr.DataArray,
    x: np.ndarray,
    factor: float,
    *,
    mask: np.ndarray | None = None,
    linestyle: str = "-",
    label: str = "{gas}",
) -> None:
    mask = np.ones(x.size, bool) if mask is None else mask
    for gas in flux["gas"].values:
        y = np.asarray(flux.sel(gas=gas), dtype=float) * factor
        keep = mask & np.isfinite(y) & np.isfinite(x)
        xs, ys = envelope(x[keep], y[keep], PRINT_POINTS)
        axes.plot(
            xs, ys, color=gas_colour(str(gas)), linestyle=linestyle, label=label.format(gas=gas)
        )


def _draw_onset(
    axes: Any,
    gas: str,
    onset: Mapping[str, Any] | None,
    unit: str,
    linestyle: str = "--",
    *,
    legend: bool = True,
) -> bool:
    """Draw an onset: dashed line in the gas colour, ±uncertainty band, value in the legend."""
    potential = (onset or {}).get("potential_V")
    if not finite(potential):
        return False
    colour, spread = gas_colour(gas), (onset or {}).get("uncertainty_V")
    if finite(spread) and spread > 0:
        axes.axvspan(potential - spread, potential + spread, color=colour, alpha=0.18, lw=0)
    label = f"{gas} onset {format_uncertain(potential, spread, 3, unit)}"
    axes.axvline(potential, color=colour, linestyle=linestyle, linewidth=0.8,
                 label=label if legend else None)  # fmt: skip
    return True


def _amount_unit(flux: xr.DataArray) -> str:
    unit = str(flux.attrs.get("units", "mol/s"))
    return AMOUNT_UNITS.get(unit, f"{unit}·s")


def process_figure(
    flux: xr.DataArray,
    ec: xr.Dataset | None = None,
    onsets: Onsets | None = None,
    amounts: Amounts | None = None,
    *,
    width_mm: float = DOUBLE_COLUMN_MM,
) -> Any:
    """Draw one DEMS run: the standard EC-MS plot, flux against potential, gas amounts.

    Parameters
    ----------
    flux
        ``DataArray(gas, time)`` in mol/s or mol/(s·g) with ``potential``, ``cycle`` and
        ``charge`` coordinates (:func:`dems.result_views.result_flux`).
    ec
        ``potential`` (V) and ``current`` (mA) along ``time``
        (:func:`dems.result_views.result_ec`); default: the flux's potential only.
    onsets
        Onsets of the first charge, ``{gas: {"potential_V", "uncertainty_V"}}``.
    amounts
        ``{cycle: {gas: (amount, uncertainty)}}`` in mol (mol/g for a per-gram flux).
    width_mm
        Printed width: 175 mm lays the panels out 2 × 2, 85 mm in one column.

    Returns
    -------
    matplotlib.figure.Figure
        (a) gas fluxes against time over (b) potential and current, sharing the time axis;
        (c) fluxes against potential during the first charge with the onsets (value ± its
        uncertainty in the legend, band = ±uncertainty); (d) gas evolved per cycle with ±.
    """
    wide = width_mm > SINGLE_COLUMN_MM + 1
    with print_style():
        figure = print_figure(width_mm, 105 if wide else 200)
        grid = figure.add_gridspec(2, 2, height_ratios=[3, 2]) if wide else None
        if wide:
            axes_a = figure.add_subplot(grid[0, 0])
            axes_b = figure.add_subplot(grid[1, 0], sharex=axes_a)
            axes_c = figure.add_subplot(grid[0, 1])
            axes_d = figure.add_subplot(grid[1, 1])
        else:
            grid = figure.add_gridspec(4, 1, height_ratios=[3, 2, 3, 2.4])
            axes_a = figure.add_subplot(grid[0])
            axes_b = figure.add_subplot(grid[1], sharex=axes_a)
            axes_c, axes_d = figure.add_subplot(grid[2]), figure.add_subplot(grid[3])
        factor, unit = _flux_scale([flux])
        ec = xr.Dataset({"potential": flux["potential"]}) if ec is None else ec
        reference = potential_unit(reference_of(ec) or reference_of(flux))
        _draw_fluxes(axes_a, flux, np.asarray(flux["time"], float), factor)
        axes_a.set_ylabel(f"Gas flux ({unit})")
        axes_a.tick_params(labelbottom=False)
        axes_a.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0) if not wide else (0, 1))
        panel_title(axes_a, "a", "Gas flux")
        _draw_potential_and_current(axes_b, ec, reference)
        panel_title(axes_b, "b", "Electrochemistry")
        mask, cycle = first_charge(flux)
        _draw_fluxes(axes_c, flux, np.asarray(flux["potential"], float), factor, mask=mask)
        drawn = [_draw_onset(axes_c, str(g), (onsets or {}).get(str(g)), reference)
                 for g in flux["gas"].values]  # fmt: skip
        axes_c.set_xlabel(f"Potential ({reference})")
        axes_c.set_ylabel(f"Gas flux ({unit})")
        charge = "first charge" if cycle is None else f"charge of cycle {cycle}"
        panel_title(axes_c, "c", f"Gas flux during the {charge}")
        if any(drawn):
            handles = [h for h in axes_c.get_legend_handles_labels()[0] if "onset" in h.get_label()]
            axes_c.legend(handles=handles, loc="upper left")
        _draw_amounts(axes_d, {"": amounts or {}}, _amount_unit(flux))
        panel_title(axes_d, "d", "Gas evolved per cycle (± 1σ)")
    return figure


def _draw_potential_and_current(axes: Any, ec: xr.Dataset, reference: str) -> None:
    time = np.asarray(ec["time"], float)
    axes.plot(time, np.asarray(ec["potential"], float), color="black", label="potential")
    axes.set_ylabel(f"Potential ({reference})")
    axes.set_xlabel("Time (s)")
    if "current" not in ec:
        return
    twin = axes.twinx()
    twin.spines["right"].set_visible(True)
    unit = str(ec["current"].attrs.get("units", "mA"))
    twin.plot(time, np.asarray(ec["current"], float), color="#7F7F7F", linewidth=0.8)
    twin.set_ylabel(f"Current ({unit})", color="#595959")
    twin.tick_params(axis="y", colors="#595959")


def _draw_amounts(axes: Any, groups: Mapping[str, Amounts], unit: str) -> None:
    """Draw grouped bars: per cycle and gas one bar per group (hatch), whiskers = ±1σ."""
    values = [v for amounts in groups.values() for g in amounts.values() for v, _ in g.values()]
    factor, shown = display_scale(np.asarray(values or [0.0], dtype=float), unit)
    # cycles in order, gases in the order of the data (as in the legends)
    gases = list(dict.fromkeys(gas for a in groups.values() for g in a.values() for gas in g))
    cycles = sorted({cycle for a in groups.values() for cycle in a})
    slots = [
        (c, g) for c in cycles for g in gases if any(g in a.get(c, {}) for a in groups.values())
    ]
    width = 0.8 / max(len(groups), 1)
    for index, (name, amounts) in enumerate(groups.items()):
        style = group_style(index)
        for slot, (cycle, gas) in enumerate(slots):
            value, spread = amounts.get(cycle, {}).get(gas, (np.nan, None))
            if not finite(value):
                continue
            x = slot + (index - (len(groups) - 1) / 2) * width
            axes.bar(
                x,
                value * factor,
                width * 0.92,
                color=gas_colour(gas),
                alpha=style.alpha,
                hatch=style.hatch,
                edgecolor="black",
                linewidth=0.4,
                label=name if slot == 0 else None,
            )
            if finite(spread):
                axes.errorbar(x, value * factor, yerr=spread * factor, color="black",
                              capsize=2, linewidth=0.6)  # fmt: skip
    several = len({cycle for cycle, _ in slots}) > 1
    axes.set_xticks(range(len(slots)))
    axes.set_xticklabels([f"{gas}\ncycle {c}" if several else gas for c, gas in slots])
    axes.set_ylabel(f"Gas evolved ({shown})")
    axes.axhline(0, color="black", linewidth=0.5)
    if len(groups) > 1:
        axes.legend(loc="upper right")


def flux_comparison_figure(
    fluxes: Mapping[str, xr.DataArray],
    onsets: Mapping[str, Onsets] | None = None,
    *,
    gases: Sequence[str] | None = None,
    width_mm: float = DOUBLE_COLUMN_MM,
) -> Any:
    """Gas flux against potential during the first charge, every group on shared axes.

    Parameters
    ----------
    fluxes
        ``{group: flux}``, each ``DataArray(gas, time)`` with the coordinates of
        :func:`dems.result_views.result_flux` (all in mol/s, or all in mol/(s·g)).
    onsets
        ``{group: {gas: {"potential_V", "uncertainty_V"}}}``: lines and ±bands in the
        group's line style.
    gases
        Gases to draw, one panel each (default: every gas of any group).
    width_mm
        Printed width: panels side by side at 175 mm, stacked at 85 mm.

    Returns
    -------
    matplotlib.figure.Figure
        One panel per gas in the gas's colour; groups by line style, named in the legend.
    """
    names = list(fluxes)
    gases = list(gases or dict.fromkeys(str(g) for f in fluxes.values() for g in f["gas"].values))
    factor, unit = _flux_scale(list(fluxes.values()))
    reference = potential_unit(next((reference_of(f) for f in fluxes.values()), None))
    wide = width_mm > SINGLE_COLUMN_MM + 1
    # a legend of one line per group below each panel
    legend_mm = 4 * len(names) + 4
    height = 62 + legend_mm if wide else (48 + legend_mm) * len(gases) + 10
    with print_style():
        figure = print_figure(width_mm, height)
        panels = panel_grid(figure, len(gases), min(len(gases), 3) if wide else 1)
        for letter, axes, gas in zip(LETTERS, panels, gases, strict=False):
            for index, name in enumerate(names):
                flux = fluxes[name]
                if gas not in flux["gas"].values:
                    continue
                style = group_style(index)
                mask, _ = first_charge(flux)
                onset = ((onsets or {}).get(name) or {}).get(gas) or {}
                # "V": the axis below names the reference electrode
                stated = onset_text(onset.get("potential_V"), onset.get("uncertainty_V"), "V")
                _draw_fluxes(axes, flux.sel(gas=[gas]), np.asarray(flux["potential"], float),
                             factor, mask=mask, linestyle=style.linestyle,
                             label=f"{name}: {stated}")  # fmt: skip
                _draw_onset(axes, gas, onset, reference, style.linestyle, legend=False)
            axes.set_xlabel(f"Potential ({reference})")
            axes.set_ylabel(f"{gas} flux ({unit})")
            panel_title(axes, letter, f"{gas} during the first charge")
            # below the axes: inside, the legend would hide the flux or cross the onset lines
            legend_below(axes, handlelength=2.2)
    return figure


def amount_comparison_figure(
    amounts: Mapping[str, Amounts], unit: str, *, width_mm: float = SINGLE_COLUMN_MM
) -> Any:
    """Gas evolved per cycle of every group, grouped bars with ±1σ whiskers.

    Parameters
    ----------
    amounts
        ``{group: {cycle: {gas: (amount, uncertainty)}}}`` in ``unit``.
    unit
        ``"mol"`` or ``"mol/g"`` (shown with an SI prefix).
    width_mm
        Printed width.

    Returns
    -------
    matplotlib.figure.Figure
        Bars in the gas's colour, one per group (hatch and opacity name the group).
    """
    with print_style():
        figure = print_figure(width_mm, 60)
        axes = figure.add_subplot()
        _draw_amounts(axes, amounts, unit)
        panel_title(axes, "a", "Gas evolved per cycle (± 1σ)")
    return figure
