"""TOF-SIMS readers: one module per format, each also an xarray backend.

Every reader module defines ``FORMAT`` (display name), ``can_open(path, head)``
(content sniffing on the first bytes) and ``read(path, **options) -> Dataset``.
:func:`open_tofsims` dispatches on content.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import Any

import xarray as xr

from tofsims.errors import TofsimsReadError

__all__ = ["READER_MODULES", "detect_format", "open_tofsims"]

#: Reader modules in sniffing order (most specific magic first).
READER_MODULES: tuple[str, ...] = (
    "imzml",
    "bif6",
    "grd",
    "surfacelab",
    "ascii3d",
)

HEAD_BYTES = 8192


def _available_modules() -> list[ModuleType]:
    modules = []
    for name in READER_MODULES:
        try:
            modules.append(importlib.import_module(f"tofsims.io.{name}"))
        except ModuleNotFoundError as err:
            if err.name != f"tofsims.io.{name}":
                raise
    return modules


def detect_format(path: str | os.PathLike[str]) -> ModuleType:
    """Return the reader module able to open ``path``, judged by its content."""
    if not os.path.exists(path):
        raise TofsimsReadError(path, "no such file")
    if os.path.isfile(path) and os.path.getsize(path) == 0:
        raise TofsimsReadError(path, "file is empty")
    head = b""
    if os.path.isfile(path):
        with open(path, "rb") as handle:
            head = handle.read(HEAD_BYTES)
    for module in _available_modules():
        if module.can_open(path, head):
            return module
    names = ", ".join(m.FORMAT for m in _available_modules())
    raise TofsimsReadError(path, f"not a recognised TOF-SIMS file (known formats: {names})")


def open_tofsims(path: str | os.PathLike[str], **options: Any) -> xr.Dataset:
    """Open any supported TOF-SIMS file; see ``docs/conventions.md`` for the result."""
    return detect_format(path).read(path, **options)
