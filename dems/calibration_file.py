"""A DEMS calibration: sensitivity factors and transit delay, and its JSON document.

Layout of the document (``format = "operando-dems-calibration"``, ``version = 1``), written by
``operando dems calibrate`` and read back with ``--calibration``::

    {"format": ..., "version": 1, "created": ISO-8601, "operando_version": ...,
     "source_file": ..., "steps_file": ..., "ms_start_time": ..., "total_flow_mol_per_s": [...],
     "method": "gas steps" | "faradaic", "carrier": "Ar",
     "sensitivity": {"CO2": {"44": {"F_C_per_mol": 0.31, "F_stderr_C_per_mol": ...,
                                    "intercept": ...,
                                    "r2": ..., "n_steps": 4, "method": ...}, "28": {...}}, ...},
     "delay_s": 12.4, "delay_spread_s": 0.2, "response_time_s": 6.1, "transitions": [...]}

A Faradaic calibration has ``ec_file`` instead of ``steps_file``/``total_flow_mol_per_s`` and
no ``carrier``. Non-finite numbers are written as ``null``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dems.errors import CalibrationError
from operando_core.readers import package_version

__all__ = ["FORMAT", "Calibration", "document_problem", "read_calibration", "sensitivity_factors"]

FORMAT = "operando-dems-calibration"
#: Largest m/z of a sensitivity factor.
MAX_MZ = 1000.0
#: Largest transit delay a calibration may hold (s).
MAX_DELAY_S = 3600.0
#: Fields of a sensitivity entry that must be numbers (or ``null``) when present.
_NUMERIC_ENTRY_KEYS = (
    "F_C_per_mol",
    "F_stderr_C_per_mol",
    "intercept",
    "r2",
    "n_steps",
    "charge_C",
    "signal_integral_C",
    "z",
)
#: Keys of the document that are fields of :class:`Calibration` (the rest are its sources).
_FIELDS = (
    "method",
    "carrier",
    "sensitivity",
    "delay_s",
    "delay_spread_s",
    "response_time_s",
    "transitions",
)


def created_now() -> str:
    """Return the current UTC time as ISO-8601 (seconds): when a result was made."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Calibration:
    """Sensitivity factors and transit delay of a DEMS set-up.

    Made by :func:`dems.workflows.calibrate` (gas steps) or
    :func:`dems.workflows.calibrate_faradaic`, read by :func:`read_calibration`;
    :meth:`to_document` is the JSON document of ``operando dems calibrate``.

    Attributes
    ----------
    method
        ``"gas steps"`` or ``"faradaic"``.
    sensitivity
        Gas -> ``"<m/z>"`` -> fit entry: ``F_C_per_mol`` (C/mol), ``F_stderr_C_per_mol``,
        ``intercept`` (A), ``r2``, ``n_steps``, ``method`` (Faradaic: ``charge_C``,
        ``signal_integral_C``, ``z``, windows).
    delay_s, delay_spread_s, response_time_s
        Transit delay valve -> 50 % of the change (median over transitions, s), its standard
        deviation (s) and the median 10–90 % rise time (s); NaN when not measured.
    transitions
        One entry per measured step change (gas, m/z, times, delay, rise time).
    carrier
        Carrier gas of a gas-step calibration.
    sources
        Where it came from: ``source_file``, ``steps_file`` or ``ec_file``, ``ms_start_time``,
        ``total_flow_mol_per_s`` (document order), and for gas steps ``flow_in_sccm`` and
        ``flow_reference_C`` (the flow controller's reference temperature, None if not
        stated) for the calibration transfer (:mod:`dems.uncertainty`).
    created, operando_version
        When and by which operando version it was made.
    path
        The file it was read from (not part of the document).
    """

    method: str
    sensitivity: Mapping[str, Mapping[str, Mapping[str, Any]]]
    delay_s: float = math.nan
    delay_spread_s: float = math.nan
    response_time_s: float = math.nan
    transitions: list[dict[str, Any]] = field(default_factory=list)
    carrier: str | None = None
    sources: Mapping[str, Any] = field(default_factory=dict)
    created: str = field(default_factory=created_now)
    operando_version: str = field(default_factory=package_version)
    path: str | None = field(default=None, compare=False)

    def to_document(self) -> dict[str, Any]:
        """Return the JSON document (:data:`FORMAT`, version 1); NaN is written as null."""
        document = {
            "format": FORMAT,
            "version": 1,
            "created": self.created,
            "operando_version": self.operando_version,
            **self.sources,
            "method": self.method,
        }
        if self.carrier is not None:
            document["carrier"] = self.carrier
        return document | {
            "sensitivity": self.sensitivity,
            "delay_s": self.delay_s,
            "delay_spread_s": self.delay_spread_s,
            "response_time_s": self.response_time_s,
            "transitions": self.transitions,
        }

    @classmethod
    def from_document(cls, document: Mapping[str, Any], path: str | None = None) -> Calibration:
        """Rebuild a calibration from its JSON document (``null`` numbers become NaN)."""

        def number(key: str) -> float:
            value = document.get(key)
            return float(value) if isinstance(value, int | float) else math.nan

        skip = {*_FIELDS, "format", "version", "created", "operando_version"}
        return cls(
            method=str(document.get("method", "")),
            sensitivity=document.get("sensitivity") or {},
            delay_s=number("delay_s"),
            delay_spread_s=number("delay_spread_s"),
            response_time_s=number("response_time_s"),
            transitions=list(document.get("transitions") or []),
            carrier=document.get("carrier"),
            sources={k: v for k, v in document.items() if k not in skip},
            created=str(document.get("created", "")),
            operando_version=str(document.get("operando_version", "")),
            path=path,
        )

    def factors(self) -> dict[str, dict[float, float]]:
        """Gas -> {m/z: F (C/mol)} for every finite, positive factor."""
        return sensitivity_factors(self)

    def relative_uncertainty(self, gas: str, mass: float) -> float:
        """Return standard error / F of one factor (0 when its standard error is unknown)."""
        entry = self.sensitivity.get(gas, {}).get(f"{mass:g}", {})
        stderr = entry.get("F_stderr_C_per_mol") if isinstance(entry, Mapping) else None
        return float(stderr) / self.factors()[gas][mass] if stderr else 0.0


