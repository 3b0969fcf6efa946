"""Image views of TOF-SIMS volumes and maps: slices, sections, RGB overlays, CEI maps, 3D.

Every image is drawn on physical axes: ``x``/``y`` in µm from the field of view
(:mod:`tofsims.lateral`; "pixel" when it is unknown) and, in sections, depth in nm (sputter
time in s for a volume without a depth scale). Views of dask-backed volumes stay lazy: only the
slice being shown is read, and planes larger than ``max_pixels`` along a side are
block-averaged (lazily, before they are read). No I/O; re-exported by :mod:`tofsims.plots`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import holoviews as hv
import numpy as np
import xarray as xr

from operando_core.formatting import format_uncertain, format_value
from tofsims.lateral import lateral_um, with_scale

import holoviews.plotting.bokeh  # isort: skip - registers the bokeh options
import holoviews.plotting.mpl  # isort: skip - registers the matplotlib options

__all__ = [
    "rgb_overlay",
    "slice_holomap",
    "slice_viewer",
    "thickness_map",
    "volume_3d",
]

SLICE_SIDE = 360
#: VTK colour map of the 3D view (one of the vtk.js presets the browser knows) and its control
#: points (position, red, green, blue; ParaView's definition), from which the colour bar beside
#: it is drawn (interpolated in RGB).
VOLUME_COLOURMAP = "Black-Body Radiation"
BLACK_BODY = (
    (0.0, 0.0, 0.0, 0.0),
    (0.4, 230 / 255, 0.0, 0.0),
    (0.8, 230 / 255, 230 / 255, 0.0),
    (1.0, 1.0, 1.0, 1.0),
)


def _colour_bar_palette(points: tuple[tuple[float, ...], ...] = BLACK_BODY) -> list[str]:
    """256 hex colours interpolated between the control points of a VTK colour map."""
    stops = np.asarray(points, dtype=float)
    at = np.linspace(0.0, 1.0, 256)
    channels = [np.interp(at, stops[:, 0], stops[:, i]) for i in (1, 2, 3)]
    return [
        f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}"
        for r, g, b in zip(*channels, strict=True)
    ]


def counts_um(volume: xr.Dataset | xr.DataArray) -> xr.DataArray:
    """Return the counts of a volume with ``x``/``y`` in µm (when the field of view is known)."""
    counts = with_scale(volume["counts"], volume) if isinstance(volume, xr.Dataset) else volume
    return lateral_um(counts)


def _block_average(plane: xr.DataArray, max_pixels: int) -> xr.DataArray:
    """Average blocks of pixels lazily so that no side exceeds ``max_pixels``."""
    factors = {
        dim: -(-size // max_pixels) for dim, size in plane.sizes.items() if size > max_pixels
    }
    if not factors:
        return plane
    return plane.coarsen(factors, boundary="trim").mean()


def depth_axis(data: xr.DataArray | xr.Dataset) -> tuple[str, hv.Dimension]:
    """Return the physical axis along ``scan``: depth (nm), else sputter time (s), else scan."""
    for name, label, unit in (("depth", "Depth", "nm"), ("sputter_time", "Sputter time", "s")):
        if name in data.coords and data[name].dims == ("scan",):
            return name, hv.Dimension(name, label=label, unit=unit)
    return "scan", hv.Dimension("scan", label="Scan", unit="number")


def _evenly_spaced(values: np.ndarray) -> bool:
    steps = np.diff(values)
    return steps.size == 0 or bool(np.allclose(steps, steps[0], rtol=1e-3, atol=0))


def _axis(plane: xr.DataArray, dim: str) -> tuple[np.ndarray, hv.Dimension]:
    """Coordinates and dimension of one image axis, in physical units."""
    if dim == "scan":
        name, dimension = depth_axis(plane)
        values = np.asarray(plane[name], float)
        if _evenly_spaced(values):
            return values, dimension
        name, dimension = "scan", hv.Dimension("scan", label="Scan", unit="number")
        return np.asarray(plane["scan"], float), dimension
    unit = str(plane[dim].attrs.get("units", "pixel"))
    return np.asarray(plane[dim], float), hv.Dimension(dim, label=dim, unit=unit)


def _image(plane: xr.DataArray, xdim: str, ydim: str, max_pixels: int) -> hv.Image:
    """Read one (lazy) plane and wrap it as an Image with ``xdim`` across and ``ydim`` down."""
    plane = _block_average(plane.transpose(ydim, xdim), max_pixels)
    data = np.asarray(plane, dtype=np.float32)  # half the bytes sent to the browser per step
    (xs, across), (ys, down) = _axis(plane, xdim), _axis(plane, ydim)
    counts = hv.Dimension("counts", label="Counts", unit="counts per pixel")
    return hv.Image((xs, ys, data), kdims=[across, down], vdims=[counts])


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


def _position(cube: xr.DataArray, dim: str, value: float) -> str:
    unit = str(cube[dim].attrs.get("units", "pixel"))
    return f"{value:.3g} {unit}"


def slice_viewer(
    counts: xr.DataArray | xr.Dataset,
    fragment: str,
    *,
    max_pixels: int = 512,
) -> hv.Layout:
    """Browse a fragment volume: an x–y slice with a scan slider and linked x–z / y–z sections.

    Clicking (tapping) the x–y slice moves the cross-hair that chooses the row (x–z section)
    and the column (y–z section). Lateral axes are in µm, the sections' vertical axis in nm of
    depth (s of sputter time without a depth scale). Only what is shown is read from a
    dask-backed volume. Needs a live server (``operando serve``); see :func:`slice_holomap`
    for static HTML.

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
    cube = counts_um(counts).sel(fragment=fragment)
    scans = [int(s) for s in cube["scan"].values]
    scan_dim = hv.Dimension("scan", label="Scan", values=scans, default=scans[0])
    x0 = float(cube["x"].values[cube.sizes["x"] // 2])
    y0 = float(cube["y"].values[cube.sizes["y"] // 2])
    vertical, _ = depth_axis(cube)

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
        return _image_opts(
            image, invert_y=True, title=f"x–z section at y = {_position(cube, 'y', row)}"
        )

    def yz_section(x: float, y: float) -> hv.Image:
        column = _nearest("x", x)
        image = _image(cube.sel(x=column), "y", "scan", max_pixels)
        return _image_opts(
            image, invert_y=True, title=f"y–z section at x = {_position(cube, 'x', column)}"
        )

    def scan_line(scan: int) -> hv.HLine:
        position = float(cube[vertical].sel(scan=scan)) if vertical != "scan" else scan
        return hv.HLine(position).opts(color="white")

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
    cube = counts_um(counts).sel(fragment=fragment)
    count = cube.sizes["scan"]
    picks = np.unique(np.linspace(0, count - 1, min(max_frames, count)).round().astype(int))
    frames = {}
    for index in picks:
        plane = cube.isel(scan=index)
        image = _image(plane, "x", "y", max_pixels)
        frames[int(plane["scan"])] = _image_opts(
            image, invert_y=True, title=f"{fragment}, {_scan_label(plane)}"
        )
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
    """Three fragments as the red, green and blue channels of one image (axes in µm).

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
    cube = counts_um(counts).sel(fragment=list(fragments))
    if scans is None:
        planes = cube.sum("scan")
    elif isinstance(scans, slice):
        planes = cube.isel(scan=scans).sum("scan")
    else:
        planes = cube.isel(scan=scans)
    planes = _block_average(planes.transpose("fragment", "y", "x"), max_pixels)
    data = np.asarray(planes, dtype=float)
    channels = [_stretch(data[i], percentile) for i in range(3)]
    (xs, across), (ys, down) = _axis(planes, "x"), _axis(planes, "y")
    title = f"R: {fragments[0]}  G: {fragments[1]}  B: {fragments[2]}"
    rgb = hv.RGB((xs, ys, *channels), kdims=[across, down], vdims=["R", "G", "B"])
    return rgb.opts(
        invert_yaxis=True,
        width=SLICE_SIDE + 40,
        height=SLICE_SIDE,
        tools=["hover"],
        title=title,
        backend="bokeh",
    ).opts(invert_yaxis=True, title=title, backend="matplotlib")


def thickness_map(
    thickness: xr.DataArray,
    *,
    bins: int = 30,
    headline: tuple[float | None, float | None] | None = None,
    clim: tuple[float, float] | None = None,
) -> hv.Layout:
    """CEI thickness map (µm axes) with a colour bar, beside the histogram of its cells.

    Parameters
    ----------
    thickness
        ``DataArray(y, x)`` in nm; NaN cells (undetermined) are left blank and not counted.
        Its ``pixel_size_um`` (or ``field_of_view_m``) attribute gives the lateral scale.
    bins
        Number of histogram bins.
    headline
        ``(value, uncertainty)`` in nm to title the map with — the summary's CEI thickness
        (mean of the map ± its combined uncertainty), so title and tables agree; default:
        the mean of the map ± its standard deviation across cells.
    clim
        Colour range in nm (to put several maps on one scale); default: the data's range.

    Returns
    -------
    holoviews.Layout
        ``[map, histogram]``; the title gives the mean and the number of valid map cells.
    """
    unit = str(thickness.attrs.get("units", "nm"))
    plane = lateral_um(thickness).transpose("y", "x")
    data = np.asarray(plane, dtype=float)
    finite = data[np.isfinite(data)]
    vdim = hv.Dimension("thickness", label="CEI thickness", unit=unit)
    (xs, across), (ys, down) = _axis(plane, "x"), _axis(plane, "y")
    image = hv.Image((xs, ys, data), kdims=[across, down], vdims=[vdim])
    if headline is None:
        mean = float(finite.mean()) if finite.size else None
        spread = float(finite.std(ddof=1)) if finite.size > 1 else None
        stated = f"mean {format_uncertain(mean, spread, 2, unit)} (± SD of cells)"
    else:
        stated = f"mean {format_uncertain(*headline, 2, unit)}"
    title = f"CEI thickness: {stated}, {finite.size} of {data.size} cells"
    style = {"cmap": "magma", "colorbar": True, "invert_yaxis": True, "title": title}
    if clim is not None:
        style["clim"] = clim
    image = image.opts(
        tools=["hover"],
        clipping_colors={"NaN": "white"},
        width=SLICE_SIDE + 140,
        height=SLICE_SIDE,
        backend="bokeh",
        **style,
    ).opts(backend="matplotlib", **style)
    edges, frequencies = _histogram(finite, bins)
    cells = hv.Dimension("cells", label="Map cells", unit="count")
    histogram = hv.Histogram((edges, frequencies), kdims=[vdim], vdims=[cells]).opts(
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


def _ticks(low: float, high: float, scene_low: float, scene_high: float) -> dict[str, Any]:
    """VTK axis ticks: ~5 round values in data units, placed in scene coordinates."""
    from matplotlib.ticker import MaxNLocator

    values = [v for v in MaxNLocator(5).tick_values(low, high) if low <= v <= high]
    scale = (scene_high - scene_low) / (high - low) if high > low else 1.0
    return {
        "ticks": [scene_low + (v - low) * scale for v in values],
        "labels": [format_value(v, 0 if high - low >= 10 else 1) for v in values],
    }


def volume_3d(
    counts: xr.DataArray | xr.Dataset,
    fragment: str,
    *,
    max_size: int = 64,
    depth_exaggeration: float | None = None,
) -> Any:
    """Render one fragment volume in 3D, at an oblique angle, with axes and a colour bar.

    Parameters
    ----------
    counts
        Fragment volume ``(fragment, scan, y, x)`` or the Dataset holding it.
    fragment
        Fragment to render.
    max_size
        Largest number of voxels along any axis; the volume is block-averaged (lazily) down to
        it before it is read, so a 256×256×500 volume becomes 64×64×63 voxels (~1 MB).
    depth_exaggeration
        Scene units per nm of depth relative to per µm laterally; default: the depth drawn
        half as long as the field is wide (a CEI of 10 nm under a 100 µm field would
        otherwise be a flat sheet). The depth axis is labelled in true nm.

    Returns
    -------
    panel.Row
        A ``VTKVolume`` (WebGL; array ordered ``(x, y, depth)``; axes with ticks in µm and nm,
        a camera looking obliquely from above the surface corner) beside its colour bar
        (counts per voxel, same colour map).
    """
    import panel as pn

    cube = _block_average(counts_um(counts).sel(fragment=fragment), max_size)
    data = np.asarray(cube.transpose("x", "y", "scan"), dtype=np.float32)
    xs, ys = np.asarray(cube["x"], float), np.asarray(cube["y"], float)
    name, vertical = depth_axis(cube)
    zs = np.asarray(cube[name], float)
    step_xy = float(xs[1] - xs[0]) if xs.size > 1 else 1.0
    width = step_xy * max(xs.size, ys.size)
    extent = float(zs[-1] - zs[0]) if zs.size > 1 else 1.0
    exaggeration = depth_exaggeration or (0.5 * width / extent if extent > 0 else 1.0)
    step_z = (extent / max(zs.size - 1, 1)) * exaggeration
    depth_scene = step_z * max(zs.size - 1, 1)
    lateral_unit = str(cube["x"].attrs.get("units", "pixel"))
    axes = {
        "xticker": _ticks(xs[0], xs[-1], 0.0, step_xy * (xs.size - 1)),
        "yticker": _ticks(ys[0], ys[-1], 0.0, step_xy * (ys.size - 1)),
        "zticker": _ticks(zs[0], zs[-1], 0.0, depth_scene),
        "origin": [0, 0, 0],
        "fontsize": 14,
        "digits": 1,
        "show_grid": False,
        "grid_opacity": 0.3,
        "axes_opacity": 1.0,
    }
    centre = [step_xy * (xs.size - 1) / 2, step_xy * (ys.size - 1) / 2, depth_scene / 2]
    distance = 2.6 * max(width, depth_scene)
    camera = {
        "position": [
            centre[0] + 0.8 * distance,
            centre[1] - 1.1 * distance,
            centre[2] - 0.9 * distance,
        ],
        "focalPoint": centre,
        "viewUp": [0, 0, -1],  # depth grows downwards: the surface is on top
    }
    volume = pn.pane.VTKVolume(
        data,
        spacing=(step_xy, step_xy, step_z),
        colormap=VOLUME_COLOURMAP,
        axes=axes,
        camera=camera,
        orientation_widget=True,
        width=600,
        height=500,
        display_slices=False,
        render_background="#ffffff",
    )
    title = (
        f"{fragment}: x, y in {lateral_unit}, {vertical.label.lower()} in {vertical.unit} "
        f"(drawn ×{exaggeration:.3g})"
    )
    return pn.Column(
        pn.pane.Markdown(f"**{title}**"),
        pn.Row(volume, _colour_bar(data, f"{fragment} counts per voxel")),
    )


def _colour_bar(data: np.ndarray, label: str) -> hv.Image:
    """Draw the 3D view's colour bar: a thin image of the value range in the same colour map."""
    finite = data[np.isfinite(data)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    ramp = np.linspace(high, low, 256)[:, None]  # rows from the top of the image down
    value = hv.Dimension("value", label=label, unit="counts")
    image = hv.Image(
        ramp, bounds=(0, low, 1, high), kdims=["bar", value], vdims=[hv.Dimension("counts")]
    )
    return image.opts(
        cmap=_colour_bar_palette(),
        width=110,
        height=450,
        xaxis=None,
        ylabel=f"{label} (counts)",
        yaxis="right",
        toolbar=None,
        backend="bokeh",
    )
