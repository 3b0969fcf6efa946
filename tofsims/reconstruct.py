"""Events -> fragment volumes ``counts(fragment, scan, y, x)``, lazily with dask.

Every dask block of raw events (whole scans) is read and binned in one task by the numba
kernel of :mod:`tofsims.binning`, which walks the records once (summed spectrum, fragment
voxels, dead-time shadow counts for the Poisson correction, methods.md §B3). A block that
crosses a boundary of the depth blocks (the one-pass engine's groups of scans,
:func:`tofsims.threaded_binning.group_scans`) is binned in one task per side, so that the
stored block spectra do not depend on how the file was read. The result is a lazy Dataset
for any dask scheduler, a cluster included; on one machine
:func:`tofsims.grd_to_volume.reconstruct_grd` writes the same store faster, without dask.
See ``docs/methods.md`` "Reconstruction".
"""

from __future__ import annotations

import bisect
import itertools
import math
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from tofsims.binning import (
    BinningPlan,
    binning_plan,
    channel_lookup,
    shadow_lookup,
    spectrum_of,
    window_masses,
)
from tofsims.dead_time import POOL_SCANS, correct_pixels, hazard_counts, relative_increase
from tofsims.errors import AnalysisError
from tofsims.io.grd_records import raise_bad_record
from tofsims.peak_windows import PeakWidth
from tofsims.threaded_binning import group_scans
from tofsims.volume_layout import (
    CORRECTED_ATTRS,
    SATURATED_ATTRS,
    to_dataset,
    volume_layout,
)

if TYPE_CHECKING:
    import dask.array as da

__all__ = [
    "channel_lookup",
    "mass_windows",
    "poisson_correct",
    "reconstruct",
    "shadow_lookup",
]


def mass_windows(
    fragments: Sequence[str],
    *,
    window_u: float | None = None,
    resolution: float | None = None,
    peak_width: PeakWidth | None = None,
) -> xr.Dataset:
    """Integration windows of fragments (parameters: :func:`tofsims.binning.window_masses`).

    Returns
    -------
    xarray.Dataset
        Along ``fragment``: ``mass`` (exact ion mass), ``mass_low``, ``mass_high`` (u).
    """
    masses, lows, highs = window_masses(
        fragments, window_u=window_u, resolution=resolution, peak_width=peak_width
    )
    ds = xr.Dataset(
        coords={
            "fragment": list(fragments),
            "mass": ("fragment", masses),
            "mass_low": ("fragment", lows),
            "mass_high": ("fragment", highs),
        }
    )
    for name in ("mass", "mass_low", "mass_high"):
        ds[name].attrs["units"] = "u"
    return ds


def _bin_block(
    records: np.ndarray,
    *,
    path: str,
    ranges: tuple[tuple[int, int, int, int], ...],
    plan: BinningPlan,
    block_id: tuple[int, int],
) -> np.ndarray:
    """Bin one block of records into one flat array ``[counts, shadow counts, spectrum]``.

    One array per task (unpacked by :func:`_unpack`) keeps the read and the binning of a
    block in a single fused task.
    """
    first_event, _, s0, s1 = ranges[block_id[0]]
    shape = (plan.n_fragments, s1 - s0, *plan.kernel_shape)
    size = math.prod(shape)
    n_channels = plan.n_channels
    flat = np.zeros(size * (2 if plan.with_shadow else 1) + n_channels, dtype=np.uint32)
    counts = flat[:size].reshape(shape)
    shadow = (
        flat[size : 2 * size].reshape(shape) if plan.with_shadow else flat[:0].reshape(0, 0, 0, 0)
    )
    spill = flat[flat.size - n_channels :]  # becomes the spectrum
    table = plan.new_table()
    index, field = plan.bin(np.asarray(records), s0, table, spill, counts, shadow)
    if index >= 0:
        value = int(records[index, field])
        raise_bad_record(path, first_event + index, field, value, (s0, s1), plan.raster)
    spill[:] = spectrum_of(table, spill)
    return flat


