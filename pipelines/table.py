"""The comparison table of a batch: one row per experiment, labels as columns.

Columns: ``experiment``, ``kind``, every label (``sample``, ``cycle`` ...), ``status``,
``error``, then the results: for DEMS ``<gas>_onset_V``, ``<gas>_onset_uncertainty_V``,
``<gas>_onset_method``, ``<gas>_evolved_umol``, ``<gas>_evolved_umol_uncertainty``,
``<gas>_evolved_umol_per_g``, ``<gas>_evolved_umol_per_g_uncertainty``, ``delay_s``;
for TOF-SIMS ``cei_thickness_nm_mean``/``_median``/``_std``/``_uncertainty``/``_whole_field``,
``cei_method``, ``coating_thickness_nm``, ``coating_thickness_uncertainty_nm``,
``cei_warnings``. A value that could not be determined is empty (CSV) / null (Parquet).
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

from operando_core.formatting import MISSING, format_uncertain
from pipelines.atomic import atomic_file, write_text_atomic
from pipelines.manifest import Experiment
from pipelines.runners import REPORT_NAME

__all__ = ["flatten_summary", "table_rows", "write_index", "write_table"]


def flatten_summary(kind: str, summary: dict[str, Any]) -> dict[str, Any]:
    """Turn an experiment's ``summary.json`` into flat table columns."""
    row: dict[str, Any] = {}
    if kind == "dems":
        for gas, onset in (summary.get("onsets") or {}).items():
            row[f"{gas}_onset_V"] = onset.get("potential_V")
            row[f"{gas}_onset_uncertainty_V"] = onset.get("uncertainty_V")
            row[f"{gas}_onset_method"] = onset.get("method")
        for gas, evolved in (summary.get("evolved") or {}).items():
            for key in ("umol", "umol_per_g"):
                row[f"{gas}_evolved_{key}"] = evolved.get(key)
                row[f"{gas}_evolved_{key}_uncertainty"] = evolved.get(f"{key}_uncertainty")
        row["delay_s"] = summary.get("delay_s")
    elif kind == "tofsims":
        cei = summary.get("cei_thickness_nm") or {}
        for key in ("mean", "median", "std", "uncertainty", "whole_field"):
            row[f"cei_thickness_nm_{key}"] = cei.get(key)
        row["cei_method"] = cei.get("method")
        row["coating_thickness_nm"] = summary.get("coating_thickness_nm")
        row["coating_thickness_uncertainty_nm"] = summary.get("coating_thickness_uncertainty_nm")
        row["cei_warnings"] = "; ".join(summary.get("warnings") or []) or None
    return row


def table_rows(
    experiments: list[Experiment], outdir: Path, statuses: dict[str, str], errors: dict[str, str]
) -> list[dict[str, Any]]:
    """One row per experiment, in manifest order."""
    rows = []
    for experiment in experiments:
        row: dict[str, Any] = {"experiment": experiment.name, "kind": experiment.kind}
        row.update(experiment.labels)
        row["status"] = statuses.get(experiment.name, "not run")
        row["error"] = errors.get(experiment.name)
        summary_path = outdir / experiment.name / "summary.json"
        if row["status"] != "failed" and summary_path.exists():
            row.update(flatten_summary(experiment.kind, json.loads(summary_path.read_text())))
        rows.append(row)
    return rows


def write_table(rows: list[dict[str, Any]], outdir: Path, stem: str = "summary") -> list[Path]:
    """Write ``<stem>.csv`` and ``<stem>.parquet`` atomically; return their paths."""
    import pandas as pd

    frame = pd.DataFrame(rows)
    for column in frame.columns:
        # judged on the rows: pandas has already turned an int column with gaps into float
        values = [row[column] for row in rows if row.get(column) is not None]
        if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            frame[column] = frame[column].astype("Int64")  # labels like cycle = 1 stay integers
        if frame[column].map(lambda v: isinstance(v, dict | list)).any():
            frame[column] = frame[column].map(json.dumps)
    csv_path, parquet_path = outdir / f"{stem}.csv", outdir / f"{stem}.parquet"
    with atomic_file(csv_path, suffix=".csv") as temporary:
        frame.to_csv(temporary, index=False)
    with atomic_file(parquet_path, suffix=".parquet") as temporary:
        frame.to_parquet(temporary, index=False)
    return [csv_path, parquet_path]


