"""Comparing TOF-SIMS results of several groups (samples): profiles, CEI maps, on one scale.

Used by ``operando compare`` and the comparison tab of ``operando serve``. A fragment's
profile is normalised to its own maximum in each group (the shape and the time to maximum are
what is compared), but only where the fragment is *detected*: a group whose peak is below
``absent_fraction`` of the same fragment's peak in the group where it is strongest (in counts
per pixel and scan, so rasters of different sizes compare) is marked absent — a max-normalised
background would otherwise look like a full-height signal. Colour means fragment
(:mod:`tofsims.palette`); groups are told apart by line dash. No I/O.

Inputs
------
``profiles``
    ``{group: DataArray(fragment, scan)}`` of counts per pixel and scan with ``sputter_time``
    (s) and ``depth`` (nm) along ``scan`` (:func:`mean_profile`).
``summaries``
    ``{group: tofsims cei summary.json}``: CEI thickness, fragment times to maximum, the
    sputter rate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import holoviews as hv
import numpy as np
import xarray as xr

from operando_core.formatting import finite, format_uncertain
from operando_core.print_style import group_style
from tofsims.depth import depth_constant_rate
from tofsims.image_views import SLICE_SIDE, thickness_map
from tofsims.palette import fragment_colour

__all__ = [
    "ABSENT_FRACTION",
    "cei_markers",
    "detected",
    "mean_profile",
    "normalised",
    "profile_comparison",
    "sputter_rate",
    "thickness_comparison",
    "time_to_max",
]

#: A fragment is absent from a group when its peak is below this fraction of its strongest peak.
ABSENT_FRACTION = 0.05
#: Scans of the running mean that finds a peak (a single noisy scan is not a peak).
SMOOTH_SCANS = 5
WIDTH = 520
HEIGHT = 340


def mean_profile(volume: xr.Dataset, sputter_rate_nm_per_s: float | None) -> xr.DataArray:
    """Average a volume over its pixels: counts per pixel and scan, with depth when known.

    Parameters
    ----------
    volume
        ``counts(fragment, scan, y, x)`` with ``sputter_time`` along ``scan``: the counts
        analysed (``operando compare`` passes
        :func:`tofsims.workflows.fragment_purity.analysis_volume`, fitted counts of a
        reconstructed GRD).
    sputter_rate_nm_per_s
        Constant sputter rate (nm/s) for the ``depth`` coordinate; ``None``: no depth.

    Returns
    -------
    xarray.DataArray
        ``(fragment, scan)`` in counts per pixel (lazy on a dask-backed volume), with the
        volume's attribute ``counts`` (which counts) when it has one.
    """
    counts = volume["counts"]
    pixels = counts.sizes["y"] * counts.sizes["x"]
    which = {"counts": volume.attrs["counts"]} if "counts" in volume.attrs else {}
    profile = (counts.sum(["y", "x"]) / pixels).assign_attrs(units="counts per pixel", **which)
    if finite(sputter_rate_nm_per_s) and sputter_rate_nm_per_s > 0:
        profile = depth_constant_rate(profile, float(sputter_rate_nm_per_s))
    return profile


def sputter_rate(summary: Mapping[str, Any]) -> float | None:
    """Return the sputter rate (nm/s) a CEI summary was computed with, or ``None``."""
    rate = (summary.get("input") or {}).get("sputter_rate_nm_per_s")
    return float(rate) if finite(rate) and rate > 0 else None


def _peak(values: np.ndarray) -> float:
    finite_values = np.nan_to_num(np.asarray(values, float))
    width = min(SMOOTH_SCANS, finite_values.size) or 1
    smoothed = np.convolve(finite_values, np.ones(width) / width, mode="valid")
    return float(smoothed.max()) if smoothed.size else 0.0


def detected(
    profiles: Mapping[str, xr.DataArray], absent_fraction: float = ABSENT_FRACTION
) -> dict[str, dict[str, bool]]:
    """Say, per group and fragment, whether the fragment is detected there.

    Parameters
    ----------
    profiles
        ``{group: DataArray(fragment, scan)}`` in counts per pixel.
    absent_fraction
        Detected when the (5-scan running mean) peak reaches this fraction of the highest peak
        of the same fragment over all groups.

    Returns
    -------
    dict
        ``{group: {fragment: detected}}`` for every fragment of the group's profile.
    """
    peaks = {
        group: {str(f): _peak(profile.sel(fragment=f).values) for f in profile["fragment"].values}
        for group, profile in profiles.items()
    }
    strongest: dict[str, float] = {}
    for per_fragment in peaks.values():
        for fragment, peak in per_fragment.items():
            strongest[fragment] = max(strongest.get(fragment, 0.0), peak)
    return {
        group: {
            fragment: peak > 0 and peak >= absent_fraction * strongest[fragment]
            for fragment, peak in per_fragment.items()
        }
        for group, per_fragment in peaks.items()
    }


def normalised(profile: xr.DataArray) -> xr.DataArray:
    """Each fragment divided by its own peak (5-scan running mean): 1 at the maximum."""
    peaks = xr.DataArray(
        [_peak(profile.sel(fragment=f).values) for f in profile["fragment"].values],
        dims="fragment",
        coords={"fragment": profile["fragment"]},
    )
    return (profile / peaks.where(peaks > 0)).assign_attrs(units="I/I_max")


def time_to_max(summary: Mapping[str, Any], fragment: str) -> tuple[float | None, float | None]:
    """``(time to maximum, its uncertainty)`` in s of a fragment, from a CEI summary."""
    entry = (summary.get("fragments") or {}).get(fragment) or {}
    value, spread = entry.get("time_to_max_s"), entry.get("time_to_max_uncertainty_s")
    return (float(value) if finite(value) else None, float(spread) if finite(spread) else None)


def cei_markers(summary: Mapping[str, Any]) -> tuple[float | None, float | None]:
    """``(CEI thickness, uncertainty)`` in nm: the summary's headline (mean of the map)."""
    block = summary.get("cei_thickness_nm") or {}
    value, spread = block.get("mean"), block.get("uncertainty")
    return (float(value) if finite(value) else None, float(spread) if finite(spread) else None)


