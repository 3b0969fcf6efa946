"""Pfeiffer PV MassSpec exports (``.dat``): "EXPORTED SCAN DATA" spectra and MID ("Bin") tables.

Layout (``docs/formats.md``; reference: formats-dems §4)::

    PV MassSpec-18.05.05                  key/value preamble of any length (18.x: 7 lines,
    EXPORTED SCAN DATA                    20.x: ~370 lines), found and skipped by content
    ...
    02/25/2020 11:10:13
    3 TimePoints
    <empty>
    Time Relative (sec)<TAB>Time Absolute (UTC)<TAB>Time Absolute (Date_Time)<TAB>Step<TAB>0.20 ...
    237.308<TAB>1582625650.827<TAB>02/25/2020_11:14:10.827<TAB>1<TAB>1.683892886e-10<TAB>...

* **Scan export**: mass axis in the column names (``0.20`` … ``90.00``); each row is one
  sweep. Returned as ``signal(scan, mass)`` with ``time(scan)`` — spectra, not channels.
* **MID / Bin export**: one column per monitored mass (``32_amu``), all sharing the row's
  time. Returned in the MS channel layout of ``docs/conventions.md``.

``Time Absolute (UTC)`` is a true epoch and fixes ``start_time``; the neighbouring
``Time Absolute (Date_Time)`` is local wall-clock time and is not parsed.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from xarray.backends import BackendEntrypoint

from dems.errors import DemsReadError
from dems.io.backend import header_json, provenance, sniff
from dems.io.datestrings import DATE_ORDERS, DateStringError, infer_date_order, parse_wallclock
from dems.io.locale import FLOAT_PRECISION, reject_nul_bytes
from dems.io.ms_channels import channel_identity, check_channel_times, ms_dataset
from dems.io.timestamps import from_unix, iso, localize, resolve_timezone

__all__ = ["FORMAT", "KIND", "PVMassSpecBackend", "can_open", "read_ms"]

FORMAT = "Pfeiffer PV MassSpec .dat"
KIND = "ms"
ENGINE = "dems_pvmassspec"

RELATIVE = "Time Relative (sec)"
EPOCH = "Time Absolute (UTC)"
LOCAL = "Time Absolute (Date_Time)"
MISSING_TOKENS = ["-nan", "nan", "NaN", "-NaN", "", "---"]
UNITS_NOTE = "assumed: PV MassSpec writes ion currents in A and the export names no unit"

_MID_COLUMN = re.compile(r"^\d+(?:\.\d+)?_amu$")
_MASS_COLUMN = re.compile(r"^\d+(?:\.\d+)?$")
_PREAMBLE_DATE = re.compile(r"^\d{1,2}[/-]\d{1,2}[/-]\d{4} \d{1,2}:\d{2}:\d{2}$")
_MAX_HEADER_LINES = 5000


@dataclass
class PVLayout:
    """Preamble and columns of a PV MassSpec export.

    Attributes
    ----------
    preamble
        Preamble lines (verbatim, without empty lines), with their 1-based line numbers.
    columns
        Column names of the table.
    skip_lines
        Lines before the first data line.
    kind
        ``"scan"`` (mass axis in the column names) or ``"mid"`` (``<mass>_amu`` columns).
    """

    preamble: list[tuple[int, str]] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    skip_lines: int = 0
    kind: str = ""

    def header(self) -> dict[str, Any]:
        """Preamble as a dict: ``key: value`` lines split, other lines under ``"lines"``."""
        header: dict[str, Any] = {"lines": []}
        for _, text in self.preamble:
            key, sep, value = text.partition(": ")
            if sep and key.strip():
                header[key.strip()] = value.strip()
            else:
                header["lines"].append(text)
        return header


def can_open(path: str | os.PathLike[str], head: bytes) -> bool:
    """Whether ``head`` looks like a PV MassSpec export (banner, export title or time column)."""
    text = head.decode("latin-1")
    first = text.lstrip("\ufeff").split("\n", 1)[0]
    return (
        first.startswith("PV MassSpec")
        or bool(re.search(r"^EXPORTED (SCAN|BIN|MID) DATA", text, re.MULTILINE))
        or f"\n{RELATIVE}\t" in text
    )


def read_layout(path: str | os.PathLike[str]) -> PVLayout:
    """Find the column line by content (the line starting with ``Time Relative (sec)``).

    Raises
    ------
    DemsReadError
        If no such line exists or its columns are neither a scan nor a MID table.
    """
    layout = PVLayout()
    with open(path, encoding="latin-1", newline=None) as handle:
        for number, line in enumerate(handle, start=1):
            if "\x00" in line:
                raise DemsReadError(path, "binary content, not a PV MassSpec export", line=number)
            text = line.rstrip("\r\n")
            if text.startswith(RELATIVE):
                layout.columns = [name.strip() for name in text.rstrip("\t").split("\t")]
                layout.skip_lines = number
                layout.kind = _table_kind(path, layout.columns, number)
                return layout
            if text.strip():
                layout.preamble.append((number, text.strip()))
            if number >= _MAX_HEADER_LINES:
                break
    raise DemsReadError(
        path, f"not a PV MassSpec export: no column line starting with {RELATIVE!r}"
    )


def _table_kind(path: str | os.PathLike[str], columns: list[str], line: int) -> str:
    if any(_MID_COLUMN.match(name) for name in columns):
        return "mid"
    if any(_MASS_COLUMN.match(name) for name in columns):
        return "scan"
    raise DemsReadError(
        path, "no mass columns ('32_amu' or '0.20' … '90.00') in the column line", line
    )


def _read_table(path: str | os.PathLike[str], layout: PVLayout) -> pd.DataFrame:
    """Parse every column except the local date strings, once, with the C parser."""
    wanted = [name for name in layout.columns if name != LOCAL]
    reject_nul_bytes(path)
    try:
        frame = pd.read_csv(
            path,
            sep="\t",
            header=None,
            names=layout.columns,
            index_col=False,
            usecols=wanted,
            skiprows=layout.skip_lines,
            na_values=MISSING_TOKENS,
            keep_default_na=False,
            engine="c",
            float_precision=FLOAT_PRECISION,
            encoding="latin-1",
        )
    except (ValueError, pd.errors.ParserError) as err:
        raise DemsReadError(path, f"cannot parse the table ({err})", layout.skip_lines) from None
    for name in _numeric_columns(layout):
        if frame[name].dtype.kind != "f" and frame[name].dtype.kind != "i":
            _raise_not_a_number(path, layout, frame, name)
    return frame


def _numeric_columns(layout: PVLayout) -> list[str]:
    return [
        n
        for n in layout.columns
        if n in (RELATIVE, EPOCH, "Step") or _MID_COLUMN.match(n) or _MASS_COLUMN.match(n)
    ]


def _raise_not_a_number(
    path: str | os.PathLike[str], layout: PVLayout, frame: pd.DataFrame, name: str
) -> None:
    numbers = pd.to_numeric(frame[name], errors="coerce")
    bad = np.flatnonzero(numbers.isna() & frame[name].notna())
    row = int(bad[0]) if bad.size else 0
    text = frame[name].iloc[row]
    raise DemsReadError(
        path, f"{text!r} is not a number (column {name!r})", layout.skip_lines + 1 + row
    )


def _start_instant(
    path: str | os.PathLike[str],
    layout: PVLayout,
    frame: pd.DataFrame,
    timezone: str | None,
    date_order: str | None,
) -> dict[str, Any]:
    """Attributes ``start_time``, ``timezone``, ``timezone_source`` (+ how the start was found)."""
    zone, zone_name = resolve_timezone(timezone)
    relative = frame[RELATIVE].to_numpy(dtype=float)
    if EPOCH in frame:
        epoch = frame[EPOCH].to_numpy(dtype=float)
        ok = np.flatnonzero(np.isfinite(epoch) & np.isfinite(relative))
        if ok.size:
            start = from_unix(float(epoch[ok[0]] - relative[ok[0]]), zone)
            return {
                "start_time": iso(start),
                "start_time_source": f"{EPOCH} - {RELATIVE} of the first row",
                "timezone": zone_name,
                "timezone_source": "file",
            }
    dated = [(n, t) for n, t in layout.preamble if _PREAMBLE_DATE.match(t)]
    if not dated:
        raise DemsReadError(path, "no epoch column and no date line in the preamble: start unknown")
    line, text = dated[0]
    if date_order is not None and date_order not in DATE_ORDERS:
        raise ValueError(f"date_order must be one of {', '.join(DATE_ORDERS)}, not {date_order!r}")
    try:
        proven = infer_date_order([text])
        if proven and date_order and proven != date_order:
            raise DateStringError(f"date_order={date_order!r} contradicts {text!r} ({proven})")
        order = date_order or proven or "month-first"
        naive = parse_wallclock(text, order)
    except DateStringError as err:
        raise DemsReadError(path, str(err), line) from None
    return {
        "start_time": iso(localize(naive, zone)),
        "start_time_source": f"preamble line {line} ({order})",
        "timezone": zone_name,
        "timezone_source": "user" if timezone else "machine",
    }


def read_ms(
    path: str | os.PathLike[str],
    *,
    timezone: str | None = None,
    date_order: str | None = None,
) -> xr.Dataset:
    """Read a PV MassSpec scan or MID export.

    Parameters
    ----------
    path
        The ``.dat`` file.
    timezone
        IANA zone for showing ``start_time`` (and for interpreting the preamble's naive
        date when the table has no ``Time Absolute (UTC)`` epoch column).
    date_order
        Order of the preamble date, used only without an epoch column; default
        ``"month-first"`` (PV MassSpec writes ``mm/dd/yyyy``) unless the date proves
        otherwise.

    Returns
    -------
    xarray.Dataset
        Scan export: ``signal(scan, mass)`` in A with ``time(scan)`` in s since
        ``start_time`` (attribute ``layout = "mass scan"``). MID export: the MS channel
        layout ``signal(channel, sample)`` with ``time(channel, sample)`` (``layout =
        "channels"``); other numeric columns become ``(sample)`` variables.

    Raises
    ------
    DemsReadError
        Empty, binary, no ``Time Relative (sec)`` line, non-numeric values, time not
        increasing.
    """
    if os.path.getsize(path) == 0:
        raise DemsReadError(path, "file is empty")
    layout = read_layout(path)
    frame = _read_table(path, layout)
    relative = frame[RELATIVE].to_numpy(dtype=float)
    check_channel_times(path, relative[:, None], [RELATIVE], layout.skip_lines + 1, what="column")
    attrs = {
        **_start_instant(path, layout, frame, timezone, date_order),
        "header_json": header_json(layout.header()),
        "units_note": UNITS_NOTE,
    }
    if layout.kind == "scan":
        return _scan_dataset(path, layout, frame, attrs)
    return _mid_dataset(path, layout, frame, attrs)


def _scan_dataset(
    path: str | os.PathLike[str], layout: PVLayout, frame: pd.DataFrame, attrs: dict[str, Any]
) -> xr.Dataset:
    masses = [n for n in layout.columns if _MASS_COLUMN.match(n)]
    signal = frame[masses].to_numpy(dtype=float)
    signal[~np.isfinite(signal)] = np.nan
    coords: dict[str, Any] = {
        "scan": ("scan", np.arange(len(frame), dtype=np.int64)),
        "mass": ("mass", np.array([float(m) for m in masses]), {"units": "u", "long_name": "m/z"}),
        "time": ("scan", frame[RELATIVE].to_numpy(dtype=float), _time_attrs()),
    }
    if "Step" in frame:
        coords["step"] = ("scan", frame["Step"].to_numpy(), {"long_name": "Step"})
    return xr.Dataset(
        {"signal": (("scan", "mass"), signal, {"units": "A", "long_name": "ion current"})},
        coords=coords,
        attrs={
            **attrs,
            "layout": "mass scan",
            "quantity": "ion current",
            **provenance(path, f"{__name__}.read_ms", FORMAT),
        },
    )


def _mid_dataset(
    path: str | os.PathLike[str], layout: PVLayout, frame: pd.DataFrame, attrs: dict[str, Any]
) -> xr.Dataset:
    labels = [n for n in layout.columns if _MID_COLUMN.match(n)]
    signal = frame[labels].to_numpy(dtype=float).T.copy()
    signal[~np.isfinite(signal)] = np.nan
    time = np.broadcast_to(frame[RELATIVE].to_numpy(dtype=float), signal.shape).copy()
    ds = ms_dataset(
        time,
        signal,
        labels,
        units="A",
        quantity="ion current",
        attrs={**attrs, "layout": "channels", **provenance(path, f"{__name__}.read_ms", FORMAT)},
    )
    for name in layout.columns:
        if name in labels or name in (RELATIVE, LOCAL):
            continue
        values = frame[name].to_numpy()
        variable, _ = channel_identity(name)
        ds[variable if variable not in ds.variables else f"{variable}_column"] = (
            "sample",
            values,
            {"long_name": name},
        )
    return ds


def _time_attrs() -> dict[str, str]:
    return {"units": "s", "long_name": "time since start_time"}


class PVMassSpecBackend(BackendEntrypoint):
    """xarray engine ``dems_pvmassspec``: ``xr.open_dataset(path, engine="dems_pvmassspec")``."""

    sniff_order = 40

    description = "Pfeiffer PV MassSpec export (.dat) — mass scans or MID channels"
    url = "https://github.com/operando/operando/blob/main/docs/formats.md"
    open_dataset_parameters = ("filename_or_obj", "drop_variables", "timezone", "date_order")

    def open_dataset(
        self,
        filename_or_obj: Any,
        *,
        drop_variables: Any = None,
        timezone: str | None = None,
        date_order: str | None = None,
    ) -> xr.Dataset:
        """Open a PV MassSpec export; see :func:`read_ms` for the options."""
        ds = read_ms(filename_or_obj, timezone=timezone, date_order=date_order)
        return ds.drop_vars(drop_variables or [], errors="ignore")

    def guess_can_open(self, filename_or_obj: Any) -> bool:
        """Sniff the file content (not only the extension)."""
        return sniff(can_open, filename_or_obj)
