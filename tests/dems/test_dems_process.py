"""End-to-end quantification on synthetic experiments with known truth."""

from __future__ import annotations

import json

import dask
import numpy as np
import pytest
import xarray as xr

from dems.calibration import calibrate_gas_steps
from dems.calibration_file import sensitivity_factors
from dems.calibration_steps import parse_steps
from dems.errors import AlignmentError, CalibrationError
from dems.process import default_background_windows, quantify_run
from dems.quantify import grid_bounds
from dems.summary import summarize
from dems.synthetic import make_experiment

GASES = ["O2", "CO2", "CO"]


def align(ms: xr.Dataset, ec: xr.Dataset, offset_s: float = 0.0):
    """The ``dems.align`` contract (docs/conventions.md), so these tests need no reader branch."""
    start_ms = np.datetime64(ms.attrs["start_time"][:26])
    start_ec = np.datetime64(ec.attrs["start_time"][:26])
    shift = (start_ec - start_ms) / np.timedelta64(1, "us") * 1e-6 + offset_s
    return ms, ec.assign_coords(time=ec["time"] + shift)


def run(experiment, **options):
    calibration = calibrate_gas_steps(
        experiment.calibration_ms, parse_steps(experiment.calibration_steps)
    )
    ms, ec = align(experiment.ms, experiment.ec, experiment.truth["align_offset_s"])
    windows = default_background_windows(ms, ec, calibration.delay_s)
    result = quantify_run(
        ms,
        ec,
        factors=sensitivity_factors(calibration),
        delay_s=calibration.delay_s,
        grid=grid_bounds(ms),
        windows=windows,
        mass_g=float(ec.attrs["characteristic_mass_g"]),
        **options,
    )
    return result, summarize(result, gases=GASES, delay_uncertainty_s=1.0)


def assert_onsets(summary, truth, tolerance_V):
    for gas in GASES:
        expected = truth[gas]
        onset = summary["onsets"][gas]
        if expected is None:
            assert onset["potential_V"] is None, f"{gas}: invented onset {onset['potential_V']}"
            assert onset["reason"]
        else:
            assert onset["potential_V"] == pytest.approx(expected, abs=tolerance_V), gas
            assert 0 < onset["uncertainty_V"] < 0.05
            assert abs(onset["potential_V"] - expected) < 3 * onset["uncertainty_V"], gas


def assert_evolved(evolved, truth, rel=0.05):
    for gas in ("O2", "CO2"):
        if truth[gas]["umol"] > 0:
            assert evolved[gas]["umol"] == pytest.approx(truth[gas]["umol"], rel=rel), gas
            assert evolved[gas]["umol_per_g"] == pytest.approx(truth[gas]["umol_per_g"], rel=rel)
            # the reported uncertainty is honest: the true error lies within 3 u
            error = abs(evolved[gas]["umol"] - truth[gas]["umol"])
            assert error < 3 * evolved[gas]["umol_uncertainty"] + 1e-4 * truth[gas]["umol"], gas
    # a gas that never evolves integrates to ~0 (within 1 % of the CO2 amount)
    assert abs(evolved["CO"]["umol"]) < 0.01 * truth["CO2"]["umol"]


@pytest.fixture(scope="module")
def normal():
    experiment = make_experiment(seed=1)
    return experiment, *run(experiment)


def test_onsets_within_15_mV_at_normal_noise(normal):
    experiment, _, summary = normal
    assert_onsets(summary, experiment.truth["onsets_V"], 0.015)


def test_evolved_amounts_within_5_percent(normal):
    experiment, _, summary = normal
    assert_evolved(summary["evolved"], experiment.truth["evolved"])


def test_summary_contract_keys(normal):
    experiment, _, summary = normal
    for key in ("onsets", "evolved", "delay_s", "sensitivity", "cycles"):
        assert key in summary
    for gas in ("O2", "CO2"):
        assert set(summary["onsets"][gas]) >= {"potential_V", "uncertainty_V", "method"}
        assert set(summary["evolved"][gas]) >= {"umol", "umol_per_g"}
    assert summary["delay_s"] == pytest.approx(experiment.truth["delay_s"], abs=2.0)
    assert summary["sensitivity"]["O2"]["32"] == pytest.approx(0.5, rel=0.03)
    assert summary["sensitivity"]["CO2"]["44"] == pytest.approx(0.8, rel=0.03)
    kinds = [h["direction"] for h in summary["half_cycles"]]
    assert kinds == ["charge", "discharge"]
    assert summary["half_cycles"][0]["charge_C"] == pytest.approx(
        experiment.truth["scenario"]["capacity_mAh"] * 3.6 * (1 + 600 / 3600), rel=0.05
    )


def test_result_dataset_layout(normal):
    _, result, _ = normal
    assert result["flux"].dims == ("gas", "time")
    assert result["flux"].attrs["units"] == "mol/s"
    assert result["cumulative"].attrs["units"] == "umol"
    assert result["rate_per_mass"].attrs["units"] == "umol/(min.g)"
    assert result["background"].dims == ("channel", "sample")
    np.testing.assert_allclose(
        result["time"] + result.attrs["transit_delay_s"], result["ms_time"], rtol=0, atol=1e-9
    )
    for name in ("potential", "current", "cycle", "half_cycle"):
        assert result[name].dims == ("time",)


