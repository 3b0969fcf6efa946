"""DEMS readers: one module per vendor format, each also an xarray backend.

:func:`detect_format` sniffs a file's content (not only its extension) with every reader
registered as a ``dems_*`` xarray engine (:func:`readers`, in sniffing order) and
:func:`open_ms` / :func:`open_ec` dispatch to the matching reader.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any

import xarray as xr

from dems.errors import DemsReadError
from operando_core.readers import detect, read_head, reader_modules

__all__ = ["detect_format", "open_ec", "open_ms", "readers"]


def readers() -> tuple[ModuleType, ...]:
    """Reader modules of the ``dems_*`` xarray engines, in sniffing order."""
    return reader_modules("dems_")


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
    module = detect(path, "dems_")
    if module is not None:
        return module
    if b"\x00" in read_head(path):
        raise DemsReadError(path, "binary content that is not a known DEMS format")
    names = ", ".join(m.FORMAT for m in readers())
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
