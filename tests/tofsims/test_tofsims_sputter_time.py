"""Sputter time from properties.txt and one time convention (start of each scan) everywhere."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from pipelines.cli import cli
from tofsims.io import open_tofsims
from tofsims.io.grd import read as read_grd
from tofsims.io.properties import parse_properties
from tofsims.reconstruct import reconstruct
from tofsims.synthetic import layered_sample
from tofsims.synthetic_raw import write_grd, write_surfacelab_profile

# A real SurfaceLab value: 1310.72 s of sputtering over 100 scans (IONTOF property test line).
REAL_LINES = (
    "Analysis.SputterTime\t1311\t1310.7199668884277\t1310.72 s\r\n"
    "Analysis.TotalScans\t100\t100\t100\r\n"
)


def test_properties_give_seconds_per_scan(tmp_path):
    props = parse_properties(REAL_LINES, tmp_path / "p.txt")
    seconds, source = props.seconds_per_scan()
    assert seconds == pytest.approx(13.107199668884277)
    assert source == "properties.txt: Analysis.SputterTime / Analysis.TotalScans"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("", "has no Analysis.SputterTime"),
        ("Analysis.SputterTime\t0\tNaN\t\r\n", "no numeric value"),
        ("Analysis.SputterTime\t0\t0\t0 s\r\n", "is 0 s"),
    ],
)
def test_properties_without_a_sputter_time(tmp_path, line, reason):
    props = parse_properties(line + "Analysis.TotalScans\t100\t100\t100\r\n", tmp_path / "p.txt")
    seconds, why = props.seconds_per_scan()
    assert math.isnan(seconds) and reason in why


@pytest.fixture(scope="module")
def grd(tmp_path_factory):
    folder = tmp_path_factory.mktemp("grd")
    volume, truth = layered_sample("modified", seed=2, ny=16, nx=16, n_scans=120)
    path = folder / "run.itm.grd"
    write_grd(volume["counts"], path, seconds_per_scan=2.0, seed=2)
    return path, volume, truth


def test_grd_reader_and_reconstruction_use_the_properties(grd):
    path, _, _ = grd
    text = path.with_name(path.name + ".properties.txt").read_bytes().decode("cp1252")
    assert "Analysis.SputterTime\t240\t240.0\t240 s" in text
    events = read_grd(path)
    assert events.attrs["seconds_per_scan"] == 2.0
    assert events.attrs["sputter_time_source"].startswith("properties.txt")
    binned = reconstruct(events, ["LiF2-", "NiO2-"])
    np.testing.assert_allclose(binned["sputter_time"], 2.0 * np.arange(120))  # scan starts
    assert binned["sputter_time"].attrs["time_reference"] == "start"
    assert binned.attrs["sputter_time_source"].startswith("properties.txt")
    # the argument still overrides
    override = reconstruct(events, ["LiF2-"], seconds_per_scan=3.0)
    assert override["sputter_time"].values[1] == 3.0
    assert override.attrs["sputter_time_source"] == "argument seconds_per_scan"


def test_one_time_axis_for_grd_volume_surfacelab_profile_and_synthetic(grd, tmp_path):
    path, volume, _ = grd
    from_grd = reconstruct(read_grd(path), ["LiF2-"])["sputter_time"].values
    surfacelab = tmp_path / "profile.txt"
    write_surfacelab_profile(volume["counts"], surfacelab, seconds_per_scan=2.0)
    profile = open_tofsims(surfacelab)
    np.testing.assert_allclose(profile["sputter_time"].values, from_grd)
    np.testing.assert_allclose(volume["sputter_time"].values, from_grd)
    assert profile["sputter_time"].attrs["time_reference"] == "start"


def test_cei_and_profile_need_no_seconds_per_scan(grd, tmp_path):
    path, _, truth = grd
    summary = tmp_path / "s.json"
    result = CliRunner().invoke(
        cli,
        [
            "tofsims",
            "cei",
            str(path),
            "--sputter-rate",
            "0.05",
            "--marker",
            "LiF2-",
            "--summary",
            str(summary),
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(summary.read_text())
    assert data["input"]["sputter_time_source"] == (
        "properties.txt: Analysis.SputterTime / Analysis.TotalScans"
    )
    assert data["cei_thickness_nm"]["mean"] == pytest.approx(
        float(truth.cei_thickness_nm.mean()), rel=0.1
    )
    table = tmp_path / "p.csv"
    result = CliRunner().invoke(cli, ["tofsims", "profile", str(path), "-o", str(table)])
    assert result.exit_code == 0, result.output
    times = pd.read_csv(table)["sputter_time_s"]
    assert list(times[:3]) == [0, 2, 4]  # the start of each scan
