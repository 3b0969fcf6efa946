"""Mass calibration over the fragments' range: heavy ions, significance, ppm per fragment."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from tofsims.fragments import CALIBRATION_IONS, CALIBRATION_IONS_HEAVY, ion_mass
from tofsims.masscal import (
    calibrate,
    fit_calibration,
    mass_to_tof,
    select_calibration_ions,
    tof_to_mass,
)
from tofsims.synthetic_raw import poisson_volume, write_grd

SF, K0 = 72000.0, -2100.0
WRONG_SF, WRONG_K0 = SF * (1 + 3e-4), K0 + 15.0  # ~630-665 ppm off over 1-172 u
FRAGMENTS = ["C2HO-", "BO2-", "LiF2-", "PO3-", "NiO2-", "CeO2-"]


def grd_spectrum(tmp_path, calibration_ions, seed=0):
    """Summed TOF spectrum of a small synthetic GRD with a wrong calibration in its properties."""
    volume = poisson_volume(FRAGMENTS, (4, 16, 16), 0.2, seed=seed)
    path = tmp_path / "cal.grd"
    write_grd(
        volume,
        path,
        sf=SF,
        k0=K0,
        calibration_ions=calibration_ions,
        properties_sf=WRONG_SF,
        properties_k0=WRONG_K0,
        seed=seed,
    )
    events = np.fromfile(path, dtype="<u4").reshape(-1, 5)  # GRD: 5 × uint32 per event
    n_channels = int(mass_to_tof(200.0, SF, K0))
    return np.bincount(events[:, 4], minlength=n_channels)[:n_channels]


def true_ppm(fit, fragment):
    mass = ion_mass(fragment)
    return (tof_to_mass(mass_to_tof(mass, SF, K0), fit.sf, fit.k0) - mass) / mass * 1e6


def test_heavy_ions_are_chosen_by_the_fragments():
    light = select_calibration_ions(None, "negative")
    assert light == list(CALIBRATION_IONS["negative"])
    fit_ions = select_calibration_ions(None, "negative", np.array([ion_mass("LiF2-")]))
    assert fit_ions[-1] == "C4-" and "C3-" in fit_ions  # one beyond 45 u
    to_ceo2 = select_calibration_ions(None, "negative", np.array([ion_mass("CeO2-")]))
    assert max(ion_mass(i) for i in to_ceo2) > ion_mass("CeO2-") > ion_mass(to_ceo2[-2])


def test_recalibration_with_heavy_ions_is_within_2_ppm_at_ceo2(tmp_path):
    ions = [*CALIBRATION_IONS["negative"], *CALIBRATION_IONS_HEAVY["negative"]]
    spectrum = grd_spectrum(tmp_path, ions)
    full = fit_calibration(spectrum, WRONG_SF, WRONG_K0, polarity="negative", fragments=FRAGMENTS)
    light = fit_calibration(
        spectrum, WRONG_SF, WRONG_K0, ions=CALIBRATION_IONS["negative"], fragments=FRAGMENTS
    )
    assert full.missing == ()
    assert all(status == "used" for status in full.status)
    assert not full.extrapolated(full.fragment_mass).any()
    # before: the properties' calibration is > 600 ppm off at CeO2-
    at_ceo2 = mass_to_tof(ion_mass("CeO2-"), SF, K0)
    assert abs(tof_to_mass(at_ceo2, WRONG_SF, WRONG_K0) / ion_mass("CeO2-") - 1) > 600e-6
    # after: within 2 ppm at CeO2- (172 u), its 1σ under 1 ppm
    assert abs(true_ppm(full, "CeO2-")) < 2.0
    ceo2 = FRAGMENTS.index("CeO2-")
    assert full.fragment_error_ppm[ceo2] < 1.0
    # light ions only: CeO2- is extrapolated (flagged), its error larger, in σ and in truth
    assert light.extrapolated(ion_mass("CeO2-"))
    assert light.fragment_error_ppm[ceo2] > 1.5 * full.fragment_error_ppm[ceo2]
    assert abs(true_ppm(light, "CeO2-")) > abs(true_ppm(full, "CeO2-"))
    record = full.to_record()
    row = next(r for r in record["fragments"] if r["fragment"] == "CeO2-")
    assert row["extrapolated"] is False and row["error_ppm"] == pytest.approx(
        full.fragment_error_ppm[ceo2]
    )


def test_missing_heavy_ions_are_reported_not_silently_extrapolated(tmp_path):
    spectrum = grd_spectrum(tmp_path, None, seed=1)  # the writer's default: light ions only
    fit = fit_calibration(spectrum, WRONG_SF, WRONG_K0, polarity="negative", fragments=FRAGMENTS)
    heavy = [ion for ion in fit.ions if ion not in CALIBRATION_IONS["negative"]]
    assert heavy and set(heavy) <= set(fit.missing)
    assert {fit.status[fit.ions.index(ion)] for ion in heavy} == {"not found"}
    assert fit.used_mass_range[1] == pytest.approx(ion_mass("Cl-"))
    record = fit.to_record()
    assert set(heavy) <= set(record["missing"])
    rows = {r["fragment"]: r for r in record["fragments"]}
    assert rows["CeO2-"]["extrapolated"] is True and rows["NiO2-"]["extrapolated"] is True
    assert rows["CeO2-"]["error_ppm"] > rows["C2HO-"]["error_ppm"] > 0
    # the lazy xarray variant reports the same per fragment
    ds = calibrate(
        xr.DataArray(spectrum, dims="tof_channel"),
        WRONG_SF,
        WRONG_K0,
        polarity="negative",
        fragments=FRAGMENTS,
    ).compute()
    assert bool(ds.extrapolated.sel(fragment="CeO2-"))
    np.testing.assert_allclose(ds.fragment_error_ppm, fit.fragment_error_ppm, rtol=1e-9)


def test_insignificant_peak_is_not_used():
    rng = np.random.default_rng(4)
    n_channels = int(mass_to_tof(40.0, SF, K0))
    tofs = [rng.integers(0, n_channels, 12 * n_channels)]  # 12 counts per channel
    for ion in CALIBRATION_IONS["negative"]:
        centre = mass_to_tof(ion_mass(ion), SF, K0)
        tofs.append(np.rint(rng.normal(centre, (centre - K0) / 1e4 / 2.3548, 20000)).astype(int))
    # C3- (36 u): 80 counts over ~130 channels of 12 counts: ~2σ, though above min_counts
    centre = mass_to_tof(ion_mass("C3-"), SF, K0)
    tofs.append(np.rint(rng.normal(centre, (centre - K0) / 1e4 / 2.3548, 80)).astype(int))
    spectrum = np.bincount(np.concatenate(tofs), minlength=n_channels)[:n_channels]
    fit = fit_calibration(spectrum, SF, K0, ions=[*CALIBRATION_IONS["negative"], "C3-"])
    c3 = fit.ions.index("C3-")
    assert not fit.used[c3]
    assert fit.status[c3] in {"not significant", "not found"}
    assert fit.significance[c3] < 5.0
    assert fit.used[:c3].all()
    assert fit.significance[0] > 50.0


def test_absent_heavy_ions_do_not_make_a_sample_grow():
    from tofsims.spectrum_sampling import _needed_events

    rng = np.random.default_rng(8)
    n_channels = int(mass_to_tof(200.0, SF, K0))
    tofs = [rng.integers(0, n_channels, n_channels // 2)]  # 0.5 counts per channel
    for ion in CALIBRATION_IONS["negative"]:
        centre = mass_to_tof(ion_mass(ion), SF, K0)
        tofs.append(np.rint(rng.normal(centre, (centre - K0) / 1e4 / 2.3548, 5000)).astype(int))
    spectrum = np.bincount(np.concatenate(tofs), minlength=n_channels)[:n_channels]
    fit = fit_calibration(spectrum, SF, K0, polarity="negative", fragments=FRAGMENTS)
    assert len(fit.missing) >= 10
    # a 1 % sample whose error is already small enough stays as it is
    assert _needed_events(fit, 0.1, 10**6, 0.01, 1.0, 20.0) == 10**6


def test_weak_but_real_heavy_peak_asks_for_a_larger_sample():
    from tofsims.spectrum_sampling import _needed_events

    rng = np.random.default_rng(8)
    n_channels = int(mass_to_tof(200.0, SF, K0))
    tofs = [rng.integers(0, n_channels, n_channels // 2)]
    for ion in CALIBRATION_IONS["negative"]:
        centre = mass_to_tof(ion_mass(ion), SF, K0)
        tofs.append(np.rint(rng.normal(centre, (centre - K0) / 1e4 / 2.3548, 5000)).astype(int))
    # C3- with 3-5σ in this sample: a 1 % sample of a file where it is ~30σ or more
    centre = mass_to_tof(ion_mass("C3-"), SF, K0)
    tofs.append(np.rint(rng.normal(centre, (centre - K0) / 1e4 / 2.3548, 60)).astype(int))
    spectrum = np.bincount(np.concatenate(tofs), minlength=n_channels)[:n_channels]
    fit = fit_calibration(spectrum, SF, K0, polarity="negative", fragments=FRAGMENTS)
    c3 = fit.ions.index("C3-")
    assert fit.status[c3] == "not significant" and 3.0 <= fit.significance[c3] < 5.0
    needed = _needed_events(fit, 0.1, 10**6, 0.01, 1.0, 20.0)
    assert needed >= 10**6 * (5.0 / fit.significance[c3]) ** 2
