"""BioLogic EC-Lab ASCII export (``.mpt``) reader and xarray backend ``dems_biologic``.

Layout (``docs/formats.md``, reference ``formats-dems.md`` §1): line 1 ``EC-Lab ASCII FILE``,
line 2 ``Nb header lines : N``; line N holds the TAB-separated column titles and data start
at line N+1. Files are ISO-8859-1, CRLF or LF, with a decimal comma or point depending on the
Windows locale of the acquisition PC.
"""

from __future__ import annotations

import io
import os
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from xarray.backends import BackendEntrypoint

from dems.errors import DemsReadError
from dems.io.backend import header_json, provenance, sniff
from dems.io.eclab_columns import ec_variables
from dems.io.locale import FLOAT_PRECISION, detect_decimal
from dems.io.timestamps import iso, localize, resolve_timezone

__all__ = ["FORMAT", "KIND", "BiologicBackend", "can_open", "read_ec", "read_run"]

FORMAT = "BioLogic EC-Lab .mpt"
KIND = "ec"
MAGIC = "EC-Lab ASCII FILE"

_HEADER_COUNT = re.compile(r"^Nb header lines\s*:\s*(\d+)\s*$")
_SETTING = re.compile(r"^(?P<key>[^:\t]*?\S)\s+:\s?(?P<value>.*)$")
_TIMESTAMP = re.compile(
    r"^(?P<a>\d{1,2})[/.-](?P<b>\d{1,2})[/.-](?P<year>\d{4})\s+"
    r"(?P<hour>\d{1,2})[:.](?P<minute>\d{2})[:.](?P<second>\d{2})(?:[.,](?P<fraction>\d{1,6}))?$"
)
_SOFTWARE = re.compile(
    r"^(?P<name>EC-Lab|BT-Lab)\b.*\bv(?P<version>\d+(?:\.\d+)*)\s*\(software\)$", re.IGNORECASE
)
_QUANTITY = re.compile(r"^\s*(?P<number>-?\d+(?:[.,]\d+)?(?:[eE][-+]?\d+)?)\s*(?P<unit>\S+)\s*$")
_MASS_TO_G = {"g": 1.0, "mg": 1e-3, "µg": 1e-6, "ug": 1e-6, "kg": 1e3}
_AREA_TO_CM2 = {"cm²": 1.0, "cm2": 1.0, "mm²": 1e-2, "mm2": 1e-2, "m²": 1e4, "m2": 1e4}
#: EC-Lab's default for masses, areas and volumes: a placeholder, not a measurement.
PLACEHOLDER_VALUE = 0.001
MISSING_TOKENS = ["XXXX", "NaN", "nan", "-nan", "inf", "-inf", "---"]
MASS_KEYS = ("Mass of active material", "Characteristic mass")
DATE_ORDERS = ("month-first", "day-first")


def can_open(path: str | os.PathLike[str], head: bytes) -> bool:
    """Whether the file starts with the EC-Lab ASCII magic line."""
    return head.decode("latin-1").lstrip("\ufeff").startswith(MAGIC)


@dataclass
class MptHeader:
    """The parsed header of one ``.mpt`` file."""

    n_header_lines: int
    technique: str
    settings: dict[str, list[str]] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)

    def first(self, key: str) -> str | None:
        """First value recorded for ``key`` (keys may repeat, e.g. ``Comments``)."""
        values = self.settings.get(key)
        return values[0].strip() if values else None

    def line_of(self, key: str) -> int | None:
        """1-based line number of the first ``key : value`` line."""
        for number, line in enumerate(self.lines, start=1):
            if line.startswith(f"{key} :"):
                return number
        return None


def _split_lines(path: str | os.PathLike[str]) -> list[str]:
    raw = Path(path).read_bytes()
    if not raw:
        raise DemsReadError(path, "file is empty")
    nul = raw.find(b"\x00")
    if 0 <= nul < 65536:
        raise DemsReadError(path, "binary content, not an EC-Lab ASCII (.mpt) export")
    if nul >= 0:  # pandas 2 would silently cut the number at the NUL byte
        raise DemsReadError(
            path, "NUL byte in the data (corrupt file)", raw.count(b"\n", 0, nul) + 1
        )
    return raw.decode("latin-1").splitlines()


