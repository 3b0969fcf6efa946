"""Spectro Inlets Zilien ``.tsv`` (format versions 1 and 2) reader and backend ``dems_zilien``.

Layout (``docs/formats.md``, reference ``formats-dems.md`` §3): ``num_header_lines`` metadata
lines of five TAB-separated fields ``name, description, series, type, value``; then a line of
series names (one per block, in the block's first column) and a line of column titles
``Name [unit]``; data from the 0-based line ``data_start``. Each block (MS channel ``C7M32``,
pressure gauge, Zilien's own ``pot`` log, the embedded ``EC-lab`` block) has its own time
column and its own length (``<series>_count``), padded with ``NaN``.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
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
from dems.io.timestamps import from_unix, iso, localize, resolve_timezone

__all__ = ["FORMAT", "KIND", "ZilienBackend", "can_open", "read_ec", "read_ms"]

FORMAT = "Spectro Inlets Zilien .tsv"
KIND = "ms+ec"
EC_SERIES = "EC-lab"
STREAMS = ("ms", "ec")

_MS_SERIES = re.compile(r"^C(?P<index>\d+)M(?P<mass>\d+(?:\.\d+)?)$")
_TITLE_UNIT = re.compile(r"^(?P<name>.*?)\s*\[(?P<unit>[^\]]*)\]$")
_FILE_NAME_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2} \d{2}_\d{2}_\d{2})")
_TYPES = {"int": lambda v: int(float(v)), "double": float, "bool": lambda v: v == "true"}
QUANTITY = {"A": "ion current", "mbar": "partial pressure"}
#: Global metadata keys of Zilien mass-scan spectra (ixdat ``ZilienSpectrumReader``).
MASS_SCAN_KEYS = frozenset({"mass_scan_started_at", "start_mass", "stop_mass", "points_per_amu"})
_MASS_AXIS = re.compile(r"^Mass\s+\[AMU\]$")


def can_open(path: str | os.PathLike[str], head: bytes) -> bool:
    """Whether the file starts with Zilien's five-field metadata lines."""
    first = head.decode("latin-1").lstrip("\ufeff").split("\n", 1)[0].rstrip("\r").split("\t")
    return len(first) == 5 and first[0] == "num_header_lines"


@dataclass
class Block:
    """One series block: its name, first and last column (exclusive) and column titles."""

    series: str
    start: int
    stop: int
    titles: list[str]


@dataclass
class ZilienFile:
    """A parsed Zilien file: metadata keyed by ``(series, name)``, blocks and the data table."""

    path: str
    metadata: dict[tuple[str, str], Any] = field(default_factory=dict)
    blocks: list[Block] = field(default_factory=list)
    table: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))
    data_start: int = 0

    @property
    def version(self) -> int:
        """``file_format_version`` (files without it are version 1)."""
        return int(self.metadata.get(("", "file_format_version"), 1))

    def block(self, series: str) -> Block | None:
        """Return the block of ``series`` (None if absent)."""
        return next((b for b in self.blocks if b.series == series), None)

    def count(self, block: Block) -> int:
        """Count a block's valid rows: ``<series>_count``, else up to its last finite time."""
        announced = self.metadata.get((block.series, f"{block.series}_count"))
        if announced is not None:
            return int(announced)
        time = self.table[:, block.start]
        finite = np.flatnonzero(np.isfinite(time))
        return int(finite[-1]) + 1 if finite.size else 0


def _metadata_value(path: str, fields: list[str], line: int) -> Any:
    name, _description, _series, kind, value = fields
    convert = _TYPES.get(kind, str)
    try:
        return convert(value)
    except ValueError:
        raise DemsReadError(
            path, f"metadata {name!r}: {value!r} is not a valid {kind}", line
        ) from None


def parse_metadata(path: str, lines: list[str]) -> dict[tuple[str, str], Any]:
    """Metadata lines keyed by ``(series, name)`` (``series`` is ``""`` for global items)."""
    metadata: dict[tuple[str, str], Any] = {}
    for number, line in enumerate(lines, start=1):
        fields = line.rstrip("\r\n").split("\t")
        if len(fields) != 5:
            raise DemsReadError(
                path, f"metadata line has {len(fields)} TAB-separated fields, expected 5", number
            )
        metadata[(fields[2], fields[0])] = _metadata_value(path, fields, number)
    return metadata


