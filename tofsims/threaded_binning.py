"""Bin a GRD file on local threads, one group of scans at a time, without dask.

Each worker thread takes the next group of whole scans, asks the OS to read the group
ahead, reads its records a run at a time into a small reused buffer (the records stay in
the CPU cache for the kernel), bins them with the numba kernel of :mod:`tofsims.binning`
(file reads and the kernel release the GIL) and hands the group's counts and spectrum to
the consumer, which writes them while the workers go on. Binned groups waiting for the
consumer are bounded (:data:`PENDING_BYTES`, at least two groups), so memory depends on the
raster, not on the file size or the number of cores. Groups cover :data:`GROUP_SCANS` scans
(the Zarr storage chunk along ``scan``), fewer when a raster is so large that a group would
exceed :data:`GROUP_BYTES`. With a dead time a group is one pooling block of the
correction (:data:`tofsims.dead_time.POOL_SCANS` scans), which the worker corrects per pixel
and bins laterally before handing it over.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, BinaryIO

import numpy as np

from tofsims.binning import BinningPlan, spectrum_of
from tofsims.dead_time import POOL_SCANS, correct_pixels
from tofsims.io.grd_records import GrdRecords, prefetch_records, raise_bad_record, read_records

__all__ = ["GROUP_SCANS", "BinnedGroup", "ScanGroupBinner", "default_workers", "group_scans"]

#: Scans per group: the Zarr storage chunk of volumes along ``scan``.
GROUP_SCANS = 16
#: Upper bound of the counts (and shadow counts) of one group, bytes.
GROUP_BYTES = 128 * 2**20
#: Binned groups (waiting for the consumer or being binned) up to this size (bytes; at least
#: two groups): the workers go on while the consumer is still creating the store.
PENDING_BYTES = 256 * 2**20
#: Records read and binned at once (1.3 MB, within the CPU's L2/L3 cache).
RUN_EVENTS = 1 << 16


def default_workers() -> int:
    """Cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def group_scans(plan: BinningPlan) -> int:
    """Return the scans per group: :data:`GROUP_SCANS`, fewer for very large rasters.

    With a dead time: :data:`tofsims.dead_time.POOL_SCANS`, the block the correction pools
    (the same in every engine, whatever the memory).
    """
    if plan.with_shadow:
        return POOL_SCANS
    per_scan = plan.n_fragments * plan.binned[0] * plan.binned[1] * 4
    per_scan *= 2 if plan.with_shadow else 1
    return int(max(1, min(GROUP_SCANS, GROUP_BYTES // per_scan)))


@dataclass
class BinnedGroup:
    """The binned events of a group of scans.

    Attributes
    ----------
    block
        Index of the group (0 = first scans).
    scans
        The scans covered, ``slice(first, stop)``.
    counts
        ``(fragment, scan, y, x)`` uint32 voxel counts (raw).
    spectrum
        Counts per TOF channel of every event of the group (uint32).
    corrected, saturated
        With a dead time: dead-time corrected counts (float64) and saturation flags of the
        voxels (:func:`tofsims.dead_time.correct_pixels`); ``None`` without.
    """

    block: int
    scans: slice
    counts: np.ndarray
    spectrum: np.ndarray
    corrected: np.ndarray | None = None
    saturated: np.ndarray | None = None


class _Cancelled(Exception):
    """A worker stopped because another failed or the consumer left."""


_DONE = object()


class ScanGroupBinner:
    """Worker threads binning groups of scans; iterate to receive them as they finish.

    Use as a context manager: the threads start on entry and are stopped and joined on
    exit (also after an error, in a worker or in the consumer). A worker's error is raised
    by the iteration.

    Parameters
    ----------
    records
        The opened file (:func:`tofsims.io.grd_records.open_records`).
    plan
        Tables and raster (:func:`tofsims.binning.binning_plan`).
    workers
        Threads (default: all cores of this process).
    scans_per_group
        Default: :func:`group_scans`.
    on_events
        Called with the number of records of each run once it is binned (from the worker
        threads, one call at a time).
    run_events
        Records read and binned at once.
    """

    def __init__(
        self,
        records: GrdRecords,
        plan: BinningPlan,
        *,
        workers: int | None = None,
        scans_per_group: int | None = None,
        on_events: Callable[[int], Any] | None = None,
        run_events: int = RUN_EVENTS,
    ):
        self.records, self.plan = records, plan
        self.workers = default_workers() if workers is None else max(1, int(workers))
        step = group_scans(plan) if scans_per_group is None else int(scans_per_group)
        self.scans_per_group = step
        self.bounds = [*range(0, records.n_scans, step), records.n_scans]
        self.on_events, self.run_events = on_events, int(run_events)
        self._results: queue.Queue[Any] = queue.Queue()
        ky, kx = plan.kernel_shape
        group_bytes = 4 * (
            plan.n_fragments * step * ky * kx * (1 + plan.with_shadow)
            + 2 * plan.n_channels  # spill and spectrum
        )
        # a byte budget, not one group per worker: with a large raster and many cores,
        # groups per worker would make memory grow with the cores
        self.pending = max(2, PENDING_BYTES // group_bytes)
        self._slots = threading.Semaphore(self.pending)
        self._lock = threading.Lock()
        self._next = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def n_groups(self) -> int:
        """Number of groups of scans."""
        return len(self.bounds) - 1

    def __enter__(self) -> ScanGroupBinner:
        self._threads = [
            threading.Thread(target=self._work, name=f"grd-binning-{k}", daemon=True)
            for k in range(min(self.workers, self.n_groups))
        ]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        for _ in self._threads:
            self._slots.release()  # wake workers waiting for a slot
        for thread in self._threads:
            thread.join()

    def __iter__(self) -> Iterator[BinnedGroup]:
        running = len(self._threads)
        while running:
            item = self._results.get()
            if item is _DONE:
                running -= 1
                continue
            if isinstance(item, BaseException):
                self._stop.set()
                raise item
            yield item
            self._slots.release()  # the consumer is done with this group

    def _work(self) -> None:
        try:
            buffer = np.empty((self.run_events, 5), dtype=np.uint32)
            with open(self.records.path, "rb", buffering=0) as handle:
                while True:
                    self._slots.acquire()
                    with self._lock:
                        block, self._next = self._next, self._next + 1
                    if self._stop.is_set() or block >= self.n_groups:
                        break
                    self._results.put(self._bin_group(block, handle, buffer))
        except _Cancelled:
            pass
        except BaseException as err:  # handed to the consumer, which raises it
            self._stop.set()
            self._results.put(err)
        finally:
            self._results.put(_DONE)

    def _bin_group(self, block: int, handle: BinaryIO, buffer: np.ndarray) -> BinnedGroup:
        plan, path = self.plan, self.records.path
        s0, s1 = self.bounds[block], self.bounds[block + 1]
        first, stop = int(self.records.starts[s0]), int(self.records.starts[s1])
        prefetch_records(handle, first, stop)
        counts, shadow = plan.new_counts(s1 - s0)
        table = plan.new_table()
        spill = np.zeros(plan.n_channels, dtype=np.uint32)
        for start in range(first, stop, self.run_events):
            if self._stop.is_set():
                raise _Cancelled
            end = min(start + self.run_events, stop)
            records = read_records(handle, start, buffer[: end - start])
            index, field = plan.bin(records, s0, table, spill, counts, shadow)
            if index >= 0:
                value = int(records[index, field])
                raise_bad_record(path, start + index, field, value, (s0, s1), plan.raster)
            if self.on_events is not None:
                with self._lock:
                    self.on_events(end - start)
        spectrum = spectrum_of(table, spill)
        if not plan.with_shadow:
            return BinnedGroup(block, slice(s0, s1), counts, spectrum)
        corrected, raw, saturated = correct_pixels(
            counts, shadow, plan.shots_per_pixel, plan.lateral_bin
        )
        return BinnedGroup(block, slice(s0, s1), raw, spectrum, corrected, saturated)
