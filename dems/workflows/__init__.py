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

from operando_core.exports import lazy_exports

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
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "Calibration": "dems.calibration_file:Calibration",
        "CalibrateOptions": "dems.workflows.options:CalibrateOptions",
        "FaradaicOptions": "dems.workflows.options:FaradaicOptions",
        "ProcessOptions": "dems.workflows.options:ProcessOptions",
        "ProcessResult": "dems.workflows.processing:ProcessResult",
        "ProcessRun": "dems.workflows.processing:ProcessRun",
        "ProcessSummary": "dems.workflows.processing:ProcessSummary",
        "calibrate": "dems.workflows.calibration:calibrate",
        "calibrate_faradaic": "dems.workflows.calibration:calibrate_faradaic",
        "process": "dems.workflows.processing:process",
    },
)
