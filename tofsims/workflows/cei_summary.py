"""The numbers of a CEI analysis (``summary.json`` of ``operando tofsims cei``), computed.

:class:`CeiSummary` holds the document; the functions below fill one block each from computed
datasets (no dask work is left for them): the CEI thickness with its uncertainty budget
(:func:`put_cei`), the coating (:func:`put_coating`), the layer-stack fit (:func:`put_stack`),
every fragment's timings (:func:`put_fragments`), the bulk marker's plateau
(:func:`put_plateau`) and the two-marker crossing (:func:`put_crossing`). A number that cannot be
determined is ``None`` with its reason in ``null_reasons`` (``docs/cli.md`` lists every key).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from tofsims.budget import BUDGET_TERMS, uncertainty_budget
from tofsims.stackfit import PARAMETERS

__all__ = [
    "CeiSummary",
    "put_cei",
    "put_coating",
    "put_crossing",
    "put_fragments",
    "put_plateau",
    "put_stack",
]

#: Budget terms of a time (the others do not apply to a time).
TIME_TERMS = ("statistical", "estimator")
#: Keys of the map statistics copied into ``cei_thickness_nm`` for a volume.
MAP_KEYS = ("median", "std", "p05", "p16", "p84", "p95", "lateral_std", "valid_fraction",
            "filled_fraction", "masked_fraction")  # fmt: skip


def _number(value: Any) -> float | None:
    """Return a JSON number, or None for NaN/inf."""
    value = float(value)
    return value if math.isfinite(value) else None


@dataclass
class CeiSummary:
    """The numbers of a CEI analysis; ``None`` values carry a reason in ``null_reasons``.

    Attributes
    ----------
    values
        ``cei_thickness_nm`` (``mean`` = headline, ``uncertainty`` = combined budget,
        ``method``, ``budget``, map statistics, ``whole_field``, ``estimators`` …),
        ``coating_thickness_nm`` (its uncertainty, budget and method), ``layer_stack``,
        ``fragments``, ``two_marker_crossing_nm``, ``warnings``, ``input`` (``docs/cli.md``
        lists every key).
    null_reasons
        Dotted key -> why that number is ``None``.
    """

    values: dict[str, Any] = field(default_factory=dict)
    null_reasons: dict[str, str] = field(default_factory=dict)

    def put(self, where: Sequence[str], value: Any, reason: str) -> None:
        """Set ``values[where...]`` to a number (or None with ``reason``)."""
        node = self.values
        for key in where[:-1]:
            node = node.setdefault(key, {})
        number = None if value is None else _number(value)
        node[where[-1]] = number
        if number is None:
            self.null_reasons[".".join(where)] = reason

    def put_budget(
        self, where: Sequence[str], budget: xr.Dataset, terms: Sequence[str], reason: str
    ) -> None:
        """Put every term of an :func:`~tofsims.budget.uncertainty_budget` under ``where``."""
        for term in terms:
            self.put([*where, term], budget["uncertainty"].sel(term=term), reason)

    @property
    def cei_thickness_nm(self) -> float | None:
        """Headline CEI thickness (nm), ``None``: no layer found."""
        return self.values["cei_thickness_nm"]["mean"]

    @property
    def cei_uncertainty_nm(self) -> float | None:
        """Combined standard uncertainty of the headline thickness (nm)."""
        return self.values["cei_thickness_nm"]["uncertainty"]

    @property
    def coating_thickness_nm(self) -> float | None:
        """Coating thickness (nm), ``None``: no coating layer."""
        return self.values["coating_thickness_nm"]

    @property
    def warnings(self) -> list[str]:
        """Failed input checks (analysed anyway with ``force``) and fit problems."""
        return self.values.setdefault("warnings", [])

    def to_dict(self) -> dict[str, Any]:
        """Return the ``summary.json`` document."""
        return {**self.values, "null_reasons": self.null_reasons}


def _headline(
    budgets: Mapping[str, xr.Dataset],
    statistics: xr.Dataset | None,
    fifty: xr.Dataset,
    estimates: Mapping[str, Any],
    rate_rel: float,
) -> tuple[str | None, xr.Dataset | None]:
    """Choose the headline and its budget: stack map, else stack fit, else the 50 % criterion."""
    cei = budgets["cei"]
    if statistics is not None and np.isfinite(float(statistics["mean"])):
        return "stack map", cei
    if np.isfinite(float(cei["value"])):
        return "stack fit", cei
    if np.isfinite(float(fifty["position_50"])):
        budget = uncertainty_budget(
            fifty["position_50"],
            statistical=fifty["position_50_std"],
            estimates=estimates,
            rate_relative_uncertainty=rate_rel,
        )
        return "50 % after the maximum", budget
    return None, None


def put_cei(
    summary: CeiSummary,
    *,
    marker: str,
    budgets: Mapping[str, xr.Dataset],
    stack: xr.Dataset,
    statistics: xr.Dataset | None,
    fifty: xr.Dataset,
    simple: Mapping[str, Any],
    rate_rel: float,
    descriptions: Mapping[str, str],
) -> None:
    """Fill ``cei_thickness_nm``: headline, budget, map statistics, whole field, estimators.

    ``fifty`` is :func:`tofsims.interfaces.layer_marker` of the whole-field marker profile,
    ``simple`` the whole-field simple estimators (``50 %``, ``erf``, ``emg``) and
    ``descriptions`` the method of each headline in words.
    """
    where = ["cei_thickness_nm"]
    method, budget = _headline(budgets, statistics, fifty, simple, rate_rel)
    reason = f"no {marker} layer: neither the layer stack nor the 50 % criterion found one"
    if budget is None:
        summary.put([*where, "mean"], None, reason)
        summary.put([*where, "uncertainty"], None, reason)
        summary.values["cei_thickness_nm"] |= {"method": None, "method_details": None}
    else:
        summary.put([*where, "mean"], budget["value"], reason)
        summary.put([*where, "uncertainty"], budget["combined"], "a budget term is undetermined")
        summary.values["cei_thickness_nm"] |= {
            "method": method,
            "method_details": descriptions[method],
        }
        summary.put_budget([*where, "budget"], budget, BUDGET_TERMS, "undetermined")
    if statistics is None:
        summary.put([*where, "median"], None if budget is None else budget["value"], reason)
        summary.put([*where, "std"], None, "depth-profile input: no lateral map")
        summary.put([*where, "lateral_std"], None, "depth-profile input: no lateral map")
    else:
        no_map = "the stack map has no bin with a value"
        for key in MAP_KEYS:
            summary.put([*where, key], statistics[key], no_map)
    fit = stack["value"].sel(parameter="cei_nm")
    summary.put([*where, "whole_field"], fit, "the layer-stack fit found no CEI")
    estimators = {**simple, "stack fit": fit}
    if statistics is not None:
        estimators["stack map"] = statistics["mean"]
    for name, value in estimators.items():
        summary.put([*where, "estimators", name], value, f"the {name} criterion found no layer")
    found = [v for v in summary.values["cei_thickness_nm"]["estimators"].values() if v is not None]
    summary.put(
        [*where, "method_spread"],
        max(found) - min(found) if found else None,
        "no criterion found a layer",
    )


def put_coating(
    summary: CeiSummary,
    budget: xr.Dataset,
    stack: xr.Dataset,
    *,
    coating_option: str,
    erf_box: xr.Dataset | None,
) -> None:
    """Fill ``coating_thickness_nm``, its uncertainty, budget, method and estimators.

    ``erf_box`` is :func:`tofsims.thickness.coating_thickness` of the CeO2− profile (None
    without CeO2−).
    """
    present = bool(stack["coating_present"])
    if not present:
        reason = (
            "no coating layer fitted (--coating no)"
            if coating_option == "no"
            else "no coating layer: the layer stack without one explains the data as well, or "
            "no fragment peaks in it"
        )
    else:
        reason = "the layer-stack fit gave no coating thickness"
    value = budget["value"] if present else None
    summary.put(["coating_thickness_nm"], value, reason)
    combined = budget["combined"] if present else None
    summary.put(["coating_thickness_uncertainty_nm"], combined, reason)
    if present:
        summary.put_budget(["coating_budget"], budget, BUDGET_TERMS, "undetermined")
    summary.values["coating_method"] = (
        "layer-stack fit (Poisson, all stack fragments jointly)" if present else None
    )
    summary.put(["coating_estimators", "stack fit"], value, reason)
    if erf_box is None:
        summary.put(["coating_estimators", "erf box"], None, "no CeO2- signal in the data")
    elif not bool(erf_box["present"]):
        summary.put(
            ["coating_estimators", "erf box"],
            None,
            "no CeO2- layer: its peak is not above 5x the bulk level",
        )
    else:
        summary.put(
            ["coating_estimators", "erf box"], erf_box["thickness"], "the erf-box fit failed"
        )


_PARAMETER_REASONS = {
    "std": "the Fisher information is singular",
    "information_depth_shift": "the information depth is fitted or its uncertainty is 0",
    "jackknife_std": "fewer than 3 fragments fitted",
}


def put_stack(
    summary: CeiSummary, stack: xr.Dataset, fragments: Sequence[str], coating_option: str
) -> None:
    """Fill ``layer_stack``: fragments, coating decision, every fitted parameter, method."""
    where = ["layer_stack"]
    method = json.loads(stack.attrs["method"])
    block = summary.values.setdefault("layer_stack", {})
    block |= {
        "fragments": list(fragments),
        "coating_present": bool(stack["coating_present"]),
        "converged": bool(stack["converged"]),
    }
    summary.put([*where, "deviance"], stack["deviance"], "the fit failed")
    summary.put(
        [*where, "coating_likelihood_ratio"],
        stack["coating_lr"],
        "the coating was imposed (--coating yes/no), not tested"
        if coating_option != "auto"
        else "the coating was decided by the first whole-field fit; the map-refined fit keeps "
        "that decision",
    )
    fixed = set() if method["resolution"] == "mri-free" else {"information_depth_nm"}
    for name in PARAMETERS:
        value = stack["value"].sel(parameter=name)
        if not np.isfinite(float(value)):
            continue  # not a parameter of this stack (e.g. no coating)
        summary.put([*where, "parameters", name, "value"], value, "")
        if name in fixed:
            summary.values["layer_stack"]["parameters"][name]["fixed"] = True
            continue
        for key, reason in _PARAMETER_REASONS.items():
            summary.put([*where, "parameters", name, key], stack[key].sel(parameter=name), reason)
    block["method"] = method


def put_fragments(
    summary: CeiSummary, names: Sequence[str], maxima: xr.Dataset, edges: xr.Dataset, depth: Any
) -> None:
    """Fill ``fragments``: time to maximum with its budget, depth at maximum, 50 % and width.

    ``maxima`` is :func:`tofsims.timing.time_to_maximum` on ``sputter_time`` and ``edges``
    :func:`tofsims.interfaces.layer_marker` on ``depth`` of the same columns (``peak``);
    ``depth`` maps times to depths (``(sputter_time, depth)`` arrays).
    """
    summary.values["fragments"] = {}
    times, depths = depth
    for position, name in enumerate(names):
        where = ["fragments", name]
        at_max, edge = maxima.isel(peak=position), edges.isel(peak=position)
        budget = uncertainty_budget(
            at_max["position"],
            statistical=at_max["position_std"],
            estimates={"smoothed": at_max["position"], "fitted": at_max["fitted_position"]},
            scales_with_rate=False,
            units="s",
        )
        t_max = float(at_max["position"])
        summary.put([*where, "time_to_max_s"], t_max, "no counts")
        summary.put([*where, "time_to_max_uncertainty_s"], budget["combined"], "no counts")
        summary.put_budget([*where, "time_to_max_budget"], budget, TIME_TERMS, "no counts")
        at_depth = np.interp(t_max, times, depths) if math.isfinite(t_max) else None
        summary.put([*where, "depth_at_max_nm"], at_depth, "no counts")
        summary.put(
            [*where, "depth_50_nm"],
            edge["position_50"],
            "the signal never falls to 50 % of its maximum after the peak",
        )
        summary.put(
            [*where, "width_16_84_nm"],
            edge["width_16_84"],
            "the signal never falls to 16 % of its maximum after the peak",
        )


def put_plateau(summary: CeiSummary, bulk: str, plateau: xr.Dataset, fraction: float) -> None:
    """Add the bulk marker's time to ``fraction`` of its plateau and to 50 % of it.

    ``plateau`` is :func:`tofsims.timing.time_to_plateau` of the bulk marker's profile.
    """
    where = ["fragments", bulk]
    never = f"{bulk} never reaches {{:g}} % of its plateau"
    summary.put([*where, "time_to_plateau_s"], plateau["position"], never.format(100 * fraction))
    summary.put(
        [*where, "time_to_plateau_uncertainty_s"],
        plateau["position_std"],
        never.format(100 * fraction),
    )
    summary.put([*where, "time_to_50_s"], plateau["position_50"], never.format(50))
    summary.put([*where, "time_to_50_uncertainty_s"], plateau["position_50_std"], never.format(50))


def put_crossing(summary: CeiSummary, crossing: xr.Dataset, marker: str, bulk: str) -> None:
    """Fill ``two_marker_crossing_nm`` with what it measures."""
    reason = f"{marker} never falls below {bulk} (max-normalised)"
    summary.put(["two_marker_crossing_nm", "value"], crossing["position"], reason)
    summary.put(["two_marker_crossing_nm", "uncertainty"], crossing["position_std"], reason)
    summary.values["two_marker_crossing_nm"]["method"] = (
        f"max-normalised {marker} vs {bulk}: the depth where {marker} has fallen to the same "
        f"fraction of its maximum as {bulk} has risen to of its own - the CEI/bulk interface "
        "without a coating; with a coating it lies between the CEI and the bulk interface "
        "(neither the CEI nor CEI + coating; see layer_stack)"
    )
