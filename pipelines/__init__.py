"""Orchestration of the ``operando`` tool: command line, dask clusters, batches, reports.

This layer depends on :mod:`dems` and :mod:`tofsims`; they never import it.
"""

from pipelines._version import __version__

__all__ = ["__version__"]
