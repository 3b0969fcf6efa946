"""Background (baseline) models for mass-spectrometer signals.

Every model is fitted per channel on that channel's own time stamps and returned
*beside* the raw signal, so the fitted background is kept in the output:

``constant``
    mean of the signal over the quiet window(s).
``linear``
    straight line through the means of two (or more) windows (least squares
    through the window means).
``polynomial``
    drift model: least-squares polynomial of ``degree`` over all samples in the
    marked quiet windows.
``drift``
    the drift model of :mod:`dems.drift` (cubic P-spline with a GCV-chosen penalty,
    plus the given steps) through all samples in the windows, as given.
``anchored``
    the same drift model through anchors found from the data: the windows are
    only the first guess; evolution is flagged, excluded and the drift refitted
    (:func:`dems.drift.find_anchors`).
``als``
    asymmetric least squares (Eilers & Boelens 2005): a smooth baseline under
    positive peaks, fitted on the whole channel; windows are not needed. ALS
    absorbs part of broad peaks: the summary reports that bias as an uncertainty term.

All functions are pure and lazy on dask-backed input (``xr.apply_ufunc`` with
``dask="parallelized"``; the ``sample`` dimension is a core dimension).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from dems.drift import DriftModel, find_anchors, fit_drift

__all__ = ["MAX_STEPS", "MODELS", "fit_background", "reference_steps", "window_mask"]

MODELS = ("constant", "linear", "polynomial", "drift", "anchored", "als")

#: Most background steps the drift models detect per channel.
MAX_STEPS = 3

Window = tuple[float, float]


def window_mask(time: np.ndarray, windows: Sequence[Window]) -> np.ndarray:
    """Boolean mask of the samples whose time lies in any ``[start, end]`` window."""
    mask = np.zeros(np.shape(time), dtype=bool)
    for start, end in windows:
        mask |= (time >= start) & (time <= end)
    return mask


def _window_means(time: np.ndarray, signal: np.ndarray, windows: Sequence[Window]) -> np.ndarray:
    points = []
    for start, end in windows:
        sel = (time >= start) & (time <= end) & np.isfinite(signal) & np.isfinite(time)
        if sel.any():
            points.append((time[sel].mean(), signal[sel].mean()))
    return np.array(points).reshape(-1, 2)


def _als(signal: np.ndarray, lam: float, asymmetry: float, iterations: int = 10) -> np.ndarray:
    from scipy import sparse
    from scipy.sparse.linalg import spsolve

    n = signal.size
    if n < 3:
        return np.full_like(signal, np.nanmean(signal) if n else np.nan)
    scale = np.nanmax(np.abs(signal)) or 1.0
    y = signal / scale
    diff = sparse.diags([1.0, -2.0, 1.0], [0, 1, 2], shape=(n - 2, n))
    penalty = lam * (diff.T @ diff)
    weights = np.ones(n)
    baseline = y
    for _ in range(iterations):
        w = sparse.diags(weights)
        baseline = spsolve((w + penalty).tocsc(), weights * y)
        weights = np.where(y > baseline, asymmetry, 1.0 - asymmetry)
    return baseline * scale


def _drift_row(
    time: np.ndarray,
    signal: np.ndarray,
    in_window: np.ndarray,
    known_steps: np.ndarray,
    *,
    model: str,
    knot_spacing_s: float,
) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    valid = np.isfinite(time) & np.isfinite(signal)
    steps = np.full(MAX_STEPS, np.nan)
    background = np.full(signal.shape, np.nan)
    known = known_steps[np.isfinite(known_steps)]
    if model == "anchored":
        anchors, fit = find_anchors(
            time, signal, in_window, knot_spacing_s=knot_spacing_s, steps_s=known
        )
    else:
        t = time[valid]
        inside = tuple(float(x) for x in known if t.size and t.min() < x < t.max())
        span = (
            DriftModel(float(t.min()), float(t.max()), knot_spacing_s, inside) if t.size else None
        )
        anchors = in_window
        fit = fit_drift(time, signal, anchors, span) if span is not None else None
    if fit is None:
        return background, np.nan, anchors, steps
    background[valid] = fit(time[valid])
    steps[: len(fit.model.steps_s)] = fit.model.steps_s
    return background, fit.sigma, anchors, steps


def _fit_row(
    time: np.ndarray,
    signal: np.ndarray,
    known_steps: np.ndarray,
    *,
    model: str,
    windows: Sequence[Window],
    degree: int,
    lam: float,
    asymmetry: float,
    knot_spacing_s: float,
) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    valid = np.isfinite(time) & np.isfinite(signal)
    background = np.full(signal.shape, np.nan)
    no_steps = np.full(MAX_STEPS, np.nan)
    if model == "als":
        background[valid] = _als(signal[valid], lam, asymmetry)
        residual = signal[valid] - background[valid]
        quiet = residual[residual <= 0]
        sigma = float(np.sqrt(np.mean(quiet**2))) if quiet.size > 1 else np.nan
        return background, sigma, np.zeros(signal.shape, bool), no_steps
    in_window = window_mask(time, windows) & valid
    if model in ("drift", "anchored"):
        return _drift_row(
            time, signal, in_window, known_steps, model=model, knot_spacing_s=knot_spacing_s
        )
    if in_window.sum() < 2:
        return background, np.nan, in_window, no_steps
    if model == "constant":
        coefficients = np.array([signal[in_window].mean()])
    elif model == "linear":
        means = _window_means(time, signal, windows)
        coefficients = np.polyfit(means[:, 0], means[:, 1], 1) if len(means) >= 2 else None
        if coefficients is None:
            return background, np.nan, in_window, no_steps
    else:
        t0 = time[in_window].mean()
        span = np.ptp(time[in_window]) or 1.0
        x = (time[in_window] - t0) / span
        scaled = np.polyfit(x, signal[in_window], degree)
        background[valid] = np.polyval(scaled, (time[valid] - t0) / span)
        residual = signal[in_window] - background[in_window]
        sigma = float(np.std(residual, ddof=min(degree + 1, residual.size - 1)))
        return background, sigma, in_window, no_steps
    background[valid] = np.polyval(coefficients, time[valid])
    residual = signal[in_window] - background[in_window]
    return background, float(np.std(residual, ddof=1)), in_window, no_steps


def _fit_block(
    time: np.ndarray, signal: np.ndarray, known_steps: np.ndarray, **options: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    background = np.empty(signal.shape)
    sigma = np.empty(signal.shape[:-1])
    anchors = np.zeros(signal.shape, bool)
    steps = np.full((*signal.shape[:-1], MAX_STEPS), np.nan)
    for index in np.ndindex(signal.shape[:-1]):
        background[index], sigma[index], anchors[index], steps[index] = _fit_row(
            time[index], signal[index], np.broadcast_to(known_steps, steps.shape)[index], **options
        )
    return background, sigma, anchors, steps


def _flagged_intervals(time: np.ndarray, anchors: np.ndarray) -> list[tuple[float, float]]:
    """(start, end) times of the runs of valid non-anchor samples, padded by one sample."""
    ok = np.isfinite(time)
    t, excluded = time[ok], ~anchors[ok]
    if t.size < 2:
        return []
    step = float(np.median(np.diff(t)))
    edges = np.diff(np.concatenate([[0], excluded.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
    return [(t[a] - step, t[b] + step) for a, b in zip(starts, ends, strict=True)]


def _joint_block(
    time: np.ndarray,
    signal: np.ndarray,
    anchors: np.ndarray,
    steps: np.ndarray,
    mass: np.ndarray,
    *,
    shared: list[float],
    knot_spacing_s: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Refit the shared channels on their anchors minus every shared channel's flags."""
    rows = [i for i in range(mass.size) if float(mass[i]) in shared]
    intervals = [w for i in rows for w in _flagged_intervals(time[i], anchors[i])]
    background = np.full(signal.shape, np.nan)
    sigma = np.full(mass.shape, np.nan)
    out_anchors = anchors.copy()
    for i in range(mass.size):
        t, y = time[i], signal[i]
        valid = np.isfinite(t) & np.isfinite(y)
        if i in rows:
            out_anchors[i] = anchors[i] & ~window_mask(t, intervals)
        known = tuple(float(x) for x in steps[i][np.isfinite(steps[i])])
        fit = None
        if valid.sum() >= 8:
            model = DriftModel(float(t[valid].min()), float(t[valid].max()), knot_spacing_s, known)
            fit = fit_drift(t, y, out_anchors[i], model)
        if fit is not None:
            background[i][valid] = fit(t[valid])
            sigma[i] = fit.sigma
    return background, sigma, out_anchors


