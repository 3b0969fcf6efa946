"""Time to maximum / plateau with σ, the uncertainty budget, input checks, realistic synthetics."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from tests.tofsims_helpers import raise_if_dask_computes
from tofsims.budget import BUDGET_TERMS, estimator_spread, uncertainty_budget
from tofsims.checks import static_acquisition, surface_marker_diagnostics, surface_marker_warning
from tofsims.depth import depth_constant_rate
from tofsims.interfaces import layer_marker
from tofsims.io import open_tofsims
from tofsims.profiles import depth_profile, select_fragment
from tofsims.synthetic import layered_sample
from tofsims.timing import time_to_maximum, time_to_plateau

DATA = Path(__file__).parents[1] / "data" / "tofsims" / "uhasselt_surfacelab73_depth_profiles"


def _real(name: str) -> xr.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # incomplete last cycle dropped
        return open_tofsims(DATA / name)


@pytest.fixture(scope="module")
def thin():
    volume, truth = layered_sample("thin", seed=3, ny=32, nx=32)
    profile = depth_profile(depth_constant_rate(volume, 0.05))
    return profile, truth


def test_time_to_maximum_of_a_peaked_marker(thin):
    profile, truth = thin
    counts = select_fragment(profile["intensity"], "LiF2-")
    result = time_to_maximum(counts, n_boot=30)
    expected = truth.expected.sel(fragment="LiF2-").values
    true_peak = 2.0 * float(np.argmax(expected))  # s, scan starts
    for name in ("position", "fitted_position"):
        sigma = float(result[f"{name}_std"])
        assert 0 < sigma < 5
        assert float(result[name]) == pytest.approx(true_peak, abs=max(4 * sigma, 2.0))
    assert result["position"].attrs["units"] == "s"
    assert float(result["fitted_level"]) == pytest.approx(expected.max(), rel=0.1)


def test_time_to_plateau_of_the_bulk(thin):
    profile, truth = thin
    counts = select_fragment(profile["intensity"], "NiO2-")
    result = time_to_plateau(counts, coord="depth", n_boot=20)
    expected = truth.expected.sel(fragment="NiO2-").values
    plateau = expected[-50:].mean()
    depth = 0.1 * np.arange(expected.size)
    true_90 = depth[np.argmax(expected >= 0.9 * plateau)]
    assert float(result["position"]) == pytest.approx(true_90, abs=0.3)
    assert float(result["position_50"]) < float(result["position"])
    # the bulk reaches half its plateau past the CEI + coating (5 nm), blurred by the resolution
    assert 3.5 < float(result["position_50"]) < 6.0
    assert 0 < float(result["position_std"]) < 0.5
    assert float(result["plateau"]) == pytest.approx(plateau, rel=0.05)


def test_timing_is_lazy():
    volume, _ = layered_sample("pristine", ny=8, nx=8, n_scans=30, chunks={"y": 4})
    with raise_if_dask_computes():
        profile = depth_profile(volume)
        result = time_to_maximum(select_fragment(profile["intensity"], "C2HO-"), n_boot=5)
        plateau = time_to_plateau(select_fragment(profile["intensity"], "NiO2-"), n_boot=5)
    assert result["position"].chunks is not None and plateau["position"].chunks is not None


def test_fitted_level_is_not_raised_by_noise():
    # whole-field profiles at ~100 counts per scan: the maximum of the raw profile sits well
    # above the true maximum (the largest of many noisy points), the log-quadratic fit does not
    raw, fitted, true = [], [], []
    for seed in range(4):
        volume, truth = layered_sample("thin", seed=seed, ny=32, nx=32, marker_peak=("LiF2-", 0.1))
        counts = select_fragment(depth_profile(volume)["intensity"], "LiF2-")
        raw.append(float(counts.max()))
        fitted.append(float(time_to_maximum(counts, n_boot=0)["fitted_level"]))
        true.append(float(truth.expected.sel(fragment="LiF2-").max()))
    raw, fitted, true = np.array(raw), np.array(fitted), np.array(true)
    assert np.mean(raw / true) > 1.08
    assert np.mean(fitted / true) == pytest.approx(1, abs=0.06)


def test_layer_marker_fitted_level(thin):
    profile, _ = thin
    counts = select_fragment(profile["intensity"], "LiF2-")
    by_max = layer_marker(counts, n_boot=0)
    by_fit = layer_marker(counts, n_boot=0, level="fitted")
    assert json.loads(by_fit.attrs["method"])["level"].startswith("log-quadratic")
    assert float(by_fit["position_50"]) == pytest.approx(float(by_max["position_50"]), abs=0.3)
    with pytest.raises(ValueError, match="unknown level"):
        layer_marker(counts, level="median")


def test_budget_terms_and_combination():
    budget = uncertainty_budget(
        8.0,
        statistical=0.03,
        estimates={"map mean": 8.0, "stack fit": 8.2},
        information_depth=0.15,
        fragment_consistency=0.02,
        lateral_std=1.6,
        n_bins=256,
        rate_relative_uncertainty=0.1,
    )
    terms = dict(zip(budget["term"].values, budget["uncertainty"].values, strict=True))
    assert list(terms) == list(BUDGET_TERMS)
    assert terms["estimator"] == pytest.approx(0.2 / np.sqrt(2))
    assert terms["lateral_sampling"] == pytest.approx(0.1)
    assert terms["sputter_rate"] == pytest.approx(0.8)
    assert float(budget["combined"]) == pytest.approx(np.sqrt(sum(v**2 for v in terms.values())))
    assert float(budget["lateral_std"]) == 1.6  # reported, not combined
    timing = uncertainty_budget(
        60.0, statistical=2.0, scales_with_rate=False, rate_relative_uncertainty=0.1, units="s"
    )
    assert float(timing["uncertainty"].sel(term="sputter_rate")) == 0
    assert float(estimator_spread({"only": 3.0})) == 0
    with pytest.raises(ValueError, match="sputter-rate"):
        uncertainty_budget(1.0, statistical=0.1, rate_relative_uncertainty=-1)


def test_static_acquisition_is_recognised():
    static = _real("I241213h_M_PCBM-ref_2D_neg-B1 - NF.txt")
    assert "static" in static_acquisition(static)
    depth = _real("I241209p_A_MAPI_1f-1nA_neg-B4 - NF.txt")
    assert static_acquisition(depth) is None
    low_fluence = depth.assign_coords(fluence=depth["fluence"] / 100).assign_attrs(
        acquisition="depth profile"
    )
    assert "fluence reaches only" in static_acquisition(low_fluence)
    grd_attrs = xr.Dataset(attrs={"sputter_time_reason": "Analysis.SputterTime is 0 s (...)"})
    assert "static" in static_acquisition(grd_attrs)


def test_buried_marker_is_flagged_and_surface_films_are_not():
    mapi = _real("I241209p_A_MAPI_1f-1nA_neg-B4 - NF.txt")
    po3 = select_fragment(mapi["intensity"], "PO3-")  # peaks at the MAPI/SnO2 interface
    diagnostics = surface_marker_diagnostics(po3).compute()
    assert "buried" in surface_marker_warning(diagnostics, "PO3-")
    with_bulk = surface_marker_diagnostics(po3, select_fragment(mapi["intensity"], "InO2-"))
    assert "buried" in surface_marker_warning(with_bulk.compute(), "PO3-", "InO2-")
    for preset in ("pristine", "modified", "cycled", "thin"):
        volume, _ = layered_sample(preset, seed=1, ny=16, nx=16)
        profile = depth_profile(volume)["intensity"]
        for marker in ("LiF2-", "C2HO-", "PO3-"):
            found = surface_marker_diagnostics(
                select_fragment(profile, marker), select_fragment(profile, "NiO2-")
            ).compute()
            assert surface_marker_warning(found, marker, "NiO2-") is None, (preset, marker)


def test_synthetic_realities_with_ground_truth():
    volume, truth = layered_sample("thin", seed=2, ny=16, nx=16, marker_peak=("LiF2-", 0.1))
    assert float(truth.peak_counts.sel(fragment="LiF2-")) == pytest.approx(0.1)
    assert volume.attrs["synthetic_count_scale"] == pytest.approx(truth.count_scale)
    assert truth.resolution.mixing_nm == 1.0 and truth.resolution.information_depth_nm == 0.3
    assert truth.coating_thickness_nm == 2.0
    assert float(truth.cei_thickness_nm.std()) > 0.05  # laterally varying
    expected = truth.expected.sel(fragment="C2HO-").values
    assert np.argmax(expected) < 10  # surface excess: C2HO- highest at the very surface
    assert volume["sputter_time"].values[0] == 0.0
    assert volume["sputter_time"].attrs["time_reference"] == "start"
