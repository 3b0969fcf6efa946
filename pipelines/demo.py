"""The pieces of ``operando demo``: output folder guard, comparison table, HTML report.

The demo writes the generated example study (:mod:`pipelines.example_study`) into
``DIR/study/``, runs ``operando batch`` on it with ``-o DIR`` (so ``DIR/summary.csv`` and
``DIR/index.html`` are the batch's own table and index), then compares the measured numbers
with the truth the study was generated from (``DIR/study/truth.json``) on the console and in
``DIR/report.html``.

A value that was not determined (no onset, no coating) is shown as "—" / "none", never as a
number.
"""

from __future__ import annotations

import html
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.atomic import write_json_atomic, write_netcdf_atomic

if TYPE_CHECKING:
    pass

__all__ = [
    "DEMO_MARKER",
    "DemoOutputError",
    "SampleComparison",
    "build_report",
    "comparison_html",
    "comparison_rows",
    "format_comparison",
    "prepare_output",
    "serve_paths",
    "write_flux_views",
]

#: File that marks a folder as written by ``operando demo`` (safe to write into again).
DEMO_MARKER = ".operando-demo.json"
#: What the demo itself writes into its folder (besides the batch's entries).
DEMO_ENTRIES = ("study", "views", "report.html", DEMO_MARKER)
GASES = ("O2", "CO2")
MISSING = "—"


class DemoOutputError(ValueError):
    """The demo's output folder holds something else; the demo will not write into it."""


def prepare_output(folder: Path, *, force: bool = False) -> bool:
    """Make sure ``folder`` may receive the demo's outputs and mark it as a demo folder.

    Parameters
    ----------
    folder
        The demo's output folder (created if missing).
    force
        Write into a non-empty folder that is not an earlier demo output, provided it holds
        nothing of the names the demo writes (nothing in it is deleted or overwritten).

    Returns
    -------
    bool
        ``True`` when the folder already held an earlier demo output (a rerun).

    Raises
    ------
    DemoOutputError
        ``folder`` is a file, or a non-empty folder without the demo marker and ``force`` is
        false, or holds (with ``force``) an entry of a name the demo writes.
    """
    if folder.exists() and not folder.is_dir():
        raise DemoOutputError(f"{folder}: exists and is not a folder")
    rerun = (folder / DEMO_MARKER).is_file()
    from pipelines.outputs import LOCK_NAME

    held = folder.is_dir() and any(p.name != LOCK_NAME for p in folder.iterdir())
    if held and not rerun and not force:
        raise DemoOutputError(
            f"{folder}: folder is not empty and is not an earlier 'operando demo' output; "
            "choose another -o DIR or pass --force to write into it anyway"
        )
    if folder.is_dir() and not rerun:
        clashes = [name for name in demo_entries() if os.path.lexists(folder / name)]
        if clashes:
            raise DemoOutputError(
                f"{folder}: already holds {', '.join(clashes)}, which the demo would write; "
                "--force writes only beside existing files, never over them: choose another "
                "-o DIR"
            )
    folder.mkdir(parents=True, exist_ok=True)
    from pipelines._version import __version__

    write_json_atomic(folder / DEMO_MARKER, {"written_by": "operando demo", "version": __version__})
    return rerun


def demo_entries() -> list[str]:
    """Names of everything the demo and its batch write into the demo's folder."""
    from pipelines.batch import BATCH_ENTRIES
    from pipelines.example_study import DEMS_SAMPLES, TOFSIMS_SAMPLES

    experiments = [f"{s}-dems" for s in DEMS_SAMPLES] + [f"{s}-sims" for s in TOFSIMS_SAMPLES]
    return [*DEMO_ENTRIES, *BATCH_ENTRIES, *experiments]


@dataclass
class SampleComparison:
    """Measured and true numbers of one sample (DEMS and TOF-SIMS experiments together).

    Onsets in V, evolved gas in µmol/g, thicknesses in nm; ``None`` = not determined (for the
    measured values) or does not exist (for the truth).
    """

    sample: str
    onset_V: dict[str, float | None] = field(default_factory=dict)
    onset_uncertainty_V: dict[str, float | None] = field(default_factory=dict)
    evolved_umol_per_g: dict[str, float | None] = field(default_factory=dict)
    cei_thickness_nm: float | None = None
    cei_uncertainty_nm: float | None = None
    coating_thickness_nm: float | None = None
    true_onset_V: dict[str, float | None] = field(default_factory=dict)
    true_evolved_umol_per_g: dict[str, float | None] = field(default_factory=dict)
    true_cei_thickness_nm: float | None = None
    true_coating_thickness_nm: float | None = None


