"""Onset potentials of gas evolution (methods.md §A5).

:func:`detect_onset` takes one charge's flux as an ``xarray.DataArray`` along ``time``
(with a ``potential`` coordinate) and returns an :class:`Onset`.

``threshold`` (default)
    Baseline mean μ and noise σ: median and 1.4826·MAD of the flux over the baseline
    samples (before the evolution: the anchors of the background, or the low-potential
    part of the charge). The flux is significant where it exceeds
    ``μ + k·sqrt(σ² + σ_b(t)²)`` — ``σ_b`` the standard uncertainty of the background
    at that time — for ``persistence`` consecutive samples. The onset is located by
    extrapolating the rising flank back to μ: a straight line is fitted to flux vs time
    from the first significant sample until the flux reaches μ + 3·(threshold − μ)
    (5–60 samples); its intersection with μ (kept between the end of the baseline and
    the crossing) is the onset time, the potential is interpolated there. The raw
    crossing of the threshold is reported as ``alternatives["crossing"]``; it lies later
    by about ``k·σ / (dṅ/dU)``.
``tangent``
    A straight line is fitted to flux vs potential over the rising flank
    (``flank`` = 10–50 % of the rise above μ, before the maximum); the onset is where
    it meets μ.
``rate`` (reported beside the others)
    The potential at which the flux first stays above a fixed rate (per gram of active
    material, chosen by the caller) for ``persistence`` samples: comparable between
    samples of different noise.

Uncertainty (standard, combined in quadrature, each term reported, in V): ``sampling``
``|dU/dt|·Δt/√12``; ``alignment`` ``|dU/dt|·σ_Δ`` (transit delay and clocks);
``noise`` from the profile of the hinge fit; ``background`` ``σ_b/(dṅ/dU)`` at the
onset; ``criterion`` half the range of the onsets for k ∈ {2, 3, 5}; ``method`` the
difference threshold − tangent. A gas whose flux never becomes significant gets
``potential_V = None`` with a reason and the highest potential reached — never an
invented onset.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

__all__ = [
    "METHODS",
    "Onset",
    "TangentFit",
    "ThresholdCrossing",
    "detect_onset",
    "tangent_onset",
    "threshold_onset",
]

METHODS = ("threshold", "tangent")

#: The flank used to locate a threshold onset ends where the flux reaches μ + FLANK·(level − μ).
FLANK = 3.0


@dataclass
class ThresholdCrossing:
    """Result of :func:`threshold_onset` (fluxes in the unit of the input, usually mol/s).

    ``potential_V`` is the located onset (hinge fit), ``crossing_V`` the raw
    crossing of the threshold; ``index`` is the first significant sample, ``onset_time``
    the located onset (s, when times are given), ``time_sd`` its standard uncertainty
    from the hinge fit (s) and ``slope`` the flank's rise (flux per s).
    """

    potential_V: float | None
    baseline_mean: float
    baseline_sigma: float
    threshold: float
    index: int | None = None
    crossing_V: float | None = None
    crossing_time: float | None = None
    onset_time: float | None = None
    time_sd: float = 0.0
    slope: float | None = None
    reason: str | None = None


@dataclass
class TangentFit:
    """Result of :func:`tangent_onset`: onset (V), flank slope (flux per V), flank samples."""

    potential_V: float | None
    baseline_mean: float
    slope: float | None = None
    n: int = 0
    reason: str | None = None


@dataclass
class Onset:
    """An onset potential with its uncertainty budget (``summary.json`` ``onsets.<gas>``).

    :meth:`to_dict` gives the documented keys (``docs/cli.md``); ``extra`` holds what the
    caller adds (charge passed at the onset, the cycle it belongs to, ...).
    """

    potential_V: float | None
    uncertainty_V: float | None
    method: str
    parameters: dict[str, Any]
    reason: str | None = None
    uncertainty_terms_V: dict[str, float] = field(default_factory=dict)
    alternatives: dict[str, float | None] = field(default_factory=dict)
    threshold_time_s: float | None = None
    baseline_mean: float | None = None
    baseline_sigma: float | None = None
    threshold: float | None = None
    max_potential_V: float | None = None
    rate: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def detected(self) -> bool:
        """True when an onset was found."""
        return self.potential_V is not None

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form (keys of ``summary.json``)."""
        out: dict[str, Any] = {
            "method": self.method,
            "parameters": dict(self.parameters),
            "potential_V": self.potential_V,
            "uncertainty_V": self.uncertainty_V,
        }
        if self.detected:
            out.update(
                uncertainty_terms_V=dict(self.uncertainty_terms_V),
                alternatives=dict(self.alternatives),
                threshold_time_s=self.threshold_time_s,
                baseline_mean_mol_per_s=self.baseline_mean,
                baseline_sigma_mol_per_s=self.baseline_sigma,
            )
        else:
            out.update(reason=self.reason, max_potential_V=self.max_potential_V)
        out["threshold_mol_per_s"] = self.threshold
        if self.rate is not None:
            out["rate_onset"] = dict(self.rate)
        out.update(self.extra)
        return out


