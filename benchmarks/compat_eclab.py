"""Compatibility of operando's EC-Lab readers with yadg's extractor, file by file.

Opens every ``.mpt`` and ``.mpr`` in DIR with operando (``dems.open_ec``) and with yadg
(``yadg.extractors.extract``, the reference; a test-only dependency, GPL) and prints one
row per file: technique, rows, max |ΔEwe| (V), max |ΔI| / max |I|, max |Δt| (s), start-time
difference (s) and status. A file agrees when both read it with the same number of rows,
the potential within 1e-6 V, the current within 1e-6 of its range, the relative time
within 1 ms and the start time within 1 s (where both have one). Exits with status 1 when
any file does not agree (or either reader fails). Usage::

    .venv/bin/python benchmarks/compat_eclab.py DIR [--timezone UTC]

The reference potential is yadg's ``Ewe``, else ``<Ewe>``, else ``Ecell``; the reference
current is ``I``, else ``<I>``, else (galvanostatic ``.mpr``, which stores no current)
``dq``/Δt computed here from yadg's columns, compared from the second row on. yadg needs
the locale of a decimal-comma ``.mpt``: ``de_DE`` when the first data row has a decimal
comma, else ``en_US``.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import warnings
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

POTENTIAL_TOLERANCE_V = 1e-6
CURRENT_TOLERANCE = 1e-6  # relative to max |I|
TIME_TOLERANCE_S = 1e-3
START_TOLERANCE_S = 1.0
MAH_TO_MAS = 3600.0
_DECIMAL_COMMA = re.compile(r"\d,\d")


@dataclass
class Reading:
    """What one reader found in one file."""

    technique: str
    time: np.ndarray
    potential: np.ndarray | None
    current: np.ndarray | None
    start: float | None  # UNIX time of relative time 0
    current_from_row: int = 0  # first row where the current is defined
    note: str = ""  # what the reader changed on purpose (e.g. the EC-Lab CP zero defect)


@dataclass
class Row:
    """One line of the table."""

    file: str
    technique: str = ""
    rows: str = ""
    potential: float | None = None
    current: float | None = None
    time: float | None = None
    start: float | None = None
    status: str = "ok"


def _mpt_locale(path: Path) -> str:
    lines = path.read_bytes().decode("latin-1").splitlines()
    count = int(lines[1].split(":")[1])
    first_row = lines[count] if len(lines) > count else ""
    return "de_DE" if _DECIMAL_COMMA.search(first_row) else "en_US"


def _first_finite(ds, names: tuple[str, ...]) -> np.ndarray | None:
    present = [np.asarray(ds[n].values, dtype=float) for n in names if n in ds]
    if not present:
        return None
    combined = np.full(present[0].shape, np.nan)
    for values in present:
        combined = np.where(np.isfinite(combined), combined, values)
    return combined


def yadg_reading(path: Path, timezone: str) -> Reading:
    """The reference: yadg's extractor."""
    from yadg.extractors import extract

    filetype = "eclab.mpr" if path.suffix.lower() == ".mpr" else "eclab.mpt"
    locale = _mpt_locale(path) if filetype == "eclab.mpt" else None
    ds = extract(filetype=filetype, path=path, timezone=timezone, locale=locale).to_dataset()
    time = np.asarray(ds["time"].values, float) if "time" in ds else np.empty(0)
    start = None
    if "fulldate" not in ds.attrs:  # yadg drops the attribute when the date is known
        start = float(ds["uts"].values[0]) - (time[0] if time.size else 0.0)
    settings = ds.attrs.get("original_metadata", "")
    technique = re.search(r'"technique": "([^"]*)"', settings)
    current = _first_finite(ds, ("I", "<I>"))
    from_row = 0
    if current is None and "dq" in ds and ds["dq"].attrs.get("units") == "mA·h":
        dq = np.asarray(ds["dq"].values, float)
        current = np.concatenate(([np.nan], dq[1:] * MAH_TO_MAS / np.diff(time)))
        from_row = 1
    return Reading(
        technique=technique.group(1) if technique else "",
        time=time,
        potential=_first_finite(ds, ("Ewe", "<Ewe>", "Ecell")) if time.size else None,
        current=current if time.size else None,
        start=start,
        current_from_row=from_row,
    )


def operando_reading(path: Path, timezone: str) -> Reading:
    """operando's reading through the format-sniffing ``dems.open_ec``."""
    from dems.io import open_ec

    ds = open_ec(path, timezone=timezone)
    start = ds.attrs.get("start_time") or None
    return Reading(
        technique=ds.attrs.get("technique_code") or ds.attrs.get("technique", ""),
        time=np.asarray(ds["time"].values, float),
        potential=np.asarray(ds["potential"].values, float),
        current=np.asarray(ds["current"].values, float),
        start=datetime.fromisoformat(start).timestamp() if start else None,
        note=ds.attrs.get("potential_defect", ""),
    )


