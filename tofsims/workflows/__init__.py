"""TOF-SIMS workflows: each analysis of the command line as one Python function.

::

    from tofsims.workflows import CeiOptions, ReconstructOptions, cei, open_events, reconstruct

    events = open_events("run.itm.grd")  # lazy GRD event table
    volume = reconstruct(events, ReconstructOptions(seconds_per_scan=2))  # lazy volume
    run = cei(volume, CeiOptions(sputter_rate_nm_per_s=0.05, marker="LiF2-"))
    result = run.compute()            # map, profile and summary
    result.summary.cei_thickness_nm

Workflows read their inputs (files or datasets), stay lazy until ``compute`` and write
nothing: ``operando tofsims reconstruct``/``cei``/``profile`` and ``operando batch`` call them
and write the results. Options are typed dataclasses (:mod:`tofsims.workflows.options`) shared
with the command line and batch manifests.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "DEFAULT_FRAGMENTS",
    "CeiOptions",
    "CeiResult",
    "CeiRun",
    "CeiSummary",
    "ProfileOptions",
    "ReconstructOptions",
    "cei",
    "input_files",
    "is_profile",
    "mass_recalibration",
    "open_events",
    "open_input",
    "profile",
    "reconstruct",
]

# light options at once; the workflows (xarray, dask) on first use
_LAZY = {
    "DEFAULT_FRAGMENTS": "tofsims.workflows.options",
    "CeiOptions": "tofsims.workflows.options",
    "ProfileOptions": "tofsims.workflows.options",
    "ReconstructOptions": "tofsims.workflows.options",
    "CeiResult": "tofsims.workflows.cei_thickness",
    "CeiRun": "tofsims.workflows.cei_thickness",
    "CeiSummary": "tofsims.workflows.cei_thickness",
    "cei": "tofsims.workflows.cei_thickness",
    "input_files": "tofsims.workflows.inputs",
    "is_profile": "tofsims.workflows.inputs",
    "open_input": "tofsims.workflows.inputs",
    "mass_recalibration": "tofsims.workflows.reconstruction",
    "open_events": "tofsims.workflows.reconstruction",
    "reconstruct": "tofsims.workflows.reconstruction",
    "profile": "tofsims.workflows.depth_profiles",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tofsims.workflows' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)  # the public API, for tab completion