def _unpack(
    flat: np.ndarray,
    *,
    part: str,
    shapes: tuple[tuple[int, ...], ...],
    block_id: tuple[int, ...],
) -> np.ndarray:
    """Cut the counts or shadow counts out of one block's flat array (a view, no copy)."""
    shape = shapes[block_id[1]]
    size = math.prod(shape)
    start = 0 if part == "counts" else size
    return flat[start : start + size].reshape(shape)


def _spectrum_part(flat: np.ndarray, *, n_channels: int) -> np.ndarray:
    """Copy the spectrum at the end of a block's flat array, as one ``(1, channel)`` row."""
    return flat[flat.size - n_channels :][None, :].copy()


def _block_scan_ranges(
    record: da.Array, first_event: np.ndarray, n_scans: int
) -> list[tuple[int, int, int, int]]:
    """(first record, stop record, first scan, stop scan) of every dask block."""
    starts = [*(int(v) for v in first_event), int(record.shape[0])]
    edges = np.concatenate([[0], np.cumsum(record.chunks[0])]).astype(int).tolist()
    scans = []
    for edge in edges:
        scan = bisect.bisect_left(starts, edge)
        if edge not in (0, edges[-1]) and (scan >= len(starts) or starts[scan] != edge):
            raise AnalysisError(
                f"event block boundary at record {edge} is not the start of a scan; "
                "reconstruct needs the blocks of tofsims.io.grd.read (whole scans)"
            )
        scans.append(scan)
    scans[0], scans[-1] = 0, n_scans
    return [(edges[i], edges[i + 1], scans[i], scans[i + 1]) for i in range(len(edges) - 1)]


def _cut_at_groups(
    record: da.Array, first_event: np.ndarray, n_scans: int, group: int
) -> tuple[da.Array, list[tuple[int, int, int, int]]]:
    """Cut the read blocks of ``record`` at the first scan of every group of ``group`` scans.

    Each piece lies in one depth block (the one-pass engine's group) and one read block;
    a group's spectrum is then the sum of its pieces' (:func:`_sum_rows`). A piece may hold
    no record (empty scans); it still covers its scans.

    Cut rather than one spectrum row per group from each read block: a read block of a small
    raster spans many groups (up to 2 M scan × pixel voxels: 120 groups at 32 × 32 pixels),
    and as many rows of ~4 MB (10⁶ channels) would make one task hold far more than its
    counts; cut, a task holds one row, as a group of the one-pass engine does. The cuts only
    split read blocks: a block that is not cut stays one fused read-and-bin task, one that is
    cut is mapped once and its pieces are views of it (:func:`_record_piece`; dask's own
    slicing and rechunking copy), and a group sums at most ``group`` neighbouring rows.

    Returns
    -------
    pieces, ranges
        The records in one dask block per piece, and (first record, stop record, first
        scan, stop scan) of every piece.
    """
    read = _block_scan_ranges(record, first_event, n_scans)
    starts = [*(int(v) for v in first_event), int(record.shape[0])]
    read_first = [s0 for _, _, s0, _ in read]
    bounds = sorted({*read_first, *range(0, n_scans, group), n_scans})
    ranges = [(starts[lo], starts[hi], lo, hi) for lo, hi in itertools.pairwise(bounds)]
    if len(ranges) == len(read):
        return record, ranges
    import dask.array as da
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    name = f"cut-records-{tokenize(record.name, ranges)}"
    layer: dict[Any, Any] = {}
    for i, (first, stop, s0, _) in enumerate(ranges):
        block = bisect.bisect_right(read_first, s0) - 1
        offset = read[block][0]
        source = (record.name, block, 0)
        layer[(name, i, 0)] = (_record_piece, source, first - offset, stop - offset)
    graph = HighLevelGraph.from_collections(name, layer, dependencies=[record])
    sizes = tuple(stop - first for first, stop, _, _ in ranges)
    meta = np.empty((0, record.shape[1]), dtype=record.dtype)
    return da.Array(graph, name, chunks=(sizes, record.chunks[1]), meta=meta), ranges


