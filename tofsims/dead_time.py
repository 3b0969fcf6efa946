"""Dead-time correction of fragment counts, per pixel before lateral binning (methods.md §B3).

A TOF-SIMS detector counts at most one ion per dead-time window and shot: a fragment
window (narrower than the dead time) records whether a shot produced at least one ion,
not how many. Each shot is a trial; the counts of a pixel over ``n`` shots estimate the
probability of "at least one ion" and, through the Poisson model, the mean number of ions
per shot (Stephan et al. 1994). Two things make the textbook form
``I_corr = −N·ln(1 − I/N′)`` fail on voxels:

* applied to a lateral bin it assumes every pixel of the bin has the same rate; the
  logarithm is convex, so hot pixels in a bin are under-corrected (Jensen);
* per voxel with a few shots it is infinite at ``I = N′`` (one count from one shot).

Here the correction is made per pixel and fragment, over the shots of a fixed block of
:data:`POOL_SCANS` scans (shots per pixel × scans), with the Nelson–Aalen estimator of the
cumulative hazard, ``Λ̂ = Σ_{k=0}^{I−1} 1/(N′ − k)`` (product-limit view: every shot is at risk
until it detects an ion; ``N′`` shots are live at the window's start). It is finite at
``I = N′`` and is the unbiased estimator of ``Σ_{j≤N′} p^j/j``, the series of ``−ln(1 − p)``
truncated at the number of live shots, so its bias is bounded and vanishes with the pooled
shots. The pixel's corrected total ``N·Λ̂`` is shared out over its voxels in proportion to
their raw counts, then pixels are summed into lateral bins. NumPy only.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np

__all__ = [
    "INCREASE_WARNING",
    "POOL_SCANS",
    "SATURATION",
    "DeadTimeWarning",
    "correct_pixels",
    "hazard_counts",
    "large_increase_message",
    "lateral_sum",
    "relative_increase",
    "warn_large_increase",
]

#: Scans whose shots are pooled per pixel (aligned at multiples of it from scan 0): the
#: storage chunk along ``scan`` and the group of the one-pass engine.
POOL_SCANS = 16
#: Fraction of live shots with a count above which a pixel is flagged ``saturated``.
SATURATION = 0.5
#: A fragment whose total the correction raises by more than this fraction is warned about.
INCREASE_WARNING = 0.10
#: Below this the harmonic numbers come from a table, above from their asymptotic series.
_TABLE = 64
_HARMONIC = np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, _TABLE + 1))])


class DeadTimeWarning(UserWarning):
    """The dead-time correction changed a fragment's total a lot (the detector saturates)."""


def _harmonic_series(n: np.ndarray) -> np.ndarray:
    # H(n) − ln n − γ, asymptotically (error < 1e-11 for n ≥ 64)
    inv = 1.0 / n
    inv2 = inv * inv
    return inv / 2 - inv2 / 12 + inv2 * inv2 / 120


