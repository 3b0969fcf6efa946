"""TOF-SIMS workflows: each analysis of the command line as one Python function.

::

    from tofsims.workflows import CeiOptions, ReconstructOptions, cei, open_events, reconstruct

    events = open_events("run.itm.grd")  # lazy GRD event table
    volume = reconstruct(events, ReconstructOptions(seconds_per_scan=2))  # lazy volume
    run = cei(volume, CeiOptions(sputter_rate_nm_per_s=0.05, marker="LiF2-"))
    result = run.compute()            # map, profile and summary
    result.summary.cei_thickness_nm

Workflows read their inputs (files or datasets), stay lazy until ``compute`` and write
nothing — except :func:`reconstruct_into`, which fills a volume store in one pass over a GRD
file: ``operando tofsims reconstruct``/``cei``/``profile`` and ``operando batch`` call them
and write the results. Options are typed dataclasses (:mod:`tofsims.workflows.options`) shared
with the command line and batch manifests.
"""

from __future__ import annotations

from operando_core.exports import lazy_exports

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
    "open_records",
    "profile",
    "reconstruct",
    "reconstruct_into",
]

# light options at once; the workflows (xarray, dask) on first use
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "DEFAULT_FRAGMENTS": "tofsims.workflows.options:DEFAULT_FRAGMENTS",
        "CeiOptions": "tofsims.workflows.options:CeiOptions",
        "ProfileOptions": "tofsims.workflows.options:ProfileOptions",
        "ReconstructOptions": "tofsims.workflows.options:ReconstructOptions",
        "CeiResult": "tofsims.workflows.cei_thickness:CeiResult",
        "CeiRun": "tofsims.workflows.cei_thickness:CeiRun",
        "CeiSummary": "tofsims.workflows.cei_summary:CeiSummary",
        "cei": "tofsims.workflows.cei_thickness:cei",
        "input_files": "tofsims.workflows.inputs:input_files",
        "is_profile": "tofsims.workflows.inputs:is_profile",
        "open_input": "tofsims.workflows.inputs:open_input",
        "mass_recalibration": "tofsims.workflows.reconstruction:mass_recalibration",
        "open_events": "tofsims.workflows.reconstruction:open_events",
        "open_records": "tofsims.workflows.reconstruction:open_records",
        "reconstruct": "tofsims.workflows.reconstruction:reconstruct",
        "reconstruct_into": "tofsims.workflows.reconstruction:reconstruct_into",
        "profile": "tofsims.workflows.depth_profiles:profile",
    },
)
