"""Evolved amounts of a computed DEMS result with their uncertainty budget.

Terms of ``uncertainty_terms_umol`` (standard uncertainties in µmol, combined in
quadrature, ``docs/methods.md`` "Amounts"):

``noise``
    ``σ_ṅ·Δt·√N`` for the white flux noise ``σ_ṅ = sqrt(Σ_M (W_iM σ_M)²)`` of the
    channels' noise σ_M (``background_sigma``) through the deconvolution weights W.
``background``
    the fitted backgrounds' error integrated over the window and propagated through
    the deconvolution: ``sqrt(Σ_M W_iM² gᵀ C_M g)`` (:mod:`dems.uncertainty`).
``background_model``
    ALS only: the ALS baseline minus a drift fitted outside its peaks (it sits under
    the noise and absorbs part of broad peaks: a bias, reported as its
    magnitude).
``calibration``
    the factors' standard errors, cross-talk between gases included.
``cylinder``, ``flow_controller``, ``flow_reference``
    relative calibration terms times the amount.

A gas that was not detected in the window (no onset in its charges) also gets its
``detection_limit_umol`` (3 × the uncertainty of a zero amount) and an
``upper_bound_umol`` = max(amount, 0) + 2u; per gram when the mass is known.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from dems.drift import row_variance, trapezoid_weights, white_noise
from dems.fragmentation import primary_mass
from dems.quantify import flux_weights
from dems.uncertainty import channel_background, combine, crosstalk

__all__ = ["Amount", "AmountBudget"]


@dataclass
class Amount:
    """Amount of one gas over one window (``summary.json`` ``evolved.<gas>``)."""

    umol: float | None
    umol_per_g: float | None = None
    umol_uncertainty: float | None = None
    umol_per_g_uncertainty: float | None = None
    uncertainty_terms_umol: dict[str, float] = field(default_factory=dict)
    coverage: float | None = None
    reason: str | None = None
    detected: bool | None = None
    detection_limit_umol: float | None = None
    detection_limit_umol_per_g: float | None = None
    upper_bound_umol: float | None = None
    upper_bound_umol_per_g: float | None = None
    mol_per_mol_electrons: float | None = None
    faradaic_efficiency: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form; optional keys only when they apply."""
        out: dict[str, Any] = {"umol": self.umol, "umol_per_g": self.umol_per_g}
        if self.umol_uncertainty is not None:
            out["umol_uncertainty"] = self.umol_uncertainty
            out["uncertainty_terms_umol"] = dict(self.uncertainty_terms_umol)
            out["coverage"] = self.coverage
            if self.umol_per_g is not None:
                out["umol_per_g_uncertainty"] = self.umol_per_g_uncertainty
        optional = {
            "reason": self.reason,
            "detected": self.detected,
            "detection_limit_umol": self.detection_limit_umol,
            "detection_limit_umol_per_g": self.detection_limit_umol_per_g,
            "upper_bound_umol": self.upper_bound_umol,
            "upper_bound_umol_per_g": self.upper_bound_umol_per_g,
            "mol_per_mol_electrons": self.mol_per_mol_electrons,
            "faradaic_efficiency": self.faradaic_efficiency,
        }
        out.update({k: v for k, v in optional.items() if v is not None})
        return out


def _nearest(source_time: np.ndarray, values: np.ndarray, target: np.ndarray) -> np.ndarray:
    ok = np.isfinite(source_time)
    if ok.sum() < 2:
        return np.zeros(target.shape, bool)
    return np.interp(target, source_time[ok], values[ok].astype(float)) >= 0.5


