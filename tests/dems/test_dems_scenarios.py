"""Generated DEMS runs of real protocols, end to end: files → calibration → result → summary.

The scenarios of :data:`dems.synthetic.SCENARIOS` (24–46 h multi-cycle runs without rests,
4 h rests after charge, drifting backgrounds with a step after a flow disturbance, an
incomplete last charge, another carrier flow, 5× noise, a material without O2) are
processed with the defaults of ``operando dems process``. MS channels are sampled every
6 s instead of 2 s here to keep the tests quick; the physics is the same.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import dems
from dems.calibration import calibrate_gas_steps
from dems.calibration_file import sensitivity_factors
from dems.calibration_steps import parse_steps, read_steps
from dems.process import default_background_windows, quantify_run
from dems.quantify import grid_bounds
from dems.summary import Summary, summarize
from dems.synthetic import SCENARIOS, make_experiment
from dems.synthetic_files import write_experiment
from dems.uncertainty import FLOW_REFERENCE_RELATIVE_U

GASES = ["O2", "CO2", "CO"]
COARSE = {"ms_cycle_s": 6.0}


def _process(ms, ec, calibration, mass_g, windows=None, **options):
    delay = calibration.delay_s
    result = quantify_run(
        ms,
        ec,
        factors=sensitivity_factors(calibration),
        delay_s=delay,
        grid=grid_bounds(ms),
        windows=default_background_windows(ms, ec, delay) if windows is None else windows,
        mass_g=mass_g,
        calibration=calibration,
        **options,
    )
    return result.compute()


def run_in_memory(scenario, seed, *, windows=None, summary_options=None, **options):
    """Generate, calibrate, quantify (default background) and summarise."""
    experiment = make_experiment(seed=seed, **{**SCENARIOS[scenario], **COARSE})
    calibration = calibrate_gas_steps(
        experiment.calibration_ms, parse_steps(experiment.calibration_steps)
    )
    lead = experiment.truth["scenario"]["ms_lead_s"]
    ec = experiment.ec.assign_coords(time=experiment.ec["time"] + lead)
    result = _process(experiment.ms, ec, calibration, 0.01, windows, **options)
    return experiment.truth, summarize(result, gases=GASES, **(summary_options or {}))


def assert_charges(summary, truth, tolerance_V):
    """Every charge: onsets within tolerance where the gas evolves, None where it does not."""
    assert len(summary["cycles"]) == len(truth["cycles"])
    for got, want in zip(summary["cycles"], truth["cycles"], strict=True):
        for gas in GASES:
            onset, expected = got["onsets"][gas], want["onsets"][gas]
            where = f"cycle {got['cycle']} {gas}"
            if expected is None:
                assert onset["potential_V"] is None, f"{where}: invented {onset['potential_V']}"
                assert onset["reason"], where
            else:
                assert onset["potential_V"] == pytest.approx(expected, abs=tolerance_V), where
                assert abs(onset["potential_V"] - expected) < 3 * onset["uncertainty_V"], where


def assert_amounts(evolved, truth, rel=0.05):
    for gas in ("O2", "CO2"):
        want = truth[gas]["umol"]
        if want > 0:
            assert evolved[gas]["umol"] == pytest.approx(want, rel=rel), gas
            assert abs(evolved[gas]["umol"] - want) < 3 * evolved[gas]["umol_uncertainty"], gas


@pytest.fixture(scope="module")
def day_run(tmp_path_factory):
    """The run of issue 11: 24 h, 3 cycles without rests, drift, a flow step at 10 h, and a
    third charge cut off (with the files) at 4.01 V — written and read as QUADERA .asc +
    EC-Lab .mpt, calibrated from its own calibration files."""
    folder = tmp_path_factory.mktemp("day_run")
    experiment = make_experiment(seed=11, **{**SCENARIOS["incomplete_last_cycle"], **COARSE})
    paths = write_experiment(experiment, folder)
    ms = dems.open_ms(paths["ms"], timezone="UTC")
    ec = dems.open_ec(paths["ec"], timezone="UTC")
    ms, ec = dems.align(ms, ec)
    cal_ms = dems.open_ms(paths["calibration_ms"], timezone="UTC")
    calibration = calibrate_gas_steps(cal_ms, read_steps(paths["steps"]))
    mass_g = float(ec.attrs["characteristic_mass_g"])
    result = _process(ms, ec, calibration, mass_g)
    truth = json.loads(paths["truth"].read_text())
    return truth, result, summarize(result, gases=GASES), (ms, ec, calibration, mass_g)


def test_day_run_onsets_in_every_complete_charge_and_none_in_the_cut_one(day_run):
    truth, _, summary, _ = day_run
    assert_charges(summary, truth, 0.015)
    last = summary["cycles"][-1]["onsets"]
    assert all(last[g]["potential_V"] is None for g in GASES)
    assert last["CO2"]["max_potential_V"] == pytest.approx(4.01, abs=0.01)
    # the headline onsets are those of the first charge, and say so
    assert summary["onsets"]["CO2"]["cycle"] == 1
    assert summary["onsets"]["CO2"]["half_cycle"] == summary["half_cycles"][0]["half_cycle"]
    assert summary["onsets"] == summary["cycles"][0]["onsets"]


def test_day_run_amounts_per_cycle_and_no_gas_within_its_uncertainty(day_run):
    truth, _, summary, _ = day_run
    assert_amounts(summary["evolved"], truth["evolved"])
    for got, want in zip(summary["cycles"], truth["cycles"], strict=True):
        assert_amounts(got["evolved"], want["evolved"])
    co = summary["evolved"]["CO"]
    assert abs(co["umol"]) < 3 * co["umol_uncertainty"]
    assert co["detected"] is False and co["detection_limit_umol_per_g"] > 0
    assert co["upper_bound_umol_per_g"] >= max(co["umol_per_g"], 0)


def test_day_run_background_anchors_span_the_run_and_follow_the_flow_step(day_run):
    _, result, summary, _ = day_run
    background = summary["background"]
    assert background["model"] == "anchored"
    assert summary["warnings"] == []
    end = float(np.nanmax(result["channel_time"].values))
    for mass in ("32", "44"):
        channel = background["channels"][mass]
        anchors = channel["anchors_s"]
        assert anchors[0][0] < 600 and anchors[-1][1] > end - 1800, mass
        assert channel["steps_s"] == [pytest.approx(10 * 3600, abs=60)]
        assert 0.4 < channel["anchor_fraction"] < 0.95
    # anchors inside every charge (its low-potential part), not only in rests
    charges = [h for h in summary["half_cycles"] if h["direction"] == "charge"]
    for half in charges:
        start, end_s = half["start_s"] + summary["delay_s"], half["end_s"] + summary["delay_s"]
        inside = [a for a in background["channels"]["44"]["anchors_s"] if a[1] > start]
        assert inside and inside[0][0] < end_s


def test_user_windows_win_and_a_warning_says_they_do_not_span_the_run(day_run):
    _, _, _, (ms, ec, calibration, mass_g) = day_run
    early = [(0.0, 290.0), (360.0, 1000.0)]  # the first 17 minutes
    result = _process(ms, ec, calibration, mass_g, windows=early)
    summary = summarize(result, gases=GASES)
    assert summary["background"]["model"] == "linear"
    assert any("extrapolated" in w for w in summary["warnings"])


def test_ten_cycles_in_46_hours_with_drift_and_a_flow_step():
    truth, summary = run_in_memory("multi_cycle_drift", seed=4)
    assert_charges(summary, truth, 0.015)
    for got, want in zip(summary["cycles"], truth["cycles"], strict=True):
        assert_amounts(got["evolved"], want["evolved"])
    assert summary["background"]["channels"]["32"]["steps_s"] == [pytest.approx(22 * 3600, abs=60)]


def test_four_hour_rests_after_charge():
    truth, summary = run_in_memory("rest_after_charge", seed=5)
    assert_charges(summary, truth, 0.015)
    assert_amounts(summary["evolved"], truth["evolved"])
    # the onset baseline comes from the anchors inside each charge, not from its duration
    for cycle in summary["cycles"]:
        assert cycle["onsets"]["O2"]["baseline_sigma_mol_per_s"] < 5e-12


def test_five_times_the_noise():
    truth, summary = run_in_memory("noise_5x", seed=6)
    assert_charges(summary, truth, 0.030)
    assert_amounts(summary["evolved"], truth["evolved"])


def test_material_without_o2_has_no_onset_and_a_detection_limit_per_gram():
    truth, summary = run_in_memory("no_O2", seed=7)
    assert_charges(summary, truth, 0.015)
    o2 = summary["evolved"]["O2"]
    assert abs(o2["umol"]) < 2 * o2["umol_uncertainty"]
    assert o2["detected"] is False
    assert 0 < o2["detection_limit_umol_per_g"] < 0.02 * truth["evolved"]["CO2"]["umol_per_g"]
    assert o2["upper_bound_umol_per_g"] == pytest.approx(
        max(o2["umol_per_g"], 0) + 2 * o2["umol_per_g_uncertainty"]
    )
    onset = summary["onsets"]["O2"]
    assert onset["potential_V"] is None and onset["detection_limit_umol_per_min_g"] > 0
    assert_amounts(summary["evolved"], truth["evolved"])


def test_carrier_flow_of_the_operando_run_scales_the_factors():
    truth, summary = run_in_memory("carrier_flow", seed=8, carrier_flow_sccm=2.5)
    assert_amounts(summary["evolved"], truth["evolved"])
    transfer = summary["uncertainty"]["calibration_transfer"]
    assert transfer["factor_scale"] == pytest.approx(1 / 2.5)
    assert transfer["calibration_flow_reference_C"] == 20.0
    _, unscaled = run_in_memory("carrier_flow", seed=8)  # the flow not given
    ratio = unscaled["evolved"]["O2"]["umol"] / truth["evolved"]["O2"]["umol"]
    assert ratio == pytest.approx(1 / 2.5, rel=0.03)


def test_budget_lists_calibration_tolerances_and_an_unknown_flow_reference():
    experiment = make_experiment(seed=9, flow_reference_stated=False, **COARSE)
    calibration = calibrate_gas_steps(
        experiment.calibration_ms, parse_steps(experiment.calibration_steps)
    )
    ec = experiment.ec.assign_coords(time=experiment.ec["time"] + 300.0)
    result = _process(
        experiment.ms,
        ec,
        calibration,
        0.01,
        cylinder_tolerance=0.05,
        flow_controller_tolerance=0.02,
    )
    summary = summarize(result, gases=GASES)
    terms = summary["evolved"]["CO2"]["uncertainty_terms_umol"]
    umol = summary["evolved"]["CO2"]["umol"]
    assert terms["cylinder"] == pytest.approx(umol * 0.05 / np.sqrt(3))
    assert terms["flow_controller"] == pytest.approx(umol * 0.02 / np.sqrt(3))
    assert terms["flow_reference"] == pytest.approx(umol * FLOW_REFERENCE_RELATIVE_U)
    assert {"noise", "background", "calibration"} <= set(terms)
    alignment = summary["uncertainty"]["alignment_terms_s"]
    assert set(alignment) == {"clock", "delay", "response"}
    # the response term follows the calibration's 10–90 % rise: τ(1 − ln 2)/√3
    tau = calibration.response_time_s / np.log(9)
    assert alignment["response"] == pytest.approx(tau * (1 - np.log(2)) / np.sqrt(3))


def test_als_fallback_carries_its_bias_term():
    experiment = make_experiment(seed=10, **COARSE)
    calibration = calibrate_gas_steps(
        experiment.calibration_ms, parse_steps(experiment.calibration_steps)
    )
    ec = experiment.ec.assign_coords(time=experiment.ec["time"] + 300.0)
    summary = summarize(_process(experiment.ms, ec, calibration, 0.01, windows=[]), gases=GASES)
    assert summary["background"]["model"] == "als"
    for gas in ("O2", "CO2"):
        amount, want = summary["evolved"][gas], experiment.truth["evolved"][gas]["umol"]
        assert amount["uncertainty_terms_umol"]["background_model"] > 0
        assert abs(amount["umol"] - want) < 2 * amount["umol_uncertainty"], gas


def test_summary_is_a_dataclass_that_reads_and_updates_like_summary_json(day_run):
    _, _, summary, _ = day_run
    assert isinstance(summary, Summary)
    assert summary.onsets["O2"].detected and summary.evolved["O2"].umol > 0
    before = set(summary)
    summary["inputs"] = {"ms": "run.asc"}
    assert summary["inputs"] == {"ms": "run.asc"} and set(summary) == before | {"inputs"}
    document = json.loads(json.dumps(summary.to_dict()))
    for key in ("onsets", "evolved", "delay_s", "sensitivity", "cycles", "half_cycles"):
        assert key in document
    del summary["inputs"]