def _max_difference(ours: np.ndarray | None, reference: np.ndarray | None) -> float | None:
    """Max |difference|; inf where only one side has a value; None if neither has any."""
    if reference is None or not np.isfinite(reference).any():
        return None if ours is None or not np.isfinite(ours).any() else np.inf
    if ours is None or np.any(np.isfinite(ours) != np.isfinite(reference)):
        return np.inf
    both = np.isfinite(reference)
    return float(np.max(np.abs(ours[both] - reference[both]), initial=0.0))


def compare(path: Path, timezone: str) -> Row:
    """Read ``path`` with both readers and compare."""
    row = Row(path.name)
    try:
        reference = yadg_reading(path, timezone)
    except Exception as err:  # any failure of the reference is reported, never hidden
        row.status = f"yadg error: {type(err).__name__}: {err}"[:120]
        return row
    try:
        ours = operando_reading(path, timezone)
    except Exception as err:
        row.status = f"operando error: {err}"[:120]
        return row
    row.technique = reference.technique or ours.technique
    row.rows = f"{ours.time.size}/{reference.time.size}"
    problems = []
    if ours.time.size != reference.time.size:
        problems.append("rows")
        row.status = "MISMATCH: rows"
        return row
    row.time = _max_difference(ours.time, reference.time)
    row.potential = _max_difference(ours.potential, reference.potential)
    skip = reference.current_from_row
    ref_current = None if reference.current is None else reference.current[skip:]
    our_current = None if ours.current is None else ours.current[skip:]
    difference = _max_difference(our_current, ref_current)
    if difference is not None and ref_current is not None:
        scale = np.nanmax(np.abs(ref_current), initial=0.0)
        row.current = difference / scale if scale > 0 else difference
    if ours.start is not None and reference.start is not None:
        row.start = ours.start - reference.start
    checks = [
        ("potential", row.potential, POTENTIAL_TOLERANCE_V),
        ("current", row.current, CURRENT_TOLERANCE),
        ("time", row.time, TIME_TOLERANCE_S),
        ("start", None if row.start is None else abs(row.start), START_TOLERANCE_S),
    ]
    problems += [name for name, value, limit in checks if value is not None and value > limit]
    if (ours.start is None) != (reference.start is None):
        problems.append("start time present in only one")
    row.status = "ok" if not problems else "MISMATCH: " + ", ".join(problems)
    if problems and ours.note:
        row.status += f" (operando: {ours.note})"
    return row


def _cell(value: float | None) -> str:
    return "—" if value is None else f"{value:.2e}"


def print_table(rows: list[Row]) -> None:
    """The table, then the totals."""
    header = (
        "file",
        "technique",
        "rows ours/yadg",
        "max|ΔEwe| V",
        "max|ΔI|/max|I|",
        "max|Δt| s",
        "Δstart s",
        "status",
    )
    table = [header] + [
        (
            r.file,
            r.technique,
            r.rows,
            _cell(r.potential),
            _cell(r.current),
            _cell(r.time),
            "—" if r.start is None else f"{r.start:+.3f}",
            r.status,
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in table) for i in range(len(header) - 1)]
    for line in table:
        cells = [cell.ljust(width) for cell, width in zip(line[:-1], widths, strict=True)]
        print("  ".join([*cells, line[-1]]))
    agree = sum(r.status == "ok" for r in rows)
    differ = sum(r.status.startswith("MISMATCH") for r in rows)
    ours_failed = sum(r.status.startswith("operando error") for r in rows)
    yadg_failed = sum(r.status.startswith("yadg error") for r in rows)
    print(
        f"\n{len(rows)} files: {agree} agree, {differ} differ, {ours_failed} unreadable by "
        f"operando, {yadg_failed} unreadable by yadg"
    )


def main(argv: list[str] | None = None) -> int:
    """Compare every EC-Lab file of a folder; 0 when all agree."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="folder holding .mpt/.mpr files")
    parser.add_argument("--timezone", default="UTC", help="zone of the naive start times")
    args = parser.parse_args(argv)
    paths = sorted(p for p in args.folder.iterdir() if p.suffix.lower() in (".mpt", ".mpr"))
    if not paths:
        print(f"{args.folder}: no .mpt or .mpr files", file=sys.stderr)
        return 2
    logging.getLogger("yadg").setLevel(logging.ERROR + 1)  # yadg logs column-id notes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # operando's reader warnings are not the point here
        rows = [compare(path, args.timezone) for path in paths]
    print_table(rows)
    return 0 if all(r.status == "ok" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
