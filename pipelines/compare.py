"""``operando compare``: the results of a batch, grouped by a label, on shared axes and units.

:func:`load_comparison` reads a batch (or demo) output folder — each DEMS experiment's result
store and summary, each TOF-SIMS experiment's volume, CEI map and summary — and groups them by
a manifest label (``sample`` by default). :func:`comparison_page` lays the interactive views
out as one page (also the comparison tab of ``operando serve``); :func:`comparison_figures`
builds the print figures, each at a single-column (85 mm) and a double-column (175 mm) width;
:func:`write_comparison` writes the page (offline, inline resources) and every figure as PNG
(600 dpi), SVG and PDF.

The options class is light to import; xarray, HoloViews and matplotlib are imported by the
functions that need them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from operando_core.options import integer, number, option, text, validate
from pipelines.results import ExperimentResult, find_results, group_results
from tofsims.workflows.options import fragment_list

if TYPE_CHECKING:
    import xarray as xr

__all__ = [
    "FIGURE_WIDTHS_MM",
    "CompareOptions",
    "Comparison",
    "comparison_figures",
    "comparison_page",
    "load_comparison",
    "write_comparison",
]

#: Printed widths of every figure: a journal's single and double column (mm).
FIGURE_WIDTHS_MM = (85, 175)
PAGE_NAME = "index.html"


@dataclass(frozen=True)
class CompareOptions:
    """Options of ``operando compare``: how experiments are grouped and what is drawn."""

    by: str = option(
        "sample",
        convert=text,
        flag="--by",
        metavar="LABEL",
        help="Manifest label whose values form the compared groups (e.g. sample, coating).",
    )
    fragments: tuple[str, ...] | None = option(
        None,
        convert=fragment_list,
        flag="--fragments",
        metavar="LIST",
        help="Fragments whose depth profiles are compared, comma-separated "
        "[default: every fragment of the volumes].",
    )
    render: str | None = option(
        None,
        convert=text,
        flag="--render",
        metavar="FRAGMENT",
        help="Fragment rendered in 3D per group [default: the CEI marker of the summaries].",
    )
    absent_fraction: float = option(
        0.05,
        convert=number,
        greater_than=0,
        at_most=1,
        flag="--absent-below",
        metavar="FRACTION",
        help="A fragment whose peak is below this fraction of its strongest peak in any group "
        "is shown as not detected in that group.",
    )
    dpi: int = option(
        600,
        convert=integer,
        at_least=300,
        flag="--dpi",
        help="Resolution of the PNG figures (dots per inch at the printed width).",
    )

    def __post_init__(self) -> None:
        validate(self)


@dataclass
class Comparison:
    """The loaded results of a folder, grouped.

    Attributes
    ----------
    folder
        The batch output folder.
    by
        The label the groups are the values of.
    fluxes, onsets, amounts, amount_unit
        DEMS: ``{group: flux}`` (per gram when every run knows its mass), first-charge onsets,
        per-cycle amounts with their uncertainty, and their unit (``mol`` or ``mol/g``).
    profiles, volumes, maps, summaries
        TOF-SIMS: ``{group: ...}`` mean profiles (counts per pixel, with depth), volume
        stores (lazy), CEI maps and CEI summaries.
    counts
        TOF-SIMS: ``{group: which counts}`` of the profiles and volumes — those ``cei``
        analyses (:func:`tofsims.workflows.fragment_purity.analysis_volume`): fitted for a
        reconstructed GRD, ``window`` for an export.
    skipped
        Experiments that were not compared, with the reason.
    """

    folder: Path
    by: str
    fluxes: dict[str, xr.DataArray] = field(default_factory=dict)
    onsets: dict[str, Any] = field(default_factory=dict)
    amounts: dict[str, Any] = field(default_factory=dict)
    amount_unit: str = "mol"
    profiles: dict[str, xr.DataArray] = field(default_factory=dict)
    volumes: dict[str, xr.Dataset] = field(default_factory=dict)
    maps: dict[str, xr.DataArray] = field(default_factory=dict)
    summaries: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def groups(self) -> list[str]:
        """Every group, in order of first appearance."""
        names = [*self.fluxes, *self.profiles, *self.maps]
        return list(dict.fromkeys(names))


def _one_per_group(
    groups: Mapping[str, list[ExperimentResult]], kind: str, comparison: Comparison
) -> dict[str, ExperimentResult]:
    """Pick the experiment of ``kind`` of each group; extra ones are skipped, with the reason."""
    chosen = {}
    for group, results in groups.items():
        of_kind = [r for r in results if r.kind == kind]
        if not of_kind:
            continue
        chosen[group] = of_kind[0]
        for extra in of_kind[1:]:
            comparison.skipped[extra.name] = (
                f"a second {kind} experiment of {comparison.by} {group!r} "
                f"({of_kind[0].name} is compared); group by another label to compare it"
            )
    return chosen


def load_comparison(folder: str | os.PathLike[str], options: CompareOptions) -> Comparison:
    """Read the results of a batch output folder and group them by ``options.by``.

    Parameters
    ----------
    folder
        The ``-o`` folder of ``operando batch`` or ``operando demo``.
    options
        The grouping label and what is compared.

    Returns
    -------
    Comparison
        The data of every group (small arrays in memory; volumes lazy).

    Raises
    ------
    pipelines.results.ResultsFolderError
        No results in the folder, or an experiment without the label.
    """
    import xarray as xr

    from dems.result_views import amounts_from_summary, onsets_from_summary, per_gram, result_flux
    from tofsims.comparison import mean_profile, sputter_rate
    from tofsims.errors import TofsimsReadError
    from tofsims.io.volume_store import open_volume
    from tofsims.lateral import with_scale
    from tofsims.workflows.fragment_purity import analysis_volume

    results = find_results(folder)
    groups = group_results(results, options.by)
    comparison = Comparison(Path(folder), options.by)
    dems = _one_per_group(groups, "dems", comparison)
    stores = {}
    for group, result in dems.items():
        store = result.output("result.zarr") or result.output("result.nc")
        if store is None:
            comparison.skipped[result.name] = "no result store"
            continue
        opened = _open_result(store)
        if isinstance(opened, str):
            comparison.skipped[result.name] = opened
            continue
        if "flux" not in opened:
            comparison.skipped[result.name] = "processed without a calibration: no gas flux"
            continue
        stores[group] = (opened, result)
    specific = bool(stores) and all(per_gram(store) for store, _ in stores.values())
    comparison.amount_unit = "mol/g" if specific else "mol"
    for group, (store, result) in stores.items():
        comparison.fluxes[group] = result_flux(store, specific=specific).load()
        comparison.onsets[group] = onsets_from_summary(result.summary)[0]
        comparison.amounts[group] = amounts_from_summary(result.summary, specific=specific)
    for group, result in _one_per_group(groups, "tofsims", comparison).items():
        comparison.summaries[group] = result.summary
        volume_store = result.output("volume.zarr")
        if volume_store is not None:
            try:
                volume = open_volume(volume_store)
            except TofsimsReadError as err:
                comparison.skipped[result.name] = str(err)
                continue
            # the counts cei measured the CEI on: fitted where the store allows the fits
            volume = analysis_volume(volume)
            comparison.counts[group] = str(volume.attrs["counts"])
            rate = sputter_rate(result.summary)
            if rate is not None:
                from tofsims.depth import depth_constant_rate

                volume = depth_constant_rate(volume, rate)
            comparison.volumes[group] = volume
            comparison.profiles[group] = mean_profile(volume, rate).load()
        map_file = result.output("cei_map.nc")
        if map_file is not None:
            with xr.open_dataset(map_file) as cei_map:
                comparison.maps[group] = with_scale(cei_map["thickness"], cei_map).load()
        if volume_store is None and map_file is None:
            comparison.skipped[result.name] = "no volume and no CEI map (a depth profile input)"
    return comparison


def _open_result(store: Path) -> xr.Dataset | str:
    """Open a DEMS result store lazily, or say why it cannot be used (damaged, unreadable)."""
    import xarray as xr

    from operando_core.stores import store_damage

    try:
        if store.is_dir():
            if problem := store_damage(store):
                return f"{store}: unusable store: {problem}"
            return xr.open_zarr(store)
        return xr.open_dataset(store, chunks={})
    except (OSError, ValueError, KeyError, TypeError) as err:
        return f"{store}: unreadable result store ({err})"


def _render_fragment(comparison: Comparison, options: CompareOptions) -> str | None:
    if options.render:
        return options.render
    markers = [(s.get("input") or {}).get("marker") for s in comparison.summaries.values()]
    return next((m for m in markers if m), None)


def _fragments(comparison: Comparison, options: CompareOptions) -> list[str]:
    from tofsims.comparison import compared_fragments

    return compared_fragments(comparison.profiles, options.fragments)


def comparison_page(comparison: Comparison, options: CompareOptions) -> Any:
    """Every interactive comparison view of the groups, as one Panel column.

    Returns
    -------
    panel.Column
        DEMS: flux against potential per gas (one panel each) and the gas evolved per cycle;
        TOF-SIMS: normalised depth profiles per fragment, the CEI maps on one colour scale
        with their histograms, the 3D renders (images); a note of what was not compared.
    """
    import panel as pn

    from dems.comparison import amount_comparison, comparison_gases, flux_comparison
    from tofsims.comparison import profile_comparison, thickness_comparison

    groups = ", ".join(comparison.groups) or "none"
    sections: list[Any] = [
        pn.pane.Markdown(
            f"# Comparison by {comparison.by}: {groups}\n"
            "Values ± one standard uncertainty. Line dash (and bar shade) = group; colour = "
            "gas or fragment, as in every operando view.",
            disable_anchors=True,
        )
    ]
    if comparison.fluxes:
        gases = comparison_gases(comparison.fluxes, None)
        views = [flux_comparison(comparison.fluxes, comparison.onsets, gas) for gas in gases]
        sections += [pn.pane.Markdown("## DEMS"), pn.GridBox(*views, ncols=2)]
        sections.append(amount_comparison(comparison.amounts, comparison.amount_unit))
    if comparison.profiles:
        views = [
            profile_comparison(
                comparison.profiles,
                comparison.summaries,
                fragment,
                absent_fraction=options.absent_fraction,
            )
            for fragment in _fragments(comparison, options)
        ]
        sections += [
            pn.pane.Markdown("## TOF-SIMS depth profiles"),
            pn.pane.Markdown(counts_note(comparison.counts), disable_anchors=True),
            pn.GridBox(*views, ncols=2),
        ]
    if comparison.maps:
        sections += [
            pn.pane.Markdown("## CEI thickness maps"),
            thickness_comparison(comparison.maps, comparison.summaries),
        ]
    if comparison.skipped:
        lines = "\n".join(f"- {name}: {why}" for name, why in comparison.skipped.items())
        sections.append(pn.pane.Markdown(f"### Not compared\n{lines}", disable_anchors=True))
    return pn.Column(*sections)


def counts_note(counts: Mapping[str, str]) -> str:
    """Say which counts each group's profiles and 3D render are made of (one line)."""
    groups: dict[str, list[str]] = {}
    for group, kind in counts.items():
        groups.setdefault(kind, []).append(group)
    parts = [f"{', '.join(names)}: {kind}" for kind, names in groups.items()]
    return "Counts (as `tofsims cei` analyses them) — " + "; ".join(parts) + "."


