"""Time (or depth) to the maximum of a layer marker and to the plateau of a bulk marker.

Both readings of "time to maximum" in the study are offered, each with a Poisson-bootstrap σ:

* :func:`time_to_maximum` — where a layer marker (C2HO−, LiF2−, PO3− …) peaks: the argmax of the
  Gaussian-smoothed profile refined by a parabola through its three best points (``position``)
  and the vertex of a Poisson log-quadratic fit ``μ = exp(a + b·t + c·t²)`` to the raw counts
  where the smoothed profile exceeds 80 % of its maximum (``fitted_position``; its height
  ``fitted_level`` is the noise-free maximum used by :func:`tofsims.interfaces.layer_marker`
  with ``level="fitted"``);
* :func:`time_to_plateau` — when a bulk marker (NiO2−) reaches a fraction (default 90 %) of its
  plateau and its 50 % point, the plateau being the maximum-likelihood constant (mean of the raw
  counts) over the deepest ``tail_fraction`` of the profile.

Vectorised over every dimension but ``scan`` (``xr.apply_ufunc``, lazy on dask input; the
log-quadratic fit loops over profiles, so use it on whole-field or ROI profiles, not maps).
"""

from __future__ import annotations

import json

import numpy as np
import xarray as xr

from tofsims.bootstrap import block_rng, poisson_resamples, spread
from tofsims.errors import AnalysisError
from tofsims.profiles import gaussian_smooth, rechunk_data

__all__ = ["fitted_peak", "time_to_maximum", "time_to_plateau"]


def _parabolic_argmax(smoothed: np.ndarray) -> np.ndarray:
    """Fractional index of the maximum along the last axis (NaN for an all-NaN profile)."""
    filled = np.where(np.isnan(smoothed), -np.inf, smoothed)
    best = np.argmax(filled, axis=-1)
    n = smoothed.shape[-1]
    inner = np.clip(best, 1, n - 2)
    take = np.take_along_axis
    left = take(filled, (inner - 1)[..., None], -1)[..., 0]
    mid = take(filled, inner[..., None], -1)[..., 0]
    right = take(filled, (inner + 1)[..., None], -1)[..., 0]
    curvature = left - 2 * mid + right
    with np.errstate(invalid="ignore", divide="ignore"):
        shift = np.where(curvature < 0, 0.5 * (left - right) / curvature, 0.0)
    at_edge = (best == 0) | (best == n - 1)
    index = np.where(at_edge, best, inner + np.clip(np.nan_to_num(shift), -0.5, 0.5))
    return np.where(np.isfinite(filled.max(axis=-1)), index, np.nan)


#: The log-quadratic fit uses the region where the smoothed profile exceeds this × its maximum
#: (high enough that an asymmetric peak's vertex stays at its top).
_FIT_LEVEL = 0.8


def fitted_peak(counts: np.ndarray, smoothed: np.ndarray) -> tuple[float, float]:
    """Vertex (fractional index) and height of a Poisson log-quadratic fit around the maximum.

    The fit uses the raw ``counts`` over the contiguous region where ``smoothed`` is at least
    80 % of its maximum (≥ 5 points). ``(nan, nan)`` when the fitted curvature is not negative
    (a plateau or a monotone profile has no vertex).
    """
    if not np.all(np.isfinite(counts)) or smoothed.max() <= 0:
        return np.nan, np.nan
    top = int(np.argmax(smoothed))
    above = smoothed >= _FIT_LEVEL * smoothed[top]
    lo, hi = top, top
    while lo > 0 and above[lo - 1]:
        lo -= 1
    while hi < counts.size - 1 and above[hi + 1]:
        hi += 1
    while hi - lo < 4 and (lo > 0 or hi < counts.size - 1):
        lo, hi = max(lo - 1, 0), min(hi + 1, counts.size - 1)
    x = np.arange(lo, hi + 1, dtype=float)
    scale = max((hi - lo) / 2, 1.0)
    u = (x - top) / scale
    design = np.stack([np.ones_like(u), u, u**2], axis=1)
    y = counts[lo : hi + 1]
    beta = np.linalg.lstsq(design, np.log(np.maximum(smoothed[lo : hi + 1], 1e-9)), rcond=None)[0]
    for _ in range(25):  # Newton (IRLS) on the Poisson log-likelihood, log link
        mu = np.exp(np.clip(design @ beta, -700, 700))
        gradient = design.T @ (y - mu)
        hessian = design.T @ (design * mu[:, None])
        try:
            step = np.linalg.solve(hessian + 1e-12 * np.eye(3), gradient)
        except np.linalg.LinAlgError:
            return np.nan, np.nan
        beta = beta + step
        if np.max(np.abs(step)) < 1e-10:
            break
    if not beta[2] < 0:
        return np.nan, np.nan
    vertex = np.clip(-beta[1] / (2 * beta[2]), u[0], u[-1])
    height = float(np.exp(min(beta[0] + beta[1] * vertex + beta[2] * vertex**2, 700.0)))
    return float(top + vertex * scale), height


