"""The batch machinery (manifest, fingerprints, resumability, table) with stand-in runners.

The real DEMS/TOF-SIMS runners are exercised end to end in test_batch.py.
"""

import json
from pathlib import Path

import pandas as pd
import pytest
from distributed import Client, LocalCluster

from pipelines.atomic import atomic_directory
from pipelines.batch import run_batch
from pipelines.manifest import ManifestError, load_manifest
from pipelines.table import table_rows, write_index, write_table

CALLS: list[str] = []


def fake_dems(experiment, workdir: Path):
    CALLS.append(experiment.name)
    if experiment.inputs["ms"].read_text() == "explode":
        raise ValueError(f"{experiment.inputs['ms']}: line 3: broken file")
    size = experiment.inputs["ms"].stat().st_size
    (workdir / "data.txt").write_text("x")
    return {
        "onsets": {
            "O2": {"potential_V": 4.0 + size / 1000, "uncertainty_V": 0.01, "method": "fake"}
        },
        "evolved": {"O2": {"umol": float(size), "umol_per_g": 2.0 * size}},
        "delay_s": 1.5,
    }


def fake_tofsims(experiment, workdir: Path):
    CALLS.append(experiment.name)
    return {
        "cei_thickness_nm": {
            "mean": experiment.params["sputter_rate_nm_per_s"] * 100,
            "median": 1.0,
            "std": 0.1,
            "uncertainty": 0.2,
            "method": "fake",
        },
        "coating_thickness_nm": None,
        "fragments": {},
    }


FAKE = {"dems": fake_dems, "tofsims": fake_tofsims}


@pytest.fixture(scope="module")
def client():
    with (
        LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
        ) as cluster,
        Client(cluster) as c,
    ):
        yield c


@pytest.fixture
def study(tmp_path):
    CALLS.clear()
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "a.asc").write_text("aaaa")
    (raw / "a.mpt").write_text("e")
    (raw / "b.asc").write_text("bbbbbbbb")
    (raw / "s.grd").write_bytes(b"\0" * 20)
    manifest = tmp_path / "study.toml"
    manifest.write_text("""
[defaults.tofsims]
sputter_rate_nm_per_s = 0.05
marker = "LiF2-"
[[experiment]]
name = "A"
kind = "dems"
ms = "raw/a.asc"
ec = "raw/a.mpt"
labels = { sample = "pristine", cycle = 1 }
[[experiment]]
name = "B"
kind = "dems"
ms = "raw/b.asc"
ec = "raw/a.mpt"
labels = { sample = "modified", cycle = 1 }
[[experiment]]
name = "S"
kind = "tofsims"
input = "raw/s.grd"
labels = { sample = "pristine" }
""")
    return manifest


def test_manifest_defaults_and_paths(study):
    experiments = load_manifest(study)
    sims = experiments[2]
    assert sims.params == {"sputter_rate_nm_per_s": 0.05, "marker": "LiF2-"}
    assert sims.inputs["input"] == (study.parent / "raw" / "s.grd").resolve()
    assert experiments[0].labels == {"sample": "pristine", "cycle": 1}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[experiment]]\nname='A'\nkind='xps'\ninput='x'", "kind"),
        (
            "[[experiment]]\nname='A'\nkind='dems'\nms='missing.asc'\nec='missing.mpt'",
            "no such file",
        ),
        ("[[experiment]]\nname='A'\nkind='tofsims'", "missing input input"),
        ("title = 'x'", r"no \[\[experiment"),
        ("[[experiment]\n", "not valid TOML"),
    ],
)
def test_manifest_errors(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ManifestError, match=message) as info:
        load_manifest(path)
    assert "bad.toml" in str(info.value)


def test_duplicate_names_rejected(study):
    study.write_text(
        study.read_text() + '\n[[experiment]]\nname = "A"\nkind = "tofsims"\ninput = "raw/s.grd"\n'
    )
    with pytest.raises(ManifestError, match="used twice"):
        load_manifest(study)


def test_batch_runs_resumes_and_tabulates(study, client, tmp_path):
    out = tmp_path / "out"
    experiments = load_manifest(study)
    first = run_batch(experiments, out, client, runners=FAKE)
    assert sorted(first.computed) == ["A", "B", "S"] and not first.failed
    assert sorted(CALLS) == ["A", "B", "S"]

    CALLS.clear()
    second = run_batch(experiments, out, client, runners=FAKE)
    assert sorted(second.skipped) == ["A", "B", "S"] and CALLS == []

    (study.parent / "raw" / "b.asc").write_text("changed content")
    third = run_batch(load_manifest(study), out, client, runners=FAKE)
    assert third.computed == ["B"] and CALLS == ["B"]

    rows = table_rows(experiments, out, {"A": "cached", "B": "computed", "S": "cached"}, {})
    csv, parquet = write_table(rows, out)
    frame = pd.read_csv(csv)
    assert list(frame["sample"]) == ["pristine", "modified", "pristine"]
    assert frame.loc[1, "O2_evolved_umol"] == len("changed content")
    assert frame.loc[2, "cei_thickness_nm_mean"] == pytest.approx(5.0)
    assert pd.read_parquet(parquet).shape == frame.shape
    index = write_index(rows, out).read_text()
    assert 'href="A/summary.json"' in index and "summary.csv" in index


def test_failure_is_isolated_and_leaves_no_partial_output(study, client, tmp_path):
    (study.parent / "raw" / "b.asc").write_text("explode")
    out = tmp_path / "out"
    outcome = run_batch(load_manifest(study), out, client, runners=FAKE)
    assert sorted(outcome.computed) == ["A", "S"]
    assert "broken file" in outcome.failed["B"]
    assert not (out / "B").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".tmp-")]
    error = json.loads((out / ".operando" / "B.error.json").read_text())
    assert "ValueError" in error["error"]


def test_atomic_directory_keeps_old_version_on_failure(tmp_path):
    target = tmp_path / "result"
    with atomic_directory(target) as work:
        (work / "a.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic_directory(target) as work:
        (work / "a.txt").write_text("half")
        raise RuntimeError("killed")
    assert (target / "a.txt").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["result"]


def test_unknown_parameter_is_rejected_with_the_known_ones(study):
    study.write_text(study.read_text().replace('marker = "LiF2-"', 'markr = "LiF2-"'))
    with pytest.raises(ManifestError, match=r"unknown parameter.*markr.*marker"):
        load_manifest(study)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("sputter_rate_nm_per_s = -0.05", r"sputter_rate_nm_per_s = -0.05: must be > 0"),
        ('sputter_rate_nm_per_s = "0.05"', r"sputter_rate_nm_per_s = '0.05': expected a number"),
        ("", r"missing parameter sputter_rate_nm_per_s"),
    ],
)
def test_parameters_are_checked_by_the_workflow_options(study, line, message):
    study.write_text(study.read_text().replace("sputter_rate_nm_per_s = 0.05", line))
    with pytest.raises(ManifestError, match=message) as info:
        load_manifest(study)
    assert "experiment 'S'" in str(info.value)


def test_manifest_options_are_the_workflow_options(study):
    from dems.workflows import ProcessOptions
    from tofsims.workflows import CeiOptions, ReconstructOptions

    experiments = load_manifest(study)
    sims = experiments[2]
    assert sims.options_of(CeiOptions) == CeiOptions(sputter_rate_nm_per_s=0.05, marker="LiF2-")
    assert sims.options_of(ReconstructOptions) == ReconstructOptions()
    assert experiments[0].options_of(ProcessOptions) == ProcessOptions()
