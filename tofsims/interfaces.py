"""Interface positions and layer widths from depth profiles, each with a bootstrap uncertainty.

Criteria (``docs/methods.md``, "Interfaces"; reference methods.md §B6):

* layer marker (C2HO−, PO3−, LiF2−, CeO2− …): position of the maximum, position where the signal
  falls to 50 % of its maximum after the peak (linear interpolation between points), and the
  16–84 % width of that falling edge;
* two-marker crossing: where the max-normalised layer marker falls below the max-normalised bulk
  marker (NiO2−);
* erf / EMG fits of the falling edge (top layer) or an erf box (buried thin layer, coating);
* time to maximum = position of the maximum on the ``sputter_time`` coordinate.

The crossing kernels are vectorised over every dimension except ``scan`` and run blockwise on
dask arrays (``xr.apply_ufunc(..., dask="parallelized")``), so per-pixel maps need no Python loop
over pixels. Uncertainties come from a parametric Poisson bootstrap: the raw counts are resampled
``n_boot`` times as Poisson variates of the observed counts, smoothed and re-evaluated; the
standard deviation of the estimates is reported. The random stream of each block is seeded from
``seed`` and a CRC32 of the block's data, so results are deterministic.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

import numpy as np
import xarray as xr
from scipy.optimize import OptimizeWarning, curve_fit
from scipy.special import erf, erfc

from tofsims.bootstrap import block_rng, poisson_resamples, spread
from tofsims.errors import AnalysisError
from tofsims.profiles import gaussian_smooth, rechunk_data
from tofsims.timing import fitted_peak

__all__ = [
    "FIT_MODELS",
    "fit_layer",
    "layer_marker",
    "two_marker_crossing",
]

FIT_MODELS = ("erf", "emg", "erf-box")

#: Output quantities of :func:`layer_marker` (fractional scan indices inside the kernel).
_MARKER_QUANTITIES = ("position_max", "position_50", "width_16_84")


# --------------------------------------------------------------------------- numpy kernels
def _take(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    return np.take_along_axis(values, index[..., None], axis=-1)[..., 0]


def _falling_crossing(p: np.ndarray, level: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Fractional index where ``p`` first falls to ``level`` after index ``start`` (NaN: never)."""
    n = p.shape[-1]
    after = np.arange(n) > start[..., None]
    below = after & (p <= level[..., None])
    found = below.any(axis=-1)
    i = np.where(found, np.argmax(below, axis=-1), 1)
    p0, p1 = _take(p, i - 1), _take(p, i)
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(p0 > p1, (p0 - level) / (p0 - p1), 0.0)
    return np.where(found, i - 1 + np.clip(frac, 0, 1), np.nan)


def _marker_indices(p: np.ndarray, min_counts: float, top: np.ndarray | None = None) -> np.ndarray:
    """Fractional indices of the maximum and of the 50 %, 84 %, 16 % falls: ``(..., 4)``.

    The fall levels are fractions of ``top`` (default: the maximum of ``p``).
    """
    filled = np.where(np.isnan(p), -np.inf, p)
    imax = np.argmax(filled, axis=-1)
    pmax = _take(p, imax)
    reference = pmax if top is None else np.where(np.isfinite(top), top, pmax)
    out = np.stack(
        [imax.astype(float)]
        + [_falling_crossing(p, level * reference, imax) for level in (0.5, 0.84, 0.16)],
        axis=-1,
    )
    valid = np.isfinite(pmax) & (pmax >= min_counts) & ~np.isnan(p).any(axis=-1)
    out[~valid] = np.nan
    return out


def _to_coord(index: np.ndarray, coord: np.ndarray) -> np.ndarray:
    """Map fractional scan indices to the coordinate (piecewise linear), NaN stays NaN."""
    grid = np.arange(coord.size)
    safe = np.where(np.isnan(index), 0, index)
    return np.where(np.isnan(index), np.nan, np.interp(safe, grid, coord))