def parse_header(path: str | os.PathLike[str], lines: Sequence[str]) -> MptHeader:
    """Parse the header lines of an ``.mpt`` file.

    Raises
    ------
    DemsReadError
        If the magic line or ``Nb header lines`` is missing or points past the end.
    """
    if not lines or not lines[0].lstrip("\ufeff").startswith(MAGIC):
        raise DemsReadError(path, f"not an EC-Lab ASCII export (line 1 is not {MAGIC!r})", 1)
    match = _HEADER_COUNT.match(lines[1].strip()) if len(lines) > 1 else None
    if match is None:
        raise DemsReadError(path, "missing 'Nb header lines : N'", 2)
    count = int(match.group(1))
    if count < 3:
        raise DemsReadError(path, f"'Nb header lines : {count}' is too small", 2)
    if count > len(lines):
        raise DemsReadError(
            path,
            f"file is truncated: header announces {count} lines, file has {len(lines)}",
            len(lines),
        )
    header = MptHeader(n_header_lines=count, technique="", lines=list(lines[: count - 1]))
    for line in lines[2 : count - 1]:
        match = _SETTING.match(line.strip())
        if match:
            header.settings.setdefault(match["key"], []).append(match["value"].strip())
        elif not header.technique and line.strip() and not line.startswith((" ", "\t")):
            header.technique = line.strip()
    return header


def parse_start_time(
    path: str | os.PathLike[str], header: MptHeader, date_order: str
) -> tuple[datetime | None, bool]:
    """Naive ``Acquisition started on`` time and whether its date is ambiguous.

    Parameters
    ----------
    date_order
        ``"month-first"`` (EC-Lab's usual ``09/19/2022``) or ``"day-first"``.

    Returns
    -------
    tuple
        ``(naive datetime or None when absent, ambiguous)``; ambiguous when both of the
        first two date fields could be a month and they differ.
    """
    if date_order not in DATE_ORDERS:
        raise ValueError(f"date_order must be one of {DATE_ORDERS}, not {date_order!r}")
    text = header.first("Acquisition started on")
    if text is None:
        return None, False
    line = header.line_of("Acquisition started on")
    match = _TIMESTAMP.match(text)
    if match is None:
        raise DemsReadError(path, f"unrecognised 'Acquisition started on' time {text!r}", line)
    first, second = int(match["a"]), int(match["b"])
    month, day = (first, second) if date_order == "month-first" else (second, first)
    fraction = (match["fraction"] or "0").ljust(6, "0")
    try:
        moment = datetime(
            int(match["year"]),
            month,
            day,
            int(match["hour"]),
            int(match["minute"]),
            int(match["second"]),
            int(fraction),
        )
    except ValueError as err:
        other = "day-first" if date_order == "month-first" else "month-first"
        raise DemsReadError(
            path,
            f"'Acquisition started on' {text!r} is not a valid {date_order} date ({err}); "
            f"try date_order={other!r}",
            line,
        ) from None
    return moment, first <= 12 and second <= 12 and first != second


def parse_quantity(text: str | None, table: dict[str, float]) -> tuple[float, float] | None:
    """``(value in the table's unit, number as written)`` for ``"1.390 mg"``; None if absent."""
    if text is None:
        return None
    match = _QUANTITY.match(text)
    if match is None or match["unit"] not in table:
        return None
    number = float(match["number"].replace(",", "."))
    return number * table[match["unit"]], number