def _maximum_kernel(
    counts: np.ndarray, coord: np.ndarray, sigma: float, n_boot: int, seed: int
) -> np.ndarray:
    samples = poisson_resamples(counts, n_boot, block_rng(seed, counts))
    smoothed = gaussian_smooth(samples, max(sigma, 0.0))
    grid = np.arange(coord.size)
    position = np.interp(_parabolic_argmax(smoothed), grid, coord)
    flat_counts = samples.reshape(-1, samples.shape[-1])
    flat_smooth = smoothed.reshape(-1, samples.shape[-1])
    fitted = np.array([fitted_peak(c, s) for c, s in zip(flat_counts, flat_smooth, strict=True)])
    fitted = fitted.reshape(*samples.shape[:-1], 2)
    fitted_position = np.where(
        np.isnan(fitted[..., 0]), np.nan, np.interp(np.nan_to_num(fitted[..., 0]), grid, coord)
    )

    def sigma_of(values: np.ndarray) -> np.ndarray:
        return spread(values[1:]) if n_boot > 1 else np.full(values.shape[1:], np.nan)

    return np.stack(
        [
            position[0],
            sigma_of(position),
            fitted_position[0],
            sigma_of(fitted_position),
            fitted[0, ..., 1],
        ],
        axis=-1,
    )


def _coord(data: xr.DataArray, coord: str) -> tuple[np.ndarray, str]:
    if "scan" not in data.dims or data.sizes["scan"] < 5:
        raise AnalysisError("need a 'scan' dimension with at least 5 scans")
    if coord not in data.coords or data[coord].dims != ("scan",):
        raise AnalysisError(f"the data have no 1-D {coord!r} coordinate along 'scan'")
    values = np.asarray(data[coord].values, dtype=float)
    if not np.all(np.isfinite(values)) or np.any(np.diff(values) <= 0):
        raise AnalysisError(f"{coord!r} must be finite and increasing along 'scan'")
    return values, str(data[coord].attrs.get("units", ""))


def _apply(kernel, counts: xr.DataArray, n_out: int, **kwargs) -> xr.DataArray:
    return xr.apply_ufunc(
        kernel,
        rechunk_data(counts, {"scan": -1}),
        kwargs=kwargs,
        input_core_dims=[["scan"]],
        output_core_dims=[["quantity"]],
        dask="parallelized",
        output_dtypes=[float],
        dask_gufunc_kwargs={"output_sizes": {"quantity": n_out}},
    )


def _drop_channel_coords(data: xr.DataArray) -> xr.DataArray:
    return data.drop_vars([c for c in ("mass_low", "mass_high", "mass_center") if c in data.coords])


def time_to_maximum(
    counts: xr.DataArray,
    *,
    coord: str = "sputter_time",
    smooth_scans: float = 2.0,
    n_boot: int = 50,
    seed: int = 0,
) -> xr.Dataset:
    """Time (or depth) at which a layer marker peaks, smoothed and fitted, with bootstrap σ.

    Parameters
    ----------
    counts
        Raw counts with a ``scan`` dimension (whole-field or ROI profiles).
    coord
        ``"sputter_time"`` (s) or ``"depth"`` (nm).
    smooth_scans
        Gaussian σ (scans) of the smoothing before the argmax and the fit window.
    n_boot, seed
        Poisson bootstrap.

    Returns
    -------
    xarray.Dataset
        ``position``/``position_std`` (smoothed maximum), ``fitted_position``/
        ``fitted_position_std`` (log-quadratic vertex; NaN for a plateau), ``fitted_level``
        (counts at the vertex). Attribute ``method``. Lazy on dask input.
    """
    values, units = _coord(counts, coord)
    out = _apply(
        _maximum_kernel,
        counts,
        5,
        coord=values,
        sigma=float(smooth_scans),
        n_boot=n_boot,
        seed=seed,
    )
    names = ("position", "position_std", "fitted_position", "fitted_position_std", "fitted_level")
    method = {
        "criterion": "argmax of the Gaussian-smoothed profile (parabolic refinement); vertex "
        "of a Poisson log-quadratic fit above 80 % of it",
        "coord": coord,
        "smooth_sigma_scans": smooth_scans,
        "uncertainty": f"Poisson bootstrap, {n_boot} resamples",
    }
    return _as_dataset(out, names, units, method, counts_name="fitted_level")


