"""Peak fitting at a fragment's window: how much of the window's counts is the fragment.

At each fragment whose window (±1.5 FWHM, :mod:`tofsims.peak_windows`) holds a neighbour
of :data:`tofsims.fragments.INTERFERENCES` that the run resolves (its resolving power
reaches ``m/Δm`` of the pair), the spectrum around the window is fitted with one Gaussian
per species — in TOF channels, at the measured width, at the positions the calibration
gives — plus a flat background, all amplitudes non-negative (Poisson-weighted NNLS,
reweighted by the model). The fragment's share of the window's counts (its *purity*) is
the fitted fragment counts inside the window over all fitted counts inside it.

Counts are then assigned by fitted fractions (a documented approximation,
``docs/methods.md`` "Peak fitting"): every voxel of the window in a depth block is scaled
by that block's purity (fitted on the block's spectrum ``spectrum_part``); a lateral
variation of the mixture inside one block is not resolved. Interferents closer than one
FWHM are not separable by a fit with fixed width and positions: they stay in the fragment's
counts and are listed as unresolved (isotope ratios are the evidence there,
:mod:`tofsims.fragment_evidence`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from tofsims.fragments import ion_mass
from tofsims.masscal import mass_to_tof, window_channels
from tofsims.peak_windows import FWHM_PER_SIGMA, PeakWidth, listed_interferents

if TYPE_CHECKING:
    # imported where used: the one-pass reconstruction fits the whole-run spectrum without
    # loading xarray (or scipy.optimize, whose import alone costs 0.3 s)
    import xarray as xr

__all__ = [
    "MIN_FIT_COUNTS",
    "block_of_scan",
    "fit_components",
    "fit_window_fractions",
    "fitted_counts",
    "window_purity",
]

#: Window counts a block needs for its own fit; fewer: the whole run's fractions are used.
MIN_FIT_COUNTS = 50.0
#: Fit range beyond the window and the species, in FWHM.
MARGIN_FWHM = 3.0

_erf = np.frompyfunc(math.erf, 1, 1)


def _normal_cdf(z: np.ndarray) -> np.ndarray:
    """Return the standard normal CDF (NumPy has no erf; a fit needs a few thousand values)."""
    return 0.5 * (1.0 + _erf(np.asarray(z, dtype="float64") / math.sqrt(2.0)).astype("float64"))


def nnls_small(design: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Solve non-negative least squares of a few columns exactly.

    The optimum is the best of the column subsets whose unconstrained least-squares solution
    is non-negative (the NNLS optimum is one of them); 2ⁿ − 1 small solves.
    """
    n = design.shape[1]
    best, best_residual = np.zeros(n), float(np.sum(target**2))
    for size in range(1, n + 1):
        for subset in itertools.combinations(range(n), size):
            columns = list(subset)
            solution, *_ = np.linalg.lstsq(design[:, columns], target, rcond=None)
            if np.any(solution < 0):
                continue
            residual = float(np.sum((design[:, columns] @ solution - target) ** 2))
            if residual < best_residual:
                best = np.zeros(n)
                best[columns] = solution
                best_residual = residual
    return best


def fit_components(
    fragment: str, mass_low: float, mass_high: float, peak_width: PeakWidth
) -> tuple[list[str], list[str]]:
    """Species of a fragment's fit and its unresolved interferents.

    Returns
    -------
    components, unresolved
        ``[fragment, resolved interferents near the window …]`` (just ``[fragment]`` when
        nothing needs fitting) and the listed interferents inside the window that the run
        does not resolve (closer than one FWHM).
    """
    mass = ion_mass(fragment)
    fwhm = float(peak_width.fwhm_u(mass))
    power = float(peak_width.resolving_power(mass))
    components, unresolved = [fragment], []
    for interferent in listed_interferents(fragment):
        other = ion_mass(interferent)
        needed = 0.5 * (mass + other) / abs(other - mass)
        if power >= needed:
            if mass_low - MARGIN_FWHM * fwhm <= other <= mass_high + MARGIN_FWHM * fwhm:
                components.append(interferent)
        elif mass_low <= other <= mass_high:
            unresolved.append(interferent)
    return components, unresolved


def _fit_range(
    components: Sequence[str], mass_low: float, mass_high: float, peak_width: PeakWidth
) -> tuple[int, int]:
    """First and last channel (inclusive) of the fit."""
    masses = [ion_mass(c) for c in components]
    sf, k0 = peak_width.sf, peak_width.k0
    fwhm = float(peak_width.fwhm_channels_at(max(masses)))
    first = mass_to_tof(min(mass_low, *masses), sf, k0) - MARGIN_FWHM * fwhm
    last = mass_to_tof(max(mass_high, *masses), sf, k0) + MARGIN_FWHM * fwhm
    return max(int(np.floor(first)), 0), int(np.ceil(last))


