"""ixdat's CSV export (``Measurement.export``): MS and/or EC series with their own time columns.

Layout (``docs/formats.md``; reference: formats-dems §7)::

    ixdat version = 0.2.1dev
    name = 2021-11-11 08_56_25 CO-strip.tsv
    technique = MS
    tstamp = 1636617385.0                               epoch (s) at which time columns are 0
    timecol 'M2-x' for: 'M2'                            value series -> its time column
    timecol 'time/s' for: 'Ewe/V' and 'cycle number' and 'I/mA'
    aliases = {"raw_potential": ["Ewe/V"], ...}         JSON
    N_header_lines = 18                                 data start on line N + 1
    <empty>
    M2-x,<TAB>M2,<TAB>...                               column names on line N
    8400.09,<TAB>2.58e-10,<TAB>...                      shorter series padded with empty fields

ixdat 0.2.x writes the delimiter comma + TAB, later versions ``","``; both are read.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from xarray.backends import BackendEntrypoint

from dems.errors import DemsReadError, MissingStreamError
from dems.io.backend import header_json, provenance, sniff
from dems.io.eclab_columns import ec_variables
from dems.io.locale import FLOAT_PRECISION, reject_nul_bytes
from dems.io.ms_channels import check_channel_times, ms_dataset, trailing_valid_length
from dems.io.timestamps import from_unix, iso, resolve_timezone

__all__ = ["FORMAT", "KIND", "IxdatCsvBackend", "can_open", "read_ec", "read_ms"]

FORMAT = "ixdat CSV export"
KIND = "ms+ec"
ENGINE = "dems_ixdat_csv"

_TIMECOL = re.compile(r"^timecol '(?P<time>[^']*)' for: (?P<values>.*)$")
_QUOTED = re.compile(r"'([^']*)'")
_MS_SERIES = re.compile(r"^M\d+(?:\.\d+)?$")
_MAX_HEADER_LINES = 500


@dataclass
class IxdatLayout:
    """The header of an ixdat CSV export.

    Attributes
    ----------
    header
        ``key = value`` pairs (text), including ``timecol`` lines verbatim.
    timecols
        Value series name -> name of its time column.
    columns
        Column names (stripped) in file order.
    delimiter
        ``","`` followed by a TAB (ixdat 0.2.x), or ``","``.
    skip_lines
        Lines before the first data line (= ``N_header_lines``).
    tstamp
        Epoch in s at which the time columns are 0.
    """

    header: dict[str, str] = field(default_factory=dict)
    timecols: dict[str, str] = field(default_factory=dict)
    columns: list[str] = field(default_factory=list)
    delimiter: str = ","
    skip_lines: int = 0
    tstamp: float = float("nan")


def can_open(path: str | os.PathLike[str], head: bytes) -> bool:
    """Whether ``head`` looks like an ixdat CSV export (``ixdat version =``, ``N_header_lines``)."""
    return head.startswith(b"ixdat version = ") and b"\nN_header_lines = " in head


def read_layout(path: str | os.PathLike[str]) -> IxdatLayout:
    """Parse the ``key = value`` header and the column-name line.

    Raises
    ------
    DemsReadError
        If ``N_header_lines`` or ``tstamp`` is missing or invalid, or the column line is
        not where ``N_header_lines`` says.
    """
    layout = IxdatLayout()
    with open(path, encoding="utf-8", errors="replace", newline=None) as handle:
        lines: list[str] = []
        for number, line in enumerate(handle, start=1):
            if "\x00" in line:
                raise DemsReadError(path, "binary content, not an ixdat CSV export", line=number)
            lines.append(line.rstrip("\r\n"))
            if layout.skip_lines and number == layout.skip_lines:
                break
            if not layout.skip_lines:
                _header_line(path, layout, lines[-1], number)
            if number >= _MAX_HEADER_LINES and not layout.skip_lines:
                break
    if not layout.skip_lines:
        raise DemsReadError(path, "not an ixdat CSV export: no 'N_header_lines = <n>' line")
    if len(lines) < layout.skip_lines:
        raise DemsReadError(
            path, f"file ends before the column line {layout.skip_lines}", len(lines)
        )
    names_line = lines[layout.skip_lines - 1]
    layout.delimiter = ",\t" if ",\t" in names_line else ","
    layout.columns = [name.strip() for name in names_line.split(",")]
    missing = sorted({*layout.timecols, *layout.timecols.values()} - set(layout.columns))
    if missing:
        raise DemsReadError(
            path, f"column line lacks series named in 'timecol' lines: {missing}", layout.skip_lines
        )
    if not np.isfinite(layout.tstamp):
        raise DemsReadError(path, "no 'tstamp = <epoch>' line: absolute time unknown")
    return layout


def _header_line(path: str | os.PathLike[str], layout: IxdatLayout, text: str, number: int) -> None:
    match = _TIMECOL.match(text)
    if match:
        for name in _QUOTED.findall(match["values"]):
            layout.timecols[name] = match["time"]
        return
    key, sep, value = text.partition(" = ")
    if not sep:
        return
    key, value = key.strip(), value.strip()
    layout.header[key] = value
    try:
        if key == "N_header_lines":
            layout.skip_lines = int(value)
            if layout.skip_lines <= number:
                raise ValueError("it must point after itself")
        elif key == "tstamp":
            layout.tstamp = float(value)
    except ValueError as err:
        raise DemsReadError(path, f"invalid {key} {value!r} ({err})", number) from None


def _read_columns(path: str | os.PathLike[str], layout: IxdatLayout) -> dict[str, np.ndarray]:
    """All data columns as float64 (empty padding fields -> NaN), parsed once."""
    width = len(layout.columns)
    reject_nul_bytes(path)
    try:
        frame = pd.read_csv(
            path,
            sep=",",
            header=None,
            names=list(range(width)),
            index_col=False,
            skiprows=layout.skip_lines,
            dtype=np.float64,
            na_values=["\t", "", "NaN", "nan", "-nan"],
            keep_default_na=False,
            engine="c",
            float_precision=FLOAT_PRECISION,
            encoding="utf-8",
            encoding_errors="replace",
        )
    except (ValueError, pd.errors.ParserError) as err:
        line, problem = _locate_bad_field(path, layout)
        raise DemsReadError(path, problem or f"cannot parse data ({err})", line) from None
    values = frame.to_numpy(dtype=np.float64)
    values[~np.isfinite(values)] = np.nan
    return {name: values[:, i] for i, name in enumerate(layout.columns)}


def _locate_bad_field(
    path: str | os.PathLike[str], layout: IxdatLayout
) -> tuple[int | None, str | None]:
    """Find the first malformed data line (slow path, used only after a parse error)."""
    width = len(layout.columns)
    with open(path, encoding="utf-8", errors="replace", newline=None) as handle:
        for number, line in enumerate(handle, start=1):
            if number <= layout.skip_lines or not line.strip():
                continue
            fields = line.rstrip("\r\n").split(",")
            if len(fields) > width:
                return number, f"{len(fields)} fields, more than the {width} columns"
            for name, text in zip(layout.columns, fields, strict=False):
                text = text.strip()
                if text in ("", "NaN", "nan", "-nan"):
                    continue
                try:
                    float(text)
                except ValueError:
                    return number, f"{text!r} is not a number (column {name!r})"
    return None, None


def _time_attrs(layout: IxdatLayout, timezone: str | None) -> dict[str, Any]:
    zone, zone_name = resolve_timezone(timezone)
    return {
        "start_time": iso(from_unix(layout.tstamp, zone)),
        "timezone": zone_name,
        "timezone_source": "file",
        "header_json": header_json(layout.header),
    }


def ms_series(layout: IxdatLayout) -> list[str]:
    """Names of the mass-spectrometer series (``M<mass>`` with a time column), in file order."""
    return [n for n in layout.columns if _MS_SERIES.match(n) and n in layout.timecols]


def ec_time_column(layout: IxdatLayout) -> str | None:
    """Name the time column of the potential/current series (``None`` if the file has none)."""
    aliases = _aliases(layout)
    raw = aliases.get("raw_potential", []) + aliases.get("raw_current", [])
    for name in [*raw, "Ewe/V", "<Ewe>/V", "I/mA", "<I>/mA"]:
        if name in layout.timecols:
            return layout.timecols[name]
    return None


def _aliases(layout: IxdatLayout) -> dict[str, list[str]]:
    try:
        aliases = json.loads(layout.header.get("aliases", "{}"))
    except json.JSONDecodeError:
        return {}
    return (
        {k: v for k, v in aliases.items() if isinstance(v, list)}
        if isinstance(aliases, dict)
        else {}
    )


def read_ms(path: str | os.PathLike[str], *, timezone: str | None = None) -> xr.Dataset:
    """Read the MS series (``M2``, ``M44`` …) of an ixdat CSV export.

    Parameters
    ----------
    path
        The ``.csv`` file.
    timezone
        IANA zone in which ``start_time`` is shown (the instant comes from ``tstamp``).

    Returns
    -------
    xarray.Dataset
        ``signal(channel, sample)`` in A with each channel's own ``time(channel, sample)``
        in s since ``start_time`` (= ``tstamp``).

    Raises
    ------
    MissingStreamError
        If the file holds no ``M<mass>`` series (e.g. an EC-only export).
    DemsReadError
        Malformed header or data, time not increasing.
    """
    layout = _checked_layout(path)
    names = ms_series(layout)
    if not names:
        raise MissingStreamError(path, "holds no mass-spectrometer series (no 'M<mass>' columns)")
    columns = _read_columns(path, layout)
    time = np.vstack([columns[layout.timecols[n]] for n in names])
    signal = np.vstack([columns[n] for n in names])
    check_channel_times(path, time.T, names, layout.skip_lines + 1)
    samples = trailing_valid_length(time)
    attrs = {
        **_time_attrs(layout, timezone),
        "technique": layout.header.get("technique", ""),
        "delimiter": layout.delimiter,
        **provenance(path, f"{__name__}.read_ms", FORMAT),
    }
    return ms_dataset(
        time[:, :samples],
        signal[:, :samples],
        names,
        units="A",
        quantity="ion current",
        attrs=attrs,
    )


def read_ec(path: str | os.PathLike[str], *, timezone: str | None = None) -> xr.Dataset:
    """Read the potentiostat series (those on the time column of ``Ewe``/``I``, except ``M<mass>``).

    Parameters
    ----------
    path
        The ``.csv`` file.
    timezone
        IANA zone in which ``start_time`` is shown (the instant comes from ``tstamp``).

    Returns
    -------
    xarray.Dataset
        One variable per column (``Ewe``, ``<I>``, ``cycle number`` …, units from the
        ``name/unit`` titles), canonical ``potential`` (V) and ``current`` (mA), and
        ``cycle`` when present, on ``time`` in s since ``start_time`` (= ``tstamp``).

    Raises
    ------
    MissingStreamError
        If no series has a potential/current time column (e.g. an MS-only export).
    """
    layout = _checked_layout(path)
    time_name = ec_time_column(layout)
    if time_name is None:
        raise MissingStreamError(path, "holds no potentiostat series (no Ewe/I columns)")
    columns = _read_columns(path, layout)
    time = columns[time_name]
    check_channel_times(path, time[:, None], [time_name], layout.skip_lines + 1, what="column")
    samples = trailing_valid_length(time)
    names = [
        n for n in layout.columns if layout.timecols.get(n) == time_name and not _MS_SERIES.match(n)
    ]
    values = [columns[title][:samples] for title in names]
    rows = np.arange(samples) + layout.skip_lines + 1  # 1-based file lines, for warnings
    variables, canonical_attrs = ec_variables(names, values, time[:samples], rows, Path(path).name)
    return xr.Dataset(
        variables,
        coords={"time": ("time", time[:samples], {"units": "s", "long_name": time_name})},
        attrs={
            **_time_attrs(layout, timezone),
            "technique": layout.header.get("technique", ""),
            "characteristic_mass_g": float("nan"),
            "mass_key": "",
            "decimal": ".",
            **canonical_attrs,
            **provenance(path, f"{__name__}.read_ec", FORMAT),
        },
    )


def _checked_layout(path: str | os.PathLike[str]) -> IxdatLayout:
    if not os.path.exists(path):
        raise DemsReadError(path, "no such file")
    if os.path.getsize(path) == 0:
        raise DemsReadError(path, "file is empty")
    return read_layout(path)


class IxdatCsvBackend(BackendEntrypoint):
    """xarray engine ``dems_ixdat_csv``; ``stream="ms"`` or ``"ec"`` (default: MS if present)."""

    sniff_order = 50

    description = "ixdat CSV export (.csv) — MS series and/or potentiostat series"
    url = "https://github.com/operando/operando/blob/main/docs/formats.md"
    open_dataset_parameters = ("filename_or_obj", "drop_variables", "stream", "timezone")

    def open_dataset(
        self,
        filename_or_obj: Any,
        *,
        drop_variables: Any = None,
        stream: str | None = None,
        timezone: str | None = None,
    ) -> xr.Dataset:
        """Open the ``stream="ms"`` or ``stream="ec"`` part of an ixdat CSV export.

        Without ``stream`` the MS series are returned when the file has any, else the
        potentiostat series.
        """
        readers = {"ms": read_ms, "ec": read_ec}
        if stream is None:
            stream = "ms" if ms_series(_checked_layout(filename_or_obj)) else "ec"
        if stream not in readers:
            raise ValueError(f"stream must be 'ms' or 'ec', not {stream!r}")
        ds = readers[stream](filename_or_obj, timezone=timezone)
        return ds.drop_vars(drop_variables or [], errors="ignore")

    def guess_can_open(self, filename_or_obj: Any) -> bool:
        """Sniff the file content (not only the extension)."""
        return sniff(can_open, filename_or_obj)
