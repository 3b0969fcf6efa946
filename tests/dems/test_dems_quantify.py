"""Fragmentation table, backgrounds, deconvolution, half-cycles, cumulative amounts."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from dems.background import fit_background
from dems.cycles import half_cycle_kernel, label_half_cycles
from dems.fragmentation import PATTERNS, pattern, primary_mass, sensitivity_matrix
from dems.quantify import (
    cumulative_amount,
    deconvolve,
    electrode_time,
    interpolate_ec,
    to_uniform_grid,
)


def test_table_holds_the_required_gases_with_nist_values():
    for gas in ("CO2", "O2", "CO", "N2", "H2O", "Ar", "H2", "C2H4", "EC", "DMC"):
        assert gas in PATTERNS
    assert pattern("CO2").fraction(28) == pytest.approx(0.0981)
    assert pattern("CO2").fraction(16) == pytest.approx(0.0961)
    assert pattern("O2").fraction(16) == pytest.approx(0.218)
    assert primary_mass("DMC") == 45
    assert not PATTERNS["EC"].verified and PATTERNS["CO2"].verified
    with pytest.raises(KeyError, match="known"):
        pattern("Xe")


def test_sensitivity_matrix_fills_uncalibrated_fragments_from_pattern():
    matrix = sensitivity_matrix({"CO2": {44: 0.8}, "O2": {32: 0.5, 16: 0.12}}, [16, 28, 32, 44])
    assert matrix.dims == ("mass", "gas")
    assert float(matrix.sel(mass=28, gas="CO2")) == pytest.approx(0.8 * 0.0981)
    assert float(matrix.sel(mass=16, gas="O2")) == pytest.approx(0.12)  # calibrated wins
    assert float(matrix.sel(mass=44, gas="O2")) == 0.0


def _ms(time, signal, masses):
    return xr.Dataset(
        {"signal": (("channel", "sample"), signal, {"units": "A"})},
        coords={
            "channel": [f"M{m}" for m in masses],
            "mass": ("channel", np.array(masses, float)),
            "time": (("channel", "sample"), time),
        },
    )


@pytest.mark.parametrize("model", ["constant", "linear", "polynomial", "als"])
def test_background_models_recover_their_own_kind_of_baseline(model):
    rng = np.random.default_rng(0)
    t = np.arange(0.0, 10_000.0, 2.0)
    truth = {
        "constant": np.full_like(t, 5e-11),
        "linear": 5e-11 + 1e-15 * t,
        "polynomial": 5e-11 + 1e-15 * t - 2e-19 * t**2,
        "als": 5e-11 + 1e-15 * t,
    }[model]
    peak = 2e-11 * np.exp(-(((t - 5000) / 600) ** 2))
    signal = truth + peak + rng.normal(0, 1e-13, t.size)
    windows = (
        [(0, 2000), (8000, 10_000)]
        if model != "polynomial"
        else [(0, 2000), (8000, 10_000), (4000, 4100)]
    )
    if model == "constant":
        windows = [(0, 2000)]
    ms = _ms(t[None], signal[None], [32])
    out = fit_background(ms, model, windows)
    residual = out["background"].values[0] - truth
    tolerance = 2e-12 if model == "als" else 5e-13
    assert np.max(np.abs(residual[(t < 3000) | (t > 7000)])) < tolerance
    assert float(out["background_sigma"][0]) == pytest.approx(
        1e-13, rel=0.3 if model != "als" else 1.0
    )
    assert json.loads(out.attrs["background_model"])["model"] == model
    np.testing.assert_allclose(out["corrected"], out["signal"] - out["background"])


def test_background_bad_model_and_missing_windows():
    ms = _ms(np.arange(10.0)[None], np.ones((1, 10)), [32])
    with pytest.raises(ValueError, match="unknown background model"):
        fit_background(ms, "spline", [(0, 5)])
    with pytest.raises(ValueError, match="at least 2"):
        fit_background(ms, "linear", [(0, 5)])


def test_background_keeps_each_channel_on_its_own_clock_and_nan_padding():
    t = np.array([[0.0, 1, 2, 3, 4, 5], [0.5, 1.5, 2.5, 3.5, np.nan, np.nan]])
    s = np.array([[1.0, 1, 1, 1, 1, 1], [2.0, 2, 2, 2, np.nan, np.nan]])
    out = fit_background(_ms(t, s, [32, 44]), "constant", [(0, 10)])
    assert np.isnan(out["background"].values[1, -1])
    np.testing.assert_allclose(out["background"].values[1, :4], 2.0)


def test_deconvolution_keeps_co2_fragments_out_of_o2_and_co():
    masses = [16.0, 28.0, 32.0, 44.0]
    matrix = sensitivity_matrix({"O2": {32: 0.5}, "CO2": {44: 0.8}, "CO": {28: 0.6}}, masses)
    co2 = np.linspace(0, 1e-9, 50)
    signals = matrix.sel(gas="CO2").values[:, None] * co2[None, :]
    data = xr.DataArray(
        signals, dims=("mass", "time"), coords={"mass": masses, "time": np.arange(50.0)}
    )
    flux = deconvolve(data, matrix, negative_tolerance=0.0)
    np.testing.assert_allclose(flux.sel(gas="CO2"), co2, rtol=1e-6, atol=1e-18)
    np.testing.assert_allclose(flux.sel(gas="O2"), 0.0, atol=1e-18)
    np.testing.assert_allclose(flux.sel(gas="CO"), 0.0, atol=1e-18)
    # a naive single-mass reading would count CO2's m/z 28 as CO:
    assert (signals[1] / 0.6).max() > 1e-10


def test_deconvolution_is_non_negative_within_tolerance():
    masses = [32.0, 44.0]
    matrix = sensitivity_matrix({"O2": {32: 0.5}, "CO2": {44: 0.8}}, masses)
    data = xr.DataArray([[-1e-9], [1e-10]], dims=("mass", "time"), coords={"mass": masses})
    sigma = xr.DataArray([1e-12, 1e-12], dims="mass", coords={"mass": masses})
    strict = deconvolve(data, matrix, sigma, negative_tolerance=0.0)
    assert float(strict.sel(gas="O2")[0]) == pytest.approx(0.0, abs=1e-20)
    tolerant = deconvolve(data, matrix, sigma, negative_tolerance=3.0)
    assert float(tolerant.sel(gas="O2")[0]) == pytest.approx(-3 * 1e-12 / 0.5, rel=1e-6)
    assert float(tolerant.sel(gas="CO2")[0]) == pytest.approx(1e-10 / 0.8, rel=1e-6)


def test_uniform_grid_interpolates_each_channel_from_its_own_times():
    t = np.array([[0.0, 2.0, 4.0, 6.0], [1.0, 3.0, 5.0, 7.0]])
    values = xr.DataArray(2 * t + 1, dims=("channel", "sample"))
    grid = to_uniform_grid(values, xr.DataArray(t, dims=("channel", "sample")), 1.0, 6.0, 1.0)
    np.testing.assert_allclose(grid.values, np.tile(2 * np.arange(1.0, 7.0) + 1, (2, 1)))


def test_half_cycles_from_current_sign():
    current = np.array([0, 0, 1, 1, 0.5, 0, 0, -1, -1, 0, 1, 0.0])
    index, direction = half_cycle_kernel(current, 0.1)
    assert index.tolist() == [-1, -1, 0, 0, 0, 0, 0, 1, 1, 1, 2, 2]
    assert direction.tolist() == [0, 0, 1, 1, 1, 1, 1, -1, -1, -1, 1, 1]
    ec = xr.Dataset({"current": ("time", current)}, coords={"time": np.arange(12.0)})
    assert label_half_cycles(ec, 0.1)["half_cycle"].values.tolist() == index.tolist()


def test_delay_and_ec_interpolation_match_gas_to_the_earlier_potential():
    flux = xr.DataArray(np.ones(5), dims="time", coords={"time": np.arange(100.0, 105.0)})
    shifted = electrode_time(flux, 10.0)
    np.testing.assert_allclose(shifted["time"], np.arange(90.0, 95.0))
    np.testing.assert_allclose(shifted["ms_time"], np.arange(100.0, 105.0))
    ec = xr.Dataset(
        {
            "potential": ("time", np.arange(200.0) * 0.01),
            "current": ("time", np.ones(200)),
            "cycle": ("time", np.repeat([1, 2], 100)),
        },
        coords={"time": np.arange(200.0)},
    )
    matched = interpolate_ec(ec, shifted["time"])
    np.testing.assert_allclose(matched["potential"], np.arange(90.0, 95.0) * 0.01)
    assert matched["cycle"].values.tolist() == [1.0] * 5


def test_cumulative_amount_is_the_trapezoid_integral():
    t = np.linspace(0, 100, 201)
    flux = xr.DataArray(np.sin(t / 30) ** 2 * 1e-9, dims="time", coords={"time": t})
    amount = cumulative_amount(flux)
    assert float(amount[-1]) == pytest.approx(np.trapezoid(flux.values, t), rel=1e-12)
    assert float(amount[0]) == 0.0
