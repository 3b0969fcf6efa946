"""The tofsims commands on the real SurfaceLab 7.3 exports, read through tofsims.io."""

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy.ndimage import gaussian_filter1d

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


def _smoothed_peak_index(column):
    """Fractional scan of the maximum of the column smoothed over 2 scans (parabola vertex)."""
    smooth = gaussian_filter1d(np.asarray(column, dtype=float), 2.0, mode="nearest")
    k = int(np.argmax(smooth))
    left, centre, right = smooth[k - 1 : k + 2]
    return k + 0.5 * (left - right) / (left - 2 * centre + right)


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
        "--force",  # PO3- marks a buried interface here (checked below)
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(summary_path.read_text())
    labels, table = _raw_columns(negative)
    time = table[:, 1]
    step = np.median(np.diff(time))
    for label, fragment in (("PO_3-", "PO3-"), ("F-", "F-"), ("CN-", "CN-")):
        column = table[:164, 4 + labels.index(label)]
        entry = summary["fragments"][fragment]
        peak = np.interp(_smoothed_peak_index(column), np.arange(164), time[:164])
        assert entry["time_to_max_s"] == pytest.approx(peak, abs=1e-6)
        assert abs(entry["time_to_max_s"] - time[np.argmax(column)]) <= 2 * step  # raw argmax
        assert entry["depth_at_max_nm"] == pytest.approx(0.05 * entry["time_to_max_s"])
        assert 0 < entry["time_to_max_uncertainty_s"] < step
    # whole-field layer-stack fit only: no map, std null with its reason
    cei = summary["cei_thickness_nm"]
    assert cei["method"] == "stack fit"
    assert cei["mean"] == cei["median"] == cei["whole_field"]
    assert (
        cei["estimators"]["50 % after the maximum"] == summary["fragments"]["PO3-"]["depth_50_nm"]
    )
    assert cei["std"] is None and "cei_thickness_nm.std" in summary["null_reasons"]
    assert "CeO2-" not in summary["layer_stack"]["fragments"]  # no CeO2- in a perovskite stack
    assert summary["input"]["kind"] == "depth profile"
    assert summary["input"]["stack_fragments"] == ["PO3-", "O-"]
    assert "buried" in summary["warnings"][0]
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
        "--force",
    )
    assert result.exit_code == 0, result.output
    labels, table = _raw_columns(negative)
    index = _smoothed_peak_index(table[:164, 4 + labels.index("PO_3-")])
    time_to_max = json.loads(summary_path.read_text())["fragments"]["PO3-"]["time_to_max_s"]
    assert time_to_max == pytest.approx(2 * index)  # scan k starts at 2k s


def test_buried_marker_is_an_error_without_force(negative, tmp_path):
    summary_path = tmp_path / "summary.json"
    result = _run("cei", negative, "--sputter-rate", 0.05, "--marker", "PO3-", "--summary",
                  summary_path)  # fmt: skip
    assert result.exit_code == 1
    (line,) = result.output.strip().splitlines()
    assert NEGATIVE in line and "PO3-" in line and "buried" in line and "--force" in line
    assert not summary_path.exists()


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


def test_static_export_is_an_error_without_force_and_a_warning_with_it(data_dir, tmp_path):
    static = data_dir / FOLDER / STATIC
    args = ["cei", static, "--sputter-rate", 0.05, "--marker", "PO3-", "--summary"]
    refused = _run(*args, tmp_path / "refused.json")
    assert refused.exit_code == 1
    (line,) = refused.output.strip().splitlines()
    assert STATIC in line and "static acquisition" in line and "--force" in line
    assert not (tmp_path / "refused.json").exists()
    result = _run(*args, tmp_path / "s.json", "--force")
    assert result.exit_code == 0, result.output
    assert "warning: static acquisition" in result.output
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["cei_thickness_nm"]["mean"] is not None  # a thickness, flagged
    assert any("static acquisition" in warning for warning in summary["warnings"])
    # every maximum of the static file is at its first point (1.6384 s)
    assert summary["fragments"]["PO3-"]["time_to_max_s"] == pytest.approx(1.6384)
    # the default bulk marker NiO2- is absent: the crossing is null with its reason
    assert summary["two_marker_crossing_nm"]["value"] is None
    assert "NiO2-" in summary["null_reasons"]["two_marker_crossing_nm.value"]
