"""Events -> fragment volumes ``counts(fragment, scan, y, x)``: fused single-pass binning.

For every block of raw events (one dask task, whole scans) a numba kernel walks the
records once: it checks the record, adds it to the summed spectrum, looks its TOF
channel up in a channel -> fragment table and increments the voxel of that fragment
(after optional lateral binning). With a dead time it also counts, per voxel, the ions
arriving in the dead-time "shadow" just before each fragment's window, which the
Poisson correction needs (methods.md §B3). See ``docs/methods.md`` "Reconstruction".
"""

from __future__ import annotations

import bisect
import math
import uuid
from collections.abc import Sequence
from typing import Any

import dask.array as da
import numba
import numpy as np
import xarray as xr

from tofsims.errors import AnalysisError
from tofsims.fragments import ion_mass
from tofsims.io.grd import raise_bad_record
from tofsims.masscal import mass_to_tof, window_channels

__all__ = [
    "channel_lookup",
    "mass_windows",
    "poisson_correct",
    "reconstruct",
    "shadow_lookup",
]

#: Default upper end of the summed spectrum (u) when no window reaches higher.
SPECTRUM_MASS_MAX = 200.0
#: Low bits of a channel-table word holding fragment index + 1 (so at most 31 fragments).
FRAGMENT_BITS = 5
FRAGMENT_MASK = (1 << FRAGMENT_BITS) - 1
COUNT_UNIT = 1 << FRAGMENT_BITS


def mass_windows(
    fragments: Sequence[str], *, window_u: float | None = None, resolution: float | None = None
) -> xr.Dataset:
    """Integration windows of fragments.

    Parameters
    ----------
    fragments
        Our notation (``"C2HO-"``, ``"6LiF2-"``, ``"BO2-"`` = ¹¹BO₂⁻ …).
    window_u
        Fixed half-width ±Δm in u (default 0.05 u when ``resolution`` is not given).
    resolution
        Mass resolving power R = m/Δm: the window is the peak's FWHM, ``m ± m/(2R)``.

    Returns
    -------
    xarray.Dataset
        Along ``fragment``: ``mass`` (exact ion mass), ``mass_low``, ``mass_high`` (u).
    """
    if window_u is not None and resolution is not None:
        raise AnalysisError("give either window_u or resolution, not both")
    masses = np.array([ion_mass(f) for f in fragments], dtype="float64")
    if resolution is not None:
        if resolution <= 0:
            raise AnalysisError(f"resolution must be > 0, not {resolution!r}")
        half = masses / (2.0 * resolution)
    else:
        half_width = 0.05 if window_u is None else window_u
        if half_width <= 0:
            raise AnalysisError(f"window_u must be > 0 u, not {half_width!r}")
        half = np.full_like(masses, half_width)
    ds = xr.Dataset(
        coords={
            "fragment": list(fragments),
            "mass": ("fragment", masses),
            "mass_low": ("fragment", masses - half),
            "mass_high": ("fragment", masses + half),
        }
    )
    for name in ("mass", "mass_low", "mass_high"):
        ds[name].attrs["units"] = "u"
    return ds


def channel_lookup(
    mass_low: np.ndarray, mass_high: np.ndarray, sf: float, k0: float, n_channels: int
) -> np.ndarray:
    """Table TOF channel -> fragment index (``-1`` outside every window), int16.

    Raises
    ------
    AnalysisError
        Two windows share a channel, or a window is empty or outside the table.
    """
    first, last = window_channels(mass_low, mass_high, sf, k0)
    lut = np.full(n_channels, -1, dtype=np.int16)
    for index, (lo, hi) in enumerate(zip(first, last, strict=True)):
        if hi < lo or lo < 0 or hi >= n_channels:
            raise AnalysisError(
                f"window {mass_low[index]:.5f}–{mass_high[index]:.5f} u covers no TOF channel "
                f"of 0…{n_channels - 1} (channels {lo}…{hi})"
            )
        taken = lut[lo : hi + 1]
        if (taken >= 0).any():
            other = int(taken[taken >= 0][0])
            raise AnalysisError(
                f"mass windows overlap: {mass_low[index]:.5f}–{mass_high[index]:.5f} u and "
                f"{mass_low[other]:.5f}–{mass_high[other]:.5f} u; use narrower windows"
            )
        lut[lo : hi + 1] = index
    return lut


