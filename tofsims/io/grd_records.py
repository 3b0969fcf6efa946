"""Record-level access to IONTOF GRD event lists, without xarray or dask.

A GRD file has no header: one 20-byte record per detected secondary ion, five
little-endian ``uint32`` ``(scan, shot, x, y, tof)`` (``docs/formats.md``). This module
holds what a one-pass reader needs before anything else is imported: the size checks, the
scan starts (binary search on the scan field), record ranges (read or memory-mapped) and
the description of a bad record. :mod:`tofsims.io.grd` builds the lazy (dask) event table on
it; :mod:`tofsims.threaded_binning` reads through it directly.
"""

from __future__ import annotations

import bisect
import json
import math
import mmap
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from operando_core.readers import read_head
from tofsims.errors import TofsimsReadError
from tofsims.io.backend import provenance
from tofsims.io.properties import Properties, read_properties

__all__ = [
    "FIELDS",
    "FORMAT",
    "MAX_SCANS",
    "RECORD_BYTES",
    "GrdRecords",
    "can_open",
    "check_scan_claim",
    "event_attrs",
    "find_properties",
    "is_event_list",
    "map_records",
    "open_records",
    "prefetch_records",
    "raise_bad_record",
    "read_records",
    "record_count",
    "scan_starts",
]

FORMAT = "IONTOF GRD raw events"
RECORD_BYTES = 20
FIELDS = ("scan", "shot", "x", "y", "tof")
_MAX_PLAUSIBLE = 1 << 24
#: Most scans a properties file may claim (real depth profiles hold 10²–10⁴): the scan index
#: built before reading is checked against it and against the file, never allocated blindly.
MAX_SCANS = 1 << 20


def can_open(path: str | os.PathLike[str], head: bytes) -> bool:
    """GRD has no magic: a ``.grd`` name whose first record holds plausible values."""
    if not os.fspath(path).lower().endswith(".grd") or len(head) < RECORD_BYTES:
        return False
    first = np.frombuffer(head[:RECORD_BYTES], dtype="<u4")
    return bool(first[0] < _MAX_PLAUSIBLE and first[2] < 65536 and first[3] < 65536)


def find_properties(path: str | os.PathLike[str]) -> Path:
    """Locate the ``properties.txt`` of a GRD file.

    Accepted, first match wins, for ``run.itm.grd``: ``run.itm.grd.properties.txt``,
    ``run.itm.properties.txt``, ``run.properties.txt``, then ``properties.txt`` in the
    same folder.

    Raises
    ------
    TofsimsReadError
        None of them exists.
    """
    grd = Path(path)
    base = grd.name[: -len(".grd")] if grd.name.lower().endswith(".grd") else grd.name
    names = [f"{grd.name}.properties.txt", f"{base}.properties.txt"]
    stem = base.split(".")[0]
    names += [f"{stem}.properties.txt", "properties.txt"]
    for name in dict.fromkeys(names):
        candidate = grd.with_name(name)
        if candidate.is_file():
            return candidate
    raise TofsimsReadError(
        path,
        "no properties file beside the GRD (looked for "
        + ", ".join(dict.fromkeys(names))
        + "); pass properties=PATH",
    )


def is_event_list(path: str | os.PathLike[str]) -> bool:
    """Tell a GRD raw event list (a file :func:`can_open` accepts) from anything else."""
    return os.path.isfile(path) and can_open(path, read_head(path))


def record_count(path: str | os.PathLike[str]) -> int:
    """Count the records of a GRD file; raise if it is empty or truncated."""
    size = os.path.getsize(path)
    if size == 0:
        raise TofsimsReadError(path, "file is empty (no events)")
    if size % RECORD_BYTES:
        raise TofsimsReadError(
            path,
            f"truncated: {size} bytes is not a multiple of the {RECORD_BYTES}-byte record "
            f"({size // RECORD_BYTES} whole records + {size % RECORD_BYTES} bytes)",
        )
    return size // RECORD_BYTES


class _ScanField:
    """The scan field of every record, read one record at a time with ``os.pread``.

    A sequence for :func:`bisect.bisect_left`; unlike a memory map it does not make the
    kernel map read-ahead pages of the file into this process (its peak RSS stays small).
    """

    def __init__(self, fd: int, n_records: int):
        self.fd, self.n_records = fd, n_records

    def __len__(self) -> int:
        return self.n_records

    def __getitem__(self, index: int) -> int:
        raw = os.pread(self.fd, 4, index * RECORD_BYTES)
        return int.from_bytes(raw, "little")


