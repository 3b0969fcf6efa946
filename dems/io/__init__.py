"""DEMS readers: one module per vendor format, each also an xarray backend.

:func:`detect_format` sniffs a file's content (not only its extension) and
:func:`open_ms` / :func:`open_ec` dispatch to the matching reader.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import Any

import xarray as xr

from dems.errors import DemsReadError
from dems.io.backend import read_head

__all__ = ["READER_MODULES", "detect_format", "open_ec", "open_ms", "reader_module"]

#: Reader modules in sniffing order (most specific magic first).
READER_MODULES: tuple[str, ...] = (
    "biologic",
    "zilien",
    "quadera",
    "pvmassspec",
    "ixdat_csv",
    "mpr",
    "generic_csv",
)


def reader_module(name: str) -> ModuleType:
    """Import ``dems.io.<name>``."""
    return importlib.import_module(f"dems.io.{name}")


def _available_modules() -> list[ModuleType]:
    modules = []
    for name in READER_MODULES:
        try:
            modules.append(reader_module(name))
        except ModuleNotFoundError as err:
            if err.name != f"dems.io.{name}":
                raise
    return modules


def detect_format(path: str | os.PathLike[str]) -> ModuleType:
    """Return the reader module able to open ``path``, judged by its content.

    Raises
    ------
    DemsReadError
        If the file is missing, empty, binary garbage or of no known DEMS format.
    """
    if not os.path.exists(path):
        raise DemsReadError(path, "no such file")
    if os.path.isdir(path):
        raise DemsReadError(path, "is a directory, not a file")
    if os.path.getsize(path) == 0:
        raise DemsReadError(path, "file is empty")
    head = read_head(path)
    for module in _available_modules():
        if module.can_open(path, head):
            return module
    if "\x00" in head:
        raise DemsReadError(path, "binary content that is not a known DEMS format")
    names = ", ".join(getattr(m, "FORMAT", m.__name__) for m in _available_modules())
    raise DemsReadError(path, f"not a recognised DEMS file (known formats: {names})", line=1)


def open_ms(path: str | os.PathLike[str], **options: Any) -> xr.Dataset:
    """Open a mass-spectrometer file of any supported format.

    Parameters
    ----------
    path
        QUADERA ``.asc``, PV MassSpec ``.dat``, Zilien ``.tsv``, ixdat or generic CSV.
    **options
        Passed to the reader (e.g. ``timezone="Europe/Berlin"``).

    Returns
    -------
    xarray.Dataset
        ``signal(channel, sample)`` with each channel's own ``time(channel, sample)``;
        see ``docs/conventions.md``.
    """
    module = detect_format(path)
    if not hasattr(module, "read_ms"):
        raise DemsReadError(
            path, f"is a {module.FORMAT} file, which holds no mass-spectrometer data"
        )
    return module.read_ms(path, **options)


def open_ec(path: str | os.PathLike[str], **options: Any) -> xr.Dataset:
    """Open a potentiostat file (EC-Lab ``.mpt``/``.mpr``, or the EC block of a Zilien file).

    Returns
    -------
    xarray.Dataset
        Columns on one ``time`` axis (s since ``start_time``), with the canonical
        ``potential`` (V) and ``current`` (mA); see ``docs/conventions.md``.
    """
    module = detect_format(path)
    if not hasattr(module, "read_ec"):
        raise DemsReadError(path, f"is a {module.FORMAT} file, which holds no potentiostat data")
    return module.read_ec(path, **options)
