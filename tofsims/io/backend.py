"""Plumbing shared by the TOF-SIMS xarray backends: provenance and content sniffing.

Mirrors :mod:`dems.io.backend` (the two domains never import each other). Every reader module
in :mod:`tofsims.io` defines ``FORMAT``, ``can_open(path, head)``, ``read(path, **options)``
and a :class:`xarray.backends.BackendEntrypoint` subclass registered under the
``xarray.backends`` entry-point group.
"""

from __future__ import annotations

import json
import os
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["HEAD_BYTES", "header_json", "provenance", "read_head", "sniff"]

HEAD_BYTES = 8192


def package_version() -> str:
    """Installed version of the ``operando`` distribution (``"unknown"`` if not installed)."""
    try:
        return metadata.version("operando")
    except metadata.PackageNotFoundError:
        return "unknown"


def read_head(path: str | os.PathLike[str], size: int = HEAD_BYTES) -> bytes:
    """Return the first ``size`` bytes of a regular file (``b""`` for directories)."""
    if not os.path.isfile(path):
        return b""
    with open(path, "rb") as handle:
        return handle.read(size)


def sniff(can_open: Any, filename_or_obj: Any) -> bool:
    """``guess_can_open`` helper: call a reader's ``can_open`` on a path, never raise."""
    if not isinstance(filename_or_obj, str | os.PathLike):
        return False
    try:
        return bool(can_open(filename_or_obj, read_head(filename_or_obj)))
    except OSError:
        return False


def provenance(path: str | os.PathLike[str], reader: str, fmt: str) -> dict[str, Any]:
    """Attributes recording where a dataset came from.

    Parameters
    ----------
    path
        Source file (or folder, for multi-file exports).
    reader
        Dotted name of the reader function.
    fmt
        Human-readable format name, e.g. ``"IONTOF SurfaceLab ASCII depth profile"``.
    """
    return {
        "source_file": str(Path(path).resolve()),
        "format": fmt,
        "reader": reader,
        "reader_version": package_version(),
    }


def header_json(header: Any) -> str:
    """Serialise a raw header for an attribute (netCDF/Zarr attrs cannot hold dicts)."""
    return json.dumps(header, ensure_ascii=False, default=str)
