"""Hostile input: out-of-range options, malformed calibration JSON and steps TOML.

Every case must end with exit status 2 (an option) or 1 (a file) and one line naming the
option or the file — never an internal error, a hang, or a written output.
"""

from __future__ import annotations

import json

import pytest

from tests.pipelines.hostile import invoke, one_line_error

PROCESS = ["dems", "process", "operando.asc", "--ec", "cell.mpt", "--calibration", "cal.json"]
PROCESS_OUT = ["-o", "r.zarr", "--summary", "s.json"]
RECONSTRUCT = ["tofsims", "reconstruct", "run.itm.grd", "-o", "v.zarr"]
CEI = ["tofsims", "cei", "run.itm.grd", "--sputter-rate", "0.05", "--summary", "c.json"]


@pytest.fixture
def inputs(hostile_inputs):
    return hostile_inputs


@pytest.mark.parametrize(
    ("command", "flag", "value"),
    [
        (PROCESS, "--persistence", "100000000"),
        (PROCESS, "--persistence", "0"),
        (PROCESS, "--k", "-1"),
        (PROCESS, "--k", "nan"),
        (PROCESS, "--z", "O2=0"),
        (PROCESS, "--z", "O2=nan"),
        (PROCESS, "--z", "Xe=2"),
        (PROCESS, "--gas", "Xe"),
        (PROCESS, "--mass", "1e308"),
        (PROCESS, "--delay", "-1"),
        (PROCESS, "--delay", "1e300"),
        (PROCESS, "--clock-offset", "1e300"),
        (PROCESS, "--degree", "1000"),
        (PROCESS, "--bg-window", "0:inf"),
        (PROCESS, "--bg-window", "0:1e300"),
        (PROCESS, "--carrier-flow", "0"),
        (PROCESS, "--carrier-flow", "nan"),
        (PROCESS, "--carrier-flow", "1e9"),
        (PROCESS, "--flow-reference", "100"),
        (PROCESS, "--cylinder-tolerance", "0.6"),
        (PROCESS, "--flow-controller-tolerance", "-1"),
        (PROCESS, "--knot-spacing", "10"),
        (PROCESS, "--knot-spacing", "inf"),
        (PROCESS, "--step-reference", "0"),
        (PROCESS, "--baseline-potential", "1e3"),
        (PROCESS, "--onset-rate", "0"),
        (PROCESS, "--background", "quiet"),
        (RECONSTRUCT, "--window-u", "1e9"),
        (RECONSTRUCT, "--resolution", "1e-9"),
        (RECONSTRUCT, "--dead-time", "-1"),
        (RECONSTRUCT, "--dead-time", "nan"),
        (RECONSTRUCT, "--dead-time", "1e12"),
        (RECONSTRUCT, "--seconds-per-scan", "0"),
        (RECONSTRUCT, "--seconds-per-scan", "nan"),
        (RECONSTRUCT, "--seconds-per-scan", "-2"),
        (RECONSTRUCT, "--bin", "100000"),
        (CEI, "--seconds-per-scan", "nan"),
        (CEI, "--information-depth", "1e9"),
        (CEI, "--sputter-rate-uncertainty", "-1"),
        (["tofsims", "cei", "run.itm.grd", "--summary", "c.json"], "--sputter-rate", "1e308"),
    ],
)
def test_out_of_range_options_are_usage_errors_naming_the_flag(inputs, command, flag, value):
    outputs = PROCESS_OUT if command is PROCESS else []
    result = invoke(*command, *outputs, flag, value, cwd=inputs)
    assert result.exit_code == 2, result.output
    assert flag in one_line_error(result)
    assert not any((inputs / name).exists() for name in ("r.zarr", "s.json", "v.zarr", "c.json"))


def _calibration(inputs, edit):
    document = json.loads((inputs / "cal.json").read_text())
    edit(document)
    return json.dumps(document)


CALIBRATIONS = {
    "list of factors": lambda d: d.update(sensitivity=[1, 2]),
    "m/z not a number": lambda d: d["sensitivity"]["O2"].update({"abc": {"F_C_per_mol": 1}}),
    "m/z infinite": lambda d: d["sensitivity"]["O2"].update({"1e400": {"F_C_per_mol": 1}}),
    "entry a list": lambda d: d["sensitivity"].update(O2=[1]),
    "entry a string": lambda d: d["sensitivity"]["O2"].update({"32": "x"}),
    "stderr a string": lambda d: d["sensitivity"]["O2"]["32"].update(F_stderr_C_per_mol="x"),
    "unknown gas": lambda d: d["sensitivity"].update(Xe={"131": {"F_C_per_mol": 1}}),
    "integer beyond float": lambda d: d.update(delay_s=10**400),
    "absurd delay": lambda d: d.update(delay_s=-1e300),
    "transitions a number": lambda d: d.update(transitions=5),
    "method a table": lambda d: d.update(method={"a": 1}),
    "version 2": lambda d: d.update(version=2),
}


@pytest.mark.parametrize("case", [*CALIBRATIONS, "deep nesting", "not JSON"])
def test_malformed_calibration_json_is_one_line_naming_the_file(inputs, case):
    if case == "deep nesting":
        text = "[" * 100_000 + "]" * 100_000
    elif case == "not JSON":
        text = '{"format": "operando-dems-calibration", '
    else:
        text = _calibration(inputs, CALIBRATIONS[case])
    (inputs / "cal.json").write_text(text)
    result = invoke(*PROCESS, *PROCESS_OUT, cwd=inputs)
    assert result.exit_code == 1, result.output
    assert "cal.json" in one_line_error(result)
    assert not (inputs / "s.json").exists() and not (inputs / "r.zarr").exists()


def _steps(inputs, old, new):
    text = (inputs / "steps.toml").read_text()
    assert old in text
    return text.replace(old, new, 1)


STEPS = {
    "flow 1e308 sccm": ("total_flow_sccm = 1.0", "total_flow_sccm = 1e308"),
    "flow 0 sccm": ("total_flow_sccm = 1.0", "total_flow_sccm = 0"),
    "time 1e308": ("end_s = 659.0", "end_s = 1e308"),
    "carrier a list": ("[[step]]", "carrier = [1]\n[[step]]"),
    "unknown gas": ("mole_fraction = {", "mole_fraction = { Xe = 0.001,"),
    "fraction a table": ("mole_fraction = {", "mole_fraction = { CO = { a = 1 },"),
    "not TOML": ("[[step]]", "[[step]"),
    "step a number": ("[[step]]", "step = 5\n[[steps]]"),
}


@pytest.mark.parametrize("case", STEPS)
def test_malformed_steps_toml_is_one_line_naming_the_file(inputs, case):
    text = _steps(inputs, *STEPS[case])
    (inputs / "steps.toml").write_text(text)
    result = invoke(
        "dems", "calibrate", "calibration.asc", "--steps", "steps.toml", "-o", "c2.json", cwd=inputs
    )
    assert result.exit_code == 1, result.output
    assert "steps.toml" in one_line_error(result)
    assert not (inputs / "c2.json").exists()


def test_underdetermined_calibration_is_an_error_naming_the_calibration(inputs):
    def same_mass_only(document):
        document["sensitivity"] = {
            "O2": {"32": {"F_C_per_mol": 0.5}},
            "CO2": {"32": {"F_C_per_mol": 0.2}},
        }

    (inputs / "cal.json").write_text(_calibration(inputs, same_mass_only))
    result = invoke(*PROCESS, *PROCESS_OUT, cwd=inputs)
    assert result.exit_code == 1, result.output
    line = one_line_error(result)
    assert "cal.json" in line and "cannot be separated" in line