def scan_starts(path: str | os.PathLike[str], n_scans: int) -> np.ndarray:
    """Index of the first record of every scan, plus the record count (``n_scans + 1`` values).

    Binary search on the scan field (reads ~log2(n) records per scan, never the whole
    file). Assumes records ordered by scan; the binning checks it when it reads them.
    """
    n_records = record_count(path)
    with open(path, "rb") as handle:
        scans = _ScanField(handle.fileno(), n_records)
        check_scan_claim(path, n_scans, n_records, scans[n_records - 1])
        starts = [bisect.bisect_left(scans, s) for s in range(n_scans)]
    return np.asarray([*starts, n_records], dtype=np.int64)


def check_scan_claim(path: str | os.PathLike[str], n_scans: int, n_records: int, last: int) -> None:
    """Check ``Analysis.TotalScans`` against the file before anything is built per scan.

    The last record must belong to the last scan: a file that ends earlier is truncated (or
    its properties belong to another acquisition); a claim beyond :data:`MAX_SCANS` is not an
    acquisition.

    Raises
    ------
    TofsimsReadError
        The claim does not fit the file.
    """
    if n_scans > MAX_SCANS:
        raise TofsimsReadError(
            path,
            f"the properties claim {n_scans} scans (Analysis.TotalScans), more than the "
            f"{MAX_SCANS} this reader accepts",
        )
    if last >= n_scans:
        raise TofsimsReadError(
            path,
            f"record {n_records - 1}: scan {last} but the properties give "
            f"Analysis.TotalScans = {n_scans}",
        )
    if last + 1 < n_scans:
        raise TofsimsReadError(
            path,
            f"the file ends in scan {last + 1} of the {n_scans} its properties give "
            f"(Analysis.TotalScans; {n_records} records): the file is truncated, or the "
            "properties belong to another acquisition",
        )


def raise_bad_record(
    path: str,
    index: int,
    field: int,
    value: int,
    scan_range: tuple[int, int],
    raster: tuple[int, int],
) -> None:
    """Raise the :class:`TofsimsReadError` describing a record outside the acquisition."""
    if field == 0:
        problem = (
            f"record {index}: scan {value} outside {scan_range[0]}…{scan_range[1] - 1}"
            " (records not ordered by scan, or scan beyond Analysis.TotalScans)"
        )
    else:
        name, size = ("y", raster[0]) if field == 3 else ("x", raster[1])
        problem = f"record {index}: {name} = {value} outside the raster (0…{size - 1})"
    raise TofsimsReadError(path, problem)


def map_records(path: str, first: int, stop: int) -> np.ndarray:
    """Memory-map records ``first:stop`` as a ``(n, 5)`` uint32 array (read-only).

    On Linux the mapping is pre-faulted (``MAP_POPULATE``): one system call fills the page
    table instead of one page fault per 4 kB, which threads of one process would otherwise
    serialise on. The file is closed at once; the mapping lives as long as the array.
    """
    if not hasattr(mmap, "MAP_POPULATE") or stop <= first:
        return np.memmap(
            path, dtype="<u4", mode="r", offset=first * RECORD_BYTES, shape=(stop - first, 5)
        )
    start = first * RECORD_BYTES
    aligned = start - start % mmap.ALLOCATIONGRANULARITY
    with open(path, "rb") as handle:
        mapping = mmap.mmap(
            handle.fileno(),
            stop * RECORD_BYTES - aligned,
            offset=aligned,
            flags=mmap.MAP_SHARED | mmap.MAP_POPULATE,
            prot=mmap.PROT_READ,
        )
    records = np.frombuffer(mapping, dtype="<u4", count=(stop - first) * 5, offset=start - aligned)
    return records.reshape(stop - first, 5)


