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

from dems.calibration_steps import sccm_mol_per_s
from dems.fragmentation import pattern, primary_mass

__all__ = ["SCENARIOS", "Scenario", "SyntheticExperiment", "make_experiment"]


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
    #: rests after charge / after discharge (s); None: ``rest_s``
    rest_after_charge_s: float | None = None
    rest_after_discharge_s: float | None = None
    #: False: the OCV rest only opens the first cycle
    ocv_every_cycle: bool = True
    #: < 1: the files end during the last cycle's charge, at this state of charge
    last_charge_fraction: float = 1.0
    #: flow disturbance: from this MS time (h) every background is scaled by 1 + relative
    background_step_h: float | None = None
    background_step_relative: float = 0.0
    #: carrier flow of the operando run (sccm); None: ``calibration_flow_sccm``. The MS
    #: samples the carrier stream, so signals scale with calibration flow / carrier flow
    carrier_flow_sccm: float | None = None
    #: reference temperature of the mass-flow controllers' standard flow (°C), and
    #: whether the steps file states it (else readers assume 0 °C)
    flow_reference_C: float = 0.0
    flow_reference_stated: bool = True

    @property
    def delay_50_s(self) -> float:
        """True valve-switch → 50 % delay, Δ + τ·ln 2 (s)."""
        return self.dead_time_s + self.tau_s * math.log(2)


_DAY_OF_CYCLING = {"ocv_every_cycle": False, "rest_s": 0.0, "drift_per_h": -0.01,
                   "curvature_per_h2": 0.0005}  # fmt: skip

#: Named experiments for tests and ``benchmarks/accuracy_dems_onsets.py`` (overrides of
#: :class:`Scenario`): the protocols and instrument conditions of real DEMS runs.
SCENARIOS: dict[str, dict[str, Any]] = {
    # one 3.8 h cycle: OCV, charge, hold, rest, discharge, rest
    "single_cycle": {},
    # 10 cycles in 46 h without rests, drifting background and a +10 % background step
    # after a flow disturbance at 22 h (in the middle of the fifth discharge)
    "multi_cycle_drift": {
        **_DAY_OF_CYCLING, "n_cycles": 10, "charge_s": 7200.0, "hold_s": 1800.0,
        "discharge_s": 7200.0, "cycle_factor": 0.9, "background_step_h": 22.0,
        "background_step_relative": 0.10,
    },
    # 3 cycles with a 4 h rest after every charge (21 h)
    "rest_after_charge": {
        **_DAY_OF_CYCLING, "n_cycles": 3, "rest_after_charge_s": 4 * 3600.0,
        "cycle_factor": 0.8,
    },
    # 24 h, 3 cycles without rests; the third charge ends (with the files) at 60 % state
    # of charge, 4.01 V, before any gas evolves; a +10 % step at 10 h, early in charge 2
    "incomplete_last_cycle": {
        **_DAY_OF_CYCLING, "n_cycles": 3, "charge_s": 3.5 * 3600, "hold_s": 3600.0,
        "discharge_s": 3.5 * 3600, "last_charge_fraction": 0.6, "cycle_factor": 0.8,
        "background_step_h": 10.0, "background_step_relative": 0.10,
    },
    # operando carrier flow 2.5 sccm against 1 sccm in the calibration; controllers at 20 °C
    "carrier_flow": {"carrier_flow_sccm": 2.5, "flow_reference_C": 20.0},
    # five times the noise on a 2-cycle run
    "noise_5x": {"n_cycles": 2, "noise_scale": 5.0},
    # a modified material releasing no O2 and less CO2, 2 cycles
    "no_O2": {
        "n_cycles": 2, "onsets_V": {"O2": None, "CO2": 4.45, "CO": None},
        "slope_umol_per_min_g_V": {"O2": 10.0, "CO2": 8.0, "CO": 10.0},
    },
}  # fmt: skip


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


#: Protocol phases: OCV, CC charge, CV hold, rest after charge, CC discharge, rest after it.
OCV, CHARGE, HOLD, REST_CHARGED, DISCHARGE, REST_DISCHARGED = range(6)


def _segments(sc: Scenario) -> list[tuple[int, float, int]]:
    """Return the protocol as (phase, duration s, cycle) segments, without empty ones."""
    after_charge = sc.rest_s if sc.rest_after_charge_s is None else sc.rest_after_charge_s
    after_discharge = sc.rest_s if sc.rest_after_discharge_s is None else sc.rest_after_discharge_s
    segments = []
    for cycle in range(1, sc.n_cycles + 1):
        ocv = sc.ocv_s if (cycle == 1 or sc.ocv_every_cycle) else 0.0
        if cycle == sc.n_cycles and sc.last_charge_fraction < 1.0:
            phases = [(OCV, ocv), (CHARGE, sc.last_charge_fraction * sc.charge_s)]
        else:
            phases = [(OCV, ocv), (CHARGE, sc.charge_s), (HOLD, sc.hold_s),
                      (REST_CHARGED, after_charge), (DISCHARGE, sc.discharge_s),
                      (REST_DISCHARGED, after_discharge)]  # fmt: skip
        segments += [(phase, float(d), cycle) for phase, d in phases if d > 0]
    return segments


def _ec_duration(sc: Scenario) -> float:
    return float(sum(d for _, d, _ in _segments(sc)))


