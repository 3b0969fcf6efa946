"""Paper figures comparing TOF-SIMS results of several groups: matplotlib, sized for print.

Depth profiles per fragment, CEI thickness maps on one colour scale with their histograms,
and an offscreen 3D render of a fragment volume per group. Colours come from
:mod:`tofsims.palette` (one per fragment, as in the HTML views and the app); groups are told
apart by line style (:func:`operando_core.print_style.group_style`). Inputs as in
:mod:`tofsims.comparison`. Every function returns a :class:`matplotlib.figure.Figure`
(no pyplot, no I/O); save it with :func:`pipelines.report.save_figure`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr
from scipy.ndimage import uniform_filter

from operando_core.formatting import format_uncertain
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
from tofsims.comparison import (
    ABSENT_FRACTION,
    cei_markers,
    detected,
    normalised,
    sputter_rate,
    time_to_max,
)
from tofsims.image_views import counts_um, depth_axis
from tofsims.lateral import lateral_um
from tofsims.palette import fragment_colour

__all__ = ["profile_comparison_figure", "thickness_comparison_figure", "volume_render_figure"]

LETTERS = "abcdefghijklmnopqrstuvwxyz"
#: Voxels per side of a 3D render at most (block-averaged down to it).
RENDER_VOXELS = 40
RENDER_COLOURMAP = "inferno"


def _wide(width_mm: float) -> bool:
    return width_mm > SINGLE_COLUMN_MM + 1


def profile_comparison_figure(
    profiles: Mapping[str, xr.DataArray],
    summaries: Mapping[str, Mapping[str, Any]],
    fragments: Sequence[str],
    *,
    absent_fraction: float = ABSENT_FRACTION,
    width_mm: float = DOUBLE_COLUMN_MM,
) -> Any:
    """Normalised depth profiles of each fragment, every group on the same axes.

    Parameters
    ----------
    profiles, summaries
        ``{group: DataArray(fragment, scan)}`` (counts per pixel, with ``depth``) and the
        groups' CEI summaries (:mod:`tofsims.comparison`).
    fragments
        One panel per fragment, in its colour.
    absent_fraction
        A group where the fragment is not detected (:func:`tofsims.comparison.detected`) is
        named "not detected" in the legend and not drawn.
    width_mm
        Printed width: three panels a row at 175 mm, two at 85 mm.

    Returns
    -------
    matplotlib.figure.Figure
        Depth (nm) below, sputter time (s) above when the groups share a sputter rate; the
        time to maximum of each group as a line with a ±uncertainty band (value in the
        legend), the CEI thickness as a grey line.
    """
    found = detected(profiles, absent_fraction)
    rates = {sputter_rate(s) for s in summaries.values()}
    rate = rates.pop() if len(rates) == 1 else None
    columns = 3 if _wide(width_mm) else 2
    rows = -(-len(fragments) // columns)
    with print_style():
        # below each panel a legend of two lines per group (maximum, CEI)
        legend_mm = 6 * len(profiles) + 4
        figure = print_figure(width_mm, ((62 if _wide(width_mm) else 58) + legend_mm) * rows)
        figure.get_layout_engine().set(hspace=0.08)
        panels = panel_grid(figure, len(fragments), columns)
        for letter, axes, fragment in zip(LETTERS, panels, fragments, strict=False):
            _draw_profiles(axes, profiles, summaries, fragment, found)
            axes.set_xlabel("Depth (nm)")
            axes.set_ylabel("I / I$_{max}$")
            axes.set_ylim(-0.02, 1.2)
            if rate is not None:
                top = axes.secondary_xaxis(
                    "top", functions=(lambda d, r=rate: d / r, lambda t, r=rate: t * r)
                )
                top.set_xlabel("Sputter time (s)")
            panel_title(axes, letter, fragment)
            # below the axes: a legend inside would hide the profiles
            legend_below(axes, handlelength=2.2)
    return figure


def _draw_profiles(
    axes: Any,
    profiles: Mapping[str, xr.DataArray],
    summaries: Mapping[str, Mapping[str, Any]],
    fragment: str,
    found: Mapping[str, Mapping[str, bool]],
) -> None:
    colour = fragment_colour(fragment)
    for index, (group, profile) in enumerate(profiles.items()):
        style = group_style(index)
        if not found.get(group, {}).get(fragment, False):
            reason = "not detected" if fragment in found.get(group, {}) else "not measured"
            axes.plot(
                [], [], color="#999999", linestyle=style.linestyle, label=f"{group}: {reason}"
            )
            continue
        depth = np.asarray(profile["depth"], float)
        times = np.asarray(profile["sputter_time"], float)
        values = np.asarray(normalised(profile).sel(fragment=fragment), float)
        seconds, spread = time_to_max(summaries.get(group) or {}, fragment)
        stated = format_uncertain(seconds, spread, 0, "s", missing="n/a")
        axes.plot(depth, values, color=colour, linestyle=style.linestyle,
                  label=f"{group} (max at {stated})")  # fmt: skip
        if seconds is not None:
            if spread:
                low, high = np.interp([seconds - spread, seconds + spread], times, depth)
                axes.axvspan(low, high, color=colour, alpha=0.12, lw=0)
            at = float(np.interp(seconds, times, depth))
            axes.axvline(at, color=colour, linestyle=style.linestyle, linewidth=0.6)
        cei, spread = cei_markers(summaries.get(group) or {})
        if cei is not None:
            label = f"{group} CEI {format_uncertain(cei, spread, 2, 'nm')}"
            axes.axvline(cei, color="#777777", linestyle=style.linestyle, linewidth=0.6,
                         label=label)  # fmt: skip


def thickness_comparison_figure(
    maps: Mapping[str, xr.DataArray],
    summaries: Mapping[str, Mapping[str, Any]],
    *,
    bins: int = 30,
    width_mm: float = DOUBLE_COLUMN_MM,
) -> Any:
    """CEI thickness maps of every group on one colour scale, and their histograms.

    Parameters
    ----------
    maps
        ``{group: thickness(y, x)}`` in nm with their lateral scale (``pixel_size_um``).
    summaries
        The groups' CEI summaries: each map is titled with its CEI thickness ± uncertainty.
    bins
        Histogram bins, shared by the groups.
    width_mm
        Printed width: maps and histogram in one row at 175 mm, two per row at 85 mm.

    Returns
    -------
    matplotlib.figure.Figure
        Maps in µm with one colour bar (nm), histogram lines per group (line style).
    """
    values = np.concatenate([np.asarray(m, float).ravel() for m in maps.values()])
    values = values[np.isfinite(values)]
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
    edges = np.linspace(low, high if high > low else low + 1.0, bins + 1)
    count = len(maps) + 1
    columns = count if _wide(width_mm) else 2
    rows = -(-count // columns)
    with print_style():
        figure = print_figure(width_mm, (58 if _wide(width_mm) else 45) * rows + 6)
        panels = panel_grid(figure, count, columns)
        image = None
        for index, (axes, (group, cei_map)) in enumerate(zip(panels, maps.items(), strict=False)):
            plane = lateral_um(cei_map).transpose("y", "x")
            xs, ys = np.asarray(plane["x"], float), np.asarray(plane["y"], float)
            unit = str(plane["x"].attrs.get("units", "pixel"))
            image = axes.pcolormesh(_edges(xs), _edges(ys), np.asarray(plane, float),
                                    cmap="magma", vmin=low, vmax=high)  # fmt: skip
            axes.set_aspect("equal")
            axes.invert_yaxis()
            axes.set_xlabel(f"x ({unit})")
            axes.set_ylabel(f"y ({unit})")
            value, spread = cei_markers(summaries.get(group) or {})
            panel_title(
                axes, LETTERS[index], f"{group}: {format_uncertain(value, spread, 2, 'nm')}"
            )
            style = group_style(index)
            data = np.asarray(cei_map, float)
            panels[-1].hist(data[np.isfinite(data)], bins=edges, histtype="step", color="black",
                            linestyle=style.linestyle, label=group)  # fmt: skip
        if image is not None:
            figure.colorbar(image, ax=panels[:-1], label="CEI thickness (nm)", shrink=0.9)
        histogram = panels[-1]
        histogram.set_xlabel("CEI thickness (nm)")
        histogram.set_ylabel("Map cells (count)")
        histogram.legend(loc="upper right")
        panel_title(histogram, LETTERS[len(maps)], "Distribution")
    return figure


def _edges(centres: np.ndarray) -> np.ndarray:
    """Cell edges from evenly spaced centres (for ``pcolormesh``)."""
    step = float(centres[1] - centres[0]) if centres.size > 1 else 1.0
    return np.concatenate([centres - step / 2, [centres[-1] + step / 2]])


def volume_render_figure(
    volumes: Mapping[str, xr.Dataset | xr.DataArray],
    fragment: str,
    *,
    threshold: float = 0.3,
    width_mm: float = DOUBLE_COLUMN_MM,
) -> Any:
    """Render one fragment's volume in 3D per group, on one colour scale (offscreen).

    Each volume is block-averaged to at most :data:`RENDER_VOXELS` voxels a side and smoothed
    by a 3×3×3 running mean; voxels whose
    counts reach ``threshold`` of the highest voxel of all groups are drawn as points coloured
    (and made more opaque) by their counts — a volume rendering seen obliquely from above the
    surface, depth growing downwards.

    Parameters
    ----------
    volumes
        ``{group: counts(fragment, scan, y, x)}`` (or the Datasets holding them) with the
        lateral scale attributes and a ``depth`` (else ``sputter_time``) coordinate.
    fragment
        The fragment rendered.
    threshold
        Fraction of the highest voxel below which voxels are left out (0–1).
    width_mm
        Printed width: the groups side by side at 175 mm, stacked at 85 mm.

    Returns
    -------
    matplotlib.figure.Figure
        One 3D panel per group with x, y in µm and depth in nm, and one colour bar (counts per
        pixel, voxel mean).
    """
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    cubes = {group: _render_cube(volume, fragment) for group, volume in volumes.items()}
    top = max((float(np.nanmax(c.values)) for c in cubes.values() if c.size), default=1.0)
    norm = Normalize(0.0, top if top > 0 else 1.0)
    wide = _wide(width_mm)
    columns = min(len(cubes), 3) if wide else 1
    rows = -(-len(cubes) // columns)
    with print_style():
        figure = print_figure(width_mm, (70 if wide else 62) * rows + 4)
        figure.get_layout_engine().set(wspace=0.12)
        panels = panel_grid(figure, len(cubes), columns, projection="3d")
        for letter, axes, (group, cube) in zip(LETTERS, panels, cubes.items(), strict=False):
            _render(axes, cube, norm, threshold)
            panel_title(axes, letter, f"{group}: {fragment}")
        figure.colorbar(ScalarMappable(norm, RENDER_COLOURMAP), ax=panels, shrink=0.7,
                        pad=0.08, label=f"{fragment} (counts per pixel, 3×3×3 mean)")  # fmt: skip
    return figure


def _render_cube(volume: xr.Dataset | xr.DataArray, fragment: str) -> xr.DataArray:
    cube = counts_um(volume).sel(fragment=fragment)
    factors = {
        dim: -(-size // RENDER_VOXELS) for dim, size in cube.sizes.items() if size > RENDER_VOXELS
    }
    if factors:
        cube = cube.coarsen(factors, boundary="trim").mean()
    cube = cube.transpose("scan", "y", "x").load()
    # a 3×3×3 running mean: single-count voxels of a sparse volume would hide the layers
    return cube.copy(data=uniform_filter(np.asarray(cube, float), size=3, mode="nearest"))


def _render(axes: Any, cube: xr.DataArray, norm: Any, threshold: float) -> None:
    name, vertical = depth_axis(cube)
    depth = np.asarray(cube[name], float)
    ys, xs = np.asarray(cube["y"], float), np.asarray(cube["x"], float)
    z, y, x = np.meshgrid(depth, ys, xs, indexing="ij")
    values = np.asarray(cube, float)
    keep = np.isfinite(values) & (values >= threshold * norm.vmax)
    import matplotlib

    colours = matplotlib.colormaps[RENDER_COLOURMAP](norm(values[keep]))
    colours[:, 3] = 0.15 + 0.6 * np.clip(norm(values[keep]), 0, 1)  # brighter = more opaque
    axes.scatter(x[keep], y[keep], z[keep], c=colours, s=4, depthshade=False, linewidths=0)
    unit = str(cube["x"].attrs.get("units", "pixel"))
    axes.set_xlim(xs.min(), xs.max())
    axes.set_ylim(ys.min(), ys.max())
    axes.set_zlim(depth.max(), depth.min())  # depth grows downwards
    axes.set_xlabel(f"x ({unit})", labelpad=-4)
    axes.set_ylabel(f"y ({unit})", labelpad=-4)
    axes.set_zlabel(vertical.pprint_label, labelpad=-2)
    axes.tick_params(pad=-2)
    axes.set_box_aspect((1, 1, 0.7))
    axes.view_init(elev=24, azim=-58)
