"""Test helpers for the TOF-SIMS depth-analysis tests (not a test module).

``raise_if_dask_computes`` follows xarray's test helper of the same name; ``read_surfacelab``
is a minimal parser of the SurfaceLab ASCII profile export used only until t1's reader is
merged (layout: docs of tests/data/tofsims/uhasselt_surfacelab73_depth_profiles/SOURCES.md).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import dask
import numpy as np
import xarray as xr


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


def read_surfacelab(path: Path) -> xr.Dataset:
    """Parse a SurfaceLab ASCII depth-profile export into the conventions' profile model."""
    lines = path.read_text(encoding="latin-1").splitlines()
    labels = lines[1].split("\t")[4:-1]
    masses = lines[2].split("\t")[4:-1]
    rows = [line.split("\t")[:-1] for line in lines[4:] if line.strip()]
    table = np.array([[float(v) for v in row] for row in rows])
    keep = table[:, 4] != 0  # the incomplete final cycle has total == 0
    table = table[keep]
    kinds = ["total" if lab == "total" else "ratio" if " / " in lab else "single" for lab in labels]
    fragments = [
        lab.replace("_", "") if kind == "single" else ""
        for lab, kind in zip(labels, kinds, strict=True)
    ]
    return xr.Dataset(
        {"intensity": (("scan", "peak"), table[:, 4:], {"units": "counts"})},
        coords={
            "scan": np.arange(len(table)),
            "sputter_time": ("scan", table[:, 1], {"units": "s"}),
            "dose": ("scan", table[:, 2]),
            "fluence": ("scan", table[:, 3]),
            "peak": np.arange(len(labels)),
            "peak_label": ("peak", labels),
            "fragment": ("peak", fragments),
            "mass_center": ("peak", [np.nan if m == "N/A" else float(m) for m in masses]),
            "kind": ("peak", kinds),
        },
    )