def _baseline(flux: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    values = flux[mask & np.isfinite(flux)]
    if values.size < 5:
        return np.nan, np.nan
    center = float(np.median(values))
    sigma = float(1.4826 * np.median(np.abs(values - center)))
    return center, sigma


def _first_run(above: np.ndarray, persistence: int) -> int | None:
    window = np.convolve(above.astype(int), np.ones(persistence, int), mode="valid")
    starts = np.flatnonzero(window == persistence)
    return int(starts[0]) if starts.size else None


def _hinge_fit(
    time: np.ndarray, flux: np.ndarray, i: int, mean: float, level: float, sigma: float
) -> tuple[float, float, float] | None:
    """(onset time, its standard uncertainty, slope) of a hinge fitted around crossing i.

    ``flux = μ + b·max(0, t − t₀)`` by least squares over the flank (from the crossing
    until the flux reaches μ + FLANK·(level − μ), 5–60 samples) and as many samples
    before the crossing; t₀ on a grid of a tenth of a sample, its uncertainty from the
    profile ``RSS(t₀) ≤ RSS_min + s²``.
    """
    top = mean + FLANK * (level - mean)
    end = i + 5
    while end < min(i + 60, flux.size) and not flux[end - 1] >= top:
        end += 1
    end = min(end, flux.size)
    sel = np.arange(max(i - (end - i), 0), end)
    sel = sel[np.isfinite(flux[sel]) & np.isfinite(time[sel])]
    if sel.size < 4 or np.ptp(time[sel]) <= 0:
        return None
    t, y = time[sel], flux[sel] - mean
    step = float(np.median(np.diff(t)))
    grid = np.arange(t[0] - step, time[min(i, time.size - 1)] + step, step / 10.0)
    x = np.clip(t[None, :] - grid[:, None], 0, None)
    sxx = np.sum(x**2, axis=1)
    slope = np.where(sxx > 0, np.sum(x * y, axis=1) / np.where(sxx > 0, sxx, 1.0), 0.0)
    rss = np.sum((y[None, :] - slope[:, None] * x) ** 2, axis=1)
    best = int(np.argmin(np.where(slope > 0, rss, np.inf)))
    if not slope[best] > 0:
        return None
    s2 = max(sigma**2, rss[best] / max(sel.size - 2, 1))
    inside = grid[(rss <= rss[best] + s2) & (slope > 0)]
    sd = max(0.5 * float(np.ptp(inside)), step / np.sqrt(12.0)) if inside.size else step
    return float(grid[best]), sd, float(slope[best])


def threshold_onset(
    potential: np.ndarray,
    flux: np.ndarray,
    baseline: np.ndarray,
    k: float = 3.0,
    persistence: int = 5,
    *,
    time: np.ndarray | None = None,
    background_sd: np.ndarray | None = None,
    noise: float | None = None,
) -> ThresholdCrossing:
    """k·σ threshold with a persistence rule, located by a hinge fit.

    Parameters
    ----------
    potential
        Electrode potential (V) at the flux samples (transit delay already applied).
    flux
        Molar flux (mol/s), or a corrected signal.
    baseline
        Boolean mask of the baseline samples (before any evolution).
    k
        Threshold in units of the baseline noise σ.
    persistence
        Number of consecutive samples that must stay above the threshold.
    time
        Sample times (s); default: the sample index. Needed for the hinge fit.
    background_sd
        Standard uncertainty of the background at each sample (flux units).
    noise
        Noise σ to use when the baseline holds fewer than 5 samples (then μ = 0).
    """
    mean, sigma = _baseline(flux, baseline)
    if not np.isfinite(sigma) and noise is not None and np.isfinite(noise):
        mean, sigma = 0.0, float(noise)
    extra = np.zeros(flux.shape) if background_sd is None else np.nan_to_num(background_sd)
    levels = mean + k * np.sqrt(sigma**2 + extra**2)
    level0 = float(np.nanmedian(levels)) if np.isfinite(sigma) else np.nan
    result = ThresholdCrossing(None, mean, sigma, level0)
    if not np.isfinite(sigma):
        result.reason = "baseline window holds fewer than 5 valid samples"
        return result
    time = np.arange(flux.size, dtype=float) if time is None else np.asarray(time, float)
    last = int(np.flatnonzero(baseline)[-1]) if baseline.any() else -1
    after = np.arange(flux.size) > last
    above = np.where(np.isfinite(flux), flux > levels, False) & after
    i = _first_run(above, persistence)
    if i is None:
        result.reason = f"flux never stayed above μ + {k:g}σ for {persistence} samples"
        return result
    level = float(levels[i])
    t_cross, u_cross = float(time[i]), float(potential[i])
    if i > 0 and np.isfinite(flux[i - 1]) and flux[i] != flux[i - 1]:
        weight = np.clip((level - flux[i - 1]) / (flux[i] - flux[i - 1]), 0.0, 1.0)
        t_cross = float(time[i - 1] + weight * (time[i] - time[i - 1]))
        u_cross = float(potential[i - 1] + weight * (potential[i] - potential[i - 1]))
    result.index, result.threshold = i, level
    result.crossing_V, result.crossing_time = u_cross, t_cross
    flank = _hinge_fit(time, flux, i, mean, level, sigma)
    t_onset, result.time_sd = t_cross, 0.0
    if flank is not None:
        earliest = time[last] if last >= 0 else time[0]
        t_onset = float(np.clip(flank[0], earliest, t_cross))
        result.time_sd, result.slope = flank[1], flank[2]
    ok = np.isfinite(potential) & np.isfinite(time)
    result.onset_time = t_onset
    result.potential_V = float(np.interp(t_onset, time[ok], potential[ok]))
    return result


def tangent_onset(
    potential: np.ndarray,
    flux: np.ndarray,
    baseline: np.ndarray,
    flank: tuple[float, float] = (0.1, 0.5),
) -> TangentFit:
    """Onset where a line through the rising flank (flux vs potential) meets the baseline mean."""
    mean, _ = _baseline(flux, baseline)
    if not np.isfinite(mean) and not baseline.any():
        mean = 0.0
    result = TangentFit(None, mean)
    valid = np.isfinite(flux) & np.isfinite(potential)
    if not np.isfinite(mean) or not valid.any():
        result.reason = "no baseline"
        return result
    peak_index = int(np.nanargmax(np.where(valid, flux, -np.inf)))
    rise = flux[peak_index] - mean
    progress = (flux[: peak_index + 1] - mean) / rise if rise > 0 else np.zeros(peak_index + 1)
    below = np.flatnonzero(progress < flank[0])
    first = int(below[-1]) + 1 if below.size else 0
    sel = np.arange(first, peak_index + 1)
    sel = sel[(progress[sel] <= flank[1]) & valid[sel]]
    if sel.size < 3 or np.ptp(potential[sel]) <= 0:
        result.reason = "no rising flank with ≥ 3 samples"
        return result
    slope, intercept = np.polyfit(potential[sel], flux[sel], 1)
    if slope <= 0:
        result.reason = "flank does not rise with potential"
        return result
    result.potential_V = float((mean - intercept) / slope)
    result.slope, result.n = float(slope), int(sel.size)
    return result


def _rate_onset(
    time: np.ndarray,
    potential: np.ndarray,
    flux: np.ndarray,
    rate: float,
    persistence: int,
    sigma: float,
    k: float,
) -> dict[str, Any]:
    above = np.where(np.isfinite(flux), flux > rate, False)
    out: dict[str, Any] = {"rate_mol_per_s": rate, "potential_V": None}
    out["below_detection_limit"] = bool(np.isfinite(sigma) and rate < k * sigma)
    i = _first_run(above, persistence)
    if i is None:
        out["reason"] = "flux never stayed above the rate"
        return out
    u = float(potential[i])
    if i > 0 and np.isfinite(flux[i - 1]) and flux[i] != flux[i - 1]:
        weight = np.clip((rate - flux[i - 1]) / (flux[i] - flux[i - 1]), 0.0, 1.0)
        u = float(potential[i - 1] + weight * (potential[i] - potential[i - 1]))
    out["potential_V"] = u
    return out


def _dudt(time: np.ndarray, potential: np.ndarray, t: float) -> float:
    i = int(np.clip(np.searchsorted(time, t), 0, time.size - 1))
    window = slice(max(i - 5, 0), min(i + 6, time.size))
    ok = np.isfinite(time[window]) & np.isfinite(potential[window])
    if ok.sum() < 2 or np.ptp(time[window][ok]) <= 0:
        return 0.0
    return float(abs(np.polyfit(time[window][ok], potential[window][ok], 1)[0]))


def detect_onset(
    flux: xr.DataArray,
    baseline: xr.DataArray | np.ndarray,
    *,
    background_sd: xr.DataArray | np.ndarray | None = None,
    noise: float | None = None,
    method: str = "threshold",
    k: float = 3.0,
    persistence: int = 5,
    delay_uncertainty_s: float = 1.0,
    rate: float | None = None,
) -> Onset:
    """Onset potential of one charge with its uncertainty budget (module docs).

    Parameters
    ----------
    flux
        Flux (mol/s, or a corrected signal) along ``time`` (s) with a ``potential``
        coordinate (V) on the same dimension.
    baseline
        Boolean mask along ``time``: the baseline samples before any evolution.
    background_sd
        Standard uncertainty of the background at each sample (flux units); raises the
        threshold where the background is uncertain.
    noise
        White-noise σ of the flux, used when the baseline is too short.
    method
        ``"threshold"`` or ``"tangent"``: which estimate is reported.
    k, persistence
        Threshold criterion parameters.
    delay_uncertainty_s
        1σ uncertainty of the transit delay and the clock alignment (s).
    rate
        Flux (same unit) for the rate onset; None: not reported.

    Returns
    -------
    Onset
    """
    if method not in METHODS:
        raise ValueError(f"unknown onset method {method!r}; choose one of {METHODS}")
    dim = flux.dims[0]
    time = np.asarray(flux[dim].values, float)
    potential = np.asarray(flux["potential"].values, float)
    values = np.asarray(flux.values, float)
    mask = np.asarray(baseline, bool)
    sd = None if background_sd is None else np.asarray(background_sd, float)
    parameters = {"k": k, "persistence": persistence, "delay_uncertainty_s": delay_uncertainty_s}

    def located(kk: float) -> ThresholdCrossing:
        return threshold_onset(
            potential, values, mask, kk, persistence, time=time, background_sd=sd, noise=noise
        )

    main = located(k)
    if main.potential_V is None:
        finite = potential[np.isfinite(potential)]
        return Onset(
            None,
            None,
            method,
            parameters,
            reason=main.reason or "not detected",
            max_potential_V=float(finite.max()) if finite.size else None,
            threshold=main.threshold,
        )
    tangent = tangent_onset(potential, values, mask)
    spread = [c.potential_V for c in (located(kk) for kk in (2, 3, 5))]
    spread = [u for u in spread if u is not None]
    dudt = _dudt(time, potential, main.onset_time)
    slope_per_V = main.slope / dudt if main.slope and dudt > 0 else None
    sd_at = float(np.interp(main.onset_time, time, np.nan_to_num(sd))) if sd is not None else 0.0
    terms = {
        "sampling": dudt * float(np.nanmedian(np.diff(time))) / np.sqrt(12.0),
        "alignment": dudt * delay_uncertainty_s,
        "noise": dudt * main.time_sd,
        "background": sd_at / slope_per_V if slope_per_V else 0.0,
        "criterion": 0.5 * (max(spread) - min(spread)) if spread else 0.0,
        "method": abs(main.potential_V - tangent.potential_V)
        if tangent.potential_V is not None
        else 0.0,
    }
    chosen, reported = main.potential_V, method
    if method == "tangent" and tangent.potential_V is not None:
        chosen = tangent.potential_V
    extra = {}
    if method == "tangent" and tangent.potential_V is None:
        reported = "threshold"
        extra["fallback_reason"] = tangent.reason
    rate_onset = None
    if rate is not None:
        rate_onset = _rate_onset(time, potential, values, rate, persistence, main.baseline_sigma, k)
    onset_time = main.onset_time
    if chosen != main.potential_V:
        onset_time = float(np.interp(chosen, *_monotone(potential, time, main.onset_time)))
    return Onset(
        chosen,
        float(np.sqrt(sum(v**2 for v in terms.values()))),
        reported,
        parameters,
        uncertainty_terms_V=terms,
        alternatives={
            "threshold": main.potential_V,
            "tangent": tangent.potential_V,
            "crossing": main.crossing_V,
        },
        threshold_time_s=onset_time,
        baseline_mean=main.baseline_mean,
        baseline_sigma=main.baseline_sigma,
        threshold=main.threshold,
        rate=rate_onset,
        extra=extra,
    )


def _monotone(
    potential: np.ndarray, time: np.ndarray, near: float
) -> tuple[np.ndarray, np.ndarray]:
    """(potential, time) of the rising stretch around ``near``, for U → t interpolation."""
    ok = np.isfinite(potential) & np.isfinite(time)
    u, t = potential[ok], time[ok]
    if u.size < 2:
        return np.array([0.0, 1.0]), np.array([near, near])
    i = int(np.clip(np.searchsorted(t, near), 1, u.size - 1))
    a = i
    while a > 0 and u[a - 1] <= u[a]:
        a -= 1
    b = i
    while b < u.size - 1 and u[b + 1] >= u[b]:
        b += 1
    if b <= a or u[b] <= u[a]:
        return np.array([u[i], u[i] + 1.0]), np.array([near, near])
    return u[a : b + 1], t[a : b + 1]