def _joint_refit(time, signal, anchors, steps, mass, shared, knot_spacing_s):
    # bare variables: comparing (differently chunked) coordinates would compute them
    time, signal, anchors, steps, mass = (
        xr.DataArray(x.variable) for x in (time, signal, anchors, steps, mass)
    )
    if signal.chunks is not None:
        time, signal = time.chunk({"channel": -1}), signal.chunk({"channel": -1})
        anchors, steps = anchors.chunk({"channel": -1}), steps.chunk({"channel": -1})
    return xr.apply_ufunc(
        _joint_block,
        time,
        signal,
        anchors,
        steps,
        mass,
        input_core_dims=[["channel", "sample"]] * 3 + [["channel", "step"], ["channel"]],
        output_core_dims=[["channel", "sample"], ["channel"], ["channel", "sample"]],
        dask="parallelized",
        output_dtypes=[float, float, bool],
        kwargs={"shared": shared, "knot_spacing_s": knot_spacing_s},
    )


def _step_kernel(time: np.ndarray, signal: np.ndarray, knot_spacing_s: float) -> np.ndarray:
    """Find the steps (s, NaN padded) of a channel without gas evolution."""
    out = np.full((*signal.shape[:-1], MAX_STEPS), np.nan)
    for index in np.ndindex(signal.shape[:-1]):
        t, y = time[index], signal[index]
        valid = np.isfinite(t) & np.isfinite(y)
        _, fit = find_anchors(
            t, y, valid, knot_spacing_s=knot_spacing_s, detect_steps=True, max_steps=MAX_STEPS
        )
        if fit is not None and fit.model.steps_s:
            out[index][: len(fit.model.steps_s)] = sorted(fit.model.steps_s)
    return out


