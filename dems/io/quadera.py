"""Pfeiffer QUADERA ASCII export (``.asc``): one (time, relative time, value) triplet per channel.

Layout (``docs/formats.md``; reference: formats-dems §5)::

    Sourcefile<TAB>run.qmp
    Exporttime<TAB>28/11/2022 15:24:02
    <empty>
    Start Time<TAB>28/11/2022 13:51:12
    End Time<TAB>28/11/2022 15:21:44
    <empty>
    <TAB><TAB>14<TAB><TAB><TAB>Water<TAB> ...                      channel labels
    Time<TAB>Time Relative [s]<TAB>Partial Pressure [mbar]<TAB> ...  one triplet per channel
    28/11/2022 13:51:12<TAB>0.000<TAB>1.083137e-011<TAB> ...

The file is parsed once by pandas' C parser, reading only the relative-time and value
columns (the absolute-time strings of every row are skipped: relative time plus the
header's ``Start Time`` give the same instants). Large files are parsed in blocks of
``chunk_rows`` rows that become the dask chunks of the result.
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from xarray.backends import BackendEntrypoint

from dems.errors import DemsReadError
from dems.io.backend import header_json, provenance, sniff
from dems.io.datestrings import DATE_ORDERS, DateStringError, infer_date_order, parse_wallclock
from dems.io.locale import FLOAT_PRECISION, detect_decimal
from dems.io.ms_channels import check_channel_times, ms_dataset, trailing_valid_length
from dems.io.timestamps import iso, localize, resolve_timezone

__all__ = ["FORMAT", "KIND", "QuaderaBackend", "can_open", "read_ms"]

FORMAT = "Pfeiffer QUADERA .asc"
KIND = "ms"
ENGINE = "dems_quadera"

#: Files larger than this (bytes) are returned dask-backed when ``chunk_rows`` is not given.
LARGE_FILE_BYTES = 16 * 2**20
#: Rows per block (and dask chunk along ``sample``) for large files.
DEFAULT_CHUNK_ROWS = 65_536
#: Tokens written for missing values; all become NaN.
MISSING_TOKENS = ["---", "NaN", "nan", "-nan", "XXXX", ""]

_RELATIVE = "Time Relative [s]"
_UNITS = {
    "Ion Current [A]": ("A", "ion current"),
    "Partial Pressure [mbar]": ("mbar", "partial pressure"),
}
_MAX_HEADER_LINES = 200
_DECIMAL_ROWS = 20
_UTF8_BOM = "\xef\xbb\xbf"  # as decoded by latin-1


@dataclass
class QuaderaLayout:
    """What the header of a QUADERA export says.

    Attributes
    ----------
    header
        ``Sourcefile``/``Exporttime``/``Start Time``/``End Time`` (and any other key) → text.
    header_lines
        Line number of each header key (1-based).
    labels
        Verbatim channel labels, one per triplet.
    value_titles
        Verbatim title of each triplet's value column.
    skip_lines
        Number of lines before the first data line.
    first_row
        The first data line split on TABs ([] if the file has no data).
    head_rows
        The first few data lines (for detecting the decimal separator).
    """

    header: dict[str, str] = field(default_factory=dict)
    header_lines: dict[str, int] = field(default_factory=dict)
    labels: list[str] = field(default_factory=list)
    value_titles: list[str] = field(default_factory=list)
    skip_lines: int = 0
    first_row: list[str] = field(default_factory=list)
    head_rows: list[str] = field(default_factory=list)


def can_open(path: str | os.PathLike[str], head: bytes) -> bool:
    """Whether ``head`` (first ~8 kB) looks like a QUADERA ASCII export."""
    text = head.decode("latin-1").removeprefix(_UTF8_BOM)
    lines = text.splitlines()
    has_columns = any(line.startswith(f"Time\t{_RELATIVE}\t") for line in lines)
    return has_columns or (text.startswith("Sourcefile\t") and "\nStart Time\t" in text)


def read_layout(path: str | os.PathLike[str]) -> QuaderaLayout:
    """Read the header block (up to the first data line) of a QUADERA export.

    Raises
    ------
    DemsReadError
        If no triplet column line is found or the channel line does not match it.
    """
    layout = QuaderaLayout()
    previous = ""
    with open(path, encoding="latin-1", newline=None) as handle:
        for number, line in enumerate(handle, start=1):
            if "\x00" in line:
                raise DemsReadError(path, "binary content, not a QUADERA text export", line=number)
            text = line.rstrip("\r\n").removeprefix(_UTF8_BOM)
            if text.startswith(f"Time\t{_RELATIVE}"):
                _columns_from(path, layout, previous, text, number)
                layout.skip_lines = number
                layout.head_rows = [handle.readline().rstrip("\r\n") for _ in range(_DECIMAL_ROWS)]
                layout.first_row = layout.head_rows[0].split("\t")
                return layout
            key, _, value = text.partition("\t")
            if key.strip() and value.strip():
                layout.header[key.strip()] = value.strip()
                layout.header_lines[key.strip()] = number
            previous = text
            if number >= _MAX_HEADER_LINES:
                break
    raise DemsReadError(
        path,
        f"not a QUADERA export: no column line 'Time<TAB>{_RELATIVE}<TAB>…' "
        f"in the first {_MAX_HEADER_LINES} lines",
    )


def _columns_from(
    path: str | os.PathLike[str],
    layout: QuaderaLayout,
    labels_line: str,
    columns_line: str,
    number: int,
) -> None:
    titles = columns_line.rstrip("\t").split("\t")
    if len(titles) % 3 or titles[0::3] != ["Time"] * (len(titles) // 3):
        raise DemsReadError(
            path,
            "column line is not a sequence of (Time, Time Relative [s], value) triplets",
            number,
        )
    if any(title != _RELATIVE for title in titles[1::3]):
        raise DemsReadError(path, f"every triplet's second column must be {_RELATIVE!r}", number)
    layout.value_titles = titles[2::3]
    for title in layout.value_titles:
        if title not in _UNITS:
            known = " or ".join(repr(t) for t in _UNITS)
            raise DemsReadError(path, f"unknown value column {title!r} (expected {known})", number)
    labels = [name.strip() for name in labels_line.split("\t") if name.strip()]
    if len(labels) != len(layout.value_titles):
        raise DemsReadError(
            path,
            f"{len(labels)} channel labels for {len(layout.value_titles)} column triplets",
            number - 1,
        )
    layout.labels = labels


def resolve_date_order(
    path: str | os.PathLike[str], layout: QuaderaLayout, date_order: str | None
) -> tuple[str, str]:
    """Day/month order of the file's dates: ``(order, source)`` with source ``"file"``/``"user"``.

    Raises
    ------
    DemsReadError
        If the dates are ambiguous and ``date_order`` is not given, or contradict it.
    """
    stamps = [
        (layout.header_lines[k], layout.header[k])
        for k in ("Exporttime", "Start Time", "End Time")
        if layout.header.get(k)
    ]
    row_line = layout.skip_lines + 1
    stamps += [(row_line, layout.first_row[i]) for i in range(0, len(layout.first_row) - 2, 3)]
    line = layout.header_lines.get("Start Time", row_line)
    try:
        proven = infer_date_order(text for _, text in stamps)
    except DateStringError as err:
        bad = [n for n, text in stamps if not _is_date(text)]
        raise DemsReadError(path, str(err), line=bad[0] if bad else line) from err
    if date_order is not None:
        if date_order not in DATE_ORDERS:
            choices = ", ".join(repr(o) for o in DATE_ORDERS)
            raise ValueError(f"date_order must be one of {choices}, not {date_order!r}")
        if proven is not None and proven != date_order:
            raise DemsReadError(
                path,
                f"date_order={date_order!r} contradicts the file's dates, which are {proven}",
                line,
            )
        return date_order, "user"
    if proven is None:
        example = stamps[0][1] if stamps else "?"
        raise DemsReadError(
            path,
            f"dates such as {example!r} are ambiguous (day or month first?): "
            "pass date_order='day-first' or date_order='month-first'",
            line,
        )
    return proven, "file"


def _is_date(text: str) -> bool:
    try:
        infer_date_order([text])
    except DateStringError:
        return False
    return True


def _start_time(
    path: str | os.PathLike[str], layout: QuaderaLayout, order: str, zone: Any
) -> tuple[str, str]:
    """ISO start time and where it came from (``"Start Time"`` header or first data row).

    Without a ``Start Time`` line, the first row's absolute time minus its relative time
    is used (whole seconds only: QUADERA writes no fraction in the row times).
    """
    offset = 0.0
    if layout.header.get("Start Time"):
        text = layout.header["Start Time"]
        line, source = layout.header_lines["Start Time"], "Start Time"
    elif len(layout.first_row) >= 3:
        text, line, source = layout.first_row[0], layout.skip_lines + 1, "first data row"
        try:
            offset = float(layout.first_row[1].replace(",", "."))
        except ValueError:
            raise DemsReadError(path, f"relative time {layout.first_row[1]!r}", line) from None
    else:
        raise DemsReadError(path, "no 'Start Time' line and no data: start time unknown")
    try:
        naive = parse_wallclock(text, order) - timedelta(seconds=offset)
    except DateStringError as err:
        raise DemsReadError(path, str(err), line=line) from err
    return iso(localize(naive, zone)), source


def _tail(path: str | os.PathLike[str]) -> str:
    size = os.path.getsize(path)
    with open(path, "rb") as handle:
        handle.seek(max(0, size - 65536))
        return handle.read().decode("latin-1")


def _last_line_fields(path: str | os.PathLike[str]) -> int:
    """Count the trustworthy TAB-separated fields on the last non-empty line (reads the tail).

    A file without a final line break may have been cut inside its last field ("8.7" of
    "8.703396e-012"): a last field whose digit pattern is a shorter beginning of the same
    field's pattern on the line before is not counted.
    """
    tail = _tail(path)
    lines = [line.rstrip("\t").split("\t") for line in tail.splitlines() if line.strip()]
    if not lines:
        return 0
    fields = len(lines[-1])
    if len(lines) > 1 and not tail.endswith(("\n", "\r", "\t")):
        shape = [re.sub(r"\d", "9", row[fields - 1]) for row in lines[-2:] if len(row) >= fields]
        if len(shape) == 2 and len(shape[1]) < len(shape[0]) and shape[0].startswith(shape[1]):
            return fields - 1
    return fields


#: Parse errors a file cut inside a number gives on its last line.
_CUT_FIELD = ("is not a number", "time is not monotonic")


def _truncated_line(path: str | os.PathLike[str], err: DemsReadError) -> DemsReadError:
    """Name a parse error on the cut last line of a file without a final line break as such."""
    if err.line is None or not any(text in err.problem for text in _CUT_FIELD):
        return err
    if _tail(path).endswith(("\n", "\r")):
        return err
    with open(path, "rb") as handle:
        last = sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b"")) + 1
    if err.line != last:
        return err
    return DemsReadError(
        path, "the file ends in the middle of this line: it is truncated", err.line
    )


def _parse_blocks(
    path: str | os.PathLike[str], layout: QuaderaLayout, decimal: str, chunk_rows: int
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Parse the data once, block by block, checking each channel's clock as it goes."""
    n = len(layout.labels)
    # Column 3n (after the last triplet) must stay empty: pandas silently drops surplus
    # fields beyond its known columns, so a synthetic header declares one more column
    # than the triplets and any row with extra fields shows up there (or fails to parse).
    usecols = [3 * i + k for i in range(n) for k in (1, 2)] + [3 * n]
    with open(path, "rb") as handle:
        for _ in range(layout.skip_lines):
            handle.readline()
        stream = _PrefixedStream(
            "\t".join(f"c{i}" for i in range(3 * n + 1)).encode() + b"\n", handle
        )
        try:
            return _parse_stream(
                path, layout, io.BufferedReader(stream, 1 << 20), usecols, decimal, chunk_rows
            )
        except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as err:
            if isinstance(err, DemsReadError):
                raise
            bad_line, problem = _locate_bad_field(path, layout, decimal)
            raise DemsReadError(path, problem or f"cannot parse data ({err})", bad_line) from None


