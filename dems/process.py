"""The quantification pipeline: aligned raw MS + EC data -> gas fluxes vs potential.

:func:`quantify_run` chains the pure steps lazily (background, uniform grid,
deconvolution, transit delay, EC interpolation, cumulative amounts) and returns
the result dataset described in ``docs/conventions.md`` ("DEMS result").
:func:`default_background_windows` proposes quiet windows from the EC record.
Nothing is computed here; :func:`dems.summary.summarize` works on the computed
result.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from dems.background import fit_background, reference_steps
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
from dems.uncertainty import calibration_budget, transit_terms

__all__ = ["AnchorCandidates", "default_background_windows", "quantify_run"]


class AnchorCandidates(list):
    """Quiet windows proposed from the EC record, with what the anchor search needs.

    A list of ``(start_s, end_s)`` windows (MS time) like any user windows, so it
    is recorded and printed the same way; :func:`quantify_run` recognises it and, with
    ``background="auto"``, searches the anchors of the drift model from the data
    instead of using the windows as given (user windows are always used as given).

    Attributes
    ----------
    more
        Further first-guess anchors: the second half of every discharge and the low
        part of every charge (below a quarter of its potential rise).
    """

    def __init__(self, windows=(), more=()):
        super().__init__(windows)
        self.more = [tuple(map(float, w)) for w in more]


def _states(current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample state (+1 charge, −1 discharge, 0 rest) and the run boundaries."""
    threshold = 0.01 * np.nanmax(np.abs(current))
    state = np.where(current > threshold, 1, np.where(current < -threshold, -1, 0))
    edges = np.flatnonzero(np.diff(state) != 0) + 1
    return state, np.concatenate([[0], edges, [state.size]])


def _active_guesses(
    t_ec: np.ndarray,
    potential: np.ndarray | None,
    state: np.ndarray,
    bounds: np.ndarray,
    shift: float,
) -> list[tuple[float, float]]:
    """First-guess anchors inside the active half-cycles (MS time)."""
    more = []
    for a, b in itertools.pairwise(bounds):
        start, end = t_ec[a] + shift, t_ec[b - 1] + shift
        if state[a] == 1:
            if potential is not None and np.isfinite(potential[a:b]).any():
                u = potential[a:b]
                low = np.nanmin(u) + 0.25 * (np.nanmax(u) - np.nanmin(u))
                rising = np.flatnonzero(~(u <= low))
                last = a + (int(rising[0]) if rising.size else b - a) - 1
                if last > a:
                    more.append((start, t_ec[last] + shift))
        elif state[a] == -1:
            more.append((0.5 * (start + end), end))
    return more


def default_background_windows(
    ms: xr.Dataset,
    ec: xr.Dataset,
    delay_s: float = 0.0,
    settle_s: float = 60.0,
    min_duration_s: float = 120.0,
) -> AnchorCandidates:
    """Quiet windows (s, MS time axis) for the background fit, from the EC record.

    Uses (1) MS time before the EC record starts, (2) every rest (|I| below 1 % of
    the maximum) that is followed by a charge — gas released during a charge can
    still be arrive in the rest right after it — and (3) the final rest when it
    follows a discharge. Each rest is shifted by the transit delay and trimmed by
    ``settle_s`` at its start. Reads the (in-memory) time, current and potential.

    Returns
    -------
    AnchorCandidates
        These windows, plus further first-guess anchors (the second half of each
        discharge, the low-potential part of each charge) with which
        :func:`quantify_run` finds the anchors of the drift model from the data.
    """
    t_ec = np.asarray(ec["time"].values, float)
    current = np.asarray(ec["current"].values, float)
    potential = np.asarray(ec["potential"].values, float) if "potential" in ec else None
    t_ms = np.asarray(ms["time"].values, float)
    windows = []
    ms_start = float(np.nanmin(t_ms))
    if t_ec[0] + delay_s - ms_start >= min_duration_s:
        windows.append((ms_start, float(t_ec[0] + delay_s)))
    state, bounds = _states(current)
    for a, b in itertools.pairwise(bounds):
        if state[a] != 0:
            continue
        following = state[b] if b < state.size else None
        preceding = state[a - 1] if a > 0 else None
        if following == 1 or (following is None and preceding == -1):
            start, end = t_ec[a] + delay_s + settle_s, t_ec[b - 1] + delay_s
            if end - start >= min_duration_s:
                windows.append((float(start), float(end)))
    more = _active_guesses(t_ec, potential, state, bounds, delay_s)
    return AnchorCandidates(windows, more)


def _choose_model(model: str, windows: Sequence[tuple[float, float]]) -> str:
    if model != "auto":
        return model
    if isinstance(windows, AnchorCandidates):
        return "anchored"
    return {0: "als", 1: "constant", 2: "linear"}.get(len(windows), "polynomial")


#: Base peak of common carrier gases.
CARRIER_MASS = {"Ar": 40.0, "He": 4.0, "Ne": 20.0, "N2": 28.0}