def reference_steps(
    ms: xr.Dataset, mass: float, knot_spacing_s: float = 3600.0
) -> xr.DataArray | None:
    """Background steps (a flow disturbance) found on the channel at m/z ``mass``.

    Meant for a channel without gas evolution, usually the carrier's (Ar, m/z 40);
    see :mod:`dems.drift`. Lazy on dask input.

    Returns
    -------
    xarray.DataArray or None
        ``(step,)`` times (s, the channel's clock, NaN padded to :data:`MAX_STEPS`);
        None when no channel has that m/z.
    """
    hits = np.flatnonzero(np.asarray(ms["mass"].values, float) == mass)
    if hits.size == 0:
        return None
    channel = ms.isel(channel=int(hits[0]))
    time, signal = channel["time"], channel["signal"]
    if signal.chunks is not None:
        signal, time = signal.chunk({"sample": -1}), time.chunk({"sample": -1})
    return xr.apply_ufunc(
        _step_kernel,
        time,
        signal,
        input_core_dims=[["sample"], ["sample"]],
        output_core_dims=[["step"]],
        dask="parallelized",
        output_dtypes=[float],
        dask_gufunc_kwargs={"output_sizes": {"step": MAX_STEPS}},
        kwargs={"knot_spacing_s": float(knot_spacing_s)},
    ).drop_vars([c for c in ("channel", "mass", "label") if c in channel.coords], errors="ignore")