def _axis(profiles: Mapping[str, xr.DataArray]) -> tuple[str, hv.Dimension]:
    if all("depth" in p.coords for p in profiles.values()):
        return "depth", hv.Dimension("depth", label="Depth", unit="nm")
    return "sputter_time", hv.Dimension("sputter_time", label="Sputter time", unit="s")


def _common_rate(summaries: Mapping[str, Mapping[str, Any]]) -> float | None:
    rates = {sputter_rate(s) for s in summaries.values()}
    return rates.pop() if len(rates) == 1 and None not in rates else None


def _time_axis(rate: float) -> Any:
    """Bokeh hook: sputter time (s) on a second x axis above a depth axis (time = depth/rate)."""

    def hook(plot: Any, element: Any) -> None:
        from bokeh.models import CustomJS, LinearAxis, Range1d

        figure = plot.state
        if "sputter_time" in figure.extra_x_ranges:
            return
        depth = figure.x_range
        time = Range1d(start=(depth.start or 0) / rate, end=(depth.end or 1) / rate)
        figure.extra_x_ranges = {"sputter_time": time}
        figure.add_layout(
            LinearAxis(x_range_name="sputter_time", axis_label="Sputter time (s)"), "above"
        )
        follow = CustomJS(
            args={"time": time, "k": 1.0 / rate},
            code="time.start = cb_obj.start * k; time.end = cb_obj.end * k;",
        )
        depth.js_on_change("start", follow)
        depth.js_on_change("end", follow)

    return hook


def profile_comparison(
    profiles: Mapping[str, xr.DataArray],
    summaries: Mapping[str, Mapping[str, Any]],
    fragment: str,
    *,
    absent_fraction: float = ABSENT_FRACTION,
) -> hv.Overlay:
    """One fragment's normalised depth profile in every group, with its markers.

    Parameters
    ----------
    profiles, summaries
        See the module docstring.
    fragment
        The fragment drawn (its colour).
    absent_fraction
        See :func:`detected`.

    Returns
    -------
    holoviews.Overlay
        Per group (line dash): the profile normalised to its maximum — or, where the fragment
        is not detected, only a legend entry saying so — and the time to maximum as a line
        with a ±uncertainty band (legend: the value ± uncertainty in s); the CEI thickness of
        each group as a grey line. Depth (nm) on the x axis with sputter time (s) above when
        the groups share one sputter rate.
    """
    name, kdim = _axis(profiles)
    vdim = hv.Dimension("intensity", label=f"{fragment} normalised", unit="I/I_max")
    found = detected(profiles, absent_fraction)
    colour, elements = fragment_colour(fragment), []
    rate = _common_rate(summaries) if name == "depth" else None
    for index, (group, profile) in enumerate(profiles.items()):
        dash, summary = group_style(index).dash, summaries.get(group) or {}
        if not found.get(group, {}).get(fragment, False):
            reason = "not detected" if fragment in found.get(group, {}) else "not measured"
            elements.append(_legend_entry(kdim, vdim, f"{group}: {fragment} {reason}", dash))
            continue
        x = np.asarray(profile[name], float)
        y = np.asarray(normalised(profile).sel(fragment=fragment), float)
        seconds, spread = time_to_max(summary, fragment)
        stated = format_uncertain(seconds, spread, 0, "s", missing="n/a")
        curve = hv.Curve((x, y), kdims=[kdim], vdims=[vdim], label=f"{group} (max at {stated})")
        tooltips = [("group", group), (kdim.pprint_label, f"@{{{name}}}"),
                    (vdim.pprint_label, "@{intensity}")]  # fmt: skip
        elements.append(curve.opts(color=colour, line_dash=dash, tools=["hover"],
                                   hover_tooltips=tooltips, hover_mode="vline",
                                   backend="bokeh"))  # fmt: skip
        elements += _time_marker(profile, name, seconds, spread, colour, dash)
    for index, (group, summary) in enumerate(summaries.items()):
        depth, spread = cei_markers(summary)
        if depth is not None and name == "depth" and group in profiles:
            label = f"{group} CEI {format_uncertain(depth, spread, 2, 'nm')}"
            line = hv.Curve(([depth, depth], [0.0, 1.05]), kdims=[kdim], vdims=[vdim], label=label)
            elements.append(line.opts(color="#777777", line_dash=group_style(index).dash,
                                      line_width=1, backend="bokeh"))  # fmt: skip
    hooks = [_time_axis(rate)] if rate else []
    title = f"{fragment}: normalised depth profiles"
    return hv.Overlay(elements).opts(
        width=WIDTH, height=HEIGHT + 90, legend_position="bottom", legend_cols=2, title=title,
        hooks=hooks, ylim=(-0.02, 1.15), backend="bokeh",
    )  # fmt: skip


