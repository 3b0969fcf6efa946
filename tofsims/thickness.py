"""Per-pixel CEI thickness maps, their statistics, and the coating thickness.

The CEI thickness of a (binned) pixel is the depth at which its CEI-marker profile falls to
50 % of its maximum after the peak (:func:`tofsims.interfaces.layer_marker`), evaluated on the
``depth`` coordinate; its σ is the Poisson-bootstrap spread. See ``docs/methods.md``
("CEI thickness maps").
"""

from __future__ import annotations

import json

import numpy as np
import xarray as xr

from tofsims.errors import AnalysisError
from tofsims.interfaces import fit_layer, layer_marker
from tofsims.profiles import gaussian_smooth, rechunk_data, select_fragment

__all__ = [
    "BIN_SIZES",
    "bin_laterally",
    "cei_thickness_map",
    "coating_thickness",
    "thickness_statistics",
]

MASK_DESCRIPTION = "True where the pixel has a layer (enough counts and a 50 % fall)"

#: Allowed block sizes for lateral binning (pixels per side).
BIN_SIZES = range(1, 21)


def bin_laterally(counts: xr.DataArray, size: int) -> xr.DataArray:
    """Sum counts over non-overlapping ``size × size`` pixel blocks (lazy).

    Incomplete blocks at the right/bottom edge are dropped. The ``y``/``x`` coordinates become
    the bin indices (``docs/conventions.md``); attribute ``lateral_bin`` records the size.
    """
    if int(size) not in BIN_SIZES:
        raise AnalysisError(f"lateral bin size must be 1..20 pixels, got {size}")
    size = int(size)
    if counts.sizes["y"] < size or counts.sizes["x"] < size:
        raise AnalysisError(
            f"the field ({counts.sizes['y']}×{counts.sizes['x']} pixels) is "
            f"smaller than one {size}×{size} bin"
        )
    binned = counts.coarsen(y=size, x=size, boundary="trim").sum()
    binned = binned.assign_coords(y=np.arange(binned.sizes["y"]), x=np.arange(binned.sizes["x"]))
    return binned.assign_attrs({**counts.attrs, "lateral_bin": size})


def cei_thickness_map(
    volume: xr.Dataset,
    marker: str = "C2HO-",
    *,
    bin_size: int = 4,
    smooth_scans: float = 2.0,
    min_counts: float = 20.0,
    n_boot: int = 20,
    seed: int = 0,
    rate_map: xr.DataArray | None = None,
) -> xr.Dataset:
    """Per-pixel CEI thickness (nm) with its bootstrap σ and a validity mask.

    Parameters
    ----------
    volume
        ``counts(fragment, scan, y, x)`` with a ``depth`` coordinate (nm) along ``scan``
        (:mod:`tofsims.depth`); drift-corrected if needed (:mod:`tofsims.drift`).
    marker
        CEI marker fragment (our notation), e.g. ``"C2HO-"``, ``"LiF2-"``, ``"PO3-"``.
    bin_size
        Lateral block binning b×b (1–20, default 4): counts per voxel are tiny.
    smooth_scans
        Gaussian σ (scans) along depth before evaluating.
    min_counts
        Minimum smoothed marker counts at the maximum of a binned pixel; below it the pixel has
        no layer (NaN, ``mask`` False).
    n_boot, seed
        Poisson bootstrap for the σ map.
    rate_map
        Optional per-pixel sputter rate (nm/s), dims ``(y, x)`` of the volume — e.g. one rate for
        active particles and one for carbon/binder from a pixel classification (methods §B5).
        Positions are then found on ``sputter_time`` and converted with the block-mean rate of
        each bin; the volume needs no ``depth`` coordinate.

    Returns
    -------
    xarray.Dataset
        ``thickness``, ``thickness_std`` (nm), ``depth_at_max`` (nm), ``max_counts`` and
        ``mask`` (True where a thickness was found) on binned ``(y, x)``; attribute ``method``.
        Lazy on dask input.
    """
    counts = select_fragment(volume["counts"], marker)
    # tiles of binned pixels with the whole depth: bounded memory for any volume size
    binned = rechunk_data(bin_laterally(counts, bin_size), {"scan": -1, "y": 32, "x": 32})
    estimate = layer_marker(
        binned,
        coord="depth" if rate_map is None else "sputter_time",
        smooth_scans=smooth_scans,
        min_counts=min_counts,
        n_boot=n_boot,
        seed=seed,
    )
    method = {
        **json.loads(estimate.attrs["method"]),
        "marker": marker,
        "lateral_bin": bin_size,
        "thickness": "depth where the marker falls to 50 % of its maximum after the peak",
    }
    if rate_map is not None:
        estimate = _times_rate(estimate, rate_map, bin_size)
        method["rate"] = "per-pixel rate map (block mean per bin) x sputter time"
    thickness = estimate["position_50"]
    out = xr.Dataset(
        {
            "thickness": thickness.assign_attrs(units="nm", long_name=f"CEI thickness ({marker})"),
            "thickness_std": estimate["position_50_std"].assign_attrs(units="nm"),
            "depth_at_max": estimate["position_max"].assign_attrs(units="nm"),
            "max_counts": estimate["max_counts"],
            "mask": xr.DataArray(thickness.notnull(), attrs={"description": MASK_DESCRIPTION}),
        },
        attrs={"method": json.dumps(method)},
    )
    return out.drop_vars([c for c in ("fragment", "mass_low", "mass_high") if c in out.coords])


