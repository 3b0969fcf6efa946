"""The JSON summary of a processed DEMS run: onsets, evolved amounts, per cycle.

Works on a *computed* result of :func:`dems.process.quantify_run` (this is where
the numbers are produced). Keys are documented in ``docs/cli.md``; the top-level
``onsets``, ``evolved``, ``delay_s``, ``sensitivity`` and ``cycles`` are a contract.
A number that cannot be determined is ``None`` with a ``reason`` beside it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from dems.calibration import FARADAY
from dems.fragmentation import primary_mass
from dems.onset import detect_onset

__all__ = ["summarize"]

PLACEHOLDER_MASS_G = 0.001


def _series(result: xr.Dataset, gas: str) -> tuple[np.ndarray, str]:
    if "flux" in result:
        return np.asarray(result["flux"].sel(gas=gas).values, float), "mol/s"
    mass = float(primary_mass(gas))
    return np.asarray(result["signal_grid"].sel(mass=mass).values, float), "A"


def _noise(flux: np.ndarray) -> float:
    """White-noise level of a flux series: 1.4826·MAD of its first differences / √2."""
    steps = np.diff(flux[np.isfinite(flux)])
    if steps.size < 5:
        return float("nan")
    return float(1.4826 * np.median(np.abs(steps - np.median(steps))) / np.sqrt(2))


def _background_design(result: xr.Dataset, gas: str) -> tuple | None:
    """(window times, degree, t0, span, σ) of the background fit on the gas's main channel.

    σ is that channel's baseline noise (``background_sigma``) in flux units (divided by
    the sensitivity factor; in signal units without calibration).
    """
    model = json.loads(result.attrs.get("background_model", "{}"))
    degree = {"constant": 0, "linear": 1, "polynomial": model.get("degree", 2)}.get(
        model.get("model")
    )
    if degree is None or "channel_time" not in result.coords:
        return None
    factor = 1.0
    if "sensitivity" in result:
        column = result["sensitivity"].sel(gas=gas)
        mass = float(column["mass"].values[int(np.argmax(column.values))])
        factor = float(column.max())
    else:
        mass = float(primary_mass(gas))
    channel = np.flatnonzero(np.asarray(result["channel_mass"].values) == mass)
    if channel.size == 0:
        return None
    from dems.background import window_mask

    time = np.asarray(result["channel_time"].values[channel[0]], float)
    inside = time[window_mask(time, [tuple(w) for w in model["windows"]]) & np.isfinite(time)]
    if inside.size <= degree:
        return None
    sigma = float(result["background_sigma"].values[channel[0]]) / factor
    return inside, degree, inside.mean(), float(np.ptp(inside)) or 1.0, sigma


def _background_uncertainty(design, ms_time: np.ndarray) -> float:
    """σ·sqrt(gᵀ(XᵀX)⁻¹g), g = ∫ x(t) dt: the integrated error of the fitted background.

    The standard uncertainty (mol, or A·s without calibration) that the background's
    fit error adds to an amount integrated over ``ms_time`` (s).
    """
    if design is None or ms_time.size < 2:
        return float("nan")
    inside, degree, t0, span, sigma = design
    x = np.vander((inside - t0) / span, degree + 1)
    g = np.trapezoid(np.vander((ms_time - t0) / span, degree + 1), ms_time, axis=0)
    return float(sigma * np.sqrt(g @ np.linalg.pinv(x.T @ x) @ g))


def _amount(
    t: np.ndarray, flux: np.ndarray, sel: np.ndarray, mass_g: float, relative_u: dict[str, Any]
) -> dict[str, Any]:
    ok = sel & np.isfinite(flux)
    if ok.sum() < 2:
        return {"umol": None, "umol_per_g": None, "reason": "no valid samples"}
    umol = float(np.trapezoid(flux[ok], t[ok])) * 1e6
    step = float(np.median(np.diff(t[ok])))
    noise = _noise(flux)
    terms = {
        "noise": noise * step * np.sqrt(ok.sum()) * 1e6,
        "background": relative_u["background"](t[ok]) * 1e6,
        "calibration": abs(umol) * relative_u["factor"],
    }
    terms = {k: (v if np.isfinite(v) else 0.0) for k, v in terms.items()}
    out: dict[str, Any] = {
        "umol": umol,
        "umol_uncertainty": float(np.sqrt(sum(v**2 for v in terms.values()))),
        "uncertainty_terms_umol": terms,
        "coverage": float(ok.sum() / max(sel.sum(), 1)),
    }
    if np.isfinite(mass_g) and mass_g > 0:
        out["umol_per_g"] = umol / mass_g
        out["umol_per_g_uncertainty"] = out["umol_uncertainty"] / mass_g
    else:
        out["umol_per_g"] = None
        out["reason"] = "active mass unknown: give --mass"
    return out


def _charge_C(t: np.ndarray, current_mA: np.ndarray, sel: np.ndarray) -> float:
    ok = sel & np.isfinite(current_mA)
    return float(np.trapezoid(current_mA[ok] * 1e-3, t[ok])) if ok.sum() > 1 else float("nan")


@dataclass
class _Run:
    """The computed arrays of a result and the onset options, with per-window summaries."""

    result: xr.Dataset
    gases: list[str]
    options: dict[str, Any]
    z: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        result = self.result
        self.t = np.asarray(result["time"].values, float)
        self.potential = np.asarray(result["potential"].values, float)
        self.current = np.asarray(result["current"].values, float)
        self.half = _integers(result["half_cycle"])
        self.direction = np.nan_to_num(np.asarray(result["direction"].values, float)).astype(int)
        self.cycle = (
            _integers(result["cycle"]) if "cycle" in result else np.where(self.half >= 0, 1, -1)
        )
        self.mass_g = float(result.attrs.get("mass_g", np.nan))
        self.series = {g: _series(result, g) for g in self.gases}
        self.charges = [
            h for h in np.unique(self.half[self.half >= 0]) if np.any(self.charge_mask(h))
        ]

    def charge_mask(self, h: int) -> np.ndarray:
        return (self.half == h) & (self.direction == 1)

    def onsets(self, h: int | None) -> dict[str, Any]:
        """Onset of every gas in half-cycle ``h`` (None: no charge to look at)."""
        out = {}
        for gas, (values, units) in self.series.items():
            if h is None:
                out[gas] = {
                    "potential_V": None,
                    "uncertainty_V": None,
                    "method": self.options["method"],
                    "reason": "no charge half-cycle",
                }
                continue
            out[gas] = self._onset(values, self.half == h)
            out[gas]["signal_units"] = units
        return out

    def _onset(self, values: np.ndarray, sel: np.ndarray) -> dict[str, Any]:
        options = dict(self.options)
        index = np.flatnonzero(sel)
        if index.size < 10:
            return {
                "potential_V": None,
                "uncertainty_V": None,
                "method": options["method"],
                "reason": "half-cycle too short",
            }
        t_h = self.t[index]
        baseline = t_h <= t_h[0] + options.pop("baseline_fraction") * (t_h[-1] - t_h[0])
        onset = detect_onset(t_h, self.potential[index], values[index], baseline, **options)
        if onset["potential_V"] is not None:
            onset["charge_at_onset_mAh"] = self._charge_until(index, onset["threshold_time_s"])
            if np.isfinite(self.mass_g) and self.mass_g > 0:
                capacity = onset["charge_at_onset_mAh"] / self.mass_g
                onset["specific_capacity_at_onset_mAh_per_g"] = capacity
        return onset

    def _charge_until(self, index: np.ndarray, t_end: float) -> float:
        """Charge (mAh) passed from the start of the half-cycle to ``t_end``."""
        t = self.t[index]
        current = np.nan_to_num(self.current[index])
        keep = t <= t_end
        t_part = np.append(t[keep], t_end)
        i_part = np.append(current[keep], np.interp(t_end, t, current))
        return float(np.trapezoid(i_part, t_part)) / 3600.0

    def evolved(self, sel: np.ndarray) -> dict[str, Any]:
        """Amount of every gas over the samples ``sel``."""
        if "flux" not in self.result:
            return {
                g: {"umol": None, "umol_per_g": None, "reason": "no calibration"}
                for g in self.gases
            }
        u_factor = json.loads(self.result.attrs.get("factor_relative_uncertainty_json", "{}"))
        delay = float(self.result.attrs.get("transit_delay_s", 0.0))
        out = {}
        for g in self.gases:
            design = _background_design(self.result, g)
            relative = {
                "factor": u_factor.get(g) or 0.0,
                "background": lambda t, d=design: _background_uncertainty(d, t + delay),
            }
            out[g] = _amount(self.t, self.series[g][0], sel, self.mass_g, relative)
        return out

    def half_cycle_entries(self) -> list[dict[str, Any]]:
        entries = []
        for h in np.unique(self.half[self.half >= 0]):
            sel = self.half == h
            cycles = self.cycle[sel][self.cycle[sel] >= 0]
            entry = {
                "half_cycle": int(h),
                "direction": "charge" if self.direction[sel][0] == 1 else "discharge",
                "cycle": int(np.bincount(cycles).argmax()) if cycles.size else None,
                "start_s": float(self.t[sel][0]),
                "end_s": float(self.t[sel][-1]),
                "charge_C": _charge_C(self.t, self.current, sel),
                "evolved": self.evolved(sel),
            }
            if entry["direction"] == "charge":
                entry["onsets"] = self.onsets(int(h))
            entries.append(_ratios(entry, self.z))
        return entries

    def cycle_entries(self) -> list[dict[str, Any]]:
        entries = []
        for c in np.unique(self.cycle[self.cycle >= 0]):
            sel = self.cycle == c
            first_charge = next((h for h in self.charges if np.any((self.half == h) & sel)), None)
            entry = {
                "cycle": int(c),
                "onsets": self.onsets(first_charge),
                "evolved": self.evolved(sel),
                "charge_C": _charge_C(self.t, self.current, sel & (self.current > 0)),
            }
            entries.append(_ratios(entry, self.z))
        return entries

    def sensitivity(self) -> dict[str, dict[str, float]]:
        if "sensitivity" not in self.result:
            return {}
        matrix = self.result["sensitivity"]
        out = {}
        for gas in self.gases:
            column = matrix.sel(gas=gas)
            out[gas] = {
                f"{m:g}": float(v)
                for m, v in zip(column["mass"].values, column.values, strict=True)
                if v > 0
            }
        return out


def _integers(values: xr.DataArray) -> np.ndarray:
    return np.nan_to_num(np.asarray(values.values, float), nan=-1).astype(int)


def summarize(
    result: xr.Dataset,
    *,
    method: str = "threshold",
    k: float = 3.0,
    persistence: int = 5,
    baseline_fraction: float = 0.25,
    delay_uncertainty_s: float = 1.0,
    gases: list[str] | None = None,
    z: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """Summarise a computed DEMS result.

    Parameters
    ----------
    result
        Output of :func:`dems.process.quantify_run`, computed (in memory).
    method, k, persistence, delay_uncertainty_s
        Onset criterion (:func:`dems.onset.detect_onset`).
    baseline_fraction
        Leading fraction of each charge half-cycle used as onset baseline.
    gases
        Gases to report (default: all gases of the result).
    z
        Electrons per molecule for a Faradaic efficiency, e.g. ``{"CO2": 2}``.

    Returns
    -------
    dict
        ``onsets`` (first charge), ``evolved`` (whole run), ``delay_s``, ``sensitivity``,
        ``mass_g``, ``cycles``, ``half_cycles``, ``onset_method``, ``warnings``.
    """
    options = {
        "method": method,
        "k": k,
        "persistence": persistence,
        "baseline_fraction": baseline_fraction,
        "delay_uncertainty_s": delay_uncertainty_s,
    }
    gases = list(gases or json.loads(result.attrs.get("gases_json", "[]")))
    run = _Run(result, gases, options, dict(z or {}))
    warnings = []
    if np.isfinite(run.mass_g) and abs(run.mass_g - PLACEHOLDER_MASS_G) < 1e-12:
        warnings.append("active mass is 0.001 g, EC-Lab's placeholder: check --mass")
    return {
        "onsets": run.onsets(run.charges[0] if run.charges else None),
        "evolved": run.evolved(np.ones(run.t.size, bool)),
        "delay_s": float(result.attrs.get("transit_delay_s", np.nan)),
        "sensitivity": run.sensitivity(),
        "mass_g": run.mass_g if np.isfinite(run.mass_g) else None,
        "onset_method": method,
        "cycles": run.cycle_entries(),
        "half_cycles": run.half_cycle_entries(),
        "warnings": warnings,
    }


def _ratios(entry: dict[str, Any], z: Mapping[str, float] | None) -> dict[str, Any]:
    """Add mol gas per mol e⁻ (and a Faradaic efficiency when z is given)."""
    charge = entry["charge_C"]
    for gas, amount in entry["evolved"].items():
        umol = amount.get("umol")
        if umol is None or not np.isfinite(charge) or charge == 0:
            continue
        amount["mol_per_mol_electrons"] = umol * 1e-6 / (abs(charge) / FARADAY)
        if z and gas in z:
            amount["faradaic_efficiency"] = z[gas] * FARADAY * umol * 1e-6 / abs(charge)
    return entry
