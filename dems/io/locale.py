"""Decimal separators and encodings of vendor text files.

The separator follows the Windows locale of the acquisition PC, never the
locale of the machine reading the file, so it is detected per file.
"""

from __future__ import annotations

import re

__all__ = ["detect_decimal", "to_float"]

_COMMA_NUMBER = re.compile(r"(?<![\d,.])-?\d+,\d+(?:[eE][-+]?\d+)?(?![\d,])")
_POINT_NUMBER = re.compile(r"(?<![\d,.])-?\d+\.\d+(?:[eE][-+]?\d+)?(?![\d.])")


def detect_decimal(lines: list[str], sep: str = "\t") -> str:
    """Guess the decimal separator (``","`` or ``"."``) from a few data lines.

    Parameters
    ----------
    lines
        Data lines (not headers) of the file.
    sep
        Field separator; fields are inspected one by one so a comma field
        separator is not mistaken for a decimal comma.

    Returns
    -------
    str
        ``","`` when decimal-comma numbers outnumber decimal-point numbers, else ``"."``.
    """
    comma = point = 0
    for line in lines:
        for field in line.split(sep):
            field = field.strip()
            if _COMMA_NUMBER.fullmatch(field):
                comma += 1
            elif _POINT_NUMBER.fullmatch(field):
                point += 1
    return "," if comma > point else "."


def to_float(text: str, decimal: str = ".") -> float:
    """Parse one number written with the given decimal separator."""
    text = text.strip()
    if decimal == ",":
        text = text.replace(",", ".")
    return float(text)
