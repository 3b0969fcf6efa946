"""The DEMS workflows as Python functions: typed options, lazy runs, summaries."""

from __future__ import annotations

import pytest

from dems.calibration_file import Calibration
from dems.calibration_steps import parse_steps
from dems.errors import CalibrationError
from dems.synthetic import make_experiment
from dems.workflows import ProcessOptions, calibrate, process
from dems.workflows.processing import transit_delay
from operando_core.options import OptionError
from tests.tofsims_helpers import raise_if_dask_computes


@pytest.fixture(scope="module")
def experiment():
    return make_experiment(seed=3)


def test_options_are_checked_and_made_canonical():
    options = ProcessOptions(bg_windows=[[0, 600], "9000:9600"], z={"CO2": 2}, gases=["O2"])
    assert options.bg_windows == ((0.0, 600.0), (9000.0, 9600.0))
    assert options.z == (("CO2", 2.0),) and options.gases == ("O2",)
    for bad, name in [
        ({"mass_mg": -1.0}, "mass_mg"),
        ({"k": "3"}, "k"),
        ({"background": "spline"}, "background"),
        ({"bg_windows": [[600, 0]]}, "bg_windows"),
        ({"gases": ["Unobtainium"]}, "gases"),
        ({"timezone": "Mars/Base"}, "timezone"),
        ({"persistence": 2.5}, "persistence"),
        ({"carrier_flow_sccm": 0.0}, "carrier_flow_sccm"),
        ({"flow_reference_C": 20.0}, "flow_reference_C"),  # without a carrier flow
        ({"carrier_flow_sccm": 2.0, "flow_reference_C": -60.0}, "flow_reference_C"),
        ({"cylinder_tolerance": 0.51}, "cylinder_tolerance"),
        ({"flow_controller_tolerance": float("nan")}, "flow_controller_tolerance"),
        ({"knot_spacing_s": 299.0}, "knot_spacing_s"),
        ({"step_reference_mass": -4.0}, "step_reference_mass"),
        ({"baseline_potential_V": 11.0}, "baseline_potential_V"),
        ({"onset_rate_umol_per_min_g": 0.0}, "onset_rate_umol_per_min_g"),
    ]:
        with pytest.raises(OptionError) as caught:
            ProcessOptions(**bad)
        assert caught.value.name == name


def test_a_gas_missing_from_the_calibration_is_an_error(experiment):
    calibration = Calibration(
        method="gas steps", sensitivity={"O2": {"32": {"F_C_per_mol": 0.5}}}, delay_s=12.0
    )
    ec = experiment.ec.assign_coords(time=experiment.ec["time"] + 300.0)
    with pytest.raises(CalibrationError, match=r"\['CO2'\] have no calibrated m/z"):
        process(experiment.ms, ec, calibration, ProcessOptions(gases=("O2", "CO2")))
    assert transit_delay(None, calibration) == (12.0, "calibration")
    assert transit_delay(3.0, calibration) == (3.0, "--delay")
    assert transit_delay(None, None)[0] == 0.0


def test_calibrate_then_process_in_python_finds_the_true_onsets(experiment):
    calibration = calibrate(experiment.calibration_ms, parse_steps(experiment.calibration_steps))
    assert calibration.factors()["O2"][32.0] == pytest.approx(0.5, rel=0.03)
    assert calibration.to_document()["method"] == "gas steps"
    with raise_if_dask_computes():  # building the run computes nothing
        run = process(experiment.ms, experiment.ec, calibration, ProcessOptions(mass_mg=10.0))
    assert run.dataset["flux"].chunks is not None
    assert run.delay_source == "calibration" and run.mass_source == "--mass"
    result = run.compute()
    summary = result.summary.to_dict()
    for gas, onset in experiment.truth["onsets_V"].items():
        found = summary["onsets"][gas]["potential_V"]
        if onset is None:
            assert found is None, gas
        else:
            assert found == pytest.approx(onset, abs=0.015), gas
    # datasets in memory: their source_file attribute stands for the file
    assert summary["inputs"] == {
        "ms": experiment.ms.attrs["source_file"],
        "ec": experiment.ec.attrs["source_file"],
        "calibration": None,
    }
    assert "evolved_reason" not in summary and summary["mass_source"] == "--mass"
    assert "onsets_json" in result.dataset.attrs


def test_a_step_reference_that_is_not_a_channel_is_a_warning(experiment):
    ec = experiment.ec.assign_coords(time=experiment.ec["time"] + 300.0)
    with raise_if_dask_computes():
        run = process(experiment.ms, ec, None, ProcessOptions(step_reference_mass=99.0))
        measured = process(experiment.ms, ec, None, ProcessOptions(step_reference_mass=18.0))
    assert any("--step-reference m/z 99" in w for w in run.warnings)
    assert not any("--step-reference" in w for w in measured.warnings)
