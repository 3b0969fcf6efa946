"""Finding and measuring calibration peaks in a TOF-SIMS spectrum (counts per TOF channel).

Each calibration ion is searched in a window of channels around its expected flight time:
:func:`centroid_peak` takes the strongest peak there over its local background (the mean of
the window's outer quarters) and gives its centroid, 1σ error and net counts;
:func:`peak_significance` says how far the peak stands above that background (σ of its
Poisson error); :func:`locate_peaks` does both for every ion and says which peaks are usable.
The mass scale and the fit of SF/K0 on these peaks are in :mod:`tofsims.masscal`; see
``docs/methods.md``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "CENTROID_ERROR_FLOOR",
    "MIN_SIGNIFICANCE",
    "centroid_peak",
    "half_maximum_extent",
    "locate_peaks",
    "peak_significance",
    "smoothed_for_top",
]

#: Floor of the centroid uncertainty in channels (quantisation, residual systematic shifts).
CENTROID_ERROR_FLOOR = 0.01
#: Default significance (σ of the local background) a calibration peak needs to be used.
MIN_SIGNIFICANCE = 5.0


def centroid_peak(
    spectrum: np.ndarray, expected: float, half_width: float, min_counts: float = 20.0
) -> tuple[float, float, float]:
    """Centroid of the strongest peak within ``expected ± half_width`` channels.

    The peak top (contiguous channels above half maximum) gives a first estimate; the
    centroid is then recomputed twice over ±1.5 FWHM around the previous one, after
    subtracting the mean level of the search window's outer quarters (local background).

    Returns
    -------
    centroid, error, counts
        Channel (float), its 1σ standard error (channels) and the net counts in the
        centroid window; NaN when the window holds fewer than ``min_counts`` net counts.
    """
    return _centroid(spectrum, expected, half_width, min_counts)[:3]


def peak_significance(net_counts: Any, background_counts: Any) -> Any:
    """Significance (σ) of a peak above its local background: ``net / √background``.

    ``background_counts`` are the counts the local background level puts under the peak's
    centroid window (floored at one count, so a peak on zero background is as significant
    as its counts over one count's Poisson error).
    """
    return np.asarray(net_counts, dtype="float64") / np.sqrt(
        np.maximum(np.asarray(background_counts, dtype="float64"), 1.0)
    )


def _centroid(
    spectrum: np.ndarray, expected: float, half_width: float, min_counts: float
) -> tuple[float, float, float, float]:
    """:func:`centroid_peak` plus the peak's significance (:func:`peak_significance`)."""
    lo = max(int(np.floor(expected - half_width)), 0)
    hi = min(int(np.ceil(expected + half_width)) + 1, spectrum.shape[0])
    if hi - lo < 5:
        return np.nan, np.nan, 0.0, 0.0
    region = spectrum[lo:hi].astype("float64")
    quarter = max((hi - lo) // 4, 1)
    background = 0.5 * (region[:quarter].mean() + region[-quarter:].mean())
    net = np.clip(region - background, 0.0, None)
    smooth, _ = smoothed_for_top(net)
    top = int(np.argmax(smooth))
    if smooth[top] <= 0:
        return np.nan, np.nan, 0.0, 0.0
    left, right = half_maximum_extent(smooth, top)
    fwhm = right - left + 1
    if np.sum(net[left : right + 1]) <= 0:
        return np.nan, np.nan, 0.0, 0.0
    channels = np.arange(net.size, dtype="float64")
    centre = float(
        np.sum(channels[left : right + 1] * net[left : right + 1]) / np.sum(net[left : right + 1])
    )
    weights = net
    for _ in range(3):
        half = 1.5 * fwhm
        mask = np.abs(channels - centre) <= half
        weights = np.where(mask, net, 0.0)
        total = weights.sum()
        if total <= 0:
            return np.nan, np.nan, 0.0, 0.0
        centre = float(np.sum(channels * weights) / total)
    total = float(weights.sum())
    background_counts = float(max(background, 0.0) * np.count_nonzero(mask))
    # significance from the signed excess: the clipped net of pure noise is positive
    excess = float(np.sum(region[mask]) - background * np.count_nonzero(mask))
    significance = float(peak_significance(excess, background_counts))
    if total < min_counts:
        return np.nan, np.nan, total, significance
    spread = np.sqrt(np.sum(weights * (channels - centre) ** 2) / total)
    error = max(spread / np.sqrt(total), CENTROID_ERROR_FLOOR)
    return lo + centre, float(error), total, significance


#: Counts the smoothing kernel must hold at the peak top before the half maximum is read.
_TOP_COUNTS = 50.0


def half_maximum_extent(smooth: np.ndarray, top: int) -> tuple[int, int]:
    """First and last channel (inclusive) of the contiguous run above half of ``smooth[top]``."""
    left, right = top, top
    while left > 0 and smooth[left - 1] > 0.5 * smooth[top]:
        left -= 1
    while right < smooth.size - 1 and smooth[right + 1] > 0.5 * smooth[top]:
        right += 1
    return left, right


def smoothed_for_top(net: np.ndarray, min_sigma: float = 0.0) -> tuple[np.ndarray, float]:
    """``net`` smoothed just enough that its maximum is not a counting fluctuation.

    A heavy peak is wide (FWHM = t/2R: ~100 channels at 170 u for R = 5000) with a few
    counts per channel; its half maximum read on the raw counts follows noise spikes, and
    the ±1.5 FWHM centroid window then loses most of the peak. The Gaussian kernel (σ = 1,
    2, 4 … channels) grows until it holds ``_TOP_COUNTS`` counts at the maximum; a strong
    narrow peak is left as it is, unless ``min_sigma`` (channels) asks for a kernel of at
    least 1 channel (a single-channel spike is then no top either).

    Returns
    -------
    smooth, sigma
        The smoothed counts and the kernel's σ (channels; 0 when left as it is): the
        smoothing widens a Gaussian peak's σ² by ``sigma²``.
    """
    sigma = 0.0
    smooth = net
    while (
        sigma < min_sigma or smooth.max() * max(2.5066 * sigma, 1.0) < _TOP_COUNTS
    ) and 8 * sigma < net.size:
        sigma = max(1.0, 2 * sigma)
        offsets = np.arange(-int(4 * sigma), int(4 * sigma) + 1)
        kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
        smooth = np.convolve(net, kernel / kernel.sum(), mode="same")
    return smooth, sigma


def locate_peaks(
    spectrum: np.ndarray,
    expected: np.ndarray,
    half_widths: np.ndarray,
    min_counts: float,
    min_significance: float,
) -> tuple[np.ndarray, ...]:
    """Centroid, error, net counts, significance and usability of every calibration peak.

    Parameters
    ----------
    spectrum
        Counts per TOF channel (channel 0 first).
    expected, half_widths
        Per ion, the expected flight time and the half-width of its search window (channels).
    min_counts
        Minimum net counts in the centroid window for a peak to be centroided.
    min_significance
        Significance (:func:`peak_significance`, σ) a peak needs to be usable.

    Returns
    -------
    centroid, error, counts, significance, usable
        Per ion: the channel and its 1σ error (NaN where no peak was centroided), net counts,
        significance (σ) and whether the peak was centroided and is significant enough.
    """
    found = [
        _centroid(spectrum, e, w, min_counts) for e, w in zip(expected, half_widths, strict=True)
    ]
    centroid, error, counts, significance = (
        np.array(col, dtype="float64") for col in zip(*found, strict=True)
    )
    usable = np.isfinite(centroid) & (significance >= min_significance)
    return centroid, error, counts, significance, usable
