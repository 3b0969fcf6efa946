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
from typing import Any, Literal

import holoviews as hv
import numpy as np
import xarray as xr

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
SLICE_SIDE = 360
Normalisation = Literal["total", "max"] | None


def _counts(volume: xr.Dataset | xr.DataArray) -> xr.DataArray:
    return volume["counts"] if isinstance(volume, xr.Dataset) else volume


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


def _interface_markers(
    interfaces: Mapping[str, float] | None, top: float, logy: bool
) -> list[hv.Element]:
    markers: list[hv.Element] = []
    for index, (label, position) in enumerate((interfaces or {}).items()):
        markers.append(
            hv.VLine(position)
            .opts(color="grey", line_dash="dotted", backend="bokeh")
            .opts(color="grey", linestyle=":", backend="matplotlib")
        )
        # one text line per interface, so labels of close interfaces never overlap
        height = top * (0.5**index if logy else 1 - 0.08 * index)
        markers.append(
            hv.Text(position, height, f" {label}", halign="left", valign="top", fontsize=9)
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
        ``{label: position}`` in ``axis`` units, drawn as dotted vertical lines.

    Returns
    -------
    holoviews.Overlay
        One curve per peak with hover values.
    """
    if axis not in profile.coords and axis != "scan":
        raise KeyError(f"the profile has no {axis!r} coordinate; use axis='sputter_time'")
    values = normalise_profile(profile, normalise)
    x = np.asarray(profile[axis])
    unit = {"sputter_time": "s", "depth": "nm", "scan": ""}[axis]
    xdim = hv.Dimension(axis, label=axis.replace("_", " ").capitalize(), unit=unit)
    ydim = hv.Dimension(
        "intensity",
        label="Intensity" if normalise is None else "Normalised intensity",
        unit="counts" if normalise is None else "",
    )
    names = peak_names(profile)
    curves, top = [], 1.0
    for index in select_peaks(profile, peaks):
        y = np.asarray(values.isel(peak=index), dtype=float)
        keep = np.isfinite(y) & ((y > 0) if logy else True)
        top = max(top, float(y[keep].max())) if keep.any() else top
        curves.append(hv.Curve((x[keep], y[keep]), kdims=[xdim], vdims=[ydim], label=names[index]))
    overlay = hv.Overlay([*curves, *_interface_markers(interfaces, top, logy)])
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


def _block_average(plane: xr.DataArray, max_pixels: int) -> xr.DataArray:
    """Average blocks of pixels lazily so that no side exceeds ``max_pixels``."""
    factors = {
        dim: -(-size // max_pixels) for dim, size in plane.sizes.items() if size > max_pixels
    }
    if not factors:
        return plane
    return plane.coarsen(factors, boundary="trim").mean()


def _image(plane: xr.DataArray, xdim: str, ydim: str, max_pixels: int) -> hv.Image:
    """Read one (lazy) plane and wrap it as an Image with ``xdim`` across and ``ydim`` down."""
    plane = _block_average(plane.transpose(ydim, xdim), max_pixels)
    data = np.asarray(plane, dtype=np.float32)  # half the bytes sent to the browser per step
    return hv.Image(
        (np.asarray(plane[xdim], float), np.asarray(plane[ydim], float), data),
        kdims=[xdim, ydim],
        vdims=[hv.Dimension("counts", label="Counts")],
    )


def _image_opts(image: hv.Image, *, invert_y: bool, title: str) -> hv.Image:
    return image.opts(
        cmap="viridis",
        colorbar=True,
        tools=["hover"],
        invert_yaxis=invert_y,
        width=SLICE_SIDE + 80,
        height=SLICE_SIDE,
        title=title,
        backend="bokeh",
    ).opts(cmap="viridis", colorbar=True, invert_yaxis=invert_y, title=title, backend="matplotlib")


def _scan_label(plane: xr.DataArray) -> str:
    """``"scan 12 (25.5 s, 31.0 nm)"`` from the scalar coordinates of one x–y plane."""
    parts = [
        f"{float(plane[name]):.4g} {unit}"
        for name, unit in (("sputter_time", "s"), ("depth", "nm"))
        if name in plane.coords
    ]
    scan = int(plane["scan"])
    return f"scan {scan}" + (f" ({', '.join(parts)})" if parts else "")


def slice_viewer(
    counts: xr.DataArray | xr.Dataset,
    fragment: str,
    *,
    max_pixels: int = 512,
) -> hv.Layout:
    """Browse a fragment volume: an x–y slice with a scan slider and linked x–z / y–z sections.

    Clicking (tapping) the x–y slice moves the cross-hair that chooses the row (x–z section)
    and the column (y–z section). Only what is shown is read from a dask-backed volume.
    Needs a live server (``operando serve``); see :func:`slice_holomap` for static HTML.

    Parameters
    ----------
    counts
        Fragment volume ``(fragment, scan, y, x)`` or the Dataset holding it.
    fragment
        Fragment to show (a value of the ``fragment`` coordinate).
    max_pixels
        Largest number of pixels shown along any side; larger planes are block-averaged.

    Returns
    -------
    holoviews.Layout
        ``[x–y slice with cross-hair, x–z section, y–z section]`` of DynamicMaps sharing the
        ``scan`` slider.
    """
    cube = _counts(counts).sel(fragment=fragment)
    scans = [int(s) for s in cube["scan"].values]
    scan_dim = hv.Dimension("scan", label="Scan", values=scans, default=scans[0])
    x0 = float(cube["x"].values[cube.sizes["x"] // 2])
    y0 = float(cube["y"].values[cube.sizes["y"] // 2])

    def xy_slice(scan: int) -> hv.Image:
        plane = cube.sel(scan=scan)
        image = _image(plane, "x", "y", max_pixels)
        return _image_opts(image, invert_y=True, title=f"{fragment}, {_scan_label(plane)}")

    xy = hv.DynamicMap(xy_slice, kdims=[scan_dim])
    tap = hv.streams.Tap(source=xy, x=x0, y=y0)

    def crosshair(x: float, y: float) -> hv.Overlay:
        return hv.VLine(x).opts(color="white") * hv.HLine(y).opts(color="white")

    def _nearest(dim: str, value: float) -> Any:
        return cube[dim].sel({dim: value}, method="nearest").item()

    def xz_section(x: float, y: float) -> hv.Image:
        row = _nearest("y", y)
        image = _image(cube.sel(y=row), "x", "scan", max_pixels)
        return _image_opts(image, invert_y=True, title=f"x–z section at y = {row}")

    def yz_section(x: float, y: float) -> hv.Image:
        column = _nearest("x", x)
        image = _image(cube.sel(x=column), "y", "scan", max_pixels)
        return _image_opts(image, invert_y=True, title=f"y–z section at x = {column}")

    def scan_line(scan: int) -> hv.HLine:
        return hv.HLine(scan).opts(color="white")

    # Sections depend on the tap only (memoised), so moving the slider only moves the line.
    cross = hv.DynamicMap(crosshair, streams=[tap])
    xz = hv.DynamicMap(xz_section, streams=[tap]) * hv.DynamicMap(scan_line, kdims=[scan_dim])
    yz = hv.DynamicMap(yz_section, streams=[tap]) * hv.DynamicMap(scan_line, kdims=[scan_dim])
    return (xy * cross + xz + yz).cols(3).opts(shared_axes=False)


def slice_holomap(
    counts: xr.DataArray | xr.Dataset,
    fragment: str,
    *,
    max_frames: int = 20,
    max_pixels: int = 256,
) -> hv.HoloMap:
    """x–y slices at evenly spaced scans, for static HTML with an embedded scan slider.

    Parameters
    ----------
    counts
        Fragment volume ``(fragment, scan, y, x)`` or the Dataset holding it.
    fragment
        Fragment to show.
    max_frames
        Number of scans embedded at most (each frame adds to the file size).
    max_pixels
        Largest number of pixels along a side (block-averaged above).

    Returns
    -------
    holoviews.HoloMap
        Keyed by ``scan``.
    """
    cube = _counts(counts).sel(fragment=fragment)
    count = cube.sizes["scan"]
    picks = np.unique(np.linspace(0, count - 1, min(max_frames, count)).round().astype(int))
    frames = {}
    for index in picks:
        scan = int(cube["scan"].values[index])
        image = _image(cube.isel(scan=index), "x", "y", max_pixels)
        frames[scan] = _image_opts(image, invert_y=True, title=f"{fragment}")
    return hv.HoloMap(frames, kdims=[hv.Dimension("scan", label="Scan")])


def _stretch(plane: np.ndarray, percentile: float) -> np.ndarray:
    finite = plane[np.isfinite(plane)]
    top = np.percentile(finite, percentile) if finite.size else 0.0
    if top <= 0:
        return np.zeros_like(plane)
    return np.clip(np.nan_to_num(plane) / top, 0.0, 1.0)


def rgb_overlay(
    counts: xr.DataArray | xr.Dataset,
    fragments: Sequence[str],
    *,
    scans: int | slice | None = None,
    percentile: float = 99.5,
    max_pixels: int = 512,
) -> hv.RGB:
    """Three fragments as the red, green and blue channels of one image.

    Parameters
    ----------
    counts
        Fragment volume ``(fragment, scan, y, x)`` or the Dataset holding it.
    fragments
        Exactly three fragments: red, green, blue.
    scans
        One scan index, a slice of scan indices summed, or ``None`` for the sum over all scans.
    percentile
        Each channel is scaled so that this percentile of its pixels is full intensity.
    max_pixels
        Largest number of pixels along a side (block-averaged above).

    Returns
    -------
    holoviews.RGB
    """
    if len(fragments) != 3:
        raise ValueError(f"an RGB overlay needs exactly three fragments, got {len(fragments)}")
    cube = _counts(counts).sel(fragment=list(fragments))
    if scans is None:
        planes = cube.sum("scan")
    elif isinstance(scans, slice):
        planes = cube.isel(scan=scans).sum("scan")
    else:
        planes = cube.isel(scan=scans)
    planes = _block_average(planes.transpose("fragment", "y", "x"), max_pixels)
    data = np.asarray(planes, dtype=float)
    channels = [_stretch(data[i], percentile) for i in range(3)]
    xs, ys = np.asarray(planes["x"], float), np.asarray(planes["y"], float)
    title = f"R: {fragments[0]}  G: {fragments[1]}  B: {fragments[2]}"
    rgb = hv.RGB((xs, ys, *channels), kdims=["x", "y"], vdims=["R", "G", "B"])
    return rgb.opts(
        invert_yaxis=True,
        width=SLICE_SIDE + 40,
        height=SLICE_SIDE,
        tools=["hover"],
        title=title,
        backend="bokeh",
    ).opts(invert_yaxis=True, title=title, backend="matplotlib")


def thickness_map(thickness: xr.DataArray, *, bins: int = 30) -> hv.Layout:
    """CEI thickness map with a colour bar, beside the histogram of its values.

    Parameters
    ----------
    thickness
        ``DataArray(y, x)`` in nm; NaN pixels (undetermined) are left blank and not counted.
    bins
        Number of histogram bins.

    Returns
    -------
    holoviews.Layout
        ``[map, histogram]``; the map title gives the median and the number of valid pixels.
    """
    unit = str(thickness.attrs.get("units", "nm"))
    plane = thickness.transpose("y", "x")
    data = np.asarray(plane, dtype=float)
    finite = data[np.isfinite(data)]
    median = float(np.median(finite)) if finite.size else float("nan")
    vdim = hv.Dimension("thickness", label="CEI thickness", unit=unit)
    image = hv.Image(
        (np.asarray(plane["x"], float), np.asarray(plane["y"], float), data),
        kdims=["x", "y"],
        vdims=[vdim],
    )
    title = f"CEI thickness: median {median:.3g} {unit}, {finite.size} of {data.size} pixels"
    image = image.opts(
        cmap="magma",
        colorbar=True,
        tools=["hover"],
        invert_yaxis=True,
        clipping_colors={"NaN": "white"},
        width=SLICE_SIDE + 100,
        height=SLICE_SIDE,
        title=title,
        backend="bokeh",
    ).opts(cmap="magma", colorbar=True, invert_yaxis=True, title=title, backend="matplotlib")
    edges, frequencies = _histogram(finite, bins)
    histogram = hv.Histogram((edges, frequencies), kdims=[vdim], vdims=["pixels"]).opts(
        tools=["hover"],
        width=SLICE_SIDE,
        height=SLICE_SIDE,
        title="Thickness distribution",
        backend="bokeh",
    )
    return image + histogram


def _histogram(values: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    if values.size == 0:
        return np.array([0.0, 1.0]), np.array([0])
    frequencies, edges = np.histogram(values, bins=bins)
    return edges, frequencies


def volume_3d(
    counts: xr.DataArray | xr.Dataset,
    fragment: str,
    *,
    max_size: int = 64,
    z_spacing: float = 1.0,
) -> Any:
    """Render one fragment volume in 3D (Panel ``VTKVolume``, WebGL in the browser).

    Parameters
    ----------
    counts
        Fragment volume ``(fragment, scan, y, x)`` or the Dataset holding it.
    fragment
        Fragment to render.
    max_size
        Largest number of voxels along any axis; the volume is block-averaged (lazily) down to
        it before it is read, so a 256×256×500 volume becomes 64×64×63 voxels (~1 MB).
    z_spacing
        Voxel height relative to the pixel width (scans are usually much thinner than pixels;
        raise it to stretch the depth axis).

    Returns
    -------
    panel.pane.VTKVolume
        Array ordered ``(x, y, scan)`` as VTK expects.
    """
    import panel as pn

    cube = _block_average(_counts(counts).sel(fragment=fragment), max_size)
    data = np.asarray(cube.transpose("x", "y", "scan"), dtype=np.float32)
    return pn.pane.VTKVolume(
        data,
        spacing=(1.0, 1.0, z_spacing),
        colormap="Black-Body Radiation",
        width=600,
        height=500,
        display_slices=False,
        render_background="#ffffff",
    )