def shadow_lookup(
    mass_low: np.ndarray, sf: float, k0: float, n_channels: int, dead_channels: int
) -> np.ndarray:
    """Table channel -> fragment whose window starts within the next ``dead_channels``.

    An ion in channel ``c`` blinds the detector until ``c + d``; for the Poisson correction
    of a window starting at ``c0`` the ions in ``c0 − d … c0 − 1`` reduce the number of
    shots that could still detect it. A channel in the shadow of several windows is
    attributed to the nearest following one.
    """
    first, _ = window_channels(mass_low, mass_low, sf, k0)
    lut = np.full(n_channels, -1, dtype=np.int16)
    for index in np.argsort(-first, kind="stable"):
        lo = max(int(first[index]) - dead_channels, 0)
        lut[lo : int(first[index])] = index
    return lut


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _bin_kernel(
    records, table, shadow_lut, scan0, ny, nx, ybin, xbin, counts, shadow
):  # pragma: no cover - compiled
    # table[c] = (spectrum counts of channel c) << FRAGMENT_BITS | (fragment index + 1): one
    # 4-byte word per channel, so each event costs one random read-modify-write of the table
    n_channels = table.shape[0]
    n_scans = counts.shape[1]
    use_shadow = shadow_lut.shape[0] > 0
    previous = 0
    for i in range(records.shape[0]):
        s = np.int64(records[i, 0]) - scan0
        if s < previous or s >= n_scans:
            return i, 0
        previous = s
        y = np.int64(records[i, 3])
        if y >= ny:
            return i, 3
        x = np.int64(records[i, 2])
        if x >= nx:
            return i, 2
        t = np.int64(records[i, 4])
        if t < n_channels:
            entry = table[t]
            table[t] = entry + COUNT_UNIT
            f = np.int64(entry & FRAGMENT_MASK) - 1
            if f >= 0:
                counts[f, s, ybin[y], xbin[x]] += 1
            if use_shadow:
                g = shadow_lut[t]
                if g >= 0:
                    shadow[g, s, ybin[y], xbin[x]] += 1
    return -1, -1