def read_records(handle: BinaryIO, first: int, out: np.ndarray) -> np.ndarray:
    """Read ``len(out)`` records from record ``first`` on into ``out``; return ``out``.

    ``handle`` is the GRD opened unbuffered (``open(path, "rb", buffering=0)``), used by one
    thread only; ``out`` a C-contiguous ``(n, 5)`` uint32 array. Reading into a small reused
    buffer keeps the records in the CPU cache for the binning that follows and, unlike
    memory maps, costs no page-table work shared by all threads of the process.

    Raises
    ------
    TofsimsReadError
        The file ended early (it shrank since it was opened).
    """
    view = memoryview(out).cast("B")
    handle.seek(first * RECORD_BYTES)
    done = 0
    while done < len(view):
        got = handle.readinto(view[done:])
        if not got:
            raise TofsimsReadError(handle.name, f"ends before record {first + len(out)}")
        done += got
    return out


def prefetch_records(handle: BinaryIO, first: int, stop: int) -> None:
    """Ask the OS to start reading records ``first:stop`` into the page cache, and return.

    Overlaps disk reads with binning when the file is not cached
    (``posix_fadvise(WILLNEED)``; does nothing where that call does not exist).
    """
    if hasattr(os, "posix_fadvise") and stop > first:
        length = (stop - first) * RECORD_BYTES
        os.posix_fadvise(handle.fileno(), first * RECORD_BYTES, length, os.POSIX_FADV_WILLNEED)


@dataclass(frozen=True)
class GrdRecords:
    """An opened GRD file: its properties and where every scan starts.

    Attributes
    ----------
    path
        The ``.grd`` file.
    properties
        Its parsed ``properties.txt``.
    properties_path
        Where the properties were read from.
    starts
        First record of every scan, then the record count (``n_scans + 1`` values, int64).
    """

    path: str
    properties: Properties
    properties_path: Path
    starts: np.ndarray

    @property
    def n_records(self) -> int:
        """Number of records (ions) in the file."""
        return int(self.starts[-1])

    @property
    def n_scans(self) -> int:
        """``Analysis.TotalScans``."""
        return len(self.starts) - 1

    @property
    def raster(self) -> tuple[int, int]:
        """Image size ``(ny, nx)`` in pixels."""
        return self.properties.raster


def open_records(
    path: str | os.PathLike[str], *, properties: str | os.PathLike[str] | None = None
) -> GrdRecords:
    """Open a GRD file for record access: read and check its properties, find the scans.

    Parameters
    ----------
    path
        The ``.grd`` file.
    properties
        Its ``properties.txt``; found beside the file when omitted (:func:`find_properties`).

    Raises
    ------
    TofsimsReadError
        No such file, empty or truncated file, missing or malformed properties (every
        property :func:`tofsims.io.grd.read` records is checked), ``Analysis.PIShots``
        inconsistent with the raster, last scan beyond ``Analysis.TotalScans``.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise TofsimsReadError(path, "no such file")
    props_path = Path(properties) if properties is not None else find_properties(path)
    props = read_properties(props_path)
    # touch every property the event table records, so that a bad one fails here, first
    for required in ("sf", "k0", "time_resolution_s", "raster", "shots_per_pixel", "polarity"):
        getattr(props, required)
    props.check_pi_shots()
    starts = scan_starts(path, props.total_scans)
    return GrdRecords(path, props, props_path, starts)


def event_attrs(records: GrdRecords) -> dict[str, Any]:
    """Attributes of the event table of an opened file (see :func:`tofsims.io.grd.read`)."""
    props = records.properties
    ny, nx = props.raster
    seconds_per_scan, source = props.seconds_per_scan()
    known = math.isfinite(seconds_per_scan)
    attrs = {
        "sf": props.sf,
        "k0": props.k0,
        "time_resolution_s": props.time_resolution_s,
        "raster_y": ny,
        "raster_x": nx,
        "total_scans": props.total_scans,
        "shots_per_pixel": props.shots_per_pixel,
        "field_of_view_m": props.field_of_view_m,
        "dead_time_s": props.dead_time_s,
        "cycle_time_s": props.cycle_time_s,
        "polarity": props.polarity,
        "seconds_per_scan": seconds_per_scan,
        "sputter_time_source": source if known else "none",
        "sputter_time_reason": "" if known else source,
        "properties_file": str(records.properties_path.resolve()),
        "header_json": json.dumps(props.as_attrs(), ensure_ascii=False),
    }
    attrs.update(provenance(records.path, "tofsims.io.grd.read", FORMAT))
    return attrs
