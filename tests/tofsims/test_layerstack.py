"""MRI depth resolution, the layer-stack forward model and its Poisson fit."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import xarray as xr
from scipy.special import erf, ndtri

from tests.tofsims_helpers import raise_if_dask_computes
from tofsims.depth import depth_constant_rate
from tofsims.errors import AnalysisError
from tofsims.interfaces import two_marker_crossing
from tofsims.layerstack import StackModel, fit_stack, stack_expectation
from tofsims.resolution import MriResolution, mri_cdf, mri_pdf
from tofsims.stackfit import PARAMETERS, fit_layer_stack, lateral_mixture

INTERVALS = np.stack([np.arange(250) * 0.1, np.arange(1, 251) * 0.1], axis=1)  # 0.1 nm/scan
FRAGMENTS = ["LiF2-", "C2HO-", "CeO2-", "NiO2-"]
#: counts per scan (whole field) per component: cei, coating, bulk, surface
LEVELS = np.array(
    [[2000, 80, 30, 0], [2500, 80, 40, 1500], [15, 2200, 15, 0], [30, 200, 1600, 0]], float
)


@pytest.mark.parametrize(("sigma", "w", "lam"), [(0.8, 1.0, 0.3), (0.5, 0.0, 0.7), (0.3, 2.0, 0)])
def test_mri_cdf_matches_monte_carlo(sigma, w, lam):
    rng = np.random.default_rng(1)
    n = 400_000
    offsets = (
        rng.normal(0, sigma, n) + w * (rng.exponential(size=n) - 1) - lam * rng.exponential(size=n)
    )
    t = np.linspace(-5, 6, 12)
    empirical = (offsets[:, None] <= t).mean(axis=0)
    np.testing.assert_allclose(mri_cdf(t, sigma, w, lam), empirical, atol=3e-3)
    grid = np.linspace(-30, 30, 60001)
    density = mri_pdf(grid, sigma, w, lam)
    assert np.trapezoid(density, grid) == pytest.approx(1, abs=1e-4)
    # mixing has mean 0; the information depth shifts every feature towards the surface by λ
    assert np.trapezoid(density * grid, grid) == pytest.approx(-lam, abs=1e-3)


def test_gaussian_limit_is_an_erf_edge():
    t = np.linspace(-3, 3, 13)
    np.testing.assert_allclose(mri_cdf(t, 0.7), 0.5 * (1 + erf(t / (np.sqrt(2) * 0.7))))
    # 16–84 % of an erf edge: 2·Φ⁻¹(0.84)·σ (≈ 2σ)
    assert MriResolution(0.7).width_16_84() == pytest.approx(2 * ndtri(0.84) * 0.7, rel=1e-4)
    with pytest.raises(ValueError, match="σ > 0"):
        mri_cdf(t, 0.0)


def _model(coating: bool, **kwargs) -> StackModel:
    return StackModel(INTERVALS, coating=coating, **kwargs)


def _theta(model: StackModel, **values) -> np.ndarray:
    base = {
        "cei_nm": 3.0,
        "coating_nm": 2.0,
        "roughness_nm": 0.8,
        "mixing_nm": 1.0,
        "information_depth_nm": 0.3,
        "transient_fraction": 0.7,
        "transient_depth_nm": 1.0,
        **values,
    }
    return np.array([base[name] for name in model.names])


def test_basis_is_a_partition_of_the_layers_times_the_transient():
    model = _model(True)
    basis = model.basis(_theta(model))
    assert basis.shape == (4, 250)
    z_mid = INTERVALS.mean(axis=1)
    ramp = 1 - 0.7 * np.exp(-z_mid / 1.0)
    np.testing.assert_allclose(basis[:3].sum(axis=0), ramp, rtol=2e-3)
    # the coating layer peaks between the interfaces (3 and 5 nm, shifted by λ)
    assert 3.0 < z_mid[np.argmax(basis[1])] < 5.0


def test_noise_free_fit_recovers_the_stack():
    model = _model(True)
    truth = _theta(model)
    levels = LEVELS
    counts = stack_expectation(model, truth, levels)
    fit = fit_stack(counts, model)
    assert fit.converged
    np.testing.assert_allclose(fit.theta[:4], truth[:4], atol=2e-3)
    np.testing.assert_allclose(fit.expected(), counts, rtol=1e-3, atol=1e-3)


def test_poisson_fit_thickness_within_its_sigma():
    model = _model(True)
    truth = _theta(model, cei_nm=3.2, coating_nm=1.8)
    expected = stack_expectation(model, truth, LEVELS / 20)  # ~100 counts per scan at most
    rng = np.random.default_rng(3)
    pulls = []
    for _ in range(4):
        fit = fit_stack(rng.poisson(expected), model)
        pulls.append((fit.theta[:2] - truth[:2]) / fit.theta_std[:2])
    pulls = np.array(pulls)
    assert np.all(np.isfinite(pulls))
    assert np.abs(pulls).max() < 4.5
    assert 0.3 < np.std(pulls) < 2.5


def _profile(counts: np.ndarray) -> xr.DataArray:
    profile = xr.DataArray(
        counts,
        dims=("fragment", "scan"),
        coords={
            "fragment": FRAGMENTS[: counts.shape[0]],
            "scan": np.arange(counts.shape[1]),
            "sputter_time": ("scan", 2.0 * np.arange(counts.shape[1])),
        },
    )
    return depth_constant_rate(profile, 0.05)


def test_fit_layer_stack_finds_the_coating_and_its_model_terms():
    model = _model(True)
    counts = np.random.default_rng(4).poisson(stack_expectation(model, _theta(model), LEVELS))
    fit = fit_layer_stack(_profile(counts)).compute()
    assert list(fit["parameter"].values) == list(PARAMETERS)
    assert bool(fit["coating_present"]) and float(fit["coating_lr"]) > 100
    value = fit["value"]
    assert float(value.sel(parameter="cei_nm")) == pytest.approx(3.0, abs=0.1)
    assert float(value.sel(parameter="coating_nm")) == pytest.approx(2.0, abs=0.1)
    assert float(value.sel(parameter="information_depth_nm")) == 0.3  # fixed, not fitted
    assert np.isnan(float(fit["std"].sel(parameter="information_depth_nm")))
    # moving λ by ±0.15 nm moves the CEI interface by about as much, the coating hardly
    shift = fit["information_depth_shift"]
    assert float(shift.sel(parameter="cei_nm")) == pytest.approx(0.15, abs=0.05)
    assert float(shift.sel(parameter="coating_nm")) < 0.03
    assert np.isfinite(float(fit["jackknife_std"].sel(parameter="cei_nm")))
    assert fit["fitted"].dims == ("fragment", "scan")
    coating_levels = fit["levels"].sel(component="coating").values
    assert int(np.argmax(coating_levels)) == FRAGMENTS.index("CeO2-")


def test_no_coating_is_invented_and_lateral_mixture_is_used():
    model = _model(False)
    theta = _theta(model, cei_nm=8.0)
    levels = LEVELS[[0, 1, 3]][:, [0, 2, 3]]
    offsets, weights = lateral_mixture(np.linspace(6, 10, 50), None)
    assert offsets.size == 12 and weights.sum() == pytest.approx(1)
    mixed = StackModel(INTERVALS, offsets=offsets, weights=weights)
    counts = np.random.default_rng(5).poisson(stack_expectation(mixed, theta, levels))
    profile = _profile(counts)
    uniform = fit_layer_stack(profile, jackknife=False).compute()
    assert not bool(uniform["coating_present"])
    lateral = xr.DataArray(np.linspace(6, 10, 50), dims="bin")
    informed = fit_layer_stack(profile, lateral_thickness=lateral, jackknife=False).compute()
    # without the lateral distribution the spread is taken for depth resolution
    rough_uniform = float(uniform["value"].sel(parameter="roughness_nm"))
    rough_informed = float(informed["value"].sel(parameter="roughness_nm"))
    assert rough_informed == pytest.approx(0.8, abs=0.15)
    assert rough_uniform > rough_informed + 0.3
    assert float(informed["value"].sel(parameter="cei_nm")) == pytest.approx(8.0, abs=0.1)


def test_fit_layer_stack_is_lazy_and_vectorised_over_rois():
    model = _model(False)
    levels = LEVELS[[0, 1, 3]][:, [0, 2, 3]]
    rng = np.random.default_rng(6)
    rois = np.stack(
        [rng.poisson(stack_expectation(model, _theta(model, cei_nm=d), levels)) for d in (4, 6)]
    )
    profile = _profile(rois[0]).expand_dims(roi=2).copy(data=da.from_array(rois, chunks=1))
    with raise_if_dask_computes():
        fit = fit_layer_stack(profile, coating=False, jackknife=False)
    assert fit["value"].dims == ("roi", "parameter")
    values = fit["value"].sel(parameter="cei_nm").values
    np.testing.assert_allclose(values, [4, 6], atol=0.1)


def test_bad_options():
    profile = _profile(np.ones((2, 250)))
    with pytest.raises(AnalysisError, match="resolution model"):
        fit_layer_stack(profile, resolution="lorentz")
    with pytest.raises(AnalysisError, match="information depth"):
        fit_layer_stack(profile, information_depth_nm=-1)
    with pytest.raises(AnalysisError, match="fragment"):
        fit_layer_stack(profile.rename(fragment="channel"))


def test_two_marker_crossing_measures_between_cei_and_cei_plus_coating():
    # noise-free, equal edges: the crossing of max-normalised CEI and bulk markers lies between
    # the CEI interface (3 nm) and the bulk interface (5 nm) — neither CEI nor CEI + coating
    model = _model(True, resolution="gauss", information_depth_nm=0.0)
    theta = _theta(model, transient_fraction=0.0)
    counts = stack_expectation(model, theta, LEVELS)
    profile = _profile(counts)
    crossing = two_marker_crossing(
        profile.sel(fragment="LiF2-"), profile.sel(fragment="NiO2-"), n_boot=0
    )
    position = float(crossing["position"])
    assert 3.3 < position < 4.7
    assert position == pytest.approx(4.0, abs=0.35)  # ≈ CEI + coating / 2
