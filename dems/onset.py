"""Onset potentials of gas evolution (methods.md §A5).

``threshold`` (default)
    Baseline mean μ and noise σ (median and 1.4826·MAD of the flux in the baseline
    window); the onset is the first sample from which the flux stays above
    ``μ + k·σ`` for ``persistence`` consecutive samples. The potential is linearly
    interpolated between that sample and the one before it, at the level ``μ + k·σ``.
``tangent``
    A straight line is fitted to flux vs potential over the rising flank
    (``flank`` = 10–50 % of the rise above μ, before the maximum); the onset is where
    it meets μ.

Uncertainty (combined in quadrature, each term reported): (a) sampling
``|dU/dt|·Δt``; (b) alignment ``|dU/dt|·σ_Δ``; (c) criterion spread: half the range of
the threshold onsets for k ∈ {2, 3, 5}; (d) method spread: the difference
threshold − tangent. A gas whose flux never fires the criterion gets
``potential_V = None`` with a reason and the highest potential reached — never an
invented onset.

The functions take in-memory NumPy arrays of one half-cycle (they are evaluated
when the summary is computed).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["METHODS", "detect_onset", "tangent_onset", "threshold_onset"]

METHODS = ("threshold", "tangent")


def _baseline(flux: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    values = flux[mask & np.isfinite(flux)]
    if values.size < 5:
        return np.nan, np.nan
    center = float(np.median(values))
    sigma = float(1.4826 * np.median(np.abs(values - center)))
    return center, sigma


def threshold_onset(
    potential: np.ndarray,
    flux: np.ndarray,
    baseline: np.ndarray,
    k: float = 3.0,
    persistence: int = 5,
) -> dict[str, Any]:
    """k·σ threshold with a persistence rule.

    Parameters
    ----------
    potential
        Electrode potential (V) at the flux samples (transit delay already applied).
    flux
        Molar flux (mol/s).
    baseline
        Boolean mask of the baseline samples (before any evolution).
    k
        Threshold in units of the baseline noise σ.
    persistence
        Number of consecutive samples that must stay above the threshold.

    Returns
    -------
    dict
        ``potential_V`` (None if not detected), ``index`` (first sample of the run),
        ``position`` (fractional sample index of the crossing), ``baseline_mean``,
        ``baseline_sigma`` and ``threshold`` (mol/s).
    """
    mean, sigma = _baseline(flux, baseline)
    result: dict[str, Any] = {
        "potential_V": None,
        "index": None,
        "baseline_mean": mean,
        "baseline_sigma": sigma,
        "threshold": mean + k * sigma,
    }
    if not np.isfinite(sigma):
        result["reason"] = "baseline window holds fewer than 5 valid samples"
        return result
    level = mean + k * sigma
    after = np.arange(flux.size) > (np.flatnonzero(baseline)[-1] if baseline.any() else -1)
    above = np.where(np.isfinite(flux), flux > level, False) & after
    window = np.convolve(above.astype(int), np.ones(persistence, int), mode="valid")
    starts = np.flatnonzero(window == persistence)
    if starts.size == 0:
        result["reason"] = f"flux never stayed above μ + {k:g}σ for {persistence} samples"
        return result
    i = int(starts[0])
    u, position = float(potential[i]), float(i)
    if i > 0 and np.isfinite(flux[i - 1]) and flux[i] != flux[i - 1]:
        weight = np.clip((level - flux[i - 1]) / (flux[i] - flux[i - 1]), 0.0, 1.0)
        u = float(potential[i - 1] + weight * (potential[i] - potential[i - 1]))
        position = i - 1 + float(weight)
    result.update(potential_V=u, index=i, position=position)
    return result


def tangent_onset(
    potential: np.ndarray,
    flux: np.ndarray,
    baseline: np.ndarray,
    flank: tuple[float, float] = (0.1, 0.5),
) -> dict[str, Any]:
    """Onset where a line through the rising flank meets the baseline mean.

    Returns
    -------
    dict
        ``potential_V`` (None if no rising flank), ``slope`` (mol/s per V) and the
        number of flank samples.
    """
    mean, _ = _baseline(flux, baseline)
    result: dict[str, Any] = {"potential_V": None, "baseline_mean": mean}
    valid = np.isfinite(flux) & np.isfinite(potential)
    if not np.isfinite(mean) or not valid.any():
        result["reason"] = "no baseline"
        return result
    peak_index = int(np.nanargmax(np.where(valid, flux, -np.inf)))
    rise = flux[peak_index] - mean
    progress = (flux[: peak_index + 1] - mean) / rise if rise > 0 else np.zeros(peak_index + 1)
    below = np.flatnonzero(progress < flank[0])
    first = int(below[-1]) + 1 if below.size else 0
    sel = np.arange(first, peak_index + 1)
    sel = sel[(progress[sel] <= flank[1]) & valid[sel]]
    if sel.size < 3 or np.ptp(potential[sel]) <= 0:
        result["reason"] = "no rising flank with ≥ 3 samples"
        return result
    slope, intercept = np.polyfit(potential[sel], flux[sel], 1)
    if slope <= 0:
        result["reason"] = "flank does not rise with potential"
        return result
    result.update(
        potential_V=float((mean - intercept) / slope), slope=float(slope), n=int(sel.size)
    )
    return result


def detect_onset(
    time: np.ndarray,
    potential: np.ndarray,
    flux: np.ndarray,
    baseline: np.ndarray,
    *,
    method: str = "threshold",
    k: float = 3.0,
    persistence: int = 5,
    delay_uncertainty_s: float = 1.0,
) -> dict[str, Any]:
    """Onset potential with its uncertainty budget (see module docstring).

    Parameters
    ----------
    time
        Electrode time (s) of the samples.
    potential, flux, baseline
        As in :func:`threshold_onset`.
    method
        ``"threshold"`` or ``"tangent"``: which estimate is reported.
    k, persistence
        Threshold criterion parameters.
    delay_uncertainty_s
        1σ uncertainty of the transit delay / alignment (s).

    Returns
    -------
    dict
        ``potential_V`` (None = no onset), ``uncertainty_V``, ``method``,
        ``parameters``, ``uncertainty_terms_V``, ``threshold_time_s`` (time of the
        threshold crossing) and, without onset, ``reason`` and
        ``max_potential_V``; ``alternatives`` holds the other method's value.
    """
    if method not in METHODS:
        raise ValueError(f"unknown onset method {method!r}; choose one of {METHODS}")
    parameters = {"k": k, "persistence": persistence, "delay_uncertainty_s": delay_uncertainty_s}
    main = threshold_onset(potential, flux, baseline, k, persistence)
    out: dict[str, Any] = {"method": method, "parameters": parameters}
    if main["potential_V"] is None:
        finite = potential[np.isfinite(potential)]
        return {
            **out,
            "potential_V": None,
            "uncertainty_V": None,
            "reason": main.get("reason", "not detected"),
            "max_potential_V": float(finite.max()) if finite.size else None,
            "threshold_mol_per_s": main["threshold"],
        }
    tangent = tangent_onset(potential, flux, baseline)
    spread = [
        threshold_onset(potential, flux, baseline, kk, persistence)["potential_V"]
        for kk in (2, 3, 5)
    ]
    spread = [u for u in spread if u is not None]
    i = main["index"]
    window = slice(max(i - 5, 0), min(i + 6, flux.size))
    slope = np.polyfit(time[window], potential[window], 1)[0] if flux.size > 2 else 0.0
    step = float(np.nanmedian(np.diff(time)))
    terms = {
        "sampling": abs(slope) * step,
        "alignment": abs(slope) * delay_uncertainty_s,
        "criterion": 0.5 * (max(spread) - min(spread)) if spread else 0.0,
        "method": abs(main["potential_V"] - tangent["potential_V"])
        if tangent["potential_V"] is not None
        else 0.0,
    }
    chosen = main["potential_V"] if method == "threshold" else tangent["potential_V"]
    if chosen is None:
        chosen = main["potential_V"]
        out["method"] = "threshold"
        out["fallback_reason"] = tangent.get("reason")
    return {
        **out,
        "potential_V": chosen,
        "uncertainty_V": float(np.sqrt(sum(v**2 for v in terms.values()))),
        "uncertainty_terms_V": terms,
        "alternatives": {"threshold": main["potential_V"], "tangent": tangent["potential_V"]},
        "threshold_time_s": float(np.interp(main["position"], np.arange(time.size), time)),
        "baseline_mean_mol_per_s": main["baseline_mean"],
        "baseline_sigma_mol_per_s": main["baseline_sigma"],
    }