def _fitted_tops(raw: np.ndarray, smoothed: np.ndarray) -> np.ndarray:
    """Height of a Poisson log-quadratic fit at each profile's maximum (NaN: no vertex)."""
    flat_raw = raw.reshape(-1, raw.shape[-1])
    flat_smooth = smoothed.reshape(-1, raw.shape[-1])
    tops = [fitted_peak(r, m)[1] for r, m in zip(flat_raw, flat_smooth, strict=True)]
    return np.asarray(tops).reshape(raw.shape[:-1])


def _layer_marker_kernel(
    counts: np.ndarray,
    coord: np.ndarray,
    sigma: float,
    min_counts: float,
    n_boot: int,
    seed: int,
    level: str = "max",
) -> np.ndarray:
    """Layer-marker estimates and bootstrap σ: ``(..., 7)`` = 3 values, max counts, 3 σ."""
    raw = poisson_resamples(counts, n_boot, block_rng(seed, counts))
    samples = gaussian_smooth(raw, sigma)
    top = _fitted_tops(raw, samples) if level == "fitted" else None
    at = _to_coord(_marker_indices(samples, min_counts, top), coord)
    estimates = np.stack([at[..., 0], at[..., 1], at[..., 3] - at[..., 2]], axis=-1)
    sigma_boot = spread(estimates[1:]) if n_boot > 1 else np.full_like(estimates[0], np.nan)
    observed = np.where(np.isnan(samples[0]), -np.inf, samples[0]).max(axis=-1)
    observed = np.where(np.isfinite(observed), observed, np.nan)
    return np.concatenate([estimates[0], observed[..., None], sigma_boot], axis=-1)


def _crossing_kernel(
    marker: np.ndarray, bulk: np.ndarray, coord: np.ndarray, sigma: float, n_boot: int, seed: int
) -> np.ndarray:
    """Two-marker crossing position and σ: ``(..., 2)``."""
    rng = block_rng(seed, marker)
    m = gaussian_smooth(poisson_resamples(marker, n_boot, rng), sigma)
    b = gaussian_smooth(poisson_resamples(bulk, n_boot, rng), sigma)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN profiles give NaN
        m = m / np.nanmax(m, axis=-1, keepdims=True)
        b = b / np.nanmax(b, axis=-1, keepdims=True)
    imax = np.argmax(np.where(np.isnan(m), -np.inf, m), axis=-1)
    diff = m - b
    idx = _falling_crossing(diff, np.zeros(diff.shape[:-1]), imax)
    pos = _to_coord(idx, coord)
    sigma_boot = spread(pos[1:]) if n_boot > 1 else np.full_like(pos[0], np.nan)
    return np.stack([pos[0], sigma_boot], axis=-1)


# --------------------------------------------------------------------------- xarray wrappers
def _coord_values(data: xr.DataArray, coord: str) -> tuple[np.ndarray, str]:
    if coord not in data.coords:
        raise AnalysisError(
            f"the data have no {coord!r} coordinate (add depth with tofsims.depth first)"
        )
    values = np.asarray(data[coord].values, dtype=float)
    if values.ndim != 1 or data[coord].dims != ("scan",):
        raise AnalysisError(f"{coord!r} must be a 1-D coordinate along 'scan'")
    if not np.all(np.isfinite(values)) or np.any(np.diff(values) <= 0):
        raise AnalysisError(f"{coord!r} must be finite and increasing along 'scan'")
    return values, str(data[coord].attrs.get("units", ""))


def _prepare(data: xr.DataArray) -> xr.DataArray:
    if "scan" not in data.dims:
        raise AnalysisError("the data have no 'scan' dimension")
    if data.sizes["scan"] < 3:
        raise AnalysisError(f"need at least 3 scans, got {data.sizes['scan']}")
    return rechunk_data(data, {"scan": -1})


