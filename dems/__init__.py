"""DEMS domain: readers, alignment, background, calibration, quantification, onsets.

Public entry points::

    import dems
    ms = dems.open_ms("run.asc")        # mass spectrometer, any supported format
    ec = dems.open_ec("run_C01.mpt")    # potentiostat
    ms, ec = dems.align(ms, ec)         # one time axis

    from dems.workflows import ProcessOptions, calibrate, process
    calibration = calibrate("gas_steps.asc", "steps.toml")
    result = process(ms, ec, calibration, ProcessOptions()).compute()

:mod:`dems.workflows` holds every analysis of ``operando dems`` as a Python function.
Everything numerical is a pure ``Dataset -> Dataset`` function that stays lazy on
dask-backed input. Heavy imports (xarray, pandas) happen on first use of a public
function, so ``import dems`` stays cheap for the command line.
"""

from __future__ import annotations

import importlib
from typing import Any

from dems.errors import AlignmentError, CalibrationError, DemsError, DemsReadError

__all__ = [
    "AlignmentError",
    "CalibrationError",
    "DemsError",
    "DemsReadError",
    "align",
    "detect_format",
    "open_ec",
    "open_ms",
    "readers",
    "workflows",
]

_LAZY = {
    "open_ms": "dems.io",
    "open_ec": "dems.io",
    "detect_format": "dems.io",
    "readers": "dems.io",
    "align": "dems.alignment",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name == "workflows":
        return importlib.import_module("dems.workflows")
    raise AttributeError(f"module 'dems' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)  # the public API, for tab completion
