"""The gas-calibration steps file (TOML) and its validation.

Accepted keys (see ``docs/methods.md``, DEMS calibration)::

    carrier = "Ar"
    total_flow_mol_per_s = 7.436e-07   # or total_flow_sccm = 1.0 (101325 Pa and ...)
    flow_reference_C = 0.0             # ... the controller's reference temperature (°C);
                                       # optional, 0 °C is assumed when not stated
    plateau_fraction = 0.5             # optional: last fraction of each step averaged
    [[step]]
    start_s = 597.0    # valve switch, s since the first sample of the calibration file
    end_s = 1201.6
    mole_fraction = { CO2 = 0.0005, O2 = 0.0 }
    # optional per step: total_flow_mol_per_s / total_flow_sccm, plateau_start_s

Steps whose mole fractions are all zero (baseline, purge) are valid: they anchor
the intercept (background) of the fit.
"""

from __future__ import annotations

import itertools
import math
import os
import tomllib
from dataclasses import dataclass, field
from typing import Any

from dems.errors import CalibrationError
from dems.fragmentation import PATTERNS

__all__ = [
    "SCCM_MOL_PER_S",
    "CalibrationStep",
    "CalibrationSteps",
    "parse_steps",
    "read_steps",
    "sccm_mol_per_s",
]

#: 1 sccm in mol/s at the standard reference 273.15 K and 101325 Pa (ideal gas).
SCCM_MOL_PER_S = 101325.0 * 1e-6 / (8.314462618 * 273.15) / 60.0
#: Range of a total flow (mol/s): 10⁻⁶ sccm to 10 standard litres per minute. A DEMS inlet
#: takes 0.1–100 sccm; a value outside is a typing or unit mistake.
FLOW_RANGE_MOL_PER_S = (1e-6 * SCCM_MOL_PER_S, 1e4 * SCCM_MOL_PER_S)
#: Largest step time (s since the first sample): about 32 years.
MAX_STEP_TIME_S = 1e9


def sccm_mol_per_s(reference_C: float = 0.0) -> float:
    """1 sccm in mol/s for a flow controller whose standard is 101325 Pa and ``reference_C`` °C."""
    return SCCM_MOL_PER_S * 273.15 / (273.15 + reference_C)


@dataclass(frozen=True)
class CalibrationStep:
    """One gas step: valve switch at ``start_s``, until ``end_s`` (s, file-relative)."""

    start_s: float
    end_s: float
    mole_fraction: dict[str, float]
    total_flow_mol_per_s: float
    plateau_start_s: float | None = None

    def flux_mol_per_s(self, gas: str) -> float:
        """Molar flux of ``gas`` into the inlet during this step (mol/s)."""
        return self.mole_fraction.get(gas, 0.0) * self.total_flow_mol_per_s


@dataclass(frozen=True)
class CalibrationSteps:
    """A parsed, validated steps file."""

    carrier: str
    steps: list[CalibrationStep]
    plateau_fraction: float = 0.5
    source: str = "<memory>"
    extra: dict[str, Any] = field(default_factory=dict)
    #: flows given in sccm anywhere in the file
    flow_in_sccm: bool = False
    #: reference temperature of the sccm flows (°C); None: not stated (0 °C assumed)
    flow_reference_C: float | None = None

    @property
    def gases(self) -> list[str]:
        """Gases with a non-zero mole fraction in at least one step (file order)."""
        names: list[str] = []
        for step in self.steps:
            for gas, x in step.mole_fraction.items():
                if x > 0 and gas not in names:
                    names.append(gas)
        return names

    def plateau(self, step: CalibrationStep) -> tuple[float, float]:
        """Window (s, file-relative) averaged as the step's steady level."""
        if step.plateau_start_s is not None:
            return step.plateau_start_s, step.end_s
        return step.end_s - self.plateau_fraction * (step.end_s - step.start_s), step.end_s


def _number(where: str, table: dict[str, Any], key: str) -> float | None:
    if key not in table:
        return None
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise CalibrationError(f"{where}: {key} must be a finite number, got {value!r}")
    return float(value)


def _flow(
    where: str, table: dict[str, Any], default: float | None, sccm_unit: float = SCCM_MOL_PER_S
) -> float | None:
    mol = _number(where, table, "total_flow_mol_per_s")
    sccm = _number(where, table, "total_flow_sccm")
    if mol is not None and sccm is not None:
        raise CalibrationError(f"{where}: give total_flow_mol_per_s or total_flow_sccm, not both")
    flow = mol if mol is not None else (sccm * sccm_unit if sccm is not None else default)
    if flow is not None and flow <= 0:
        raise CalibrationError(f"{where}: the total flow must be positive, got {flow!r}")
    low, high = FLOW_RANGE_MOL_PER_S
    if flow is not None and not low <= flow <= high:
        key = "total_flow_mol_per_s" if mol is not None else "total_flow_sccm"
        raise CalibrationError(
            f"{where}: {key} gives {flow:.4g} mol/s, outside {low:.3g}–{high:.3g} mol/s "
            f"({low / SCCM_MOL_PER_S:g}–{high / SCCM_MOL_PER_S:g} sccm): check the value and unit"
        )
    return flow


