"""The tofsims commands on the real SurfaceLab 7.3 exports, read through tofsims.io."""

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from pipelines.cli import cli

FOLDER = "tofsims/uhasselt_surfacelab73_depth_profiles"
NEGATIVE = "I241209p_A_MAPI_1f-1nA_neg-B4 - NF.txt"
STATIC = "I241213h_M_PCBM-ref_2D_neg-B1 - NF.txt"


@pytest.fixture
def negative(data_dir):
    return data_dir / FOLDER / NEGATIVE


def _run(*args):
    return CliRunner().invoke(cli, ["tofsims", *map(str, args)])


def _raw_columns(path):
    """Read the columns straight from the text (independent of tofsims.io)."""
    lines = path.read_text(encoding="latin-1").splitlines()
    labels = lines[1].split("\t")[4:-1]
    table = np.array([[float(v) for v in line.split("\t")[:-1]] for line in lines[4:]])
    return labels, table


def test_cei_on_a_real_profile_matches_the_raw_columns(negative, tmp_path):
    summary_path = tmp_path / "summary.json"
    result = _run(
        "cei",
        negative,
        "--sputter-rate",
        0.05,
        "--marker",
        "PO3-",
        "--bulk",
        "O-",
        "--summary",
        summary_path,
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(summary_path.read_text())
    labels, table = _raw_columns(negative)
    time = table[:, 1]
    for label, fragment in (("PO_3-", "PO3-"), ("F-", "F-"), ("CN-", "CN-")):
        column = table[:, 4 + labels.index(label)]
        entry = summary["fragments"][fragment]
        assert entry["time_to_max_s"] == pytest.approx(time[np.argmax(column)])
        assert entry["depth_at_max_nm"] == pytest.approx(0.05 * time[np.argmax(column)])
    assert summary["fragments"]["PO3-"]["time_to_max_s"] == pytest.approx(105.595)
    # whole-field value only: no map, std null with its reason
    cei = summary["cei_thickness_nm"]
    assert (
        cei["mean"] == cei["median"] == pytest.approx(summary["fragments"]["PO3-"]["depth_50_nm"])
    )
    assert cei["std"] is None and "cei_thickness_nm.std" in summary["null_reasons"]
    assert summary["coating_thickness_nm"] is None  # no CeO2- in a perovskite stack
    assert summary["input"]["kind"] == "depth profile"
    assert (
        summary["two_marker_crossing_nm"]["value"] > summary["fragments"]["PO3-"]["depth_at_max_nm"]
    )


def test_cei_seconds_per_scan_on_a_profile(negative, tmp_path):
    summary_path = tmp_path / "summary.json"
    result = _run(
        "cei",
        negative,
        "--sputter-rate",
        0.05,
        "--marker",
        "PO3-",
        "--seconds-per-scan",
        2,
        "--summary",
        summary_path,
    )
    assert result.exit_code == 0, result.output
    assert json.loads(summary_path.read_text())["fragments"]["PO3-"]["time_to_max_s"] == 144.0


def test_map_needs_a_volume(negative, tmp_path):
    result = _run(
        "cei",
        negative,
        "--sputter-rate",
        0.05,
        "--marker",
        "PO3-",
        "--map",
        tmp_path / "map.nc",
        "--summary",
        tmp_path / "s.json",
    )
    assert result.exit_code == 2 and "--map needs a volume" in result.output
    assert not (tmp_path / "s.json").exists()


def test_profile_passes_a_real_export_through(negative, tmp_path):
    out = tmp_path / "neg.csv"
    result = _run("profile", negative, "-o", out)
    assert result.exit_code == 0, result.output
    written = pd.read_csv(out)
    labels, table = _raw_columns(negative)
    assert len(written) == 164  # the incomplete last cycle (total == 0) is dropped
    np.testing.assert_allclose(written["sputter_time_s"], table[:164, 1])
    np.testing.assert_allclose(written["PO_3-"], table[:164, 4 + labels.index("PO_3-")])
    assert written["total"].sum() == pytest.approx(71112496)


def test_static_export_runs(data_dir, tmp_path):
    result = _run(
        "cei",
        data_dir / FOLDER / STATIC,
        "--sputter-rate",
        0.05,
        "--marker",
        "PO3-",
        "--summary",
        tmp_path / "s.json",
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "s.json").read_text())
    # every maximum of the static file is at its first point (1.6384 s)
    assert summary["fragments"]["PO3-"]["time_to_max_s"] == pytest.approx(1.6384)
    # the default bulk marker NiO2- is absent: the crossing is null with its reason
    assert summary["two_marker_crossing_nm"]["value"] is None
    assert "NiO2-" in summary["null_reasons"]["two_marker_crossing_nm.value"]
