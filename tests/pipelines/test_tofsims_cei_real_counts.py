"""`operando tofsims cei` and `operando batch` on GRD event lists at real TOF-SIMS count levels.

The issue-12 scenario: a 64 × 64-pixel, 250-scan GRD event list with its ``properties.txt``
(``Analysis.SputterTime``), a cycled cathode whose CEI varies from about 5 to 11 nm, ≈ 0.55
LiF2− counts per pixel and scan at the maximum — well under one count per voxel.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from pipelines.cli import cli
from tofsims.synthetic import layered_sample, marker_peak_counts
from tofsims.synthetic_raw import write_grd

pytestmark = pytest.mark.timeout(900)

CEI = ["--sputter-rate", "0.05", "--marker", "LiF2-", "--bulk", "NiO2-"]


def _write(folder, preset, seed, **grd_options):
    volume, truth = layered_sample(preset, seed=seed)
    path = folder / f"{preset}.itm.grd"
    seconds = float(volume["sputter_time"][1] - volume["sputter_time"][0])
    write_grd(volume["counts"], path, seed=seed, **{"seconds_per_scan": seconds, **grd_options})
    return path, truth


@pytest.fixture(scope="module")
def cycled(tmp_path_factory):
    """The generated GRD run (properties with the sputter time) and its ground truth."""
    return _write(tmp_path_factory.mktemp("cycled"), "cycled", seed=21)


@pytest.fixture(scope="module")
def cycled_summary(cycled, tmp_path_factory):
    path, _ = cycled
    summary_path = tmp_path_factory.mktemp("cei") / "s.json"
    # the command line: no --seconds-per-scan
    result = _invoke("tofsims", "cei", path, *CEI, "--summary", summary_path)
    assert result.exit_code == 0, result.output
    return json.loads(summary_path.read_text()), result.output


def _invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_the_run_is_at_real_count_levels(cycled):
    _, truth = cycled
    assert marker_peak_counts(truth, "LiF2-") == pytest.approx(0.55, rel=0.01)
    assert truth.cei_thickness_nm.shape == (64, 64) and truth.sputter_rate_nm_per_s == 0.05


def test_mean_cei_within_5_percent_without_seconds_per_scan(cycled, cycled_summary):
    _, truth = cycled
    summary, output = cycled_summary
    cei = summary["cei_thickness_nm"]
    mean = float(truth.cei_thickness_nm.mean())
    assert cei["mean"] == pytest.approx(mean, rel=0.05)
    assert cei["method"] == "stack map"
    assert cei["valid_fraction"] >= 0.9 and cei["masked_fraction"] == 0
    assert cei["whole_field"] == pytest.approx(mean, rel=0.05)
    # the ± is the combined budget and covers the error
    assert 0 < cei["uncertainty"] and abs(cei["mean"] - mean) <= 2 * cei["uncertainty"]
    assert summary["input"]["sputter_time_source"].startswith("properties.txt")
    # tofsims.synthetic plants 11BO2- without its 10BO2-: the isotope evidence says, rightly,
    # that such a "BO2-" is not boron (the only warning)
    assert len(summary["warnings"]) == 1
    assert summary["warnings"][0].startswith("BO2- window counts are inconsistent with boron")
    assert summary["coating_thickness_nm"] is None  # none invented
    # the console line: thickness ± uncertainty (method); coating
    line = next(x for x in output.splitlines() if x.startswith("CEI thickness"))
    assert line.startswith(
        f"CEI thickness (LiF2-): {cei['mean']:.2f} ± {cei['uncertainty']:.2f} nm (stack map); "
        "coating none"
    )


def test_time_to_maximum_and_plateau_carry_their_sigma(cycled_summary):
    summary, _ = cycled_summary
    lif2 = summary["fragments"]["LiF2-"]
    assert 0 < lif2["time_to_max_uncertainty_s"] < lif2["time_to_max_s"]
    budget = lif2["time_to_max_budget"]
    assert lif2["time_to_max_uncertainty_s"] == pytest.approx(np.hypot(*budget.values()))
    nio2 = summary["fragments"]["NiO2-"]
    # the bulk rises at the CEI/bulk interface (8 nm = 160 s at 0.05 nm/s): 50 % there, 90 % later
    assert 100 < nio2["time_to_50_s"] < nio2["time_to_plateau_s"] < 300
    assert nio2["time_to_50_uncertainty_s"] > 0 and nio2["time_to_plateau_uncertainty_s"] > 0


def test_a_thickness_is_always_reported(tmp_path_factory):
    # ten times fewer counts (0.05 per pixel and scan at the maximum): no bin stands alone
    volume, truth = layered_sample("cycled", seed=22, ny=32, nx=32, marker_peak=("LiF2-", 0.05))
    path = tmp_path_factory.mktemp("sparse") / "sparse.itm.grd"
    write_grd(volume["counts"], path, seconds_per_scan=2.0, seed=22)
    summary_path = path.with_name("s.json")
    result = _invoke("tofsims", "cei", path, *CEI, "--summary", summary_path)
    assert result.exit_code == 0, result.output
    cei = json.loads(summary_path.read_text())["cei_thickness_nm"]
    assert cei["method"] in ("stack map", "stack fit")
    assert cei["mean"] == pytest.approx(float(truth.cei_thickness_nm.mean()), rel=0.15)
    assert cei["uncertainty"] > 0


def test_batch_on_grd_inputs_fills_the_cei_columns(cycled, tmp_path):
    path, truth = cycled
    manifest = tmp_path / "study.toml"
    manifest.write_text(
        "[defaults.tofsims]\nsputter_rate_nm_per_s = 0.05\n"
        'marker = "LiF2-"\nbulk = "NiO2-"\nsputter_rate_uncertainty_nm_per_s = 0.005\n\n'
        f'[[experiment]]\nname = "cycled-sims"\nkind = "tofsims"\ninput = "{path}"\n'
        'labels = { sample = "cycled" }\n'
    )
    result = _invoke("batch", manifest, "-o", tmp_path / "out", "--workers", 1)
    assert result.exit_code == 0, result.output
    row = pd.read_csv(tmp_path / "out" / "summary.csv").set_index("experiment").loc["cycled-sims"]
    assert row["status"] == "computed"
    assert row["cei_thickness_nm_mean"] == pytest.approx(
        float(truth.cei_thickness_nm.mean()), rel=0.05
    )
    assert row["cei_method"] == "stack map"
    for column in ("median", "std", "uncertainty", "whole_field"):
        assert np.isfinite(row[f"cei_thickness_nm_{column}"]), column
    # the 10 % sputter-rate uncertainty is a term of the budget: ± ≥ 10 % of the thickness
    assert row["cei_thickness_nm_uncertainty"] >= 0.1 * row["cei_thickness_nm_mean"]
    assert pd.isna(row["coating_thickness_nm"])
    # tofsims.synthetic plants 11BO2- without its 10BO2-: the isotope evidence says, rightly,
    # that such a "BO2-" is not boron (the only warning)
    assert row["cei_warnings"].startswith("BO2- window counts are inconsistent with boron")


@pytest.fixture(scope="module")
def static_grd(tmp_path_factory):
    """A GRD run whose properties say Analysis.SputterTime = 0 s: no sputter beam."""
    folder = tmp_path_factory.mktemp("static")
    volume, _ = layered_sample("cycled", seed=23, ny=16, nx=16, n_scans=60)
    path = folder / "static.itm.grd"
    write_grd(volume["counts"], path, seconds_per_scan=0.0, seed=23)
    return path


def test_static_acquisition_is_an_error_without_force_and_a_warning_with_it(static_grd):
    summary_path = static_grd.with_name("s.json")
    args = ["tofsims", "cei", static_grd, *CEI, "--summary", summary_path]
    no_time = _invoke(*args)
    assert no_time.exit_code == 1
    assert (
        "Analysis.SputterTime is 0 s" in no_time.output and "--seconds-per-scan" in no_time.output
    )
    refused = _invoke(*args, "--seconds-per-scan", 2)
    assert refused.exit_code == 1
    (line,) = refused.output.strip().splitlines()
    assert str(static_grd) in line and "static acquisition" in line and "--force" in line
    assert not summary_path.exists()
    forced = _invoke(*args, "--seconds-per-scan", 2, "--force")
    assert forced.exit_code == 0, forced.output
    assert "warning: static acquisition" in forced.output
    summary = json.loads(summary_path.read_text())
    assert summary["cei_thickness_nm"]["mean"] is not None
    assert "static acquisition" in summary["warnings"][0] and summary["input"]["force"] is True