def layer_marker(
    counts: xr.DataArray,
    *,
    coord: str = "depth",
    smooth_scans: float = 0.0,
    min_counts: float = 0.0,
    n_boot: int = 50,
    seed: int = 0,
    level: str = "max",
) -> xr.Dataset:
    """Maximum, 50 % point after the maximum and 16–84 % width of a layer marker.

    Parameters
    ----------
    counts
        Raw counts of one marker with a ``scan`` dimension — a profile ``(scan,)``, ROI profiles
        ``(roi, scan)`` or a (binned) volume ``(scan, y, x)``. Raw counts are needed for the
        Poisson bootstrap.
    coord
        Coordinate along ``scan`` to report positions in: ``"depth"`` (nm) or
        ``"sputter_time"`` (s) — the latter gives the time to maximum.
    smooth_scans
        Gaussian σ (scans) applied along ``scan`` before evaluating (0 = none).
    min_counts
        Profiles whose (smoothed) maximum is below this many counts have no layer (NaN).
    n_boot
        Poisson bootstrap resamples for the uncertainties (0 = none, σ = NaN).
    seed
        Seed of the bootstrap.
    level
        Reference of the 50/84/16 % levels: ``"max"`` (the smoothed maximum, tarahoffman's
        rule; biased upwards by noise at low counts) or ``"fitted"`` (height of a Poisson
        log-quadratic fit to the raw counts around the maximum,
        :func:`tofsims.timing.fitted_peak`; the smoothed maximum where the fit has no vertex).
        ``"fitted"`` loops over profiles: for whole-field and ROI profiles, not maps.

    Returns
    -------
    xarray.Dataset
        ``position_max``, ``position_50``, ``width_16_84`` (units of ``coord``), ``max_counts``,
        and ``*_std`` (bootstrap σ). NaN where there is no layer or no 50 % crossing.
        Attribute ``method`` (JSON) records the criterion and parameters. Lazy on dask input.
    """
    if level not in ("max", "fitted"):
        raise AnalysisError(f"unknown level {level!r} (use 'max' or 'fitted')")
    counts = _prepare(counts)
    values, units = _coord_values(counts, coord)
    out = xr.apply_ufunc(
        _layer_marker_kernel,
        counts,
        kwargs={
            "coord": values,
            "sigma": float(smooth_scans),
            "min_counts": float(min_counts),
            "n_boot": int(n_boot),
            "seed": int(seed),
            "level": level,
        },
        input_core_dims=[["scan"]],
        output_core_dims=[["quantity"]],
        dask="parallelized",
        output_dtypes=[float],
        dask_gufunc_kwargs={"output_sizes": {"quantity": 7}},
    )
    method = {
        "criterion": "layer marker: max, 50 % of max after the peak (linear "
        "interpolation), 16-84 % width of the falling edge",
        "level": "smoothed maximum" if level == "max" else "log-quadratic fit at the maximum",
        "coord": coord,
        "smooth_sigma_scans": smooth_scans,
        "min_counts": min_counts,
        "uncertainty": f"Poisson bootstrap, {n_boot} resamples",
    }
    names = [*_MARKER_QUANTITIES, "max_counts", *(f"{q}_std" for q in _MARKER_QUANTITIES)]
    ds = xr.Dataset(
        {
            name: out.isel(quantity=i, drop=True).assign_attrs(units=units)
            for i, name in enumerate(names)
        },
        attrs={"method": json.dumps(method), "coord": coord},
    )
    ds["max_counts"].attrs["units"] = "counts"
    return ds


def two_marker_crossing(
    marker: xr.DataArray,
    bulk: xr.DataArray,
    *,
    coord: str = "depth",
    smooth_scans: float = 0.0,
    n_boot: int = 50,
    seed: int = 0,
) -> xr.Dataset:
    """Position where the max-normalised layer marker falls below the max-normalised bulk marker.

    Parameters
    ----------
    marker, bulk
        Raw counts of the layer marker (e.g. C2HO−) and the bulk marker (e.g. NiO2−), same dims,
        with ``scan``.
    coord, smooth_scans, n_boot, seed
        As in :func:`layer_marker`.

    Returns
    -------
    xarray.Dataset
        ``position`` and ``position_std`` (units of ``coord``); attribute ``method``.
    """
    marker, bulk = _prepare(marker), _prepare(bulk)
    values, units = _coord_values(marker, coord)
    for name in ("fragment", "peak", "peak_label", "mass_center", "kind", "mass_low", "mass_high"):
        marker = marker.drop_vars(name, errors="ignore")
        bulk = bulk.drop_vars(name, errors="ignore")
    out = xr.apply_ufunc(
        _crossing_kernel,
        marker,
        bulk,
        kwargs={
            "coord": values,
            "sigma": float(smooth_scans),
            "n_boot": int(n_boot),
            "seed": int(seed),
        },
        input_core_dims=[["scan"], ["scan"]],
        output_core_dims=[["quantity"]],
        dask="parallelized",
        output_dtypes=[float],
        dask_gufunc_kwargs={"output_sizes": {"quantity": 2}},
    )
    method = {
        "criterion": "two-marker crossing of max-normalised profiles after the marker maximum",
        "coord": coord,
        "smooth_sigma_scans": smooth_scans,
        "uncertainty": f"Poisson bootstrap, {n_boot} resamples",
    }
    return xr.Dataset(
        {
            "position": out.isel(quantity=0, drop=True).assign_attrs(units=units),
            "position_std": out.isel(quantity=1, drop=True).assign_attrs(units=units),
        },
        attrs={"method": json.dumps(method), "coord": coord},
    )