def _number(value: Any) -> float | None:
    """Return a finite float, or ``None`` for empty/NaN/missing cells."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def comparison_rows(
    table: list[Mapping[str, Any]], truth: Mapping[str, Any]
) -> list[SampleComparison]:
    """Merge the batch table rows of each sample with the study's truth.

    Parameters
    ----------
    table
        Rows of the batch table (``summary.csv`` as dicts) with ``experiment``, ``kind`` and
        ``sample`` columns.
    truth
        ``truth.json`` of the study: experiment name -> true values.

    Returns
    -------
    list of SampleComparison
        One per sample, in table order.
    """
    samples: dict[str, SampleComparison] = {}
    for row in table:
        sample = str(row["sample"])
        entry = samples.setdefault(sample, SampleComparison(sample))
        true = truth.get(str(row["experiment"]), {})
        if row["kind"] == "dems":
            for gas in GASES:
                entry.onset_V[gas] = _number(row.get(f"{gas}_onset_V"))
                entry.onset_uncertainty_V[gas] = _number(row.get(f"{gas}_onset_uncertainty_V"))
                entry.evolved_umol_per_g[gas] = _number(row.get(f"{gas}_evolved_umol_per_g"))
                entry.true_onset_V[gas] = _number((true.get("onsets_V") or {}).get(gas))
                evolved = (true.get("evolved") or {}).get(gas) or {}
                entry.true_evolved_umol_per_g[gas] = _number(evolved.get("umol_per_g"))
        elif row["kind"] == "tofsims":
            entry.cei_thickness_nm = _number(row.get("cei_thickness_nm_mean"))
            entry.cei_uncertainty_nm = _number(row.get("cei_thickness_nm_uncertainty"))
            entry.coating_thickness_nm = _number(row.get("coating_thickness_nm"))
            entry.true_cei_thickness_nm = _number(true.get("cei_thickness_nm_mean"))
            coating = _number(true.get("coating_thickness_nm"))
            entry.true_coating_thickness_nm = coating if coating else None
    return list(samples.values())


def _with_uncertainty(value: float | None, uncertainty: float | None, digits: int) -> str:
    if value is None:
        return MISSING
    if uncertainty is None:
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} ± {uncertainty:.{digits}f}"


def _plain(value: float | None, digits: int, missing: str = MISSING) -> str:
    return missing if value is None else f"{value:.{digits}f}"


def _cells(entry: SampleComparison) -> tuple[list[str], list[str]]:
    """Measured and true cells of one sample, in the column order of :data:`COLUMNS`."""
    measured = [
        _with_uncertainty(entry.onset_V.get(g), entry.onset_uncertainty_V.get(g), 3) for g in GASES
    ]
    measured.append(" / ".join(_plain(entry.evolved_umol_per_g.get(g), 1) for g in GASES))
    measured.append(_with_uncertainty(entry.cei_thickness_nm, entry.cei_uncertainty_nm, 2))
    measured.append(_plain(entry.coating_thickness_nm, 2, "none"))
    true = [_plain(entry.true_onset_V.get(g), 3) for g in GASES]
    true.append(" / ".join(_plain(entry.true_evolved_umol_per_g.get(g), 1) for g in GASES))
    true.append(_plain(entry.true_cei_thickness_nm, 2))
    true.append(_plain(entry.true_coating_thickness_nm, 2, "none"))
    return measured, true


COLUMNS = (
    "sample",
    "O2 onset (V)",
    "CO2 onset (V)",
    "O2 / CO2 evolved (µmol/g)",
    "CEI thickness (nm)",
    "coating (nm)",
)


def format_comparison(rows: list[SampleComparison]) -> str:
    """Format the comparison table for the console: each sample's measured line, then its truth."""
    lines = [list(COLUMNS)]
    for entry in rows:
        measured, true = _cells(entry)
        lines.append([entry.sample, *measured])
        lines.append(["  truth", *true])
    widths = [max(len(line[i]) for line in lines) for i in range(len(COLUMNS))]
    text = [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    ]
    text.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(text)


