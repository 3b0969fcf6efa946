"""Depth profiles from volumes: whole field and regions of interest (ROIs).

A reduced volume follows ``docs/conventions.md`` ("TOF-SIMS depth profile"):
``intensity(scan, peak)`` with ``fragment``, ``peak_label``, ``mass_center`` and ``kind``
(``"single"``) along ``peak``; ROI profiles add a leading ``roi`` dimension. ROIs are boolean
masks ``(y, x)``: from an array, a rectangle, or a threshold on a fragment image. Drift between
scans should be corrected first (:mod:`tofsims.drift`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np
import xarray as xr
from scipy.ndimage import gaussian_filter1d

from tofsims.errors import AnalysisError

__all__ = [
    "depth_profile",
    "gaussian_smooth",
    "rechunk_data",
    "roi_profiles",
    "roi_rectangle",
    "roi_threshold",
    "select_fragment",
    "smooth_along_scan",
]


def select_fragment(obj: xr.DataArray | xr.Dataset, fragment: str) -> xr.DataArray | xr.Dataset:
    """Select the channel of ``fragment`` (our notation) along ``fragment`` or ``peak``.

    For profiles with repeated labels the first matching column is taken.
    """
    dim = "peak" if "peak" in obj.dims else "fragment"
    if "fragment" not in obj.coords:
        raise AnalysisError("the data have no 'fragment' coordinate")
    names = [str(v) for v in np.atleast_1d(obj["fragment"].values)]
    matches = [i for i, name in enumerate(names) if name == fragment]
    if not matches:
        have = ", ".join(n for n in names if n) or "none"
        raise AnalysisError(f"fragment {fragment!r} is not in the data (have: {have})")
    return obj.isel({dim: matches[0]})


def rechunk_data(data: xr.DataArray, chunks: Mapping[str, int]) -> xr.DataArray:
    """Rechunk the values of a dask-backed array, leaving its coordinates as they are.

    ``DataArray.chunk`` would also turn in-memory coordinates (``sputter_time``, ``depth``)
    into dask arrays; kernels need them as numbers without computing anything.
    """
    if data.chunks is None:
        return data
    coords = {name: data.coords[name] for name in data.coords if name not in data.dims}
    return data.chunk(dict(chunks)).assign_coords(coords)


def gaussian_smooth(values: np.ndarray, sigma_scans: float) -> np.ndarray:
    """Gaussian smoothing along the last axis (σ in scans, edges mode ``nearest``)."""
    if sigma_scans <= 0:
        return np.asarray(values, dtype=float)
    return gaussian_filter1d(np.asarray(values, dtype=float), sigma_scans, axis=-1, mode="nearest")


def smooth_along_scan(data: xr.DataArray, sigma_scans: float) -> xr.DataArray:
    """Gaussian smoothing along ``scan`` (σ in scans); lazy, vectorised over all other dims.

    Parameters
    ----------
    data
        Any array with a ``scan`` dimension (counts, intensities).
    sigma_scans
        Standard deviation of the Gaussian kernel in scans; 0 returns the data as float.

    Returns
    -------
    xarray.DataArray
        Smoothed float64 data, attribute ``smoothing_sigma_scans`` added.
    """
    if sigma_scans < 0:
        raise AnalysisError(f"smoothing sigma must be >= 0 scans, got {sigma_scans}")
    data = rechunk_data(data, {"scan": -1})
    out = xr.apply_ufunc(
        gaussian_smooth,
        data,
        kwargs={"sigma_scans": float(sigma_scans)},
        input_core_dims=[["scan"]],
        output_core_dims=[["scan"]],
        dask="parallelized",
        output_dtypes=[float],
        keep_attrs=True,
    )
    return out.transpose(*data.dims).assign_attrs(smoothing_sigma_scans=float(sigma_scans))


def roi_rectangle(volume: xr.Dataset, y: slice, x: slice) -> xr.DataArray:
    """Boolean mask ``(y, x)`` of a rectangle given as label slices (inclusive, like ``.sel``)."""

    def inside(coord: xr.DataArray, bounds: slice) -> xr.DataArray:
        low = -np.inf if bounds.start is None else bounds.start
        high = np.inf if bounds.stop is None else bounds.stop
        return (coord >= low) & (coord <= high)

    mask = inside(volume["y"], y) & inside(volume["x"], x)
    if not bool(mask.any()):
        raise AnalysisError(f"rectangle y={y}, x={x} lies outside the field of view")
    return mask.rename("roi").assign_attrs(
        roi_rule=f"rectangle y={y.start}..{y.stop}, x={x.start}..{x.stop}"
    )


def roi_threshold(
    volume: xr.Dataset,
    fragment: str,
    threshold: float,
    *,
    relative: bool = True,
    scans: slice | None = None,
) -> xr.DataArray:
    """Mask of the pixels where a fragment image exceeds a threshold (lazy).

    Parameters
    ----------
    volume
        ``counts(fragment, scan, y, x)``.
    fragment
        Fragment whose image (counts summed over ``scans``) defines the ROI, e.g. ``"NiO2-"``
        for active particles.
    threshold
        Threshold; a fraction of the image maximum when ``relative`` (default), else counts.
    relative
        Interpret ``threshold`` relative to the image maximum.
    scans
        Scan index slice (``isel``) to sum; default all.

    Returns
    -------
    xarray.DataArray
        Boolean ``(y, x)`` mask, attrs record the rule.
    """
    image = select_fragment(volume["counts"], fragment)
    if scans is not None:
        image = image.isel(scan=scans)
    image = image.sum("scan")
    limit = threshold * image.max() if relative else threshold
    mask = (image > limit).drop_vars(["fragment", "mass_low", "mass_high"], errors="ignore")
    return mask.rename("roi").assign_attrs(
        roi_rule=f"{fragment} image > {threshold}{' x max' if relative else ' counts'}"
    )


def _per_fragment(volume: xr.Dataset, name: str, default: list[str]) -> list[str]:
    """Return a string coordinate along ``fragment`` (from the reader), or ``default``."""
    if name in volume.coords and volume[name].dims == ("fragment",):
        return [str(v) for v in volume[name].values]
    return default


def depth_profile(volume: xr.Dataset, mask: xr.DataArray | None = None) -> xr.Dataset:
    """Sum a volume over pixels (optionally inside ``mask``) into a depth profile.

    Parameters
    ----------
    volume
        ``counts(fragment, scan, y, x)``; other coordinates along ``scan`` (``sputter_time``,
        ``depth``) are carried over.
    mask
        Boolean ``(y, x)`` ROI; ``None`` = whole field.

    Returns
    -------
    xarray.Dataset
        ``intensity(scan, peak)`` (counts, float64) with ``fragment``, ``peak_label``,
        ``mass_center`` (u), ``kind`` along ``peak`` and ``pixels`` (number of pixels summed).
        Lazy on dask input.
    """
    counts = volume["counts"]
    if mask is not None:
        mask = mask.astype(bool)
        counts = counts.where(mask, 0)
        pixels = mask.sum()
    else:
        pixels = xr.DataArray(counts.sizes["y"] * counts.sizes["x"])
    summed = counts.sum(("y", "x"), dtype=float).transpose("scan", "fragment")
    fragments = [str(f) for f in volume["fragment"].values]
    if "mass_low" in volume.coords and "mass_high" in volume.coords:
        center = ((volume["mass_low"] + volume["mass_high"]) / 2).values
    else:
        center = np.full(len(fragments), np.nan)
    kinds = _per_fragment(volume, "kind", ["single"] * len(fragments))
    labels = _per_fragment(volume, "peak_label", fragments)
    intensity = summed.drop_vars(
        [name for name in summed.coords if "fragment" in summed[name].dims]
    ).rename(fragment="peak")
    profile = xr.Dataset(
        {"intensity": intensity.assign_attrs(units="counts"), "pixels": pixels},
        coords={
            "peak": np.arange(len(fragments), dtype=np.int64),
            "peak_label": ("peak", labels),
            "fragment": ("peak", fragments),
            "mass_center": ("peak", center, {"units": "u"}),
            "kind": ("peak", kinds),
        },
        attrs=dict(volume.attrs),
    )
    profile.attrs["roi"] = "whole field" if mask is None else mask.attrs.get("roi_rule", "mask")
    return profile


def roi_profiles(volume: xr.Dataset, masks: Mapping[str, xr.DataArray]) -> xr.Dataset:
    """Depth profiles of several ROIs stacked along a new ``roi`` dimension (names as labels)."""
    if not masks:
        raise AnalysisError("no ROI given")
    profiles = [depth_profile(volume, mask) for mask in masks.values()]
    out = xr.concat(
        profiles,
        dim=xr.DataArray(list(masks), dims="roi", name="roi"),
        data_vars="all",
        coords="minimal",
        compat="override",
        join="override",
    )
    out.attrs["roi"] = json.dumps(list(masks))
    return out