def _bin_block(
    records: np.ndarray,
    *,
    path: str,
    ranges: tuple[tuple[int, int, int, int], ...],
    raster: tuple[int, int],
    lateral_bin: int,
    n_fragments: int,
    lut: np.ndarray,
    shadow_lut: np.ndarray,
    block_id: tuple[int, int],
) -> np.ndarray:
    """Bin one block of records into one flat array ``[counts, shadow counts, spectrum]``.

    One array per task (unpacked by :func:`_unpack`) keeps the read and the binning of a
    block in a single fused task.
    """
    first_event, _, s0, s1 = ranges[block_id[0]]
    ny, nx = raster
    shape = (n_fragments, s1 - s0, -(-ny // lateral_bin), -(-nx // lateral_bin))
    size = math.prod(shape)
    flat = np.zeros(size * (2 if shadow_lut.size else 1) + lut.shape[0], dtype=np.uint32)
    counts = flat[:size].reshape(shape)
    shadow = (
        flat[size : 2 * size].reshape(shape) if shadow_lut.size else flat[:0].reshape(0, 0, 0, 0)
    )
    if records.shape[0] >= 1 << (32 - FRAGMENT_BITS):
        raise AnalysisError(
            f"block of {records.shape[0]} records: more than {(1 << (32 - FRAGMENT_BITS)) - 1} "
            "in one block of scans could overflow the spectrum counters"
        )
    table = flat[flat.size - lut.shape[0] :]  # becomes the spectrum
    table[:] = (lut + 1).astype(np.uint32)
    ybin = np.arange(ny, dtype=np.int64) // lateral_bin  # lookups beat an integer division
    xbin = np.arange(nx, dtype=np.int64) // lateral_bin
    index, field = _bin_kernel(
        np.asarray(records), table, shadow_lut, s0, ny, nx, ybin, xbin, counts, shadow
    )
    if index >= 0:
        value = int(records[index, field])
        raise_bad_record(path, first_event + index, field, value, (s0, s1), raster)
    table >>= FRAGMENT_BITS
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


def reconstruct(
    events: xr.Dataset,
    fragments: Sequence[str],
    *,
    window_u: float | None = None,
    resolution: float | None = None,
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
    window_u, resolution
        Mass windows, see :func:`mass_windows` (default ±0.05 u).
    sf, k0
        Mass calibration to apply (default: ``events.attrs``), channels per √u, channels.
    lateral_bin
        Sum ``b × b`` pixel blocks (edge bins may hold fewer pixels).
    dead_time_s
        Detector dead time (s). When given, counts are Poisson-corrected per voxel (see
        :func:`poisson_correct`), the raw counts are kept as ``counts_raw`` and
        ``saturated`` flags voxels with I/N′ > 0.5.
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
        ``spectrum_part(block, tof_channel)`` (uint32, one row per dask block of scans).
        Attributes ``sf``, ``k0``, ``time_resolution_s``,
        ``shots_per_pixel``, ``seconds_per_scan``, ``field_of_view_m``, ``lateral_bin``,
        ``poisson_corrected``, ``dead_time_s``, ``polarity`` and the source's provenance.
        Computing ``counts`` and ``spectrum`` together reads the file once.
    """
    attrs = events.attrs
    seconds_per_scan, time_source = _seconds_per_scan(attrs, seconds_per_scan)
    sf = float(attrs["sf"] if sf is None else sf)
    k0 = float(attrs["k0"] if k0 is None else k0)
    if lateral_bin < 1:
        raise AnalysisError(f"lateral_bin must be ≥ 1, not {lateral_bin}")
    if not 0 < len(fragments) <= FRAGMENT_MASK:
        raise AnalysisError(f"give 1 to {FRAGMENT_MASK} fragments, not {len(fragments)}")
    windows = mass_windows(fragments, window_u=window_u, resolution=resolution)
    lows, highs = windows["mass_low"].values, windows["mass_high"].values
    top_mass = max(
        SPECTRUM_MASS_MAX if spectrum_mass_max is None else spectrum_mass_max,
        float(highs.max()) * 1.01,
    )
    n_channels = math.ceil(mass_to_tof(top_mass, sf, k0)) + 1
    lut = channel_lookup(lows, highs, sf, k0, n_channels)
    shadow_lut = np.zeros(0, dtype=np.int16)
    if dead_time_s is not None:
        dead_channels = round(dead_time_s / attrs["time_resolution_s"])
        shadow_lut = shadow_lookup(lows, sf, k0, n_channels, dead_channels)
    raster = (int(attrs["raster_y"]), int(attrs["raster_x"]))
    n_scans = int(attrs["total_scans"])
    binned = (-(-raster[0] // lateral_bin), -(-raster[1] // lateral_bin))
    record = events["record"].data
    ranges = _block_scan_ranges(record, events["first_event"].values, n_scans)
    shapes = tuple((len(fragments), s1 - s0, *binned) for _, _, s0, s1 in ranges)
    with_shadow = dead_time_s is not None
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
        raster=raster,
        lateral_bin=lateral_bin,
        n_fragments=len(fragments),
        lut=lut,
        shadow_lut=shadow_lut,
    )
    volume_chunks = ((len(fragments),), tuple(sh[1] for sh in shapes), (binned[0],), (binned[1],))

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
    # per-block spectra: a store writes each block's row as soon as the block is binned (a
    # reduction inside the same graph made the scheduler hold counts of many blocks)
    spectrum_parts = flat.map_blocks(
        _spectrum_part,
        dtype=np.uint32,
        chunks=((1,) * len(shapes), (n_channels,)),
        new_axis=[1],
        meta=np.empty((0, 0), dtype=np.uint32),
        n_channels=n_channels,
    )
    out = _assemble(
        counts,
        spectrum_parts,
        windows,
        attrs,
        sf,
        k0,
        lateral_bin,
        seconds_per_scan,
        raster,
        n_scans,
    )
    out.attrs["sputter_time_source"] = time_source
    if dead_time_s is not None:
        shadow = xr.DataArray(view("shadow"), dims=out["counts"].dims)
        pixels = _pixels_per_bin(raster, lateral_bin)
        shots = int(attrs["shots_per_pixel"]) * pixels
        corrected, saturated = poisson_correct(out["counts"], shots, shadow)
        out["counts_raw"] = out["counts"]
        out["counts"] = corrected
        out["saturated"] = saturated
        out.attrs.update(poisson_corrected=1, dead_time_s=float(dead_time_s))
    return out


def _seconds_per_scan(attrs: dict[str, Any], given: float | None) -> tuple[float | None, str]:
    """Seconds per scan to use and its source: the argument, else the properties, else None."""
    if given is not None:
        return float(given), "argument seconds_per_scan"
    from_file = float(attrs.get("seconds_per_scan", math.nan))
    if math.isfinite(from_file) and from_file > 0:
        return from_file, str(attrs.get("sputter_time_source", "properties.txt"))
    return None, "none"


def _pixels_per_bin(raster: tuple[int, int], lateral_bin: int) -> xr.DataArray:
    """Count the raw pixels in every (binned) voxel, as ``(y, x)``."""
    per_y = np.bincount(np.arange(raster[0]) // lateral_bin)
    per_x = np.bincount(np.arange(raster[1]) // lateral_bin)
    return xr.DataArray(np.outer(per_y, per_x), dims=("y", "x"))


def _assemble(
    counts: da.Array,
    spectrum_parts: da.Array,
    windows: xr.Dataset,
    attrs: dict[str, Any],
    sf: float,
    k0: float,
    lateral_bin: int,
    seconds_per_scan: float | None,
    raster: tuple[int, int],
    n_scans: int,
) -> xr.Dataset:
    ny, nx = counts.shape[2:]
    scan = np.arange(n_scans, dtype=np.int64)
    per_scan = math.nan if seconds_per_scan is None else float(seconds_per_scan)
    channels = np.arange(spectrum_parts.shape[1], dtype=np.int64)
    ds = xr.Dataset(
        {
            "counts": (("fragment", "scan", "y", "x"), counts),
            "spectrum": ("tof_channel", spectrum_parts.sum(axis=0, dtype=np.uint64)),
            "spectrum_part": (("block", "tof_channel"), spectrum_parts),
        },
        coords={
            **windows.coords,
            "scan": scan,
            "sputter_time": ("scan", scan * per_scan),
            "y": np.arange(ny, dtype=np.int64),
            "x": np.arange(nx, dtype=np.int64),
            "tof_channel": channels,
            "spectrum_mass": ("tof_channel", np.clip(channels - k0, 0, None) ** 2 / sf**2),
        },
    )
    ds["counts"].attrs.update(units="counts", long_name="ion counts per voxel and window")
    ds["spectrum"].attrs.update(units="counts", long_name="summed spectrum (all events)")
    ds["spectrum_part"].attrs.update(
        units="counts", long_name="spectrum of each block of scans (sum = spectrum)"
    )
    ds["sputter_time"].attrs.update(units="s", time_reference="start")
    if seconds_per_scan is None:
        ds["sputter_time"].attrs["reason"] = (
            "unknown: properties.txt holds no sputter time (Analysis.SputterTime); "
            "pass seconds_per_scan"
        )
    ds["spectrum_mass"].attrs["units"] = "u"
    ds["tof_channel"].attrs["units"] = "channel"
    keep = (
        "time_resolution_s",
        "shots_per_pixel",
        "field_of_view_m",
        "polarity",
        "source_file",
        "format",
        "reader",
        "reader_version",
        "properties_file",
    )
    ds.attrs.update({k: attrs[k] for k in keep if k in attrs})
    ds.attrs.update(
        sf=sf,
        k0=k0,
        lateral_bin=lateral_bin,
        seconds_per_scan=per_scan,
        poisson_corrected=0,
        dead_time_s=float(attrs.get("dead_time_s", math.nan)),
        raster_y=raster[0],
        raster_x=raster[1],
    )
    return ds


def _poisson_numpy(counts: np.ndarray, shots: np.ndarray, shadow: np.ndarray):
    live = shots - shadow.astype("float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        fraction = counts / live
        corrected = np.where(fraction < 1.0, -shots * np.log1p(-fraction), np.nan)
    corrected = np.where(counts == 0, 0.0, corrected)
    return corrected, fraction > 0.5


def poisson_correct(
    counts: xr.DataArray, shots: Any, shadow: xr.DataArray | None = None
) -> tuple[xr.DataArray, xr.DataArray]:
    """Poisson dead-time correction ``I_corr = −N·ln(1 − I/N′)`` (Stephan et al. 1994).

    Parameters
    ----------
    counts
        Measured counts I.
    shots
        N, primary-ion shots that could produce each count (broadcastable): shots per pixel
        × pixels per voxel for a voxel; × pixels × scans for sums.
    shadow
        Counts in the dead-time window just before the peak, same shape; ``N′ = N − shadow``
        (default 0, the simplified peak-level form).

    Returns
    -------
    corrected, saturated
        Float64 corrected counts (NaN where I ≥ N′: not correctable) and the flag
        I/N′ > 0.5, where the Poisson model becomes unreliable. Lazy on dask input.
    """
    shots = xr.DataArray(shots) if not isinstance(shots, xr.DataArray) else shots
    shadow = xr.zeros_like(counts) if shadow is None else shadow
    corrected, saturated = xr.apply_ufunc(
        _poisson_numpy,
        counts,
        shots.astype("float64"),
        shadow,
        output_core_dims=[[], []],
        dask="parallelized",
        output_dtypes=[np.float64, bool],
    )
    corrected.attrs.update(units="counts", long_name="Poisson-corrected counts")
    saturated.attrs["long_name"] = "I/N' > 0.5 (Poisson correction unreliable)"
    return corrected, saturated
