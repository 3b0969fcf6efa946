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
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from operando_core.formatting import format_uncertain, format_value
from pipelines.atomic import write_json_atomic

__all__ = [
    "DEMO_MARKER",
    "DemoOutputError",
    "SampleComparison",
    "build_report",
    "comparison_html",
    "comparison_rows",
    "format_comparison",
    "prepare_output",
]

#: File that marks a folder as written by ``operando demo`` (safe to write into again).
DEMO_MARKER = ".operando-demo.json"
#: What the demo itself writes into its folder (besides the batch's entries).
DEMO_ENTRIES = ("study", "report.html", DEMO_MARKER)
GASES = ("O2", "CO2")


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
    evolved_uncertainty_umol_per_g: dict[str, float | None] = field(default_factory=dict)
    cei_thickness_nm: float | None = None
    cei_uncertainty_nm: float | None = None
    coating_thickness_nm: float | None = None
    coating_uncertainty_nm: float | None = None
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
                entry.evolved_uncertainty_umol_per_g[gas] = _number(
                    row.get(f"{gas}_evolved_umol_per_g_uncertainty")
                )
                entry.true_onset_V[gas] = _number((true.get("onsets_V") or {}).get(gas))
                evolved = (true.get("evolved") or {}).get(gas) or {}
                entry.true_evolved_umol_per_g[gas] = _number(evolved.get("umol_per_g"))
        elif row["kind"] == "tofsims":
            entry.cei_thickness_nm = _number(row.get("cei_thickness_nm_mean"))
            entry.cei_uncertainty_nm = _number(row.get("cei_thickness_nm_uncertainty"))
            entry.coating_thickness_nm = _number(row.get("coating_thickness_nm"))
            entry.coating_uncertainty_nm = _number(row.get("coating_thickness_uncertainty_nm"))
            entry.true_cei_thickness_nm = _number(true.get("cei_thickness_nm_mean"))
            coating = _number(true.get("coating_thickness_nm"))
            entry.true_coating_thickness_nm = coating if coating else None
    return list(samples.values())


def _cells(entry: SampleComparison) -> tuple[list[str], list[str]]:
    """Measured and true cells of one sample, in the column order of :data:`COLUMNS`."""
    measured = [
        format_uncertain(entry.onset_V.get(g), entry.onset_uncertainty_V.get(g), 3) for g in GASES
    ]
    measured.append(" / ".join(
        format_uncertain(entry.evolved_umol_per_g.get(g),
                         entry.evolved_uncertainty_umol_per_g.get(g), 1)
        for g in GASES
    ))  # fmt: skip
    measured.append(format_uncertain(entry.cei_thickness_nm, entry.cei_uncertainty_nm, 2))
    measured.append(
        format_uncertain(
            entry.coating_thickness_nm, entry.coating_uncertainty_nm, 2, missing="none"
        )
    )
    true = [format_value(entry.true_onset_V.get(g), 3) for g in GASES]
    true.append(" / ".join(format_value(entry.true_evolved_umol_per_g.get(g), 1) for g in GASES))
    true.append(format_value(entry.true_cei_thickness_nm, 2))
    true.append(format_value(entry.true_coating_thickness_nm, 2, "none"))
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


def build_report(
    outdir: Path, rows: list[SampleComparison], table: list[Mapping[str, Any]]
) -> Path:
    """Write ``DIR/report.html``: the comparison table and the samples' comparison views.

    The views are those of ``operando compare`` (shared axes and units, onsets and amounts
    with ±, normalised depth profiles with absent fragments said to be absent, CEI maps on
    one colour scale); the page loads BokehJS from the batch's shared ``DIR/_static`` copy
    (relative path, offline).

    Parameters
    ----------
    outdir
        The demo's output folder (the batch output, with one folder per experiment).
    rows
        From :func:`comparison_rows`.
    table
        The batch table rows (unused beyond the experiments ``rows`` were built from; kept
        for callers that pass it).

    Returns
    -------
    pathlib.Path
        The written report.
    """
    import panel as pn

    from pipelines.compare import CompareOptions, comparison_page, load_comparison
    from pipelines.report import save_html
    from pipelines.runners import SHARED_SCRIPTS

    intro = pn.pane.HTML(
        "<h1>operando demo: pristine vs modified cathode</h1>"
        "<p>Generated study (files in <code>study/raw/</code>), processed with "
        "<code>operando batch</code>. Measured values ± one standard uncertainty; the "
        "<i>truth</i> the data were generated from below each sample. "
        "&ldquo;—&rdquo; = no onset detected.</p>"
        + comparison_html(rows)
        + '<p>Batch table and outputs of every experiment: <a href="index.html">index.html</a>'
        ' · <a href="summary.csv">summary.csv</a></p>',
        width=1100,
    )
    options = CompareOptions()
    page = pn.Column(intro, comparison_page(load_comparison(outdir, options), options))
    return save_html(
        page, outdir / "report.html", title="operando demo", shared_scripts=outdir / SHARED_SCRIPTS
    )
