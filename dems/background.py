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
``als``
    asymmetric least squares (Eilers & Boelens 2005): a smooth baseline under
    positive peaks, fitted on the whole channel; windows are not needed.

All functions are pure and lazy on dask-backed input (``xr.apply_ufunc`` with
``dask="parallelized"``; the ``sample`` dimension is a core dimension).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

__all__ = ["MODELS", "fit_background", "window_mask"]

MODELS = ("constant", "linear", "polynomial", "als")

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


def _fit_row(
    time: np.ndarray,
    signal: np.ndarray,
    *,
    model: str,
    windows: Sequence[Window],
    degree: int,
    lam: float,
    asymmetry: float,
) -> tuple[np.ndarray, float]:
    valid = np.isfinite(time) & np.isfinite(signal)
    background = np.full(signal.shape, np.nan)
    if model == "als":
        background[valid] = _als(signal[valid], lam, asymmetry)
        residual = signal[valid] - background[valid]
        quiet = residual[residual <= 0]
        sigma = float(np.sqrt(np.mean(quiet**2))) if quiet.size > 1 else np.nan
        return background, sigma
    in_window = window_mask(time, windows) & valid
    if in_window.sum() < 2:
        return background, np.nan
    if model == "constant":
        coefficients = np.array([signal[in_window].mean()])
    elif model == "linear":
        means = _window_means(time, signal, windows)
        coefficients = np.polyfit(means[:, 0], means[:, 1], 1) if len(means) >= 2 else None
        if coefficients is None:
            return background, np.nan
    else:
        t0 = time[in_window].mean()
        span = np.ptp(time[in_window]) or 1.0
        x = (time[in_window] - t0) / span
        scaled = np.polyfit(x, signal[in_window], degree)
        background[valid] = np.polyval(scaled, (time[valid] - t0) / span)
        residual = signal[in_window] - background[in_window]
        return background, float(np.std(residual, ddof=min(degree + 1, residual.size - 1)))
    background[valid] = np.polyval(coefficients, time[valid])
    residual = signal[in_window] - background[in_window]
    return background, float(np.std(residual, ddof=1))


def _fit_block(
    time: np.ndarray, signal: np.ndarray, **options: Any
) -> tuple[np.ndarray, np.ndarray]:
    background = np.empty(signal.shape)
    sigma = np.empty(signal.shape[:-1])
    for index in np.ndindex(signal.shape[:-1]):
        background[index], sigma[index] = _fit_row(time[index], signal[index], **options)
    return background, sigma


def fit_background(
    ms: xr.Dataset,
    model: str = "constant",
    windows: Sequence[Window] = (),
    *,
    degree: int = 2,
    lam: float = 1e9,
    asymmetry: float = 0.01,
) -> xr.Dataset:
    """Fit a background to every channel of a mass-spectrometer dataset.

    Parameters
    ----------
    ms
        ``signal(channel, sample)`` with ``time(channel, sample)`` in s
        (``docs/conventions.md``). Dask-backed input stays lazy.
    model
        ``"constant"``, ``"linear"``, ``"polynomial"`` or ``"als"`` (see module docs).
    windows
        Quiet windows ``[(start_s, end_s), ...]`` on the dataset's time axis.
        ``constant`` needs ≥ 1, ``linear`` ≥ 2, ``polynomial`` enough samples for
        ``degree``; ``als`` ignores them.
    degree
        Polynomial degree of the drift model.
    lam, asymmetry
        ALS smoothness (in units of samples², default 1e9) and asymmetry p
        (default 0.01: points above the baseline get weight p).

    Returns
    -------
    xarray.Dataset
        The input plus ``background(channel, sample)`` (signal units),
        ``corrected = signal − background`` and ``background_sigma(channel)``
        (standard deviation of the residual in the windows: the baseline noise).
        Attribute ``background_model`` records model, windows and parameters (JSON).

    Raises
    ------
    ValueError
        Unknown model or too few windows for the model.
    """
    if model not in MODELS:
        raise ValueError(f"unknown background model {model!r}; choose one of {MODELS}")
    needed = {"constant": 1, "linear": 2, "polynomial": 1, "als": 0}[model]
    if len(windows) < needed:
        raise ValueError(f"background model {model!r} needs at least {needed} window(s)")
    options = {
        "model": model,
        "windows": [tuple(map(float, w)) for w in windows],
        "degree": int(degree),
        "lam": float(lam),
        "asymmetry": float(asymmetry),
    }
    signal = ms["signal"]
    time = ms["time"]
    if signal.chunks is not None:
        signal = signal.chunk({"sample": -1})
        time = time.chunk({"sample": -1})
    background, sigma = xr.apply_ufunc(
        _fit_block,
        time,
        signal,
        input_core_dims=[["sample"], ["sample"]],
        output_core_dims=[["sample"], []],
        dask="parallelized",
        output_dtypes=[float, float],
        kwargs=options,
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
    out.attrs["background_model"] = json.dumps(options)
    return out