def header_quantities(path: str | os.PathLike[str], header: MptHeader) -> dict[str, Any]:
    """Active mass (g) and electrode area (cm²) attributes, with placeholder warnings."""
    attrs: dict[str, Any] = {"characteristic_mass_g": np.nan, "mass_key": ""}
    name = os.path.basename(path)
    for key in MASS_KEYS:
        parsed = parse_quantity(header.first(key), _MASS_TO_G)
        if parsed is None:
            continue
        attrs["characteristic_mass_g"], written = parsed
        attrs["mass_key"] = key
        if written == PLACEHOLDER_VALUE:
            attrs["characteristic_mass_placeholder"] = 1
            warnings.warn(
                f"{name}: {key} is {header.first(key)!r}, EC-Lab's placeholder value; "
                "set the real active mass before normalising per gram",
                UserWarning,
                stacklevel=4,
            )
        break
    area = parse_quantity(header.first("Electrode surface area"), _AREA_TO_CM2)
    attrs["electrode_area_cm2"] = np.nan if area is None else area[0]
    return attrs


def _column_titles(line: str) -> list[str]:
    titles = line.split("\t")
    while titles and not titles[-1].strip():
        titles.pop()
    return [title.strip() for title in titles]


def _field_count(row: str) -> int:
    return row.rstrip("\t").count("\t") + 1


def reconcile_titles(
    path: str | os.PathLike[str], titles: list[str], rows: Sequence[str], line: int
) -> list[str]:
    """Column titles that have data: drop empty and trailing titles the rows do not fill.

    Some exports (PEIS with ``Ewe-Ece``, yadg issue 225) write an interior empty title and
    a trailing title for which no row has a field; both are dropped with a warning naming
    the line, as yadg does. An empty title over a column that has data is named
    ``column <k>``.

    Parameters
    ----------
    path
        The file (for messages).
    titles
        Titles of the column-title line, trailing empty ones removed.
    rows
        The data rows (may be empty).
    line
        1-based number of the column-title line.
    """
    name = os.path.basename(path)
    n_fields = _field_count(rows[0]) if rows else None
    if n_fields is None or len(titles) > n_fields:
        empty = [i + 1 for i, title in enumerate(titles) if not title]
        if empty:
            warnings.warn(
                f"{name}: line {line}: empty column title(s) at position(s) "
                f"{', '.join(map(str, empty))} without data; dropped",
                UserWarning,
                stacklevel=3,
            )
            titles = [title for title in titles if title]
    if n_fields is not None and len(titles) > n_fields:
        extra = titles[n_fields:]
        warnings.warn(
            f"{name}: line {line}: column title(s) {', '.join(map(repr, extra))} have no "
            f"data (rows have {n_fields} fields); dropped",
            UserWarning,
            stacklevel=3,
        )
        titles = titles[:n_fields]
    return [title or f"column {i + 1}" for i, title in enumerate(titles)]


def _check_field_counts(path: str | os.PathLike[str], rows: list[str], n_columns: int, first: int):
    counts = np.fromiter((_field_count(row) for row in rows), int, len(rows))
    bad = np.flatnonzero(counts != n_columns)
    if bad.size:
        index = int(bad[0])
        raise DemsReadError(
            path,
            f"expected {n_columns} TAB-separated fields, found {counts[index]} "
            "(truncated or malformed row)",
            first + index,
        )


def _parse_table(
    path: str | os.PathLike[str], rows: list[str], titles: list[str], decimal: str, first: int
) -> pd.DataFrame:
    """Parse the data rows with pandas' C engine; non-numbers raise with their line number."""
    table = pd.read_csv(
        io.StringIO("\n".join(rows)),
        sep="\t",
        header=None,
        names=list(range(len(titles))),
        usecols=list(range(len(titles))),
        decimal=decimal,
        na_values=MISSING_TOKENS,
        keep_default_na=False,
        engine="c",
        float_precision=FLOAT_PRECISION,
    )
    for index, title in enumerate(titles):
        column = table[index]
        if column.dtype.kind in "if":
            continue
        numeric = pd.to_numeric(column, errors="coerce")
        row = int(np.flatnonzero(numeric.isna().to_numpy() & column.notna().to_numpy())[0])
        raise DemsReadError(
            path,
            f"column {title!r}: {column.iloc[row]!r} is not a number "
            f"(decimal separator {decimal!r})",
            first + row,
        )
    return table


