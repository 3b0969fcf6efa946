"""Plumbing shared by the DEMS xarray backends: provenance and sniffing.

Every reader module in :mod:`dems.io` defines

* ``KIND``: ``"ms"``, ``"ec"`` or ``"ms+ec"`` (a file holding both, like Zilien v2);
* ``can_open(path, head) -> bool``: content sniffing on the first ~8 kB of text;
* ``read_ms(path, **options)`` and/or ``read_ec(path, **options)`` returning
  :class:`xarray.Dataset` objects that follow ``docs/conventions.md``;
* a :class:`xarray.backends.BackendEntrypoint` subclass registered under the
  ``xarray.backends`` entry-point group.
"""

from __future__ import annotations

import json
import os
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["HEAD_BYTES", "provenance", "read_head"]

HEAD_BYTES = 8192


def package_version() -> str:
    """Installed version of the ``operando`` distribution (``"unknown"`` if not installed)."""
    try:
        return metadata.version("operando")
    except metadata.PackageNotFoundError:
        return "unknown"


def read_head(path: str | os.PathLike[str], size: int = HEAD_BYTES) -> str:
    """Return the first ``size`` bytes of a file decoded as latin-1 (never fails on bytes)."""
    with open(path, "rb") as handle:
        return handle.read(size).decode("latin-1")


def provenance(path: str | os.PathLike[str], reader: str, fmt: str) -> dict[str, Any]:
    """Attributes recording where a dataset came from.

    Parameters
    ----------
    path
        Source file.
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


def header_json(header: dict[str, Any]) -> str:
    """Serialise a raw header dict for an attribute (netCDF attrs cannot hold dicts)."""
    return json.dumps(header, ensure_ascii=False, default=str)
