"""Accuracy sweep: onset and amount errors over many synthetic experiments (seeds).

Not a speed benchmark: it prints, per noise level, the mean and worst onset error of both onset
methods, how often the truth lies within 2 reported uncertainties, and the worst relative error of
the evolved amounts, so changes to the methods can be compared on the same generated data.

Run: ``.venv/bin/python benchmarks/accuracy_dems_onsets.py [n_seeds]``
"""

from __future__ import annotations

import sys

import numpy as np

from dems.calibration import calibrate_gas_steps
from dems.calibration_file import sensitivity_factors
from dems.calibration_steps import parse_steps
from dems.process import default_background_windows, quantify_run
from dems.quantify import grid_bounds
from dems.summary import summarize
from dems.synthetic import make_experiment


def run(seed: int, noise_scale: float) -> tuple[dict, dict]:
    experiment = make_experiment(seed=seed, noise_scale=noise_scale)
    calibration = calibrate_gas_steps(
        experiment.calibration_ms, parse_steps(experiment.calibration_steps)
    )
    ms = experiment.ms
    lead = experiment.truth["scenario"]["ms_lead_s"]
    ec = experiment.ec.assign_coords(time=experiment.ec["time"] + lead)
    result = quantify_run(
        ms,
        ec,
        factors=sensitivity_factors(calibration),
        delay_s=calibration.delay_s,
        grid=grid_bounds(ms),
        windows=default_background_windows(ms, ec, calibration.delay_s),
        mass_g=0.01,
    )
    return summarize(result.compute()), experiment.truth


def main(n_seeds: int = 10) -> None:
    for noise in (1.0, 5.0):
        errors = {"threshold": [], "tangent": []}
        covered, amount_errors, amount_covered = [], [], []
        for seed in range(n_seeds):
            summary, truth = run(seed, noise)
            for gas in ("O2", "CO2"):
                onset = summary["onsets"][gas]
                expected = truth["onsets_V"][gas]
                for method in errors:
                    errors[method].append(onset["alternatives"][method] - expected)
                covered.append(abs(onset["potential_V"] - expected) < 2 * onset["uncertainty_V"])
                got, want = summary["evolved"][gas]["umol"], truth["evolved"][gas]["umol"]
                amount_errors.append(abs(got - want) / want)
                amount_covered.append(
                    abs(got - want) < 2 * summary["evolved"][gas]["umol_uncertainty"]
                )
        print(f"noise x{noise:g}, {n_seeds} seeds, O2 + CO2:")
        for method, values in errors.items():
            values = 1e3 * np.array(values)
            print(
                f"  {method:<9} onset error: mean {values.mean():+6.1f} mV, "
                f"worst {values[np.argmax(abs(values))]:+6.1f} mV"
            )
        print(f"  onset truth within 2 u: {np.mean(covered):.0%}")
        print(
            f"  evolved amounts: worst relative error {100 * max(amount_errors):.2f} %, "
            f"truth within 2 u: {np.mean(amount_covered):.0%}"
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
