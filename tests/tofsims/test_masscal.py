"""Mass calibration: conversions, centroids, SF/K0 refit within 20 ppm, failures."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import xarray as xr

import tofsims.calibration_peaks
import tofsims.masscal
from tofsims.calibration_peaks import centroid_peak, locate_peaks
from tofsims.errors import AnalysisError
from tofsims.fragments import CALIBRATION_IONS, ion_mass
from tofsims.masscal import (
    calibrate,
    fit_sf_k0,
    mass_to_tof,
    tof_to_mass,
    window_channels,
)

TRUE_SF, TRUE_K0 = 72013.7, -2131.4


def gaussian_tofs(rng, mass, n, resolution=5000.0):
    centre = mass_to_tof(mass, TRUE_SF, TRUE_K0)
    sigma = (centre - TRUE_K0) / (2 * resolution) / 2.3548
    return np.rint(centre + sigma * rng.standard_normal(n)).astype(np.int64)


def synthetic_spectrum(polarity="negative", counts=50000, seed=1, background=200000):
    rng = np.random.default_rng(seed)
    n_channels = int(mass_to_tof(60, TRUE_SF, TRUE_K0))
    tofs = [rng.integers(0, n_channels, background)]
    tofs += [gaussian_tofs(rng, ion_mass(ion), counts) for ion in CALIBRATION_IONS[polarity]]
    spectrum = np.bincount(np.concatenate(tofs), minlength=n_channels)[:n_channels]
    return xr.DataArray(spectrum, dims="tof_channel", attrs={"polarity": polarity})


def test_conversions_are_inverse():
    mass = np.array([1.00837, 41.00329, 171.89582])
    tof = mass_to_tof(mass, TRUE_SF, TRUE_K0)
    assert tof[1] == pytest.approx(TRUE_SF * np.sqrt(41.00329) + TRUE_K0)
    np.testing.assert_allclose(tof_to_mass(tof, TRUE_SF, TRUE_K0), mass, rtol=1e-12)
    first, last = window_channels(41.0, 41.01, TRUE_SF, TRUE_K0)
    assert tof_to_mass(first, TRUE_SF, TRUE_K0) >= 41.0
    assert tof_to_mass(first - 1, TRUE_SF, TRUE_K0) < 41.0
    assert tof_to_mass(last, TRUE_SF, TRUE_K0) <= 41.01 < tof_to_mass(last + 1, TRUE_SF, TRUE_K0)


def test_centroid_of_a_gaussian_peak():
    rng = np.random.default_rng(3)
    spectrum = np.bincount(rng.normal(5000.3, 4.0, 50000).round().astype(int), minlength=10000)
    centre, error, counts = centroid_peak(spectrum.astype(float), 5010.0, 200.0)
    assert centre == pytest.approx(5000.3, abs=0.06)
    assert error == pytest.approx(4.0 / np.sqrt(50000), rel=0.2)
    assert counts == pytest.approx(50000, rel=0.01)
    assert np.isnan(centroid_peak(np.zeros(10000), 5000.0, 100.0)[0])


def test_locate_peaks_uses_only_found_significant_peaks():
    rng = np.random.default_rng(3)
    spectrum = np.bincount(rng.normal(5000.3, 4.0, 50000).round().astype(int), minlength=10000)
    spectrum = spectrum.astype(float)
    centroid, error, counts, significance, usable = locate_peaks(
        spectrum, np.array([5010.0, 8000.0]), np.array([200.0, 100.0]), 20.0, 5.0
    )
    assert (centroid[0], error[0], counts[0]) == centroid_peak(spectrum, 5010.0, 200.0)
    assert significance[0] > 5.0 and np.isnan(centroid[1])
    assert usable.tolist() == [True, False]


def test_peak_functions_are_importable_from_masscal():
    for name in ("centroid_peak", "peak_significance"):
        assert name in tofsims.masscal.__all__
        assert getattr(tofsims.masscal, name) is getattr(tofsims.calibration_peaks, name)


def test_fit_exact_points():
    masses = np.array([1.00837, 12.00055, 18.99895, 34.9694])
    sf, k0, residual = fit_sf_k0(masses, mass_to_tof(masses, TRUE_SF, TRUE_K0), np.ones(4))
    assert sf == pytest.approx(TRUE_SF, rel=1e-12)
    assert k0 == pytest.approx(TRUE_K0, abs=1e-6)
    np.testing.assert_allclose(residual, 0.0, atol=1e-6)


@pytest.mark.parametrize("polarity", ["negative", "positive"])
def test_refit_recovers_sf_k0_within_20_ppm(polarity):
    spectrum = synthetic_spectrum(polarity)
    start_sf, start_k0 = TRUE_SF * (1 + 3e-4), TRUE_K0 + 15.0  # 300 ppm and 15 channels off
    result = calibrate(spectrum, start_sf, start_k0).compute()
    assert abs(float(result.sf) - TRUE_SF) / TRUE_SF < 20e-6
    assert abs(float(result.k0) - TRUE_K0) / abs(TRUE_K0) < 20e-6
    assert bool(result.used.all())
    assert float(np.abs(result.residual_ppm).max()) < 5.0
    assert result.attrs["sf_start"] == start_sf
    # the starting calibration was off by ~hundreds of ppm at the peaks
    start_error = (tof_to_mass(result.tof_centroid, start_sf, start_k0) - result.mass) / result.mass
    assert float(np.abs(start_error).max()) > 200e-6


def test_calibrate_is_lazy_on_dask_input():
    spectrum = synthetic_spectrum()
    lazy = spectrum.copy(data=da.from_array(spectrum.values, chunks=100000))
    result = calibrate(lazy, TRUE_SF, TRUE_K0)
    assert isinstance(result.sf.data, da.Array)
    assert abs(float(result.sf.compute()) - TRUE_SF) / TRUE_SF < 20e-6


def test_outlier_peak_is_rejected():
    spectrum = synthetic_spectrum()
    rng = np.random.default_rng(9)
    # a strong foreign peak 0.02 u above F-: its centroid is wrong for F-
    shifted = gaussian_tofs(rng, ion_mass("F-") + 0.02, 500000)
    values = spectrum.values + np.bincount(shifted, minlength=spectrum.size)[: spectrum.size]
    result = calibrate(spectrum.copy(data=values), TRUE_SF, TRUE_K0).compute()
    used = dict(zip(result.ion.values.tolist(), result.used.values.tolist(), strict=True))
    assert used["F-"] is False
    assert abs(float(result.sf) - TRUE_SF) / TRUE_SF < 20e-6


def test_too_few_peaks_raise():
    spectrum = synthetic_spectrum(counts=0)
    with pytest.raises(AnalysisError, match="only 0 calibration peak"):
        calibrate(spectrum, TRUE_SF, TRUE_K0, min_counts=50).compute()
    with pytest.raises(AnalysisError, match="polarity"):
        calibrate(spectrum.assign_attrs(polarity=None), TRUE_SF, TRUE_K0)
