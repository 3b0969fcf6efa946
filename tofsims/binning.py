"""Raw events -> voxel counts: mass windows as channel tables, and the numba binning kernel.

The kernel walks a block of GRD records once: it checks each record, adds it to the summed
spectrum, looks its TOF channel up in a channel -> fragment table and increments the voxel
of that fragment (after optional lateral binning). With a dead time it also counts, per
voxel, the ions arriving in the dead-time "shadow" just before each fragment's window,
which the Poisson correction needs (methods.md §B3); it then bins single pixels, which
:func:`tofsims.dead_time.correct_pixels` corrects and bins laterally. The dask reconstruction
(:mod:`tofsims.reconstruct`) and the threaded one (:mod:`tofsims.threaded_binning`) share
it. NumPy and numba only: importing this module does not load xarray or dask.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from tofsims.errors import AnalysisError
from tofsims.fragments import ion_mass
from tofsims.jit import cached_njit
from tofsims.masscal import mass_to_tof, window_channels
from tofsims.peak_windows import DEFAULT_FWHM_FACTOR, PeakWidth

__all__ = [
    "FRAGMENT_MASK",
    "BinningPlan",
    "binning_plan",
    "channel_lookup",
    "shadow_lookup",
    "spectrum_of",
    "window_masses",
]

#: Default upper end of the summed spectrum (u) when no window reaches higher.
SPECTRUM_MASS_MAX = 200.0
#: Low bits of a channel-table word holding fragment index + 1 (so at most 31 fragments).
FRAGMENT_BITS = 5
FRAGMENT_MASK = (1 << FRAGMENT_BITS) - 1
COUNT_UNIT = 1 << FRAGMENT_BITS
#: Counts a 16-bit table word holds above the fragment bits before it wraps to the spill.
WORD_COUNTS = 1 << (16 - FRAGMENT_BITS)


def window_masses(
    fragments: Sequence[str],
    *,
    window_u: float | None = None,
    resolution: float | None = None,
    peak_width: PeakWidth | None = None,
    fwhm_factor: float = DEFAULT_FWHM_FACTOR,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact masses and integration windows of fragments (u).

    Parameters
    ----------
    fragments
        Our notation (``"C2HO-"``, ``"6LiF2-"``, ``"BO2-"`` = ¹¹BO₂⁻ …).
    window_u
        Fixed half-width ±Δm in u (an override; the default without ``resolution`` and
        ``peak_width`` is 0.05 u).
    resolution
        Mass resolving power R = m/Δm (an override): the window is the peak's FWHM,
        ``m ± m/(2R)``.
    peak_width
        Measured peak width (:func:`tofsims.peak_windows.measure_peak_width`): the window is
        ``m ± fwhm_factor·FWHM(m)``; used when neither override is given.
    fwhm_factor
        Half-width of a measured-width window in FWHM (default 1.5 = ±3.5σ).

    Returns
    -------
    mass, mass_low, mass_high
        Float64 arrays along the fragments.
    """
    if window_u is not None and resolution is not None:
        raise AnalysisError("give either window_u or resolution, not both")
    masses = np.array([ion_mass(f) for f in fragments], dtype="float64")
    if resolution is not None:
        if resolution <= 0:
            raise AnalysisError(f"resolution must be > 0, not {resolution!r}")
        half = masses / (2.0 * resolution)
    elif window_u is None and peak_width is not None:
        half = peak_width.half_width_u(masses, fwhm_factor)
    else:
        half_width = 0.05 if window_u is None else window_u
        if half_width <= 0:
            raise AnalysisError(f"window_u must be > 0 u, not {half_width!r}")
        half = np.full_like(masses, half_width)
    return masses, masses - half, masses + half


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


@cached_njit(nogil=True, error_model="numpy")
def _bin_kernel(
    records, table, spill, shadow_lut, scan0, ny, nx, ybin, xbin, counts, shadow
):  # pragma: no cover - compiled
    # table[c] = (spectrum counts of channel c mod 2048) << FRAGMENT_BITS | (fragment + 1):
    # one 2-byte word per channel (2 MB for 200 u, mostly within the CPU cache), so each
    # event costs one random read-modify-write of the table; a count that wraps adds 2048
    # to spill[c], a rarely touched 4-byte array
    n_channels = table.shape[0]
    n_scans = counts.shape[1]
    use_shadow = shadow_lut.shape[0] > 0
    unit = np.uint16(COUNT_UNIT)
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
            word = np.uint16(entry + unit)
            if word < unit:
                spill[t] += WORD_COUNTS
            table[t] = word
            f = np.int64(entry & FRAGMENT_MASK) - 1
            if f >= 0:
                counts[f, s, ybin[y], xbin[x]] += 1
            if use_shadow:
                g = shadow_lut[t]
                if g >= 0:
                    shadow[g, s, ybin[y], xbin[x]] += 1
    return -1, -1


