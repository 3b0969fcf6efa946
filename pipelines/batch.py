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

from dems.errors import DemsError
from operando_core.options import OptionError
from pipelines.atomic import OutputError, atomic_directory, write_json_atomic, write_text_atomic
from pipelines.fingerprint import DigestCache, experiment_fingerprint
from pipelines.kinds import KINDS, ExperimentOptions
from pipelines.manifest import Experiment
from pipelines.results import DONE_FILE
from tofsims.errors import TofsimsError

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["BATCH_ENTRIES", "DONE_FILE", "BatchOutcome", "execute_experiment", "run_batch"]

#: What a batch writes into its output folder besides one folder per experiment (``_static``:
#: the JavaScript libraries the reports share).
BATCH_ENTRIES = ("summary.csv", "summary.parquet", "index.html", ".operando", "_static")
#: Inputs at least this large (bytes) are split over all workers rather than run on one.
SPREAD_BYTES = 256 * 1024**2
SUMMARY_FILE = "summary.json"
#: Seconds between two looks at the running experiments (for their timeouts).
POLL_S = 0.2


#: Errors of bad input (files, options, outputs): an experiment failing with one is not retried.
INPUT_ERRORS = (DemsError, TofsimsError, OptionError, OutputError)


class ExperimentTimeout(TimeoutError):
    """An experiment ran longer than its ``timeout_s``."""


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

    A failed experiment publishes nothing; its log, with the traceback, is kept as
    ``OUTDIR/.operando/<name>.log.txt``. Bad input (an error of :data:`INPUT_ERRORS`) is
    returned as ``{"error": ...}`` rather than raised: it would fail again, so it is not
    retried.

    Returns
    -------
    dict
        The ``done.json`` record: fingerprint, name, kind, labels, elapsed time, outputs; or
        ``name``, ``kind`` and ``error`` (one line) for bad input.
    """
    runner = runner or KINDS[experiment.kind].load_runner()
    try:
        return _execute(experiment, Path(outdir), fingerprint, runner)
    except INPUT_ERRORS as err:
        return {"name": experiment.name, "kind": experiment.kind, "error": _one_line(err)}


def _execute(
    experiment: Experiment, outdir: Path, fingerprint: str, runner: Callable
) -> dict[str, Any]:
    started = time.time()
    with atomic_directory(outdir / experiment.name, written_by="operando batch") as work:
        try:
            summary = runner(experiment, work)
        except BaseException as err:
            _keep_log(work, outdir, experiment.name, err)
            raise
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


def _keep_log(work: Path, outdir: Path, name: str, err: BaseException) -> None:
    """Save a failed experiment's log, with the traceback, as ``.operando/<name>.log.txt``."""
    log = work / "log.txt"
    text = log.read_text(encoding="utf-8") if log.exists() else ""
    text += "".join(traceback.format_exception(err))
    write_text_atomic(outdir / ".operando" / f"{name}.log.txt", text)


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
    timeouts = {e.name: e.options_of(ExperimentOptions).timeout_s for e in experiments}

    def collect(future: Any, name: str, timed_out: bool = False) -> None:
        _collect(future, name, outdir, outcome, on_progress, timeouts[name] if timed_out else None)

    started: dict[str, float] = {}
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="operando-large") as driver:
        spread = {
            driver.submit(
                _execute_on_cluster, client, started, experiment, str(outdir), fingerprint, runner
            ): experiment.name
            for experiment, fingerprint, runner in large
        }
        _watch_workers(client, futures, timeouts, collect)
        _watch_driver(client, spread, started, timeouts, collect)
    _remove_orphans(outdir)
    return outcome


def _watch_workers(
    client: Client, futures: dict[Any, str], timeouts: dict[str, float], collect: Callable
) -> None:
    """Collect the experiments running on workers; fail those past their ``timeout_s``.

    An experiment's time counts from when the scheduler hands it to a worker (not while it
    waits for a free one). One past its timeout is cancelled and its worker restarted: a
    thread cannot be stopped otherwise, and a hung one would hold the worker for ever.
    """
    pending = dict(futures)
    running: dict[str, float] = {}
    while pending:
        for future in [f for f in pending if f.done()]:
            collect(future, pending.pop(future))
        if not pending:
            break
        processing = client.processing()
        now = time.monotonic()
        for future, name in list(pending.items()):
            workers = [w for w, keys in processing.items() if future.key in keys]
            if workers:
                running.setdefault(future.key, now)
            if now - running.get(future.key, now) > timeouts[name]:
                pending.pop(future)
                client.cancel(future)
                _restart(client, workers)
                collect(future, name, timed_out=True)
        time.sleep(POLL_S)


def _watch_driver(
    client: Client,
    spread: dict[Any, str],
    started: dict[str, float],
    timeouts: dict[str, float],
    collect: Callable,
) -> None:
    """Collect the large experiments driven from here; restart the cluster past a timeout.

    Their computations run on every worker, so the whole cluster is restarted, which fails
    the driving thread's computation.
    """
    for future, name in spread.items():
        while not future.done():
            if time.monotonic() - started.get(name, time.monotonic()) > timeouts[name]:
                _restart(client, None)
                collect(future, name, timed_out=True)
                break
            time.sleep(POLL_S)
        else:
            collect(future, name)


def _restart(client: Client, workers: list[str] | None) -> None:
    """Restart some workers (``None``: all); without nannies nothing can be done."""
    try:
        if workers is None:
            client.restart()
        elif workers:
            client.restart_workers(workers)
    except Exception:  # a scheduler of workers without nannies cannot restart them
        pass


def _input_bytes(experiment: Experiment) -> int:
    return sum(p.stat().st_size for p in experiment.inputs.values() if p.is_file())


def _execute_on_cluster(
    client: Client, started: dict[str, float], experiment: Experiment, *args: Any
) -> dict[str, Any]:
    """Run a large experiment here, with its dask computations spread over the cluster."""
    import dask

    started[experiment.name] = time.monotonic()
    with dask.config.set(scheduler=client):
        return execute_experiment(experiment, *args)


def _collect(
    future: Any,
    name: str,
    outdir: Path,
    outcome: BatchOutcome,
    on_progress: Callable[[str, str], None] | None,
    timed_out: float | None = None,
) -> None:
    try:
        if timed_out is not None:
            raise ExperimentTimeout(
                f"timed out after {timed_out:g} s (manifest key timeout_s); its worker was "
                "restarted"
            )
        record = future.result()
        if "error" in record:  # bad input, reported by the experiment itself
            outcome.failed[name] = record["error"]
            status = "failed"
        else:
            outcome.records[name] = record
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
