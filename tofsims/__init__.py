"""TOF-SIMS domain: readers, fragments, calibration, volumes, depth and CEI thickness.

Everything numerical is a pure ``Dataset -> Dataset`` function that stays lazy on
dask-backed input; see ``docs/conventions.md`` for the data model.
"""

from __future__ import annotations

from tofsims.errors import AnalysisError, FragmentError, TofsimsError, TofsimsReadError

__all__ = ["AnalysisError", "FragmentError", "TofsimsError", "TofsimsReadError"]