# --------------------------------------------------------------------------- fits
def _erf_edge(z: np.ndarray, amplitude: float, z0: float, sigma: float, base: float) -> Any:
    return amplitude / 2 * erfc((z - z0) / (np.sqrt(2) * abs(sigma))) + base


def _emg_edge(
    z: np.ndarray, amplitude: float, z0: float, sigma: float, tail: float, base: float
) -> Any:
    """Falling edge 1 − F_EMG(z) with Gaussian σ and exponential tail length ``tail``."""
    sigma, tail = abs(sigma), abs(tail) + 1e-12
    u = (z - z0) / sigma
    lam = 1 / tail
    cdf_gauss = 0.5 * erfc(-u / np.sqrt(2))
    with np.errstate(over="ignore", invalid="ignore"):
        expo = np.exp(np.clip(-lam * (z - z0) + (lam * sigma) ** 2 / 2, -700, 700))
        shifted = 0.5 * erfc(-(u - lam * sigma) / np.sqrt(2))
        cdf = cdf_gauss - np.nan_to_num(expo * shifted)
    return amplitude * (1 - cdf) + base


def _erf_box(
    z: np.ndarray, amplitude: float, start: float, end: float, sigma: float, base: float
) -> Any:
    s = np.sqrt(2) * abs(sigma)
    return amplitude / 2 * (erf((z - start) / s) - erf((z - end) / s)) + base


