"""Runners of one batch experiment: the workflows with the manifest's options, on a worker.

``run_dems`` calibrates (when the manifest gives ``calibration_steps`` + ``cal_ms``) and
processes the run (:mod:`dems.workflows`); ``run_tofsims`` reconstructs a GRD event list into a
volume store and measures the CEI (:mod:`tofsims.workflows`). They write what the commands
write — through the same functions — into the experiment's (temporary) work folder and return
the summary: the messages into ``log.txt`` there, no progress bars, and a ``report.html`` (the
commands' ``--html``), linked from the batch index.

On a dask.distributed worker an experiment computes in-task (synchronously); a large
experiment driven by the batch process computes on the whole cluster instead.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dems.workflows.options import CalibrateOptions, ProcessOptions
from pipelines.manifest import Experiment
from pipelines.outputs import publishing
from pipelines.report import ReportFiles
from pipelines.results import titled
from tofsims.workflows.options import CeiOptions, ReconstructOptions

__all__ = [
    "REPORT_NAME",
    "SHARED_SCRIPTS",
    "ExperimentLog",
    "Publication",
    "experiment_title",
    "run_dems",
    "run_tofsims",
]

#: Offline HTML report written into every experiment's folder.
REPORT_NAME = "report.html"
#: Folder of the batch output holding the JavaScript libraries every report loads.
SHARED_SCRIPTS = "_static"


class Publication:
    """Names the published folder ``OUTDIR/<name>`` in place of the work folder.

    An experiment is built in a temporary ``OUTDIR/.tmp-<name>-…`` folder that is renamed when
    complete; the paths its summary, map attributes and log record must name where the
    outputs end up, not a folder that no longer exists. Called on a string, a list or a
    dict (recursively), it returns the value with every work-folder path rewritten.
    """

    def __init__(self, workdir: Path, name: str):
        final = workdir.parent / name
        self._pairs = {str(workdir.resolve()): str(final.resolve()), str(workdir): str(final)}

    def __call__(self, value: Any) -> Any:
        """Return ``value`` with the work folder's paths naming the published folder."""
        if isinstance(value, str):
            for work, final in self._pairs.items():
                value = value.replace(work, final)
            return value
        if isinstance(value, dict):
            return {key: self(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self(item) for item in value)
        return value


class ExperimentLog:
    """The messages of one experiment, appended to ``log.txt`` in its work folder.

    Called like :func:`click.echo` (:data:`pipelines.progress.Echo`); several experiments of
    one worker process each write their own file, so nothing process-wide is redirected.
    Paths in the messages name the published folder (:class:`Publication`).
    """

    def __init__(self, workdir: Path, publication: Publication | None = None):
        self.path = workdir / "log.txt"
        self._publication = publication or (lambda text: text)
        self._lock = threading.Lock()

    def __call__(self, message: Any = "", err: bool = False, **_: Any) -> None:
        """Append one line (``err``: a diagnostic; the log holds both)."""
        with self._lock, open(self.path, "a", encoding="utf-8") as log:
            log.write(f"{self._publication(str(message))}\n")


def experiment_title(experiment: Experiment) -> str:
    """``pristine-dems (sample pristine, cycle 1)``: the experiment's name and its labels."""
    return titled(experiment.name, experiment.labels)


def _report(experiment: Experiment, path: Path) -> ReportFiles:
    """Return the experiment's report at ``path``; it loads the batch's shared scripts."""
    return ReportFiles(
        path, title=experiment_title(experiment), shared_scripts=path.parent.parent / SHARED_SCRIPTS
    )


@contextlib.contextmanager
def _experiment_scheduler() -> Iterator[None]:
    """Compute in-task on a worker (one experiment per worker thread, no oversubscription).

    Outside a worker — a large experiment driven by ``operando batch`` with the cluster as
    scheduler, or a test — the scheduler already configured is kept.
    """
    import dask
    from distributed.worker import get_worker

    try:
        get_worker()
    except ValueError:
        yield
        return
    with dask.config.set(scheduler="synchronous"):
        yield


def run_dems(experiment: Experiment, workdir: Path) -> dict[str, Any]:
    """Calibrate if needed, then process the run; return the summary."""
    from dems.workflows import calibrate, process
    from pipelines.commands.dems_calibrate import publish_calibration
    from pipelines.commands.dems_process import publish_process

    inputs, options = experiment.inputs, experiment.options_of(ProcessOptions)
    publication = Publication(workdir, experiment.name)
    echo = ExperimentLog(workdir, publication)
    with _experiment_scheduler():
        calibration = inputs.get("calibration")
        if calibration is None and "calibration_steps" in inputs:
            steps = (inputs["cal_ms"], inputs["calibration_steps"])
            made = calibrate(*steps, CalibrateOptions(timezone=options.timezone))
            target = workdir / "calibration.json"
            with publishing({"calibration": target}, inputs.values()) as staging:
                publish_calibration(made, target, echo, written=staging.path(target))
            calibration = target
        outputs = {
            "result": workdir / "result.zarr",
            "summary": workdir / "summary.json",
            "report": workdir / REPORT_NAME,
        }
        with publishing(outputs, [*inputs.values(), calibration]) as staging:
            return publish_process(
                process(inputs["ms"], inputs["ec"], calibration, options),
                output=outputs["result"],
                summary_path=outputs["summary"],
                report=_report(experiment, outputs["report"]),
                staging=staging,
                echo=echo,
                progress=False,
                relocate=publication,
            )


def run_tofsims(experiment: Experiment, workdir: Path) -> dict[str, Any]:
    """Reconstruct a GRD event list into a volume if needed, then measure the CEI."""
    from pipelines.commands.tofsims_cei import publish_cei
    from pipelines.commands.tofsims_reconstruct import run_reconstruct
    from tofsims.workflows import cei
    from tofsims.workflows.inputs import is_event_list

    source = experiment.inputs["input"]
    publication = Publication(workdir, experiment.name)
    echo = ExperimentLog(workdir, publication)
    with _experiment_scheduler():
        volume = source
        if is_event_list(source):
            volume = workdir / "volume.zarr"
            with publishing({"volume": volume}, experiment.inputs.values()) as staging:
                run_reconstruct(
                    source,
                    experiment.options_of(ReconstructOptions),
                    output=volume,
                    staging=staging,
                    properties=experiment.inputs.get("properties"),
                    echo=echo,
                    progress=False,
                )
        run = cei(volume, experiment.options_of(CeiOptions))
        outputs = {
            "summary": workdir / "summary.json",
            "map": workdir / "cei_map.nc" if run.is_volume else None,
            "report": workdir / REPORT_NAME,
        }
        with publishing(outputs, [*experiment.inputs.values(), volume]) as staging:
            return publish_cei(
                run,
                summary_path=outputs["summary"],
                map_path=outputs["map"],
                report=_report(experiment, outputs["report"]),
                staging=staging,
                echo=echo,
                progress=False,
                relocate=publication,
            )
