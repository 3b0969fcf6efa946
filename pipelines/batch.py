"""Run every experiment of a manifest on dask.distributed, resumably.

Each experiment runs as one task on one worker, computing its (small) dask collections
in-task. An experiment with large inputs (``SPREAD_BYTES``, e.g. a GRD file of several GB)
is instead driven from this process with the cluster as its scheduler, so its chunks are
split across all workers rather than shipped whole to one; the task graphs hold paths,
never open files. Outputs of an
experiment are built in a temporary folder and renamed into ``OUTDIR/<name>`` only when
complete; a ``done.json`` inside records the fingerprint, so an unchanged experiment is
skipped next time. A failing experiment is reported and does not stop the others; work lost
with a worker is rescheduled by the scheduler.
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.atomic import atomic_directory, write_json_atomic
from pipelines.fingerprint import DigestCache, experiment_fingerprint
from pipelines.kinds import KINDS
from pipelines.manifest import Experiment

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["BATCH_ENTRIES", "DONE_FILE", "BatchOutcome", "execute_experiment", "run_batch"]

DONE_FILE = "done.json"
#: What a batch writes into its output folder besides one folder per experiment.
BATCH_ENTRIES = ("summary.csv", "summary.parquet", "index.html", ".operando")
#: Inputs at least this large (bytes) are split over all workers rather than run on one.
SPREAD_BYTES = 256 * 1024**2
SUMMARY_FILE = "summary.json"


@dataclass
class BatchOutcome:
    """What happened to each experiment of a batch run."""

    computed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)


def execute_experiment(
    experiment: Experiment,
    outdir: str,
    fingerprint: str,
    runner: Callable[[Experiment, Path], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Run one experiment and publish its outputs atomically as ``OUTDIR/<name>``.

    ``runner`` replaces the registered runner of the experiment's kind (benchmarks, tests).

    Returns
    -------
    dict
        The ``done.json`` record: fingerprint, name, kind, labels, elapsed time, outputs.
    """
    runner = runner or KINDS[experiment.kind].load_runner()
    started = time.time()
    with atomic_directory(Path(outdir) / experiment.name, written_by="operando batch") as work:
        summary = runner(experiment, work)
        if not (work / SUMMARY_FILE).exists():
            write_json_atomic(work / SUMMARY_FILE, summary)
        record = {
            "name": experiment.name,
            "kind": experiment.kind,
            "fingerprint": fingerprint,
            "labels": experiment.labels,
            "started": started,
            "elapsed_s": time.time() - started,
            "outputs": sorted(p.name for p in work.iterdir()),
        }
        write_json_atomic(work / DONE_FILE, record)
    return record


def finished_record(outdir: Path, name: str) -> dict[str, Any] | None:
    """Return the ``done.json`` record of a finished experiment, or ``None``."""
    try:
        return json.loads((outdir / name / DONE_FILE).read_text())
    except (OSError, ValueError):
        return None


def run_batch(
    experiments: Iterable[Experiment],
    outdir: Path,
    client: Client,
    *,
    force: bool = False,
    on_progress: Callable[[str, str], None] | None = None,
    runners: dict[str, Callable[[Experiment, Path], dict[str, Any]]] | None = None,
    spread_bytes: int = SPREAD_BYTES,
) -> BatchOutcome:
    """Run (or skip) every experiment on ``client``; return what happened.

    Parameters
    ----------
    experiments
        From :func:`pipelines.manifest.load_manifest`.
    outdir
        Output folder; one sub-folder per experiment.
    client
        A connected ``distributed.Client``.
    force
        Recompute even when an identical finished result exists.
    on_progress
        Called as ``on_progress(name, status)`` when an experiment ends
        (status ``"computed"``, ``"skipped"`` or ``"failed"``).
    runners
        Per-kind replacements of the registered runners, shipped to the workers with the tasks.
    spread_bytes
        Experiments whose inputs are at least this large run from this process with the
        cluster as their scheduler, so their chunks spread over all workers; smaller ones run
        whole on one worker each (one experiment per worker thread, computed in-task).
    """
    from distributed import as_completed

    outdir.mkdir(parents=True, exist_ok=True)
    cache = DigestCache(outdir / ".operando" / "digests.json")
    outcome = BatchOutcome()
    futures = {}
    large: list[tuple[Experiment, str, Any]] = []
    for experiment in experiments:
        fingerprint = experiment_fingerprint(experiment, cache)
        record = finished_record(outdir, experiment.name)
        if not force and record and record.get("fingerprint") == fingerprint:
            outcome.skipped.append(experiment.name)
            outcome.records[experiment.name] = {**record, "labels": experiment.labels}
            if on_progress:
                on_progress(experiment.name, "skipped")
            continue
        runner = (runners or {}).get(experiment.kind)
        if _input_bytes(experiment) >= spread_bytes:
            large.append((experiment, fingerprint, runner))
            continue
        future = client.submit(
            execute_experiment,
            experiment,
            str(outdir),
            fingerprint,
            runner,
            key=f"experiment-{experiment.name}-{fingerprint[:12]}",
            pure=False,
            # one retry for transient failures (e.g. two fresh workers racing to fill numba's
            # on-disk cache); an experiment that fails twice is reported as failed
            retries=1,
        )
        futures[future] = experiment.name
    cache.save()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="operando-large") as driver:
        spread = {
            driver.submit(
                _execute_on_cluster, client, experiment, str(outdir), fingerprint, runner
            ): experiment.name
            for experiment, fingerprint, runner in large
        }
        for future in as_completed(futures):
            _collect(future, futures[future], outdir, outcome, on_progress)
        for future in spread:
            _collect(future, spread[future], outdir, outcome, on_progress)
    _remove_orphans(outdir)
    return outcome


def _input_bytes(experiment: Experiment) -> int:
    return sum(p.stat().st_size for p in experiment.inputs.values() if p.is_file())


def _execute_on_cluster(client: Client, *args: Any) -> dict[str, Any]:
    """Run a large experiment here, with its dask computations spread over the cluster."""
    import dask

    with dask.config.set(scheduler=client):
        return execute_experiment(*args)


def _collect(
    future: Any,
    name: str,
    outdir: Path,
    outcome: BatchOutcome,
    on_progress: Callable[[str, str], None] | None,
) -> None:
    try:
        outcome.records[name] = future.result()
        outcome.computed.append(name)
        status = "computed"
    except Exception as err:
        outcome.failed[name] = _one_line(err)
        status = "failed"
        _write_failure(outdir, name, err)
    if on_progress:
        on_progress(name, status)


def _remove_orphans(outdir: Path) -> None:
    """Delete temporary folders left by work lost with a killed worker (all tasks are done)."""
    import shutil

    for path in outdir.glob(".tmp-*"):
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}".strip()


def _write_failure(outdir: Path, name: str, err: BaseException) -> None:
    detail = "".join(traceback.format_exception(err))
    write_json_atomic(
        outdir / ".operando" / f"{name}.error.json", {"error": _one_line(err), "traceback": detail}
    )
