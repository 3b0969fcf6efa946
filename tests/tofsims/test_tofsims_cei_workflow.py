"""The CEI workflow (tofsims.workflows.cei) on the layer stack: thin CEI on a coating, a depth
profile, options and laziness."""

from __future__ import annotations

import numpy as np
import pytest

from operando_core.options import OptionError
from tests.tofsims_helpers import raise_if_dask_computes
from tofsims.budget import BUDGET_TERMS
from tofsims.depth import depth_constant_rate
from tofsims.profiles import depth_profile
from tofsims.synthetic import layered_sample
from tofsims.workflows import CeiOptions, cei

OPTIONS = {"sputter_rate_nm_per_s": 0.05, "marker": "LiF2-", "bulk": "NiO2-"}


@pytest.fixture(scope="module")
def thin():
    """3 nm CEI on a 2 nm CeO2 coating, 64 × 64 × 250, 0.55 LiF2− counts/pixel/scan."""
    volume, truth = layered_sample("thin", seed=7, chunks={"y": 32})
    with raise_if_dask_computes():  # building the analysis computes nothing
        run = cei(volume, CeiOptions(**OPTIONS, sputter_rate_uncertainty_nm_per_s=0.0025))
    return run, run.compute(), truth


def test_thin_cei_and_coating_within_0_3_nm(thin):
    _, result, truth = thin
    summary = result.summary
    assert summary.cei_thickness_nm == pytest.approx(float(truth.cei_thickness_nm.mean()), abs=0.3)
    assert summary.coating_thickness_nm == pytest.approx(truth.coating_thickness_nm, abs=0.3)
    values = summary.to_dict()
    assert values["layer_stack"]["coating_present"] is True
    assert values["coating_estimators"]["stack fit"] == summary.coating_thickness_nm
    assert "coating_nm" in values["layer_stack"]["parameters"]


def test_budgets_list_every_term_and_combine_them(thin):
    _, result, _ = thin
    values = result.summary.to_dict()
    for budget, combined, value in (
        (values["cei_thickness_nm"]["budget"], result.summary.cei_uncertainty_nm, None),
        (
            values["coating_budget"],
            values["coating_thickness_uncertainty_nm"],
            values["coating_thickness_nm"],
        ),
    ):
        assert list(budget) == list(BUDGET_TERMS)
        terms = np.array(list(budget.values()))
        assert combined == pytest.approx(float(np.sqrt((terms**2).sum())))
        if value is not None:  # 5 % rate uncertainty -> 5 % of the thickness
            assert budget["sputter_rate"] == pytest.approx(0.05 * value)
    # the information-depth prior moves the interfaces together: coating term ≪ CEI term
    cei_term = values["cei_thickness_nm"]["budget"]["information_depth"]
    assert values["coating_budget"]["information_depth"] < 0.5 * cei_term


def test_two_marker_crossing_says_what_it_measures(thin):
    _, result, truth = thin
    crossing = result.summary.to_dict()["two_marker_crossing_nm"]
    cei_mean = float(truth.cei_thickness_nm.mean())
    # between the CEI interface and the bulk interface (CEI + coating), as documented
    assert cei_mean < crossing["value"] < cei_mean + truth.coating_thickness_nm
    assert "not CEI + coating" in crossing["method"] or "neither" in crossing["method"]


def test_the_map_is_the_stack_map(thin):
    run, result, _ = thin
    assert run.is_volume and set(run.stack_fragments) == {
        "LiF2-",
        "C2HO-",
        "PO3-",
        "CeO2-",
        "NiO2-",
    }
    thickness = result.map["thickness"]
    assert thickness.shape == (16, 16)
    assert float(thickness.mean()) == pytest.approx(result.summary.cei_thickness_nm)
    assert {"thickness_std", "valid", "mask", "bin_size", "reason"} <= set(result.map.data_vars)


def test_a_depth_profile_gets_the_stack_fit():
    volume, truth = layered_sample("modified", seed=8, ny=32, nx=32, information_depth_nm=0.3)
    profile = depth_profile(volume).compute()
    result = cei(profile, CeiOptions(**OPTIONS)).compute()
    values = result.summary.to_dict()
    cei_values = values["cei_thickness_nm"]
    assert result.map is None and cei_values["method"] == "stack fit"
    assert cei_values["mean"] == cei_values["whole_field"] == cei_values["median"]
    assert cei_values["mean"] == pytest.approx(float(truth.cei_thickness_nm.mean()), abs=0.3)
    assert values["coating_thickness_nm"] == pytest.approx(truth.coating_thickness_nm, abs=0.3)
    assert cei_values["budget"]["lateral_sampling"] == 0  # no map
    assert cei_values["lateral_std"] is None and "stack map" not in cei_values["estimators"]


def test_stack_options_reach_the_fit():
    volume, _ = layered_sample("modified", seed=9, ny=16, nx=16, n_scans=120)
    profile = depth_profile(depth_constant_rate(volume, 0.05)).compute()
    run = cei(profile, CeiOptions(**OPTIONS, coating="no", stack_fragments="LiF2-,NiO2-"))
    values = run.compute().summary.to_dict()
    assert values["layer_stack"]["fragments"] == ["LiF2-", "NiO2-"]
    assert values["layer_stack"]["coating_present"] is False
    assert values["coating_thickness_nm"] is None
    assert "--coating no" in values["null_reasons"]["coating_thickness_nm"]
    with pytest.raises(OptionError, match="Xx- not in the data"):
        cei(profile, CeiOptions(**OPTIONS, stack_fragments="LiF2-,Xx-"))