def _design(channels: np.ndarray, components: Sequence[str], peak_width: PeakWidth) -> np.ndarray:
    """Build the design matrix of a fit.

    Columns: each species' Gaussian integrated over each channel (events are rounded to the
    nearest channel), then a flat background of one count per channel.
    """
    columns = []
    for name in components:
        mass = ion_mass(name)
        centre = float(mass_to_tof(mass, peak_width.sf, peak_width.k0))
        sigma = float(peak_width.fwhm_channels_at(mass)) / FWHM_PER_SIGMA
        upper = _normal_cdf((channels + 0.5 - centre) / sigma)
        columns.append(upper - _normal_cdf((channels - 0.5 - centre) / sigma))
    columns.append(np.ones_like(channels, dtype="float64"))
    return np.column_stack(columns)


def _nnls_poisson(design: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Non-negative amplitudes, weighted by 1/√(model) (two reweightings)."""
    weights = 1.0 / np.sqrt(np.maximum(counts, 1.0))
    amplitudes = np.zeros(design.shape[1])
    for _ in range(3):
        amplitudes = nnls_small(design * weights[:, None], counts * weights)
        weights = 1.0 / np.sqrt(np.maximum(design @ amplitudes, 1.0))
    return amplitudes


def fit_window_fractions(
    spectra: np.ndarray,
    first_channel: int,
    fragment: str,
    mass_low: float,
    mass_high: float,
    peak_width: PeakWidth,
    *,
    min_counts: float = MIN_FIT_COUNTS,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Fit the spectra of blocks around one window; shares of the window's counts.

    Parameters
    ----------
    spectra
        ``(block, channel)`` counts of channels ``first_channel …`` covering the fit range
        (:func:`fit_range_of`).
    first_channel
        TOF channel of ``spectra[:, 0]``.
    fragment, mass_low, mass_high
        The fragment and its window (u).
    peak_width
        Measured width and the calibration of the spectra.
    min_counts
        Window counts a block needs for its own fit (else the whole run's fractions).

    Returns
    -------
    shares, run_shares, species
        ``(block, species)`` and ``(species,)`` fitted shares of the window's counts (the
        last species is ``"background"``; rows sum to 1; NaN without counts) and the names.
    """
    components, _ = fit_components(fragment, mass_low, mass_high, peak_width)
    species = [*components, "background"]
    spectra = np.atleast_2d(np.asarray(spectra, dtype="float64"))
    channels = first_channel + np.arange(spectra.shape[1], dtype="float64")
    design = _design(channels, components, peak_width)
    lo, hi = window_channels(mass_low, mass_high, peak_width.sf, peak_width.k0)
    inside = (channels >= lo) & (channels <= hi)
    in_window = design[inside].sum(axis=0)

    def shares(counts: np.ndarray) -> np.ndarray:
        if counts[inside].sum() <= 0:
            return np.full(len(species), np.nan)
        if len(components) == 1:  # nothing resolved to separate: the window is the fragment's
            return np.array([1.0, 0.0])
        fitted = _nnls_poisson(design, counts) * in_window
        total = fitted.sum()
        return fitted / total if total > 0 else np.full(len(species), np.nan)

    run = shares(spectra.sum(axis=0))
    blocks = np.array(
        [shares(row) if row[inside].sum() >= min_counts else run for row in spectra]
    ).reshape(spectra.shape[0], len(species))
    return blocks, run, species


def fit_range_of(
    fragment: str, mass_low: float, mass_high: float, peak_width: PeakWidth
) -> tuple[int, int]:
    """Channels ``(first, stop)`` (stop exclusive) that :func:`fit_window_fractions` needs."""
    components, _ = fit_components(fragment, mass_low, mass_high, peak_width)
    first, last = _fit_range(components, mass_low, mass_high, peak_width)
    return first, last + 1


def spectrum_channels(part: xr.DataArray, first: int, stop: int) -> tuple[xr.DataArray, int]:
    """Channels ``first … stop - 1`` of spectra along ``tof_channel`` (as far as they reach).

    The ``tof_channel`` coordinate, when present, numbers the channels (spectra cut to a
    contiguous range of them, :func:`tofsims.workflows.fragment_purity.block_spectra`);
    without it the position is the channel.

    Returns
    -------
    part, first
        The selection and the number of its first channel.
    """
    offset = int(part["tof_channel"][0]) if "tof_channel" in part.coords else 0
    start = min(max(first - offset, 0), part.sizes["tof_channel"])
    end = min(max(stop - offset, start), part.sizes["tof_channel"])
    return part.isel(tof_channel=slice(start, end)), start + offset


def window_purity(volume: xr.Dataset, peak_width: PeakWidth) -> xr.Dataset:
    """Fitted purity of every fragment's window, per depth block and for the whole run (lazy).

    Parameters
    ----------
    volume
        A reconstructed volume with ``spectrum_part(block, tof_channel)`` and the windows
        ``mass_low``/``mass_high``.
    peak_width
        The run's measured peak width (the volume's calibration).

    Returns
    -------
    xarray.Dataset
        ``purity(fragment, block)`` and ``purity_run(fragment)``: the fragment's share of its
        window's counts (1 where nothing resolvable is listed near the window, NaN without
        counts); ``fitted_species(fragment)`` and ``unresolved(fragment)`` (comma-separated
        names) say what was fitted and what could not be separated.
    """
    import xarray as xr

    rows, run_rows, fitted_names, unresolved_names = [], [], [], []
    for name in (str(f) for f in volume["fragment"].values):
        low = float(volume["mass_low"].sel(fragment=name))
        high = float(volume["mass_high"].sel(fragment=name))
        components, unresolved = fit_components(name, low, high, peak_width)
        fit_range = fit_range_of(name, low, high, peak_width)
        part, first = spectrum_channels(volume["spectrum_part"], *fit_range)
        if part.chunks is not None:
            part = part.chunk({"block": -1, "tof_channel": -1})
        shares = xr.apply_ufunc(
            _target_shares,
            part,
            input_core_dims=[["block", "tof_channel"]],
            output_core_dims=[["share"]],
            dask="parallelized",
            output_dtypes=[np.float64],
            dask_gufunc_kwargs={"output_sizes": {"share": part.sizes["block"] + 1}},
            kwargs={"first_channel": first, "fragment": name, "mass_low": low,
                    "mass_high": high, "peak_width": peak_width},
        )  # fmt: skip
        rows.append(shares.isel(share=slice(0, -1)).rename(share="block"))
        run_rows.append(shares.isel(share=-1))
        fitted_names.append(",".join(components[1:]))
        unresolved_names.append(",".join(unresolved))
    fragment = volume["fragment"].values
    purity = xr.concat(rows, dim="fragment").assign_coords(fragment=fragment)
    run = xr.concat(run_rows, dim="fragment").assign_coords(fragment=fragment)
    purity = purity.drop_vars([c for c in purity.coords if c not in ("fragment",)])
    run = run.drop_vars([c for c in run.coords if c != "fragment"])
    ds = xr.Dataset(
        {
            "purity": purity.transpose("fragment", "block"),
            "purity_run": run,
            "fitted_species": ("fragment", np.array(fitted_names, dtype=object)),
            "unresolved": ("fragment", np.array(unresolved_names, dtype=object)),
        }
    )
    ds["purity"].attrs = {"units": "1", "long_name": "fragment share of its window's counts"}
    ds["purity_run"].attrs = dict(ds["purity"].attrs)
    return ds


def _target_shares(spectra: np.ndarray, **fit: Any) -> np.ndarray:
    """Target share per block followed by the whole run's (one flat row)."""
    blocks, run, _ = fit_window_fractions(spectra, **fit)
    return np.concatenate([blocks[:, 0], run[:1]])


def block_of_scan(volume: xr.Dataset) -> np.ndarray:
    """Depth block (``spectrum_part`` row) of every scan.

    Uses the ``block_first_scan`` coordinate; a volume without it must have one block.

    Raises
    ------
    ValueError
        Several blocks and no ``block_first_scan`` (written before the blocks were recorded).
    """
    n_scans = volume.sizes["scan"]
    if "block_first_scan" in volume.coords:
        first = np.asarray(volume["block_first_scan"].values, dtype=np.int64)
        return np.searchsorted(first, np.arange(n_scans), side="right") - 1
    if volume.sizes.get("block", 1) == 1:
        return np.zeros(n_scans, dtype=np.int64)
    raise ValueError("the volume does not record which scans each spectrum block holds")


def fitted_counts(volume: xr.Dataset, purity: xr.Dataset) -> xr.DataArray:
    """Assign each fragment the counts of its fitted share of the window (lazy, float64).

    ``counts × purity`` of the scan's depth block; where a block's purity is undetermined
    (no counts in the window) the counts are 0 anyway and stay 0.
    """
    import xarray as xr

    try:
        blocks = block_of_scan(volume)
        share = purity["purity"].isel(block=xr.DataArray(blocks, dims="scan"))
    except ValueError:
        share = purity["purity_run"]
    share = share.fillna(1.0)
    counts = volume["counts"].astype("float64") * share.drop_vars(
        [c for c in share.coords if c not in ("fragment",)]
    )
    counts.attrs = {
        "units": "counts",
        "long_name": "ion counts per voxel assigned to the fragment by the peak fit",
    }
    return counts
