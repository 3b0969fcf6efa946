"""The comparison table of a batch: one row per experiment, labels as columns.

Columns: ``experiment``, ``kind``, every label (``sample``, ``cycle`` ...), ``status``,
``error``, then the results: for DEMS ``<gas>_onset_V``, ``<gas>_onset_uncertainty_V``,
``<gas>_onset_method``, ``<gas>_evolved_umol``, ``<gas>_evolved_umol_per_g``, ``delay_s``;
for TOF-SIMS ``cei_thickness_nm_mean``/``_median``/``_std``/``_uncertainty``/``_whole_field``,
``cei_method``, ``coating_thickness_nm``, ``coating_thickness_uncertainty_nm``,
``cei_warnings``. A value that could not be determined is empty (CSV) / null (Parquet).
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from pipelines.atomic import atomic_file, write_text_atomic
from pipelines.manifest import Experiment

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
            row[f"{gas}_evolved_umol"] = evolved.get("umol")
            row[f"{gas}_evolved_umol_per_g"] = evolved.get("umol_per_g")
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


def write_index(rows: list[dict[str, Any]], outdir: Path, title: str = "operando batch") -> Path:
    """Write ``index.html`` linking every experiment's outputs and the combined table."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns) + "<th>outputs</th>"
    body = []
    for row in rows:
        cells = "".join(f"<td>{html.escape(_cell(row.get(c)))}</td>" for c in columns)
        links = " ".join(
            _link(str(row["experiment"]), p) for p in _outputs(outdir / str(row["experiment"]))
        )
        body.append(f"<tr>{cells}<td>{links}</td></tr>")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;font-size:90%}}th{{background:#eee}}</style></head>
<body><h1>{html.escape(title)}</h1>
<p>Combined table: <a href="summary.csv">summary.csv</a> ·
<a href="summary.parquet">summary.parquet</a></p>
<table><thead><tr>{head}</tr></thead><tbody>
{chr(10).join(body)}
</tbody></table></body></html>
"""
    target = outdir / "index.html"
    write_text_atomic(target, page)
    return target


def _outputs(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def _link(experiment: str, path: Path) -> str:
    href = f"{html.escape(experiment)}/{html.escape(path.name)}"
    return f'<a href="{href}">{html.escape(path.name)}</a>'


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