def comparison_figures(
    comparison: Comparison, options: CompareOptions, width_mm: float
) -> dict[str, Callable[[], Any]]:
    """List the print figures of a comparison at one width, each built when called.

    Returns
    -------
    dict
        ``{name: build}``: ``dems_flux_vs_potential``, ``dems_gas_per_cycle``,
        ``tofsims_depth_profiles``, ``tofsims_cei_maps``, ``tofsims_3d_<fragment>`` — those
        the results allow; ``build()`` returns a matplotlib figure.
    """
    from dems.figures import amount_comparison_figure, flux_comparison_figure
    from tofsims.figures import (
        profile_comparison_figure,
        thickness_comparison_figure,
        volume_render_figure,
    )

    figures: dict[str, Callable[[], Any]] = {}
    if comparison.fluxes:
        figures["dems_flux_vs_potential"] = lambda: flux_comparison_figure(
            comparison.fluxes, comparison.onsets, width_mm=width_mm
        )
        figures["dems_gas_per_cycle"] = lambda: amount_comparison_figure(
            comparison.amounts, comparison.amount_unit, width_mm=width_mm
        )
    if comparison.profiles:
        fragments = _fragments(comparison, options)
        figures["tofsims_depth_profiles"] = lambda: profile_comparison_figure(
            comparison.profiles, comparison.summaries, fragments,
            absent_fraction=options.absent_fraction, width_mm=width_mm,
        )  # fmt: skip
    if comparison.maps:
        figures["tofsims_cei_maps"] = lambda: thickness_comparison_figure(
            comparison.maps, comparison.summaries, width_mm=width_mm
        )
    fragment = _render_fragment(comparison, options)
    volumes = {g: v for g, v in comparison.volumes.items() if fragment in v["fragment"].values}
    if fragment and volumes:
        figures[f"tofsims_3d_{_file_safe(fragment)}"] = lambda: volume_render_figure(
            volumes, fragment, width_mm=width_mm
        )
    return figures


