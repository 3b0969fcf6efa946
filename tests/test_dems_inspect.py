"""``operando dems inspect`` on real files, including the bundled ``--example`` run."""

from __future__ import annotations

import json

from click.testing import CliRunner

from pipelines.cli import cli

MASSES = [2, 4, 15, 18, 26, 28, 29, 32, 40, 43, 44, 45, 59, 88, 19, 56]


def run_json(*args: str) -> list[dict]:
    result = CliRunner().invoke(cli, ["dems", "inspect", "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_example_run_as_json():
    report = run_json("--example", "--timezone", "Europe/Copenhagen")
    names = [entry["file"].rsplit("/", 1)[-1] for entry in report]
    assert names == [
        "2022-09-19 11_27_59 test-21.tsv",
        "2022-09-19 11_27_59 test-21_01_01_CV_C01.mpt",
        "2022-09-19 11_27_59 test-21_01_02_CP_C01.mpt",
    ]
    ms, zilien_ec = report[0]["streams"]
    assert ms["kind"] == "ms" and len(ms["channels"]) == 16
    assert [c["mass"] for c in ms["channels"]] == [float(m) for m in MASSES]
    assert all(c["samples"] == 18 and c["units"] == "A" for c in ms["channels"])
    assert ms["start_time"] == "2022-09-19T11:28:02.704037+02:00"
    assert ms["timezone_source"] == "file"
    assert zilien_ec["kind"] == "ec" and zilien_ec["samples"] == 1191
    cv = report[1]["streams"][0]
    assert cv["technique"] == "Cyclic Voltammetry" and cv["samples"] == 1170
    assert cv["start_time"] == "2022-09-19T11:28:15.894000+02:00"
    assert cv["characteristic_mass_g"] == 0.001
    cp = report[2]["streams"][0]
    assert cp["technique"] == "Chronopotentiometry" and cp["samples"] == 21
    assert any("placeholder" in note for note in report[1]["warnings"])
    assert any("exact zeros in 10 rows" in note for note in report[2]["warnings"])
    potential = next(c for c in cp["columns"] if c["name"] == "potential")
    assert potential["samples"] == 11  # the 10 exported zeros are not counted as data


def test_example_run_as_text():
    result = CliRunner().invoke(cli, ["dems", "inspect", "--example", "--timezone", "UTC"])
    assert result.exit_code == 0, result.output
    assert "channels   : 16" in result.stdout
    assert "M32-O2 [A]" in result.stdout
    assert "technique  : Chronopotentiometry" in result.stdout


def test_bad_mpt_is_one_line_error(tmp_path):
    path = tmp_path / "cut.mpt"
    path.write_text("EC-Lab ASCII FILE\nNb header lines : 80\n\nCyclic Voltammetry\n")
    result = CliRunner().invoke(cli, ["dems", "inspect", str(path)])
    assert result.exit_code == 1
    assert "cut.mpt" in result.output and "truncated" in result.output
    assert "Traceback" not in result.output