def _fit_one(counts: np.ndarray, z: np.ndarray, model: str) -> np.ndarray:
    """Fit one profile; return (position, width_16_84, thickness), NaN on failure."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OptimizeWarning)
        return _fit_one_unguarded(counts, z, model)


def _fit_one_unguarded(counts: np.ndarray, z: np.ndarray, model: str) -> np.ndarray:
    nan = np.array([np.nan, np.nan, np.nan])
    if not np.all(np.isfinite(counts)) or counts.max() <= 0:
        return nan
    imax = int(np.argmax(gaussian_smooth(counts, 1.0)))
    weights = np.sqrt(np.clip(counts, 1, None))
    span = z[-1] - z[0]
    try:
        if model == "erf-box":
            half = np.flatnonzero(gaussian_smooth(counts, 1.0) >= counts.max() / 2)
            guess = [counts.max(), z[half[0]], z[half[-1]], span / 50, np.median(counts[-5:])]
            p, _ = curve_fit(_erf_box, z, counts, p0=guess, sigma=weights, maxfev=5000)
            return np.array([(p[1] + p[2]) / 2, 2 * abs(p[3]), p[2] - p[1]])
        zz, cc, ww = z[imax:], counts[imax:], weights[imax:]
        z50 = zz[np.argmax(cc <= cc[0] / 2)] if np.any(cc <= cc[0] / 2) else zz[len(zz) // 2]
        if model == "erf":
            guess = [cc[0], z50, span / 50, np.median(cc[-5:])]
            p, _ = curve_fit(_erf_edge, zz, cc, p0=guess, sigma=ww, maxfev=5000)
            return np.array([p[1], 2 * abs(p[2]), p[1]])
        guess = [cc[0], z50, span / 50, span / 50, np.median(cc[-5:])]
        p, _ = curve_fit(_emg_edge, zz, cc, p0=guess, sigma=ww, maxfev=5000)
        fine = np.linspace(zz[0], zz[-1], 4000)
        edge = (_emg_edge(fine, p[0], p[1], p[2], p[3], 0) / p[0]).clip(0, 1)
        z50_fit, z84, z16 = (np.interp(-level, -edge, fine) for level in (0.5, 0.84, 0.16))
        return np.array([z50_fit, z16 - z84, z50_fit])
    except (RuntimeError, ValueError, TypeError, IndexError):  # IndexError: no point >= max/2
        return nan


def _fit_kernel(
    counts: np.ndarray, coord: np.ndarray, model: str, n_boot: int, seed: int
) -> np.ndarray:
    samples = poisson_resamples(counts, n_boot, block_rng(seed, counts))
    flat = samples.reshape(-1, samples.shape[-1])
    fitted = np.array([_fit_one(row, coord, model) for row in flat])
    fitted = fitted.reshape(*samples.shape[:-1], 3)
    sigma_boot = spread(fitted[1:]) if n_boot > 1 else np.full_like(fitted[0], np.nan)
    return np.concatenate([fitted[0], sigma_boot], axis=-1)


def fit_layer(
    counts: xr.DataArray,
    *,
    model: str = "erf",
    coord: str = "depth",
    n_boot: int = 20,
    seed: int = 0,
) -> xr.Dataset:
    """Fit the profile of a thin layer with an erf or EMG edge, or an erf box.

    Models (z = ``coord``):

    ``erf``
        falling edge after the maximum, ``A/2·erfc((z − z0)/(√2σ)) + c``; position = z0, 16–84 %
        width = 2σ. For the top layer (CEI) z0 is its thickness.
    ``emg``
        falling edge ``A·(1 − F_EMG(z; z0, σ, τ)) + c`` (Gaussian convolved with an exponential
        tail τ, asymmetric sputter mixing); position = 50 % point of the fitted edge.
    ``erf-box``
        buried layer ``A/2·[erf((z − a)/(√2σ)) − erf((z − b)/(√2σ))] + c`` (e.g. a CeO2
        coating); thickness = b − a, position = (a + b)/2.

    The fits use :func:`scipy.optimize.curve_fit` with Poisson weights, one profile at a time —
    meant for whole-field and ROI profiles, not per-pixel maps.

    Parameters
    ----------
    counts
        Raw counts with a ``scan`` dimension.
    model
        ``"erf"``, ``"emg"`` or ``"erf-box"``.
    coord, n_boot, seed
        As in :func:`layer_marker`.

    Returns
    -------
    xarray.Dataset
        ``position``, ``width_16_84``, ``thickness`` and ``*_std`` (units of ``coord``).
    """
    if model not in FIT_MODELS:
        raise AnalysisError(f"unknown fit model {model!r} (use one of {', '.join(FIT_MODELS)})")
    counts = _prepare(counts)
    values, units = _coord_values(counts, coord)
    out = xr.apply_ufunc(
        _fit_kernel,
        counts,
        kwargs={"coord": values, "model": model, "n_boot": int(n_boot), "seed": int(seed)},
        input_core_dims=[["scan"]],
        output_core_dims=[["quantity"]],
        dask="parallelized",
        output_dtypes=[float],
        dask_gufunc_kwargs={"output_sizes": {"quantity": 6}},
    )
    names = ("position", "width_16_84", "thickness")
    method = {
        "criterion": f"{model} fit (scipy curve_fit, Poisson weights)",
        "coord": coord,
        "uncertainty": f"Poisson bootstrap, {n_boot} resamples",
    }
    data = {
        name: out.isel(quantity=i, drop=True).assign_attrs(units=units)
        for i, name in enumerate(names)
    }
    data |= {
        f"{name}_std": out.isel(quantity=i + 3, drop=True).assign_attrs(units=units)
        for i, name in enumerate(names)
    }
    return xr.Dataset(data, attrs={"method": json.dumps(method), "coord": coord})
