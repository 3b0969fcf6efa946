"""GRD event list -> fragment volume store in one pass over the file, on local threads.

The same store as :func:`tofsims.reconstruct.reconstruct` followed by
:func:`tofsims.io.volume_store.write_volume`, without dask and without holding the
volume: worker threads bin groups of scans (:class:`tofsims.threaded_binning.
ScanGroupBinner`) while this thread creates the store from a template and writes each
group's counts and spectrum as it arrives. The binning starts before xarray and Zarr are
imported (this module and those it imports at the top need NumPy and numba only), so their
import overlaps the binning. Use :mod:`tofsims.reconstruct` on a dask cluster.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from operando_core.stores import record_chunks
from tofsims.binning import BinningPlan, binning_plan, window_masses
from tofsims.dead_time import relative_increase
from tofsims.io.grd_records import GrdRecords, event_attrs
from tofsims.peak_windows import PeakWidth
from tofsims.threaded_binning import ScanGroupBinner
from tofsims.volume_layout import VolumeLayout, placeholder, volume_layout

__all__ = ["ReconstructedStore", "reconstruct_grd", "reconstruction_plan", "volume_template"]


@dataclass(frozen=True)
class ReconstructedStore:
    """What :func:`reconstruct_grd` wrote.

    Attributes
    ----------
    sizes
        Sizes of ``fragment``, ``scan``, ``y``, ``x``.
    spectrum
        The summed spectrum of every event (uint64 per TOF channel), also in the store.
    events
        Records binned.
    """

    sizes: dict[str, int]
    spectrum: np.ndarray
    events: int


def reconstruction_plan(
    records: GrdRecords,
    fragments: Sequence[str],
    *,
    sf: float,
    k0: float,
    window_u: float | None = None,
    resolution: float | None = None,
    lateral_bin: int = 1,
    dead_time_s: float | None = None,
    peak_width: PeakWidth | None = None,
) -> BinningPlan:
    """Tables of :func:`reconstruct_grd` (parameters as there); checks the windows."""
    _, lows, highs = window_masses(
        fragments, window_u=window_u, resolution=resolution, peak_width=peak_width
    )
    dead = None
    if dead_time_s is not None:
        dead = round(dead_time_s / records.properties.time_resolution_s)
    return binning_plan(
        lows,
        highs,
        sf,
        k0,
        records.raster,
        lateral_bin=lateral_bin,
        dead_channels=dead,
        shots_per_pixel=records.properties.shots_per_pixel,
    )


def reconstruct_grd(
    records: GrdRecords,
    fragments: Sequence[str],
    path: str | os.PathLike[str],
    *,
    sf: float,
    k0: float,
    window_u: float | None = None,
    resolution: float | None = None,
    lateral_bin: int = 1,
    dead_time_s: float | None = None,
    seconds_per_scan: float | None = None,
    peak_width: PeakWidth | None = None,
    attrs: dict[str, Any] | None = None,
    workers: int | None = None,
    on_events: Callable[[int], Any] | None = None,
    warn_dead_time: bool = True,
) -> ReconstructedStore:
    """Bin a GRD file into a new volume store at ``path``, reading the file once.

    Parameters
    ----------
    records
        The opened file (:func:`tofsims.io.grd_records.open_records`).
    fragments
        Fragments in our notation.
    path
        New or empty folder for the Zarr store (publish it atomically with
        :func:`tofsims.io.volume_store.publish_store`).
    sf, k0
        Mass calibration to apply.
    window_u, resolution, lateral_bin, dead_time_s, seconds_per_scan, peak_width
        As :func:`tofsims.reconstruct.reconstruct`.
    attrs
        Extra attributes of the store (e.g. the calibration record).
    workers
        Binning threads (default: all cores).
    on_events
        Called with each number of records binned (progress).
    warn_dead_time
        ``False``: no :class:`~tofsims.dead_time.DeadTimeWarning`; the caller reports the
        store's ``dead_time_increase`` attribute (a warning is process-global state, which
        threads binning several files at once would share).

    Returns
    -------
    ReconstructedStore
        Sizes, summed spectrum and record count.

    Raises
    ------
    AnalysisError
        Bad windows or binning options.
    TofsimsReadError
        A record outside the scans or the raster (the store is left incomplete).
    """
    plan = reconstruction_plan(
        records,
        fragments,
        sf=sf,
        k0=k0,
        window_u=window_u,
        resolution=resolution,
        lateral_bin=lateral_bin,
        dead_time_s=dead_time_s,
        peak_width=peak_width,
    )
    source = event_attrs(records)
    masses = window_masses(
        fragments, window_u=window_u, resolution=resolution, peak_width=peak_width
    )
    binner = ScanGroupBinner(records, plan, workers=workers, on_events=on_events)
    with binner:
        # imported while the workers bin: its import takes longer than a small file
        from tofsims.io.volume_store import create_volume_store

        layout = volume_template(
            source,
            fragments,
            masses,
            plan,
            sf=sf,
            k0=k0,
            block_first_scans=binner.bounds[:-1],
            seconds_per_scan=seconds_per_scan,
            dead_time_s=dead_time_s,
        )
        layout.attrs.update(attrs or {})
        store = create_volume_store(layout, path, scan_chunk=binner.scans_per_group)
        spectrum = np.zeros(plan.n_channels, dtype=np.uint64)
        # raw and corrected totals per group, summed in group order at the end: the groups
        # arrive in the order the workers finish them
        totals = np.zeros((binner.n_groups, 2, plan.n_fragments), dtype=np.float64)
        for group in binner:
            if group.corrected is None:
                store.write("counts", (slice(None), group.scans), group.counts)
            else:
                store.write("counts", (slice(None), group.scans), group.corrected)
                store.write("counts_raw", (slice(None), group.scans), group.counts)
                store.write("saturated", (slice(None), group.scans), group.saturated)
                totals[group.block, 0] = group.counts.sum(axis=(1, 2, 3), dtype=np.float64)
                totals[group.block, 1] = group.corrected.sum(axis=(1, 2, 3))
            store.write("spectrum_part", (group.block,), group.spectrum)
            spectrum += group.spectrum
        store.write("spectrum", (slice(None),), spectrum)
        if dead_time_s is not None:
            from tofsims.io.volume_store import record_dead_time_increase

            increase = relative_increase(*totals.sum(axis=0))
            store.write("dead_time_increase", (slice(None),), increase)
            record_dead_time_increase(path, warn=warn_dead_time)
        record_chunks(path)  # what was written, so that a damaged copy is recognised
    sizes = {"fragment": plan.n_fragments, "scan": records.n_scans}
    sizes.update(zip(("y", "x"), plan.binned, strict=True))
    return ReconstructedStore(sizes, spectrum, records.n_records)


def volume_template(
    source_attrs: dict[str, Any],
    fragments: Sequence[str],
    windows: tuple[np.ndarray, np.ndarray, np.ndarray],
    plan: BinningPlan,
    *,
    sf: float,
    k0: float,
    block_first_scans: Sequence[int],
    seconds_per_scan: float | None = None,
    dead_time_s: float | None = None,
) -> VolumeLayout:
    """Lay out the volume with placeholders for the arrays written group by group.

    ``counts`` (and ``counts_raw``, ``saturated``), ``spectrum_part`` and ``spectrum`` hold
    their fill value as zero-stride views (:func:`tofsims.volume_layout.placeholder`).
    """
    shape = (plan.n_fragments, int(source_attrs["total_scans"]), *plan.binned)
    layout = volume_layout(
        placeholder(np.uint32, shape),
        placeholder(np.uint32, (len(block_first_scans), plan.n_channels)),
        placeholder(np.uint64, (plan.n_channels,)),
        fragments,
        windows,
        source_attrs,
        sf=sf,
        k0=k0,
        lateral_bin=plan.lateral_bin,
        seconds_per_scan=seconds_per_scan,
        block_first_scans=block_first_scans,
    )
    if dead_time_s is not None:
        saturated = placeholder(np.bool_, shape)
        increase = placeholder(np.float64, (plan.n_fragments,))
        layout.add_poisson(placeholder(np.float64, shape), saturated, increase, dead_time_s)
    return layout
