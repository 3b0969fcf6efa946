"""Calibration results on disk: a small JSON document reusable with ``--calibration``.

Layout (``format = "operando-dems-calibration"``, ``version = 1``)::

    {"format": ..., "version": 1, "created": ISO-8601, "source_file": ..., "steps_file": ...,
     "method": "gas steps" | "faradaic", "carrier": "Ar",
     "sensitivity": {"CO2": {"44": {"F_C_per_mol": 0.31, "F_stderr_C_per_mol": ...,
                                    "intercept": ...,
                                    "r2": ..., "n_steps": 4, "method": ...}, "28": {...}}, ...},
     "delay_s": 12.4, "delay_spread_s": 0.2, "response_time_s": 6.1, "transitions": [...]}

Non-finite numbers are written as ``null`` (``operando dems calibrate`` writes the file).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from typing import Any

from dems.errors import CalibrationError

__all__ = ["FORMAT", "read_calibration", "sensitivity_factors"]

FORMAT = "operando-dems-calibration"


def read_calibration(path: str | os.PathLike[str]) -> dict[str, Any]:
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
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise CalibrationError(f"{name}: not an operando calibration (format != {FORMAT!r})")
    if not sensitivity_factors(document):
        raise CalibrationError(f"{name}: holds no positive sensitivity factor")
    return document


def sensitivity_factors(calibration: Mapping[str, Any]) -> dict[str, dict[float, float]]:
    """Gas -> {m/z: F (C/mol)} for every finite, positive factor of a calibration."""
    factors: dict[str, dict[float, float]] = {}
    for gas, masses in (calibration.get("sensitivity") or {}).items():
        for mass, entry in (masses or {}).items():
            value = entry.get("F_C_per_mol") if isinstance(entry, dict) else entry
            if isinstance(value, int | float) and math.isfinite(value) and value > 0:
                factors.setdefault(gas, {})[float(mass)] = float(value)
    return factors
