"""Speed of the DEMS deconvolution and of the whole lazy pipeline on a 48 h synthetic run.

Prints ratios against references measured in the same run on the same data:

* deconvolution: ``dems.quantify.deconvolve`` vs calling ``scipy.optimize.nnls`` at every time
  point (the textbook ``apply_ufunc(vectorize=True)`` approach);
* pipeline: ``quantify_run`` + compute with the threaded scheduler vs the synchronous one.

Run: ``.venv/bin/python benchmarks/bench_dems_quantify.py``
"""

from __future__ import annotations

import time

import dask
import numpy as np
import xarray as xr
from scipy.optimize import nnls

from dems.calibration import calibrate_gas_steps
from dems.calibration_file import sensitivity_factors
from dems.calibration_steps import parse_steps
from dems.fragmentation import sensitivity_matrix
from dems.process import default_background_windows, quantify_run
from dems.quantify import deconvolve, grid_bounds
from dems.synthetic import make_experiment


def best_of(function, repeat=3):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    experiment = make_experiment(seed=0, n_cycles=13)  # ≈ 48 h, 2 s MS cycle
    calibration = calibrate_gas_steps(
        experiment.calibration_ms, parse_steps(experiment.calibration_steps)
    )
    factors = sensitivity_factors(calibration)
    masses = [16.0, 28.0, 32.0, 44.0]
    matrix = sensitivity_matrix(factors, masses)
    rng = np.random.default_rng(0)
    n = 86_400
    truth = np.abs(rng.normal(0, 1e-10, (matrix.sizes["gas"], n)))
    signals = xr.DataArray(
        matrix.values @ truth + rng.normal(0, 1e-12, (len(masses), n)),
        dims=("mass", "time"),
        coords={"mass": masses, "time": np.arange(n) * 2.0},
    )
    sigma = xr.DataArray(np.full(len(masses), 1e-12), dims="mass", coords={"mass": masses})

    def ours():
        return deconvolve(signals, matrix, sigma, negative_tolerance=0.0).values

    def reference():
        a = matrix.values / 1e-12
        return np.array([nnls(a, column / 1e-12)[0] for column in signals.values.T])

    t_ours, t_ref = best_of(ours), best_of(reference, repeat=1)
    check = deconvolve(signals, matrix, sigma, negative_tolerance=0.0).values
    a = matrix.values / 1e-12
    expected = np.array([nnls(a, c / 1e-12)[0] for c in signals.values[:, :2000].T]).T
    assert np.allclose(check[:, :2000], expected, rtol=1e-6, atol=1e-20)
    print(f"deconvolution of {n} time points x {len(masses)} masses x {matrix.sizes['gas']} gases")
    print(f"  per-point nnls reference : {t_ref:8.3f} s")
    print(f"  dems.quantify.deconvolve : {t_ours:8.3f} s   speed-up x{t_ref / t_ours:.1f}")

    ms, ec = experiment.ms, experiment.ec.assign_coords(time=experiment.ec["time"] + 300.0)
    windows = default_background_windows(ms, ec, calibration.delay_s)
    grid = grid_bounds(ms)
    lazy_ms = ms.chunk({"channel": 1}).assign_coords(mass=ms["mass"])

    def pipeline(scheduler):
        with dask.config.set(scheduler=scheduler):
            quantify_run(
                lazy_ms,
                ec,
                factors=factors,
                delay_s=calibration.delay_s,
                grid=grid,
                windows=windows,
                mass_g=0.01,
            ).compute()

    t_sync = best_of(lambda: pipeline("synchronous"), repeat=2)
    t_threads = best_of(lambda: pipeline("threads"), repeat=2)
    print(f"whole lazy pipeline on {ms.sizes['channel']} channels x {ms.sizes['sample']} samples")
    print(f"  synchronous scheduler    : {t_sync:8.3f} s")
    print(f"  threaded scheduler       : {t_threads:8.3f} s   ratio x{t_sync / t_threads:.2f}")


if __name__ == "__main__":
    main()
