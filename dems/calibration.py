"""Sensitivity factors, transit delay and response time from calibration runs.

Gas-step calibration (methods.md §A1, §A4.3)
    For every m/z channel, the plateau mean of each step is fitted by least squares
    as ``S_M = b_M + Σ_i F_{M,i} · ṅ_i`` over the steps, where ``ṅ_i = x_i · ṅ_total``
    and the sum runs over the calibration gases whose fragmentation pattern contains
    M. ``F_{M,i}`` (C/mol) is the slope, ``b_M`` the intercept (background);
    r² and the slope's standard error are reported. All-zero steps anchor ``b_M``.
    At each step where a gas's mole fraction changes, the **transit delay** is the
    time from the valve switch to 50 % of the signal change on the gas's base-peak
    channel, the **response time** the 10 → 90 % rise time.

Faradaic calibration (methods.md §A1)
    ``F = ∫(S − S_bg) dt / (Q / (z·F))`` with ``Q = ∫I dt`` over the EC window.

These functions reduce small calibration runs to a handful of numbers; they read
the array values (in memory) and return a :class:`dems.calibration_file.Calibration`
(:func:`faradaic_sensitivity`: the entry of one factor, a plain dictionary).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from dems.calibration_file import Calibration
from dems.calibration_steps import CalibrationStep, CalibrationSteps
from dems.errors import CalibrationError
from dems.fragmentation import GasPattern, pattern, primary_mass

__all__ = [
    "FARADAY",
    "calibrate_gas_steps",
    "faradaic_calibration",
    "faradaic_sensitivity",
    "transition_times",
]

#: Faraday constant, C/mol (CODATA 2018, exact).
FARADAY = 96485.33212


def _channel_arrays(ms: xr.Dataset) -> list[tuple[float, np.ndarray, np.ndarray]]:
    masses = np.asarray(ms["mass"].values, dtype=float)
    time = np.asarray(ms["time"].values, dtype=float)
    signal = np.asarray(ms["signal"].values, dtype=float)
    return [(masses[i], time[i], signal[i]) for i in range(masses.size)]


def _window_mean(time: np.ndarray, signal: np.ndarray, start: float, end: float) -> float:
    sel = (time >= start) & (time <= end) & np.isfinite(signal)
    return float(signal[sel].mean()) if sel.sum() >= 2 else np.nan


def transition_times(
    time: np.ndarray,
    signal: np.ndarray,
    switch_s: float,
    before: float,
    after: float,
    settled_s: float,
    levels: tuple[float, ...] = (0.1, 0.5, 0.9),
) -> dict[float, float]:
    """Return the times (s) at which a step response passes fractions of its change.

    For each fraction f the time is the **last** crossing of
    ``before + f·(after − before)`` between ``switch_s`` and ``settled_s``, linearly
    interpolated between samples; the last crossing is robust against noise before
    the transition.

    Returns
    -------
    dict
        fraction -> time (NaN if the signal never crossed the level).
    """
    sel = (time >= switch_s) & (time <= settled_s) & np.isfinite(signal)
    t, s = time[sel], signal[sel]
    change = after - before
    result = {}
    for fraction in levels:
        # progress > fraction means "past the level"
        past = (s - before) / change > fraction if change != 0 else np.zeros(s.size, bool)
        not_past = np.flatnonzero(~past)
        if not past.any() or not_past.size == 0 or not_past[-1] + 1 >= s.size:
            result[fraction] = np.nan
            continue
        i = not_past[-1]
        level = before + fraction * change
        weight = (level - s[i]) / (s[i + 1] - s[i]) if s[i + 1] != s[i] else 0.0
        result[fraction] = float(t[i] + weight * (t[i + 1] - t[i]))
    return result


def _contributors(
    mass: float, gases: list[str], patterns: Mapping[str, GasPattern] | None
) -> list[str]:
    return [g for g in gases if pattern(g, patterns).fraction(mass) > 0]


def _linear_fit(x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    scale = np.max(np.abs(x), axis=0)
    scale = np.concatenate([[1.0], np.where(scale > 0, scale, 1.0)])
    design = np.column_stack([np.ones(len(y)), x]) / scale  # columns of order 1
    coefficients, *_ = np.linalg.lstsq(design, y, rcond=None)
    fitted = design @ coefficients
    residual = y - fitted
    dof = len(y) - design.shape[1]
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(np.sum(residual**2)) / ss_tot if ss_tot > 0 else np.nan
    if dof > 0:
        variance = float(np.sum(residual**2)) / dof
        covariance = variance * np.linalg.pinv(design.T @ design)
        stderr = np.sqrt(np.clip(np.diag(covariance), 0, None))
    else:
        stderr = np.full(design.shape[1], np.nan)
    return {"coefficients": coefficients / scale, "stderr": stderr / scale, "r2": r2, "dof": dof}


def _steps_time(steps: CalibrationSteps, origin: float, step: CalibrationStep) -> tuple:
    plateau = steps.plateau(step)
    return origin + step.start_s, origin + plateau[0], origin + step.end_s


def _check_windows(steps: CalibrationSteps, t_min: float, t_max: float) -> None:
    for i, step in enumerate(steps.steps, start=1):
        if step.start_s < 0 or t_min + step.end_s > t_max + 1e-9:
            raise CalibrationError(
                f"{steps.source}: step {i} window {step.start_s:g}–{step.end_s:g} s lies outside "
                f"the calibration file (0–{t_max - t_min:g} s)"
            )


def _fit_mass(
    mass: float,
    time: np.ndarray,
    signal: np.ndarray,
    steps: CalibrationSteps,
    origin: float,
    gases: list[str],
) -> dict[str, Any]:
    levels = np.array(
        [_window_mean(time, signal, *_steps_time(steps, origin, s)[1:]) for s in steps.steps]
    )
    fluxes = np.array([[s.flux_mol_per_s(g) for g in gases] for s in steps.steps])
    ok = np.isfinite(levels)
    if ok.sum() < len(gases) + 1:
        raise CalibrationError(
            f"{steps.source}: m/z {mass:g}: {ok.sum()} usable step(s) for {len(gases)} gas(es) "
            f"{gases} plus a background: add steps (e.g. an all-zero baseline step)"
        )
    fit = _linear_fit(fluxes[ok], levels[ok])
    return {
        gas: {
            "F_C_per_mol": float(fit["coefficients"][j + 1]),
            "F_stderr_C_per_mol": float(fit["stderr"][j + 1]),
            "intercept": float(fit["coefficients"][0]),
            "r2": float(fit["r2"]),
            "n_steps": int(ok.sum()),
            "method": "gas steps (linear fit)",
        }
        for j, gas in enumerate(gases)
    }


def _delays(
    gas: str,
    time: np.ndarray,
    signal: np.ndarray,
    steps: CalibrationSteps,
    origin: float,
    noise: float,
) -> list[dict[str, Any]]:
    rows = []
    previous: CalibrationStep | None = None
    for i, step in enumerate(steps.steps, start=1):
        switch, plateau_start, end = _steps_time(steps, origin, step)
        if previous is None:
            before_window = (origin, switch) if switch - origin > 1 else None
            x_before = 0.0
        else:
            before_window = _steps_time(steps, origin, previous)[1:]
            x_before = previous.mole_fraction.get(gas, 0.0)
        previous = step
        if before_window is None or step.mole_fraction.get(gas, 0.0) == x_before:
            continue
        before = _window_mean(time, signal, *before_window)
        after = _window_mean(time, signal, plateau_start, end)
        if not np.isfinite(before) or not np.isfinite(after) or abs(after - before) < 10 * noise:
            continue
        crossing = transition_times(time, signal, switch, before, after, plateau_start)
        rows.append(
            {
                "gas": gas,
                "step": i,
                "delay_s": crossing[0.5] - switch,
                "response_time_s": crossing[0.9] - crossing[0.1],
            }
        )
    return rows


def _noise(time: np.ndarray, signal: np.ndarray, steps: CalibrationSteps, origin: float) -> float:
    spreads = []
    for step in steps.steps:
        _, start, end = _steps_time(steps, origin, step)
        sel = (time >= start) & (time <= end) & np.isfinite(signal)
        if sel.sum() > 3:
            spreads.append(np.std(np.diff(signal[sel])) / np.sqrt(2))
    return float(np.median(spreads)) if spreads else 0.0


def calibrate_gas_steps(
    ms: xr.Dataset,
    steps: CalibrationSteps,
    patterns: Mapping[str, GasPattern] | None = None,
) -> dict[str, Any]:
    """Sensitivity factors, transit delay and response time from a gas-step run.

    Parameters
    ----------
    ms
        Mass-spectrometer dataset of the calibration run (``docs/conventions.md``),
        in memory. Step times count from its first finite sample.
    steps
        Validated steps (:func:`dems.calibration_steps.read_steps`).
    patterns
        Fragmentation table (default: the built-in one).

    Returns
    -------
    Calibration
        ``sensitivity``: gas -> {"<m/z>": {F_C_per_mol, F_stderr_C_per_mol,
        intercept, r2, n_steps, method}}; ``delay_s`` (median over transitions,
        s), ``delay_spread_s`` (standard deviation, NaN with one transition),
        ``response_time_s`` (median 10–90 % rise, s), ``transitions`` (list);
        ``sources`` holds the flows for the calibration transfer
        (:mod:`dems.uncertainty`): ``total_flow_mol_per_s`` (per step), ``flow_in_sccm``
        (flows given in sccm) and ``flow_reference_C`` (their reference temperature, None
        if not stated); :func:`dems.workflows.calibrate` adds the files.

    Raises
    ------
    CalibrationError
        Windows outside the file, a gas with no channel at any of its m/z,
        too few steps for the fit.
    """
    channels = _channel_arrays(ms)
    all_times = np.concatenate([t[np.isfinite(t)] for _, t, _ in channels])
    if all_times.size == 0:
        raise CalibrationError(f"{steps.source}: the calibration file holds no samples")
    origin, t_max = float(all_times.min()), float(all_times.max())
    _check_windows(steps, origin, t_max)
    gases = steps.gases
    sensitivity: dict[str, dict[str, Any]] = {g: {} for g in gases}
    transitions: list[dict[str, Any]] = []
    for gas in gases:
        gas_pattern = pattern(gas, patterns)
        if not any(gas_pattern.fraction(m) > 0 for m, _, _ in channels if np.isfinite(m)):
            raise CalibrationError(
                f"{steps.source}: gas {gas} has no calibrated m/z: none of its masses "
                f"{sorted(gas_pattern.peaks)} is a channel of the calibration file"
            )
    for mass, time, signal in channels:
        contributors = _contributors(mass, gases, patterns) if np.isfinite(mass) else []
        if not contributors:
            continue
        for gas, entry in _fit_mass(mass, time, signal, steps, origin, contributors).items():
            sensitivity[gas][f"{mass:g}"] = entry
        for gas in contributors:
            if round(mass) == primary_mass(gas, patterns):
                noise = _noise(time, signal, steps, origin)
                transitions += _delays(gas, time, signal, steps, origin, noise)
    delays = np.array([r["delay_s"] for r in transitions], dtype=float)
    rises = np.array([r["response_time_s"] for r in transitions], dtype=float)
    finite = delays[np.isfinite(delays)]
    return Calibration(
        method="gas steps",
        carrier=steps.carrier,
        sensitivity=sensitivity,
        delay_s=float(np.median(finite)) if finite.size else np.nan,
        delay_spread_s=float(np.std(finite, ddof=1)) if finite.size > 1 else np.nan,
        response_time_s=float(np.nanmedian(rises)) if np.isfinite(rises).any() else np.nan,
        transitions=transitions,
        sources={
            "total_flow_mol_per_s": [s.total_flow_mol_per_s for s in steps.steps],
            "flow_in_sccm": steps.flow_in_sccm,
            "flow_reference_C": steps.flow_reference_C,
        },
    )


def faradaic_sensitivity(
    ms_time: np.ndarray,
    corrected_signal: np.ndarray,
    ec_time: np.ndarray,
    current_mA: np.ndarray,
    ec_window: tuple[float, float],
    z: float,
    delay_s: float = 0.0,
    ms_window: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """Sensitivity factor from a gas produced at a known charge.

    ``F = ∫(S − S_bg) dt / (Q / (z·F))``, ``Q = ∫ I dt`` over ``ec_window``.

    Parameters
    ----------
    ms_time, corrected_signal
        One channel's own time stamps (s) and background-corrected signal (A).
    ec_time, current_mA
        Potentiostat time (s, on the same axis) and current (mA).
    ec_window
        (start, end) s of the electrochemical window.
    z
        Electrons per molecule (sign as the current: +4 for O2 by OER).
    delay_s
        Transit delay: the MS window defaults to ``ec_window`` shifted by it.
    ms_window
        Explicit MS window (s); must contain the whole MS peak.

    Returns
    -------
    dict
        ``F_C_per_mol``, ``charge_C``, ``signal_integral_C`` and the windows.
    """
    ms_window = ms_window or (ec_window[0] + delay_s, ec_window[1] + delay_s)
    sel_ec = (ec_time >= ec_window[0]) & (ec_time <= ec_window[1]) & np.isfinite(current_mA)
    sel_ms = (ms_time >= ms_window[0]) & (ms_time <= ms_window[1]) & np.isfinite(corrected_signal)
    if sel_ec.sum() < 2 or sel_ms.sum() < 2:
        raise CalibrationError("Faradaic calibration: the EC or MS window holds < 2 samples")
    charge = float(np.trapezoid(current_mA[sel_ec] * 1e-3, ec_time[sel_ec]))
    integral = float(np.trapezoid(corrected_signal[sel_ms], ms_time[sel_ms]))
    if charge == 0 or z == 0:
        raise CalibrationError("Faradaic calibration: zero charge or z = 0")
    return {
        "F_C_per_mol": integral / (charge / (z * FARADAY)),
        "charge_C": charge,
        "signal_integral_C": integral,
        "z": z,
        "ec_window_s": list(ec_window),
        "ms_window_s": list(ms_window),
        "method": "faradaic",
    }


def faradaic_calibration(
    ms: xr.Dataset,
    ec: xr.Dataset,
    *,
    gas: str,
    mass: float,
    z: float,
    ec_window: tuple[float, float],
    background_windows: list[tuple[float, float]],
    delay_s: float = 0.0,
    ms_window: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """Faradaic calibration of one (gas, m/z) on aligned, in-memory MS and EC datasets.

    The channel's background is a straight line through the means of the
    ``background_windows`` (a constant with one window), then
    :func:`faradaic_sensitivity` is applied.

    Returns
    -------
    Calibration
        ``sensitivity`` {gas: {m/z: entry}}, ``delay_s`` (the delay used),
        ``method = "faradaic"``.
    """
    masses = np.asarray(ms["mass"].values, float)
    if mass not in masses:
        raise CalibrationError(f"m/z {mass:g} is not a channel of {ms.attrs.get('source_file')}")
    i = int(np.flatnonzero(masses == mass)[0])
    time = np.asarray(ms["time"].values[i], float)
    signal = np.asarray(ms["signal"].values[i], float)
    means = []
    for start, end in background_windows:
        sel = (time >= start) & (time <= end) & np.isfinite(signal)
        if sel.sum() >= 2:
            means.append((time[sel].mean(), signal[sel].mean()))
    if not means:
        raise CalibrationError("Faradaic calibration: no background window holds ≥ 2 samples")
    points = np.array(means)
    line = np.polyfit(points[:, 0], points[:, 1], 1) if len(points) > 1 else [0.0, points[0, 1]]
    corrected = signal - np.polyval(line, time)
    entry = faradaic_sensitivity(
        time,
        corrected,
        np.asarray(ec["time"].values, float),
        np.asarray(ec["current"].values, float),
        ec_window,
        z,
        delay_s=delay_s,
        ms_window=ms_window,
    )
    entry["background_windows_s"] = [list(w) for w in background_windows]
    return Calibration(
        method="faradaic", sensitivity={gas: {f"{mass:g}": entry}}, delay_s=float(delay_s)
    )