def comparison_html(rows: list[SampleComparison]) -> str:
    """Render the comparison table as an HTML ``<table>`` (truth in italics under each sample)."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
    body = []
    for entry in rows:
        measured, true = _cells(entry)
        cells = "".join(f"<td>{html.escape(c)}</td>" for c in [entry.sample, *measured])
        truth = "".join(f"<td><i>{html.escape(c)}</i></td>" for c in ["truth", *true])
        body.append(f"<tr>{cells}</tr><tr>{truth}</tr>")
    return (
        '<table class="comparison"><thead><tr>'
        + head
        + "</tr></thead><tbody>"
        + "".join(body)
        + "</tbody></table>"
    )


def _onsets(summary_path: Path) -> dict[str, Any]:
    """Onsets ``{gas: {"potential_V", "uncertainty_V", "method"}}`` of a DEMS summary."""
    summary = json.loads(summary_path.read_text())
    return {
        gas: onset
        for gas, onset in (summary.get("onsets") or {}).items()
        if onset.get("potential_V") is not None
    }


def write_flux_views(outdir: Path, experiments: list[str]) -> list[Path]:
    """Write ``DIR/views/<experiment>-flux.nc``: flux with potential/cycle coordinates and onsets.

    ``operando serve`` recognises these as gas flux (flux against time and potential with onset
    markers, gas per cycle).
    """
    import xarray as xr

    from dems.result_views import result_flux

    written = []
    for name in experiments:
        with xr.open_zarr(outdir / name / "result.zarr", consolidated=False) as result:
            flux = result_flux(result).load()
        dataset = flux.to_dataset(name="flux")
        dataset.attrs["onsets_json"] = json.dumps(_onsets(outdir / name / "summary.json"))
        dataset.attrs["source_file"] = str((outdir / name / "result.zarr").resolve())
        target = outdir / "views" / f"{name}-flux.nc"
        write_netcdf_atomic(dataset, target)
        written.append(target)
    return written


def serve_paths(outdir: Path, table: list[Mapping[str, Any]]) -> list[Path]:
    """Paths for ``operando serve``: flux views, fragment volumes and CEI maps, uniquely named.

    The app names each dataset after its file, and every TOF-SIMS experiment writes
    ``volume.zarr`` and ``cei_map.nc``; ``DIR/views/<experiment>-volume.zarr`` (a symbolic link,
    or the original path where links are not allowed) and ``DIR/views/<experiment>-cei_map.nc``
    (a link or copy, small) keep the samples apart in the dataset picker.
    """
    import shutil

    paths = sorted((outdir / "views").glob("*-flux.nc"))
    for row in table:
        name = str(row["experiment"])
        for output in ("volume.zarr", "cei_map.nc"):
            source = outdir / name / output
            if not source.exists():
                continue
            alias = outdir / "views" / f"{name}-{output}"
            if alias.is_symlink() or alias.is_file():
                alias.unlink()
            try:
                alias.symlink_to(Path("..") / name / output, target_is_directory=source.is_dir())
            except OSError:  # no symbolic links (e.g. Windows without the privilege)
                if source.is_dir():
                    alias = source
                else:
                    shutil.copyfile(source, alias)
            paths.append(alias)
    return paths


def _flux_panels(outdir: Path, experiments: Mapping[str, str]) -> list[Any]:
    """Flux against potential (charge) of each DEMS experiment, titled by its sample."""
    import panel as pn
    import xarray as xr

    from dems.plots import flux_vs_potential
    from dems.result_views import result_flux

    panels = []
    for name, sample in experiments.items():
        with xr.open_zarr(outdir / name / "result.zarr", consolidated=False) as result:
            flux = result_flux(result).load()
        view = flux_vs_potential(flux, _onsets(outdir / name / "summary.json"))
        view = view.opts(title=f"{sample}: gas flux during charge", backend="bokeh")
        panels.append(pn.pane.HoloViews(view, linked_axes=False))
    return panels


def _thickness_panels(outdir: Path, experiments: Mapping[str, str]) -> list[Any]:
    """CEI thickness map and histogram of each TOF-SIMS experiment."""
    import panel as pn
    import xarray as xr

    from tofsims.plots import thickness_map

    panels = []
    for name, sample in experiments.items():
        with xr.open_dataset(outdir / name / "cei_map.nc") as cei:
            thickness = cei["thickness"].load()
        panels.append((sample, pn.pane.HoloViews(thickness_map(thickness), linked_axes=False)))
    return panels


def build_report(
    outdir: Path, rows: list[SampleComparison], table: list[Mapping[str, Any]]
) -> Path:
    """Write ``DIR/report.html``: comparison table, flux vs potential, CEI maps (offline).

    Parameters
    ----------
    outdir
        The demo's output folder (the batch output, with one folder per experiment).
    rows
        From :func:`comparison_rows`.
    table
        The batch table rows (for the experiment names, kinds and samples).

    Returns
    -------
    pathlib.Path
        The written report.
    """
    import panel as pn

    from pipelines.report import save_html

    dems = {str(r["experiment"]): str(r["sample"]) for r in table if r["kind"] == "dems"}
    sims = {str(r["experiment"]): str(r["sample"]) for r in table if r["kind"] == "tofsims"}
    intro = pn.pane.HTML(
        "<h1>operando demo: pristine vs modified cathode</h1>"
        "<p>Generated study (files in <code>study/raw/</code>), processed with "
        "<code>operando batch</code>. Measured values with their uncertainty; the "
        "<i>truth</i> the data were generated from below each sample. "
        "&ldquo;—&rdquo; = no onset detected.</p>"
        + comparison_html(rows)
        + '<p>Batch table and outputs of every experiment: <a href="index.html">index.html</a>'
        ' · <a href="summary.csv">summary.csv</a></p>',
        width=1000,
    )
    flux = pn.Row(*_flux_panels(outdir, dems))
    maps = pn.Column(
        *[
            pn.Column(pn.pane.Markdown(f"### CEI thickness: {s}"), v)
            for s, v in _thickness_panels(outdir, sims)
        ]
    )
    page = pn.Column(
        intro, pn.pane.Markdown("## DEMS"), flux, pn.pane.Markdown("## TOF-SIMS"), maps
    )
    return save_html(page, outdir / "report.html", title="operando demo")
