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

from dems.errors import AlignmentError, CalibrationError, DemsError, DemsReadError
from operando_core.exports import lazy_exports

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

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "open_ms": "dems.io:open_ms",
        "open_ec": "dems.io:open_ec",
        "detect_format": "dems.io:detect_format",
        "readers": "dems.io:readers",
        "align": "dems.alignment:align",
        "workflows": "dems.workflows",
    },
    __all__,
)