def _blocks(path: str, series_line: str, title_line: str, line: int) -> list[Block]:
    series = series_line.rstrip("\r\n").split("\t")
    titles = title_line.rstrip("\r\n").split("\t")
    while titles and not titles[-1]:
        titles.pop()
    starts = [i for i, name in enumerate(series) if name.strip() and i < len(titles)]
    if not starts:
        raise DemsReadError(path, "no series names in the data header", line)
    stops = [*starts[1:], len(titles)]
    return [Block(series[a].strip(), a, b, titles[a:b]) for a, b in zip(starts, stops, strict=True)]


def _refuse_mass_scan(
    path: str, metadata: dict[tuple[str, str], Any], data_header: list[str]
) -> None:
    """Raise a clear error for a Zilien mass-scan spectrum (one m/z sweep, not a time series).

    Mass scans are separate ``.tsv`` files (folder ``<measurement> mass scans``) with the
    same five-field metadata, keys such as ``mass_scan_started_at``/``start_mass``, and a
    ``Mass [AMU]`` column.
    """
    keys = {name for series, name in metadata if not series}
    titles = [t.strip() for t in data_header[-1].split("\t")] if data_header else []
    if not (keys & MASS_SCAN_KEYS or any(_MASS_AXIS.match(t) for t in titles)):
        return
    low, high = metadata.get(("", "start_mass")), metadata.get(("", "stop_mass"))
    sweep = f", m/z {low:g}-{high:g}" if isinstance(low, float) and isinstance(high, float) else ""
    raise DemsReadError(
        path,
        f"not supported yet: mass-scan spectrum (a Zilien m/z sweep{sweep}, not a time "
        "series); open the measurement's main .tsv file instead",
    )


def _read_header(path: str) -> tuple[dict[tuple[str, str], Any], list[Block], int]:
    with open(path, encoding="latin-1", newline="") as handle:
        first = handle.readline()
        if not first:
            raise DemsReadError(path, "file is empty")
        if "\x00" in first:
            raise DemsReadError(path, "binary content, not a Zilien .tsv file", 1)
        head = parse_metadata(path, [first])
        n_header = head.get(("", "num_header_lines"))
        if not isinstance(n_header, int) or n_header < 1:
            raise DemsReadError(path, "not a Zilien .tsv file: missing num_header_lines", 1)
        lines = [first] + [handle.readline() for _ in range(n_header - 1)]
        if not lines[-1]:
            raise DemsReadError(path, f"file is truncated inside the {n_header}-line header")
        metadata = parse_metadata(path, lines)
        n_data_header = int(metadata.get(("", "num_data_header_lines"), 2))
        data_header = [handle.readline() for _ in range(n_data_header)]
    if len(data_header) < 2 or not data_header[-1]:
        raise DemsReadError(path, "file is truncated: no column titles after the metadata")
    data_start = int(metadata.get(("", "data_start"), n_header + n_data_header))
    _refuse_mass_scan(path, metadata, data_header)
    blocks = _blocks(path, data_header[0], data_header[1], n_header + 1)
    return metadata, blocks, data_start


def _last_line(path: str) -> tuple[str, int]:
    """Return the last non-empty line and the number of lines of the file."""
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - 65536))
        tail = handle.read().decode("latin-1")
    with open(path, "rb") as handle:
        total = sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
    stripped = tail.rstrip("\r\n")
    return stripped.rsplit("\n", 1)[-1], total + (0 if tail.endswith("\n") else 1)