@dataclass(frozen=True)
class BinningPlan:
    """Everything the kernel needs besides the records: tables, raster, binning.

    Attributes
    ----------
    lut
        Channel -> fragment index, ``-1`` outside every window (int16, one per TOF channel
        of the summed spectrum).
    shadow_lut
        Channel -> fragment whose window starts within the dead time (empty without a dead
        time).
    n_fragments
        Number of windows.
    raster
        ``(ny, nx)`` pixels of the acquisition.
    lateral_bin
        Sum ``b × b`` pixel blocks (after the dead-time correction, with a dead time).
    shots_per_pixel
        Primary-ion shots per pixel and scan (for the dead-time correction).
    """

    lut: np.ndarray
    shadow_lut: np.ndarray
    n_fragments: int
    raster: tuple[int, int]
    lateral_bin: int
    shots_per_pixel: int = 1

    @property
    def n_channels(self) -> int:
        """Channels of the summed spectrum (and of the lookup tables)."""
        return int(self.lut.shape[0])

    @property
    def with_shadow(self) -> bool:
        """Whether shadow counts (for the Poisson correction) are collected."""
        return bool(self.shadow_lut.size)

    @property
    def binned(self) -> tuple[int, int]:
        """``(y, x)`` size of the binned images (edge bins may hold fewer pixels)."""
        b = self.lateral_bin
        return -(-self.raster[0] // b), -(-self.raster[1] // b)

    @property
    def kernel_bin(self) -> int:
        """Lateral binning in the kernel: none with a dead time (corrected per pixel first)."""
        return 1 if self.with_shadow else self.lateral_bin

    @property
    def kernel_shape(self) -> tuple[int, int]:
        """``(y, x)`` size of the kernel's count images (the raster with a dead time)."""
        return self.raster if self.with_shadow else self.binned

    @cached_property
    def _pixel_bins(self) -> tuple[np.ndarray, np.ndarray]:
        # lookups beat an integer division in the kernel
        ny, nx = self.raster
        return (
            np.arange(ny, dtype=np.int64) // self.kernel_bin,
            np.arange(nx, dtype=np.int64) // self.kernel_bin,
        )

    def new_table(self) -> np.ndarray:
        """Return a channel table with zero spectrum counts (uint16; see :func:`spectrum_of`)."""
        return (self.lut + 1).astype(np.uint16)

    def new_counts(self, n_scans: int) -> tuple[np.ndarray, np.ndarray]:
        """Return zeroed ``counts`` and ``shadow`` ``(fragment, scan, y, x)`` uint32 arrays.

        Images of :attr:`kernel_shape`: single pixels with a dead time.
        """
        shape = (self.n_fragments, n_scans, *self.kernel_shape)
        counts = np.zeros(shape, dtype=np.uint32)
        shadow = np.zeros(shape if self.with_shadow else (0, 0, 0, 0), dtype=np.uint32)
        return counts, shadow

    def bin(
        self,
        records: np.ndarray,
        scan0: int,
        table: np.ndarray,
        spill: np.ndarray,
        counts: np.ndarray,
        shadow: np.ndarray,
    ) -> tuple[int, int]:
        """Add ``records`` (scans ``scan0 … scan0 + counts.shape[1] − 1``) to the arrays.

        ``table`` (from :meth:`new_table`) and ``spill`` (uint32 zeros, one per channel)
        accumulate the spectrum, which :func:`spectrum_of` reads out.

        Returns
        -------
        index, field
            The first record outside the scans or the raster and its bad field (0 scan,
            2 x, 3 y), or ``(-1, -1)``; records before it are binned.
        """
        ybin, xbin = self._pixel_bins
        ny, nx = self.raster
        index, field = _bin_kernel(
            records, table, spill, self.shadow_lut, scan0, ny, nx, ybin, xbin, counts, shadow
        )
        return int(index), int(field)


def spectrum_of(table: np.ndarray, spill: np.ndarray) -> np.ndarray:
    """Read out the spectrum (uint32 counts per channel) of a table and its spill."""
    return spill + (table >> FRAGMENT_BITS)


def binning_plan(
    mass_low: np.ndarray,
    mass_high: np.ndarray,
    sf: float,
    k0: float,
    raster: tuple[int, int],
    *,
    lateral_bin: int = 1,
    dead_channels: int | None = None,
    spectrum_mass_max: float | None = None,
    shots_per_pixel: int = 1,
) -> BinningPlan:
    """Build the tables for windows ``[mass_low, mass_high]`` (u) under a calibration.

    Parameters
    ----------
    mass_low, mass_high
        Window edges (u), one per fragment (at most 31).
    sf, k0
        Mass calibration (channels per √u, channels).
    raster
        ``(ny, nx)`` pixels.
    lateral_bin
        Sum ``b × b`` pixel blocks.
    dead_channels
        Detector dead time in TOF channels; collects shadow counts when given.
    spectrum_mass_max
        Upper end (u) of the summed spectrum (default: 200 u or above the highest window).
    shots_per_pixel
        Primary-ion shots per pixel and scan (for the dead-time correction).

    Raises
    ------
    AnalysisError
        Overlapping or empty windows, no or too many fragments, ``lateral_bin`` < 1.
    """
    if lateral_bin < 1:
        raise AnalysisError(f"lateral_bin must be ≥ 1, not {lateral_bin}")
    if not 0 < len(mass_low) <= FRAGMENT_MASK:
        raise AnalysisError(f"give 1 to {FRAGMENT_MASK} fragments, not {len(mass_low)}")
    top_mass = max(
        SPECTRUM_MASS_MAX if spectrum_mass_max is None else spectrum_mass_max,
        float(np.max(mass_high)) * 1.01,
    )
    n_channels = math.ceil(mass_to_tof(top_mass, sf, k0)) + 1
    lut = channel_lookup(mass_low, mass_high, sf, k0, n_channels)
    shadow_lut = np.zeros(0, dtype=np.int16)
    if dead_channels is not None:
        shadow_lut = shadow_lookup(mass_low, sf, k0, n_channels, dead_channels)
    raster = (int(raster[0]), int(raster[1]))
    return BinningPlan(
        lut, shadow_lut, len(mass_low), raster, int(lateral_bin), int(shots_per_pixel)
    )