def _step_reference(ms, factors, gases, calibration, mass: float | None) -> float | None:
    """m/z of the channel on which background steps are looked for (None: none)."""
    present = set(np.asarray(ms["mass"].values, float).tolist())
    if mass is not None:
        return float(mass) if float(mass) in present else None
    used = {m for f in (factors or {}).values() for m in f}
    used |= {float(primary_mass(g)) for g in (gases if not factors else ())}
    carrier = CARRIER_MASS.get(str(getattr(calibration, "carrier", None) or ""))
    if isinstance(calibration, Mapping):
        carrier = CARRIER_MASS.get(str(calibration.get("carrier", "")))
    for candidate in (carrier, 40.0, 4.0):
        if candidate is not None and candidate in present and candidate not in used:
            return candidate
    return None


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
    knot_spacing_s: float = 3600.0,
    calibration: Any = None,
    carrier_flow_sccm: float | None = None,
    flow_reference_C: float | None = None,
    cylinder_tolerance: float = 0.02,
    flow_controller_tolerance: float = 0.01,
    step_reference_mass: float | None = None,
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
        ``auto``: with the :class:`AnchorCandidates` of
        :func:`default_background_windows`, ``anchored`` (anchors found from the
        data); with windows given by the user, by their number (1 constant, 2 linear,
        ≥ 3 polynomial, 0 ALS). Or ``constant``, ``linear``, ``polynomial``,
        ``drift``, ``anchored`` or ``als`` (:func:`dems.background.fit_background`).
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
        calibration); used when ``calibration`` is not given.
    knot_spacing_s
        Knot spacing of the ``drift``/``anchored`` model (s, default 3600).
    calibration
        The :class:`~dems.calibration_file.Calibration` (or its JSON document) the factors
        come from: its standard errors, flows, transit delay spread and response time feed
        the uncertainty budget (:mod:`dems.uncertainty`).
    carrier_flow_sccm
        Carrier flow of this run (sccm, > 0); None (default): as in the calibration.
        When it differs, the factors are scaled by calibration flow / carrier flow.
    flow_reference_C
        Reference temperature of this run's flow controller (°C, default: the
        calibration's, else 0 °C).
    cylinder_tolerance, flow_controller_tolerance
        Relative half-widths of the calibration gas concentration (default 0.02) and
        of the calibration flow (default 0.01); rectangular, into the amounts' budget.
    step_reference_mass
        m/z of a channel without gas evolution on which background steps (flow
        disturbances) are found for the drift models; default: the carrier's (from the
        calibration, else m/z 40 or 4 when measured and not quantified).

    Returns
    -------
    xarray.Dataset
        See ``docs/conventions.md`` ("DEMS result").
    """
    _check_overlap(ec, grid, delay_s)
    model = _choose_model(background, windows)
    fit_windows = list(windows)
    if isinstance(windows, AnchorCandidates) and model == "anchored":
        fit_windows += windows.more
    reference = None
    if model in ("drift", "anchored"):
        reference = _step_reference(ms, factors, gases, calibration, step_reference_mass)
    steps = reference_steps(ms, reference, knot_spacing_s) if reference is not None else None
    shared = (
        sorted({m for f in factors.values() for m in f})
        if factors
        else sorted({float(primary_mass(g)) for g in gases})
    )
    corrected = fit_background(
        ms,
        model,
        fit_windows,
        degree=degree,
        knot_spacing_s=knot_spacing_s,
        steps=steps,
        joint=shared,
    )
    corrected.attrs["background_model"] = json.dumps(
        {**json.loads(corrected.attrs["background_model"]), "step_reference_mass": reference}
    )
    budget = None
    if factors:
        budget = calibration_budget(
            calibration,
            factors,
            carrier_flow_sccm=carrier_flow_sccm,
            flow_reference_C=flow_reference_C,
            cylinder_tolerance=cylinder_tolerance,
            flow_controller_tolerance=flow_controller_tolerance,
            factor_uncertainty=factor_uncertainty,
        )
        factors = {g: {m: f * budget.scale[g] for m, f in fm.items()} for g, fm in factors.items()}
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
        stderr = np.zeros(matrix.shape)
        for j, gas in enumerate(matrix["gas"].values):
            for i, mass in enumerate(used_masses):
                stderr[i, j] = budget.stderr.get(str(gas), {}).get(float(mass), 0.0)
        result["sensitivity_stderr"] = matrix.copy(data=stderr).assign_attrs(
            units="C/mol", long_name="standard error of the sensitivity factor"
        )
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
    for name in (
        "signal",
        "background",
        "corrected",
        "background_sigma",
        "background_anchor",
        "background_step_s",
    ):
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
            "reference_electrode": ec.attrs.get("reference_electrode", ""),
            "alignment": ms.attrs.get("alignment", ""),
            "time_reference": "electrode time: MS time − transit delay (s since MS start_time)",
            "gases_json": json.dumps(list(factors) if factors else list(gases)),
            "factor_relative_uncertainty_json": json.dumps(dict(factor_uncertainty or {})),
            "calibration_terms_json": json.dumps(budget.relative if budget else {}),
            "calibration_transfer_json": json.dumps(budget.transfer if budget else {}),
            "transit_terms_json": json.dumps(transit_terms(calibration, delay_s, 0.0)),
        }
    )
    return result