def test_onsets_within_30_mV_at_five_times_the_noise():
    experiment = make_experiment(seed=5, noise_scale=5.0)
    _, summary = run(experiment)
    assert_onsets(summary, experiment.truth["onsets_V"], 0.030)
    # at 5× noise the background fit limits amounts to about ±6 % (benchmarks/
    # accuracy_dems_onsets.py); the 3 u check inside assert_evolved is the real test
    assert_evolved(summary["evolved"], experiment.truth["evolved"], rel=0.10)


def test_modified_cathode_without_oxygen_release_gets_no_onset():
    experiment = make_experiment(seed=7, onsets_V={"O2": None, "CO2": 4.45, "CO": None})
    _, summary = run(experiment)
    assert summary["onsets"]["O2"]["potential_V"] is None
    assert summary["onsets"]["O2"]["max_potential_V"] == pytest.approx(4.6, abs=0.01)
    assert summary["onsets"]["CO2"]["potential_V"] == pytest.approx(4.45, abs=0.015)
    assert abs(summary["evolved"]["O2"]["umol"]) < 0.01 * experiment.truth["evolved"]["CO2"]["umol"]


def test_ms_starting_minutes_before_ec_with_clock_offset():
    experiment = make_experiment(seed=9, ms_lead_s=1500.0, clock_offset_s=42.0)
    _, summary = run(experiment)
    assert_onsets(summary, experiment.truth["onsets_V"], 0.015)
    assert_evolved(summary["evolved"], experiment.truth["evolved"])


def test_wrong_clock_offset_would_shift_the_onset():
    experiment = make_experiment(seed=9, clock_offset_s=600.0)
    calibration = calibrate_gas_steps(
        experiment.calibration_ms, parse_steps(experiment.calibration_steps)
    )
    ms, ec = align(experiment.ms, experiment.ec, 0.0)  # offset ignored on purpose
    result = quantify_run(
        ms,
        ec,
        factors=sensitivity_factors(calibration),
        delay_s=calibration.delay_s,
        grid=grid_bounds(ms),
        windows=default_background_windows(ms, ec),
        mass_g=0.01,
    )
    onset = summarize(result, gases=GASES)["onsets"]["O2"]["potential_V"]
    assert onset is None or abs(onset - 4.39) > 0.015


def test_several_cycles_are_summarised_per_cycle():
    experiment = make_experiment(seed=3, n_cycles=3)
    _, summary = run(experiment)
    assert [c["cycle"] for c in summary["cycles"]] == [1, 2, 3]
    for got, truth in zip(summary["cycles"], experiment.truth["cycles"], strict=True):
        assert_evolved(got["evolved"], truth["evolved"])
        for gas in ("O2", "CO2"):
            onset = got["onsets"][gas]
            # evolution weakens each cycle (×0.5): the threshold fires later, the
            # reported uncertainty (which holds the threshold − tangent spread) covers it
            error = abs(onset["potential_V"] - truth["onsets"][gas])
            assert error < max(0.015, 2 * onset["uncertainty_V"]), (got["cycle"], gas)
            assert onset["alternatives"]["tangent"] == pytest.approx(
                truth["onsets"][gas], abs=0.005
            )
    assert summary["cycles"][1]["onsets"]["O2"]["potential_V"] == pytest.approx(4.39, abs=0.015)
    assert len(summary["half_cycles"]) == 6
    charges = [h for h in summary["half_cycles"] if h["direction"] == "charge"]
    assert [h["cycle"] for h in charges] == [1, 2, 3]
    for entry, cycle in zip(charges, summary["cycles"], strict=True):
        assert entry["onsets"] == cycle["onsets"]  # onsets per charge half-cycle
    assert all("onsets" not in h for h in summary["half_cycles"] if h["direction"] == "discharge")


class _RaiseOnCompute:
    """A dask scheduler that counts computations and fails on the first one."""

    def __init__(self):
        self.calls = 0

    def __call__(self, dsk, keys, **kwargs):
        self.calls += 1
        raise RuntimeError("a lazy step triggered a dask computation")


def test_pipeline_stays_lazy_on_a_chunked_48_h_run():
    experiment = make_experiment(seed=4, n_cycles=13)  # 13 × 3.67 h ≈ 48 h
    calibration = calibrate_gas_steps(
        experiment.calibration_ms, parse_steps(experiment.calibration_steps)
    )
    ms, ec = align(experiment.ms, experiment.ec)
    assert float(ms["time"].max()) > 47 * 3600
    windows = default_background_windows(ms, ec, calibration.delay_s)
    grid = grid_bounds(ms)
    lazy_ms = ms.chunk({"channel": 1, "sample": 20_000}).assign_coords(mass=ms["mass"])
    lazy_ec = ec.chunk({"time": 4000})
    scheduler = _RaiseOnCompute()
    with dask.config.set(scheduler=scheduler):
        result = quantify_run(
            lazy_ms,
            lazy_ec,
            factors=sensitivity_factors(calibration),
            delay_s=calibration.delay_s,
            grid=grid,
            windows=windows,
            mass_g=0.01,
        )
    assert scheduler.calls == 0
    for name in ("flux", "cumulative", "background", "potential", "half_cycle"):
        assert result[name].chunks is not None, name
    summary = summarize(result.compute(), gases=GASES)
    assert len(summary["cycles"]) == 13
    assert_evolved(summary["evolved"], experiment.truth["evolved"])


