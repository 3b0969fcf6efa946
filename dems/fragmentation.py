"""Electron-ionisation fragmentation patterns and the sensitivity matrix.

The built-in table holds 70 eV EI patterns (base peak = 100) of the gases met in
battery DEMS. Patterns are instrument-specific (electron energy, tuning): the
table is a default; measure patterns on your own instrument whenever possible
and pass them as ``patterns=``.

Sources
-------
* NIST Chemistry WebBook 70 eV EI spectra as shipped with EC_MS
  (``src/EC_MS/data/molecules/*.txt``, title ``NIST_16L14``): H2, CH4, H2O, CO, N2,
  C2H4, C2H6, O2, Ar, CO2.
* EC and DMC solvent markers: the masses are the channels Spectro Inlets' Zilien
  labels as solvent markers (``M29-EC/DMC``, ``M43-EC``, ``M88-EC``, ``M45-DMC``,
  ``M59-DMC``, ``M90-DMC``); their relative intensities are **approximate, not checked
  against a reference spectrum** (flag ``verified=False``) and must be measured on
  the instrument before quantifying solvent vapour.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import xarray as xr

__all__ = [
    "PATTERNS",
    "GasPattern",
    "pattern",
    "primary_mass",
    "sensitivity_matrix",
]


@dataclass(frozen=True)
class GasPattern:
    """Fragmentation pattern of one gas.

    Attributes
    ----------
    gas
        Formula or name, e.g. ``"CO2"``.
    peaks
        m/z (u) -> relative intensity (base peak = 100).
    source
        Where the numbers come from.
    verified
        ``False`` when the intensities are approximate (see module docstring).
    """

    gas: str
    peaks: Mapping[int, float]
    source: str
    verified: bool = True

    def fraction(self, mass: float) -> float:
        """Intensity at ``mass`` relative to the base peak (0 when absent)."""
        return float(self.peaks.get(round(mass), 0.0)) / 100.0


_NIST = "NIST WebBook 70 eV EI, as tabulated in EC_MS data/molecules (NIST_16L14)"
_SOLVENT = "marker masses from Zilien channel labels; intensities approximate [unverified]"

#: Built-in patterns, keyed by gas name.
PATTERNS: dict[str, GasPattern] = {
    p.gas: p
    for p in (
        GasPattern("H2", {2: 100.0, 1: 2.10}, _NIST),
        GasPattern("CH4", {16: 100.0, 15: 88.8, 14: 20.4, 13: 10.7, 12: 3.8}, _NIST),
        GasPattern("H2O", {18: 100.0, 17: 21.2, 16: 0.90, 19: 0.50, 20: 0.30}, _NIST),
        GasPattern("CO", {28: 100.0, 12: 4.70, 16: 1.70, 29: 1.20}, _NIST),
        GasPattern("N2", {28: 100.0, 14: 13.8, 29: 0.74}, _NIST),
        GasPattern(
            "C2H4", {28: 100.0, 27: 62.4, 26: 53.0, 25: 7.8, 24: 2.3, 29: 2.3, 14: 2.1}, _NIST
        ),
        GasPattern("C2H6", {28: 100.0, 27: 33.2, 30: 26.2, 26: 23.2, 29: 21.5}, _NIST),
        GasPattern("O2", {32: 100.0, 16: 21.8}, _NIST),
        GasPattern("Ar", {40: 100.0, 20: 14.6, 36: 0.30, 38: 0.05}, _NIST),
        GasPattern(
            "CO2",
            {44: 100.0, 28: 9.81, 16: 9.61, 12: 8.71, 22: 1.90, 45: 1.20, 46: 0.40, 29: 0.10},
            _NIST,
        ),
        GasPattern("EC", {29: 100.0, 43: 60.0, 44: 60.0, 88: 50.0}, _SOLVENT, verified=False),
        GasPattern("DMC", {45: 100.0, 29: 40.0, 59: 25.0, 90: 10.0}, _SOLVENT, verified=False),
    )
}


def pattern(gas: str, patterns: Mapping[str, GasPattern] | None = None) -> GasPattern:
    """Return the pattern of ``gas`` (KeyError naming the known gases if absent)."""
    table = PATTERNS if patterns is None else patterns
    try:
        return table[gas]
    except KeyError:
        raise KeyError(f"no fragmentation pattern for {gas!r}; known: {sorted(table)}") from None


def primary_mass(gas: str, patterns: Mapping[str, GasPattern] | None = None) -> int:
    """Return the base-peak m/z of ``gas``."""
    peaks = pattern(gas, patterns).peaks
    return int(max(peaks, key=lambda m: peaks[m]))


def sensitivity_matrix(
    factors: Mapping[str, Mapping[float, float]],
    masses: Iterable[float],
    patterns: Mapping[str, GasPattern] | None = None,
) -> xr.DataArray:
    """Sensitivity matrix ``F(mass, gas)`` in C/mol for the deconvolution.

    Calibrated factors are used as they are; a mass of a gas's pattern that was not
    calibrated gets ``F_ref · p_M / p_ref`` from the calibrated mass with the largest
    factor (methods.md §A2). Masses outside a gas's pattern get 0.

    Parameters
    ----------
    factors
        gas -> {m/z: F in C/mol}, at least one mass per gas.
    masses
        m/z (u) of the rows (the channels used).
    patterns
        Fragmentation table (default :data:`PATTERNS`).

    Returns
    -------
    xarray.DataArray
        ``(mass, gas)`` float64, units ``C/mol``.
    """
    mass_list = [float(m) for m in masses]
    gases = list(factors)
    matrix = np.zeros((len(mass_list), len(gases)))
    for j, gas in enumerate(gases):
        calibrated = {float(m): float(f) for m, f in factors[gas].items()}
        ref_mass = max(calibrated, key=lambda m: calibrated[m])
        gas_pattern = pattern(gas, patterns)
        ref_fraction = gas_pattern.fraction(ref_mass)
        for i, mass in enumerate(mass_list):
            if mass in calibrated:
                matrix[i, j] = calibrated[mass]
            elif ref_fraction > 0:
                matrix[i, j] = calibrated[ref_mass] * gas_pattern.fraction(mass) / ref_fraction
    return xr.DataArray(
        matrix,
        dims=("mass", "gas"),
        coords={"mass": mass_list, "gas": gases},
        attrs={"units": "C/mol", "long_name": "sensitivity factor"},
    )