def read_calibration(path: str | os.PathLike[str]) -> Calibration:
    """Read a calibration JSON written by ``operando dems calibrate``.

    Raises
    ------
    CalibrationError
        Not JSON, not a calibration document, or no finite positive factor.
    """
    name = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CalibrationError(f"{name}: not a calibration JSON file ({err})") from None
    except RecursionError:
        raise CalibrationError(f"{name}: not a calibration JSON file (nested too deeply)") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise CalibrationError(f"{name}: not an operando calibration (format != {FORMAT!r})")
    if problem := document_problem(document):
        raise CalibrationError(f"{name}: {problem}")
    calibration = Calibration.from_document(document, path=str(Path(path).resolve()))
    if not calibration.factors():
        raise CalibrationError(f"{name}: holds no positive sensitivity factor")
    return calibration


def _is_number(value: Any) -> bool:
    """Tell a JSON number Python can use as a float (``null`` counts: NaN = not determined)."""
    if value is None:
        return True
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        float(value)
    except OverflowError:  # an integer beyond the float range
        return False
    return True


def _mass_problem(key: str) -> str | None:
    try:
        mass = float(key)
    except ValueError:
        return "the m/z key is not a number"
    return None if 0 < mass <= MAX_MZ else f"m/z must be in (0, {MAX_MZ:g}]"


def _entry_problem(entry: Any) -> str | None:
    if not isinstance(entry, Mapping):
        return None if _is_number(entry) else "expected a number or a table with F_C_per_mol"
    if "F_C_per_mol" not in entry:
        return "F_C_per_mol is missing"
    for key in _NUMERIC_ENTRY_KEYS:
        if not _is_number(entry.get(key)):
            return f"{key} is not a number ({_shown(entry[key])})"
    return None


def _shown(value: Any) -> str:
    """``repr`` of a value, shortened for a one-line message."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _sensitivity_problem(sensitivity: Any) -> str | None:
    from dems.fragmentation import PATTERNS

    if not isinstance(sensitivity, Mapping):
        return "sensitivity must be a table {gas: {m/z: {F_C_per_mol: ...}}}"
    for gas, masses in sensitivity.items():
        if gas not in PATTERNS:
            return f"sensitivity.{gas}: no fragmentation pattern (known: {', '.join(PATTERNS)})"
        if not isinstance(masses, Mapping):
            return f"sensitivity.{gas}: must be a table {{m/z: {{F_C_per_mol: ...}}}}"
        for mass, entry in masses.items():
            if problem := _mass_problem(mass) or _entry_problem(entry):
                return f"sensitivity.{gas}.{mass}: {problem}"
    return None


def document_problem(document: Mapping[str, Any]) -> str | None:
    """Say what is wrong with a calibration document (``None``: usable), naming the key.

    Checks the types :meth:`Calibration.from_document` relies on: the version, the
    ``sensitivity`` tables (known gases, numeric m/z and factors), numbers that are numbers,
    a transit delay within 0–:data:`MAX_DELAY_S` s, ``transitions`` a list of tables.
    """
    if document.get("version", 1) != 1:
        return f"version {document.get('version')!r} is not supported (expected 1)"
    if problem := _sensitivity_problem(document.get("sensitivity")):
        return problem
    for key in ("delay_s", "delay_spread_s", "response_time_s"):
        if not _is_number(document.get(key)):
            return f"{key}: not a number ({_shown(document.get(key))})"
    delay = document.get("delay_s")
    if delay is not None and math.isfinite(delay) and not 0 <= delay <= MAX_DELAY_S:
        return f"delay_s = {delay:.6g} s is outside 0–{MAX_DELAY_S:g} s"
    transitions = document.get("transitions", [])
    if not isinstance(transitions, list) or not all(isinstance(t, Mapping) for t in transitions):
        return "transitions must be a list of tables"
    for key in ("method", "carrier"):
        if key in document and not isinstance(document[key], str):
            return f"{key} must be a string, got {_shown(document[key])}"
    return None


def sensitivity_factors(
    calibration: Calibration | Mapping[str, Any],
) -> dict[str, dict[float, float]]:
    """Gas -> {m/z: F (C/mol)} for every finite, positive factor of a calibration.

    ``calibration`` is a :class:`Calibration` or its JSON document.
    """
    sensitivity = (
        calibration.sensitivity
        if isinstance(calibration, Calibration)
        else calibration.get("sensitivity")
    )
    factors: dict[str, dict[float, float]] = {}
    for gas, masses in (sensitivity or {}).items():
        for mass, entry in (masses or {}).items():
            value = entry.get("F_C_per_mol") if isinstance(entry, Mapping) else entry
            if isinstance(value, int | float) and math.isfinite(value) and value > 0:
                factors.setdefault(gas, {})[float(mass)] = float(value)
    return factors
