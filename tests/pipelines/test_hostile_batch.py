"""Hostile batches: a hanging experiment, bad manifest parameters, a failing experiment.

A hang must not block the batch (``timeout_s``), a bad parameter must be refused before any
work is sent, and a failure must be one line on the console with its traceback kept in
``OUTDIR/.operando/`` — never a worker's traceback on the console.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from distributed import Client, LocalCluster

from pipelines.batch import run_batch
from pipelines.manifest import load_manifest
from tests.pipelines.hostile import dems_manifest, invoke, one_line_error

pytestmark = pytest.mark.timeout(300)


def hang_or_finish(experiment, workdir: Path):
    """Stand-in runner: an experiment named ``hang`` never returns."""
    if experiment.name == "hang":
        time.sleep(3600)
    (workdir / "data.txt").write_text("done")
    return {"onsets": {}, "evolved": {}, "delay_s": 0.0}


def test_a_hanging_experiment_times_out_and_the_others_finish(tmp_path, dems_inputs):
    experiments = load_manifest(
        dems_manifest(tmp_path, dems_inputs, ("hang", "fine"), "timeout_s = 2")
    )
    started = time.monotonic()
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        outcome = run_batch(experiments, tmp_path / "out", client, runners={"dems": hang_or_finish})
    assert time.monotonic() - started < 120  # the hang would last an hour
    assert outcome.computed == ["fine"]
    assert "timed out after 2 s" in outcome.failed["hang"]
    assert not (tmp_path / "out" / "hang").exists()
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".tmp-")]


def test_timeouts_are_checked_with_the_manifest(tmp_path, dems_inputs):
    result = invoke(
        "batch", dems_manifest(tmp_path, dems_inputs, ("one",), "timeout_s = -1"), "-o", "out"
    )
    assert result.exit_code == 1, result.output
    assert "timeout_s" in one_line_error(result)


@pytest.mark.parametrize(
    ("key", "value"),
    [("k", "-1"), ("persistence", "100000000"), ("z", "{ O2 = 0 }"), ("delay_s", "nan")],
)
def test_bad_manifest_parameters_are_refused_before_any_work(tmp_path, dems_inputs, key, value):
    manifest = dems_manifest(tmp_path, dems_inputs, ("one",), f"{key} = {value}")
    result = invoke("batch", manifest, "-o", tmp_path / "out", "--workers", 1)
    assert result.exit_code == 1, result.output
    line = one_line_error(result)
    assert "manifest.toml" in line and key in line
    assert not (tmp_path / "out").exists()


def test_a_failing_experiment_is_one_line_with_its_traceback_kept(tmp_path, dems_inputs):
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("operando.asc", "cell.mpt", "cal.json"):
        (broken / name).write_bytes((dems_inputs / name).read_bytes())
    (broken / "cell.mpt").write_text("EC-Lab ASCII FILE\nNb header lines : 3\n\nmode\tEwe/V\n")
    out = tmp_path / "out"
    result = invoke("batch", dems_manifest(tmp_path, broken, ("one",)), "-o", out, "--workers", 1)
    assert result.exit_code == 1
    assert "Traceback" not in result.output and "Compute Failed" not in result.output
    failure = [line for line in result.output.splitlines() if line.startswith("  one: ")]
    assert len(failure) == 1 and "cell.mpt" in failure[0]
    assert "Traceback" in (out / ".operando" / "one.log.txt").read_text()
