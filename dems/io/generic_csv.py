"""operando's generic MS CSV layout: a ``time_s`` column plus one column per m/z.

Specification (also in ``docs/formats.md``)::

    # start_time = 2026-11-27T10:00:00+01:00     optional; ISO 8601, offset recommended
    # units = A                                  optional; "A" (default) or "mbar"
    # <any key> = <value>                        optional; kept in header_json
    time_s,M2,M28,M32,M44                        header: time_s, then M<mass> columns
    0.0,1.2e-10,3.4e-9,5.6e-11,7.8e-12           seconds since start_time, values
    1.0,1.3e-10,3.4e-9,5.5e-11,,                 empty or NaN = missing

* Lines before the header start with ``#`` (or are empty); ``# key = value`` pairs are read.
* Field separator ``,`` or ``;`` (from the header line). With ``;`` the decimal separator
  may be ``,`` (detected from the data).
* ``time_s`` is shared by all channels, strictly increasing and never missing.
* A naive ``start_time`` (no offset) is interpreted in ``timezone=``.

The reader is sniffed last and accepts only files whose header line matches exactly.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from xarray.backends import BackendEntrypoint

from dems.errors import DemsReadError
from dems.io.backend import header_json, provenance, sniff
from dems.io.locale import FLOAT_PRECISION, detect_decimal, reject_nul_bytes
from dems.io.ms_channels import check_channel_times, ms_dataset
from dems.io.timestamps import iso, localize, resolve_timezone

__all__ = ["FORMAT", "KIND", "GenericCsvBackend", "can_open", "read_ms"]

FORMAT = "operando generic MS CSV"
KIND = "ms"
ENGINE = "dems_csv"

TIME_COLUMN = "time_s"
QUANTITIES = {"A": "ion current", "mbar": "partial pressure"}
MISSING_TOKENS = ["", "NaN", "nan", "-nan", "---"]

_MASS_COLUMN = re.compile(r"^M\d+(?:\.\d+)?$")
_KEY_VALUE = re.compile(r"^#\s*(?P<key>[A-Za-z_][\w ]*?)\s*=\s*(?P<value>.*?)\s*$")
_MAX_HEADER_LINES = 200


@dataclass
class CsvLayout:
    """Comment header and column line of a generic CSV file.

    Attributes
    ----------
    header
        ``# key = value`` pairs.
    header_lines
        1-based line of each key.
    columns
        Column names (``time_s``, ``M2`` …).
    separator
        ``","`` or ``";"``.
    skip_lines
        Lines up to and including the column line.
    """

    header: dict[str, str] = field(default_factory=dict)
    header_lines: dict[str, int] = field(default_factory=dict)
    columns: list[str] = field(default_factory=list)
    separator: str = ","
    skip_lines: int = 0


def _split_columns(line: str) -> tuple[str, list[str]] | None:
    """``(separator, names)`` if ``line`` is a valid header line, else ``None``."""
    for separator in (",", ";"):
        names = [name.strip() for name in line.split(separator)]
        if (
            len(names) >= 2
            and names[0] == TIME_COLUMN
            and all(_MASS_COLUMN.match(name) for name in names[1:])
            and len(set(names)) == len(names)
        ):
            return separator, names
    return None


def can_open(path: str | os.PathLike[str], head: bytes) -> bool:
    """Whether the first non-comment line of ``head`` is exactly ``time_s,M<mass>,…``."""
    for line in head.decode("latin-1").splitlines():
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        return _split_columns(text) is not None
    return False


def read_layout(path: str | os.PathLike[str]) -> CsvLayout:
    """Read the ``#`` header and the column line.

    Raises
    ------
    DemsReadError
        If the first non-comment line is not ``time_s,M<mass>,…``.
    """
    layout = CsvLayout()
    with open(path, encoding="utf-8", errors="replace", newline=None) as handle:
        for number, line in enumerate(handle, start=1):
            if "\x00" in line:
                raise DemsReadError(path, "binary content, not a CSV file", line=number)
            text = line.strip()
            if not text:
                continue
            if text.startswith("#"):
                match = _KEY_VALUE.match(text)
                if match:
                    layout.header[match["key"]] = match["value"]
                    layout.header_lines[match["key"]] = number
                if number >= _MAX_HEADER_LINES:
                    break
                continue
            split = _split_columns(text)
            if split is None:
                raise DemsReadError(
                    path,
                    f"not a generic MS CSV: the header must be '{TIME_COLUMN},M<mass>,…' "
                    f"(comma or semicolon separated), not {text[:60]!r}",
                    number,
                )
            layout.separator, layout.columns = split
            layout.skip_lines = number
            return layout
    raise DemsReadError(path, f"not a generic MS CSV: no '{TIME_COLUMN},M<mass>,…' header line")


def _start_time(
    path: str | os.PathLike[str], layout: CsvLayout, timezone: str | None
) -> dict[str, Any]:
    zone, zone_name = resolve_timezone(timezone)
    text = layout.header.get("start_time")
    if text is None:
        return {
            "start_time": "",
            "start_time_reason": "no '# start_time = …' line in the file",
            "timezone": zone_name,
            "timezone_source": "user" if timezone else "machine",
        }
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        line = layout.header_lines["start_time"]
        raise DemsReadError(path, f"start_time {text!r} is not ISO 8601", line) from None
    if moment.tzinfo is not None:
        return {
            "start_time": iso(moment),
            "timezone": str(moment.tzinfo),
            "timezone_source": "file",
        }
    return {
        "start_time": iso(localize(moment, zone)),
        "timezone": zone_name,
        "timezone_source": "user" if timezone else "machine",
    }


def _units(path: str | os.PathLike[str], layout: CsvLayout) -> tuple[str, str]:
    units = layout.header.get("units", "A")
    if units not in QUANTITIES:
        line = layout.header_lines.get("units")
        raise DemsReadError(path, f"units {units!r} not supported (use 'A' or 'mbar')", line)
    return units, QUANTITIES[units]


def _read_values(path: str | os.PathLike[str], layout: CsvLayout) -> tuple[np.ndarray, str]:
    """Parse the table once; returns ``(values (rows, columns), decimal)``."""
    decimal = "."
    if layout.separator == ";":
        with open(path, encoding="utf-8", errors="replace") as handle:
            sample = [line for _, line in zip(range(layout.skip_lines + 20), handle, strict=False)]
        decimal = detect_decimal(sample[layout.skip_lines :], sep=";")
    reject_nul_bytes(path)
    try:
        frame = pd.read_csv(
            path,
            sep=layout.separator,
            header=None,
            names=layout.columns,
            index_col=False,
            skiprows=layout.skip_lines,
            dtype=np.float64,
            na_values=MISSING_TOKENS,
            keep_default_na=False,
            decimal=decimal,
            skip_blank_lines=True,
            engine="c",
            float_precision=FLOAT_PRECISION,
            encoding="utf-8",
            encoding_errors="replace",
        )
    except (ValueError, pd.errors.ParserError) as err:
        line, problem = _locate_bad_field(path, layout, decimal)
        raise DemsReadError(path, problem or f"cannot parse data ({err})", line) from None
    values = frame.to_numpy(dtype=np.float64)
    values[~np.isfinite(values)] = np.nan
    return values, decimal


def _locate_bad_field(
    path: str | os.PathLike[str], layout: CsvLayout, decimal: str
) -> tuple[int | None, str | None]:
    """Find the first malformed data line (slow path, used only after a parse error)."""
    width = len(layout.columns)
    with open(path, encoding="utf-8", errors="replace", newline=None) as handle:
        for number, line in enumerate(handle, start=1):
            if number <= layout.skip_lines or not line.strip():
                continue
            fields = line.rstrip("\r\n").split(layout.separator)
            if len(fields) > width:
                return number, f"{len(fields)} fields, more than the {width} columns"
            for name, text in zip(layout.columns, fields, strict=False):
                text = text.strip()
                if text in MISSING_TOKENS:
                    continue
                try:
                    float(text.replace(",", ".") if decimal == "," else text)
                except ValueError:
                    return number, f"{text!r} is not a number (column {name!r})"
    return None, None


def read_ms(path: str | os.PathLike[str], *, timezone: str | None = None) -> xr.Dataset:
    """Read a generic MS CSV file (layout in the module docstring and ``docs/formats.md``).

    Parameters
    ----------
    path
        The ``.csv`` file.
    timezone
        IANA zone for a ``start_time`` written without UTC offset (default: this machine's).

    Returns
    -------
    xarray.Dataset
        ``signal(channel, sample)`` in the file's units (A or mbar), ``time(channel,
        sample)`` = ``time_s`` for every channel.

    Raises
    ------
    DemsReadError
        Header not matching the layout, non-numeric values, missing or non-increasing
        ``time_s``.
    """
    if os.path.getsize(path) == 0:
        raise DemsReadError(path, "file is empty")
    layout = read_layout(path)
    units, quantity = _units(path, layout)
    attrs = _start_time(path, layout, timezone)
    values, decimal = _read_values(path, layout)
    time = values[:, 0]
    missing = np.flatnonzero(np.isnan(time))
    if missing.size:
        line = _data_line_number(path, layout, int(missing[0]))
        raise DemsReadError(path, f"{TIME_COLUMN} is missing", line)
    check_channel_times(path, time[:, None], [TIME_COLUMN], layout.skip_lines + 1, what="column")
    signal = np.ascontiguousarray(values[:, 1:].T)
    attrs |= {
        "separator": layout.separator,
        "decimal": decimal,
        "header_json": header_json(layout.header),
        **provenance(path, f"{__name__}.read_ms", FORMAT),
    }
    return ms_dataset(
        np.broadcast_to(time, signal.shape).copy(),
        signal,
        layout.columns[1:],
        units=units,
        quantity=quantity,
        attrs=attrs,
    )


def _data_line_number(path: str | os.PathLike[str], layout: CsvLayout, row: int) -> int:
    """1-based line of data row ``row`` (blank lines are skipped by the parser)."""
    seen = -1
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if number > layout.skip_lines and line.strip():
                seen += 1
                if seen == row:
                    return number
    return layout.skip_lines + 1 + row


class GenericCsvBackend(BackendEntrypoint):
    """xarray engine ``dems_csv``: ``xr.open_dataset("run.csv", engine="dems_csv")``."""

    sniff_order = 90

    description = "operando generic MS CSV (time_s + M<mass> columns)"
    url = "https://github.com/operando/operando/blob/main/docs/formats.md"
    open_dataset_parameters = ("filename_or_obj", "drop_variables", "timezone")

    def open_dataset(
        self,
        filename_or_obj: Any,
        *,
        drop_variables: Any = None,
        timezone: str | None = None,
    ) -> xr.Dataset:
        """Open a generic MS CSV file; see :func:`read_ms`."""
        ds = read_ms(filename_or_obj, timezone=timezone)
        return ds.drop_vars(drop_variables or [], errors="ignore")

    def guess_can_open(self, filename_or_obj: Any) -> bool:
        """Sniff the file content (not only the extension)."""
        return sniff(can_open, filename_or_obj)
