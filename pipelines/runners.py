"""Runners of one batch experiment: the same commands a user runs, with manifest parameters.

``run_dems`` calibrates (when the manifest gives ``calibration_steps`` + ``cal_ms``) and runs
``operando dems process``; ``run_tofsims`` reconstructs a GRD event list into a volume store
(``operando tofsims reconstruct``) and runs ``operando tofsims cei``. Each writes into the
experiment's (temporary) work folder and returns the summary. Console output of the commands goes
to ``log.txt`` in that folder, progress bars are off (:mod:`pipelines.progress`), and each
experiment gets a ``report.html`` (the commands' ``--html``), linked from the batch index.

On a dask.distributed worker an experiment computes in-task (synchronously); a large
experiment driven by the batch process computes on the whole cluster instead.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dask

from pipelines.manifest import Experiment

__all__ = ["PARAMETERS", "REPORT_NAME", "run_dems", "run_tofsims", "unknown_parameters"]

#: Offline HTML report written into every experiment's folder.
REPORT_NAME = "report.html"

#: Manifest parameter -> (command option, how to render the value). ``None`` = one flag per item.
DEMS_PROCESS_OPTIONS: dict[str, str] = {
    "mass_mg": "--mass",
    "timezone": "--timezone",
    "clock_offset_s": "--clock-offset",
    "delay_s": "--delay",
    "delay_uncertainty_s": "--delay-uncertainty",
    "background": "--background",
    "bg_windows": "--bg-window",
    "degree": "--degree",
    "gases": "--gas",
    "onset_method": "--onset-method",
    "k": "--k",
    "persistence": "--persistence",
    "z": "--z",
}
TOFSIMS_RECONSTRUCT_OPTIONS: dict[str, str] = {
    "fragments": "--fragments",
    "window_u": "--window-u",
    "resolution": "--resolution",
    "bin": "--bin",
    "dead_time_ns": "--dead-time",
    "poisson": "--poisson",
    "recalibrate": "--recalibrate",
    "seconds_per_scan": "--seconds-per-scan",
}
TOFSIMS_CEI_OPTIONS: dict[str, str] = {
    "sputter_rate_nm_per_s": "--sputter-rate",
    "seconds_per_scan": "--seconds-per-scan",
    "marker": "--marker",
    "bulk": "--bulk",
}
#: Parameters a manifest may give, per kind.
PARAMETERS: dict[str, frozenset[str]] = {
    "dems": frozenset(DEMS_PROCESS_OPTIONS),
    "tofsims": frozenset(TOFSIMS_RECONSTRUCT_OPTIONS) | frozenset(TOFSIMS_CEI_OPTIONS),
}


def unknown_parameters(kind: str, params: dict[str, Any]) -> list[str]:
    """Parameter names a runner of ``kind`` would not understand (typos in a manifest)."""
    return sorted(set(params) - PARAMETERS[kind])


def _arguments(params: dict[str, Any], options: dict[str, str]) -> list[str]:
    """Command-line arguments for the manifest parameters a command understands."""
    args: list[str] = []
    for key, option in options.items():
        if key not in params:
            continue
        value = params[key]
        if key == "bg_windows":
            args += [item for start, end in value for item in (option, f"{start}:{end}")]
        elif key == "z":
            args += [item for gas, z in value.items() for item in (option, f"{gas}={z}")]
        elif key == "gases":
            args += [item for gas in value for item in (option, str(gas))]
        elif key == "fragments" and not isinstance(value, str):
            args += [option, ",".join(value)]
        elif key == "recalibrate":
            args.append("--recalibrate" if value else "--no-recalibrate")
        elif isinstance(value, bool):
            args += [option] if value else []
        else:
            args += [option, str(value)]
    return args


def _invoke(command_path: str, args: list[str]) -> None:
    """Run a click command in-process; errors propagate as exceptions."""
    import importlib

    module, name = command_path.split(":")
    command = getattr(importlib.import_module(module), name)
    command.main(args=[str(a) for a in args], prog_name=name, standalone_mode=False)


class _ThreadRoutedStream(io.TextIOBase):
    """``sys.stdout``/``sys.stderr`` stand-in writing to a per-thread target when one is set.

    Several experiments can run at once in one worker process (an experiment waiting on the
    cluster secedes from the thread pool), so the process-wide ``contextlib.redirect_stdout``
    would mix their logs or close one under another.
    """

    def __init__(self, fallback: Any):
        self.fallback = fallback
        self.local = threading.local()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def _target(self) -> Any:
        return getattr(self.local, "target", None) or self.fallback

    def write(self, text: str) -> int:
        return self._target().write(text)

    def flush(self) -> None:
        self._target().flush()

    def isatty(self) -> bool:
        return False


_ROUTE_LOCK = threading.Lock()


def _routed(name: str) -> _ThreadRoutedStream:
    with _ROUTE_LOCK:
        stream = getattr(sys, name)
        if not isinstance(stream, _ThreadRoutedStream):
            stream = _ThreadRoutedStream(stream)
            setattr(sys, name, stream)
        return stream


@contextlib.contextmanager
def _logged(workdir: Path) -> Iterator[None]:
    """Send this thread's console output to ``workdir/log.txt``; no progress bars."""
    streams = [_routed("stdout"), _routed("stderr")]
    with (
        open(workdir / "log.txt", "a", encoding="utf-8") as log,
        dask.config.set({"operando.quiet": True}),
    ):
        for stream in streams:
            stream.local.target = log
        try:
            yield
        finally:
            for stream in streams:
                stream.local.target = None


