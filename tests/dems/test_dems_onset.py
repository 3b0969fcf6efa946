"""Onset detection on exact synthetic ramps."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from dems.onset import Onset, detect_onset, tangent_onset, threshold_onset


def _ramp(onset_V=4.30, noise=1e-12, slope=2e-9, seed=0):
    rng = np.random.default_rng(seed)
    time = np.arange(0.0, 3600.0, 2.0)
    potential = 3.9 + 0.6 * time / 3600.0
    flux = slope * np.clip(potential - onset_V, 0, None) + rng.normal(0, noise, time.size)
    baseline = time < 900
    return time, potential, flux, baseline


def _flux(time, potential, flux):
    return xr.DataArray(flux, dims="time", coords={"time": time, "potential": ("time", potential)})


def test_threshold_crossing_is_late_by_about_k_sigma_over_slope_and_located_back():
    time, potential, flux, baseline = _ramp()
    result = threshold_onset(potential, flux, baseline, k=3, persistence=5, time=time)
    expected_bias = 3 * 1e-12 / 2e-9
    assert result.crossing_V == pytest.approx(4.30 + expected_bias, abs=3e-3)
    # the flank extrapolated back to the baseline removes that lag
    assert result.potential_V == pytest.approx(4.30, abs=1e-3)
    assert result.potential_V < result.crossing_V
    assert result.baseline_sigma == pytest.approx(1e-12, rel=0.2)


def test_tangent_onset_recovers_a_hinge():
    _time, potential, flux, baseline = _ramp()
    assert tangent_onset(potential, flux, baseline).potential_V == pytest.approx(4.30, abs=3e-3)


def test_no_onset_when_the_gas_never_rises():
    time, potential, flux, baseline = _ramp(onset_V=9.0)
    result = detect_onset(_flux(time, potential, flux), baseline)
    assert isinstance(result, Onset) and not result.detected
    as_json = result.to_dict()
    assert as_json["potential_V"] is None
    assert as_json["uncertainty_V"] is None
    assert "never stayed above" in as_json["reason"]
    assert as_json["max_potential_V"] == pytest.approx(potential.max())


def test_single_spikes_do_not_fire_the_persistence_rule():
    _time, potential, flux, baseline = _ramp(onset_V=9.0)
    flux[1200:1203] += 1e-10  # three-sample spike
    assert threshold_onset(potential, flux, baseline, persistence=5).potential_V is None
    assert threshold_onset(potential, flux, baseline, persistence=2).potential_V is not None


def test_uncertainty_budget_and_method_choice():
    time, potential, flux, baseline = _ramp(noise=5e-12)
    ramp = _flux(time, potential, flux)
    result = detect_onset(ramp, baseline, delay_uncertainty_s=2.0).to_dict()
    terms = result["uncertainty_terms_V"]
    assert set(terms) == {"sampling", "alignment", "noise", "background", "criterion", "method"}
    assert terms["alignment"] == pytest.approx(0.6 / 3600 * 2.0, rel=0.05)
    assert result["uncertainty_V"] == pytest.approx(np.sqrt(sum(v**2 for v in terms.values())))
    # the true onset lies inside the reported interval (2 u)
    assert abs(result["potential_V"] - 4.30) < 2 * result["uncertainty_V"]
    tangent = detect_onset(ramp, baseline, method="tangent").to_dict()
    assert tangent["method"] == "tangent"
    assert tangent["potential_V"] == tangent["alternatives"]["tangent"]
    with pytest.raises(ValueError, match="unknown onset method"):
        detect_onset(ramp, baseline, method="guess")


def test_too_short_baseline_gives_a_reason():
    time, potential, flux, _ = _ramp()
    baseline = np.zeros(time.size, bool)
    baseline[:3] = True
    result = detect_onset(_flux(time, potential, flux), baseline)
    assert result.potential_V is None and "fewer than 5" in result.reason
