"""Gas-step calibration, steps-file validation, Faradaic calibration, calibration JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dems.calibration import FARADAY, calibrate_gas_steps, faradaic_sensitivity, transition_times
from dems.calibration_file import FORMAT, read_calibration, sensitivity_factors
from dems.calibration_steps import SCCM_MOL_PER_S, parse_steps, read_steps
from dems.errors import CalibrationError
from dems.synthetic import make_experiment
from dems.synthetic_files import write_steps_toml
from pipelines.atomic import write_json_atomic


@pytest.fixture(scope="module")
def experiment():
    return make_experiment(seed=11)


@pytest.fixture(scope="module")
def calibration(experiment):
    return calibrate_gas_steps(experiment.calibration_ms, parse_steps(experiment.calibration_steps))


def test_one_sccm_is_the_methods_reference_flux():
    doc = _document()
    del doc["total_flow_mol_per_s"]
    doc["total_flow_sccm"] = 1.0
    # methods.md §A1: 1 sccm = p0·1 cm³/(R·T0)/60 = 7.436e-7 mol/s (273.15 K, 101325 Pa)
    assert parse_steps(doc).steps[1].flux_mol_per_s("CO2") == pytest.approx(
        0.001 * 7.436e-7, rel=1e-3
    )


def test_sensitivity_factors_within_3_percent_of_truth(experiment, calibration):
    truth = experiment.truth["sensitivity_C_per_mol"]
    for gas in ("O2", "CO2", "CO"):
        primary = {"O2": "32", "CO2": "44", "CO": "28"}[gas]
        entry = calibration.sensitivity[gas][primary]
        assert entry["F_C_per_mol"] == pytest.approx(truth[gas][primary], rel=0.03)
        assert entry["r2"] > 0.999
        # the standard error is of the right size: truth within 5 stderr, stderr < 1 %
        assert 0 < entry["F_stderr_C_per_mol"] < 0.01 * entry["F_C_per_mol"]
        assert abs(entry["F_C_per_mol"] - truth[gas][primary]) < 5 * entry["F_stderr_C_per_mol"]
    # fragments are separated by the multi-gas fit: CO2's m/z 28 next to CO's m/z 28
    assert calibration.sensitivity["CO2"]["28"]["F_C_per_mol"] == pytest.approx(
        truth["CO2"]["28"], rel=0.03
    )
    assert calibration.sensitivity["O2"]["16"]["F_C_per_mol"] == pytest.approx(
        truth["O2"]["16"], rel=0.03
    )


def test_transit_delay_within_2_s_and_response_time(experiment, calibration):
    assert calibration.delay_s == pytest.approx(experiment.truth["delay_s"], abs=2.0)
    assert calibration.response_time_s == pytest.approx(
        experiment.truth["response_time_s"], abs=2.0
    )
    assert len(calibration.transitions) >= 6  # up and down steps of three gases


def test_delay_follows_a_different_transport():
    slow = make_experiment(seed=2, dead_time_s=25.0, tau_s=8.0)
    result = calibrate_gas_steps(slow.calibration_ms, parse_steps(slow.calibration_steps))
    assert result.delay_s == pytest.approx(slow.truth["delay_s"], abs=2.0)
    assert result.delay_s > 25


def test_transition_times_on_exact_first_order_step():
    t = np.arange(0, 200, 0.5)
    tau = 5.0
    s = np.where(t > 50, 1 - np.exp(-(t - 50) / tau), 0.0)
    crossing = transition_times(t, s, 40.0, 0.0, 1.0, 150.0)
    assert crossing[0.5] - 50 == pytest.approx(tau * np.log(2), abs=0.05)
    assert crossing[0.9] - crossing[0.1] == pytest.approx(tau * np.log(9), abs=0.1)


def _document(**changes):
    doc = {
        "carrier": "Ar",
        "total_flow_mol_per_s": 7.436e-7,
        "step": [
            {"start_s": 10.0, "end_s": 100.0, "mole_fraction": {"CO2": 0.0}},
            {"start_s": 100.0, "end_s": 200.0, "mole_fraction": {"CO2": 0.001}},
        ],
    }
    doc.update(changes)
    return doc


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"step": []}, "no .*step.* tables"),
        ({"total_flow_mol_per_s": 0.0}, "must be positive"),
        ({"total_flow_mol_per_s": -1e-7}, "must be positive"),
        ({"step": [{"start_s": 0.0, "end_s": 9.0, "mole_fraction": {"CO2": 1.5}}]}, "0–1"),
        ({"step": [{"start_s": 0.0, "end_s": 9.0, "mole_fraction": {"CO2": -0.1}}]}, "0–1"),
        ({"step": [{"start_s": 5.0, "end_s": 1.0, "mole_fraction": {"CO2": 0.1}}]}, "after"),
        ({"step": [{"start_s": 0.0, "end_s": 9.0, "mole_fraction": {"CO2": 0.0}}]}, "every mole"),
        ({"step": [{"start_s": 0.0, "end_s": 9.0}]}, "mole_fraction"),
        ({"step": [{"start_s": 0.0, "end_s": 9.0, "mole_fraction": {"CO2": "x"}}]}, "finite"),
    ],
)
def test_bad_steps_documents_raise_clear_errors(changes, message):
    with pytest.raises(CalibrationError, match=message):
        parse_steps(_document(**changes), source="steps.toml")


def test_sccm_flow_and_all_zero_baseline_steps_are_valid():
    doc = _document()
    del doc["total_flow_mol_per_s"]
    doc["total_flow_sccm"] = 2.0
    steps = parse_steps(doc)
    assert steps.steps[1].flux_mol_per_s("CO2") == pytest.approx(0.001 * 2 * 7.436e-7, rel=1e-3)
    assert steps.gases == ["CO2"]


def test_read_steps_names_the_file_on_bad_toml(tmp_path):
    path = tmp_path / "steps.toml"
    path.write_text("carrier = \n")
    with pytest.raises(CalibrationError, match=r"steps\.toml: not valid TOML"):
        read_steps(path)
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(CalibrationError, match=r"steps\.toml"):
        read_steps(path)


def test_steps_toml_round_trip(tmp_path, experiment):
    path = write_steps_toml(experiment.calibration_steps, tmp_path / "steps.toml")
    steps = read_steps(path)
    assert len(steps.steps) == len(experiment.calibration_steps["step"])
    assert steps.steps[0].total_flow_mol_per_s == pytest.approx(SCCM_MOL_PER_S)


def test_windows_outside_the_file_are_rejected(experiment):
    doc = dict(experiment.calibration_steps)
    doc["step"] = [*doc["step"], {"start_s": 1e6, "end_s": 2e6, "mole_fraction": {"O2": 0.001}}]
    with pytest.raises(CalibrationError, match="outside the calibration file"):
        calibrate_gas_steps(experiment.calibration_ms, parse_steps(doc, "steps.toml"))


def test_gas_without_calibrated_mass_is_rejected(experiment):
    doc = _document()
    doc["step"][1]["mole_fraction"] = {"H2": 0.01}  # m/z 2 is not a channel
    with pytest.raises(CalibrationError, match="H2 has no calibrated m/z"):
        calibrate_gas_steps(experiment.calibration_ms, parse_steps(doc, "steps.toml"))


def test_too_few_steps_for_the_fit(experiment):
    doc = _document()
    doc["step"] = [{"start_s": 100.0, "end_s": 600.0, "mole_fraction": {"O2": 0.001}}]
    with pytest.raises(CalibrationError, match="usable step"):
        calibrate_gas_steps(experiment.calibration_ms, parse_steps(doc, "steps.toml"))


def test_faradaic_sensitivity_recovers_factor():
    t = np.arange(0.0, 600.0, 1.0)
    current_mA = np.where((t >= 100) & (t < 300), 0.5, 0.0)  # 0.1 C
    z, factor, delay = 4.0, 0.42, 12.0
    flux = np.interp(t - delay, t, current_mA * 1e-3 / (z * FARADAY))
    signal = factor * flux
    result = faradaic_sensitivity(t, signal, t, current_mA, (50.0, 400.0), z, delay_s=delay)
    assert result["charge_C"] == pytest.approx(0.1, rel=1e-2)
    assert result["F_C_per_mol"] == pytest.approx(factor, rel=1e-2)
    with pytest.raises(CalibrationError, match="< 2 samples"):
        faradaic_sensitivity(t, signal, t, current_mA, (1e5, 2e5), z)


def test_calibration_json_round_trip_and_bad_files(tmp_path, calibration):
    path = tmp_path / "cal.json"
    write_json_atomic(path, calibration.to_document())
    document = read_calibration(path)
    assert document.sensitivity == calibration.sensitivity
    assert (document.method, document.carrier) == ("gas steps", calibration.carrier)
    assert document.delay_s == calibration.delay_s
    assert document.path == str(path.resolve())
    factors = sensitivity_factors(document)
    assert set(factors) == {"O2", "CO2", "CO"}
    assert factors["O2"][32.0] == pytest.approx(0.5, rel=0.03)
    assert "NaN" not in path.read_text()
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(CalibrationError, match=r"bad\.json: not a calibration JSON"):
        read_calibration(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text(json.dumps({"format": "x"}))
    with pytest.raises(CalibrationError, match="not an operando calibration"):
        read_calibration(tmp_path / "other.json")
    (tmp_path / "empty.json").write_text(json.dumps({"format": FORMAT, "sensitivity": {}}))
    with pytest.raises(CalibrationError, match="no positive sensitivity"):
        read_calibration(tmp_path / "empty.json")


def test_faradaic_calibration_on_datasets_with_drifting_background():
    import xarray as xr

    from dems.calibration import faradaic_calibration

    t = np.arange(0.0, 2000.0, 2.0)
    current_mA = np.where((t >= 600) & (t < 900), 0.2, 0.0)
    z, factor, delay = 2.0, 0.8, 9.0
    flux = np.interp(t - delay, t, current_mA * 1e-3 / (z * FARADAY))
    background = 1e-11 + 1e-15 * t
    ms = xr.Dataset(
        {"signal": (("channel", "sample"), [factor * flux + background, background])},
        coords={
            "channel": ["M44", "M32"],
            "mass": ("channel", [44.0, 32.0]),
            "time": (("channel", "sample"), [t, t + 0.5]),
        },
    )
    ec = xr.Dataset({"current": ("time", current_mA)}, coords={"time": t})
    result = faradaic_calibration(
        ms,
        ec,
        gas="CO2",
        mass=44.0,
        z=z,
        ec_window=(500.0, 1000.0),
        background_windows=[(100.0, 400.0), (1300.0, 1600.0)],
        delay_s=delay,
    )
    entry = result.sensitivity["CO2"]["44"]
    assert entry["F_C_per_mol"] == pytest.approx(factor, rel=0.01)
    assert entry["charge_C"] == pytest.approx(0.06, rel=0.01)
    assert result.method == "faradaic"
    with pytest.raises(CalibrationError, match="m/z 28 is not a channel"):
        faradaic_calibration(
            ms, ec, gas="CO", mass=28.0, z=2, ec_window=(0, 1), background_windows=[(0, 10)]
        )