@contextlib.contextmanager
def _experiment_scheduler() -> Iterator[None]:
    """Compute in-task on a worker (one experiment per worker thread, no oversubscription).

    Outside a worker — the command line, or a large experiment driven by ``operando batch``
    with the cluster as scheduler — the scheduler already configured is kept.
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


def _check(experiment: Experiment) -> None:
    unknown = unknown_parameters(experiment.kind, experiment.params)
    if unknown:
        known = ", ".join(sorted(PARAMETERS[experiment.kind]))
        raise ValueError(f"{experiment.name}: unknown parameter(s) {unknown} (known: {known})")


def run_dems(experiment: Experiment, workdir: Path) -> dict[str, Any]:
    """Calibrate if needed, then ``operando dems process``; return the summary."""
    _check(experiment)
    inputs, params = experiment.inputs, experiment.params
    calibration = inputs.get("calibration")
    with _logged(workdir), _experiment_scheduler():
        if calibration is None and "calibration_steps" in inputs:
            calibration = workdir / "calibration.json"
            args = [inputs["cal_ms"], "--steps", inputs["calibration_steps"], "-o", calibration]
            if "timezone" in params:
                args += ["--timezone", params["timezone"]]
            _invoke("pipelines.commands.dems_calibrate:calibrate", args)
        args = [
            inputs["ms"],
            "--ec",
            inputs["ec"],
            "-o",
            workdir / "result.zarr",
            "--summary",
            workdir / "summary.json",
            "--html",
            workdir / REPORT_NAME,
        ]
        if calibration is not None:
            args += ["--calibration", calibration]
        _invoke(
            "pipelines.commands.dems_process:process",
            args + _arguments(params, DEMS_PROCESS_OPTIONS),
        )
    return json.loads((workdir / "summary.json").read_text())


def _is_profile(path: Path) -> bool:
    from tofsims.io import detect_format

    return path.is_file() and detect_format(path).__name__.endswith(".surfacelab")


def run_tofsims(experiment: Experiment, workdir: Path) -> dict[str, Any]:
    """Reconstruct a GRD into a volume if needed, then ``operando tofsims cei``."""
    _check(experiment)
    source, params = experiment.inputs["input"], experiment.params
    with _logged(workdir), _experiment_scheduler():
        volume = source
        if source.suffix.lower() == ".grd":
            volume = workdir / "volume.zarr"
            args = [source, "-o", volume]
            if "properties" in experiment.inputs:
                args += ["--properties", experiment.inputs["properties"]]
            _invoke(
                "pipelines.commands.tofsims_reconstruct:reconstruct",
                args + _arguments(params, TOFSIMS_RECONSTRUCT_OPTIONS),
            )
        args = [volume, "--summary", workdir / "summary.json", "--html", workdir / REPORT_NAME]
        if not _is_profile(Path(volume)):
            args += ["--map", workdir / "cei_map.nc"]
        _invoke(
            "pipelines.commands.tofsims_cei:cei", args + _arguments(params, TOFSIMS_CEI_OPTIONS)
        )
    return json.loads((workdir / "summary.json").read_text())
