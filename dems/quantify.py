"""From background-corrected MS channels to gas fluxes matched to the potential.

Steps (methods.md §A2, §A4.5, §A6), each a pure function that stays lazy:

1. :func:`to_uniform_grid` — interpolate each channel's corrected signal from its
   own time stamps onto one uniform MS time grid (only here: the deconvolution
   needs all masses at one instant).
2. :func:`deconvolve` — molar flux of every gas per time point from all its m/z by
   non-negative least squares on the sensitivity matrix, ``S_M = Σ_i F_{M,i} ṅ_i``.
3. :func:`electrode_time` — subtract the transit delay: ``t_electrode = t_MS − Δ``.
4. :func:`interpolate_ec` — potential, current, cycle and half-cycle of the
   (aligned) EC data at the electrode times of the flux.
5. :func:`cumulative_amount` — ``n_i(t) = ∫ ṅ_i dt`` (trapezoidal rule).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = [
    "cumulative_amount",
    "deconvolve",
    "electrode_time",
    "flux_weights",
    "grid_bounds",
    "interpolate_ec",
    "to_uniform_grid",
]


def grid_bounds(ms: xr.Dataset) -> tuple[float, float, float]:
    """Start, end and step (s) of a uniform grid covered by every channel.

    Reads the (small, in-memory) time coordinate; the step is the median
    sampling interval of the channels (one MS cycle).
    """
    time = np.asarray(ms["time"].values, dtype=float)
    start = float(np.nanmax(np.nanmin(time, axis=-1)))
    end = float(np.nanmin(np.nanmax(time, axis=-1)))
    step = float(np.nanmedian(np.diff(time, axis=-1)))
    return start, end, step


def _interp_rows(time: np.ndarray, values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    out = np.empty((*values.shape[:-1], grid.size))
    for row in np.ndindex(values.shape[:-1]):
        ok = np.isfinite(time[row]) & np.isfinite(values[row])
        if ok.sum() < 2:
            out[row] = np.nan
            continue
        out[row] = np.interp(grid, time[row][ok], values[row][ok], left=np.nan, right=np.nan)
    return out


def to_uniform_grid(
    values: xr.DataArray, time: xr.DataArray, start_s: float, end_s: float, step_s: float
) -> xr.DataArray:
    """Linear interpolation of ``values(channel, sample)`` onto a uniform time grid.

    Parameters
    ----------
    values, time
        Per-channel values and their own time stamps (s).
    start_s, end_s, step_s
        Grid definition (s), e.g. from :func:`grid_bounds`.

    Returns
    -------
    xarray.DataArray
        ``(channel, time)``; NaN outside a channel's coverage.
    """
    grid = np.arange(start_s, end_s + 0.5 * step_s, step_s)
    if values.chunks is not None:
        values = values.chunk({"sample": -1})
        time = time.chunk({"sample": -1})
    grid_da = xr.DataArray(grid, dims="time")
    out = xr.apply_ufunc(
        _interp_rows,
        time,
        values,
        grid_da,
        input_core_dims=[["sample"], ["sample"], ["time"]],
        output_core_dims=[["time"]],
        dask="parallelized",
        output_dtypes=[float],
    )
    return out.assign_coords(time=("time", grid, {"units": "s"})).assign_attrs(values.attrs)


def _flux_bounds(
    matrix: np.ndarray, sigma: np.ndarray, k: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted matrix, per-gas flux noise and lower bounds for one noise vector."""
    finite = np.isfinite(sigma) & (sigma > 0)
    fallback = np.median(sigma[finite]) if finite.any() else 1.0
    sigma = np.where(finite, sigma, fallback)
    weighted = matrix / sigma[:, None]
    flux_sigma = np.sqrt(np.diag(np.linalg.pinv(weighted.T @ weighted)))
    return weighted, sigma, -k * flux_sigma


