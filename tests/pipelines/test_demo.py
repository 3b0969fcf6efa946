"""``operando demo``: generated study → batch on a LocalCluster → table, report, serve."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from pipelines.cli import cli
from pipelines.demo import (
    DEMO_MARKER,
    DemoOutputError,
    comparison_rows,
    format_comparison,
    prepare_output,
)

ARGS = ["--pixels", "16", "--workers", "1"]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """One demo run into a fresh folder (small TOF-SIMS fields, one worker)."""
    out = tmp_path_factory.mktemp("demo") / "out"
    result = CliRunner().invoke(cli, ["demo", "-o", str(out), *ARGS])
    assert result.exit_code == 0, result.output
    return out, result.output


def test_summary_csv_shows_the_known_truths(demo_run):
    out, _ = demo_run
    table = pd.read_csv(out / "summary.csv")
    assert {"experiment", "kind", "sample"} <= set(table.columns)
    assert len(table) == 4  # one row per experiment
    lines = (out / "summary.csv").read_text().splitlines()
    assert lines[1].startswith("pristine-dems,dems,pristine,1,computed,")  # cycle stays an int
    assert lines[3].startswith("pristine-sims,tofsims,pristine,,computed,")  # no cycle label
    table = table.set_index("experiment")
    assert table.loc["pristine-dems", "sample"] == "pristine"
    assert table.loc["modified-sims", "kind"] == "tofsims"
    assert table.loc["pristine-dems", "O2_onset_V"] == pytest.approx(4.39, abs=0.015)
    assert table.loc["pristine-dems", "CO2_onset_V"] == pytest.approx(4.35, abs=0.015)
    assert np.isnan(table.loc["modified-dems", "O2_onset_V"])  # empty cell: no O2 at all
    assert table.loc["modified-dems", "CO2_onset_V"] == pytest.approx(4.45, abs=0.015)
    pristine = table.loc["pristine-sims", "cei_thickness_nm_mean"]
    modified = table.loc["modified-sims", "cei_thickness_nm_mean"]
    truth = json.loads((out / "study" / "truth.json").read_text())
    assert modified < pristine
    assert pristine == pytest.approx(truth["pristine-sims"]["cei_thickness_nm_mean"], abs=0.5)
    assert modified == pytest.approx(truth["modified-sims"]["cei_thickness_nm_mean"], abs=0.5)
    # the raw files are real-format instrument files the readers recognise
    assert (out / "study" / "raw" / "pristine-sims" / "pristine.itm.grd").is_file()
    assert (out / "study" / "manifest.toml").is_file()


def test_console_table_gives_measured_and_true_values(demo_run):
    out, output = demo_run
    lines = output.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("sample "))
    pristine, pristine_truth, modified, modified_truth = lines[header + 2 : header + 6]
    table = pd.read_csv(out / "summary.csv").set_index("experiment")
    o2 = table.loc["pristine-dems", "O2_onset_V"]
    u = table.loc["pristine-dems", "O2_onset_uncertainty_V"]
    assert pristine.split()[:4] == ["pristine", f"{o2:.3f}", "±", f"{u:.3f}"]
    assert pristine_truth.split()[:3] == ["truth", "4.390", "4.350"]
    assert modified.split()[:2] == ["modified", "—"]  # no invented O2 onset
    assert modified_truth.split()[:3] == ["truth", "—", "4.450"]
    coating = table.loc[
        "modified-sims", ["coating_thickness_nm", "coating_thickness_uncertainty_nm"]
    ]
    assert modified.split()[-3:] == [f"{coating.iloc[0]:.2f}", "±", f"{coating.iloc[1]:.2f}"]
    assert "-0.0" not in output  # an amount of zero is 0.0
    assert pristine.split()[-1] == "none"  # no coating on the pristine sample
    assert f"report:      {out / 'report.html'}" in output


def test_report_is_offline_and_links_the_batch(demo_run):
    out, _ = demo_run
    text = (out / "report.html").read_text(encoding="utf-8")
    assert "<title>operando demo</title>" in text
    sources = re.findall(r"<script[^>]*\ssrc=\"([^\"]+)\"", text)
    assert sources and all(src.startswith("_static/") for src in sources)  # shared, relative
    assert all((out / src).is_file() for src in sources)
    assert not re.search(r"<link[^>]*stylesheet[^>]*href=\"http", text)
    assert "cdn.holoviz.org/panel" not in text
    assert "index.html" in text and (out / "index.html").is_file()
    # the samples compared on shared axes: both in one legend, onsets with ±
    assert "O2 during the first charge" in text and "modified: no onset" in text
    assert "CeO2-: normalised depth profiles" in text
    assert "pristine: CeO2- not detected" in text  # absent, not normalised noise
    assert "CEI thickness" in text
    assert not list(out.glob(".tmp-*")) and not list(out.glob(".report.html.*"))


def test_rerun_reuses_results_and_serves_them(demo_run, monkeypatch):
    out, _ = demo_run
    served = {}

    def fake_serve(paths, *, port, address):
        served.update(paths=paths, port=port, address=address)

    monkeypatch.setattr("pipelines.server.serve", fake_serve)
    result = CliRunner().invoke(cli, ["demo", "-o", str(out), "--serve", "--port", "5123", *ARGS])
    assert result.exit_code == 0, result.output
    assert "earlier demo output found" in result.output
    assert "0 computed, 4 up to date" in result.output
    assert served["address"] == "127.0.0.1" and served["port"] == 5123

    from pipelines.server import open_entries

    assert served["paths"] == [out]  # the demo folder itself: every experiment, compared
    entries = open_entries(served["paths"])
    assert sorted(e.kind for e in entries) == ["result"] * 2 + ["thickness"] * 2 + ["volume"] * 2
    names = {e.name for e in entries}  # the app's dataset picker needs distinct names
    assert len(names) == 6
    assert {
        "pristine-sims (sample pristine) — volume.zarr — volume",
        "modified-sims (sample modified) — cei_map.nc — thickness",
    } <= names
    volume = next(e for e in entries if e.name.startswith("pristine-sims (sample pristine) — vol"))
    assert volume.dataset.attrs["source_file"].endswith("pristine.itm.grd")  # not the other


def test_refuses_a_folder_that_is_not_a_demo_output(tmp_path):
    (tmp_path / "thesis.tex").write_text("precious")
    result = CliRunner().invoke(cli, ["demo", "-o", str(tmp_path), *ARGS])
    assert result.exit_code == 1
    assert "not an earlier 'operando demo' output" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thesis.tex"]


def test_prepare_output_rules(tmp_path):
    assert prepare_output(tmp_path / "new") is False
    assert (tmp_path / "new" / DEMO_MARKER).is_file()
    assert prepare_output(tmp_path / "new") is True  # a rerun
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "data.csv").write_text("1,2\n")
    with pytest.raises(DemoOutputError, match="busy: folder is not empty"):
        prepare_output(busy)
    assert prepare_output(busy, force=True) is False
    assert (busy / "data.csv").read_text() == "1,2\n"  # --force deletes nothing
    (tmp_path / "file").write_text("")
    with pytest.raises(DemoOutputError, match="not a folder"):
        prepare_output(tmp_path / "file")


def test_comparison_never_invents_numbers():
    table = [
        {"experiment": "a-dems", "kind": "dems", "sample": "a", "O2_onset_V": math.nan,
         "O2_onset_uncertainty_V": math.nan, "CO2_onset_V": 4.2, "CO2_onset_uncertainty_V": 0.01,
         "O2_evolved_umol_per_g": 0.0, "CO2_evolved_umol_per_g": 12.34},
        {"experiment": "a-sims", "kind": "tofsims", "sample": "a",
         "cei_thickness_nm_mean": 5.0, "cei_thickness_nm_uncertainty": None,
         "coating_thickness_nm": math.nan},
    ]  # fmt: skip
    truth = {
        "a-dems": {"onsets_V": {"O2": None, "CO2": 4.2}, "evolved": {"CO2": {"umol_per_g": 12}}},
        "a-sims": {"cei_thickness_nm_mean": 5.1, "coating_thickness_nm": 0.0},
    }
    (entry,) = comparison_rows(table, truth)
    assert entry.onset_V == {"O2": None, "CO2": 4.2}
    assert entry.true_evolved_umol_per_g == {"O2": None, "CO2": 12.0}
    assert entry.coating_thickness_nm is None and entry.true_coating_thickness_nm is None
    measured, true = format_comparison([entry]).splitlines()[2:]
    assert measured.split() == ["a", "—", "4.200", "±", "0.010", "0.0", "/", "12.3", "5.00", "none"]
    assert true.split() == ["truth", "—", "4.200", "—", "/", "12.0", "5.10", "none"]


def test_help_is_fast_and_root_help_points_to_the_demo():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from pipelines.cli import main\n"
        "try:\n"
        "    main(['demo', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "for name in ('xarray', 'dask', 'holoviews', 'pandas', 'numpy', 'distributed'):\n"
        "    assert name not in sys.modules, name\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "Examples:" in done.stdout and "--serve" in done.stdout
    root = CliRunner().invoke(cli, ["--help"]).output
    assert "operando demo " in root and "\\b" not in root  # examples laid out, not rewrapped
