"""DEMS workflows: each analysis of the command line as one Python function.

::

    from dems.workflows import ProcessOptions, calibrate, process

    calibration = calibrate("gas_steps.asc", "steps.toml")
    run = process("run.asc", "run_C01.mpt", calibration, ProcessOptions(gases=("O2", "CO2")))
    result = run.compute()            # the dataset in memory, and its summary
    result.summary.onsets["O2"]["potential_V"]

Workflows read their inputs (files or datasets), stay lazy until ``compute`` and write
nothing: ``operando dems calibrate``/``process`` and ``operando batch`` call them and write
the results. Options are typed dataclasses (:mod:`dems.workflows.options`) shared with the
command line and batch manifests.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "CalibrateOptions",
    "Calibration",
    "FaradaicOptions",
    "ProcessOptions",
    "ProcessResult",
    "ProcessRun",
    "ProcessSummary",
    "calibrate",
    "calibrate_faradaic",
    "process",
]

# light options at once; the workflows (xarray, dask) on first use
_LAZY = {
    "Calibration": "dems.calibration_file",
    "CalibrateOptions": "dems.workflows.options",
    "FaradaicOptions": "dems.workflows.options",
    "ProcessOptions": "dems.workflows.options",
    "ProcessResult": "dems.workflows.processing",
    "ProcessRun": "dems.workflows.processing",
    "ProcessSummary": "dems.workflows.processing",
    "calibrate": "dems.workflows.calibration",
    "calibrate_faradaic": "dems.workflows.calibration",
    "process": "dems.workflows.processing",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'dems.workflows' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)  # the public API, for tab completion
