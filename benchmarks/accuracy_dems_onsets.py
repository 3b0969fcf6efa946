"""Accuracy sweep: onsets and amounts over many generated DEMS runs, one table per scenario.

Not a speed benchmark. For every scenario of :data:`dems.synthetic.SCENARIOS` and every
seed it generates the run and its gas-step calibration, calibrates, quantifies with the
default background (anchors found from the data) and summarises, then compares with the
truth the data were generated from:

* onsets: the headline method in every charge (``cycles[i].onsets``) — mean and worst
  |error| over the charges whose gas evolves (O2, CO2), *invented* onsets (an onset
  reported where the gas never evolves: CO always, O2 of the no-O2 material, the
  incomplete last charge) and *missed* ones;
* amounts: the whole-run evolved O2 and CO2, worst relative error; gases that never
  evolve: worst |amount| in units of its reported uncertainty;
* coverage: how often |error| ≤ 1σ and ≤ 2σ of the reported uncertainty (onsets and
  amounts together; a calibrated Gaussian budget gives 68 % and 95 %).

The generated calibration gases and flows are exact, so the cylinder and flow-controller
tolerances are set to 0 here (their terms would only widen the budget).

Run: ``.venv/bin/python benchmarks/accuracy_dems_onsets.py [n_seeds] [scenario ...]``
(default 20 seeds, all scenarios, on 2 worker processes).
"""

from __future__ import annotations

import os

# one BLAS thread per worker: the two workers already use both cores
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import sys
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from dems.calibration import calibrate_gas_steps
from dems.calibration_file import sensitivity_factors
from dems.calibration_steps import parse_steps
from dems.process import default_background_windows, quantify_run
from dems.quantify import grid_bounds
from dems.summary import summarize
from dems.synthetic import SCENARIOS, make_experiment

GASES = ["O2", "CO2", "CO"]


def run(scenario: str, seed: int) -> dict:
    """Errors of one generated run (plain numbers, picklable)."""
    experiment = make_experiment(seed=seed, **SCENARIOS[scenario])
    truth = experiment.truth
    calibration = calibrate_gas_steps(
        experiment.calibration_ms, parse_steps(experiment.calibration_steps)
    )
    ms = experiment.ms
    shift = truth["scenario"]["ms_lead_s"]  # what dems.align gives with the true offset
    ec = experiment.ec.assign_coords(time=experiment.ec["time"] + shift)
    carrier = truth["scenario"]["carrier_flow_sccm"]
    result = quantify_run(
        ms,
        ec,
        factors=sensitivity_factors(calibration),
        delay_s=calibration.delay_s,
        grid=grid_bounds(ms),
        windows=default_background_windows(ms, ec, calibration.delay_s),
        mass_g=truth["mass_g"],
        calibration=calibration,
        carrier_flow_sccm=carrier,
        flow_reference_C=truth["scenario"]["flow_reference_C"] if carrier else None,
        cylinder_tolerance=0.0,
        flow_controller_tolerance=0.0,
    )
    summary = summarize(result.compute(), gases=GASES).to_dict()
    out = {"onset_errors": [], "invented": 0, "missed": 0, "charges": 0, "z": [], "amount": []}
    out["zero_z"] = []
    for got, want in zip(summary["cycles"], truth["cycles"], strict=True):
        for gas in GASES:
            onset, expected = got["onsets"][gas], want["onsets"][gas]
            out["charges"] += 1
            if expected is None:
                out["invented"] += onset["potential_V"] is not None
            elif onset["potential_V"] is None:
                out["missed"] += 1
            else:
                error = onset["potential_V"] - expected
                out["onset_errors"].append(error)
                out["z"].append(abs(error) / onset["uncertainty_V"])
    for gas in GASES:
        got, want = summary["evolved"][gas], truth["evolved"][gas]["umol"]
        z = abs(got["umol"] - want) / got["umol_uncertainty"]
        if want > 0:
            out["amount"].append((got["umol"] - want) / want)
            out["z"].append(z)
        else:
            out["zero_z"].append(z)
            out["z"].append(z)
    return out


def table(scenario: str, rows: list[dict], seconds: float) -> str:
    errors = 1e3 * np.abs(np.concatenate([r["onset_errors"] for r in rows]))
    amounts = 100 * np.abs(np.concatenate([r["amount"] for r in rows]))
    z = np.concatenate([r["z"] for r in rows])
    zero = np.concatenate([r["zero_z"] for r in rows])
    charges = sum(r["charges"] for r in rows)
    lines = [
        f"{scenario}  ({len(rows)} seeds, {charges} charge×gas, {seconds:.0f} s)",
        f"  onset |error|     mean {errors.mean():5.1f} mV   worst {errors.max():5.1f} mV"
        f"   (n = {errors.size})",
        f"  invented onsets   {sum(r['invented'] for r in rows)}"
        f"        missed onsets {sum(r['missed'] for r in rows)}",
        f"  amount |error|    worst {amounts.max():5.2f} %   mean {amounts.mean():5.2f} %",
        f"  no-gas amounts    worst {zero.max():4.2f} σ from zero",
        f"  coverage          1σ {np.mean(z <= 1):4.0%}   2σ {np.mean(z <= 2):4.0%}"
        f"   (n = {z.size})",
    ]
    return "\n".join(lines)


def main(n_seeds: int = 20, scenarios: list[str] | None = None) -> None:
    scenarios = scenarios or list(SCENARIOS)
    with ProcessPoolExecutor(max_workers=2) as pool:
        for scenario in scenarios:
            start = time.perf_counter()
            futures = [pool.submit(run, scenario, seed) for seed in range(n_seeds)]
            rows = []
            for i, future in enumerate(futures, start=1):
                rows.append(future.result())
                print(f"\r{scenario}: {i}/{n_seeds} seeds", end="", file=sys.stderr, flush=True)
            print("\r" + " " * 60 + "\r", end="", file=sys.stderr, flush=True)
            print(table(scenario, rows, time.perf_counter() - start), flush=True)


if __name__ == "__main__":
    seeds = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    main(seeds, sys.argv[2:] or None)