def _parse_table(path: str, data_start: int, n_columns: int) -> np.ndarray:
    """All data rows as float64 (pandas C engine); a bad cell raises with its line number."""
    reject_nul_bytes(path)
    try:
        frame = pd.read_csv(
            path,
            sep="\t",
            header=None,
            skiprows=data_start,
            names=list(range(n_columns)),
            usecols=list(range(n_columns)),
            dtype=np.float64,
            na_values=["NaN", "nan", "-nan", "", "inf", "---"],
            keep_default_na=False,
            engine="c",
            float_precision=FLOAT_PRECISION,
            encoding="latin-1",
        )
    except (ValueError, pd.errors.ParserError) as err:
        raise _locate_bad_cell(path, data_start, n_columns) or DemsReadError(
            path, f"cannot parse the data block ({err})"
        ) from None
    return frame.to_numpy()


def _locate_bad_cell(path: str, data_start: int, n_columns: int) -> DemsReadError | None:
    """Slow path after a parse failure: find the first non-numeric cell."""
    missing = {"NaN", "nan", "-nan", "", "inf", "---"}
    with open(path, encoding="latin-1") as handle:
        for number, line in enumerate(handle, start=1):
            if number <= data_start:
                continue
            for column, cell in enumerate(line.rstrip("\r\n").split("\t")[:n_columns]):
                if cell in missing:
                    continue
                try:
                    float(cell)
                except ValueError:
                    return DemsReadError(
                        path, f"column {column + 1}: {cell!r} is not a number", number
                    )
    return None


def open_zilien(path: str | os.PathLike[str]) -> ZilienFile:
    """Parse a Zilien file: metadata, block layout and the numeric table.

    Raises
    ------
    DemsReadError
        If the file is empty, truncated, not a Zilien file or holds non-numbers.
    """
    path = os.fspath(path)
    if os.path.getsize(path) == 0:
        raise DemsReadError(path, "file is empty")
    metadata, blocks, data_start = _read_header(path)
    n_columns = max(block.stop for block in blocks)
    last, n_lines = _last_line(path)
    if n_lines > data_start and len(last.split("\t")) < n_columns:
        raise DemsReadError(
            path,
            f"file is truncated: last row has {len(last.split(chr(9)))} of {n_columns} fields",
            n_lines,
        )
    zfile = ZilienFile(path, metadata, blocks, np.empty((0, n_columns)), data_start)
    if n_lines > data_start:
        zfile.table = _parse_table(path, data_start, n_columns)
    _check_blocks(zfile)
    return zfile


def _check_rows_exist(zfile: ZilienFile, block: Block) -> None:
    """Raise when the table is shorter than the rows a block announces (a truncated file)."""
    count = zfile.count(block)
    if count > zfile.table.shape[0]:
        raise DemsReadError(
            zfile.path,
            f"file is truncated: series {block.series!r} announces {count} "
            f"points, the data block has {zfile.table.shape[0]} rows",
            zfile.data_start + zfile.table.shape[0],
        )


def _time_problem(zfile: ZilienFile, block: Block) -> DemsReadError | None:
    """Why a block's time cannot be used (missing, or going back), or None."""
    time = zfile.table[: zfile.count(block), block.start]
    bad = np.flatnonzero(~np.isfinite(time))
    if bad.size:
        line = zfile.data_start + 1 + int(bad[0])
        return DemsReadError(zfile.path, f"series {block.series!r}: time is missing", line)
    back = np.flatnonzero(np.diff(time) < 0)
    if back.size:
        i = int(back[0]) + 1
        return DemsReadError(
            zfile.path,
            f"series {block.series!r}: time is not monotonic "
            f"({time[i]:g} s after {time[i - 1]:g} s)",
            zfile.data_start + 1 + i,
        )
    return None


def _is_auxiliary(block: Block) -> bool:
    """Gauges, flows and Zilien's own ``pot`` log: neither an MS channel nor the EC-lab block."""
    return not _MS_SERIES.match(block.series) and block.series != EC_SERIES


def _check_blocks(zfile: ZilienFile) -> None:
    """Every block's announced rows exist, and its time is finite and non-decreasing.

    An auxiliary series whose clock is unusable is dropped with a warning naming it (its
    MS channels stay readable, as in ixdat); the same in an MS channel or the EC-lab block,
    or a truncated file, is an error.
    """
    kept = []
    for block in zfile.blocks:
        _check_rows_exist(zfile, block)
        problem = _time_problem(zfile, block)
        if problem is None:
            kept.append(block)
        elif _is_auxiliary(block):
            warnings.warn(f"{problem}; series {block.series!r} dropped", UserWarning, stacklevel=4)
        else:
            raise problem
    zfile.blocks = kept


