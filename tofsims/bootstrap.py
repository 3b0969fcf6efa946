"""Parametric Poisson bootstrap helpers shared by the profile estimators.

The raw counts are resampled as Poisson variates of the observed counts; the random stream of
each block is seeded from ``seed`` and a CRC32 of the block's data, so results are
deterministic and identical with and without dask.
"""

from __future__ import annotations

import warnings
import zlib

import numpy as np

__all__ = ["block_rng", "poisson_resamples", "spread"]


def block_rng(seed: int, block: np.ndarray) -> np.random.Generator:
    """Random generator seeded from ``seed`` and the content of ``block``."""
    digest = zlib.crc32(np.ascontiguousarray(block, dtype=float).tobytes())
    return np.random.default_rng([seed, digest])


def poisson_resamples(counts: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Observed counts followed by ``n_boot`` Poisson resamples, on a new leading axis."""
    lam = np.clip(np.nan_to_num(counts, nan=0.0), 0, None)
    draws = rng.poisson(lam, size=(n_boot, *counts.shape)).astype(float)
    return np.concatenate([counts[None].astype(float), draws])


def spread(samples: np.ndarray) -> np.ndarray:
    """Return the spread over the leading bootstrap axis (NaN below 2 finite draws)."""
    finite = np.isfinite(samples).sum(axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        std = np.nanstd(samples, axis=0, ddof=1)
    return np.where(finite >= 2, std, np.nan)