def fit_background(
    ms: xr.Dataset,
    model: str = "constant",
    windows: Sequence[Window] = (),
    *,
    degree: int = 2,
    lam: float = 1e9,
    asymmetry: float = 0.01,
    knot_spacing_s: float = 3600.0,
    steps: xr.DataArray | Sequence[float] | None = None,
    joint: Sequence[float] = (),
) -> xr.Dataset:
    """Fit a background to every channel of a mass-spectrometer dataset.

    Parameters
    ----------
    ms
        ``signal(channel, sample)`` with ``time(channel, sample)`` in s
        (``docs/conventions.md``). Dask-backed input stays lazy.
    model
        ``"constant"``, ``"linear"``, ``"polynomial"``, ``"drift"``, ``"anchored"``
        or ``"als"`` (see module docs).
    windows
        Quiet windows ``[(start_s, end_s), ...]`` on the dataset's time axis.
        ``constant`` needs ≥ 1, ``linear`` ≥ 2, ``polynomial`` and ``drift`` enough
        samples for the model; ``anchored`` starts from them; ``als`` ignores them.
    degree
        Polynomial degree of the drift model.
    lam, asymmetry
        ALS smoothness (in units of samples², default 1e9) and asymmetry p
        (default 0.01: points above the baseline get weight p).
    knot_spacing_s
        ``drift``/``anchored``: distance between the drift model's knots (s, default 1 h).
    steps
        ``drift``/``anchored``: times (s) of background steps to fit in every channel,
        e.g. :func:`reference_steps` of the carrier's channel (``(step,)``, may be lazy).
    joint
        ``anchored`` only: m/z of channels that see the same gases (those of the
        deconvolution). An evolution flagged on one of them is excluded from the anchors
        of all (where each sees it best: a CO2 tail is clearer at m/z 44 than at 28) and
        those channels are refitted.

    Returns
    -------
    xarray.Dataset
        The input plus ``background(channel, sample)`` (signal units),
        ``corrected = signal − background``, ``background_sigma(channel)``
        (standard deviation of the residual in the windows: the baseline noise),
        ``background_anchor(channel, sample)`` (the samples the background was fitted
        to) and ``background_step_s(channel, step)`` (times of detected steps, NaN
        padded). Attribute ``background_model`` records model, windows and parameters
        (JSON).

    Raises
    ------
    ValueError
        Unknown model or too few windows for the model.
    """
    if model not in MODELS:
        raise ValueError(f"unknown background model {model!r}; choose one of {MODELS}")
    needed = {"constant": 1, "linear": 2, "polynomial": 1, "drift": 1, "anchored": 0}.get(model, 0)
    if len(windows) < needed:
        raise ValueError(f"background model {model!r} needs at least {needed} window(s)")
    options = {
        "model": model,
        "windows": [tuple(map(float, w)) for w in windows],
        "degree": int(degree),
        "lam": float(lam),
        "asymmetry": float(asymmetry),
        "knot_spacing_s": float(knot_spacing_s),
    }
    signal = ms["signal"]
    time = ms["time"]
    if signal.chunks is not None:
        signal = signal.chunk({"sample": -1})
        time = time.chunk({"sample": -1})
    if not isinstance(steps, xr.DataArray):
        known = np.full(MAX_STEPS, np.nan)
        given = [float(x) for x in (steps or ())][:MAX_STEPS]
        known[: len(given)] = given
        steps = xr.DataArray(known, dims="step")
    background, sigma, anchors, found = xr.apply_ufunc(
        _fit_block,
        time,
        signal,
        steps,
        input_core_dims=[["sample"], ["sample"], ["step"]],
        output_core_dims=[["sample"], [], ["sample"], ["step"]],
        dask="parallelized",
        output_dtypes=[float, float, bool, float],
        dask_gufunc_kwargs={"output_sizes": {"step": MAX_STEPS}},
        kwargs=options,
    )
    shared = [float(m) for m in joint]
    if model == "anchored" and len(shared) > 1:
        background, sigma, anchors = _joint_refit(
            time, signal, anchors, found, ms["mass"], shared, float(knot_spacing_s)
        )
    units = ms["signal"].attrs.get("units", "")
    out = ms.copy()
    # assign bare variables: comparing the (rechunked) time coordinates would compute
    out["background"] = background.variable.copy(data=background.data)
    out["background"].attrs.update(units=units, long_name="fitted background")
    out["corrected"] = ms["signal"].variable - background.variable
    out["corrected"].attrs.update(units=units, long_name="background-corrected signal")
    out["background_sigma"] = sigma.variable
    out["background_sigma"].attrs.update(units=units, long_name="baseline noise (1 σ)")
    out["background_anchor"] = anchors.variable
    out["background_anchor"].attrs.update(long_name="sample used to fit the background")
    out["background_step_s"] = found.variable
    out["background_step_s"].attrs.update(units="s", long_name="background step times")
    out.attrs["background_model"] = json.dumps(options)
    return out
