"""Synthetic DEMS experiments with known ground truth.

:func:`make_experiment` simulates an operando DEMS run on a Ni-rich (NCM) cathode
and a separate gas-calibration run:

* **potentiostat**: per cycle an OCV rest, a constant-current charge along
  ``U(q) = 3.6 + 0.6 q + 0.4 q⁴`` V (q = state of charge 0–1), a potential hold at
  4.6 V with a decaying current, a rest, a constant-current discharge and a rest;
* **gas evolution at the electrode**: ``ṅ_i(t) = k_i · max(0, U − U_on,i) · d(t)``
  mol/s, with ``d = exp(−(t − t_top)/τ_decay)`` after the potential first reaches the
  top of charge (release fades during the hold), scaled by ``cycle_factor^(cycle−1)``;
  a gas whose onset is ``None`` never evolves;
* **transport**: dead time ``Δ`` then a first-order response ``τ`` (so the
  valve-switch → 50 % delay is ``Δ + τ·ln 2`` and the 10–90 % rise ``τ·ln 9``);
* **mass spectrometer**: channels measured one after another (each its own
  clock), ``S_M = Σ_i F_{M,i} ṅ_i + b_M(t) + noise`` with NIST fragmentation, a
  quadratic drifting background and Gaussian noise;
* **clocks**: the MS starts ``ms_lead_s`` before the potentiostat; the EC computer's
  clock is ``clock_offset_s`` ahead of the MS computer's (recorded start time).

Datasets follow ``docs/conventions.md``. :mod:`dems.synthetic_files` writes them as
EC-Lab ``.mpt`` and QUADERA ``.asc`` files. All numbers are SI unless the name says.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from dems.calibration_steps import SCCM_MOL_PER_S
from dems.fragmentation import pattern, primary_mass

__all__ = ["Scenario", "SyntheticExperiment", "make_experiment"]


def _default_onsets() -> dict[str, float | None]:
    return {"O2": 4.39, "CO2": 4.35, "CO": None}


@dataclass
class Scenario:
    """Parameters of a synthetic experiment (defaults: a realistic NCM83 first cycle)."""

    seed: int = 0
    n_cycles: int = 1
    mass_g: float = 0.010
    capacity_mAh: float = 2.0
    ocv_s: float = 1800.0
    charge_s: float = 3600.0
    hold_s: float = 1800.0
    rest_s: float = 1200.0
    discharge_s: float = 3600.0
    ms_lead_s: float = 300.0
    ms_tail_s: float = 300.0
    clock_offset_s: float = 0.0
    onsets_V: dict[str, float | None] = field(default_factory=_default_onsets)
    #: evolution slope k_i per gram, µmol/(min·g) per V above onset
    slope_umol_per_min_g_V: dict[str, float] = field(
        default_factory=lambda: {"O2": 10.0, "CO2": 25.0, "CO": 10.0}
    )
    decay_s: float = 900.0
    cycle_factor: float = 0.5
    #: sensitivity at each gas's base peak, C/mol
    sensitivity_C_per_mol: dict[str, float] = field(
        default_factory=lambda: {"O2": 0.50, "CO2": 0.80, "CO": 0.60}
    )
    masses: tuple[float, ...] = (16.0, 18.0, 28.0, 32.0, 40.0, 44.0)
    background_A: dict[float, float] = field(
        default_factory=lambda: {16: 8e-12, 18: 1e-10, 28: 2e-10, 32: 2e-11, 40: 1e-8, 44: 1e-11}
    )
    drift_per_h: float = -0.01
    curvature_per_h2: float = 0.0005
    noise_A: float = 1e-12
    noise_scale: float = 1.0
    dead_time_s: float = 10.0
    tau_s: float = 4.0
    ms_cycle_s: float = 2.0
    ec_interval_s: float = 10.0
    start_time: str = "2026-03-14T09:00:00"  # day > 12: unambiguous day-first dates
    calibration_flow_sccm: float = 1.0
    calibration_step_s: float = 600.0

    @property
    def delay_50_s(self) -> float:
        """True valve-switch → 50 % delay, Δ + τ·ln 2 (s)."""
        return self.dead_time_s + self.tau_s * math.log(2)


@dataclass
class SyntheticExperiment:
    """Generated datasets and the truth behind them."""

    ms: xr.Dataset
    ec: xr.Dataset
    calibration_ms: xr.Dataset
    calibration_steps: dict[str, Any]
    truth: dict[str, Any]


def _charge_curve(q: np.ndarray) -> np.ndarray:
    return 3.6 + 0.6 * q + 0.4 * q**4


def _ec_profile(sc: Scenario, t: np.ndarray) -> dict[str, np.ndarray]:
    """Potential (V), current (mA), cycle, ox/red, top-of-charge time at each t (s, EC)."""
    seg = [sc.ocv_s, sc.charge_s, sc.hold_s, sc.rest_s, sc.discharge_s, sc.rest_s]
    period = sum(seg)
    edges = np.cumsum([0.0, *seg])
    cycle = np.minimum(t // period, sc.n_cycles - 1).astype(np.int64)
    tau = t - cycle * period
    current_cc = sc.capacity_mAh * 3600.0 / sc.charge_s
    u = np.empty_like(t)
    i = np.zeros_like(t)
    phase = np.searchsorted(edges, tau, side="right") - 1
    phase = np.clip(phase, 0, 5)
    local = tau - edges[phase]
    u_end_discharge = 3.0
    ocv = 3.55
    u[phase == 0] = ocv
    charging = phase == 1
    u[charging] = _charge_curve(local[charging] / sc.charge_s)
    i[charging] = current_cc
    hold = phase == 2
    u[hold] = 4.6
    i[hold] = current_cc * np.exp(-local[hold] / 600.0)
    rest1 = phase == 3
    u[rest1] = 4.6 - 0.15 * (1 - np.exp(-local[rest1] / 300.0))
    dis = phase == 4
    q = local[dis] / sc.discharge_s
    u[dis] = 4.45 - 0.75 * q - 0.7 * q**6
    i[dis] = -sc.capacity_mAh * 3600.0 / sc.discharge_s
    rest2 = phase == 5
    u[rest2] = u_end_discharge + (ocv - u_end_discharge) * (1 - np.exp(-local[rest2] / 600.0))
    top = cycle * period + edges[2]
    return {"potential": u, "current": i, "cycle": cycle + 1, "phase": phase, "t_top": top}


def _electrode_flux(sc: Scenario, t: np.ndarray) -> dict[str, np.ndarray]:
    """Return the true molar flux (mol/s) produced at the electrode per gas at EC times t."""
    profile = _ec_profile(sc, t)
    u, top, cycle = profile["potential"], profile["t_top"], profile["cycle"]
    decay = np.where(t > top, np.exp(-(t - top) / sc.decay_s), 1.0)
    flux = {}
    for gas in sc.sensitivity_C_per_mol:
        onset = sc.onsets_V.get(gas)
        if onset is None:
            flux[gas] = np.zeros_like(t)
            continue
        k = sc.slope_umol_per_min_g_V[gas] * 1e-6 / 60.0 * sc.mass_g
        flux[gas] = k * np.clip(u - onset, 0, None) * decay * sc.cycle_factor ** (cycle - 1)
    return flux


def _transport(sc: Scenario, t: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Dead time then first-order lag, on a uniform fine grid t (s)."""
    step = t[1] - t[0]
    shifted = np.interp(t - sc.dead_time_s, t, x, left=x[0])
    alpha = 1.0 - math.exp(-step / sc.tau_s)
    from scipy.signal import lfilter

    out, _ = lfilter([alpha], [1.0, alpha - 1.0], shifted, zi=[shifted[0] * (1 - alpha)])
    return out