def _ec_profile(sc: Scenario, t: np.ndarray) -> dict[str, np.ndarray]:
    """Potential (V), current (mA), cycle, phase and top-of-charge time at each t (s, EC)."""
    segments = _segments(sc)
    starts = np.cumsum([0.0] + [d for _, d, _ in segments])[:-1]
    index = np.clip(np.searchsorted(starts, t, side="right") - 1, 0, len(segments) - 1)
    phase = np.array([p for p, _, _ in segments])[index]
    cycle = np.array([c for _, _, c in segments])[index]
    local = t - starts[index]
    # top of charge (start of the hold) per cycle; never reached by an incomplete charge
    top_of_cycle = np.full(sc.n_cycles + 2, np.inf)
    for k, (p, _, c) in enumerate(segments):
        if p == HOLD:
            top_of_cycle[c] = starts[k]
    current_cc = sc.capacity_mAh * 3600.0 / sc.charge_s
    u = np.empty_like(t)
    i = np.zeros_like(t)
    ocv = 3.55
    u[phase == OCV] = ocv
    charging = phase == CHARGE
    u[charging] = _charge_curve(local[charging] / sc.charge_s)
    i[charging] = current_cc
    hold = phase == HOLD
    u[hold] = 4.6
    i[hold] = current_cc * np.exp(-local[hold] / 600.0)
    rest1 = phase == REST_CHARGED
    u[rest1] = 4.6 - 0.15 * (1 - np.exp(-local[rest1] / 300.0))
    dis = phase == DISCHARGE
    q = local[dis] / sc.discharge_s
    u[dis] = 4.45 - 0.75 * q - 0.7 * q**6
    i[dis] = -sc.capacity_mAh * 3600.0 / sc.discharge_s
    rest2 = phase == REST_DISCHARGED
    u[rest2] = 3.0 + (ocv - 3.0) * (1 - np.exp(-local[rest2] / 600.0))
    return {
        "potential": u,
        "current": i,
        "cycle": cycle,
        "phase": phase,
        "t_top": top_of_cycle[cycle],
    }


def _electrode_flux(sc: Scenario, t: np.ndarray) -> dict[str, np.ndarray]:
    """Return the true molar flux (mol/s) produced at the electrode per gas at EC times t."""
    profile = _ec_profile(sc, t)
    u, top, cycle = profile["potential"], profile["t_top"], profile["cycle"]
    decay = np.where(t > top, np.exp(-(t - np.minimum(top, t)) / sc.decay_s), 1.0)
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
    ec_duration = _ec_duration(sc)
    ms_duration = sc.ms_lead_s + ec_duration + sc.ms_tail_s
    fine = np.arange(-sc.ms_lead_s, ec_duration + sc.ms_tail_s + 1.0, 0.5)  # EC-true time
    electrode = _electrode_flux(sc, np.clip(fine, 0, None))
    inlet = {g: _transport(sc, fine, x) for g, x in electrode.items()}
    hours = ms_duration / 3600.0

    carrier = sc.calibration_flow_sccm if sc.carrier_flow_sccm is None else sc.carrier_flow_sccm
    dilution = sc.calibration_flow_sccm / carrier

    def inlet_flux(gas, t_ms):
        return dilution * np.interp(t_ms - sc.ms_lead_s, fine, inlet[gas])

    def background(mass, t_ms):
        h = t_ms / 3600.0 - hours / 2
        level = 1 + sc.drift_per_h * h + sc.curvature_per_h2 * h**2
        if sc.background_step_h is not None:
            level = level + sc.background_step_relative * (t_ms >= 3600.0 * sc.background_step_h)
        return sc.background_A.get(mass, 0.0) * level

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
    # the controller delivers sccm defined at its own reference temperature
    flow = sc.calibration_flow_sccm * sccm_mol_per_s(sc.flow_reference_C)
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
    if sc.flow_reference_stated:
        document["flow_reference_C"] = sc.flow_reference_C
    return ms, document


def _truth(sc: Scenario, fine: np.ndarray, electrode: dict[str, np.ndarray]) -> dict[str, Any]:
    inside = (fine >= 0) & (fine <= _ec_duration(sc))
    t = fine[inside]
    profile = _ec_profile(sc, t)
    cycle = profile["cycle"]
    evolved: dict[str, Any] = {}
    cycles: list[dict[str, Any]] = []
    for c in range(1, sc.n_cycles + 1):
        sel = cycle == c
        charging = sel & (profile["phase"] >= CHARGE) & (profile["phase"] <= HOLD)
        top = float(profile["potential"][charging].max()) if charging.any() else -np.inf
        cycles.append({"cycle": c, "onsets": {}, "evolved": {}, "max_charge_potential_V": top})
    for gas, flux in electrode.items():
        f = flux[inside]
        total = float(np.trapezoid(f, t)) * 1e6
        evolved[gas] = {"umol": total, "umol_per_g": total / sc.mass_g}
        for c in range(1, sc.n_cycles + 1):
            sel = cycle == c
            amount = float(np.trapezoid(f[sel], t[sel])) * 1e6
            cycles[c - 1]["evolved"][gas] = {"umol": amount, "umol_per_g": amount / sc.mass_g}
            onset = sc.onsets_V.get(gas)
            evolves = (
                onset is not None
                and sc.cycle_factor ** (c - 1) > 0
                and cycles[c - 1]["max_charge_potential_V"] > onset
            )
            cycles[c - 1]["onsets"][gas] = onset if evolves else None
    carrier = sc.calibration_flow_sccm if sc.carrier_flow_sccm is None else sc.carrier_flow_sccm
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
        "carrier_flow_sccm": carrier,
        "ec_duration_s": _ec_duration(sc),
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