def _file_safe(name: str) -> str:
    """``LiF2-`` -> ``LiF2-``; characters other than letters, digits, ``-`` and ``_`` -> ``_``."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def write_comparison(comparison: Comparison, options: CompareOptions, outdir: Path) -> list[Path]:
    """Write the comparison page and every figure (PNG, SVG, PDF at 85 and 175 mm) into a folder.

    The command writes into the staged folder of :func:`pipelines.outputs.publishing`, which
    replaces ``-o FIGDIR`` as a whole when everything is written.

    Parameters
    ----------
    comparison
        From :func:`load_comparison`.
    options
        The command's options (fragments, 3D render, resolution).
    outdir
        Output folder (created).

    Returns
    -------
    list of pathlib.Path
        The files written: ``<figure>_<width>mm.<png|svg|pdf>``, then ``index.html``
        (offline, self-contained).
    """
    import panel as pn

    from pipelines.report import FIGURE_FORMATS, rendering, save_figure, save_html

    outdir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    renders = []
    with rendering():
        for width in FIGURE_WIDTHS_MM:
            for name, build in comparison_figures(comparison, options, width).items():
                figure = build()
                for fmt in FIGURE_FORMATS:
                    target = outdir / f"{name}_{width}mm.{fmt}"
                    written.append(save_figure(figure, target, dpi=options.dpi))
                if name.startswith("tofsims_3d_") and width == max(FIGURE_WIDTHS_MM):
                    renders.append(_screen_png(figure))
        page = comparison_page(comparison, options)
        for render in renders:
            page.append(pn.pane.Markdown("## 3D render (offscreen, oblique view)"))
            page.append(pn.pane.PNG(render, width=900))
        title = f"operando compare — {comparison.folder.name} by {comparison.by}"
        written.append(save_html(page, outdir / PAGE_NAME, title=title))
    return written


def _screen_png(figure: Any) -> bytes:
    """Render the figure as a PNG for a screen (150 dpi), to embed in the page."""
    import io

    from operando_core.print_style import print_style

    buffer = io.BytesIO()
    with print_style():
        figure.savefig(buffer, format="png", dpi=150)
    return buffer.getvalue()