def flux_weights(matrix: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Weights ``W(gas, mass)`` of the unconstrained deconvolution: ``ṅ = W · S``.

    ``W = (FᵀΣ⁻¹F)⁻¹FᵀΣ⁻¹`` with ``Σ = diag(σ_M²)``: how a signal error at each m/z
    (e.g. of its background) propagates into each gas's flux.
    """
    weighted, sigma, _ = _flux_bounds(np.asarray(matrix, float), np.asarray(sigma, float), 0.0)
    return np.linalg.pinv(weighted) / sigma[None, :]


def _solve_block(
    signals: np.ndarray, sigma: np.ndarray, matrix: np.ndarray, k: float
) -> np.ndarray:
    """NNLS with lower bounds per time point; signals (..., time, mass) -> (..., time, gas)."""
    from scipy.optimize import nnls

    a, sigma, lower = _flux_bounds(matrix, np.asarray(sigma, float).reshape(-1), k)
    b = signals / sigma
    shifted = b - a @ lower  # x' = x - lower >= 0, so A x' = b - A lower
    flat = shifted.reshape(-1, shifted.shape[-1])
    solution = flat @ np.linalg.pinv(a).T
    finite = np.all(np.isfinite(flat), axis=-1)
    solution[~finite] = np.nan
    for i in np.flatnonzero(finite & np.any(solution < 0, axis=-1)):
        solution[i] = nnls(a, flat[i])[0]
    return (solution + lower).reshape(*signals.shape[:-1], matrix.shape[1])


def deconvolve(
    signals: xr.DataArray,
    matrix: xr.DataArray,
    sigma: xr.DataArray | None = None,
    negative_tolerance: float = 3.0,
) -> xr.DataArray:
    """Molar flux per gas from background-corrected signals (NNLS per time point).

    Solves ``min ‖W(F·ṅ − S)‖²`` subject to ``ṅ_i ≥ −k·σ_i`` for each time point,
    with ``W = diag(1/σ_M)`` (channel noise) and ``σ_i`` the flux noise the channel
    noise implies (``sqrt(diag((FᵀW²F)⁻¹))``). ``k = negative_tolerance = 0`` is
    strict NNLS; the default 3 keeps pure noise unbiased around zero (strict NNLS
    clips negative noise and inflates integrals) while forbidding the large
    negative fluxes a wrong fragment assignment would need.

    Parameters
    ----------
    signals
        ``(mass, time)`` background-corrected signals (A) on one grid; ``mass`` in u
        (an in-memory coordinate).
    matrix
        ``(mass, gas)`` sensitivity factors (C/mol) for the same masses.
    sigma
        ``(mass,)`` baseline noise (A), may be lazy; default: equal weights.
    negative_tolerance
        k (dimensionless).

    Returns
    -------
    xarray.DataArray
        ``flux(gas, time)`` in mol/s; attrs ``condition_number`` (of F, unweighted).
    """
    masses = np.asarray(signals["mass"].values, float)
    matrix = matrix.sel(mass=masses)
    if sigma is None:
        sigma = xr.DataArray(np.ones(masses.size), dims="mass", coords={"mass": masses})
    if signals.chunks is not None:
        signals = signals.chunk({"mass": -1})
    if sigma.chunks is not None:
        sigma = sigma.chunk({"mass": -1})
    flux = xr.apply_ufunc(
        _solve_block,
        signals,
        sigma,
        input_core_dims=[["mass"], ["mass"]],
        output_core_dims=[["gas"]],
        dask="parallelized",
        output_dtypes=[float],
        dask_gufunc_kwargs={"output_sizes": {"gas": matrix.sizes["gas"]}},
        kwargs={"matrix": matrix.values, "k": float(negative_tolerance)},
    )
    flux = flux.assign_coords(gas=matrix["gas"].values).transpose("gas", ...)
    return flux.assign_attrs(
        units="mol/s",
        long_name="molar flux into the MS",
        condition_number=float(np.linalg.cond(matrix.values)),
        negative_tolerance=float(negative_tolerance),
    )


def electrode_time(data: xr.DataArray | xr.Dataset, delay_s: float):
    """Re-reference ``time`` to the electrode (``t − delay_s``); keep the MS time as ``ms_time``."""
    ms_time = data["time"]
    return data.assign_coords(
        time=("time", ms_time.values - delay_s, {"units": "s", "transit_delay_s": delay_s}),
        ms_time=("time", ms_time.values, {"units": "s"}),
    )


def _interp_linear(t_ec: np.ndarray, values: np.ndarray, t_new: np.ndarray) -> np.ndarray:
    ok = np.isfinite(t_ec) & np.isfinite(values)
    if ok.sum() < 2:
        return np.full(t_new.shape, np.nan)
    return np.interp(t_new, t_ec[ok], values[ok], left=np.nan, right=np.nan)


def _interp_previous(t_ec: np.ndarray, values: np.ndarray, t_new: np.ndarray) -> np.ndarray:
    index = np.searchsorted(t_ec, t_new, side="right") - 1
    out = values[np.clip(index, 0, None)].astype(float)
    out[(index < 0) | (t_new > t_ec[-1])] = np.nan
    return out


def interpolate_ec(ec: xr.Dataset, time: xr.DataArray) -> xr.Dataset:
    """EC quantities at the given (electrode) times.

    ``potential`` (V) and ``current`` (mA) are interpolated linearly; ``cycle``,
    ``half_cycle`` and ``direction`` take the value of the last EC sample at or
    before each time (float, NaN outside the EC record).
    """
    out = {}
    if any(v.chunks is not None for v in ec.variables.values()):
        ec = ec.chunk({"time": -1})
    t_ec = ec["time"]
    for name in ("potential", "current", "cycle", "half_cycle", "direction"):
        if name not in ec:
            continue
        kernel = _interp_linear if name in ("potential", "current") else _interp_previous
        out[name] = xr.apply_ufunc(
            kernel,
            t_ec.rename(time="ec_time"),
            ec[name].rename(time="ec_time"),
            time,
            input_core_dims=[["ec_time"], ["ec_time"], ["time"]],
            output_core_dims=[["time"]],
            dask="parallelized",
            output_dtypes=[float],
        ).assign_attrs(ec[name].attrs)
    return xr.Dataset(out, coords=time.coords)


def cumulative_amount(flux: xr.DataArray, dim: str = "time") -> xr.DataArray:
    """Cumulative amount ``n(t) = ∫ ṅ dt`` (trapezoidal rule, NaN counted as 0), in mol."""
    t = flux[dim]
    dt = t.diff(dim)
    mean = 0.5 * (flux.fillna(0).shift({dim: 1}) + flux.fillna(0)).isel({dim: slice(1, None)})
    increments = (mean * dt).cumsum(dim)
    zero = xr.zeros_like(flux.isel({dim: slice(0, 1)}))
    amount = xr.concat([zero, increments], dim=dim).assign_coords({dim: t})
    return amount.assign_attrs(units="mol", long_name="cumulative amount")
