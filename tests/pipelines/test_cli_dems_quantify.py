"""``operando dems calibrate`` and ``operando dems process`` on synthetic instrument files."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

from dems.synthetic import make_experiment
from dems.synthetic_files import write_experiment, write_steps_toml
from pipelines.cli import cli


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synthetic")
    experiment = make_experiment(seed=21, ms_lead_s=900.0, clock_offset_s=30.0)
    return experiment, write_experiment(experiment, folder)


def test_help_texts_have_examples():
    for command in ("calibrate", "process"):
        result = invoke("dems", command, "--help")
        assert result.exit_code == 0
        assert "Examples:" in result.output
        assert f"operando dems {command}" in result.output


def test_process_and_calibrate_help_stay_light():
    code = (
        "import sys\nfrom pipelines.cli import main\n"
        "for args in (['dems', 'process', '--help'], ['dems', 'calibrate', '--help']):\n"
        "    try:\n        main(args)\n    except SystemExit:\n        pass\n"
        "assert 'xarray' not in sys.modules and 'dask' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('carrier = "Ar"\ntotal_flow_sccm = 1.0\n', "no .*step.* tables"),
        (
            "total_flow_sccm = -1.0\n[[step]]\nstart_s = 0.0\nend_s = 5.0\n"
            "mole_fraction = { O2 = 0.1 }\n",
            "must be positive",
        ),
        (
            "total_flow_sccm = 1.0\n[[step]]\nstart_s = 0.0\nend_s = 5.0\n"
            "mole_fraction = { O2 = 2.0 }\n",
            "0–1",
        ),
        ("this is = = not toml", "not valid TOML"),
    ],
)
def test_calibrate_rejects_bad_steps_with_one_line(tmp_path, files, text, message):
    _, paths = files
    steps = tmp_path / "bad_steps.toml"
    steps.write_text(text)
    out = tmp_path / "cal.json"
    result = invoke("dems", "calibrate", paths["calibration_ms"], "--steps", steps, "-o", out)
    assert result.exit_code == 1, result.output
    assert "bad_steps.toml" in result.output
    assert len([line for line in result.output.splitlines() if line.strip()]) == 1
    assert re.search(message, result.output)
    assert not out.exists()


def test_process_rejects_an_unknown_output_suffix(tmp_path, files):
    _, paths = files
    result = invoke(
        "dems",
        "process",
        paths["ms"],
        "--ec",
        paths["ec"],
        "-o",
        tmp_path / "x.csv",
        "--summary",
        tmp_path / "s.json",
    )
    assert result.exit_code == 2
    assert ".zarr or .nc" in result.output


def test_calibrate_then_process_recovers_the_truth(tmp_path, files):
    experiment, paths = files
    truth = experiment.truth
    calibration = tmp_path / "calibration.json"
    result = invoke(
        "dems",
        "calibrate",
        paths["calibration_ms"],
        "--steps",
        paths["steps"],
        "-o",
        calibration,
        "--timezone",
        "UTC",
    )
    assert result.exit_code == 0, result.output
    document = json.loads(calibration.read_text())
    assert document["delay_s"] == pytest.approx(truth["delay_s"], abs=2.0)
    assert document["sensitivity"]["O2"]["32"]["F_C_per_mol"] == pytest.approx(0.5, rel=0.03)

    out, summary_path = tmp_path / "run.zarr", tmp_path / "summary.json"
    result = invoke(
        "dems",
        "process",
        paths["ms"],
        "--ec",
        paths["ec"],
        "--calibration",
        calibration,
        "-o",
        out,
        "--summary",
        summary_path,
        "--timezone",
        "UTC",
        "--clock-offset",
        truth["align_offset_s"],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(summary_path.read_text())
    assert summary["onsets"]["O2"]["potential_V"] == pytest.approx(4.39, abs=0.015)
    assert summary["onsets"]["CO2"]["potential_V"] == pytest.approx(4.35, abs=0.015)
    assert summary["onsets"]["CO"]["potential_V"] is None
    for gas in ("O2", "CO2"):
        assert summary["evolved"][gas]["umol"] == pytest.approx(
            truth["evolved"][gas]["umol"], rel=0.05
        )
        assert summary["evolved"][gas]["umol_per_g"] == pytest.approx(
            truth["evolved"][gas]["umol_per_g"], rel=0.05
        )
    assert summary["mass_g"] == pytest.approx(0.010)
    assert set(summary["sensitivity"]["CO2"]) >= {"44", "28", "16"}
    with xr.open_zarr(out, consolidated=False) as result_ds:
        assert result_ds["flux"].dims == ("gas", "time")
        assert np.isfinite(result_ds["potential"]).mean() > 0.8
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]

    # --mass overrides the file's mass; netCDF output
    result = invoke(
        "dems",
        "process",
        paths["ms"],
        "--ec",
        paths["ec"],
        "--calibration",
        calibration,
        "-o",
        tmp_path / "run.nc",
        "--summary",
        summary_path,
        "--timezone",
        "UTC",
        "--clock-offset",
        truth["align_offset_s"],
        "--mass",
        20,
        "--overwrite",
    )
    assert result.exit_code == 0, result.output
    halved = json.loads(summary_path.read_text())["evolved"]["O2"]["umol_per_g"]
    assert halved == pytest.approx(truth["evolved"]["O2"]["umol_per_g"] / 2, rel=0.05)
    assert (tmp_path / "run.nc").exists()


def test_process_without_calibration_reports_onsets_but_no_amounts(tmp_path, files):
    experiment, paths = files
    summary_path = tmp_path / "summary.json"
    result = invoke(
        "dems",
        "process",
        paths["ms"],
        "--ec",
        paths["ec"],
        "-o",
        tmp_path / "r.nc",
        "--summary",
        summary_path,
        "--timezone",
        "UTC",
        "--delay",
        12.8,
        "--clock-offset",
        experiment.truth["align_offset_s"],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(summary_path.read_text())
    assert summary["evolved"]["O2"]["umol"] is None
    assert summary["evolved"]["O2"]["reason"] == "no calibration"
    assert summary["onsets"]["O2"]["potential_V"] == pytest.approx(4.39, abs=0.015)


def test_process_rejects_a_broken_calibration_file(tmp_path, files):
    _, paths = files
    broken = tmp_path / "cal.json"
    broken.write_text("{")
    result = invoke(
        "dems",
        "process",
        paths["ms"],
        "--ec",
        paths["ec"],
        "--calibration",
        broken,
        "-o",
        tmp_path / "r.nc",
        "--summary",
        tmp_path / "s.json",
    )
    assert result.exit_code == 1
    assert "cal.json: not a calibration JSON" in result.output
    assert not (tmp_path / "r.nc").exists() and not (tmp_path / "s.json").exists()


def test_steps_written_by_the_generator_are_valid_toml(tmp_path, files):
    experiment, _ = files
    path = write_steps_toml(experiment.calibration_steps, tmp_path / "steps.toml")
    import tomllib

    assert tomllib.loads(path.read_text())["step"][0]["start_s"] == 60.0


def test_calibrate_needs_steps_or_faradaic(tmp_path, files):
    _, paths = files
    out = tmp_path / "cal.json"
    result = invoke("dems", "calibrate", paths["calibration_ms"], "-o", out)
    assert result.exit_code == 2 and "--steps" in result.output
    result = invoke(
        "dems", "calibrate", paths["calibration_ms"], "--faradaic", "CO2:44:2", "-o", out
    )
    assert result.exit_code == 2 and "--ec-window" in result.output
    result = invoke(
        "dems",
        "calibrate",
        paths["calibration_ms"],
        "--faradaic",
        "CO2-44",
        "--ec",
        paths["ec"],
        "--ec-window",
        "0:10",
        "--bg-window",
        "0:5",
        "-o",
        out,
    )
    assert result.exit_code == 2 and "GAS:MZ:Z" in result.output
    assert not out.exists()


def test_process_rejects_an_unknown_gas(tmp_path, files):
    _, paths = files
    result = invoke(
        "dems",
        "process",
        paths["ms"],
        "--ec",
        paths["ec"],
        "-o",
        tmp_path / "x.nc",
        "--summary",
        tmp_path / "s.json",
        "--gas",
        "Unobtainium",
    )
    assert result.exit_code == 2
    assert "no fragmentation pattern" in result.output and "CO2" in result.output
