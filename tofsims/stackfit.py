"""Whole-field (or ROI) fit of the layer-stack forward model, as xarray, with its uncertainties.

:func:`fit_layer_stack` wraps :func:`tofsims.layerstack.fit_stack` for ``(fragment, scan)``
counts with a ``depth`` coordinate: it chooses whether a coating is present (likelihood-ratio
test), reports every parameter with its statistical σ (inverse Fisher information), the change
when the fixed information depth moves by its uncertainty, and a leave-one-fragment-out
jackknife σ (how well the fragments agree with one stack). Given a CEI-thickness map it models
the whole field as a mixture of stacks (lateral spread is not depth resolution). Lazy on dask
input (``xr.apply_ufunc``, one task per profile). See ``docs/methods.md`` ("Layer-stack forward
model").
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, replace

import numpy as np
import xarray as xr

from tofsims.depth import scan_intervals
from tofsims.errors import AnalysisError
from tofsims.layerstack import RESOLUTION_MODELS, StackFit, StackModel, fit_stack
from tofsims.profiles import rechunk_data

__all__ = ["COMPONENTS", "PARAMETERS", "StackOptions", "fit_layer_stack", "lateral_mixture"]


#: Every nonlinear parameter a fit can report, in the order of the ``parameter`` dimension.
PARAMETERS = (
    "cei_nm",
    "coating_nm",
    "roughness_nm",
    "mixing_nm",
    "information_depth_nm",
    "transient_fraction",
    "transient_depth_nm",
)
#: Components of the ``levels`` output: layers, then the surface excess.
COMPONENTS = ("cei", "coating", "bulk", "surface")
#: Likelihood-ratio threshold for a coating layer (χ² quantile 0.999 for 1 + F extra parameters
#: is ≈ 10.8 + 3·F; we ask for the coating to beat the two-layer stack by at least this).
_COATING_LR_PER_DOF = 4.0
#: ... and some fragment's level in the coating must exceed this × its CEI and bulk levels.
_COATING_MARKER_CONTRAST = 3.0


@dataclass(frozen=True)
class StackOptions:
    """How :func:`fit_layer_stack` models the stack (see its parameters)."""

    coating: bool | None = None
    resolution: str = "mri"
    information_depth_nm: float = 0.3
    information_depth_uncertainty_nm: float = 0.15
    jackknife: bool = True


def _full_vector(fit: StackFit, values: np.ndarray, *, fixed: bool = True) -> np.ndarray:
    """Spread ``model.names``-ordered values over :data:`PARAMETERS` (NaN where absent).

    With ``fixed`` the parameters the model holds fixed get their fixed values (information
    depth, zero mixing of a Gaussian resolution), else NaN (for uncertainties).
    """
    out = np.full(len(PARAMETERS), np.nan)
    for name, value in zip(fit.model.names, values, strict=True):
        out[PARAMETERS.index(name)] = value
    if not fixed:
        return out
    if "information_depth_nm" not in fit.model.names:
        out[PARAMETERS.index("information_depth_nm")] = fit.model.information_depth_nm
    if "mixing_nm" not in fit.model.names:
        out[PARAMETERS.index("mixing_nm")] = 0.0
    return out


def _full_levels(fit: StackFit) -> np.ndarray:
    """Levels as ``(fragment, 4)`` over :data:`COMPONENTS` (coating column 0 when absent)."""
    if fit.model.coating:
        return fit.levels
    levels = np.zeros((fit.levels.shape[0], 4))
    levels[:, [0, 2, 3]] = fit.levels
    return levels


def _choose_fit(counts: np.ndarray, intervals: np.ndarray, options: StackOptions, lateral):
    """Fit with and/or without a coating; return the chosen fit and the LR statistic.

    ``options.coating`` None: both are fitted and a likelihood-ratio test decides.
    """
    offsets, weights = lateral
    common = {
        "intervals": intervals,
        "resolution": options.resolution,
        "information_depth_nm": options.information_depth_nm,
        "offsets": offsets,
        "weights": weights,
    }
    if options.coating is not None:
        return fit_stack(counts, StackModel(coating=options.coating, **common)), np.nan
    without = fit_stack(counts, StackModel(coating=False, **common))
    with_coating = fit_stack(counts, StackModel(coating=True, **common))
    statistic = 2 * (without.nll - with_coating.nll)
    # a coating is a layer with a marker of its own: some fragment must peak in it (a middle
    # layer whose levels all lie between CEI and bulk is only a broadened interface)
    cei, middle, bulk = (
        with_coating.levels[:, 0],
        with_coating.levels[:, 1],
        with_coating.levels[:, 2],
    )
    own_marker = bool(np.any(middle > _COATING_MARKER_CONTRAST * np.maximum(cei, bulk)))
    wanted = own_marker and statistic > _COATING_LR_PER_DOF * (1 + counts.shape[0])
    return (with_coating if wanted else without), statistic


def _refit_shift(counts: np.ndarray, fit: StackFit, delta: float) -> np.ndarray:
    """Half the change of every parameter when the fixed information depth moves by ±delta."""
    if delta <= 0 or "information_depth_nm" in fit.model.names:
        return np.full(len(PARAMETERS), np.nan)
    ends = []
    for sign in (-1, 1):
        depth = max(fit.model.information_depth_nm + sign * delta, 0.0)
        model = replace(fit.model, information_depth_nm=depth)
        ends.append(_full_vector(fit, fit_stack(counts, model, start=fit.theta).theta))
    return _full_vector(fit, np.abs(ends[1] - ends[0])[_indices(fit)] / 2, fixed=False)


def _indices(fit: StackFit) -> list[int]:
    return [PARAMETERS.index(name) for name in fit.model.names]


def _jackknife(counts: np.ndarray, fit: StackFit) -> np.ndarray:
    """Leave-one-fragment-out jackknife σ of every parameter (NaN below 3 fragments)."""
    n = counts.shape[0]
    if n < 3:
        return np.full(len(PARAMETERS), np.nan)
    values = []
    for leave in range(n):
        keep = np.arange(n) != leave
        if counts[keep].sum() <= 0:
            continue
        values.append(fit_stack(counts[keep], fit.model, start=fit.theta).theta)
    values = np.array(values)
    m = len(values)
    spread = np.sqrt((m - 1) / m * np.sum((values - values.mean(axis=0)) ** 2, axis=0))
    return _full_vector(fit, spread, fixed=False)


def lateral_mixture(
    thickness: np.ndarray | None, weights: np.ndarray | None, points: int = 12
) -> tuple[np.ndarray, np.ndarray]:
    """Equal-weight quantile offsets (nm) of a thickness map around its weighted mean.

    NaN bins are ignored; fewer than 2 usable bins give one zero offset (uniform thickness).
    """
    if thickness is None:
        return np.zeros(1), np.ones(1)
    t = np.asarray(thickness, dtype=float).ravel()
    w = np.ones_like(t) if weights is None else np.asarray(weights, dtype=float).ravel()
    keep = np.isfinite(t) & np.isfinite(w) & (w > 0)
    if keep.sum() < 2:
        return np.zeros(1), np.ones(1)
    t, w = t[keep], w[keep]
    order = np.argsort(t)
    cumulative = (np.cumsum(w[order]) - w[order] / 2) / w.sum()
    levels = (np.arange(points) + 0.5) / points
    offsets = np.interp(levels, cumulative, t[order]) - np.average(t, weights=w)
    return offsets, np.full(points, 1 / points)


def _stack_kernel(
    counts: np.ndarray,
    *extra: np.ndarray,
    intervals: np.ndarray,
    options: StackOptions,
    has_lateral: bool,
    has_decision: bool,
) -> np.ndarray:
    """Packed fit of one ``(fragment, scan)`` profile (see :func:`_unpack`).

    ``extra``: the lateral thickness map and weights (``has_lateral``), then a previous coating
    decision (``has_decision``).
    """
    counts = np.nan_to_num(np.asarray(counts, dtype=float))
    lateral = extra[:2] if has_lateral else (None, None)
    if has_decision:
        options = replace(options, coating=bool(extra[-1]))
    mixture = lateral_mixture(*lateral)
    fit, statistic = _choose_fit(counts, intervals, options, mixture)
    shift = _refit_shift(counts, fit, options.information_depth_uncertainty_nm)
    jack = _jackknife(counts, fit) if options.jackknife else np.full(len(PARAMETERS), np.nan)
    scalars = [fit.deviance, fit.nll, float(fit.converged), float(fit.model.coating), statistic]
    return np.concatenate(
        [
            _full_vector(fit, fit.theta),
            _full_vector(fit, fit.theta_std, fixed=False),
            shift,
            jack,
            _full_levels(fit).ravel(),
            fit.expected().ravel(),
            scalars,
        ]
    )


def _fragment_dim(counts: xr.DataArray) -> str:
    for dim in ("fragment", "peak"):
        if dim in counts.dims:
            return dim
    raise AnalysisError("the counts need a 'fragment' (volume) or 'peak' (profile) dimension")


def fit_layer_stack(
    counts: xr.DataArray,
    *,
    coating: bool | xr.DataArray | None = None,
    resolution: str = "mri",
    information_depth_nm: float = 0.3,
    information_depth_uncertainty_nm: float = 0.15,
    lateral_thickness: xr.DataArray | None = None,
    lateral_weights: xr.DataArray | None = None,
    jackknife: bool = True,
) -> xr.Dataset:
    """Fit the layer-stack forward model jointly to several fragments (Poisson likelihood).

    Parameters
    ----------
    counts
        Raw counts ``(fragment, scan)`` (or ``(peak, scan)`` of a depth profile) with a
        ``depth`` coordinate (nm) along ``scan`` — whole field or a region. Other dimensions
        (e.g. ``roi``) are fitted one by one. Give the fragments that carry the layers: CEI
        markers (LiF2−, C2HO−, PO3−), the coating marker (CeO2−) and the bulk marker (NiO2−).
    coating
        ``True``/``False`` to impose or exclude a coating layer between CEI and bulk; ``None``
        decides: the coating is kept when it lowers the deviance by more than 4 per added
        parameter (likelihood ratio) and some fragment's coating level exceeds 3× its CEI and
        bulk levels (a coating has a marker of its own); a (lazy) boolean DataArray, e.g.
        ``coating_present`` of an earlier fit, imposes that decision.
    resolution
        Depth-resolution variant (:data:`RESOLUTION_MODELS`): ``"mri"`` (roughness and mixing
        fitted, information depth fixed), ``"mri-free"`` (all three fitted), ``"gauss"``.
    information_depth_nm, information_depth_uncertainty_nm
        The fixed MRI information depth λ and its standard uncertainty (nm). λ shifts every
        interface by about its own value and the data hardly constrain it; the thicknesses are
        refitted at λ ± u and half the change is reported (``information_depth_shift``).
    lateral_thickness, lateral_weights
        A CEI-thickness map (any dims without ``scan``) and its weights (e.g. counts per bin):
        the whole-field profile is then modelled as a mixture of stacks whose CEI thicknesses
        follow the map's distribution around the fitted mean (12 quantiles), so the lateral
        spread is not mistaken for depth resolution. ``None`` = one uniform thickness.
    jackknife
        Also refit leaving out each fragment in turn (jackknife σ of every parameter: how well
        the fragments agree with one stack).

    Returns
    -------
    xarray.Dataset
        On ``parameter`` (:data:`PARAMETERS`, NaN where the model has no such parameter):
        ``value``, ``std`` (statistical: inverse Fisher information), ``information_depth_shift``
        and ``jackknife_std``; ``levels (fragment, component)`` (counts per scan at full yield;
        ``surface`` = surface-excess amplitude); ``fitted (fragment, scan)`` (the model
        expectation); scalars ``deviance``, ``nll``, ``converged``, ``coating_present``,
        ``coating_lr`` (likelihood-ratio statistic, NaN when ``coating`` was imposed).
        Attribute ``method`` (JSON). Lazy on dask input.
    """
    if resolution not in RESOLUTION_MODELS:
        raise AnalysisError(
            f"unknown resolution model {resolution!r} (use {', '.join(RESOLUTION_MODELS)})"
        )
    if not (information_depth_nm >= 0 and information_depth_uncertainty_nm >= 0):
        raise AnalysisError("the information depth and its uncertainty must be ≥ 0 nm")
    fdim = _fragment_dim(counts)
    counts = rechunk_data(counts, {fdim: -1, "scan": -1})
    intervals = scan_intervals(counts, "depth")
    decision = coating if isinstance(coating, xr.DataArray) else None
    options = StackOptions(
        None if decision is not None else coating,
        resolution,
        information_depth_nm,
        information_depth_uncertainty_nm,
        jackknife,
    )
    n_frag, n_scan = counts.sizes[fdim], counts.sizes["scan"]
    inputs, core = [counts], [[fdim, "scan"]]
    if lateral_thickness is not None:
        weights = (
            lateral_weights if lateral_weights is not None else xr.ones_like(lateral_thickness)
        )
        whole = {dim: -1 for dim in lateral_thickness.dims}
        inputs += [rechunk_data(lateral_thickness, whole), rechunk_data(weights, whole)]
        core += [list(lateral_thickness.dims)] * 2
    if decision is not None:
        inputs.append(decision)
        core.append(list(decision.dims))
    size = 4 * len(PARAMETERS) + 4 * n_frag + n_frag * n_scan + 5
    packed = xr.apply_ufunc(
        _stack_kernel,
        *inputs,
        kwargs={
            "intervals": intervals,
            "options": options,
            "has_lateral": lateral_thickness is not None,
            "has_decision": decision is not None,
        },
        input_core_dims=core,
        output_core_dims=[["quantity"]],
        dask="parallelized",
        vectorize=len(counts.dims) > 2,
        output_dtypes=[float],
        dask_gufunc_kwargs={"output_sizes": {"quantity": size}},
    )
    return _unpack(packed, counts, fdim, options)


def _unpack(packed: xr.DataArray, counts: xr.DataArray, fdim: str, options: StackOptions):
    n_par, n_frag, n_scan = len(PARAMETERS), counts.sizes[fdim], counts.sizes["scan"]
    cuts = np.cumsum([0, n_par, n_par, n_par, n_par, 4 * n_frag, n_frag * n_scan, 5])
    part = [packed.isel(quantity=slice(a, b)) for a, b in itertools.pairwise(cuts)]
    extra = [d for d in packed.dims if d != "quantity"]

    def per_parameter(block: xr.DataArray, units: str) -> xr.DataArray:
        return (
            block.rename(quantity="parameter")
            .assign_coords(parameter=list(PARAMETERS))
            .assign_attrs(units=units)
        )

    shape_levels = [packed.sizes[d] for d in extra] + [n_frag, 4]
    levels = xr.DataArray(
        part[4].data.reshape(shape_levels),
        dims=[*extra, fdim, "component"],
        coords={"component": list(COMPONENTS)},
        attrs={"units": "counts per scan", "long_name": "layer levels at full yield"},
    )
    fitted = xr.DataArray(
        part[5].data.reshape([*shape_levels[:-1], n_scan]),
        dims=[*extra, fdim, "scan"],
        attrs={"units": "counts", "long_name": "fitted expectation"},
    )
    frag_coords = {k: v for k, v in counts.coords.items() if fdim in v.dims and k != fdim}
    levels = levels.assign_coords({fdim: counts[fdim], **frag_coords})
    fitted = fitted.assign_coords({fdim: counts[fdim], **frag_coords, "scan": counts["scan"]})
    fitted = fitted.assign_coords(
        {k: v for k, v in counts.coords.items() if v.dims == ("scan",) and k != "scan"}
    )
    scalars = part[6]
    method = {
        "model": "layer stack (CEI, coating, bulk) x MRI depth resolution x surface transient",
        "resolution": options.resolution,
        "information_depth_nm": options.information_depth_nm,
        "information_depth_uncertainty_nm": options.information_depth_uncertainty_nm,
        "coating": "likelihood-ratio test" if options.coating is None else options.coating,
        "likelihood": "Poisson, all fragments jointly; bounded Levenberg-Marquardt",
        "uncertainty": "inverse Fisher information; information-depth refits; fragment jackknife",
    }
    ds = xr.Dataset(
        {
            "value": per_parameter(part[0], "nm"),
            "std": per_parameter(part[1], "nm"),
            "information_depth_shift": per_parameter(part[2], "nm"),
            "jackknife_std": per_parameter(part[3], "nm"),
            "levels": levels,
            "fitted": fitted,
            "deviance": scalars.isel(quantity=0, drop=True),
            "nll": scalars.isel(quantity=1, drop=True),
            "converged": scalars.isel(quantity=2, drop=True) > 0.5,
            "coating_present": scalars.isel(quantity=3, drop=True) > 0.5,
            "coating_lr": scalars.isel(quantity=4, drop=True),
        },
        attrs={"method": json.dumps(method)},
    )
    return ds