def test_gas_without_a_measured_calibrated_mass_is_an_error():
    experiment = make_experiment(seed=2)
    ms, ec = align(experiment.ms, experiment.ec)
    with pytest.raises(CalibrationError, match="gas H2 has no calibrated m/z among the channels"):
        quantify_run(
            ms,
            ec,
            factors={"H2": {2.0: 1.0}},
            delay_s=0.0,
            grid=grid_bounds(ms),
            windows=[(0.0, 300.0)],
        )


def test_records_that_do_not_overlap_are_an_alignment_error():
    experiment = make_experiment(seed=2)
    ms, ec = align(experiment.ms, experiment.ec, offset_s=86_400.0)
    with pytest.raises(AlignmentError, match="does not overlap the MS record"):
        quantify_run(
            ms,
            ec,
            factors={"O2": {32.0: 0.5}},
            delay_s=0.0,
            grid=grid_bounds(ms),
            windows=[(0.0, 300.0)],
        )


def test_onsets_report_the_charge_passed(normal):
    experiment, _, summary = normal
    onset = summary["onsets"]["O2"]
    sc = experiment.truth["scenario"]
    # U(q) = 3.6 + 0.6 q + 0.4 q^4 reaches the threshold onset at a known state of charge
    q = np.linspace(0, 1, 100_001)
    q_onset = q[np.searchsorted(3.6 + 0.6 * q + 0.4 * q**4, onset["alternatives"]["threshold"])]
    assert onset["charge_at_onset_mAh"] == pytest.approx(q_onset * sc["capacity_mAh"], rel=0.02)
    assert onset["specific_capacity_at_onset_mAh_per_g"] == pytest.approx(
        onset["charge_at_onset_mAh"] / 0.01
    )
    assert summary["onsets"]["CO"].get("charge_at_onset_mAh") is None


def test_default_windows_skip_the_rest_right_after_a_charge():
    experiment = make_experiment(seed=2, n_cycles=2)
    ms, ec = align(experiment.ms, experiment.ec)
    sc = experiment.truth["scenario"]
    windows = default_background_windows(ms, ec, delay_s=10.0)
    lead = sc["ms_lead_s"]
    period = sc["ocv_s"] + sc["charge_s"] + sc["hold_s"] + 2 * sc["rest_s"] + sc["discharge_s"]
    # before the EC, the first OCV, the rest before the 2nd charge, the final rest
    assert len(windows) == 4
    assert windows[0] == (pytest.approx(ms["time"].min().item()), pytest.approx(lead + 10.0))
    assert windows[1][0] == pytest.approx(lead + 10.0 + 60.0, abs=10.0)
    assert windows[2][1] == pytest.approx(lead + period + sc["ocv_s"] + 10.0, abs=20.0)
    post_charge_rest = lead + sc["ocv_s"] + sc["charge_s"] + sc["hold_s"]
    assert all(not (start <= post_charge_rest + 100 <= end) for start, end in windows)


def test_real_spectroinlets_run_keeps_raw_values_through_the_pipeline(data_dir):
    import dems

    folder = data_dir / "dems" / "spectroinlets_co_strip_ixdat_csv"
    ms = dems.open_ms(folder / "data_part1_COstrip_11-11-21.csv")
    ec = dems.open_ec(folder / "ecdata_part1_COstrip_11-11-21.csv")
    ms, ec = dems.align(ms, ec)
    result = quantify_run(
        ms, ec, factors=None, delay_s=0.0, grid=grid_bounds(ms), windows=[], gases=["O2", "CO2"]
    ).compute()
    # first data row of the raw text: M44-x = 8400.538000106812, M44 = 1.040615e-11
    assert result["signal"].sel(channel="M44").values[0] == 1.040615e-11
    assert result["channel_time"].sel(channel="M44").values[0] == pytest.approx(8400.538000106812)
    assert json.loads(result.attrs["background_model"])["model"] == "als"
    # the EC file (tstamp 1636618671.0) starts 1286 s after the MS file: potential only there
    inside = (result["time"] > 8436.7 + 5) & (result["time"] < 10355.6 - 5)
    assert np.isfinite(result["potential"].where(inside, drop=True)).all()
    assert np.isnan(result["potential"].where(result["time"] < 8430, drop=True)).all()
    summary = summarize(result)
    assert {h["direction"] for h in summary["half_cycles"]} == {"charge", "discharge"}
    assert summary["evolved"]["O2"]["reason"] == "no calibration"