class AmountBudget:
    """Per-gas series, background bands, anchors and amounts of a computed result.

    Parameters
    ----------
    result
        Computed output of :func:`dems.process.quantify_run`.
    gases
        Gases to follow.
    """

    def __init__(self, result: xr.Dataset, gases: list[str]) -> None:
        self.result = result
        self.gases = gases
        self.calibrated = "flux" in result
        self.units = "mol/s" if self.calibrated else "A"
        self.masses = [float(m) for m in result["signal_grid"]["mass"].values]
        self.ms_time = np.asarray(
            result["ms_time"].values if "ms_time" in result.coords else result["time"].values,
            float,
        )
        self.series = {g: self._series(g) for g in gases}
        self.weights = self._weights()
        channel_mass = np.asarray(result["channel_mass"].values, float)
        self._channels = {m: int(np.flatnonzero(channel_mass == m)[0]) for m in self.masses}
        self.backgrounds = {m: channel_background(result, c) for m, c in self._channels.items()}
        self._designs = {m: b.design(self.ms_time) if b.design else None
                         for m, b in self.backgrounds.items()}  # fmt: skip
        bands = {m: self._band(m) for m in self.masses}
        self.band = {
            g: np.sqrt(sum((self.weights[g][m] * bands[m]) ** 2 for m in self.masses))
            for g in gases
        }
        self.anchors = {g: self._anchors(g) for g in gases}
        self.flux_noise = {g: self._flux_noise(g) for g in gases}
        self.stderr = None
        if "sensitivity_stderr" in result:
            self.stderr = result["sensitivity_stderr"].sel(mass=self.masses)
        self.relative = json.loads(result.attrs.get("calibration_terms_json", "{}"))

    def _series(self, gas: str) -> np.ndarray:
        if self.calibrated:
            return np.asarray(self.result["flux"].sel(gas=gas).values, float)
        mass = float(primary_mass(gas))
        return np.asarray(self.result["signal_grid"].sel(mass=mass).values, float)

    def _weight_matrix(self) -> tuple[list[str], np.ndarray]:
        """Gases of the sensitivity matrix and the deconvolution weights ``(gas, mass)``."""
        matrix = self.result["sensitivity"].sel(mass=self.masses)
        sigma = self.result["background_sigma"].values
        channel_mass = np.asarray(self.result["channel_mass"].values, float)
        noise = np.array([sigma[np.flatnonzero(channel_mass == m)[0]] for m in self.masses])
        names = [str(g) for g in matrix["gas"].values]
        return names, flux_weights(matrix.transpose("mass", "gas").values, noise)

    def _weights(self) -> dict[str, dict[float, float]]:
        """Gas -> m/z -> weight of that channel in the gas's flux."""
        if not self.calibrated:
            return {g: {m: float(m == primary_mass(g)) for m in self.masses} for g in self.gases}
        names, w = self._weight_matrix()
        return {g: dict(zip(self.masses, w[names.index(g)], strict=True)) for g in self.gases}

    def _band(self, mass: float) -> np.ndarray:
        design = self._designs[mass]
        if design is None:
            return np.zeros(self.ms_time.shape)
        return np.sqrt(row_variance(design, self.backgrounds[mass].covariance))

    def _anchors(self, gas: str) -> np.ndarray:
        """Anchor samples of the gas's main channel, at the flux times."""
        weights = self.weights[gas]
        main = max(weights, key=lambda m: abs(weights[m])) if weights else None
        if main is None or "background_anchor" not in self.result:
            return np.zeros(self.ms_time.shape, bool)
        c = self._channels[main]
        time = np.asarray(self.result["channel_time"].values[c], float)
        anchors = np.asarray(self.result["background_anchor"].values[c], bool)
        return _nearest(time, anchors, self.ms_time)

    def _flux_noise(self, gas: str) -> float:
        """White noise of the gas's flux from the channels' noise and weights.

        Interpolating a channel onto the grid keeps the integral of its noise but
        correlates neighbouring samples, so the noise is taken from the channels'
        background residuals (``background_sigma``), not from the flux series itself.
        """
        sigma = np.asarray(self.result["background_sigma"].values, float)
        variance = sum(
            (self.weights[gas][m] * sigma[c]) ** 2
            for m, c in self._channels.items()
            if np.isfinite(sigma[c])
        )
        return float(np.sqrt(variance)) if variance > 0 else white_noise(self.series[gas])

    def flux_limit(self, gas: str, k: float, noise: float) -> float:
        """Smallest significant flux: k·sqrt(σ_noise² + median band²)."""
        band = float(np.nanmedian(self.band[gas])) if self.band[gas].size else 0.0
        return float(k * np.sqrt(noise**2 + band**2)) if np.isfinite(noise) else float("nan")

    def _background_terms(self, gas: str, ok: np.ndarray) -> tuple[float, float]:
        """(statistical, absorbed) background terms of an amount over ``ok`` (flux units·s)."""
        variance, absorbed = 0.0, 0.0
        t = self.ms_time[ok]
        for mass in self.masses:
            w = self.weights[gas][mass]
            if w == 0:
                continue
            design = self._designs[mass]
            if design is not None and t.size > 1:
                g = np.asarray(design[ok].T @ trapezoid_weights(t)).ravel()
                variance += w**2 * max(float(g @ self.backgrounds[mass].covariance @ g), 0.0)
            absorbed += w * self.backgrounds[mass].absorbed(t)
        return float(np.sqrt(variance)), abs(absorbed)

    def amounts(
        self,
        t: np.ndarray,
        sel: np.ndarray,
        mass_g: float,
        detected: dict[str, bool] | None = None,
    ) -> dict[str, Amount]:
        """Amount of every gas over the samples ``sel`` (electrode times ``t``)."""
        if not self.calibrated:
            return {g: Amount(None, None, reason="no calibration") for g in self.gases}
        per_gas = {}
        for g in self.gases:
            ok = sel & np.isfinite(self.series[g])
            per_gas[g] = (ok, float(np.trapezoid(self.series[g][ok], t[ok])) * 1e6)
        cross = self._crosstalk({g: v[1] for g, v in per_gas.items()})
        out = {}
        for g, (ok, umol) in per_gas.items():
            if ok.sum() < 2:
                out[g] = Amount(None, None, reason="no valid samples")
                continue
            step = float(np.median(np.diff(t[ok])))
            noise = self.flux_noise[g] * step * np.sqrt(ok.sum()) * 1e6
            background, absorbed = (v * 1e6 for v in self._background_terms(g, ok))
            terms = {"noise": noise, "background": background}
            if absorbed > 0:
                terms["background_model"] = absorbed
            terms["calibration"] = cross.get(g, 0.0)
            for name, relative in self.relative.get(g, {}).items():
                terms[name] = abs(umol) * relative
            terms = {k: (float(v) if np.isfinite(v) else 0.0) for k, v in terms.items()}
            amount = Amount(umol, uncertainty_terms_umol=terms)
            amount.umol_uncertainty = combine(terms)
            amount.coverage = float(ok.sum() / max(sel.sum(), 1))
            zero = combine({k: terms[k] for k in ("noise", "background")} | {
                "background_model": terms.get("background_model", 0.0)})  # fmt: skip
            if detected is not None:
                amount.detected = bool(detected.get(g))
                amount.detection_limit_umol = 3.0 * zero
                if not amount.detected:
                    amount.upper_bound_umol = max(umol, 0.0) + 2.0 * amount.umol_uncertainty
            _per_gram(amount, mass_g)
            out[g] = amount
        return out

    def _crosstalk(self, umol: dict[str, float]) -> dict[str, float]:
        if self.stderr is None:
            return {}
        names, weights = self._weight_matrix()
        amounts = np.array([umol.get(g, 0.0) for g in names])
        stderr = self.stderr.sel(gas=names).transpose("mass", "gas").values
        values = crosstalk(weights, stderr, amounts)
        return dict(zip(names, values.tolist(), strict=True))


def _per_gram(amount: Amount, mass_g: float) -> None:
    if not (np.isfinite(mass_g) and mass_g > 0):
        amount.reason = "active mass unknown: give --mass"
        return
    amount.umol_per_g = amount.umol / mass_g
    amount.umol_per_g_uncertainty = amount.umol_uncertainty / mass_g
    for name in ("detection_limit", "upper_bound"):
        value = getattr(amount, f"{name}_umol")
        if value is not None:
            setattr(amount, f"{name}_umol_per_g", value / mass_g)
