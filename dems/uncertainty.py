"""The uncertainty budget of DEMS amounts and onsets, term by term.

Calibration (relative standard uncertainties of the sensitivity factors of a gas)
    ``cylinder`` and ``flow_controller``: the user-given tolerances (relative
    half-widths, e.g. ±2 % of a certified mixture, ±1 % of reading of a mass-flow
    controller) taken as rectangular distributions, ``u = a/√3`` (GUM 4.3.7). They
    scale every factor of the gas together, so they enter its own amount only.
    ``flow_reference``: when the calibration's flows were given in sccm without the
    controller's reference temperature, 0 °C is assumed while controllers use 0, 20 or
    25 °C: ``u = (298.15/273.15 − 1)/√3`` (5.3 %). The fit's standard errors of the
    individual factors (``F_stderr_C_per_mol``) are propagated through the
    deconvolution, so a poorly calibrated fragment of one gas shows up in another
    gas's amount (cross-talk): ``u_i² = Σ_{M,j} (W_iM · u(F_Mj) · n_j)²`` with ``W`` the
    deconvolution weights (:func:`dems.quantify.flux_weights`).

Calibration transfer
    The MS samples the carrier stream, so a signal follows the gas's mole fraction:
    with an operando carrier flow ``ṅ_op`` different from the calibration's
    ``ṅ_cal``, every factor is scaled by ``ṅ_cal/ṅ_op`` (molar flows, each from sccm
    at its controller's reference temperature).

Alignment (standard uncertainty of the transit delay, s)
    ``clock`` (the user's EC–MS clock uncertainty, default 1 s), ``delay`` (the
    standard error of the calibration's median delay, 1.2533·spread/√n) and
    ``response``: the delay is measured as valve → 50 % of a step (Δ₀ + τ·ln 2 for a
    first-order lag τ = t₁₀₋₉₀/ln 9) while a ramp lags by Δ₀ + τ, so the apparent delay
    of a real onset lies between them: ``τ·(1 − ln 2)/√3``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dems.calibration_steps import sccm_mol_per_s
from dems.drift import row_variance

__all__ = [
    "FLOW_REFERENCE_RELATIVE_U",
    "CalibrationBudget",
    "ChannelBackground",
    "calibration_budget",
    "channel_background",
    "combine",
    "crosstalk",
    "transit_terms",
]

#: Relative standard uncertainty of a flow in sccm whose reference temperature is unknown.
FLOW_REFERENCE_RELATIVE_U = (298.15 / 273.15 - 1.0) / math.sqrt(3.0)


def combine(terms: Mapping[str, float]) -> float:
    """Root sum of squares of the finite terms."""
    return float(math.sqrt(sum(v * v for v in terms.values() if v is not None and np.isfinite(v))))


@dataclass
class CalibrationBudget:
    """What the calibration contributes to the amounts of each gas.

    Attributes
    ----------
    scale
        Gas -> factor applied to the calibrated sensitivity factors (carrier-flow
        transfer, 1 when the flows agree).
    relative
        Gas -> {term: relative standard uncertainty} shared by all factors of the gas
        (``cylinder``, ``flow_controller``, ``flow_reference``).
    stderr
        Gas -> {m/z: standard error of F (C/mol, already scaled)} from the fit.
    transfer
        Flows and reference temperatures behind ``scale`` (JSON-ready).
    """

    scale: dict[str, float] = field(default_factory=dict)
    relative: dict[str, dict[str, float]] = field(default_factory=dict)
    stderr: dict[str, dict[float, float]] = field(default_factory=dict)
    transfer: dict[str, Any] = field(default_factory=dict)


def _document(calibration: Any) -> dict[str, Any]:
    """Return the JSON document of a :class:`~dems.calibration_file.Calibration` or mapping."""
    if calibration is None:
        return {}
    if hasattr(calibration, "to_document"):
        return calibration.to_document()
    return dict(calibration)


def _calibration_flow(calibration: Mapping[str, Any]) -> float | None:
    """Return the calibration's carrier flow (mol/s): its steps' median total flow."""
    flows = calibration.get("total_flow_mol_per_s")
    if isinstance(flows, int | float):
        flows = [flows]
    values = [float(f) for f in flows or [] if isinstance(f, int | float) and f > 0]
    return float(np.median(values)) if values else None


def calibration_budget(
    calibration: Any,
    factors: Mapping[str, Mapping[float, float]],
    *,
    carrier_flow_sccm: float | None = None,
    flow_reference_C: float | None = None,
    cylinder_tolerance: float = 0.02,
    flow_controller_tolerance: float = 0.01,
    factor_uncertainty: Mapping[str, float] | None = None,
) -> CalibrationBudget:
    """Scale factors and uncertainty terms of a calibration used on an operando run.

    Parameters
    ----------
    calibration
        The :class:`~dems.calibration_file.Calibration` (or its JSON document), or None.
    factors
        Gas -> {m/z: F (C/mol)} as calibrated.
    carrier_flow_sccm
        Carrier flow of the operando run (sccm); None: as in the calibration.
    flow_reference_C
        Reference temperature of the operando controller (°C); None: the
        calibration's (0 °C when it states none).
    cylinder_tolerance, flow_controller_tolerance
        Relative half-widths of the calibration gas concentration and of the flow
        controller (gas-step calibrations only).
    factor_uncertainty
        Gas -> relative standard error of its largest factor, used when the
        calibration document is not given.

    Raises
    ------
    ValueError
        A carrier flow without a recorded calibration flow, or a non-positive flow.
    """
    budget = CalibrationBudget()
    document = _document(calibration)
    cal_flow = _calibration_flow(document)
    cal_reference = document.get("flow_reference_C")
    scale = 1.0
    if carrier_flow_sccm is not None:
        if not carrier_flow_sccm > 0:
            raise ValueError(f"the carrier flow must be positive, got {carrier_flow_sccm!r} sccm")
        if cal_flow is None:
            raise ValueError("a carrier flow needs the calibration's flow: give the calibration")
        reference = flow_reference_C if flow_reference_C is not None else cal_reference
        operando_flow = carrier_flow_sccm * sccm_mol_per_s(reference or 0.0)
        scale = cal_flow / operando_flow
        budget.transfer = {
            "calibration_flow_mol_per_s": cal_flow,
            "calibration_flow_reference_C": cal_reference,
            "carrier_flow_sccm": carrier_flow_sccm,
            "flow_reference_C": reference,
            "carrier_flow_mol_per_s": operando_flow,
            "factor_scale": scale,
        }
    gas_steps = document.get("method") == "gas steps"
    unknown_reference = bool(document.get("flow_in_sccm")) and cal_reference is None
    for gas, by_mass in factors.items():
        budget.scale[gas] = scale
        terms = {}
        if gas_steps:
            terms["cylinder"] = cylinder_tolerance / math.sqrt(3.0)
            terms["flow_controller"] = flow_controller_tolerance / math.sqrt(3.0)
            terms["flow_reference"] = FLOW_REFERENCE_RELATIVE_U if unknown_reference else 0.0
        budget.relative[gas] = terms
        entries = (document.get("sensitivity") or {}).get(gas) or {}
        stderr = {}
        for mass in by_mass:
            entry = entries.get(f"{mass:g}") if isinstance(entries, Mapping) else None
            error = entry.get("F_stderr_C_per_mol") if isinstance(entry, Mapping) else None
            if isinstance(error, int | float) and np.isfinite(error):
                stderr[float(mass)] = float(error) * scale
        if not stderr and factor_uncertainty and factor_uncertainty.get(gas):
            mass = max(by_mass, key=lambda m: by_mass[m])
            stderr[float(mass)] = float(factor_uncertainty[gas]) * by_mass[mass] * scale
        budget.stderr[gas] = stderr
    return budget


def transit_terms(
    calibration: Any, delay_s: float, clock_uncertainty_s: float = 1.0
) -> dict[str, float]:
    """Return the standard uncertainty terms (s) of the transit delay (module docs).

    The calibration's terms apply only when its delay is the one applied.
    """
    terms = {"clock": float(clock_uncertainty_s)}
    document = _document(calibration)
    measured = document.get("delay_s")
    if not isinstance(measured, int | float) or not np.isfinite(measured):
        return terms
    if abs(float(measured) - float(delay_s)) > 1e-9:
        return terms
    delays = [
        r.get("delay_s")
        for r in document.get("transitions") or []
        if isinstance(r, Mapping) and isinstance(r.get("delay_s"), int | float)
    ]
    spread = document.get("delay_spread_s")
    if len(delays) > 1 and isinstance(spread, int | float) and np.isfinite(spread):
        terms["delay"] = 1.2533 * float(spread) / math.sqrt(len(delays))
    response = document.get("response_time_s")
    if isinstance(response, int | float) and np.isfinite(response) and response > 0:
        tau = float(response) / math.log(9.0)
        terms["response"] = tau * (1.0 - math.log(2.0)) / math.sqrt(3.0)
    return terms


def crosstalk(weights: np.ndarray, stderr: np.ndarray, amounts: np.ndarray) -> np.ndarray:
    """Return the uncertainty of each gas's amount from the factors' standard errors.

    Parameters
    ----------
    weights
        ``(gas, mass)`` deconvolution weights (flux = weights @ signal).
    stderr
        ``(mass, gas)`` standard errors of the sensitivity factors (C/mol).
    amounts
        ``(gas,)`` amounts (any unit).

    Returns
    -------
    numpy.ndarray
        ``(gas,)`` in the unit of ``amounts``: ``sqrt(Σ_{M,j} (W_iM u_Mj n_j)²)``.
    """
    contribution = weights[:, :, None] * stderr[None, :, :] * amounts[None, None, :]
    return np.sqrt(np.sum(contribution**2, axis=(1, 2)))


@dataclass
class ChannelBackground:
    """The uncertainty of one channel's fitted background, on that channel's MS clock.

    ``design`` maps MS times (s) to the rows of the model's design matrix and
    ``covariance`` is the coefficients' covariance (signal units²): together they give
    the band and the uncertainty of an integral. ``bias`` (ALS only) holds the part of
    the baseline minus a drift fitted outside its peaks, ``(time, signal)``: a bias.
    """

    design: Callable[[np.ndarray], np.ndarray] | None = None
    covariance: np.ndarray | None = None
    bias: tuple[np.ndarray, np.ndarray] | None = None

    def band(self, time: np.ndarray) -> np.ndarray:
        """Return the standard uncertainty of the background at ``time`` (signal units)."""
        if self.design is None:
            return np.zeros(np.shape(time))
        return np.sqrt(row_variance(self.design(np.asarray(time, float)), self.covariance))

    def absorbed(self, time: np.ndarray) -> float:
        """Return ∫ bias dt over ``time`` (signal·s; 0 unless ALS)."""
        if self.bias is None or np.size(time) < 2:
            return 0.0
        return float(np.trapezoid(np.interp(time, *self.bias), time))


def _polynomial(time, windows, degree, sigma) -> ChannelBackground:
    from dems.background import window_mask

    inside = time[window_mask(time, windows) & np.isfinite(time)]
    if inside.size <= degree or not np.isfinite(sigma):
        return ChannelBackground()
    t0, span = inside.mean(), float(np.ptp(inside)) or 1.0

    def design(t):
        return np.vander((t - t0) / span, degree + 1)

    x = design(inside)
    return ChannelBackground(design, sigma**2 * np.linalg.pinv(x.T @ x))


def _als_bias(time, signal, background) -> ChannelBackground:
    """Return the ALS baseline minus a drift fitted through the samples outside its peaks.

    ALS sits under the noise (its asymmetric weights) and absorbs part of broad peaks;
    both show as the difference to a smooth drift (:mod:`dems.drift`) through the samples
    whose residual shows no excursion.
    """
    from dems.drift import DriftModel, excursions, fit_drift, white_noise

    ok = np.isfinite(time) & np.isfinite(signal) & np.isfinite(background)
    t, y, b = time[ok], signal[ok], background[ok]
    residual = y - b
    sigma = white_noise(residual)
    if t.size < 10 or not np.isfinite(sigma):
        return ChannelBackground()
    width = max(3, round(120.0 / float(np.median(np.diff(t)))))
    # ALS lies under the noise: look for peaks above the residual's median level
    quiet = ~excursions(residual - np.median(residual), sigma / np.sqrt(width), width, 3.0)
    fit = fit_drift(t, y, quiet, DriftModel(float(t.min()), float(t.max())))
    if fit is None:
        return ChannelBackground()
    return ChannelBackground(bias=(t, b - fit(t)))


def channel_background(result, channel: int) -> ChannelBackground:
    """Rebuild the uncertainty of channel ``channel``'s background from a computed result."""
    import json

    from dems.drift import DriftModel, fit_drift

    model = json.loads(result.attrs.get("background_model", "{}"))
    kind = model.get("model")
    time = np.asarray(result["channel_time"].values[channel], float)
    sigma = float(result["background_sigma"].values[channel])
    if kind == "als":
        signal = np.asarray(result["signal"].values[channel], float)
        background = np.asarray(result["background"].values[channel], float)
        return _als_bias(time, signal, background)
    degree = {"constant": 0, "linear": 1, "polynomial": model.get("degree", 2)}.get(kind)
    if degree is not None:
        return _polynomial(time, [tuple(w) for w in model.get("windows", [])], degree, sigma)
    if kind not in ("drift", "anchored") or "background_anchor" not in result:
        return ChannelBackground()
    signal = np.asarray(result["signal"].values[channel], float)
    anchors = np.asarray(result["background_anchor"].values[channel], bool)
    steps = np.asarray(result["background_step_s"].values[channel], float)
    valid = np.isfinite(time) & np.isfinite(signal)
    if valid.sum() < 8:
        return ChannelBackground()
    drift = DriftModel(
        float(time[valid].min()),
        float(time[valid].max()),
        float(model.get("knot_spacing_s", 3600.0)),
        tuple(float(s) for s in steps[np.isfinite(steps)]),
    )
    fit = fit_drift(time, signal, anchors, drift)
    if fit is None:
        return ChannelBackground()
    return ChannelBackground(drift.design, fit.covariance)