def _harmonic_difference(top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    """``H(top) − H(bottom)`` for integers ``top ≥ bottom ≥ 0`` without cancellation."""
    top = np.asarray(top, dtype=np.float64)
    bottom = np.asarray(bottom, dtype=np.float64)
    small = bottom < _TABLE
    exact_top = _HARMONIC[np.minimum(top, _TABLE).astype(np.int64)]
    exact_bottom = _HARMONIC[np.minimum(bottom, _TABLE).astype(np.int64)]
    large_top = np.maximum(top, _TABLE)
    large_bottom = np.maximum(bottom, _TABLE)
    # ln(top/bottom) as log1p: the difference of two large logarithms would lose digits
    asymptotic = np.log1p((large_top - large_bottom) / large_bottom) + (
        _harmonic_series(large_top) - _harmonic_series(large_bottom)
    )
    upper = np.where(
        top <= _TABLE,
        exact_top,
        np.log(large_top) + np.euler_gamma + _harmonic_series(large_top),
    )
    return np.where(small, upper - exact_bottom, asymptotic)


def hazard_counts(
    counts: np.ndarray, shots: np.ndarray | float, shadow: np.ndarray | float = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Dead-time corrected counts ``N·Λ̂`` of counts ``I`` from ``N`` shots (Nelson–Aalen).

    Parameters
    ----------
    counts
        Counts I (integers).
    shots
        Shots N that could produce them (integers, broadcastable).
    shadow
        Counts in the dead-time window just before the fragment window: ``N′ = N − shadow``
        shots are live at its start (at least ``I``).

    Returns
    -------
    corrected, saturated
        ``N · Σ_{k=0}^{I−1} 1/(N′ − k)`` (float64 counts; ``I`` itself for ``N′ = 1``, never
        infinite) and the flag ``I/N′ >`` :data:`SATURATION`.
    """
    counts = np.asarray(counts, dtype=np.int64)
    shots = np.asarray(shots, dtype=np.int64)
    live = np.maximum(shots - np.asarray(shadow, dtype=np.int64), counts)
    hazard = _harmonic_difference(live, live - counts)
    corrected = np.where(counts > 0, shots * hazard, 0.0)
    return corrected, counts > SATURATION * np.maximum(live, 1)


def lateral_sum(values: np.ndarray, lateral_bin: int) -> np.ndarray:
    """Sum (``any`` for booleans) ``b × b`` blocks of the last two axes (edge blocks smaller)."""
    if lateral_bin == 1:
        return values
    *lead, ny, nx = values.shape
    b = lateral_bin
    by, bx = -(-ny // b), -(-nx // b)
    padded = np.zeros((*lead, by * b, bx * b), dtype=values.dtype)
    padded[..., :ny, :nx] = values
    blocks = padded.reshape(*lead, by, b, bx, b)
    if values.dtype == np.bool_:
        return blocks.any(axis=(-3, -1))
    return blocks.sum(axis=(-3, -1), dtype=values.dtype)


def correct_pixels(
    counts: np.ndarray, shadow: np.ndarray, shots_per_pixel: int, lateral_bin: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Correct one block of scans per pixel, then bin laterally.

    Parameters
    ----------
    counts, shadow
        ``(fragment, scan, y, x)`` counts and dead-time shadow counts of single pixels over
        one pooling block of scans (uint32).
    shots_per_pixel
        Primary-ion shots per pixel and scan.
    lateral_bin
        Sum ``b × b`` pixel blocks afterwards.

    Returns
    -------
    corrected, raw, saturated
        Binned ``(fragment, scan, y, x)``: corrected counts (float64), raw counts (uint32) and
        the flag "a pixel of the voxel has more than :data:`SATURATION` of its live shots
        counted over the block".
    """
    n_scans = counts.shape[1]
    pixel_counts = counts.sum(axis=1, dtype=np.int64)
    pixel_shadow = shadow.sum(axis=1, dtype=np.int64)
    shots = int(shots_per_pixel) * n_scans
    total, saturated = hazard_counts(pixel_counts, shots, pixel_shadow)
    factor = np.where(pixel_counts > 0, total / np.maximum(pixel_counts, 1), 1.0)
    corrected = counts * factor[:, None]
    flags = np.broadcast_to(saturated[:, None], counts.shape)
    return (
        lateral_sum(corrected, lateral_bin),
        lateral_sum(counts, lateral_bin),
        lateral_sum(np.ascontiguousarray(flags), lateral_bin),
    )


def relative_increase(raw_total: np.ndarray, corrected_total: np.ndarray) -> np.ndarray:
    """``corrected / raw − 1`` per fragment (0 where nothing was counted), dimensionless."""
    raw_total = np.asarray(raw_total, dtype=np.float64)
    ratio = np.asarray(corrected_total, dtype=np.float64) / np.maximum(raw_total, 1.0)
    return np.where(raw_total > 0, ratio - 1.0, 0.0)


def large_increase_message(
    increase: Sequence[float] | np.ndarray, fragments: Sequence[str], source: str
) -> str | None:
    """Describe the fragments the correction raised > 10 %; ``None`` when there are none."""
    large = [
        f"{fragment} +{100 * value:.0f} %"
        for fragment, value in zip(fragments, np.asarray(increase, dtype=float), strict=True)
        if math.isfinite(value) and value > INCREASE_WARNING
    ]
    if not large:
        return None
    return (
        f"{source}: the dead-time correction raises the total counts of "
        f"{', '.join(large)} (more than {100 * INCREASE_WARNING:.0f} %): the detector "
        "saturates there; expect larger uncertainties (see 'saturated')"
    )


def warn_large_increase(
    increase: Sequence[float] | np.ndarray, fragments: Sequence[str], source: str
) -> None:
    """Warn (:class:`DeadTimeWarning`) about fragments the correction raised > 10 %."""
    message = large_increase_message(increase, fragments, source)
    if message is not None:
        warnings.warn(message, DeadTimeWarning, stacklevel=2)