def _record_piece(block: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Return records ``start:stop`` of a read block, as a view."""
    return block[start:stop]


def _sum_rows(rows: np.ndarray) -> np.ndarray:
    """Spectrum of one depth block: the sum of its tasks' rows, as one ``(1, channel)`` row.

    uint32 like the one-pass engine's group spectrum (the same counts modulo 2**32).
    """
    return rows if rows.shape[0] == 1 else rows.sum(axis=0, keepdims=True, dtype=np.uint32)


def reconstruct(
    events: xr.Dataset,
    fragments: Sequence[str],
    *,
    window_u: float | None = None,
    resolution: float | None = None,
    peak_width: PeakWidth | None = None,
    sf: float | None = None,
    k0: float | None = None,
    lateral_bin: int = 1,
    dead_time_s: float | None = None,
    seconds_per_scan: float | None = None,
    spectrum_mass_max: float | None = None,
) -> xr.Dataset:
    """Bin a lazy GRD event table into fragment volumes (lazy; nothing is computed).

    Parameters
    ----------
    events
        Result of :func:`tofsims.io.grd.read` (blocks of whole scans).
    fragments
        Fragments in our notation, e.g. ``["C2HO-", "PO3-", "LiF2-", "BO2-", "CeO2-",
        "NiO2-"]``.
    window_u, resolution, peak_width
        Mass windows, see :func:`mass_windows` (default ±0.05 u; the workflows measure the
        peak width, :func:`tofsims.workflows.reconstruct`).
    sf, k0
        Mass calibration to apply (default: ``events.attrs``), channels per √u, channels.
    lateral_bin
        Sum ``b × b`` pixel blocks (edge bins may hold fewer pixels).
    dead_time_s
        Detector dead time (s). When given, counts are Poisson-corrected per pixel over its
        shots in blocks of 16 scans, before lateral binning
        (:func:`tofsims.dead_time.correct_pixels`); the raw counts are kept as
        ``counts_raw``, ``saturated`` flags voxels with a pixel counted in more than half
        of its live shots and ``dead_time_increase(fragment)`` is corrected / raw total − 1
        (:func:`tofsims.io.volume_store.write_volume` copies it into the attributes and
        warns above 10 %).
    seconds_per_scan
        Sputter time per scan (s), for the ``sputter_time`` coordinate (start of each scan,
        ``k·Δt``: ``docs/conventions.md``). Default: the events' ``seconds_per_scan``
        attribute (``Analysis.SputterTime`` / ``Analysis.TotalScans`` of ``properties.txt``);
        NaN when neither is known. Attribute ``sputter_time_source`` says which was used.
    spectrum_mass_max
        Upper end (u) of the summed spectrum (default: 200 u or above the highest window).

    Returns
    -------
    xarray.Dataset
        ``counts(fragment, scan, y, x)`` (uint32, or float64 when corrected) per
        ``docs/conventions.md`` with coordinates ``mass``, ``mass_low``, ``mass_high`` (u),
        ``sputter_time`` (s); ``spectrum(tof_channel)`` (uint64 counts, coordinate
        ``spectrum_mass`` from the applied calibration) = the sum over ``block`` of
        ``spectrum_part(block, tof_channel)`` (uint32, one row per depth block: the groups of
        :func:`tofsims.threaded_binning.group_scans` scans of the one-pass engine, whatever
        the blocks the file was read in; first scans in the coordinate ``block_first_scan``).
        Attributes ``sf``, ``k0``, ``time_resolution_s``,
        ``shots_per_pixel``, ``seconds_per_scan``, ``field_of_view_m``, ``lateral_bin``,
        ``poisson_corrected``, ``dead_time_s``, ``polarity`` and the source's provenance.
        Computing ``counts`` and ``spectrum`` together reads the file once.
    """
    attrs = events.attrs
    sf = float(attrs["sf"] if sf is None else sf)
    k0 = float(attrs["k0"] if k0 is None else k0)
    windows = mass_windows(
        fragments, window_u=window_u, resolution=resolution, peak_width=peak_width
    )
    raster = (int(attrs["raster_y"]), int(attrs["raster_x"]))
    plan = binning_plan(
        windows["mass_low"].values,
        windows["mass_high"].values,
        sf,
        k0,
        raster,
        lateral_bin=lateral_bin,
        dead_channels=_dead_channels(dead_time_s, attrs),
        spectrum_mass_max=spectrum_mass_max,
        shots_per_pixel=int(attrs["shots_per_pixel"]),
    )
    n_scans, n_channels = int(attrs["total_scans"]), plan.n_channels
    # the depth blocks of spectrum_part are the one-pass engine's groups, not the read blocks:
    # the peak fits (per block) then give the same numbers whichever engine binned the file
    group = group_scans(plan)
    record, ranges = _cut_at_groups(
        events["record"].data, events["first_event"].values, n_scans, group
    )
    kernel_shape = plan.kernel_shape
    shapes = tuple((len(fragments), s1 - s0, *kernel_shape) for _, _, s0, s1 in ranges)
    with_shadow = plan.with_shadow
    flat = record.map_blocks(
        _bin_block,
        # a fresh name per call: dask ships the lookup tables as `ndarray-<uuid>` keys, so two
        # identical calls (the same file twice in a batch) would otherwise submit one key with
        # two different specs to a shared distributed scheduler
        name=f"bin-block-{uuid.uuid4().hex}",
        dtype=np.uint32,
        chunks=(tuple(math.prod(sh) * (2 if with_shadow else 1) + n_channels for sh in shapes),),
        drop_axis=1,
        meta=np.empty((0,), dtype=np.uint32),
        path=attrs["source_file"],
        ranges=tuple(ranges),
        plan=plan,
    )
    volume_chunks = (
        (len(fragments),),
        tuple(sh[1] for sh in shapes),
        (kernel_shape[0],),
        (kernel_shape[1],),
    )

    def view(part: str) -> da.Array:
        return flat.map_blocks(
            _unpack,
            dtype=np.uint32,
            chunks=volume_chunks,
            new_axis=[0, 2, 3],
            meta=np.empty((0, 0, 0, 0), dtype=np.uint32),
            part=part,
            shapes=shapes,
        )

    counts = view("counts")
    if with_shadow:
        corrected, counts, saturated = _dead_time_corrected(counts, view("shadow"), plan)
    # per-block spectra: a store writes each group's row as soon as its pieces are binned (a
    # reduction over all blocks inside the same graph made the scheduler hold counts of many
    # blocks); the rows are copies, so a group waiting for its last piece holds no counts
    piece_rows = flat.map_blocks(
        _spectrum_part,
        dtype=np.uint32,
        chunks=((1,) * len(shapes), (n_channels,)),
        new_axis=[1],
        meta=np.empty((0, 0), dtype=np.uint32),
        n_channels=n_channels,
    )
    pieces_per_group = np.bincount([s0 // group for _, _, s0, _ in ranges])
    spectrum_parts = piece_rows.rechunk({0: tuple(int(n) for n in pieces_per_group)}).map_blocks(
        _sum_rows,
        dtype=np.uint32,
        chunks=((1,) * len(pieces_per_group), (n_channels,)),
        meta=np.empty((0, 0), dtype=np.uint32),
    )
    layout = volume_layout(
        counts,
        spectrum_parts,
        spectrum_parts.sum(axis=0, dtype=np.uint64),
        fragments,
        (windows["mass"].values, windows["mass_low"].values, windows["mass_high"].values),
        attrs,
        sf=sf,
        k0=k0,
        lateral_bin=lateral_bin,
        seconds_per_scan=seconds_per_scan,
        block_first_scans=range(0, n_scans, group),
    )
    if dead_time_s is not None:
        import dask.array as da

        raw_total = counts.sum(axis=(1, 2, 3), dtype=np.float64)
        increase = da.map_blocks(
            relative_increase, raw_total, corrected.sum(axis=(1, 2, 3)), dtype=np.float64
        )
        layout.add_poisson(corrected, saturated, increase, dead_time_s)
    return to_dataset(layout)


def _correct_block(counts: np.ndarray, shadow: np.ndarray, *, plan: BinningPlan) -> np.ndarray:
    """Corrected, raw and saturated voxels of one pooling block, stacked as float64."""
    corrected, raw, saturated = correct_pixels(
        counts, shadow, plan.shots_per_pixel, plan.lateral_bin
    )
    return np.stack([corrected, raw.astype(np.float64), saturated.astype(np.float64)])


def _dead_time_corrected(
    counts: da.Array, shadow: da.Array, plan: BinningPlan
) -> tuple[da.Array, da.Array, da.Array]:
    """Per-pixel dead-time correction in blocks of POOL_SCANS scans, then lateral binning.

    The pixel counts are regrouped into the pooling blocks of the one-pass engine (scans
    ``0…15``, ``16…31``, …), whatever the blocks the file was read in, so that both engines
    pool the same shots and give the same values.
    """
    import dask.array as da

    pooled = {1: POOL_SCANS}
    counts, shadow = counts.rechunk(pooled), shadow.rechunk(pooled)
    ny, nx = plan.binned
    stacked = da.map_blocks(
        _correct_block,
        counts,
        shadow,
        plan=plan,
        dtype=np.float64,
        new_axis=[0],
        chunks=((3,), *counts.chunks[:2], (ny,), (nx,)),
        meta=np.empty((0, 0, 0, 0, 0), dtype=np.float64),
    )
    return stacked[0], stacked[1].astype(np.uint32), stacked[2].astype(bool)


def _dead_channels(dead_time_s: float | None, attrs: dict[str, Any]) -> int | None:
    """Dead time in TOF channels (None without a dead time)."""
    return None if dead_time_s is None else round(dead_time_s / attrs["time_resolution_s"])


def poisson_correct(
    counts: xr.DataArray, shots: Any, shadow: xr.DataArray | None = None
) -> tuple[xr.DataArray, xr.DataArray]:
    """Dead-time correction of counts from shots of one rate (Stephan et al. 1994).

    ``N · Σ_{k=0}^{I−1} 1/(N′ − k)``, the Nelson–Aalen form of ``−N·ln(1 − I/N′)``
    (:func:`tofsims.dead_time.hazard_counts`): close to it for ``I ≪ N′`` and finite up to
    ``I = N′``. Use it on counts whose shots share one rate (one pixel, or a homogeneous
    region); :func:`reconstruct` corrects every pixel before binning.

    Parameters
    ----------
    counts
        Measured counts I.
    shots
        N, primary-ion shots that could produce each count (integers, broadcastable).
    shadow
        Counts in the dead-time window just before the peak, same shape; ``N′ = N − shadow``
        (default 0, the simplified peak-level form).

    Returns
    -------
    corrected, saturated
        Float64 corrected counts (never NaN or infinite) and the flag I/N′ > 0.5, where
        the Poisson model becomes unreliable. Lazy on dask input.
    """
    shots = xr.DataArray(shots) if not isinstance(shots, xr.DataArray) else shots
    shadow = xr.zeros_like(counts) if shadow is None else shadow
    corrected, saturated = xr.apply_ufunc(
        hazard_counts,
        counts,
        shots.astype("int64"),
        shadow,
        output_core_dims=[[], []],
        dask="parallelized",
        output_dtypes=[np.float64, bool],
    )
    corrected.attrs = dict(CORRECTED_ATTRS)
    saturated.attrs = dict(SATURATED_ATTRS)  # a flag: not the counts' units
    return corrected, saturated
