"""Uncertainty budget of a thickness (or a time): every term listed, then combined.

A budget holds standard uncertainties (same unit as the value) on a ``term`` dimension; the
combined uncertainty is their root sum of squares (the terms are taken as independent). Terms:

``statistical``
    Counting statistics: bootstrap / Fisher / per-bin likelihood σ of the estimate.
``estimator``
    Spread (sample standard deviation) of the estimates of estimators that should agree
    (e.g. map mean and whole-field stack fit; smoothed and fitted maximum).
``information_depth``
    Change of the thickness when the MRI information depth moves by its uncertainty
    (:func:`tofsims.stackfit.fit_layer_stack`): the data hardly constrain it and it shifts
    every interface by about its own value.
``fragment_consistency``
    Leave-one-fragment-out jackknife σ: how well the fragments agree with one layer stack.
``lateral_sampling``
    ``lateral_std / √N`` over N map bins: the field's mean as an estimate of the sample's mean
    (bins taken as independent — an underestimate for spatially correlated maps).
``sputter_rate``
    ``value × u(r)/r``: a thickness scales with the sputter rate.

``lateral_std`` (the spread of the map itself, noise removed) is reported beside the budget: it
is variability of the sample, not an uncertainty of the mean, and is not combined. A term that
does not apply is 0; one that cannot be determined is NaN and makes the combination NaN. See
``docs/methods.md`` ("Uncertainty budget").
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np
import xarray as xr

__all__ = ["BUDGET_TERMS", "estimator_spread", "layer_stack_budgets", "uncertainty_budget"]

BUDGET_TERMS = (
    "statistical",
    "estimator",
    "information_depth",
    "fragment_consistency",
    "lateral_sampling",
    "sputter_rate",
)

_DESCRIPTIONS = {
    "statistical": "counting statistics of the estimate",
    "estimator": "standard deviation of the estimates of consistent estimators",
    "information_depth": "thickness change for the MRI information depth ± its uncertainty",
    "fragment_consistency": "leave-one-fragment-out jackknife of the stack fit",
    "lateral_sampling": "lateral spread / sqrt(number of map bins)",
    "sputter_rate": "value x relative sputter-rate uncertainty",
}

Number = float | xr.DataArray


def estimator_spread(estimates: Mapping[str, Number]) -> xr.DataArray:
    """Sample standard deviation of several estimates of one quantity (0 for one, NaN ignored).

    Lazy when the estimates are.
    """
    values = [xr.DataArray(v) for v in estimates.values()]
    if not values:
        return xr.DataArray(0.0)
    stacked = xr.concat(values, dim="estimator", coords="minimal", compat="override")
    count = stacked.notnull().sum("estimator")
    squares = ((stacked - stacked.mean("estimator")) ** 2).sum("estimator")
    return np.sqrt(squares / np.maximum(count - 1, 1))


def uncertainty_budget(
    value: Number,
    *,
    statistical: Number,
    estimates: Mapping[str, Number] | None = None,
    information_depth: Number = 0.0,
    fragment_consistency: Number = 0.0,
    lateral_std: Number = np.nan,
    n_bins: Number = np.nan,
    rate_relative_uncertainty: float = 0.0,
    scales_with_rate: bool = True,
    units: str = "nm",
) -> xr.Dataset:
    """Term-by-term uncertainty budget of ``value`` and the combined standard uncertainty.

    Parameters
    ----------
    value
        The headline estimate.
    statistical
        Its statistical standard uncertainty.
    estimates
        Estimates of the same quantity by estimators that should agree (the headline one
        included); their sample standard deviation is the ``estimator`` term.
    information_depth, fragment_consistency
        Model terms of a layer-stack fit (0 when not applicable).
    lateral_std, n_bins
        Lateral spread of a map (noise removed) and its number of bins: ``lateral_sampling``
        = ``lateral_std / √n_bins`` (0 when either is NaN: no map).
    rate_relative_uncertainty
        Relative standard uncertainty of the sputter rate, u(r)/r.
    scales_with_rate
        Whether the value is proportional to the rate (thicknesses: yes; times: no).
    units
        Unit of the value and the terms.

    Returns
    -------
    xarray.Dataset
        ``value``; ``uncertainty (term)`` over :data:`BUDGET_TERMS`; ``combined`` (root sum
        of squares); ``lateral_std`` (not combined); attribute ``terms`` (JSON descriptions).
        Lazy when the inputs are.
    """
    if not (np.isfinite(rate_relative_uncertainty) and rate_relative_uncertainty >= 0):
        raise ValueError("the relative sputter-rate uncertainty must be a number >= 0")
    value = xr.DataArray(value)
    lateral = xr.DataArray(lateral_std)
    sampling = xr.where(
        lateral.notnull() & xr.DataArray(n_bins).notnull(),
        lateral / np.sqrt(xr.DataArray(n_bins)),
        0.0,
    )
    rate = abs(value) * rate_relative_uncertainty if scales_with_rate else xr.zeros_like(value)
    terms = {
        "statistical": xr.DataArray(statistical),
        "estimator": estimator_spread(estimates or {}),
        "information_depth": xr.DataArray(information_depth),
        "fragment_consistency": xr.DataArray(fragment_consistency),
        "lateral_sampling": sampling,
        "sputter_rate": rate,
    }
    stacked = xr.concat(
        [abs(terms[name]) for name in BUDGET_TERMS], dim="term", coords="minimal", compat="override"
    ).assign_coords(term=list(BUDGET_TERMS))
    combined = np.sqrt((stacked**2).sum("term", skipna=False))
    return xr.Dataset(
        {
            "value": value.assign_attrs(units=units),
            "uncertainty": stacked.assign_attrs(units=units),
            "combined": combined.assign_attrs(units=units),
            "lateral_std": lateral.assign_attrs(units=units),
        },
        attrs={"terms": json.dumps({k: _DESCRIPTIONS[k] for k in BUDGET_TERMS})},
    )


def layer_stack_budgets(
    stack: xr.Dataset,
    map_statistics: xr.Dataset | None = None,
    *,
    rate_relative_uncertainty: float = 0.0,
) -> dict[str, xr.Dataset]:
    """Budgets of the CEI and coating thicknesses from a stack fit and (optionally) its map.

    CEI: the headline is the map mean (:func:`tofsims.stackmap.stack_map_statistics`) where
    the map has values, else the whole-field stack fit; ``statistical`` is the σ of the map
    mean (else the Fisher σ of the fit); ``estimator`` compares map mean and stack fit; the
    model terms come from the fit; ``lateral_sampling`` from the map. Coating: the stack fit's
    value with its Fisher σ and model terms (NaN budgets when no coating was found).

    Parameters
    ----------
    stack
        Result of :func:`tofsims.stackfit.fit_layer_stack` (one profile).
    map_statistics
        Result of :func:`tofsims.stackmap.stack_map_statistics`, or None (profile input).
    rate_relative_uncertainty
        u(r)/r of the sputter rate.

    Returns
    -------
    dict
        ``{"cei": budget, "coating": budget}`` (see :func:`uncertainty_budget`), lazy.
    """
    fit = stack["value"]
    cei_fit = fit.sel(parameter="cei_nm", drop=True)
    model_terms = {
        name: {
            "information_depth": stack["information_depth_shift"].sel(parameter=name, drop=True),
            "fragment_consistency": stack["jackknife_std"]
            .sel(parameter=name, drop=True)
            .fillna(0.0),
        }
        for name in ("cei_nm", "coating_nm")
    }
    common = {"rate_relative_uncertainty": rate_relative_uncertainty}
    if map_statistics is None:
        cei = uncertainty_budget(
            cei_fit,
            statistical=stack["std"].sel(parameter="cei_nm", drop=True),
            **model_terms["cei_nm"],
            **common,
        )
    else:
        has_map = map_statistics["mean"].notnull()
        value = xr.where(has_map, map_statistics["mean"], cei_fit)
        statistical = xr.where(
            has_map, map_statistics["statistical"], stack["std"].sel(parameter="cei_nm")
        )
        cei = uncertainty_budget(
            value,
            statistical=statistical.drop_vars("parameter", errors="ignore"),
            estimates={"map mean": map_statistics["mean"], "stack fit": cei_fit},
            lateral_std=map_statistics["lateral_std"],
            n_bins=map_statistics["n_bins"],
            **model_terms["cei_nm"],
            **common,
        )
    coating = uncertainty_budget(
        fit.sel(parameter="coating_nm", drop=True),
        statistical=stack["std"].sel(parameter="coating_nm", drop=True),
        **model_terms["coating_nm"],
        **common,
    )
    return {"cei": cei, "coating": coating}
