"""Numbers as people read them: a value with its uncertainty, never ``-0.0``.

Shared by the views of both domains, the console lines of the commands, the batch index and
the demo table, so one number reads the same everywhere.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["MISSING", "finite", "format_uncertain", "format_value"]

#: Shown for a value that was not determined.
MISSING = "—"


def finite(value: Any) -> bool:
    """Say whether ``value`` is a real, finite number (not ``None``, NaN, ±inf, bool, str)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def format_value(value: Any, digits: int, missing: str = MISSING) -> str:
    """``value`` with ``digits`` decimals; ``missing`` when undetermined; ``0.0``, not ``-0.0``."""
    if not finite(value):
        return missing
    text = f"{float(value):.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def format_uncertain(
    value: Any, uncertainty: Any, digits: int, unit: str = "", missing: str = MISSING
) -> str:
    """``"4.391 ± 0.002 V"``: a value with its standard uncertainty and unit.

    Parameters
    ----------
    value, uncertainty
        The number and its standard uncertainty (``None``/NaN uncertainty: value alone).
    digits
        Decimals of both.
    unit
        Appended after a space when given (not after ``missing``).
    missing
        Text for an undetermined value.
    """
    if not finite(value):
        return missing
    text = format_value(value, digits)
    if finite(uncertainty):
        text += f" ± {format_value(abs(float(uncertainty)), digits)}"
    return f"{text} {unit}" if unit else text
