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
from tofsims.masscal import window_channels
from tofsims.peak_fit import spectrum_channels

__all__ = [
    "ISOTOPE_PAIRS",
    "isotope_evidence",
    "spectrum_isotope_evidence",
    "window_counts_of_blocks",
]

#: (name, minor isotopologue, major one, check) of the evidence taken when both are binned.
ISOTOPE_PAIRS: tuple[tuple[str, str, str], ...] = (
    ("boron", "10BO2-", "BO2-"),
    ("lithium", "6LiF2-", "LiF2-"),
)


def _check(name: str, minor: Any, major: Any, sigmas: float) -> xr.Dataset:
    if name == "boron":
        return boron_isotope_check(minor, major, sigmas=sigmas)
    return lithium_saturation_check(minor, major, sigmas=sigmas)


def _pair_evidence(
    name: str, minor: str, major: str, per_block: xr.DataArray, first_scan: Any, sigmas: float
) -> xr.Dataset:
    """One pair's checks along ``block`` and for the run, from ``per_block(fragment, block)``."""
    minor_b, major_b = per_block.sel(fragment=minor), per_block.sel(fragment=major)
    minor_b = minor_b.drop_vars([c for c in minor_b.coords])
    major_b = major_b.drop_vars([c for c in major_b.coords])
    by_block = _check(name, minor_b, major_b, sigmas)
    run = _check(name, minor_b.sum("block"), major_b.sum("block"), sigmas)
    ds = by_block.drop_vars([c for c in by_block.coords])
    for key, value in run.data_vars.items():
        ds[f"{key}_run"] = value.drop_vars([c for c in value.coords])
    ds["minor_counts"] = minor_b
    ds["major_counts"] = major_b
    ds = ds.assign_coords(first_scan=("block", np.asarray(first_scan, dtype=np.int64)))
    ds.attrs = {**run.attrs, "minor": minor, "major": major}
    return ds


def _evidence_of_block_sums(
    per_block: xr.DataArray, first_scan: Any, sigmas: float
) -> dict[str, xr.Dataset]:
    names = [str(f) for f in per_block["fragment"].values]
    return {
        name: _pair_evidence(name, minor, major, per_block, first_scan, sigmas)
        for name, minor, major in ISOTOPE_PAIRS
        if minor in names and major in names
    }


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
    pairs = {f for _, minor, major in ISOTOPE_PAIRS for f in (minor, major) if f in names}
    if not pairs:
        return {}
    block = xr.DataArray(np.asarray(block_of_scan), dims="scan")
    first_scan = [int(np.argmax(block_of_scan == b)) for b in np.unique(block_of_scan)]
    sums = counts.sel(fragment=[n for n in names if n in pairs]).sum(("y", "x"))
    sums = sums.drop_vars([c for c in sums.coords if c != "fragment"])
    per_block = sums.groupby(block.rename("block")).sum().drop_vars("block")
    return _evidence_of_block_sums(per_block, first_scan, sigmas)


def window_counts_of_blocks(volume: xr.Dataset) -> xr.DataArray:
    """Sum every fragment's window in each depth block's summed spectrum (lazy).

    What the binning put in the window, before any dead-time correction, read from the
    ``spectrum_part(block, tof_channel)`` a reconstruction stores, not from the volume.

    Parameters
    ----------
    volume
        With ``spectrum_part``, the windows ``mass_low``/``mass_high`` (u) and the
        calibration attributes ``sf`` and ``k0`` of the binning.

    Returns
    -------
    xarray.DataArray
        ``window_counts(fragment, block)`` (float64).
    """
    sf, k0 = float(volume.attrs["sf"]), float(volume.attrs["k0"])
    first, last = window_channels(volume["mass_low"].values, volume["mass_high"].values, sf, k0)
    parts = volume["spectrum_part"]
    rows = [
        spectrum_channels(parts, int(lo), int(hi) + 1)[0].sum("tof_channel", dtype="float64")
        for lo, hi in zip(first, last, strict=True)
    ]
    counts = xr.concat(rows, dim="fragment").assign_coords(fragment=volume["fragment"].values)
    counts = counts.drop_vars([c for c in counts.coords if c != "fragment"])
    counts.name = "window_counts"
    counts.attrs = {"units": "counts", "long_name": "counts in the window of the block spectrum"}
    return counts.transpose("fragment", "block")


def spectrum_isotope_evidence(
    volume: xr.Dataset, purity: xr.Dataset | None = None, *, sigmas: float = 3.0
) -> dict[str, xr.Dataset]:
    """Isotope evidence from the stored block spectra, without reading the volume (lazy).

    As :func:`isotope_evidence`, with the window counts of each depth block's spectrum
    (:func:`window_counts_of_blocks`) — multiplied by the fitted window purity of the block
    when ``purity`` (:func:`tofsims.peak_fit.window_purity`) is given.
    """
    counts = window_counts_of_blocks(volume)
    if purity is not None:
        share = purity["purity"].fillna(1.0)
        counts = counts * share.drop_vars([c for c in share.coords if c != "fragment"])
    if "block_first_scan" in volume.coords:
        first_scan = volume["block_first_scan"].values
    else:
        first_scan = np.zeros(volume.sizes["block"], dtype=np.int64)
    return _evidence_of_block_sums(counts, first_scan, sigmas)
