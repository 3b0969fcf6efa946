"""The JSON summary of a processed DEMS run: onsets, evolved amounts, per cycle.

Works on a *computed* result of :func:`dems.process.quantify_run` (this is where
the numbers are produced). Keys are documented in ``docs/cli.md``; the top-level
``onsets``, ``evolved``, ``delay_s``, ``sensitivity`` and ``cycles`` are a contract.
A number that cannot be determined is ``None`` with a ``reason`` beside it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
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


def _amount(t: np.ndarray, flux: np.ndarray, sel: np.ndarray, mass_g: float) -> dict[str, Any]:
    ok = sel & np.isfinite(flux)
    if ok.sum() < 2:
        return {"umol": None, "umol_per_g": None, "reason": "no valid samples"}
    umol = float(np.trapezoid(flux[ok], t[ok])) * 1e6
    out: dict[str, Any] = {"umol": umol, "coverage": float(ok.sum() / max(sel.sum(), 1))}
    if np.isfinite(mass_g) and mass_g > 0:
        out["umol_per_g"] = umol / mass_g
    else:
        out["umol_per_g"] = None
        out["reason"] = "active mass unknown: give --mass"
    return out


def _charge_C(t: np.ndarray, current_mA: np.ndarray, sel: np.ndarray) -> float:
    ok = sel & np.isfinite(current_mA)
    return float(np.trapezoid(current_mA[ok] * 1e-3, t[ok])) if ok.sum() > 1 else float("nan")


def _onset(t, potential, values, sel, options) -> dict[str, Any]:
    index = np.flatnonzero(sel)
    if index.size < 10:
        return {
            "potential_V": None,
            "uncertainty_V": None,
            "method": options.get("method"),
            "reason": "half-cycle too short",
        }
    t_h = t[index]
    baseline = t_h <= t_h[0] + options.pop("baseline_fraction") * (t_h[-1] - t_h[0])
    return detect_onset(t_h, potential[index], values[index], baseline, **options)


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
    """Summary of a computed DEMS result.

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
        ``onsets``, ``evolved``, ``delay_s``, ``sensitivity``, ``mass_g``,
        ``cycles``, ``half_cycles``, ``onset_method``, ``warnings``.
    """
    t = np.asarray(result["time"].values, float)
    potential = np.asarray(result["potential"].values, float)
    current = np.asarray(result["current"].values, float)
    half = np.nan_to_num(np.asarray(result["half_cycle"].values, float), nan=-1).astype(int)
    direction = np.nan_to_num(np.asarray(result["direction"].values, float)).astype(int)
    cycle = (
        np.nan_to_num(np.asarray(result["cycle"].values, float), nan=-1).astype(int)
        if "cycle" in result
        else np.where(half >= 0, 1, -1)
    )
    mass_g = float(result.attrs.get("mass_g", np.nan))
    gases = list(gases or json.loads(result.attrs.get("gases_json", "[]")))
    series = {g: _series(result, g) for g in gases}
    options = {
        "method": method,
        "k": k,
        "persistence": persistence,
        "baseline_fraction": baseline_fraction,
        "delay_uncertainty_s": delay_uncertainty_s,
    }
    warnings = []
    if np.isfinite(mass_g) and abs(mass_g - PLACEHOLDER_MASS_G) < 1e-12:
        warnings.append("active mass is 0.001 g, EC-Lab's placeholder: check --mass")
    charges = [h for h in np.unique(half[half >= 0]) if np.any((half == h) & (direction == 1))]

    def onsets_for(h: int) -> dict[str, Any]:
        sel = half == h
        out = {}
        for gas, (values, units) in series.items():
            out[gas] = _onset(t, potential, values, sel, dict(options))
            out[gas]["signal_units"] = units
        return out

    def evolved_for(sel: np.ndarray) -> dict[str, Any]:
        if "flux" not in result:
            return {
                g: {"umol": None, "umol_per_g": None, "reason": "no calibration"} for g in gases
            }
        return {g: _amount(t, series[g][0], sel, mass_g) for g in gases}

    half_cycles = []
    for h in np.unique(half[half >= 0]):
        sel = half == h
        entry = {
            "half_cycle": int(h),
            "direction": "charge" if direction[sel][0] == 1 else "discharge",
            "cycle": int(np.bincount(cycle[sel][cycle[sel] >= 0]).argmax())
            if (cycle[sel] >= 0).any()
            else None,
            "start_s": float(t[sel][0]),
            "end_s": float(t[sel][-1]),
            "charge_C": _charge_C(t, current, sel),
            "evolved": evolved_for(sel),
        }
        _ratios(entry, z)
        half_cycles.append(entry)
    cycles = []
    for c in np.unique(cycle[cycle >= 0]):
        sel = cycle == c
        first_charge = next((h for h in charges if np.any((half == h) & sel)), None)
        entry = {
            "cycle": int(c),
            "onsets": onsets_for(first_charge) if first_charge is not None else {},
            "evolved": evolved_for(sel),
            "charge_C": _charge_C(t, current, sel & (current > 0)),
        }
        _ratios(entry, z)
        cycles.append(entry)
    first = (
        onsets_for(charges[0])
        if charges
        else {
            g: {
                "potential_V": None,
                "uncertainty_V": None,
                "method": method,
                "reason": "no charge half-cycle",
            }
            for g in gases
        }
    )
    sensitivity = {}
    if "sensitivity" in result:
        matrix = result["sensitivity"]
        for gas in gases:
            column = matrix.sel(gas=gas)
            sensitivity[gas] = {
                f"{m:g}": float(v)
                for m, v in zip(column["mass"].values, column.values, strict=True)
                if v > 0
            }
    return {
        "onsets": first,
        "evolved": evolved_for(np.ones(t.size, bool)),
        "delay_s": float(result.attrs.get("transit_delay_s", np.nan)),
        "sensitivity": sensitivity,
        "mass_g": mass_g if np.isfinite(mass_g) else None,
        "onset_method": method,
        "cycles": cycles,
        "half_cycles": half_cycles,
        "warnings": warnings,
    }


def _ratios(entry: dict[str, Any], z: Mapping[str, float] | None) -> None:
    """Add mol gas per mol e⁻ (and a Faradaic efficiency when z is given)."""
    charge = entry["charge_C"]
    for gas, amount in entry["evolved"].items():
        umol = amount.get("umol")
        if umol is None or not np.isfinite(charge) or charge == 0:
            continue
        amount["mol_per_mol_electrons"] = umol * 1e-6 / (abs(charge) / FARADAY)
        if z and gas in z:
            amount["faradaic_efficiency"] = z[gas] * FARADAY * umol * 1e-6 / abs(charge)
