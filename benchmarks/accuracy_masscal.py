"""Accuracy of the mass recalibration at each fragment, light ions only vs with heavy ions.

Not a speed benchmark. For each seed it writes a small GRD (16 × 16 × 4, 512 counts per
calibration ion, peaks R = 5000) whose ``properties.txt`` calibration is 300 ppm (SF) and 15
channels (K0) off, refits SF/K0 on the summed spectrum with the light calibration ions only
(H⁻ … Cl⁻) and with the heavy ones added (carbon clusters, PF6⁻), and prints per fragment the
starting error, the error of the first seed, the propagated 1σ and the RMS over the seeds (ppm).

Run: ``.venv/bin/python benchmarks/accuracy_masscal.py [--seeds 10]``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from tofsims.fragments import CALIBRATION_IONS, CALIBRATION_IONS_HEAVY, ion_mass
from tofsims.masscal import fit_calibration, mass_to_tof, tof_to_mass
from tofsims.synthetic_raw import poisson_volume, write_grd

SF, K0 = 72000.0, -2100.0
WRONG_SF, WRONG_K0 = SF * (1 + 3e-4), K0 + 15.0
FRAGMENTS = ["C2HO-", "BO2-", "LiF2-", "PO3-", "NiO2-", "CeO2-"]


def _spectrum(folder: Path, seed: int) -> np.ndarray:
    ions = [*CALIBRATION_IONS["negative"], *CALIBRATION_IONS_HEAVY["negative"]]
    path = folder / f"cal{seed}.grd"
    volume = poisson_volume(FRAGMENTS, (4, 16, 16), 0.2, seed=seed)
    write_grd(
        volume,
        path,
        sf=SF,
        k0=K0,
        calibration_ions=ions,
        properties_sf=WRONG_SF,
        properties_k0=WRONG_K0,
        seed=seed,
    )
    tofs = np.fromfile(path, dtype="<u4").reshape(-1, 5)[:, 4]
    n_channels = int(mass_to_tof(200.0, SF, K0))
    return np.bincount(tofs, minlength=n_channels)[:n_channels]


def _ppm(sf: float, k0: float, mass: float) -> float:
    return (tof_to_mass(mass_to_tof(mass, SF, K0), sf, k0) / mass - 1.0) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    seeds = parser.parse_args().seeds
    errors = {"light": [], "heavy": []}
    sigmas = {}
    with tempfile.TemporaryDirectory() as folder:
        for seed in range(seeds):
            spectrum = _spectrum(Path(folder), seed)
            for name, ions in (("light", CALIBRATION_IONS["negative"]), ("heavy", None)):
                fit = fit_calibration(
                    spectrum,
                    WRONG_SF,
                    WRONG_K0,
                    ions=ions,
                    polarity="negative",
                    fragments=FRAGMENTS,
                )
                errors[name].append([_ppm(fit.sf, fit.k0, ion_mass(f)) for f in FRAGMENTS])
                sigmas.setdefault(name, fit.fragment_error_ppm)
    print(f"{seeds} seeds; ppm = (m_calibrated − m_true)/m_true · 10⁶")
    print("                  | light ions only     | + heavy ions")
    print("fragment    start |  seed0    1σ   RMS |  seed0    1σ   RMS")
    for i, fragment in enumerate(FRAGMENTS):
        line = f"{fragment:8s} {_ppm(WRONG_SF, WRONG_K0, ion_mass(fragment)):8.1f} |"
        for name in ("light", "heavy"):
            column = np.array(errors[name])[:, i]
            rms = float(np.sqrt(np.mean(column**2)))
            line += f"{'':1s}{column[0]:+6.2f} {sigmas[name][i]:5.2f} {rms:5.2f} |"
        print(line)


if __name__ == "__main__":
    main()
