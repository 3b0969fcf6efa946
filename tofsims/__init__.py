"""TOF-SIMS domain: readers, fragments, calibration, volumes, depth and CEI thickness.

Public entry points::

    import tofsims
    events = tofsims.open("run.itm.grd")     # any supported file, or a volume store
    tofsims.detect_format("profile.txt")     # the reader module that recognises a file

    from tofsims.workflows import CeiOptions, cei, reconstruct
    volume = reconstruct(events)              # GRD events -> counts(fragment, scan, y, x)
    result = cei(volume, CeiOptions(sputter_rate_nm_per_s=0.05)).compute()

:mod:`tofsims.workflows` holds every analysis of ``operando tofsims`` as a Python function.
Everything numerical is a pure ``Dataset -> Dataset`` function that stays lazy on
dask-backed input; see ``docs/conventions.md`` for the data model. Heavy imports happen on
first use, so ``import tofsims`` stays cheap for the command line.
"""

from __future__ import annotations

from operando_core.exports import lazy_exports
from tofsims.errors import AnalysisError, FragmentError, TofsimsError, TofsimsReadError

__all__ = [
    "AnalysisError",
    "FragmentError",
    "TofsimsError",
    "TofsimsReadError",
    "detect_format",
    "open",
    "readers",
    "workflows",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "open": "tofsims.io:open_tofsims",
        "detect_format": "tofsims.io:detect_format",
        "readers": "tofsims.io:readers",
        "workflows": "tofsims.workflows",
    },
    __all__,
)
