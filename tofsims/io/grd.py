"""IONTOF GRD raw event lists (``ITRawExport.exe`` output) as a lazy event table.

A GRD file has no header: one 20-byte record per detected secondary ion, five
little-endian ``uint32`` ``(scan, shot, x, y, tof)``; ``tof`` counts TOF channels of
``Registration.TimeResolution``. Acquisition parameters come from the ``properties.txt``
beside the file (:func:`find_properties` lists the names accepted).

The reader never loads the whole file: it memory-maps one block of records inside each
dask task (keyed by the path; no open handle lives in the graph). Blocks are cut at scan
boundaries, which requires records ordered by scan (as the instrument writes them; the
order within a scan is free). Each block is checked when it is read: scan inside the
block's scan range (else the file is not ordered by scan or the scan exceeds
``Analysis.TotalScans``), ``x``/``y`` inside the raster.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from xarray.backends import BackendEntrypoint

from tofsims.io.backend import sniff
from tofsims.io.grd_records import (
    FIELDS,
    FORMAT,
    RECORD_BYTES,
    can_open,
    event_attrs,
    find_properties,
    map_records,
    open_records,
    raise_bad_record,
    scan_starts,
)
from tofsims.jit import cached_njit

__all__ = [
    "FIELDS",
    "FORMAT",
    "RECORD_BYTES",
    "TofsimsGrdBackend",
    "can_open",
    "event_attrs",
    "find_properties",
    "input_files",
    "read",
    "scan_starts",
]

ENGINE = "tofsims_grd"
#: Default upper bounds of one block: records (x 20 bytes mapped) and scan × pixel voxels.
BLOCK_EVENTS = 4_000_000
BLOCK_VOXELS = 2_000_000


def input_files(
    path: str | os.PathLike[str], *, properties: str | os.PathLike[str] | None = None
) -> list[Path]:
    """List the files a read of ``path`` opens: the event list and its ``properties.txt``."""
    return [Path(path), Path(properties) if properties is not None else find_properties(path)]


def block_scan_bounds(
    starts: np.ndarray,
    ny: int,
    nx: int,
    max_events: int = BLOCK_EVENTS,
    max_voxels: int = BLOCK_VOXELS,
) -> list[int]:
    """Scan indices where blocks begin (plus the scan count): whole scans, bounded size."""
    bounds = [0]
    n_scans = len(starts) - 1
    for scan in range(1, n_scans):
        events = starts[scan] - starts[bounds[-1]]
        voxels = (scan - bounds[-1]) * ny * nx
        if events + (starts[scan + 1] - starts[scan]) > max_events or (
            voxels + ny * nx > max_voxels
        ):
            bounds.append(scan)
    return [*bounds, n_scans]


@cached_njit(nogil=True)
def _first_bad_record(records, scan_lo, scan_hi, ny, nx):  # pragma: no cover - numba
    previous = scan_lo
    for i in range(records.shape[0]):
        scan = records[i, 0]
        if scan < previous or scan >= scan_hi:
            return i, 0
        previous = scan
        if records[i, 3] >= ny:
            return i, 3
        if records[i, 2] >= nx:
            return i, 2
    return -1, -1


def _load_block(
    path: str,
    first: int,
    stop: int,
    scan_range: tuple[int, int],
    raster: tuple[int, int],
    validate: bool,
) -> np.ndarray:
    records = map_records(path, first, stop)
    if validate:
        index, field = _first_bad_record(records, scan_range[0], scan_range[1], *raster)
        if index >= 0:
            raise_bad_record(
                path, first + index, field, int(records[index, field]), scan_range, raster
            )
    return records


def _load_indexed_block(
    *,
    path: str,
    ranges: tuple[tuple[int, int, int, int], ...],
    raster: tuple[int, int],
    validate: bool,
    block_id: tuple[int, int],
) -> np.ndarray:
    first, stop, lo, hi = ranges[block_id[0]]
    return _load_block(path, first, stop, (lo, hi), raster, validate)


def lazy_records(
    path: str, starts: np.ndarray, bounds: list[int], raster: tuple[int, int], validate: bool = True
) -> Any:
    """Build the ``(event, field)`` uint32 dask array of a GRD file, one block per scan group.

    A blockwise layer without inputs: each task maps its own record range by path, and
    consumers that are themselves blockwise (``map_blocks``) fuse with it into one task,
    so a block is never loaded long before it is used.
    """
    ranges = tuple(
        (int(starts[lo]), int(starts[hi]), lo, hi)
        for lo, hi in itertools.pairwise(bounds)
        if starts[hi] > starts[lo]
    )
    import dask.array as da

    sizes = tuple(stop - first for first, stop, _, _ in ranges)
    return da.map_blocks(
        _load_indexed_block,
        dtype=np.uint32,
        chunks=(sizes, (5,)),
        meta=np.empty((0, 5), dtype=np.uint32),
        path=path,
        ranges=ranges,
        raster=raster,
        validate=validate,
    )


def read(
    path: str | os.PathLike[str],
    *,
    properties: str | os.PathLike[str] | None = None,
    validate: bool = True,
    block_events: int = BLOCK_EVENTS,
    block_voxels: int = BLOCK_VOXELS,
) -> xr.Dataset:
    """Open a GRD event list lazily.

    Parameters
    ----------
    path
        The ``.grd`` file.
    properties
        Its ``properties.txt``; found beside the file when omitted (:func:`find_properties`).
    validate
        Check every record of a block when it is read (scan order, raster bounds). The
        reconstruction kernel checks them itself, so it opens with ``validate=False``.
    block_events, block_voxels
        Upper bounds of one dask block (records; scans × pixels). Blocks hold whole scans.

    Returns
    -------
    xarray.Dataset
        Dimensions ``event`` (one per detected ion, file order), ``field`` (5) and
        ``scan_index``:

        * ``record (event, field)`` uint32 — the raw records (lazy, dask);
        * ``scan``, ``shot``, ``x``, ``y``, ``tof`` ``(event)`` — its columns (views of the same
          blocks; ``tof`` in channels of ``time_resolution_s``);
        * ``first_event (scan_index)`` and ``events_per_scan (scan_index)`` int64 — where each
          scan starts in the file and how many ions it holds (read eagerly by binary search).

        Attributes: ``sf``, ``k0`` (t = sf·√m + k0, channels), ``time_resolution_s``,
        ``raster_y``, ``raster_x``, ``total_scans``, ``shots_per_pixel``, ``field_of_view_m``,
        ``dead_time_s``, ``cycle_time_s`` (NaN when absent), ``polarity``,
        ``seconds_per_scan`` (``Analysis.SputterTime`` / ``Analysis.TotalScans``; NaN when the
        properties hold none), ``sputter_time_source`` (where it came from, ``"none"``) and
        ``sputter_time_reason`` (why it is missing, else empty), ``properties_file``,
        ``header_json`` (all properties) and provenance.

    Raises
    ------
    TofsimsReadError
        Empty or truncated file (size not a multiple of 20 bytes), missing or malformed
        properties, ``Analysis.PIShots`` inconsistent with the raster, last scan beyond
        ``Analysis.TotalScans``; at compute time, records outside the raster or not ordered
        by scan.
    """
    opened = open_records(path, properties=properties)
    path, props, starts = opened.path, opened.properties, opened.starts
    attrs = event_attrs(opened)
    raster = props.raster
    bounds = block_scan_bounds(starts, *raster, block_events, block_voxels)
    record = lazy_records(path, starts, bounds, raster, validate)
    n_scans = props.total_scans
    ds = xr.Dataset(
        {
            "record": (("event", "field"), record),
            **{name: ("event", record[:, i]) for i, name in enumerate(FIELDS)},
            "first_event": ("scan_index", starts[:-1]),
            "events_per_scan": ("scan_index", np.diff(starts)),
        },
        coords={"field": list(FIELDS), "scan_index": np.arange(n_scans, dtype=np.int64)},
        attrs=attrs,
    )
    ds["tof"].attrs["units"] = "channel"
    ds["x"].attrs["units"] = ds["y"].attrs["units"] = "pixel"
    ds.encoding["block_scans"] = bounds
    return ds


class TofsimsGrdBackend(BackendEntrypoint):
    """xarray engine ``tofsims_grd``: ``xr.open_dataset("run.itm.grd", engine="tofsims_grd")``."""

    sniff_order = 30

    description = "IONTOF GRD raw event list (+ properties.txt) as a lazy event table"
    url = "https://github.com/operando/operando/blob/main/docs/formats.md#grd"
    open_dataset_parameters = ("filename_or_obj", "drop_variables", "properties", "validate")

    def open_dataset(  # type: ignore[override]
        self,
        filename_or_obj: str | os.PathLike[str],
        *,
        drop_variables: str | list[str] | None = None,
        properties: str | os.PathLike[str] | None = None,
        validate: bool = True,
    ) -> xr.Dataset:
        """Open ``filename_or_obj``; see :func:`tofsims.io.grd.read`."""
        ds = read(filename_or_obj, properties=properties, validate=validate)
        return ds.drop_vars(drop_variables or [], errors="ignore")

    def guess_can_open(self, filename_or_obj: Any) -> bool:
        """Sniff: ``.grd`` name and a plausible first record."""
        return sniff(can_open, filename_or_obj)