def _split_title(title: str) -> tuple[str, str]:
    match = _TITLE_UNIT.match(title.strip())
    return (match["name"], match["unit"]) if match else (title.strip(), "")


def _file_offset_zone(zfile: ZilienFile, epoch: float) -> tuple[Any, str] | None:
    """Recover the acquisition PC's UTC offset: local ``start_timestamp`` minus the epoch."""
    text = zfile.metadata.get(("", "start_timestamp"))
    try:
        wall = datetime.fromisoformat(str(text))
    except ValueError:
        return None
    utc = from_unix(epoch).replace(tzinfo=None)
    minutes = round((wall - utc).total_seconds() / 60)
    if abs(minutes) > 14 * 60:
        return None
    sign = "+" if minutes >= 0 else "-"
    name = f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    return dt_timezone(timedelta(minutes=minutes)), name


def time_attrs(zfile: ZilienFile, timezone: str | None) -> dict[str, Any]:
    """``start_time``, ``timezone`` and ``timezone_source`` of a Zilien file.

    Version 2 files hold ``start_time_unix`` (an epoch: the instant is exact). It is shown in
    ``timezone`` when given, else in the acquisition PC's UTC offset recovered from the local
    ``start_timestamp``. Version 1 files only have the local wall-clock time in their name
    (``YYYY-MM-DD HH_MM_SS name.tsv``), interpreted in ``timezone`` (default: this machine's).
    """
    epoch = zfile.metadata.get(("", "start_time_unix"))
    if epoch is not None:
        attrs: dict[str, Any] = {"timezone_source": "file", "start_time_unix": float(epoch)}
        if timezone:
            zone, name = resolve_timezone(timezone)
        else:
            zone, name = _file_offset_zone(zfile, float(epoch)) or resolve_timezone("UTC")
        attrs.update(start_time=iso(from_unix(float(epoch), zone)), timezone=name)
        return attrs
    zone, name = resolve_timezone(timezone)
    source = "user" if timezone else "machine"
    text = zfile.metadata.get(("", "start_timestamp"))
    match = _FILE_NAME_TIME.match(Path(zfile.path).name)
    if text:
        naive = datetime.fromisoformat(str(text))
    elif match:
        naive = datetime.strptime(match.group(1), "%Y-%m-%d %H_%M_%S")
    else:
        raise DemsReadError(
            zfile.path,
            "no start time: no start_time_unix and the file name does not start "
            "with 'YYYY-MM-DD HH_MM_SS'",
        )
    return {"start_time": iso(localize(naive, zone)), "timezone": name, "timezone_source": source}


def _recorded_offset(zfile: ZilienFile) -> float:
    """Zilien's ``offset`` (Zilien time − EC-Lab time) in s, NaN when not recorded."""
    for (series, name), value in zfile.metadata.items():
        if name == "offset" and series.startswith("pot"):
            return float(value)
    return float("nan")


def _common_attrs(zfile: ZilienFile, timezone: str | None, reader: str) -> dict[str, Any]:
    nested: dict[str, dict[str, Any]] = {}
    for (series, name), value in zfile.metadata.items():
        nested.setdefault(series, {})[name] = value
    return {
        **time_attrs(zfile, timezone),
        "file_format_version": zfile.version,
        "ec_offset_s": _recorded_offset(zfile),
        "header_json": header_json(nested),
        **provenance(zfile.path, reader, FORMAT),
    }


def _ms_channels(zfile: ZilienFile) -> list[Block]:
    return [block for block in zfile.blocks if _MS_SERIES.match(block.series)]