def _legend_entry(kdim: hv.Dimension, vdim: hv.Dimension, label: str, dash: str) -> hv.Curve:
    curve = hv.Curve(([np.nan], [np.nan]), kdims=[kdim], vdims=[vdim], label=label)
    return curve.opts(color="#999999", line_dash=dash, backend="bokeh")


def _time_marker(
    profile: xr.DataArray,
    axis: str,
    seconds: float | None,
    spread: float | None,
    colour: str,
    dash: str,
) -> list[hv.Element]:
    """Mark the time to maximum on the profile's axis (depth via the profile's own scale)."""
    if seconds is None:
        return []
    times = np.asarray(profile["sputter_time"], float)
    scale = np.asarray(profile[axis], float)

    def position(t: float) -> float:
        return float(np.interp(t, times, scale))

    markers: list[hv.Element] = []
    if spread:
        band = hv.VSpan(position(seconds - spread), position(seconds + spread))
        markers.append(band.opts(color=colour, alpha=0.12, backend="bokeh"))
    line = hv.VLine(position(seconds))
    markers.append(line.opts(color=colour, line_dash=dash, line_width=1, backend="bokeh"))
    return markers


def thickness_comparison(
    maps: Mapping[str, xr.DataArray], summaries: Mapping[str, Mapping[str, Any]], bins: int = 30
) -> hv.Layout:
    """CEI thickness maps of every group on one colour scale, and their histograms overlaid.

    Parameters
    ----------
    maps
        ``{group: thickness(y, x)}`` in nm (``tofsims cei --map``).
    summaries
        ``{group: summary}``: each map is titled with its group's CEI thickness ± uncertainty.
    bins
        Histogram bins, shared by all groups.

    Returns
    -------
    holoviews.Layout
        One map per group (same colour range), then the histograms (line dash per group).
    """
    values = np.concatenate([np.asarray(m, float).ravel() for m in maps.values()])
    values = values[np.isfinite(values)]
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
    edges = np.linspace(low, high if high > low else low + 1.0, bins + 1)
    panels, histograms = [], []
    thickness = hv.Dimension("thickness", label="CEI thickness", unit="nm")
    cells = hv.Dimension("cells", label="Map cells", unit="count")
    for index, (group, cei_map) in enumerate(maps.items()):
        headline = cei_markers(summaries.get(group) or {})
        image, _ = thickness_map(
            cei_map, headline=headline if headline[0] is not None else None, clim=(low, high)
        )
        value, spread = headline
        title = f"{group}: CEI {format_uncertain(value, spread, 2, 'nm')}"
        panels.append(image.relabel(group).opts(title=title, backend="bokeh"))
        data = np.asarray(cei_map, float)
        frequencies, _ = np.histogram(data[np.isfinite(data)], bins=edges)
        histogram = hv.Histogram((edges, frequencies), kdims=[thickness], vdims=[cells],
                                 label=group)  # fmt: skip
        histograms.append(histogram.opts(fill_alpha=0.15 if index else 0.35, fill_color="#555555",
                                         line_dash=group_style(index).dash, line_color="black",
                                         tools=["hover"], backend="bokeh"))  # fmt: skip
    overlay = hv.Overlay(histograms).opts(
        width=SLICE_SIDE + 80, height=SLICE_SIDE, title="CEI thickness distribution",
        legend_position="top_right", backend="bokeh",
    )  # fmt: skip
    return hv.Layout([*panels, overlay]).opts(shared_axes=False, backend="bokeh")


def compared_fragments(
    profiles: Mapping[str, xr.DataArray], fragments: Sequence[str] | None
) -> list[str]:
    """Return the fragments to compare: those asked for, else every fragment of any group."""
    if fragments:
        return list(fragments)
    return list(dict.fromkeys(str(f) for p in profiles.values() for f in p["fragment"].values))