def _check_time(path: str | os.PathLike[str], time: np.ndarray, first: int) -> None:
    bad = np.flatnonzero(~np.isfinite(time))
    if bad.size:
        raise DemsReadError(path, "time/s is missing or not finite", first + int(bad[0]))
    step = np.diff(time)
    back = np.flatnonzero(step < 0)
    if back.size:
        i = int(back[0]) + 1
        raise DemsReadError(
            path, f"time is not monotonic ({time[i]:g} s after {time[i - 1]:g} s)", first + i
        )


def _time_attrs(
    path: str | os.PathLike[str], header: MptHeader, timezone: str | None, date_order: str
) -> dict[str, Any]:
    naive, ambiguous = parse_start_time(path, header, date_order)
    zone, zone_name = resolve_timezone(timezone)
    attrs: dict[str, Any] = {
        "timezone": zone_name,
        "timezone_source": "user" if timezone else "machine",
        "date_order": date_order,
    }
    if naive is None:
        attrs["start_time"] = ""
        attrs["start_time_missing"] = "no 'Acquisition started on' line in the header"
    else:
        attrs["start_time"] = iso(localize(naive, zone))
        attrs["start_time_ambiguous"] = int(ambiguous)
    return attrs


def read_ec(
    path: str | os.PathLike[str],
    *,
    timezone: str | None = None,
    decimal: str | None = None,
    date_order: str = "month-first",
) -> xr.Dataset:
    """Read a BioLogic EC-Lab ``.mpt`` export.

    Parameters
    ----------
    path
        The ``.mpt`` file.
    timezone
        IANA zone of the naive ``Acquisition started on`` time (default: this machine's).
    decimal
        ``","`` or ``"."``; detected from the data rows when None.
    date_order
        ``"month-first"`` (EC-Lab default) or ``"day-first"``.

    Returns
    -------
    xarray.Dataset
        Every column on ``time`` (s since ``start_time``), plus ``potential`` (V),
        ``current`` (mA) and ``cycle``; see ``docs/conventions.md``.

    Raises
    ------
    DemsReadError
        On a malformed file, naming the file and line.
    """
    if decimal not in (None, ",", "."):
        raise ValueError(f"decimal must be ',' or '.', not {decimal!r}")
    lines = _split_lines(path)
    header = parse_header(path, lines)
    first = header.n_header_lines + 1
    rows = lines[header.n_header_lines :]
    while rows and not rows[-1].strip():
        rows.pop()
    title_line = header.n_header_lines
    titles = reconcile_titles(path, _column_titles(lines[title_line - 1]), rows, title_line)
    if "time/s" not in titles:
        raise DemsReadError(path, "no 'time/s' column in the column-title line", title_line)
    name = os.path.basename(path)
    if rows:
        _check_field_counts(path, rows, len(titles), first)
        used_decimal = decimal or detect_decimal(rows[:50])
        table = _parse_table(path, rows, titles, used_decimal, first)
        columns = [table[i].to_numpy() for i in range(len(titles))]
    else:
        warn_empty_technique(name, header.technique, title_line)
        used_decimal = decimal or ""
        columns = [np.empty(0) for _ in titles]
    time = np.asarray(columns[titles.index("time/s")], dtype=float)
    _check_time(path, time, first)
    value_titles = [t for t in titles if t != "time/s"]
    values = [c for t, c in zip(titles, columns, strict=True) if t != "time/s"]
    line_numbers = np.arange(first, first + len(rows))
    variables, canonical_attrs = ec_variables(value_titles, values, time, line_numbers, name)
    attrs = {
        **_time_attrs(path, header, timezone, date_order),
        "technique": header.technique,
        **software_attrs(header),
        **header_quantities(path, header),
        "reference_electrode": header.first("Reference electrode") or "",
        "decimal": used_decimal,
        "clock": "EC-Lab",
        **canonical_attrs,
        "header_json": header_json({"technique": header.technique, **header.settings}),
        **provenance(path, "dems.io.biologic.read_ec", FORMAT),
    }
    coords = {"time": ("time", time, {"units": "s", "long_name": "time/s"})}
    return xr.Dataset(variables, coords=coords, attrs=attrs)