def _step(
    source: str, index: int, table: Any, default_flow: float | None, sccm_unit: float
) -> CalibrationStep:
    where = f"{source}: step {index}"
    if not isinstance(table, dict):
        raise CalibrationError(f"{where}: must be a table ([[step]])")
    start, end = _number(where, table, "start_s"), _number(where, table, "end_s")
    if start is None or end is None:
        raise CalibrationError(f"{where}: start_s and end_s are required")
    if end <= start:
        raise CalibrationError(f"{where}: end_s ({end:g}) must be after start_s ({start:g})")
    if max(abs(start), abs(end)) > MAX_STEP_TIME_S:
        raise CalibrationError(f"{where}: start_s/end_s must lie within ±{MAX_STEP_TIME_S:g} s")
    fractions = table.get("mole_fraction")
    if not isinstance(fractions, dict):
        raise CalibrationError(f"{where}: mole_fraction = {{ GAS = x, ... }} is required")
    clean: dict[str, float] = {}
    for gas, x in fractions.items():
        if gas not in PATTERNS:
            raise CalibrationError(
                f"{where}: mole_fraction: no fragmentation pattern for {gas!r} "
                f"(known: {', '.join(sorted(PATTERNS))})"
            )
        value = _number(where, {gas: x}, gas)
        if value is None or not 0.0 <= value <= 1.0:
            raise CalibrationError(f"{where}: mole fraction of {gas} must be in 0–1, got {x!r}")
        clean[str(gas)] = value
    if sum(clean.values()) > 1.0 + 1e-9:
        raise CalibrationError(f"{where}: mole fractions sum to {sum(clean.values()):g} > 1")
    flow = _flow(where, table, default_flow, sccm_unit)
    if flow is None:
        raise CalibrationError(f"{where}: no total flow (set total_flow_mol_per_s at top level)")
    plateau = _number(where, table, "plateau_start_s")
    if plateau is not None and not start <= plateau < end:
        raise CalibrationError(f"{where}: plateau_start_s must lie inside the step")
    return CalibrationStep(start, end, clean, flow, plateau)


def parse_steps(document: dict[str, Any], source: str = "<memory>") -> CalibrationSteps:
    """Validate a steps document (the dictionary ``tomllib`` returns).

    Raises
    ------
    CalibrationError
        No steps, non-positive flow, mole fractions outside 0–1, overlapping or
        inverted windows, no gas with a non-zero mole fraction.
    """
    reference = _number(source, document, "flow_reference_C")
    if reference is not None and not -50.0 <= reference <= 50.0:
        raise CalibrationError(
            f"{source}: flow_reference_C must be in -50–50 °C, got {reference:g}"
        )
    sccm_unit = sccm_mol_per_s(reference or 0.0)
    flow = _flow(source, document, None, sccm_unit)
    steps_table = document.get("step", [])
    if not isinstance(steps_table, list) or not steps_table:
        raise CalibrationError(f"{source}: no [[step]] tables: nothing to calibrate")
    steps = [_step(source, i + 1, table, flow, sccm_unit) for i, table in enumerate(steps_table)]
    in_sccm = "total_flow_sccm" in document or any(
        isinstance(t, dict) and "total_flow_sccm" in t for t in steps_table
    )
    for i, (a, b) in enumerate(itertools.pairwise(steps), start=1):
        if b.start_s < a.end_s:
            raise CalibrationError(f"{source}: step {i + 1} starts before step {i} ends")
    fraction = _number(source, document, "plateau_fraction")
    fraction = 0.5 if fraction is None else fraction
    if not 0.0 < fraction <= 1.0:
        raise CalibrationError(f"{source}: plateau_fraction must be in (0, 1], got {fraction:g}")
    known = {"carrier", "total_flow_mol_per_s", "total_flow_sccm", "plateau_fraction", "step",
             "flow_reference_C"}  # fmt: skip
    carrier = document.get("carrier", "")
    if not isinstance(carrier, str):
        raise CalibrationError(f"{source}: carrier must be a gas name, got {carrier!r}")
    result = CalibrationSteps(
        carrier=carrier,
        steps=steps,
        plateau_fraction=fraction,
        source=source,
        extra={k: v for k, v in document.items() if k not in known},
        flow_in_sccm=in_sccm,
        flow_reference_C=reference,
    )
    if not result.gases:
        raise CalibrationError(f"{source}: every mole fraction is zero: no gas to calibrate")
    return result


def read_steps(path: str | os.PathLike[str]) -> CalibrationSteps:
    """Read and validate a steps TOML file (see module docstring for the keys)."""
    name = os.fspath(path)
    try:
        with open(path, "rb") as handle:
            document = tomllib.load(handle)
    except tomllib.TOMLDecodeError as err:
        raise CalibrationError(f"{name}: not valid TOML: {err}") from None
    except UnicodeDecodeError:
        raise CalibrationError(f"{name}: not a text (UTF-8 TOML) file") from None
    except RecursionError:
        raise CalibrationError(f"{name}: not valid TOML: nested too deeply") from None
    return parse_steps(document, source=name)
