"""Isotope evidence on fragment volumes (is m/z 43 boron, is ⁷LiF₂⁻ saturated).

A window can hold a neighbour no fit separates (C₂F⁻ at ¹¹BO₂⁻ needs m/Δm ≈ 59 000). The
isotopologue of the same species, one mass unit away, is independent evidence: boron has
¹⁰B/¹¹B = 0.248 (IUPAC), lithium ⁶Li/⁷Li = 0.0821, so ¹⁰BO₂⁻/¹¹BO₂⁻ far below 0.248 means
m/z 43 carries something else, and ⁶LiF₂⁻/⁷LiF₂⁻ above 0.0821 means ⁷LiF₂⁻ is saturated
(:func:`tofsims.fragments.boron_isotope_check`, :func:`tofsims.fragments.
lithium_saturation_check`). Here the ratios are taken per depth block (the blocks of the
volume's ``spectrum_part``) and for the whole run, with Poisson standard errors.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from tofsims.fragments import boron_isotope_check, lithium_saturation_check

__all__ = ["ISOTOPE_PAIRS", "isotope_evidence"]

#: (name, minor isotopologue, major one, check) of the evidence taken when both are binned.
ISOTOPE_PAIRS: tuple[tuple[str, str, str], ...] = (
    ("boron", "10BO2-", "BO2-"),
    ("lithium", "6LiF2-", "LiF2-"),
)


def _check(name: str, minor: Any, major: Any, sigmas: float) -> xr.Dataset:
    if name == "boron":
        return boron_isotope_check(minor, major, sigmas=sigmas)
    return lithium_saturation_check(minor, major, sigmas=sigmas)


def isotope_evidence(
    counts: xr.DataArray, block_of_scan: np.ndarray, *, sigmas: float = 3.0
) -> dict[str, xr.Dataset]:
    """Isotope ratios per depth block and for the whole run (lazy).

    Parameters
    ----------
    counts
        ``counts(fragment, scan, y, x)`` (window or fitted counts).
    block_of_scan
        Depth block of every scan (:func:`tofsims.peak_fit.block_of_scan`).
    sigmas
        Standard errors beyond which a ratio is flagged.

    Returns
    -------
    dict of xarray.Dataset
        ``"boron"`` and/or ``"lithium"`` (only pairs whose two fragments are in ``counts``):
        the check's variables along ``block`` (``ratio``, ``ratio_error``, ``interfered`` or
        ``saturated`` …), the same for the whole run with suffix ``_run``, ``minor_counts``
        and ``major_counts`` (``block``) and the block's ``first_scan``.
    """
    names = [str(f) for f in counts["fragment"].values]
    block = xr.DataArray(np.asarray(block_of_scan), dims="scan")
    first_scan = [int(np.argmax(block_of_scan == b)) for b in np.unique(block_of_scan)]
    evidence = {}
    for name, minor, major in ISOTOPE_PAIRS:
        if minor not in names or major not in names:
            continue
        sums = counts.sel(fragment=[minor, major]).sum(("y", "x"))
        sums = sums.drop_vars([c for c in sums.coords if c != "fragment"])
        per_block = sums.groupby(block.rename("block")).sum()
        per_block = per_block.drop_vars("block")
        minor_b, major_b = per_block.sel(fragment=minor), per_block.sel(fragment=major)
        by_block = _check(name, minor_b, major_b, sigmas)
        run = _check(name, minor_b.sum("block"), major_b.sum("block"), sigmas)
        ds = by_block.drop_vars([c for c in by_block.coords])
        for key, value in run.data_vars.items():
            ds[f"{key}_run"] = value.drop_vars([c for c in value.coords])
        ds["minor_counts"] = minor_b.drop_vars([c for c in minor_b.coords])
        ds["major_counts"] = major_b.drop_vars([c for c in major_b.coords])
        ds = ds.assign_coords(first_scan=("block", first_scan))
        ds.attrs = {**run.attrs, "minor": minor, "major": major}
        evidence[name] = ds
    return evidence