def _times_rate(estimate: xr.Dataset, rate_map: xr.DataArray, bin_size: int) -> xr.Dataset:
    """Convert positions on ``sputter_time`` (s) to nm with the binned mean rate (nm/s)."""
    if set(rate_map.dims) != {"y", "x"}:
        raise AnalysisError(f"the rate map must have dims (y, x), got {rate_map.dims}")
    rate = rate_map.coarsen(y=bin_size, x=bin_size, boundary="trim").mean()
    rate = rate.assign_coords(y=np.arange(rate.sizes["y"]), x=np.arange(rate.sizes["x"]))
    if rate.shape != estimate["position_50"].shape:
        raise AnalysisError("the rate map does not cover the volume's field of view")
    converted = {
        name: (var * rate if name != "max_counts" else var)
        for name, var in estimate.data_vars.items()
    }
    return xr.Dataset(converted, attrs=estimate.attrs)


def thickness_statistics(
    thickness_map: xr.Dataset, *, rate_relative_uncertainty: float = 0.0
) -> xr.Dataset:
    """Mean, median, std, percentiles and uncertainty of a thickness map (lazy scalars).

    Parameters
    ----------
    thickness_map
        Result of :func:`cei_thickness_map`.
    rate_relative_uncertainty
        Relative standard uncertainty of the sputter rate, added in quadrature.

    Returns
    -------
    xarray.Dataset
        Scalars in nm: ``mean``, ``median``, ``std`` (spatial spread), ``p05``, ``p16``, ``p84``,
        ``p95``, ``uncertainty`` (of the mean: ``√(Σσᵢ²)/N`` from the σ map ⊕ rate term), and
        ``valid_fraction`` (share of binned pixels with a layer).

    Notes
    -----
    The uncertainty of the mean treats the binned pixels as independent (block binning makes
    them so; a sliding window would not).
    """
    t = thickness_map["thickness"]
    if t.chunks is not None:
        t = rechunk_data(t, {dim: -1 for dim in t.dims})
    n_valid = t.notnull().sum()
    sigma_mean = np.sqrt((thickness_map["thickness_std"].where(t.notnull()) ** 2).sum()) / n_valid
    mean = t.mean()
    uncertainty = np.sqrt(sigma_mean**2 + (mean * rate_relative_uncertainty) ** 2)
    quantiles = t.quantile([0.05, 0.16, 0.5, 0.84, 0.95], skipna=True)
    stats = {
        "mean": mean,
        "std": t.std(ddof=1),
        "uncertainty": uncertainty,
        "valid_fraction": n_valid / t.size,
    }
    names = ("p05", "p16", "median", "p84", "p95")
    for name, q in zip(names, quantiles["quantile"].values, strict=True):
        stats[name] = quantiles.sel(quantile=q, drop=True)
    out = xr.Dataset({k: v.drop_vars("quantile", errors="ignore") for k, v in stats.items()})
    for name in out.data_vars:
        out[name].attrs["units"] = "1" if name == "valid_fraction" else "nm"
    return out


def coating_thickness(
    profile: xr.DataArray,
    *,
    n_boot: int = 20,
    seed: int = 0,
    min_contrast: float = 5.0,
) -> xr.Dataset:
    """Thickness of a buried coating (e.g. CeO2 under the CEI) from its marker profile.

    The marker profile (raw counts, ``scan`` with a ``depth`` coordinate) is fitted with an erf
    box (:func:`tofsims.interfaces.fit_layer`, ``model="erf-box"``); thickness = b − a. The
    coating counts as present when the smoothed peak exceeds ``min_contrast`` × the median of
    the deepest 10 % of the profile (bulk level); otherwise the thickness is NaN.

    Returns
    -------
    xarray.Dataset
        ``thickness``, ``thickness_std``, ``position`` (nm), ``present`` (bool) and a ``method``
        attribute. Lazy on dask input.
    """
    fit = fit_layer(profile, model="erf-box", coord="depth", n_boot=n_boot, seed=seed)
    tail = max(profile.sizes["scan"] // 10, 3)

    def contrast(values: np.ndarray) -> np.ndarray:
        smooth = gaussian_smooth(values, 2.0)
        bulk = np.median(smooth[..., -tail:], axis=-1)
        return smooth.max(axis=-1) / np.maximum(bulk, 1.0)

    prepared = rechunk_data(profile, {"scan": -1})
    ratio = xr.apply_ufunc(
        contrast, prepared, input_core_dims=[["scan"]], dask="parallelized", output_dtypes=[float]
    )
    present = ratio >= min_contrast
    method = {
        **json.loads(fit.attrs["method"]),
        "presence": f"smoothed peak >= {min_contrast} x median of the deepest 10 %",
    }
    return xr.Dataset(
        {
            "thickness": fit["thickness"].where(present),
            "thickness_std": fit["thickness_std"].where(present),
            "position": fit["position"].where(present),
            "present": present,
            "contrast": ratio,
        },
        attrs={"method": json.dumps(method)},
    )
