"""Mass calibration of a GRD from a sample of its events, not from a pass over the file.

The calibration peaks (H⁻, C⁻, O⁻, OH⁻, F⁻ … or their positive counterparts) are among the
strongest of a TOF-SIMS spectrum, so a small part of the events fixes SF/K0 far better
than the fragment windows need. :func:`calibrate_sampled` histograms the flight times of
evenly spaced runs of records (every depth contributes in proportion to its ions, as in
the summed spectrum), fits SF/K0 (:func:`tofsims.masscal.fit_calibration`) and grows the
sample — up to the whole file — until

* the 1σ error of calibrated masses at the fragments is at most ``target_ppm`` (so a fit
  on the whole file differs by a few times that at most). The error is the larger of the
  one propagated from the centroid errors and half the difference between fits on the
  two interleaved halves of the sample: centroids of peaks with few counts can be off by
  far more than their nominal error, which the halves reveal (systematic offsets, e.g.
  from an interference, are the same in both halves and in the whole file); and
* every calibration peak with some counts in the sample but too few to be used would have
  enough in the whole file, i.e. the sample uses the peaks a whole-file fit would use.

NumPy and numba only (no xarray or dask): it runs while those are still being imported.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tofsims.errors import AnalysisError
from tofsims.io.grd_records import GrdRecords, read_records
from tofsims.jit import cached_njit
from tofsims.masscal import CalibrationFit, fit_calibration, mass_to_tof, tof_to_mass

__all__ = ["SampledCalibration", "SpectrumSample", "calibrate_sampled", "sample_spectrum"]

#: Runs of records read per sample, evenly spaced through the file.
SAMPLE_RUNS = 256
#: First sample: this fraction of the events, but at least MIN_SAMPLE_EVENTS.
FIRST_SAMPLE_FRACTION = 0.01
MIN_SAMPLE_EVENTS = 1_000_000
#: Largest acceptable 1σ mass error (ppm) of the sampled calibration at the fragments.
TARGET_PPM = 1.0
#: Records read at once.
RUN_BUFFER = 1 << 16
#: Above this fraction of the file the sample becomes the whole file.
WHOLE_FILE_FRACTION = 0.5


@cached_njit(nogil=True)
def _tof_histogram(records, spectrum):  # pragma: no cover - compiled
    n_channels = spectrum.shape[0]
    for i in range(records.shape[0]):
        t = records[i, 4]
        if t < n_channels:
            spectrum[t] += 1


@dataclass(frozen=True)
class SpectrumSample:
    """Which events a sampled spectrum holds.

    Attributes
    ----------
    events
        Records histogrammed.
    fraction
        ``events`` / records in the file.
    runs
        Number of runs of consecutive records, evenly spaced through the file.
    run_events
        Records per run (the last run may be shorter).
    """

    events: int
    fraction: float
    runs: int
    run_events: int


def sample_spectrum(
    records: GrdRecords, n_events: int, n_channels: int, runs: int = SAMPLE_RUNS
) -> tuple[np.ndarray, SpectrumSample]:
    """Histogram the flight times of about ``n_events`` records spread through the file.

    Parameters
    ----------
    records
        The opened file (:func:`tofsims.io.grd_records.open_records`).
    n_events
        Records to read (the whole file when at least its size).
    n_channels
        Spectrum length; flight times beyond it are not counted.
    runs
        Runs of consecutive records, evenly spaced (start of the file to its end).

    Returns
    -------
    spectra, sample
        Counts per TOF channel (uint64) of the even and of the odd runs, ``(2, n_channels)``
        (their sum is the sample's spectrum; a whole-file sample is split in two runs), and
        the description of the sample.
    """
    total = records.n_records
    spectra = np.zeros((2, n_channels), dtype=np.uint64)
    if n_events >= total:
        length = -(-total // 2)
        starts = np.array([0, length])
    else:
        runs = max(1, min(runs, n_events))
        length = -(-n_events // runs)
        starts = np.linspace(0, total - length, runs).astype(np.int64)
    read = 0
    buffer = np.empty((min(length, RUN_BUFFER), 5), dtype=np.uint32)
    with open(records.path, "rb", buffering=0) as handle:
        for run, first in enumerate(starts.tolist()):
            stop = min(first + length, total)
            for start in range(first, stop, len(buffer)):
                end = min(start + len(buffer), stop)
                _tof_histogram(read_records(handle, start, buffer[: end - start]), spectra[run % 2])
            read += stop - first
    return spectra, SpectrumSample(read, read / total, len(starts), int(length))


@dataclass(frozen=True)
class SampledCalibration:
    """A mass calibration fitted on a sample of the events.

    Attributes
    ----------
    fit
        The calibration (:class:`tofsims.masscal.CalibrationFit`).
    sample
        The events it was fitted on (the last, largest sample).
    rounds
        Samples taken (each larger than the one before).
    mass_error_ppm
        1σ statistical error (ppm) of calibrated masses, the largest over the masses checked.
    spectrum
        The sample's spectrum (counts per TOF channel), where the peak width is measured
        (:func:`tofsims.peak_windows.measure_peak_width`).
    """

    fit: CalibrationFit
    sample: SpectrumSample
    rounds: int
    mass_error_ppm: float
    spectrum: np.ndarray | None = field(default=None, repr=False, compare=False)

    def to_record(self) -> dict[str, Any]:
        """JSON-ready record: the fit, the sample and the error estimate."""
        return {
            **self.fit.to_record(),
            "sample": {
                "events": self.sample.events,
                "fraction": self.sample.fraction,
                "runs": self.sample.runs,
                "run_events": self.sample.run_events,
                "rounds": self.rounds,
                "mass_error_ppm": self.mass_error_ppm,
            },
        }


def _needed_events(
    fit: CalibrationFit,
    error_ppm: float,
    size: int,
    fraction: float,
    target_ppm: float,
    min_counts: float,
) -> float:
    """Sample size that would meet both criteria (centroid errors shrink as 1/√N)."""
    needed: float = size
    if error_ppm > target_ppm:
        needed = size * (error_ppm / target_ppm) ** 2 * 1.25
    # a peak too weak in the sample that the whole file would use: too few counts (no
    # centroid) or not yet significant, but already a hint (≥ 3σ) and reaching the needed
    # significance in the whole file (σ grows as √N). Calibration ions absent from the
    # file (heavy ones often are) stay near 0σ and must not make every sample grow.
    status = np.asarray(fit.status or ("",) * len(fit.ions))
    weak = ~fit.used & (status != "rejected") & (fit.counts > 0)
    weak &= fit.counts / fraction >= min_counts
    if fit.significance is not None:
        weak &= (fit.significance >= 3.0) & (
            fit.significance / np.sqrt(fraction) >= fit.min_significance
        )
    else:
        weak &= np.isnan(fit.tof_centroid)
    if weak.any():
        factor = min_counts / fit.counts[weak]
        if fit.significance is not None:
            factor = np.maximum(factor, (fit.min_significance / fit.significance[weak]) ** 2)
        needed = max(needed, size * float(factor.min()) * 1.5)
    return needed


def calibrate_sampled(
    records: GrdRecords,
    n_channels: int,
    *,
    sf: float | None = None,
    k0: float | None = None,
    check_masses: Sequence[float] | None = None,
    target_ppm: float = TARGET_PPM,
    first_fraction: float = FIRST_SAMPLE_FRACTION,
    min_events: int = MIN_SAMPLE_EVENTS,
    runs: int = SAMPLE_RUNS,
    min_counts: float = 20.0,
    **fit_options: Any,
) -> SampledCalibration:
    """Refit SF/K0 on a growing sample of a GRD's events.

    Parameters
    ----------
    records
        The opened file.
    n_channels
        Spectrum length (channels); must reach beyond the heaviest calibration ion.
    sf, k0
        Starting calibration (default: the properties').
    check_masses
        Masses (u) where the calibration error is judged, e.g. the fragments'
        (default: the calibration ions').
    target_ppm
        Largest acceptable 1σ mass error at ``check_masses``.
    first_fraction, min_events
        Size of the first sample: this fraction of the records, at least ``min_events``.
    runs
        Runs of consecutive records per sample.
    min_counts
        Net counts a calibration peak needs to be used.
    **fit_options
        Passed to :func:`tofsims.masscal.fit_calibration` (``ions``, ``search_u``,
        ``reject_ppm``); ``polarity`` defaults to the properties'.

    Raises
    ------
    AnalysisError
        Fewer than two calibration peaks even in the whole file.
    """
    props = records.properties
    sf = props.sf if sf is None else sf
    k0 = props.k0 if k0 is None else k0
    options = {"polarity": props.polarity, **fit_options}
    total = records.n_records
    size = min(total, max(min_events, math.ceil(first_fraction * total)))
    rounds = 0
    while True:
        rounds += 1
        spectra, sample = sample_spectrum(records, size, n_channels, runs)
        try:
            fit = fit_calibration(spectra.sum(axis=0), sf, k0, min_counts=min_counts, **options)
        except AnalysisError:
            if sample.fraction >= 1.0:
                raise
            size = _grown(4 * size, size, total)
            continue
        masses = fit.mass[fit.used] if check_masses is None else np.asarray(check_masses)
        if sample.fraction >= 1.0:
            error = float(np.max(fit.mass_error_ppm(masses)))
            return SampledCalibration(fit, sample, rounds, error, spectra.sum(axis=0))
        try:
            error = _mass_error_ppm(fit, spectra, masses, sf, k0, min_counts, options)
        except AnalysisError:  # a half without two peaks: far too few counts
            error = math.inf
        needed = _needed_events(fit, error, size, sample.fraction, target_ppm, min_counts)
        if needed <= size:
            return SampledCalibration(fit, sample, rounds, error, spectra.sum(axis=0))
        size = _grown(needed, size, total)


def _grown(needed: float, size: int, total: int) -> int:
    """Next sample size: at least twice, at most 16 times the last; the file past half of it."""
    size = int(min(max(needed, 2 * size), 16 * size))
    return total if size >= WHOLE_FILE_FRACTION * total else size


def _mass_error_ppm(
    fit: CalibrationFit,
    spectra: np.ndarray,
    masses: np.ndarray,
    sf: float,
    k0: float,
    min_counts: float,
    options: dict[str, Any],
) -> float:
    """Largest 1σ mass error (ppm) at ``masses``: propagated, or from the two halves."""
    propagated = fit.mass_error_ppm(masses)
    halves = [fit_calibration(half, sf, k0, min_counts=min_counts, **options) for half in spectra]
    tofs = mass_to_tof(masses, fit.sf, fit.k0)
    spread = np.abs(
        tof_to_mass(tofs, halves[0].sf, halves[0].k0)
        - tof_to_mass(tofs, halves[1].sf, halves[1].k0)
    )
    return float(np.max(np.maximum(propagated, spread / masses * 1e6 / 2.0)))
