"""HoloViews/Panel views of TOF-SIMS data: depth profiles, slices, RGB overlays, CEI maps, 3D.

No I/O happens here; save the returned objects with :mod:`pipelines.report` or show them with
``operando serve``. Views of fragment volumes stay lazy: only the slice being shown is read
from a dask-backed volume, and planes larger than ``max_pixels`` along a side are block-averaged
(lazily, before they are read) — the role datashader's ``rasterize`` would play.

Inputs
------
``profile``
    Depth profile ``Dataset(scan, peak)`` with ``intensity`` (counts per data point) and the
    coordinates ``sputter_time`` (s), ``peak_label``, ``fragment``, ``kind``, and optionally
    ``depth`` (nm) along ``scan`` (``docs/conventions.md``).
``counts``
    Fragment volume ``DataArray(fragment, scan, y, x)`` (or the Dataset holding ``counts``),
    usually dask-backed; ``sputter_time`` (s) and optionally ``depth`` (nm) along ``scan``.
``thickness``
    CEI thickness map ``DataArray(y, x)`` in nm (``NaN`` where undetermined).
``interfaces``
    ``{label: position}`` on the profile's x axis (s for ``sputter_time``, nm for ``depth``),
    e.g. ``{"CEI/NMC": 312.0}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import holoviews as hv
import numpy as np
import xarray as xr

from tofsims.image_views import rgb_overlay, slice_holomap, slice_viewer, thickness_map, volume_3d
from tofsims.palette import fragment_colour

import holoviews.plotting.bokeh  # isort: skip - registers the bokeh options
import holoviews.plotting.mpl  # isort: skip - registers the matplotlib options

__all__ = [
    "depth_profile",
    "normalise_profile",
    "peak_names",
    "rgb_overlay",
    "select_peaks",
    "slice_holomap",
    "slice_viewer",
    "thickness_map",
    "volume_3d",
]

WIDTH = 800
HEIGHT = 400
Normalisation = Literal["total", "max"] | None


#: Axis of each profile coordinate: label and unit (never empty).
PROFILE_AXES = {
    "sputter_time": ("Sputter time", "s"),
    "depth": ("Depth", "nm"),
    "scan": ("Scan", "number"),
}
#: Unit of each normalisation of :func:`normalise_profile`.
NORMALISED_UNITS = {None: "counts", "max": "I/I_max", "total": "I/I_total"}


def normalise_profile(profile: xr.Dataset, method: Normalisation = None) -> xr.DataArray:
    """Intensities of a depth profile, optionally normalised.

    Parameters
    ----------
    profile
        Depth profile ``Dataset(scan, peak)``.
    method
        ``None`` (raw counts), ``"total"`` (divide by the ``kind == "total"`` peak, or by the sum
        of the single peaks when there is none) or ``"max"`` (each peak divided by its maximum).

    Returns
    -------
    xarray.DataArray
        ``(scan, peak)``; lazy when the input is dask-backed.
    """
    intensity = profile["intensity"]
    if method is None:
        return intensity
    if method == "max":
        return (intensity / intensity.max("scan")).assign_attrs(units="1", long_name="I / max I")
    if method == "total":
        kinds = np.asarray(profile["kind"]) if "kind" in profile.coords else None
        if kinds is not None and (kinds == "total").any():
            total = intensity.isel(peak=int(np.flatnonzero(kinds == "total")[0]))
        else:
            singles = intensity if kinds is None else intensity.isel(peak=kinds == "single")
            total = singles.sum("peak")
        ratio = intensity / total.where(total > 0)
        return ratio.assign_attrs(units="1", long_name="I / total")
    raise ValueError(f"unknown normalisation {method!r} (use None, 'total' or 'max')")


def peak_names(profile: xr.Dataset) -> list[str]:
    """Return the label of every peak of a depth profile (``peak_label``, else ``peak``)."""
    labels = (
        profile["peak_label"].values if "peak_label" in profile.coords else profile["peak"].values
    )
    return [str(label) for label in labels]


def select_peaks(profile: xr.Dataset, peaks: Sequence[str] | None) -> list[int]:
    """Return the indices of the named peaks (labels or fragments), or of every single peak."""
    names = peak_names(profile)
    fragments = (
        [str(f) for f in profile["fragment"].values] if "fragment" in profile.coords else names
    )
    if peaks is None:
        if "kind" in profile.coords:
            return [i for i, kind in enumerate(profile["kind"].values) if kind == "single"]
        return list(range(len(names)))
    chosen = []
    for peak in peaks:
        matches = [i for i in range(len(names)) if peak in (names[i], fragments[i])]
        if not matches:
            raise KeyError(f"no peak {peak!r} in the profile (labels: {', '.join(names)})")
        chosen.append(matches[0])
    return chosen


def _fragments(profile: xr.Dataset) -> list[str]:
    """Return the fragment of every peak (its label when the profile has no ``fragment``)."""
    if "fragment" in profile.coords:
        return [str(f) for f in profile["fragment"].values]
    return peak_names(profile)


def _named(curve: hv.Curve, series: str, name: str, colour: str) -> hv.Curve:
    """Colour a curve and make its hover tooltip name it (``peak: LiF2-``)."""
    dims = [*curve.kdims, *curve.vdims]
    tooltips = [(series, name), *((d.pprint_label, f"@{{{d.name}}}") for d in dims)]
    return curve.opts(color=colour, tools=["hover"], hover_tooltips=tooltips, backend="bokeh").opts(
        color=colour, backend="matplotlib"
    )


#: Line styles of successive interfaces (Bokeh dash, matplotlib style), so each is told apart
#: in the legend.
INTERFACE_STYLES = (("dotted", ":"), ("dashed", "--"), ("dashdot", "-."), ("solid", "-"))


def _interface_markers(
    interfaces: Mapping[str, float] | None,
    span: tuple[float, float],
    kdim: hv.Dimension,
    vdim: hv.Dimension,
) -> list[hv.Element]:
    """Each interface as a vertical grey line named in the legend (no text on the data)."""
    markers: list[hv.Element] = []
    for index, (label, position) in enumerate((interfaces or {}).items()):
        dash, style = INTERFACE_STYLES[index % len(INTERFACE_STYLES)]
        line = hv.Curve(([position] * 2, list(span)), kdims=[kdim], vdims=[vdim], label=label)
        markers.append(
            line.opts(color="#555555", line_dash=dash, line_width=1.5, backend="bokeh").opts(
                color="#555555", linestyle=style, linewidth=1.0, backend="matplotlib"
            )
        )
    return markers


def depth_profile(
    profile: xr.Dataset,
    peaks: Sequence[str] | None = None,
    *,
    logy: bool = True,
    normalise: Normalisation = None,
    axis: Literal["sputter_time", "depth", "scan"] = "sputter_time",
    interfaces: Mapping[str, float] | None = None,
) -> hv.Overlay:
    """Depth profile: intensity of each peak against sputter time or depth.

    Parameters
    ----------
    profile
        Depth profile ``Dataset(scan, peak)``.
    peaks
        Peak labels or fragments to draw (default: every ``kind == "single"`` peak).
    logy
        Logarithmic intensity axis (non-positive values are dropped from the curves).
    normalise
        See :func:`normalise_profile`.
    axis
        ``"sputter_time"`` (s), ``"depth"`` (nm, needs a depth-calibrated profile) or ``"scan"``.
    interfaces
        ``{label: position}`` in ``axis`` units, drawn as grey vertical lines named in the
        legend (see :func:`tofsims.cei_views.interfaces_on` to move depths onto another axis).

    Returns
    -------
    holoviews.Overlay
        One curve per peak, in the fragment's colour (:mod:`tofsims.palette`), with hover
        values naming the peak.
    """
    if axis not in profile.coords and axis != "scan":
        raise KeyError(f"the profile has no {axis!r} coordinate; use axis='sputter_time'")
    values = normalise_profile(profile, normalise)
    x = np.asarray(profile[axis])
    label, unit = PROFILE_AXES[axis]
    xdim = hv.Dimension(axis, label=label, unit=unit)
    ydim = hv.Dimension(
        "intensity",
        label="Intensity" if normalise is None else "Normalised intensity",
        unit=NORMALISED_UNITS[normalise],
    )
    names = peak_names(profile)
    fragments = _fragments(profile)
    curves, top, bottom = [], 1.0, np.inf
    for index in select_peaks(profile, peaks):
        y = np.asarray(values.isel(peak=index), dtype=float)
        keep = np.isfinite(y) & ((y > 0) if logy else True)
        top = max(top, float(y[keep].max())) if keep.any() else top
        bottom = min(bottom, float(y[keep].min())) if keep.any() else bottom
        curve = hv.Curve((x[keep], y[keep]), kdims=[xdim], vdims=[ydim], label=names[index])
        curves.append(_named(curve, "peak", names[index], fragment_colour(fragments[index])))
    bottom = bottom if np.isfinite(bottom) else (1.0 if logy else 0.0)
    span = (bottom, top)
    overlay = hv.Overlay([*curves, *_interface_markers(interfaces, span, xdim, ydim)])
    title = "Depth profile" + ("" if normalise is None else f" (normalised: {normalise})")
    return overlay.opts(
        {
            "Curve": {"tools": ["hover"], "hover_mode": "vline", "logy": logy},
            "Overlay": {
                "width": WIDTH,
                "height": HEIGHT,
                "legend_position": "right",
                "title": title,
            },
        },
        backend="bokeh",
    ).opts(
        {
            "Curve": {"logy": logy},
            "Overlay": {"fig_inches": (8, 4), "legend_position": "right", "title": title},
        },
        backend="matplotlib",
    )