def _channel_id(zfile: ZilienFile, block: Block, taken: set[str]) -> tuple[str, float]:
    match = _MS_SERIES.match(block.series)
    assert match is not None
    mass = float(zfile.metadata.get((block.series, "mass"), float(match["mass"])))
    name = f"M{mass:g}"
    return (name if name not in taken else block.series), mass


def _ms_variables(zfile: ZilienFile) -> tuple[dict[str, Any], str]:
    channels = _ms_channels(zfile)
    if not channels:
        raise MissingStreamError(zfile.path, "holds no mass-spectrometer channels (C<i>M<mass>)")
    counts = [zfile.count(block) for block in channels]
    n_sample = max(counts)
    time = np.full((len(channels), n_sample), np.nan)
    signal = np.full((len(channels), n_sample), np.nan)
    ids, masses, labels, units = [], [], [], set()
    for row, (block, count) in enumerate(zip(channels, counts, strict=True)):
        time[row, :count] = zfile.table[:count, block.start]
        signal[row, :count] = zfile.table[:count, block.start + 1]
        name, mass = _channel_id(zfile, block, set(ids))
        ids.append(name)
        masses.append(mass)
        labels.append(str(zfile.metadata.get((block.series, "plotname"), block.titles[1])))
        units.add(_split_title(block.titles[1])[1])
    unit = units.pop() if len(units) == 1 else ""
    variables = {
        "signal": (("channel", "sample"), signal, {"units": unit, "long_name": "MS signal"}),
        "time": (("channel", "sample"), time, {"units": "s", "long_name": "time since start"}),
        "channel": ("channel", np.array(ids, dtype=object)),
        "mass": ("channel", np.array(masses), {"units": "u", "long_name": "m/z"}),
        "label": ("channel", np.array(labels, dtype=object)),
        "series": ("channel", np.array([b.series for b in channels], dtype=object)),
        "dwell_time": ("channel", _per_channel(zfile, channels, "dwell_time"), {"units": "ms"}),
    }
    return variables, unit


def _per_channel(zfile: ZilienFile, channels: list[Block], name: str) -> np.ndarray:
    return np.array([float(zfile.metadata.get((b.series, name), np.nan)) for b in channels])


def _safe_name(text: str) -> str:
    return re.sub(r"[^0-9a-zA-Z]+", "_", text).strip("_").lower()


def _extra_variables(zfile: ZilienFile) -> dict[str, Any]:
    """Non-MS, non-EC-lab series as ``<series>_<quantity>`` on their own ``<series>_sample``."""
    variables: dict[str, Any] = {}
    for block in zfile.blocks:
        if _MS_SERIES.match(block.series) or block.series == EC_SERIES:
            continue
        key = _safe_name(block.series)
        dim = f"{key}_sample"
        count = zfile.count(block)
        variables[f"{key}_time"] = (
            dim,
            zfile.table[:count, block.start],
            {"units": "s", "long_name": f"{block.series}: {block.titles[0]}"},
        )
        for offset, title in enumerate(block.titles[1:], start=1):
            quantity, unit = _split_title(title)
            attrs = {"units": unit, "long_name": f"{block.series}: {title}"}
            values = zfile.table[:count, block.start + offset]
            variables[f"{key}_{_safe_name(quantity)}"] = (dim, values, attrs)
    return variables


def read_ms(path: str | os.PathLike[str], *, timezone: str | None = None) -> xr.Dataset:
    """Read the mass-spectrometer stream of a Zilien ``.tsv`` file (v1 or v2).

    Parameters
    ----------
    path
        The ``.tsv`` file.
    timezone
        IANA zone: the zone ``start_time`` is shown in (v2), or the zone of the naive start
        time in the file name (v1; default this machine's).

    Returns
    -------
    xarray.Dataset
        ``signal(channel, sample)`` [A] with each channel's own ``time(channel, sample)`` [s]
        (see ``docs/conventions.md``), plus the pressure, flow and ``pot`` series as
        ``<series>_<quantity>`` variables on their own ``<series>_sample`` dimensions.
        ``ec_offset_s`` is Zilien's recorded offset (Zilien time − EC-Lab time).
    """
    zfile = open_zilien(path)
    variables, unit = _ms_variables(zfile)
    coords = {
        k: variables.pop(k) for k in ("time", "channel", "mass", "label", "series", "dwell_time")
    }
    extras = _extra_variables(zfile)
    coords.update({k: extras.pop(k) for k in list(extras) if k.endswith("_time")})
    attrs = {
        **_common_attrs(zfile, timezone, "dems.io.zilien.read_ms"),
        "quantity": QUANTITY.get(unit, unit),
    }
    return xr.Dataset({**variables, **extras}, coords=coords, attrs=attrs)


