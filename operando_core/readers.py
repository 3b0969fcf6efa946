"""The reader registry: xarray backends found through their entry points, sniffed by content.

Every reader module of :mod:`dems.io` and :mod:`tofsims.io` defines ``FORMAT`` (display name),
``can_open(path, head: bytes) -> bool`` (content sniffing on the first :data:`HEAD_BYTES` of the
file) and an :class:`xarray.backends.BackendEntrypoint` subclass registered under the
``xarray.backends`` entry-point group with a ``sniff_order`` (smaller: tried first, so the most
specific magic comes before a generic fallback). The entry points are the one list of readers:
:func:`reader_modules` returns the modules of a domain's engines (``dems_*``, ``tofsims_*``)
in sniffing order, :func:`detect` the first that accepts a file.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = [
    "HEAD_BYTES",
    "detect",
    "header_json",
    "package_version",
    "provenance",
    "read_head",
    "reader_modules",
    "sniff",
]

HEAD_BYTES = 8192
ENTRY_POINT_GROUP = "xarray.backends"


def read_head(path: str | os.PathLike[str], size: int = HEAD_BYTES) -> bytes:
    """Return the first ``size`` bytes of a regular file (``b""`` for folders)."""
    if not os.path.isfile(path):
        return b""
    with open(path, "rb") as handle:
        return handle.read(size)


def sniff(can_open: Any, filename_or_obj: Any) -> bool:
    """``guess_can_open`` of a backend: ``can_open(path, head)`` on a path; never raises."""
    if not isinstance(filename_or_obj, str | os.PathLike):
        return False
    try:
        return bool(can_open(filename_or_obj, read_head(filename_or_obj)))
    except OSError:
        return False


@functools.cache
def reader_modules(prefix: str) -> tuple[ModuleType, ...]:
    """Reader modules of the xarray engines named ``<prefix>*``, in sniffing order.

    Parameters
    ----------
    prefix
        ``"dems_"`` or ``"tofsims_"``.
    """
    backends = [
        entry_point.load()
        for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP)
        if entry_point.name.startswith(prefix)
    ]
    backends.sort(key=lambda backend: backend.sniff_order)
    return tuple(importlib.import_module(backend.__module__) for backend in backends)


def detect(path: str | os.PathLike[str], prefix: str) -> ModuleType | None:
    """Return the first reader module of ``prefix`` that accepts ``path`` (None: no reader)."""
    head = read_head(path)
    return next((m for m in reader_modules(prefix) if m.can_open(path, head)), None)


def package_version() -> str:
    """Installed version of the ``operando`` distribution (``"unknown"`` if not installed)."""
    try:
        return metadata.version("operando")
    except metadata.PackageNotFoundError:
        return "unknown"


def provenance(path: str | os.PathLike[str], reader: str, fmt: str) -> dict[str, Any]:
    """Attributes recording where a dataset came from.

    Parameters
    ----------
    path
        Source file (or folder, for multi-file exports).
    reader
        Dotted name of the reader function or backend.
    fmt
        Human-readable format name, e.g. ``"BioLogic EC-Lab .mpt"``.
    """
    return {
        "source_file": str(Path(path).resolve()),
        "format": fmt,
        "reader": reader,
        "reader_version": package_version(),
    }


def header_json(header: Any) -> str:
    """Serialise a raw header for an attribute (netCDF/Zarr attributes cannot hold dicts)."""
    return json.dumps(header, ensure_ascii=False, default=str)