def _true_factors(sc: Scenario) -> dict[str, dict[float, float]]:
    factors: dict[str, dict[float, float]] = {}
    for gas, f_primary in sc.sensitivity_C_per_mol.items():
        gas_pattern = pattern(gas)
        base = gas_pattern.fraction(primary_mass(gas))
        factors[gas] = {
            m: f_primary * gas_pattern.fraction(m) / base
            for m in sc.masses
            if gas_pattern.fraction(m) > 0
        }
    return factors


def _ms_dataset(sc, duration, inlet_flux_of, background_of, rng, start_time, name) -> xr.Dataset:
    n = int(duration // sc.ms_cycle_s)
    dwell = sc.ms_cycle_s / len(sc.masses)
    factors = _true_factors(sc)
    times = np.empty((len(sc.masses), n))
    signals = np.empty_like(times)
    for k, mass in enumerate(sc.masses):
        t = np.arange(n) * sc.ms_cycle_s + k * dwell
        t = np.round(t + rng.uniform(0, 0.01, n), 3)
        s = background_of(mass, t)
        for gas, masses in factors.items():
            if mass in masses:
                s = s + masses[mass] * inlet_flux_of(gas, t)
        sigma = sc.noise_scale * max(sc.noise_A, 0.002 * sc.background_A.get(mass, 0.0))
        times[k], signals[k] = t, s + rng.normal(0.0, sigma, n)
    return xr.Dataset(
        {"signal": (("channel", "sample"), signals, {"units": "A", "long_name": "ion current"})},
        coords={
            "channel": [f"M{m:g}" for m in sc.masses],
            "mass": ("channel", np.array(sc.masses, float), {"units": "u"}),
            "label": ("channel", [f"{m:g}" for m in sc.masses]),
            "time": (("channel", "sample"), times, {"units": "s"}),
        },
        attrs={
            "start_time": start_time.isoformat(timespec="microseconds") + "+00:00",
            "timezone": "UTC",
            "timezone_source": "user",
            "quantity": "ion current",
            "source_file": name,
            "format": "synthetic",
            "reader": "dems.synthetic",
            "reader_version": "synthetic",
        },
    )


def _operando(sc: Scenario, rng: np.random.Generator) -> tuple:
    seg = sc.ocv_s + sc.charge_s + sc.hold_s + 2 * sc.rest_s + sc.discharge_s
    ec_duration = sc.n_cycles * seg
    ms_duration = sc.ms_lead_s + ec_duration + sc.ms_tail_s
    fine = np.arange(-sc.ms_lead_s, ec_duration + sc.ms_tail_s + 1.0, 0.5)  # EC-true time
    electrode = _electrode_flux(sc, np.clip(fine, 0, None))
    inlet = {g: _transport(sc, fine, x) for g, x in electrode.items()}
    hours = ms_duration / 3600.0

    def inlet_flux(gas, t_ms):
        return np.interp(t_ms - sc.ms_lead_s, fine, inlet[gas])

    def background(mass, t_ms):
        h = t_ms / 3600.0 - hours / 2
        return sc.background_A.get(mass, 0.0) * (
            1 + sc.drift_per_h * h + sc.curvature_per_h2 * h**2
        )

    start = dt.datetime.fromisoformat(sc.start_time)
    ms = _ms_dataset(sc, ms_duration, inlet_flux, background, rng, start, "synthetic operando MS")
    t_ec = np.arange(0.0, ec_duration, sc.ec_interval_s)
    profile = _ec_profile(sc, t_ec)
    ec_start = start + dt.timedelta(seconds=sc.ms_lead_s + sc.clock_offset_s)
    ec = _ec_dataset(sc, t_ec, profile, ec_start)
    return ms, ec, fine, electrode


def _ec_dataset(sc: Scenario, t, profile, start) -> xr.Dataset:
    current = profile["current"]
    charge_mAh = np.concatenate([[0.0], np.cumsum(0.5 * (current[1:] + current[:-1]) * np.diff(t))])
    charge_mAh /= 3600.0
    ox = (current > 0) | (profile["phase"] <= 3)
    variables = {
        "Ewe": ("time", profile["potential"], {"units": "V", "long_name": "Ewe/V"}),
        "<I>": ("time", current, {"units": "mA", "long_name": "<I>/mA"}),
        "cycle number": ("time", profile["cycle"].astype(float), {"long_name": "cycle number"}),
        "ox/red": ("time", ox.astype(np.int64), {"long_name": "ox/red"}),
        "(Q-Qo)": ("time", charge_mAh, {"units": "mA.h", "long_name": "(Q-Qo)/mA.h"}),
        "potential": ("time", profile["potential"], {"units": "V"}),
        "current": ("time", current, {"units": "mA"}),
        "cycle": ("time", profile["cycle"].astype(np.int64)),
    }
    return xr.Dataset(
        variables,
        coords={"time": ("time", t, {"units": "s"})},
        attrs={
            "start_time": start.isoformat(timespec="microseconds") + "+00:00",
            "timezone": "UTC",
            "timezone_source": "user",
            "technique": "Galvanostatic Cycling with Potential Limitation",
            "characteristic_mass_g": sc.mass_g,
            "mass_key": "Mass of active material",
            "source_file": "synthetic operando EC",
            "format": "synthetic",
            "reader": "dems.synthetic",
            "reader_version": "synthetic",
        },
    )


def _calibration(sc: Scenario, rng: np.random.Generator) -> tuple[xr.Dataset, dict]:
    gases = list(sc.sensitivity_C_per_mol)
    plan = [{}]
    for gas in gases:
        plan += [{gas: 5e-4}, {gas: 1e-3}]
    plan.append({})
    lead = 60.0
    flow = sc.calibration_flow_sccm * SCCM_MOL_PER_S
    steps = []
    for i, fractions in enumerate(plan):
        start = lead + i * sc.calibration_step_s
        steps.append(
            {
                "start_s": start,
                "end_s": start + sc.calibration_step_s - 1.0,
                "mole_fraction": {g: float(fractions.get(g, 0.0)) for g in gases},
            }
        )
    duration = lead + len(plan) * sc.calibration_step_s + 60.0
    fine = np.arange(0.0, duration + 1.0, 0.5)
    valve = {g: np.zeros_like(fine) for g in gases}
    for step in steps:
        on = fine >= step["start_s"]
        for g in gases:
            valve[g][on] = step["mole_fraction"][g] * flow
    inlet = {g: _transport(sc, fine, x) for g, x in valve.items()}

    def inlet_flux(gas, t):
        return np.interp(t, fine, inlet[gas])

    def background(mass, t):
        return np.full_like(t, sc.background_A.get(mass, 0.0))

    start = dt.datetime.fromisoformat(sc.start_time) - dt.timedelta(hours=3)
    ms = _ms_dataset(sc, duration, inlet_flux, background, rng, start, "synthetic calibration MS")
    document = {"carrier": "Ar", "total_flow_sccm": sc.calibration_flow_sccm, "step": steps}
    return ms, document


def _truth(sc: Scenario, fine: np.ndarray, electrode: dict[str, np.ndarray]) -> dict[str, Any]:
    inside = fine >= 0
    t = fine[inside]
    period = sc.ocv_s + sc.charge_s + sc.hold_s + 2 * sc.rest_s + sc.discharge_s
    cycle = np.minimum(t // period, sc.n_cycles - 1).astype(int) + 1
    evolved: dict[str, Any] = {}
    cycles: list[dict[str, Any]] = []
    for c in range(1, sc.n_cycles + 1):
        cycles.append({"cycle": c, "onsets": {}, "evolved": {}})
    for gas, flux in electrode.items():
        f = flux[inside]
        total = float(np.trapezoid(f, t)) * 1e6
        evolved[gas] = {"umol": total, "umol_per_g": total / sc.mass_g}
        for c in range(1, sc.n_cycles + 1):
            sel = cycle == c
            amount = float(np.trapezoid(f[sel], t[sel])) * 1e6
            cycles[c - 1]["evolved"][gas] = {"umol": amount, "umol_per_g": amount / sc.mass_g}
            onset = sc.onsets_V.get(gas)
            evolves = onset is not None and sc.cycle_factor ** (c - 1) > 0
            cycles[c - 1]["onsets"][gas] = onset if evolves else None
    return {
        "scenario": asdict(sc),
        "onsets_V": dict(sc.onsets_V),
        "evolved": evolved,
        "cycles": cycles,
        "sensitivity_C_per_mol": {
            g: {f"{m:g}": v for m, v in f.items()} for g, f in _true_factors(sc).items()
        },
        "delay_s": sc.delay_50_s,
        "response_time_s": sc.tau_s * math.log(9),
        "align_offset_s": -sc.clock_offset_s,
        "mass_g": sc.mass_g,
    }


def make_experiment(scenario: Scenario | None = None, **overrides: Any) -> SyntheticExperiment:
    """Simulate an operando DEMS run plus its gas-calibration run.

    Parameters
    ----------
    scenario
        Parameters (default :class:`Scenario`); ``overrides`` replace single fields,
        e.g. ``make_experiment(noise_scale=5, seed=3)``.

    Returns
    -------
    SyntheticExperiment
        ``ms`` and ``ec`` (operando run, each on its own clock), ``calibration_ms``,
        ``calibration_steps`` (the steps-file document) and ``truth``: onsets
        (V, ``None`` = never evolves), evolved amounts over the run and per cycle
        (µmol, µmol/g), true sensitivity factors (C/mol), transit delay (s,
        valve → 50 %), response time (s, 10–90 %) and the offset ``align`` needs.
    """
    sc = scenario or Scenario()
    if overrides:
        sc = Scenario(**{**asdict(sc), **overrides})
    rng = np.random.default_rng(sc.seed)
    ms, ec, fine, electrode = _operando(sc, rng)
    calibration_ms, steps = _calibration(sc, rng)
    return SyntheticExperiment(ms, ec, calibration_ms, steps, _truth(sc, fine, electrode))