class _PrefixedStream(io.RawIOBase):
    """Raw byte stream: ``prefix`` first, then the rest of an open binary file."""

    def __init__(self, prefix: bytes, handle: Any):
        self._prefix = prefix
        self._handle = handle

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._prefix:
            count = min(len(buffer), len(self._prefix))
            buffer[:count] = self._prefix[:count]
            self._prefix = self._prefix[count:]
            return count
        count = self._handle.readinto(buffer)
        # pandas 2's C parser stops a number at a NUL byte and drops the rest of the field
        # (pandas 3 rejects it): refuse NUL bytes here so garbage never parses as a number.
        if count and b"\x00" in bytes(memoryview(buffer)[:count]):
            raise ValueError("NUL byte in the data")
        return count


def _parse_stream(
    path: str | os.PathLike[str],
    layout: QuaderaLayout,
    stream: Any,
    usecols: list[int],
    decimal: str,
    chunk_rows: int,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    reader = pd.read_csv(
        stream,
        sep="\t",
        header=0,
        index_col=False,
        usecols=usecols,
        dtype=np.float64,
        na_values=MISSING_TOKENS,
        keep_default_na=False,
        decimal=decimal,
        engine="c",
        float_precision=FLOAT_PRECISION,
        encoding="latin-1",
        chunksize=chunk_rows,
    )
    times, values = [], []
    previous = ended = None
    line = layout.skip_lines + 1
    with reader:
        for frame in reader:
            block = frame.to_numpy(dtype=np.float64)
            _check_no_extra_fields(path, block[:, -1], line, len(usecols) // 2 * 3)
            block = block[:, :-1]
            block[~np.isfinite(block)] = np.nan
            time, value = block[:, 0::2], block[:, 1::2]
            previous, ended = check_channel_times(path, time, layout.labels, line, previous, ended)
            times.append(time)
            values.append(value)
            line += len(block)
    return times, values


def _check_no_extra_fields(
    path: str | os.PathLike[str], extra: np.ndarray, first_line: int, width: int
) -> None:
    filled = np.flatnonzero(~np.isnan(extra))
    if filled.size:
        line = first_line + int(filled[0])
        raise DemsReadError(path, f"more fields than the {width} columns of the header", line)


def _locate_bad_field(
    path: str | os.PathLike[str], layout: QuaderaLayout, decimal: str
) -> tuple[int | None, str | None]:
    """Find the first unparsable number (slow path, used only after a parse error)."""
    width = 3 * len(layout.labels)
    with open(path, encoding="latin-1", newline=None) as handle:
        for number, line in enumerate(handle, start=1):
            if number <= layout.skip_lines:
                continue
            fields = line.rstrip("\r\n").split("\t")
            if any(extra.strip() for extra in fields[width:]):
                return number, f"{len(fields)} fields, more than the {width} columns of the header"
            for index, text in enumerate(fields):
                if index % 3 == 0 or text.strip() in MISSING_TOKENS:
                    continue
                try:
                    float(text.replace(",", ".") if decimal == "," else text)
                except ValueError:
                    title = _RELATIVE if index % 3 == 1 else layout.value_titles[index // 3]
                    shown = text.strip()[:40]
                    return number, f"{shown!r} is not a number (column {index + 1}, {title})"
    return None, None


def read_ms(
    path: str | os.PathLike[str],
    *,
    timezone: str | None = None,
    date_order: str | None = None,
    chunk_rows: int | None = None,
) -> xr.Dataset:
    """Read a QUADERA ``.asc`` export into the MS dataset of ``docs/conventions.md``.

    Parameters
    ----------
    path
        The ``.asc`` file.
    timezone
        IANA zone of the file's naive wall-clock times (default: this machine's zone).
    date_order
        ``"day-first"``, ``"month-first"`` or ``"year-first"``. Needed only when the file's
        dates do not prove the order (no day field > 12).
    chunk_rows
        Rows per dask chunk. ``None``: numpy arrays for files under 16 MiB, else chunks of
        65 536 rows.

    Returns
    -------
    xarray.Dataset
        ``signal(channel, sample)`` in A (ion current) or mbar (partial pressure) with each
        channel's own ``time(channel, sample)`` in s since ``start_time``.

    Raises
    ------
    DemsReadError
        Empty, truncated header, binary, non-numeric data, ambiguous dates, time that is
        not increasing (message names the file and line).
    """
    if os.path.getsize(path) == 0:
        raise DemsReadError(path, "file is empty")
    layout = read_layout(path)
    if not any(row.strip() for row in layout.head_rows):
        raise DemsReadError(path, "no data rows after the column line", layout.skip_lines)
    order, order_source = resolve_date_order(path, layout, date_order)
    zone, zone_name = resolve_timezone(timezone)
    start_time, start_source = _start_time(path, layout, order, zone)
    decimal = _decimal_of(layout)
    lazy = chunk_rows is not None or os.path.getsize(path) > LARGE_FILE_BYTES
    try:
        times, values = _parse_blocks(path, layout, decimal, chunk_rows or DEFAULT_CHUNK_ROWS)
    except DemsReadError as err:
        raise _truncated_line(path, err) from None
    time, value = np.concatenate(times), np.concatenate(values)
    _drop_truncated_triplets(path, time, value)
    samples = trailing_valid_length(time.T)
    time, value = np.ascontiguousarray(time[:samples].T), np.ascontiguousarray(value[:samples].T)
    if lazy:
        time, value = _as_dask(path, time, value, chunk_rows or DEFAULT_CHUNK_ROWS)
    units, quantity = _quantity(path, layout)
    attrs = {
        "start_time": start_time,
        "start_time_source": start_source,
        "timezone": zone_name,
        "timezone_source": "user" if timezone else "machine",
        "date_order": order,
        "date_order_source": order_source,
        "decimal": decimal,
        "header_json": header_json(layout.header),
        **provenance(path, f"{__name__}.read_ms", FORMAT),
    }
    return ms_dataset(time, value, layout.labels, units=units, quantity=quantity, attrs=attrs)


def _decimal_of(layout: QuaderaLayout) -> str:
    """Decimal separator judged on the relative-time and value fields of the first rows."""
    numeric = [
        "\t".join(f for i, f in enumerate(row.split("\t")) if i % 3) for row in layout.head_rows
    ]
    return detect_decimal(numeric)


def _quantity(path: str | os.PathLike[str], layout: QuaderaLayout) -> tuple[str, str]:
    kinds = {_UNITS[title] for title in layout.value_titles}
    if len(kinds) > 1:
        raise DemsReadError(
            path,
            "mixes ion current and partial pressure channels; export one quantity per file",
            layout.skip_lines,
        )
    return kinds.pop()


def _drop_truncated_triplets(
    path: str | os.PathLike[str], time: np.ndarray, value: np.ndarray
) -> None:
    """Blank the triplets missing from a truncated last line (in place)."""
    complete = _last_line_fields(path) // 3
    time[-1, complete:] = np.nan
    value[-1, complete:] = np.nan


def _as_dask(
    path: str | os.PathLike[str], time: np.ndarray, value: np.ndarray, chunk_rows: int
) -> tuple[Any, Any]:
    import dask.array as da
    from dask.base import tokenize

    stat = os.stat(path)
    token = tokenize(os.path.abspath(path), stat.st_mtime_ns, stat.st_size, chunk_rows)
    chunks = (time.shape[0], chunk_rows)
    return (
        da.from_array(time, chunks=chunks, name=f"quadera-time-{token}"),
        da.from_array(value, chunks=chunks, name=f"quadera-signal-{token}"),
    )


class QuaderaBackend(BackendEntrypoint):
    """xarray engine ``dems_quadera``: ``xr.open_dataset("run.asc", engine="dems_quadera")``."""

    sniff_order = 30

    description = "Pfeiffer QUADERA ASCII export (.asc) — mass spectrometer channels"
    url = "https://github.com/operando/operando/blob/main/docs/formats.md"
    open_dataset_parameters = (
        "filename_or_obj",
        "drop_variables",
        "timezone",
        "date_order",
        "chunk_rows",
    )

    def open_dataset(
        self,
        filename_or_obj: Any,
        *,
        drop_variables: Any = None,
        timezone: str | None = None,
        date_order: str | None = None,
        chunk_rows: int | None = None,
    ) -> xr.Dataset:
        """Open a QUADERA export; see :func:`read_ms` for the options."""
        ds = read_ms(
            filename_or_obj, timezone=timezone, date_order=date_order, chunk_rows=chunk_rows
        )
        return ds.drop_vars(drop_variables or [], errors="ignore")

    def guess_can_open(self, filename_or_obj: Any) -> bool:
        """Sniff the file content (not only the extension)."""
        return sniff(can_open, filename_or_obj)
