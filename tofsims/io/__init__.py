"""TOF-SIMS readers: one module per format, each also an xarray backend.

Every reader module defines ``FORMAT`` (display name), ``can_open(path, head)``
(content sniffing on the first bytes) and ``read(path, **options) -> Dataset``
(:mod:`tofsims.io.backend`). :func:`open_tofsims` dispatches on content, with every reader
registered as a ``tofsims_*`` xarray engine (:func:`readers`, in sniffing order).
"""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from operando_core.readers import detect, reader_modules
from tofsims.errors import TofsimsReadError

if TYPE_CHECKING:
    # not imported at run time: the record-level GRD access (tofsims.io.grd_records) must
    # not load xarray (start-up time of the one-pass reconstruction)
    import xarray as xr

__all__ = ["detect_format", "input_files", "open_tofsims", "readers"]


def readers() -> tuple[ModuleType, ...]:
    """Reader modules of the ``tofsims_*`` xarray engines, in sniffing order."""
    return reader_modules("tofsims_")


def detect_format(path: str | os.PathLike[str]) -> ModuleType:
    """Return the reader module able to open ``path``, judged by its content."""
    if not os.path.exists(path):
        raise TofsimsReadError(path, "no such file")
    if os.path.isfile(path) and os.path.getsize(path) == 0:
        raise TofsimsReadError(path, "file is empty")
    module = detect(path, "tofsims_")
    if module is not None:
        return module
    names = ", ".join(m.FORMAT for m in readers())
    raise TofsimsReadError(path, f"not a recognised TOF-SIMS file (known formats: {names})")


def input_files(path: str | os.PathLike[str], **options: Any) -> list[Path]:
    """Every file that reading ``path`` opens: the file itself and the sidecars its reader finds.

    A reader with sidecars (the GRD's ``properties.txt``, the imzML's ``.ibd``) lists them
    with its own ``input_files``; for the others, and a volume store, it is ``path`` alone.
    ``options`` are those of the reader (e.g. ``properties=`` of a GRD).
    """
    from tofsims.io.volume_store import is_zarr_store

    if is_zarr_store(path):
        return [Path(path)]
    module = detect_format(path)
    if hasattr(module, "input_files"):
        return module.input_files(path, **options)
    return [Path(path)]


def open_tofsims(path: str | os.PathLike[str], **options: Any) -> xr.Dataset:
    """Open any supported TOF-SIMS file, or a volume store written by operando (lazily).

    Parameters
    ----------
    path
        A raw export (format recognised from the content: GRD, imzML, BIF6, SurfaceLab,
        3D ASCII) or a Zarr volume store (``operando tofsims reconstruct``).
    **options
        Passed to the reader (e.g. ``properties=`` of a GRD).

    Returns
    -------
    xarray.Dataset
        See ``docs/conventions.md``: an event table, a volume ``counts(fragment, scan, y, x)``
        or a depth profile ``intensity(scan, peak)``.
    """
    from tofsims.io.volume_store import is_zarr_store, open_volume

    if is_zarr_store(path):
        return open_volume(path)
    return detect_format(path).read(path, **options)
