"""The kinds of batch experiment: their input files, their options and who runs them.

One definition per kind serves the manifest (which keys are inputs, which are parameters,
checked against the workflows' options classes), the fingerprint (every file the experiment
reads, sidecars included) and the batch (the runner executed on a worker). Light to import.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dems.workflows.options import ProcessOptions
from operando_core.options import number, option, validate
from tofsims.workflows.options import CeiOptions, ReconstructOptions

__all__ = ["KINDS", "ExperimentOptions", "Kind"]


@dataclass(frozen=True)
class ExperimentOptions:
    """How the batch runs one experiment, whatever its kind (manifest keys, no flags).

    They do not change an experiment's results, so they are not part of its fingerprint.
    """

    timeout_s: float = option(
        3600.0,
        convert=number,
        greater_than=0,
        at_most=7 * 86400.0,
        units="s",
        help="Longest time an experiment may run on a worker; then it fails and its worker "
        "is restarted.",
    )

    def __post_init__(self) -> None:
        validate(self)


def _declared(inputs: Mapping[str, Path]) -> list[Path]:
    """List the DEMS inputs: the files the manifest names (DEMS formats have no sidecars)."""
    return list(inputs.values())


def _tofsims_files(inputs: Mapping[str, Path]) -> list[Path]:
    """List the TOF-SIMS input and the sidecars its reader finds (a GRD's properties.txt …)."""
    from tofsims.workflows import input_files

    return [*inputs.values(), *input_files(inputs["input"], inputs.get("properties"))]


@dataclass(frozen=True)
class Kind:
    """One kind of experiment.

    Attributes
    ----------
    name
        ``kind = "..."`` in the manifest.
    inputs
        Keys of an experiment that name input files (resolved against the manifest).
    required
        Inputs it cannot do without.
    options
        Options classes of its workflows: every other key of an experiment is a field of one
        of them (the manifest key is the field name, the value is checked by the class).
    runner
        ``"module:function"`` running one experiment, ``f(experiment, workdir) -> summary``
        (imported on the worker).
    files
        Every file the experiment reads, from its resolved inputs (for the fingerprint).
    """

    name: str
    inputs: frozenset[str]
    required: tuple[str, ...]
    options: tuple[type, ...]
    runner: str
    files: Callable[[Mapping[str, Path]], list[Path]]

    def load_runner(self) -> Callable[[Any, Path], dict[str, Any]]:
        """Import the runner."""
        module, function = self.runner.split(":")
        return getattr(importlib.import_module(module), function)


KINDS: dict[str, Kind] = {
    "dems": Kind(
        name="dems",
        inputs=frozenset({"ms", "ec", "cal_ms", "calibration_steps", "calibration"}),
        required=("ms", "ec"),
        options=(ProcessOptions, ExperimentOptions),
        runner="pipelines.runners:run_dems",
        files=_declared,
    ),
    "tofsims": Kind(
        name="tofsims",
        inputs=frozenset({"input", "properties"}),
        required=("input",),
        options=(ReconstructOptions, CeiOptions, ExperimentOptions),
        runner="pipelines.runners:run_tofsims",
        files=_tofsims_files,
    ),
}
