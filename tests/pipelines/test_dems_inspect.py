"""``operando dems inspect`` on real files, including the bundled ``--example`` run."""

from __future__ import annotations

import json

import pytest
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


DEMS_FIXTURES = [
    ("ec_ms_pvmassspec_scan/1_FC_1E-4.dat", ["ms"]),
    ("spectroinlets_co_strip_ixdat_csv/data_part1_COstrip_11-11-21.csv", ["ms", "ec"]),
    ("spectroinlets_co_strip_ixdat_csv/ecdata_part1_COstrip_11-11-21.csv", ["ec"]),
    ("datalab_quadera_asc/20221128 134958 TGA MS Megan.asc", ["ms"]),
    ("ixdat_biologic_mpt/Pt_poly_cv_CUT.mpt", ["ec"]),
]


@pytest.mark.parametrize(("relative", "expected"), DEMS_FIXTURES)
def test_inspect_every_real_format(data_dir, relative, expected):
    path = data_dir / "dems" / relative
    result = CliRunner().invoke(cli, ["dems", "inspect", "--json", "--timezone", "UTC", str(path)])
    assert result.exit_code == 0, result.output
    streams = json.loads(result.output[result.output.index("[") :])[0]["streams"]
    assert [stream["kind"] for stream in streams] == expected
    assert all(stream["start_time"] for stream in streams)
    if relative.endswith(".dat"):
        assert streams[0]["layout"] == "mass scan" and streams[0]["masses"] == 899


def test_inspect_rejects_unknown_timezone(data_dir):
    path = data_dir / "dems" / "ixdat_biologic_mpt" / "Pt_poly_cv_CUT.mpt"
    result = CliRunner().invoke(cli, ["dems", "inspect", "--timezone", "Mars/Base", str(path)])
    assert result.exit_code == 2
    assert "unknown time zone" in result.output


def test_inspect_passes_date_order(tmp_path):
    text = (
        "Sourcefile\tx.qmp\nExporttime\t03/04/2024 10:00:00\n\nStart Time\t03/04/2024 09:00:00\n"
        "End Time\t03/04/2024 09:00:02\n\n\t\t32\t\n"
        "Time\tTime Relative [s]\tIon Current [A]\t\n"
        "03/04/2024 09:00:00\t0.000\t1.0e-11\n03/04/2024 09:00:01\t1.000\t2.0e-11\n"
    )
    path = tmp_path / "ambiguous.asc"
    path.write_text(text)
    ambiguous = CliRunner().invoke(cli, ["dems", "inspect", str(path)])
    assert ambiguous.exit_code == 1 and "ambiguous.asc" in ambiguous.output
    args = [
        "dems",
        "inspect",
        "--json",
        "--timezone",
        "UTC",
        "--date-order",
        "day-first",
        str(path),
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    stream = json.loads(result.output[result.output.index("[") :])[0]["streams"][0]
    assert stream["start_time"].startswith("2024-04-03T09:00:00")
