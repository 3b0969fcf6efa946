"""The quantification pipeline: aligned raw MS + EC data -> gas fluxes vs potential.

:func:`quantify_run` chains the pure steps lazily (background, uniform grid,
deconvolution, transit delay, EC interpolation, cumulative amounts) and returns
the result dataset described in ``docs/conventions.md`` ("DEMS result").
:func:`default_background_windows` proposes quiet windows from the EC record.
Nothing is computed here; :func:`dems.summary.summarize` works on the computed
result.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr

from dems.background import fit_background
from dems.cycles import label_half_cycles
from dems.errors import AlignmentError, CalibrationError
from dems.fragmentation import primary_mass, sensitivity_matrix
from dems.quantify import (
    cumulative_amount,
    deconvolve,
    electrode_time,
    interpolate_ec,
    to_uniform_grid,
)

__all__ = ["default_background_windows", "quantify_run"]


def default_background_windows(
    ms: xr.Dataset,
    ec: xr.Dataset,
    delay_s: float = 0.0,
    settle_s: float = 60.0,
    min_duration_s: float = 120.0,
) -> list[tuple[float, float]]:
    """Quiet windows (s, MS time axis) for the background fit, from the EC record.

    Uses (1) MS time before the EC record starts, (2) every rest (|I| below 1 % of
    the maximum) that is followed by a charge — gas released during a charge can
    still be arriving in the rest right after it — and (3) the final rest when it
    follows a discharge. Each rest is shifted by the transit delay and trimmed by
    ``settle_s`` at its start. Reads the (in-memory) time and current values.
    """
    t_ec = np.asarray(ec["time"].values, float)
    current = np.asarray(ec["current"].values, float)
    t_ms = np.asarray(ms["time"].values, float)
    windows = []
    ms_start = float(np.nanmin(t_ms))
    if t_ec[0] + delay_s - ms_start >= min_duration_s:
        windows.append((ms_start, float(t_ec[0] + delay_s)))
    threshold = 0.01 * np.nanmax(np.abs(current))
    state = np.where(current > threshold, 1, np.where(current < -threshold, -1, 0))
    edges = np.flatnonzero(np.diff(state) != 0) + 1
    bounds = np.concatenate([[0], edges, [state.size]])
    for j in range(len(bounds) - 1):
        a, b = bounds[j], bounds[j + 1]
        if state[a] != 0:
            continue
        following = state[b] if b < state.size else None
        preceding = state[a - 1] if a > 0 else None
        if following == 1 or (following is None and preceding == -1):
            start, end = t_ec[a] + delay_s + settle_s, t_ec[b - 1] + delay_s
            if end - start >= min_duration_s:
                windows.append((float(start), float(end)))
    return windows


def _choose_model(model: str, windows: Sequence[tuple[float, float]]) -> str:
    if model != "auto":
        return model
    return {0: "als", 1: "constant", 2: "linear"}.get(len(windows), "polynomial")


def _check_overlap(ec: xr.Dataset, grid: tuple[float, float, float], delay_s: float) -> None:
    """Raise unless the EC record overlaps the MS record (after the transit delay)."""
    t_ec = np.asarray(ec["time"].values, float)  # an index coordinate: always in memory
    start, end = grid[0] - delay_s, grid[1] - delay_s
    first, last = (t_ec.min(), t_ec.max()) if t_ec.size else (np.nan, np.nan)
    if not (last >= start and first <= end):
        raise AlignmentError(
            f"{ec.attrs.get('source_file', 'EC data')}: the EC record ({first:.0f}–{last:.0f} s)"
            f" does not overlap the MS record ({start:.0f}–{end:.0f} s electrode time): "
            "check the start times, --timezone and --clock-offset"
        )


def _check_masses(factors, masses, channel_mass, source) -> None:
    """Raise unless every gas has at least one of its calibrated m/z among the channels."""
    present = set(channel_mass[np.isfinite(channel_mass)].tolist())
    if factors:
        for gas, by_mass in factors.items():
            if not present & set(by_mass):
                raise CalibrationError(
                    f"{source}: gas {gas} has no calibrated m/z among the channels "
                    f"(calibrated: {sorted(by_mass)}, measured: {sorted(present)})"
                )
    elif not present & set(masses):
        raise CalibrationError(f"{source}: none of the m/z {masses} is a channel of the file")


def quantify_run(
    ms: xr.Dataset,
    ec: xr.Dataset,
    *,
    factors: Mapping[str, Mapping[float, float]] | None,
    delay_s: float,
    grid: tuple[float, float, float],
    windows: Sequence[tuple[float, float]],
    background: str = "auto",
    degree: int = 2,
    mass_g: float = np.nan,
    gases: Sequence[str] = ("O2", "CO2"),
    negative_tolerance: float = 3.0,
    factor_uncertainty: Mapping[str, float] | None = None,
) -> xr.Dataset:
    """Lazy DEMS quantification of an aligned MS + EC pair.

    Parameters
    ----------
    ms, ec
        Aligned datasets (``dems.align``: one time origin), numpy or dask backed.
    factors
        gas -> {m/z: F (C/mol)} from a calibration; ``None``: no fluxes, only the
        corrected signals (``signal_grid``) and EC quantities.
    delay_s
        Transit delay (s): flux at MS time t was produced at ``t − delay_s``.
    grid
        (start, end, step) s of the uniform MS time grid
        (:func:`dems.quantify.grid_bounds`).
    windows
        Quiet windows (s, MS time) for the background.
    background
        ``auto`` (by number of windows: 1 constant, 2 linear, ≥ 3 polynomial, 0 ALS),
        ``constant``, ``linear``, ``polynomial`` or ``als``.
    degree
        Degree of the polynomial drift model.
    mass_g
        Active mass (g) for per-gram quantities (NaN: not available).
    gases
        Gases followed without calibration (their base-peak channel is kept).
    negative_tolerance
        NNLS lower bound in flux-noise units (see :func:`dems.quantify.deconvolve`).
    factor_uncertainty
        gas -> relative standard uncertainty of its sensitivity factor (from the
        calibration); propagated into the amounts of the summary.

    Returns
    -------
    xarray.Dataset
        See ``docs/conventions.md`` ("DEMS result").
    """
    _check_overlap(ec, grid, delay_s)
    model = _choose_model(background, windows)
    corrected = fit_background(ms, model, windows, degree=degree)
    if factors:
        masses = sorted({m for f in factors.values() for m in f})
    else:
        masses = sorted({float(primary_mass(g)) for g in gases})
    channel_mass = np.asarray(ms["mass"].values, float)
    _check_masses(factors, masses, channel_mass, ms.attrs.get("source_file", "MS data"))
    picks = [int(np.flatnonzero(channel_mass == m)[0]) for m in masses if m in channel_mass]
    used = corrected.isel(channel=picks)
    used_masses = channel_mass[picks]
    interpolated = to_uniform_grid(used["corrected"], used["time"], *grid)
    on_grid = xr.DataArray(
        interpolated.data,
        dims=("mass", "time"),
        coords={"mass": ("mass", used_masses, {"units": "u"}), "time": interpolated["time"]},
        attrs={**used["corrected"].attrs, "long_name": "corrected signal on grid"},
    )
    result = xr.Dataset({"signal_grid": on_grid})
    if factors:
        matrix = sensitivity_matrix(factors, used_masses)
        sigma = xr.DataArray(
            used["background_sigma"].data, dims="mass", coords={"mass": used_masses}
        )
        flux = deconvolve(on_grid, matrix, sigma, negative_tolerance)
        result["flux"] = flux
        result["sensitivity"] = matrix
        result["rate_per_mass"] = (flux * 1e6 * 60.0 / mass_g).assign_attrs(
            units="umol/(min.g)", long_name="gas evolution rate per gram of active material"
        )
        amount = cumulative_amount(flux) * 1e6
        result["cumulative"] = amount.assign_attrs(units="umol", long_name="cumulative amount")
        result["cumulative_per_mass"] = (amount / mass_g).assign_attrs(units="umol/g")
    result = electrode_time(result, delay_s)
    ec_labelled = label_half_cycles(ec)
    result = result.merge(interpolate_ec(ec_labelled, result["time"]))
    raw = corrected.rename(time="channel_time", mass="channel_mass")
    raw["channel_time"].attrs.update(units="s", long_name="MS time of each sample (no delay)")
    for name in ("signal", "background", "corrected", "background_sigma"):
        result[name] = raw[name]
    result.attrs.update(
        {
            "transit_delay_s": float(delay_s),
            "mass_g": float(mass_g),
            "background_model": corrected.attrs["background_model"],
            "background_windows_json": json.dumps([list(w) for w in windows]),
            "ms_start_time": ms.attrs.get("start_time", ""),
            "ms_source_file": ms.attrs.get("source_file", ""),
            "ec_source_file": ec.attrs.get("source_file", ""),
            "alignment": ms.attrs.get("alignment", ""),
            "time_reference": "electrode time: MS time − transit delay (s since MS start_time)",
            "gases_json": json.dumps(list(factors) if factors else list(gases)),
            "factor_relative_uncertainty_json": json.dumps(dict(factor_uncertainty or {})),
        }
    )
    return result
