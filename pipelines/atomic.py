"""Atomic output: write under a temporary name in the target's folder, then rename.

A killed process leaves either the old output or the new one, never half a file. The
temporary names start with ``.tmp-`` so they are easy to recognise and clean up.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "atomic_directory",
    "atomic_file",
    "write_atomically",
    "write_json_atomic",
    "write_netcdf_atomic",
    "write_text_atomic",
]


def _ordinary_permissions(path: Path, directory: bool = False) -> None:
    """Give a temporary file/folder the permissions of a normally created one (umask)."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, (0o777 if directory else 0o666) & ~mask)  # mkstemp/mkdtemp: 0600/0700


@contextlib.contextmanager
def atomic_file(target: str | os.PathLike[str], suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success rename it to ``target``.

    The temporary file is removed if the body raises. ``suffix`` keeps an extension for
    writers that choose the format from it (``.nc``, ``.parquet``).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".tmp-{target.name}-", suffix=suffix, dir=target.parent)
    os.close(fd)
    temporary = Path(name)
    try:
        yield temporary
        _ordinary_permissions(temporary)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_directory(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary directory beside ``target``; on success it replaces ``target``.

    An existing ``target`` is moved aside first and deleted only after the new directory
    is in place, so at every instant one complete version exists.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".tmp-{target.name}-", dir=target.parent))
    try:
        yield temporary
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    _ordinary_permissions(temporary, directory=True)
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".old-{target.name}-", dir=target.parent))
        os.replace(target, old / target.name)
    os.replace(temporary, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_atomically(target: str | os.PathLike[str], write: Callable[[Path], object]) -> Path:
    """Call ``write(temporary_path)`` and move the result onto ``target``; return ``target``.

    The temporary path keeps the target's suffix, for writers that pick a format from it.
    """
    target = Path(target)
    with atomic_file(target, suffix=target.suffix) as temporary:
        write(temporary)
    return target


#: netCDF-C/HDF5 are not thread-safe: experiments of a batch run as threads of one worker
#: process (a waiting experiment secedes), and two concurrent writes corrupted a file.
_NETCDF_LOCK = threading.Lock()


def write_netcdf_atomic(dataset: Any, target: str | os.PathLike[str]) -> Path:
    """Compute ``dataset`` and write it as netCDF atomically, one netCDF write per process."""
    loaded = dataset.load()
    with _NETCDF_LOCK:
        return write_atomically(target, loaded.to_netcdf)


def write_text_atomic(target: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``target`` atomically."""
    with atomic_file(target) as temporary:
        temporary.write_text(text, encoding="utf-8")


def write_json_atomic(target: str | os.PathLike[str], document: Any) -> None:
    """Write a JSON document atomically (NaN written as ``null``, never as ``NaN``)."""
    write_text_atomic(
        target, json.dumps(_nan_to_none(document), indent=2, ensure_ascii=False) + "\n"
    )


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {key: _nan_to_none(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_nan_to_none(item) for item in value]
    return value
