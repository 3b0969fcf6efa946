"""`operando batch` end to end on a generated study with a 2-process LocalCluster."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from distributed import Client, LocalCluster

from pipelines.batch import execute_experiment, run_batch
from pipelines.cli import cli
from pipelines.example_study import StudySize, write_example_study
from pipelines.fingerprint import DigestCache, experiment_fingerprint
from pipelines.manifest import load_manifest
from pipelines.table import table_rows, write_table

pytestmark = pytest.mark.timeout(600)

RESULT_COLUMNS = [
    "O2_onset_V",
    "CO2_onset_V",
    "O2_evolved_umol",
    "CO2_evolved_umol",
    "delay_s",
    "cei_thickness_nm_mean",
    "cei_thickness_nm_median",
    "coating_thickness_nm",
]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return write_example_study(tmp_path_factory.mktemp("study"), size=StudySize(pixels=16), seed=3)


@pytest.fixture(scope="module")
def cluster():
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            host="127.0.0.1",
        ) as cluster,
        Client(cluster) as client,
    ):
        yield cluster, client


@pytest.fixture(scope="module")
def single_process_table(study, tmp_path_factory):
    """The same experiments, one after another in this process, without any cluster."""
    out = tmp_path_factory.mktemp("single")
    experiments = load_manifest(study)
    cache = DigestCache(out / "digests.json")
    for experiment in experiments:
        execute_experiment(experiment, str(out), experiment_fingerprint(experiment, cache))
    rows = table_rows(experiments, out, {e.name: "computed" for e in experiments}, {})
    return pd.read_csv(write_table(rows, out)[0])


def _table(path):
    return pd.read_csv(path).set_index("experiment")


def test_cluster_table_equals_single_process(study, cluster, tmp_path, single_process_table):
    _, client = cluster
    out = tmp_path / "out"
    outcome = run_batch(load_manifest(study), out, client)
    assert sorted(outcome.computed) == sorted(e.name for e in load_manifest(study))
    assert not outcome.failed
    rows = table_rows(load_manifest(study), out, {n: "computed" for n in outcome.computed}, {})
    cluster_table = pd.read_csv(write_table(rows, out)[0]).set_index("experiment")
    single = single_process_table.set_index("experiment")
    for column in RESULT_COLUMNS:
        np.testing.assert_allclose(cluster_table[column], single[column], rtol=1e-9, equal_nan=True)
    # the known truths of the generated study
    assert cluster_table.loc["pristine-dems", "O2_onset_V"] == pytest.approx(4.39, abs=0.015)
    assert cluster_table.loc["pristine-dems", "CO2_onset_V"] == pytest.approx(4.35, abs=0.015)
    assert np.isnan(cluster_table.loc["modified-dems", "O2_onset_V"])
    assert (
        cluster_table.loc["pristine-sims", "cei_thickness_nm_mean"]
        > cluster_table.loc["modified-sims", "cei_thickness_nm_mean"]
    )


def test_rerun_recomputes_nothing(study, cluster, tmp_path):
    _, client = cluster
    out = tmp_path / "out"
    run_batch(load_manifest(study), out, client)
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("*/done.json")}
    again = run_batch(load_manifest(study), out, client)
    assert again.computed == [] and len(again.skipped) == 4
    assert {p: p.stat().st_mtime_ns for p in out.glob("*/done.json")} == stamps


def test_killed_worker_still_gives_complete_table(study, cluster, tmp_path):
    _, client = cluster
    out = tmp_path / "out"
    result = {}
    runner = threading.Thread(
        target=lambda: result.update(outcome=run_batch(load_manifest(study), out, client))
    )
    runner.start()
    victim = None
    deadline = time.monotonic() + 60
    while victim is None and time.monotonic() < deadline:
        for worker, keys in client.processing().items():
            if any("experiment-" in str(key) for key in keys):
                victim = worker
                break
        time.sleep(0.05)
    assert victim is not None, "no experiment started"
    pid = client.run(os.getpid, workers=[victim])[victim]
    os.kill(pid, signal.SIGKILL)  # the nanny restarts the worker; the scheduler reschedules
    runner.join(timeout=500)
    outcome = result["outcome"]
    assert not outcome.failed, outcome.failed
    assert len(outcome.computed) == 4
    for experiment in load_manifest(study):
        assert (
            json.loads((out / experiment.name / "done.json").read_text())["name"] == experiment.name
        )
    assert not list(out.glob(".tmp-*"))


def test_batch_command_writes_table_and_index(study, tmp_path):
    out = tmp_path / "cli"
    result = CliRunner().invoke(cli, ["batch", str(study), "-o", str(out), "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert "4 computed" in result.output
    table = _table(out / "summary.csv")
    assert list(table["kind"]) == ["dems", "dems", "tofsims", "tofsims"]
    assert list(table["sample"]) == ["pristine", "modified", "pristine", "modified"]
    assert pd.read_parquet(out / "summary.parquet").shape[0] == 4
    index = (out / "index.html").read_text()
    assert 'href="pristine-sims/summary.json"' in index
    assert (out / "pristine-sims" / "volume.zarr").is_dir()
    assert (out / "pristine-dems" / "calibration.json").is_file()


def test_large_experiment_is_split_across_workers(
    study, cluster, tmp_path, single_process_table, monkeypatch
):
    from distributed import get_task_stream

    from tofsims.io import grd

    # the driven experiment runs in this process: small blocks give several binning tasks,
    # read in blocks unlike the groups of 16 scans (scans 0–52, 53–97, 98–149 of pristine)
    monkeypatch.setitem(grd.read.__kwdefaults__, "block_events", 200_000)
    sims = [e for e in load_manifest(study) if e.kind == "tofsims"]
    for experiment in sims:
        read_blocks = grd.read(experiment.inputs["input"]).encoding["block_scans"]
        assert len(read_blocks) > 2 and any(s % 16 for s in read_blocks[1:-1])
    _, client = cluster
    with get_task_stream(client) as stream:
        outcome = run_batch(sims, tmp_path / "out", client, spread_bytes=0)
    assert sorted(outcome.computed) == sorted(e.name for e in sims) and not outcome.failed
    binning = [t for t in stream.data if "bin-block" in str(t["key"])]
    # our part is a graph of several binning tasks sent to the cluster; which worker runs each
    # is the scheduler's choice, and on a loaded machine it may keep them all on one
    assert len(binning) >= 2
    assert {t["worker"] for t in binning} <= set(client.scheduler_info()["workers"])
    assert not any("experiment-" in str(t["key"]) for t in stream.data)  # driven from here
    single = single_process_table.set_index("experiment")
    # the peak fits assign counts per depth block (spectrum_part): the groups of 16 scans of
    # the one-pass engine, which the dask engine stores too, whatever blocks it read
    for experiment in sims:
        summary = json.loads((tmp_path / "out" / experiment.name / "summary.json").read_text())
        assert summary["cei_thickness_nm"]["mean"] == pytest.approx(
            single.loc[experiment.name, "cei_thickness_nm_mean"], rel=1e-9
        )


def test_editing_a_grd_properties_file_recomputes_exactly_that_experiment(study, cluster, tmp_path):
    """The reader finds properties.txt by itself; the fingerprint still covers it."""
    import shutil

    _, client = cluster
    copy = tmp_path / "study"
    shutil.copytree(study.parent, copy)
    sims = [e for e in load_manifest(copy / study.name) if e.kind == "tofsims"]
    out = tmp_path / "out"
    first = run_batch(sims, out, client)
    assert sorted(first.computed) == ["modified-sims", "pristine-sims"] and not first.failed
    properties = copy / "raw" / "pristine-sims" / "pristine.itm.grd.properties.txt"
    with open(properties, "a", encoding="cp1252", newline="") as handle:
        handle.write("Context.Mode.StaticSIMS.TDC.DeadTime\t0\t6.5e-08\t65 ns\r\n")
    again = run_batch(load_manifest(copy / study.name)[2:], out, client)
    assert again.computed == ["pristine-sims"] and again.skipped == ["modified-sims"]