def _as_dataset(
    out: xr.DataArray, names: tuple[str, ...], units: str, method: dict, counts_name: str
) -> xr.Dataset:
    """Split the ``quantity`` output into named variables (``counts_name`` in counts)."""
    ds = xr.Dataset(
        {
            name: _drop_channel_coords(out.isel(quantity=i, drop=True)).assign_attrs(units=units)
            for i, name in enumerate(names)
        },
        attrs={"method": json.dumps(method)},
    )
    ds[counts_name].attrs["units"] = "counts"
    return ds


def _rising_crossing(profile: np.ndarray, level: np.ndarray) -> np.ndarray:
    """Fractional index where ``profile`` first reaches ``level`` (NaN: never)."""
    reached = profile >= level[..., None]
    found = reached.any(axis=-1)
    i = np.where(found, np.argmax(reached, axis=-1), 0)
    take = np.take_along_axis
    p1 = take(profile, i[..., None], -1)[..., 0]
    p0 = take(profile, np.maximum(i - 1, 0)[..., None], -1)[..., 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where((i > 0) & (p1 > p0), (level - p0) / (p1 - p0), 1.0)
    return np.where(found, np.maximum(i - 1, 0) + np.clip(frac, 0, 1) * (i > 0), np.nan)


def _plateau_kernel(
    counts: np.ndarray,
    coord: np.ndarray,
    sigma: float,
    fraction: float,
    tail: float,
    n_boot: int,
    seed: int,
) -> np.ndarray:
    samples = poisson_resamples(counts, n_boot, block_rng(seed, counts))
    smoothed = gaussian_smooth(samples, max(sigma, 0.0))
    n_tail = max(round(tail * samples.shape[-1]), 3)
    plateau = samples[..., -n_tail:].mean(axis=-1)
    grid = np.arange(coord.size)
    out = []
    for level in (fraction, 0.5):
        index = _rising_crossing(smoothed, level * plateau)
        position = np.where(np.isnan(index), np.nan, np.interp(np.nan_to_num(index), grid, coord))
        sigma_boot = spread(position[1:]) if n_boot > 1 else np.full(position.shape[1:], np.nan)
        out += [position[0], sigma_boot]
    return np.stack([*out, plateau[0]], axis=-1)


def time_to_plateau(
    counts: xr.DataArray,
    *,
    coord: str = "sputter_time",
    fraction: float = 0.9,
    tail_fraction: float = 0.2,
    smooth_scans: float = 2.0,
    n_boot: int = 50,
    seed: int = 0,
) -> xr.Dataset:
    """Time (or depth) at which a bulk marker reaches ``fraction`` of its plateau, and 50 %.

    Parameters
    ----------
    counts
        Raw counts of the bulk marker (e.g. NiO2−) with a ``scan`` dimension.
    coord
        ``"sputter_time"`` (s) or ``"depth"`` (nm).
    fraction
        Level (of the plateau) that counts as "plateau reached" (0–1, default 0.9).
    tail_fraction
        Deepest share of the profile whose mean raw count is the plateau.
    smooth_scans, n_boot, seed
        Smoothing (σ in scans) of the profile searched, and the Poisson bootstrap.

    Returns
    -------
    xarray.Dataset
        ``position``/``position_std`` (``fraction`` reached), ``position_50``/
        ``position_50_std`` (half the plateau: the interface), ``plateau`` (counts per scan).
        NaN where the level is never reached. Lazy on dask input.
    """
    if not 0 < fraction < 1 or not 0 < tail_fraction < 1:
        raise AnalysisError("fraction and tail_fraction must lie between 0 and 1")
    values, units = _coord(counts, coord)
    out = _apply(
        _plateau_kernel,
        counts,
        5,
        coord=values,
        sigma=float(smooth_scans),
        fraction=float(fraction),
        tail=float(tail_fraction),
        n_boot=n_boot,
        seed=seed,
    )
    names = ("position", "position_std", "position_50", "position_50_std", "plateau")
    method = {
        "criterion": f"first rise of the smoothed profile to {fraction:g} (and 0.5) of the "
        f"plateau = mean raw count of the deepest {tail_fraction:g}",
        "coord": coord,
        "smooth_sigma_scans": smooth_scans,
        "uncertainty": f"Poisson bootstrap, {n_boot} resamples",
    }
    return _as_dataset(out, names, units, method, counts_name="plateau")