def write_index(
    rows: list[dict[str, Any]],
    outdir: Path,
    title: str = "operando batch",
    labels: list[str] | tuple[str, ...] = (),
) -> Path:
    """Write ``index.html``: one readable line per experiment, links to its report and files.

    Columns: the experiment (a link to its ``report.html``), its kind and labels, status,
    then each gas's onset (V) and amount evolved (µmol/g, or µmol without an active mass),
    the CEI thickness and the coating (nm) — every value with its ±1σ uncertainty — and the
    experiment's files (summary, log, data) behind a "files" link. The full table is
    ``summary.csv``; pages beside the index (the demo's ``report.html``, a ``compare/``
    page) are linked at the top.

    Parameters
    ----------
    rows
        From :func:`table_rows`.
    outdir
        The batch output folder.
    title
        Page title.
    labels
        The manifest's label names (``sample``, ``cycle`` …), shown as columns.
    """
    gases = list(dict.fromkeys(
        key.removesuffix("_onset_V") for row in rows for key in row if key.endswith("_onset_V")
    ))  # fmt: skip
    columns = ["experiment", "kind", *labels, "status"]
    columns += [f"{gas} onset (V)" for gas in gases]
    columns += [f"{gas} evolved" for gas in gases]
    columns += ["CEI (nm)", "coating (nm)", "files"]
    body = "\n".join(_index_row(row, outdir, labels, gases) for row in rows)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    pages = " · ".join(
        f'<a href="{quote(name)}">{html.escape(name)}</a>'
        for name in ("report.html", "compare/index.html")
        if (outdir / name).is_file()
    )
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1400px}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;font-size:90%;
vertical-align:top}}th{{background:#eee;text-align:left}}td.number{{white-space:nowrap}}
td.failed{{color:#a00}}details summary{{cursor:pointer;color:#00e}}</style></head>
<body><h1>{html.escape(title)}</h1>
<p>{pages + " · " if pages else ""}Full table: <a href="summary.csv">summary.csv</a> ·
<a href="summary.parquet">summary.parquet</a>. Values ± one standard uncertainty;
&ldquo;—&rdquo;: not determined (the reason is in the experiment's summary.json).</p>
<table><thead><tr>{head}</tr></thead><tbody>
{body}
</tbody></table></body></html>
"""
    target = outdir / "index.html"
    write_text_atomic(target, page)
    return target


def _index_row(
    row: dict[str, Any], outdir: Path, labels: list[str] | tuple[str, ...], gases: list[str]
) -> str:
    name = str(row["experiment"])
    folder = outdir / name
    report = folder / REPORT_NAME
    link = (
        f'<a href="{quote(name)}/{REPORT_NAME}">{html.escape(name)}</a>'
        if report.is_file()
        else html.escape(name)
    )
    status = html.escape(str(row.get("status", "")))
    if row.get("error"):
        status = f'<span title="{html.escape(str(row["error"]))}">{status}</span>'
    cells = [link, html.escape(str(row.get("kind", "")))]
    cells += [html.escape(_cell(row.get(label))) for label in labels]
    cells.append(status)
    cells += [
        format_uncertain(row.get(f"{gas}_onset_V"), row.get(f"{gas}_onset_uncertainty_V"), 3)
        if row.get("kind") == "dems" else "" for gas in gases
    ]  # fmt: skip
    cells += [_evolved(row, gas) if row.get("kind") == "dems" else "" for gas in gases]
    tofsims = row.get("kind") == "tofsims"
    cei = format_uncertain(
        row.get("cei_thickness_nm_mean"), row.get("cei_thickness_nm_uncertainty"), 2
    )
    coating = format_uncertain(
        row.get("coating_thickness_nm"),
        row.get("coating_thickness_uncertainty_nm"),
        2,
        missing="none",
    )
    cells += [cei if tofsims else "", coating if tofsims else ""]
    cells.append(_files(name, folder))
    klass = ' class="failed"' if row.get("status") == "failed" else ""
    numbers = len(labels) + 3
    shown = [
        f'<td class="number">{c}</td>' if numbers <= i < len(cells) - 1 else f"<td>{c}</td>"
        for i, c in enumerate(cells)
    ]
    return f"<tr{klass}>{''.join(shown)}</tr>"


def _evolved(row: dict[str, Any], gas: str) -> str:
    """``35.4 ± 0.5 µmol/g`` (per gram when the mass is known, else µmol)."""
    for key, unit in (("umol_per_g", "µmol/g"), ("umol", "µmol")):
        value = row.get(f"{gas}_evolved_{key}")
        if value is not None:
            spread = row.get(f"{gas}_evolved_{key}_uncertainty")
            return html.escape(format_uncertain(value, spread, 2 if key == "umol" else 1, unit))
    return MISSING


def _files(name: str, folder: Path) -> str:
    """Link the experiment's outputs behind a ``files`` toggle (a ``<details>`` list)."""
    outputs = _outputs(folder)
    if not outputs:
        return ""
    links = "<br>".join(_link(name, path) for path in outputs)
    return f"<details><summary>files</summary>{links}</details>"


def _outputs(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def _link(experiment: str, path: Path) -> str:
    href = f"{quote(experiment)}/{quote(path.name)}"
    return f'<a href="{html.escape(href)}">{html.escape(path.name)}</a>'


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