def read_ec(path: str | os.PathLike[str], *, timezone: str | None = None) -> xr.Dataset:
    """Read the EC-Lab block Zilien embeds in a v2 ``.tsv`` file.

    Its ``time`` is on Zilien's clock (s since the Zilien ``start_time``): Zilien already
    added its recorded offset to the EC-Lab ``time/s`` (attr ``clock`` = ``"Zilien"``).

    Raises
    ------
    MissingStreamError
        If the file has no (or an empty) ``EC-lab`` block, e.g. when Zilien did not find
        the ``.mpt`` files (ixdat #107).
    """
    zfile = open_zilien(path)
    block = zfile.block(EC_SERIES)
    if block is None or zfile.count(block) == 0 or "time/s" not in block.titles:
        raise MissingStreamError(zfile.path, "holds no EC-lab block (read the .mpt files instead)")
    count = zfile.count(block)
    columns = [zfile.table[:count, block.start + i] for i in range(len(block.titles))]
    time = columns[block.titles.index("time/s")]
    titles = [t for t in block.titles if t != "time/s"]
    values = [c for t, c in zip(block.titles, columns, strict=True) if t != "time/s"]
    lines = np.arange(zfile.data_start + 1, zfile.data_start + 1 + count)
    variables, canonical = ec_variables(titles, values, time, lines, Path(zfile.path).name)
    numbers = [c for t, c in zip(block.titles, columns, strict=True) if t == "technique_number"]
    techniques = np.unique(numbers[0] if numbers else np.array([np.nan]))
    attrs = {
        **_common_attrs(zfile, timezone, "dems.io.zilien.read_ec"),
        "technique": "EC-lab block (technique_number "
        + ", ".join(f"{t:g}" for t in techniques if np.isfinite(t))
        + ")",
        "characteristic_mass_g": np.nan,
        "mass_key": "",
        "decimal": ".",
        "clock": "Zilien",
        **canonical,
    }
    coords = {"time": ("time", time, {"units": "s", "long_name": "time/s"})}
    return xr.Dataset(variables, coords=coords, attrs=attrs)


class ZilienBackend(BackendEntrypoint):
    """xarray backend for Zilien ``.tsv``: ``xr.open_dataset(p, engine="dems_zilien")``.

    ``stream="ms"`` (default) returns the mass-spectrometer dataset, ``stream="ec"`` the
    embedded EC-Lab block.
    """

    sniff_order = 20

    description = "Spectro Inlets Zilien .tsv (v1, v2) — MS channels, gauges, EC-Lab block"
    url = "https://github.com/operando/operando/blob/main/docs/formats.md"
    open_dataset_parameters = ("filename_or_obj", "drop_variables", "stream", "timezone")

    def open_dataset(
        self,
        filename_or_obj: Any,
        *,
        drop_variables: str | Iterable[str] | None = None,
        stream: str = "ms",
        timezone: str | None = None,
    ) -> xr.Dataset:
        """Open one stream of a Zilien file (see :func:`read_ms`, :func:`read_ec`)."""
        if stream not in STREAMS:
            raise ValueError(f"stream must be one of {STREAMS}, not {stream!r}")
        reader = read_ms if stream == "ms" else read_ec
        ds = reader(os.fspath(filename_or_obj), timezone=timezone)
        return ds.drop_vars(drop_variables or [], errors="ignore")

    def guess_can_open(self, filename_or_obj: Any) -> bool:
        """Sniff the first metadata line (the extension alone is not trusted)."""
        return sniff(can_open, filename_or_obj)
