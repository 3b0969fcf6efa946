"""Per-pixel CEI thickness at real count levels: Poisson fit of the whole-field stack shape.

Below one count per voxel a bin's own profile has no usable maximum, but its shape is known:
it is the whole-field layer stack (:func:`tofsims.stackfit.fit_layer_stack`: depth
resolution, transient, the levels of every fragment in every layer, the coating) with its own
CEI thickness. Per bin (b × b pixels) we fit only that thickness, with one free scale per
fragment (lateral yield), by maximum Poisson likelihood over all fragments at once:

``ln L(d) = Σ_f [ Σ_k n_fk ln T_fk(d) − N_f ln Σ_k T_fk(d) ]``

(the scales profiled out: ``N_f = Σ_k n_fk``), evaluated on a grid of d (``grid_step_nm``) and
refined by a parabola through the best three points. The σ of a bin is the standard deviation
of its normalised likelihood over the grid, so a flat or lopsided likelihood gives a large σ
instead of a falsely small curvature error.

A bin is valid when its likelihood peaks inside the grid and σ ≤ ``max_std_fraction`` × the
whole-field thickness. With ``adaptive=True`` an invalid bin takes the value of its 2b × 2b,
then its 4b × 4b parent (``bin_size`` records which); masking therefore never drops thin (low
count) regions preferentially and the mean stays unbiased. :func:`cei_stack_analysis` chains it
all: whole-field fit → map → whole-field refit with the map's lateral distribution (lateral
spread is not depth resolution) → final map. See ``docs/methods.md`` ("CEI maps at real count
levels").
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import xarray as xr

from tofsims.depth import scan_intervals
from tofsims.errors import AnalysisError
from tofsims.layerstack import StackModel
from tofsims.profiles import depth_profile, rechunk_data
from tofsims.stackfit import PARAMETERS, fit_layer_stack
from tofsims.thickness import bin_laterally

__all__ = ["REASONS", "cei_stack_analysis", "stack_map_statistics", "stack_thickness_map"]

#: Largest number of thickness values the per-bin likelihood is evaluated at.
_MAX_GRID = 1000
#: Codes of the ``reason`` map.
REASONS = {
    0: "valid",
    1: "no counts",
    2: "likelihood peaks at the edge of the range",
    3: "imprecise",
}


def _templates(
    value: np.ndarray, levels: np.ndarray, intervals: np.ndarray, grid: np.ndarray
) -> np.ndarray:
    """Return the expected profiles ``(grid, fragment, scan)`` for every CEI thickness."""
    p = dict(zip(PARAMETERS, value, strict=True))
    coating = bool(np.isfinite(p["coating_nm"]))
    model = StackModel(
        intervals,
        coating=coating,
        resolution="mri-free",
        information_depth_nm=p["information_depth_nm"],
    )
    theta = np.array([p[n] for n in model.names])
    used = levels if coating else levels[:, [0, 2, 3]]
    out = np.einsum("fb,gbk->gfk", used, model.basis_over_cei(theta, grid))
    return np.maximum(out, 1e-12)


def _map_kernel(
    counts: np.ndarray,
    value: np.ndarray,
    levels: np.ndarray,
    *,
    intervals: np.ndarray,
    grid_step: float,
    max_std_fraction: float,
) -> np.ndarray:
    """Thickness, σ, total counts and reason code for every bin: ``(..., 4)``."""
    counts = np.nan_to_num(np.asarray(counts, dtype=float))
    lead = counts.shape[:-2]
    flat = counts.reshape(-1, *counts.shape[-2:])  # (bin, fragment, scan)
    out = np.full((flat.shape[0], 4), np.nan)
    cei = float(value[0])
    if not np.isfinite(cei):
        return out.reshape(*lead, 4)
    # thicknesses up to 3× the whole-field value + 5 nm (never past 90 % of the profile), on at
    # most _MAX_GRID points: bounded memory for long profiles
    upper = min(0.9 * float(intervals[-1, 1]), 3 * cei + 5.0)
    step = max(grid_step, upper / _MAX_GRID)
    grid = np.arange(step, upper, step)
    log_t = np.log(_templates(value, levels, intervals, grid))  # (grid, fragment, scan)
    norm = np.log(np.exp(log_t).sum(axis=-1))  # (grid, fragment)
    ll = np.einsum("bfk,gfk->bg", flat, log_t) - np.einsum("bf,gf->bg", flat.sum(-1), norm)
    best = np.argmax(ll, axis=1)
    rows = np.arange(flat.shape[0])
    inner = np.clip(best, 1, grid.size - 2)
    left, mid, right = ll[rows, inner - 1], ll[rows, inner], ll[rows, inner + 1]
    curvature = left - 2 * mid + right
    with np.errstate(invalid="ignore", divide="ignore"):
        shift = np.where(curvature < 0, 0.5 * (left - right) / curvature, 0.0)
    estimate = grid[inner] + np.clip(shift, -1, 1) * step
    weights = np.exp(ll - ll.max(axis=1, keepdims=True))
    weights /= weights.sum(axis=1, keepdims=True)
    mean = weights @ grid
    std = np.sqrt(np.clip(weights @ grid**2 - mean**2, 0, None) + step**2 / 12)
    total = flat.sum(axis=(1, 2))
    reason = np.zeros(flat.shape[0])
    reason[std > max_std_fraction * cei] = 3
    reason[(best == 0) | (best == grid.size - 1)] = 2
    reason[total <= 0] = 1
    out[:, 0] = np.where(reason == 0, estimate, np.nan)
    out[:, 1] = np.where(reason == 0, std, np.nan)
    out[:, 2] = total
    out[:, 3] = reason
    return out.reshape(*lead, 4)


def _fit_bins(
    counts: xr.DataArray,
    stack: xr.Dataset,
    intervals: np.ndarray,
    grid_step: float,
    max_std_fraction: float,
) -> xr.DataArray:
    binned = rechunk_data(counts, {"fragment": -1, "scan": -1, "y": 32, "x": 32})
    return xr.apply_ufunc(
        _map_kernel,
        binned,
        stack["value"],
        stack["levels"],
        kwargs={
            "intervals": intervals,
            "grid_step": grid_step,
            "max_std_fraction": max_std_fraction,
        },
        input_core_dims=[["fragment", "scan"], ["parameter"], ["fragment", "component"]],
        output_core_dims=[["quantity"]],
        dask="parallelized",
        output_dtypes=[float],
        dask_gufunc_kwargs={"output_sizes": {"quantity": 4}},
    ).transpose("y", "x", "quantity")


def _parent(coarse: xr.DataArray, fine: xr.DataArray, factor: int) -> xr.DataArray:
    """Value of each fine bin's parent bin (``factor`` × larger), NaN past the coarse edge."""
    ny, nx = coarse.sizes["y"], coarse.sizes["x"]
    iy = np.minimum(fine["y"].values // factor, ny - 1)
    ix = np.minimum(fine["x"].values // factor, nx - 1)
    inside_y = fine["y"].values // factor < ny
    inside_x = fine["x"].values // factor < nx
    parent = coarse.isel(y=xr.DataArray(iy, dims="y"), x=xr.DataArray(ix, dims="x"))
    parent = parent.assign_coords(y=fine["y"], x=fine["x"])
    inside = xr.DataArray(inside_y, dims="y") & xr.DataArray(inside_x, dims="x")
    return parent.where(inside)


def stack_thickness_map(
    volume: xr.Dataset,
    stack: xr.Dataset,
    *,
    bin_size: int = 4,
    adaptive: bool = True,
    max_std_fraction: float = 0.15,
    grid_step_nm: float = 0.025,
) -> xr.Dataset:
    """CEI thickness per b × b bin from a Poisson fit of the whole-field stack shape.

    Parameters
    ----------
    volume
        ``counts(fragment, scan, y, x)`` with a ``depth`` coordinate (nm), drift-corrected if
        needed; must hold every fragment of ``stack``.
    stack
        Whole-field fit (:func:`tofsims.stackfit.fit_layer_stack`) of those fragments.
    bin_size
        Lateral bin b (pixels per side, 1–20).
    adaptive
        Fill invalid bins from their 2b and 4b parents (``bin_size`` map says which).
    max_std_fraction
        A bin is imprecise (invalid) when its σ exceeds this fraction of the whole-field CEI
        thickness.
    grid_step_nm
        Spacing (nm) of the thickness grid the likelihood is evaluated on (coarser when the
        grid — up to 3× the whole-field thickness + 5 nm — would exceed 1000 points).

    Returns
    -------
    xarray.Dataset
        On binned ``(y, x)``: ``thickness`` and ``thickness_std`` (nm; own bin or parent),
        ``bin_size`` (pixels per side of the bin the value comes from; 0 = none), ``valid``
        (own bin valid), ``mask`` (a value exists), ``reason`` (code of the own bin, see
        :data:`REASONS`), ``counts`` (total counts of the fitted fragments in the bin).
        Attribute ``method`` (JSON). Lazy on dask input.
    """
    if not 0 < max_std_fraction:
        raise AnalysisError("max_std_fraction must be > 0")
    fragments = [str(f) for f in stack["fragment"].values]
    missing = sorted(set(fragments) - {str(f) for f in volume["fragment"].values})
    if missing:
        raise AnalysisError(f"the volume has no {', '.join(missing)} (fitted in the stack)")
    counts = volume["counts"].sel(fragment=fragments)
    intervals = scan_intervals(volume, "depth")
    sizes = [bin_size] + ([2 * bin_size, 4 * bin_size] if adaptive else [])
    sizes = [s for s in sizes if s <= min(counts.sizes["y"], counts.sizes["x"]) and s <= 20]
    fits = [
        _fit_bins(bin_laterally(counts, s), stack, intervals, grid_step_nm, max_std_fraction)
        for s in sizes
    ]
    own = fits[0]
    thickness, std = own.isel(quantity=0), own.isel(quantity=1)
    used = xr.where(thickness.notnull(), bin_size, 0)
    for size, coarse in zip(sizes[1:], fits[1:], strict=True):
        factor = size // bin_size
        parent_t = _parent(coarse.isel(quantity=0), thickness, factor)
        parent_s = _parent(coarse.isel(quantity=1), thickness, factor)
        fill = thickness.isnull() & parent_t.notnull()
        used = xr.where(fill, size, used)
        thickness = xr.where(fill, parent_t, thickness)
        std = xr.where(fill, parent_s, std)
    method = {
        "criterion": "per-bin Poisson ML of the CEI thickness, whole-field stack shape, one "
        "free scale per fragment",
        "fragments": fragments,
        "lateral_bin": bin_size,
        "adaptive": sizes[1:],
        "max_std_fraction": max_std_fraction,
        "grid_step_nm": grid_step_nm,
        "uncertainty": "standard deviation of the normalised likelihood",
    }
    out = xr.Dataset(
        {
            "thickness": thickness.drop_vars("quantity", errors="ignore").assign_attrs(
                units="nm", long_name="CEI thickness"
            ),
            "thickness_std": std.drop_vars("quantity", errors="ignore").assign_attrs(units="nm"),
            "bin_size": used.drop_vars("quantity", errors="ignore").assign_attrs(
                units="pixel", description="side of the bin the value comes from (0: none)"
            ),
            "valid": own.isel(quantity=3, drop=True) == 0,
            "mask": thickness.drop_vars("quantity", errors="ignore").notnull(),
            "reason": own.isel(quantity=3, drop=True).assign_attrs(description=json.dumps(REASONS)),
            "counts": own.isel(quantity=2, drop=True).assign_attrs(units="counts"),
        },
        attrs={"method": json.dumps(method)},
    )
    return out


def stack_map_statistics(thickness_map: xr.Dataset) -> xr.Dataset:
    """Mean, spreads and fractions of a :func:`stack_thickness_map` result (lazy scalars).

    Returns
    -------
    xarray.Dataset
        ``mean`` (over bins with a value, own or parent), ``median``, ``std`` (spread of the
        bins), ``lateral_std`` (spread with the bins' own noise removed:
        ``√max(var − mean σ², 0)``), ``statistical`` (σ of the mean, ``√Σσ²/N``, bins
        independent), ``p05``/``p16``/``p84``/``p95`` (nm); ``valid_fraction`` (own bin
        valid), ``filled_fraction`` (value from a parent), ``masked_fraction`` (no value),
        ``n_bins`` (bins with a value).
    """
    t = thickness_map["thickness"]
    s = thickness_map["thickness_std"]
    if t.chunks is not None:
        t = rechunk_data(t, {dim: -1 for dim in t.dims})
        s = rechunk_data(s, {dim: -1 for dim in s.dims})
    n = t.notnull().sum()
    mean = t.mean()
    variance = t.var(ddof=1)
    noise = (s**2).where(t.notnull()).mean()
    quantiles = t.quantile([0.05, 0.16, 0.5, 0.84, 0.95], skipna=True)
    stats = {
        "mean": mean,
        "std": np.sqrt(variance),
        "lateral_std": np.sqrt(np.maximum(variance - noise, 0)),
        "statistical": np.sqrt((s**2).where(t.notnull()).sum()) / n,
        "valid_fraction": thickness_map["valid"].mean(),
        "filled_fraction": (thickness_map["mask"] & ~thickness_map["valid"]).mean(),
        "masked_fraction": 1 - thickness_map["mask"].mean(),
        "n_bins": n,
    }
    for name, q in zip(
        ("p05", "p16", "median", "p84", "p95"), quantiles["quantile"].values, strict=True
    ):
        stats[name] = quantiles.sel(quantile=q, drop=True)
    out = xr.Dataset({k: v.drop_vars("quantile", errors="ignore") for k, v in stats.items()})
    for name in out.data_vars:
        out[name].attrs["units"] = "1" if name.endswith("fraction") or name == "n_bins" else "nm"
    return out


def cei_stack_analysis(
    volume: xr.Dataset,
    fragments: Sequence[str],
    *,
    coating: bool | None = None,
    information_depth_nm: float = 0.3,
    information_depth_uncertainty_nm: float = 0.15,
    bin_size: int = 4,
    adaptive: bool = True,
    iterations: int = 2,
) -> tuple[xr.Dataset, xr.Dataset]:
    """Whole-field stack fit and per-bin CEI map, refined against each other (lazy).

    1. fit the stack to the whole-field profile of ``fragments`` (one uniform CEI);
    2. map the CEI per bin with that shape (:func:`stack_thickness_map`);
    3. refit the whole field as a mixture of stacks following the map's thickness
       distribution (weights = counts per bin), so the depth resolution is no longer inflated
       by the lateral spread; repeat 2–3 ``iterations`` times.

    Parameters
    ----------
    volume
        ``counts(fragment, scan, y, x)`` with ``depth`` (nm).
    fragments
        Fragments fitted jointly, e.g. ``["LiF2-", "C2HO-", "PO3-", "CeO2-", "NiO2-"]``.
    coating, information_depth_nm, information_depth_uncertainty_nm
        As in :func:`tofsims.stackfit.fit_layer_stack`.
    bin_size, adaptive
        As in :func:`stack_thickness_map`.
    iterations
        Refinement rounds (≥ 1).

    Returns
    -------
    stack, thickness_map
        The final whole-field fit and map.
    """
    if iterations < 1:
        raise AnalysisError("iterations must be ≥ 1")
    selected = volume.sel(fragment=list(fragments))
    profile = depth_profile(selected)["intensity"]
    options = {"information_depth_nm": information_depth_nm}
    profile = profile.swap_dims(peak="fragment") if "peak" in profile.dims else profile
    stack = fit_layer_stack(
        profile, coating=coating, jackknife=False, information_depth_uncertainty_nm=0.0, **options
    )
    decision = stack["coating_present"]
    for round_ in range(iterations):
        thickness_map = stack_thickness_map(selected, stack, bin_size=bin_size, adaptive=adaptive)
        last = round_ == iterations - 1
        stack = fit_layer_stack(
            profile,
            coating=decision,
            lateral_thickness=thickness_map["thickness"],
            lateral_weights=thickness_map["counts"],
            jackknife=last,
            information_depth_uncertainty_nm=information_depth_uncertainty_nm if last else 0.0,
            **options,
        )
    thickness_map = stack_thickness_map(selected, stack, bin_size=bin_size, adaptive=adaptive)
    return stack, thickness_map