def warn_empty_technique(source: str, technique: str, line: int | None = None) -> None:
    """Warn that a technique recorded no data points (WAIT, ZIR): the dataset is empty."""
    where = f"line {line}: " if line is not None else ""
    warnings.warn(
        f"{source}: {where}no data points ({technique or 'this technique'} recorded none); "
        "returning an empty dataset",
        UserWarning,
        stacklevel=3,
    )


def software_attrs(header: MptHeader) -> dict[str, Any]:
    """``software`` (EC-Lab or BT-Lab) and ``ec_lab_version`` from ``… v11.43 (software)``."""
    for line in header.lines:
        match = _SOFTWARE.match(line.strip())
        if match:
            software = "BT-Lab" if match["name"].upper() == "BT-LAB" else "EC-Lab"
            return {"software": software, "ec_lab_version": match["version"]}
    return {
        "software": "",
        "ec_lab_version": "",
        "ec_lab_version_missing": "no 'EC-Lab for windows v… (software)' line in the header",
    }


def read_run(paths: Iterable[str | os.PathLike[str]], **options: Any) -> xr.Dataset:
    """Concatenate the technique files of one EC-Lab run on their common time axis.

    All files of a run share ``Acquisition started on``, so their ``time`` columns are
    already on one clock. Columns missing from a technique are NaN.

    Parameters
    ----------
    paths
        ``.mpt`` files of one run, e.g. ``…_01_01_CV_C01.mpt``, ``…_01_02_CP_C01.mpt``.
    **options
        Passed to :func:`read_ec`.

    Returns
    -------
    xarray.Dataset
        Rows of all files sorted by time, with a ``technique`` coordinate on ``time``
        naming each row's technique.

    Raises
    ------
    DemsReadError
        If the files do not share one acquisition start time.
    """
    parts = [read_ec(path, **options) for path in paths]
    if not parts:
        raise ValueError("read_run needs at least one .mpt file")
    start = parts[0].attrs["start_time"]
    for part in parts[1:]:
        if part.attrs["start_time"] != start:
            raise DemsReadError(
                part.attrs["source_file"],
                f"acquisition start {part.attrs['start_time']} differs from {start} of "
                f"{os.path.basename(parts[0].attrs['source_file'])}: not the same run",
            )
    labelled = [
        part.assign_coords(technique=("time", np.full(part.sizes["time"], part.attrs["technique"])))
        for part in parts
    ]
    run = xr.concat(
        labelled,
        dim="time",
        data_vars="all",
        coords="minimal",
        compat="override",
        join="outer",
        combine_attrs="drop_conflicts",
    )
    run = run.sortby("time")
    run.attrs.update(
        technique=" + ".join(part.attrs["technique"] for part in parts),
        source_file=parts[0].attrs["source_file"],
        source_files="\n".join(part.attrs["source_file"] for part in parts),
        reader="dems.io.biologic.read_run",
    )
    return run


class BiologicBackend(BackendEntrypoint):
    """xarray backend for EC-Lab ``.mpt`` files: ``xr.open_dataset(p, engine="dems_biologic")``."""

    sniff_order = 10

    description = "BioLogic EC-Lab ASCII export (.mpt) — potentiostat data"
    url = "https://github.com/operando/operando/blob/main/docs/formats.md"
    open_dataset_parameters = (
        "filename_or_obj",
        "drop_variables",
        "timezone",
        "decimal",
        "date_order",
    )

    def open_dataset(
        self,
        filename_or_obj: Any,
        *,
        drop_variables: str | Iterable[str] | None = None,
        timezone: str | None = None,
        decimal: str | None = None,
        date_order: str = "month-first",
    ) -> xr.Dataset:
        """Open an ``.mpt`` file (see :func:`read_ec`)."""
        ds = read_ec(
            os.fspath(filename_or_obj), timezone=timezone, decimal=decimal, date_order=date_order
        )
        return ds.drop_vars(drop_variables or [], errors="ignore")

    def guess_can_open(self, filename_or_obj: Any) -> bool:
        """Sniff the magic line (the extension alone is not trusted)."""
        return sniff(can_open, filename_or_obj)
