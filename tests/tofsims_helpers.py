"""Test helpers for the TOF-SIMS depth-analysis tests (not a test module).

``raise_if_dask_computes`` follows xarray's test helper of the same name.
"""

from __future__ import annotations

import contextlib

import dask


class CountingScheduler:
    """Dask scheduler that raises once more than ``max_computes`` computations happen."""

    def __init__(self, max_computes: int = 0):
        self.total_computes = 0
        self.max_computes = max_computes

    def __call__(self, dsk, keys, **kwargs):
        self.total_computes += 1
        if self.total_computes > self.max_computes:
            raise RuntimeError(f"too many computes: {self.total_computes} > {self.max_computes}")
        return dask.get(dsk, keys, **kwargs)


@contextlib.contextmanager
def raise_if_dask_computes(max_computes: int = 0):
    scheduler = CountingScheduler(max_computes)
    with dask.config.set(scheduler=scheduler):
        yield scheduler
