"""Decimal separators and encodings of vendor text files.

The separator follows the Windows locale of the acquisition PC, never the
locale of the machine reading the file, so it is detected per file.
"""

from __future__ import annotations

import os
import re

import pandas as pd

from dems.errors import DemsReadError

__all__ = ["FLOAT_PRECISION", "detect_decimal", "reject_nul_bytes", "to_float"]

#: ``float_precision`` for ``pandas.read_csv``: pandas 2's default C parser can be one ulp
#: off on 16-17 digit numbers (EC-Lab writes ``1.459807941538230E-002``); its
#: ``"round_trip"`` parser is exact. pandas 3 parses exactly with its faster default. pandas 2
#: is what the ``[mpr]``/test extras install (yadg 7 requires pandas < 3).
FLOAT_PRECISION = "round_trip" if int(pd.__version__.split(".")[0]) < 3 else None

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


def reject_nul_bytes(path: str | os.PathLike[str], chunk: int = 1 << 22) -> None:
    """Raise a :class:`DemsReadError` naming the line of the first NUL byte in a text file.

    pandas 2's C parser ends a number at a NUL byte and drops the rest of the field, so
    ``1e-11<NUL>junk`` would read as ``1e-11``; pandas 3 rejects it. Text exports never hold
    NUL bytes, so one is corruption, checked before parsing whatever the pandas version.
    """
    lines_before = 0
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            nul = block.find(b"\x00")
            if nul >= 0:
                line = lines_before + block.count(b"\n", 0, nul) + 1
                raise DemsReadError(path, "NUL byte in the data (corrupt file)", line)
            lines_before += block.count(b"\n")
