"""The anchored drift model: P-spline fit, its band, anchor search and carrier-channel steps."""

from __future__ import annotations

import numpy as np
import pytest

from dems.background import reference_steps
from dems.drift import DriftModel, find_anchors, fit_drift, trapezoid_weights
from dems.synthetic import SCENARIOS, make_experiment

SIGMA = 1e-12


def _drift(t):
    """A day of background: trend plus curvature (A)."""
    h = t / 3600.0 - 12.0
    return 2e-11 * (1 - 0.02 * h + 0.002 * h**2)


def _gas(t, start_h, top_h, end_h, height=5e-11):
    """A charge-like evolution: linear rise, then exponential tail."""
    h = t / 3600.0
    rise = np.clip((h - start_h) / (top_h - start_h), 0, 1) * (h < top_h)
    tail = np.exp(-(h - top_h) / 0.3) * (h >= top_h) * (h < end_h + 3)
    return height * (rise + tail)


def _day(seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(0.0, 24 * 3600.0, 4.0)
    gas = _gas(t, 3.0, 5.0, 5.5) + _gas(t, 13.0, 15.0, 15.5)
    return t, _drift(t) + gas + rng.normal(0, SIGMA, t.size), gas


def test_penalised_spline_follows_the_drift_and_its_band_grows_in_a_gap():
    t, _, _ = _day()
    rng = np.random.default_rng(1)
    signal = _drift(t) + rng.normal(0, SIGMA, t.size)
    anchors = (t < 8 * 3600) | (t > 14 * 3600)  # a 6 h gap
    model = DriftModel(float(t[0]), float(t[-1]), 3600.0)
    fit = fit_drift(t, signal, anchors, model)
    error = fit(t) - _drift(t)
    band = fit.band(t)
    assert np.abs(error[anchors]).max() < 4 * band[anchors].max() + 0.1 * SIGMA
    assert band[~anchors].max() > 3 * band[anchors].mean()  # honest about the gap
    assert fit.sigma == pytest.approx(SIGMA, rel=0.05)
    # the integral's uncertainty is that of the band, fully correlated at most
    inside = ~anchors
    g_sd = fit.integral_sd(t[inside])
    assert 0 < g_sd <= np.sum(band[inside] * trapezoid_weights(t[inside])) * 1.0001


def test_band_covers_the_true_drift_over_seeds():
    t = np.arange(0.0, 24 * 3600.0, 8.0)
    anchors = (t < 8 * 3600) | (t > 12 * 3600)
    model = DriftModel(float(t[0]), float(t[-1]), 3600.0)
    z = []
    for seed in range(20):
        signal = _drift(t) + np.random.default_rng(seed).normal(0, SIGMA, t.size)
        fit = fit_drift(t, signal, anchors, model)
        at = np.array([2, 10, 18]) * 3600.0  # in anchors, in the gap, in anchors
        z += list(np.abs(fit(at) - _drift(at)) / fit.band(at))
    assert np.mean(np.array(z) < 2) > 0.85


def _sparse_guess(t):
    """Three one-hour quiet windows over the day (as a few rests would give)."""
    h = t / 3600.0
    return (h < 1) | ((h > 9) & (h < 10)) | ((h > 20) & (h < 21))


def test_anchor_search_grows_from_a_sparse_first_guess_and_excludes_evolution():
    t, signal, gas = _day()
    anchors, fit = find_anchors(t, signal, _sparse_guess(t))
    evolving = gas > 0.3 * SIGMA
    assert not np.any(anchors & evolving)
    assert anchors.mean() > 0.6  # everything else is used
    quiet = np.abs(gas) < 1e-3 * SIGMA
    error = fit(t) - _drift(t)
    assert np.abs(error[quiet]).max() < 0.25 * SIGMA
    # under the evolution the drift is interpolated within its band
    assert np.all(np.abs(error[evolving]) < 4 * fit.band(t[evolving]) + 0.1 * SIGMA)


def test_steps_are_found_on_a_channel_without_gas_and_not_invented():
    t = np.arange(0.0, 24 * 3600.0, 4.0)
    rng = np.random.default_rng(3)
    clean = _drift(t) + rng.normal(0, SIGMA, t.size)
    _, fit = find_anchors(t, clean, np.isfinite(t), detect_steps=True)
    assert fit.model.steps_s == ()
    stepped = clean + 3 * SIGMA * (t >= 10 * 3600)
    _, fit = find_anchors(t, stepped, np.isfinite(t), detect_steps=True)
    assert len(fit.model.steps_s) == 1
    assert fit.model.steps_s[0] == pytest.approx(10 * 3600, abs=60)
    assert fit.coefficients[-1] == pytest.approx(3 * SIGMA, rel=0.1)


def test_known_steps_are_fitted_in_a_channel_with_gas():
    t, signal, gas = _day()
    signal = signal + 2 * SIGMA * (t >= 9.5 * 3600)
    _, without = find_anchors(t, signal, _sparse_guess(t))
    _, with_step = find_anchors(t, signal, _sparse_guess(t), steps_s=[9.5 * 3600.0])
    truth = _drift(t) + 2 * SIGMA * (t >= 9.5 * 3600)
    under_gas = gas > SIGMA
    error_with = np.abs(with_step(t) - truth)[under_gas].mean()
    error_without = np.abs(without(t) - truth)[under_gas].mean()
    assert error_with < 0.3 * SIGMA < error_without


def test_reference_steps_of_a_generated_run_with_a_flow_disturbance():
    experiment = make_experiment(
        seed=2, **{**SCENARIOS["incomplete_last_cycle"], "ms_cycle_s": 6.0}
    )
    steps = reference_steps(experiment.ms, 40.0).values
    found = steps[np.isfinite(steps)]
    assert found.size == 1 and found[0] == pytest.approx(10 * 3600.0, abs=30.0)
    assert reference_steps(experiment.ms, 99.0) is None
