"""Sputter time → depth.

Every function adds a ``depth`` coordinate (nm, along ``scan``) beside ``sputter_time``; the
sputter time is never replaced. What was done is recorded in the coordinate's attributes
(``method``, rates). See ``docs/methods.md`` ("Depth calibration").
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from itertools import pairwise
from typing import TypeVar

import numpy as np
import xarray as xr

from tofsims.errors import AnalysisError

__all__ = [
    "TIME_REFERENCES",
    "depth_constant_rate",
    "depth_piecewise_rate",
    "rate_from_reference_layer",
    "scan_intervals",
    "scan_steps",
    "scan_time",
]

XrObj = TypeVar("XrObj", xr.Dataset, xr.DataArray)


TIME_REFERENCES = ("start", "midpoint", "end")


def scan_steps(obj: xr.Dataset | xr.DataArray) -> np.ndarray:
    """Sputter time (s) of each scan: the spacing of ``sputter_time`` (last step repeated).

    A single scan takes its step from the ``seconds_per_scan`` attribute (NaN if absent).
    """
    t = _stored_times(obj)
    if t.size > 1:
        return np.diff(t, append=t[-1] + (t[-1] - t[-2]))
    return np.array([float(obj.attrs.get("seconds_per_scan", np.nan))])


def scan_time(obj: xr.Dataset | xr.DataArray, at: str = "start") -> np.ndarray:
    """Sputter time (s) of each scan at its start (as stored), midpoint or end.

    ``sputter_time`` is the cumulative sputter time at the start of each scan (first scan 0 s
    for a depth profile; ``docs/conventions.md``, "Time convention"): scan ``k`` sputters through
    ``[t_k, t_k + Δt_k]``.

    Parameters
    ----------
    obj
        Volume or profile with a ``sputter_time`` coordinate along ``scan``.
    at
        ``"start"`` (the stored time), ``"midpoint"`` (``t + Δt/2``, the centre of the depth
        interval the scan integrates over) or ``"end"`` (``t + Δt``).

    Returns
    -------
    numpy.ndarray
        Times in s, shape ``(scan,)``.
    """
    t = _stored_times(obj)
    if at not in TIME_REFERENCES:
        raise AnalysisError(f"unknown time reference {at!r} (use 'start', 'midpoint' or 'end')")
    if at == "start":
        return t
    step = scan_steps(obj)
    return t + (step / 2 if at == "midpoint" else step)


def _stored_times(obj: xr.Dataset | xr.DataArray) -> np.ndarray:
    if "sputter_time" not in obj.coords:
        raise AnalysisError("the data have no 'sputter_time' coordinate; give --seconds-per-scan")
    t = np.asarray(obj["sputter_time"].values, dtype=float)
    if t.ndim != 1 or not np.all(np.isfinite(t)):
        raise AnalysisError("sputter_time must be a finite 1-D coordinate along 'scan'")
    if t.size > 1 and np.any(np.diff(t) <= 0):
        bad = int(np.argmax(np.diff(t) <= 0)) + 1
        raise AnalysisError(
            f"sputter_time is not increasing at scan {bad} ({t[bad]} s after {t[bad - 1]} s)"
        )
    return t


def scan_intervals(obj: xr.Dataset | xr.DataArray, coord: str = "depth") -> np.ndarray:
    """Depth (or time) interval ``[lo, hi]`` each scan integrates over, shape ``(scan, 2)``.

    Derived from ``coord`` and its ``time_reference`` attribute (``start`` if absent): with
    ``start`` scan k covers ``[c_k, c_k + Δc_k]``, with ``midpoint`` ``[c_k − Δc/2, c_k + Δc/2]``,
    with ``end`` ``[c_k − Δc_k, c_k]``; ``Δc`` is the spacing of ``coord`` (last one repeated).
    """
    if coord not in obj.coords:
        raise AnalysisError(f"the data have no {coord!r} coordinate")
    c = np.asarray(obj[coord].values, dtype=float)
    if c.ndim != 1 or c.size < 2 or not np.all(np.isfinite(c)) or np.any(np.diff(c) <= 0):
        raise AnalysisError(f"{coord!r} must be finite and increasing along 'scan'")
    step = np.diff(c, append=c[-1] + (c[-1] - c[-2]))
    reference = obj[coord].attrs.get("time_reference", "start")
    shift = {"start": 0.0, "midpoint": 0.5, "end": 1.0}.get(reference)
    if shift is None:
        raise AnalysisError(f"{coord!r} has an unknown time_reference {reference!r}")
    lo = c - shift * step
    return np.stack([lo, lo + step], axis=-1)


def _with_depth(obj: XrObj, depth: np.ndarray, attrs: dict[str, object]) -> XrObj:
    return obj.assign_coords(depth=("scan", depth, {"units": "nm", **attrs}))


def depth_constant_rate(
    obj: XrObj, rate_nm_per_s: float, *, rate_uncertainty_nm_per_s: float = 0.0, at: str = "start"
) -> XrObj:
    """Add ``depth = rate · sputter_time`` (nm).

    Parameters
    ----------
    obj
        Volume or profile with ``sputter_time`` (s) along ``scan``.
    rate_nm_per_s
        Sputter rate in nm/s (> 0).
    rate_uncertainty_nm_per_s
        Standard uncertainty of the rate (nm/s), recorded for error propagation.
    at
        Time reference of each scan: ``"start"`` (depth = rate × stored time), ``"midpoint"``
        or ``"end"`` (see :func:`scan_time`); recorded as the ``time_reference`` attribute, so
        :func:`scan_intervals` knows which depths a scan covers.

    Returns
    -------
    Same type as ``obj`` with a ``depth`` coordinate (nm) along ``scan``.
    """
    _check_rates([rate_nm_per_s])
    depth = rate_nm_per_s * scan_time(obj, at)
    return _with_depth(
        obj,
        depth,
        {
            "method": "constant rate",
            "sputter_rate_nm_per_s": float(rate_nm_per_s),
            "sputter_rate_uncertainty_nm_per_s": float(rate_uncertainty_nm_per_s),
            "time_reference": at,
        },
    )


def depth_piecewise_rate(
    obj: XrObj,
    rates_nm_per_s: Sequence[float],
    switch_times_s: Sequence[float],
    *,
    transition_s: float = 0.0,
    at: str = "start",
) -> XrObj:
    """Add a depth scale with rates that change at interface times.

    ``z(t) = ∫₀ᵗ r(t′) dt′`` with ``r = rates[k]`` between ``switch_times[k-1]`` and
    ``switch_times[k]``. With ``transition_s > 0`` the rate changes linearly over a window of that
    length centred on each switch time (an interface of finite width) instead of stepping.

    Parameters
    ----------
    obj
        Volume or profile with ``sputter_time`` (s).
    rates_nm_per_s
        Rates of the successive layers from the surface (nm/s), e.g. ``(0.07, 0.03)`` for CEI
        (organic/carbon-rich) over oxide.
    switch_times_s
        Sputter times (s) of the interfaces, one fewer than rates, increasing — e.g. the
        time at which the CEI marker falls to 50 % (:func:`tofsims.interfaces.layer_marker`).
    transition_s
        Width (s) of the linear rate change at each interface.
    at
        Time reference of each scan (``"start"``, ``"midpoint"`` or ``"end"``).

    Returns
    -------
    Same type as ``obj`` with ``depth`` (nm).
    """
    rates = [float(r) for r in rates_nm_per_s]
    switches = [float(s) for s in switch_times_s]
    _check_rates(rates)
    if len(switches) != len(rates) - 1:
        raise AnalysisError(
            f"{len(rates)} rates need {len(rates) - 1} switch times, got {len(switches)}"
        )
    if any(b <= a for a, b in pairwise(switches)):
        raise AnalysisError("switch times must increase")
    half = transition_s / 2
    if switches and half > 0 and any(b - a < transition_s for a, b in pairwise(switches)):
        raise AnalysisError("transition windows of neighbouring interfaces overlap")
    t = scan_time(obj, at)
    # Rate as a piecewise-linear function of time through these knots, integrated exactly.
    knot_t, knot_r = [0.0], [rates[0]]
    for k, s in enumerate(switches):
        knot_t += [s - half, s + half]
        knot_r += [rates[k], rates[k + 1]]
    end = max(float(t.max()), knot_t[-1]) + 1.0
    knot_t.append(end)
    knot_r.append(rates[-1])
    depth = _integrate_knots(np.asarray(knot_t), np.asarray(knot_r), t)
    return _with_depth(
        obj,
        depth,
        {
            "method": "piecewise rate",
            "sputter_rates_nm_per_s": json.dumps(rates),
            "switch_times_s": json.dumps(switches),
            "transition_s": float(transition_s),
            "time_reference": at,
        },
    )


def rate_from_reference_layer(
    interface_time_s: float,
    thickness_nm: float,
    *,
    interface_time_uncertainty_s: float = 0.0,
    thickness_uncertainty_nm: float = 0.0,
) -> tuple[float, float]:
    """Sputter rate from a reference layer of known thickness.

    ``r = d / t_i`` with relative uncertainty ``√((σ_t/t_i)² + (σ_d/d)²)``.

    Parameters
    ----------
    interface_time_s
        Sputter time (s) at which the reference layer's interface is reached (e.g. its 50 %
        point from :func:`tofsims.interfaces.layer_marker` on the time coordinate).
    thickness_nm
        Known thickness of the layer (nm), e.g. from ellipsometry or a crater profile.
    interface_time_uncertainty_s, thickness_uncertainty_nm
        Standard uncertainties.

    Returns
    -------
    rate, uncertainty
        In nm/s.
    """
    if not (np.isfinite(interface_time_s) and interface_time_s > 0):
        raise AnalysisError(f"reference interface time must be > 0 s, got {interface_time_s}")
    if not (np.isfinite(thickness_nm) and thickness_nm > 0):
        raise AnalysisError(f"reference thickness must be > 0 nm, got {thickness_nm}")
    rate = thickness_nm / interface_time_s
    rel = np.hypot(
        interface_time_uncertainty_s / interface_time_s, thickness_uncertainty_nm / thickness_nm
    )
    return float(rate), float(rate * rel)


def _integrate_knots(knot_t: np.ndarray, knot_r: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Integrate a piecewise-linear rate (knots may repeat: a step) from 0 to each ``t``."""
    seg = np.diff(knot_t)
    cumulative = np.concatenate([[0.0], np.cumsum(seg * (knot_r[1:] + knot_r[:-1]) / 2)])
    i = np.clip(np.searchsorted(knot_t, t, side="right") - 1, 0, knot_t.size - 2)
    length = np.where(seg[i] > 0, seg[i], 1.0)
    rate_at_t = knot_r[i] + (knot_r[i + 1] - knot_r[i]) * (t - knot_t[i]) / length
    return cumulative[i] + (t - knot_t[i]) * (knot_r[i] + rate_at_t) / 2


def _check_rates(rates: Sequence[float]) -> None:
    for rate in rates:
        if not (np.isfinite(rate) and rate > 0):
            raise AnalysisError(f"sputter rate must be a positive number of nm/s, got {rate}")
