"""The one place operando publishes files: atomically, with explicit modes, strict JSON.

Every output is written under a temporary name in the target's folder, then renamed onto the
target, so a killed process leaves either the old output or the new one, never half of it. The
temporary names are ``.tmp-<target name>-<8 hex digits>[suffix]`` (:data:`LEFTOVER`), so the
leftovers of a killed run are recognised by name and removed by the next run that holds the
folder's lock (:func:`remove_leftovers`, :mod:`pipelines.outputs`).

Every folder operando writes is marked — a Zarr store by the root attribute
:data:`STORE_MARK`, any other folder by the file :data:`MARKER` — and an existing folder is
replaced only when it is marked (:func:`atomic_directory`): a user's folder is never deleted.

Permissions are set without touching the process umask (``os.umask`` is process-wide state, and
the batch worker runs several experiments as threads): temporary files and folders are created
with the ordinary creation modes ``0o666``/``0o777``, which the kernel reduces by the umask as
for any new file, or given an explicit ``mode``.

The domain packages (:mod:`dems`, :mod:`tofsims`) do not publish files themselves: their
writers (e.g. :func:`tofsims.io.volume_store.write_volume`) write to the path they are given,
and the callers here give them a temporary one.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import secrets
import shutil
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from operando_core.stores import record_chunks

__all__ = [
    "LEFTOVER",
    "MARKER",
    "NETCDF_LOCK",
    "STORE_MARK",
    "OutputError",
    "atomic_directory",
    "atomic_file",
    "is_ours",
    "remove_leftovers",
    "strict_json",
    "write_atomically",
    "write_dataset_atomic",
    "write_json_atomic",
    "write_netcdf_atomic",
    "write_text_atomic",
]

#: Seconds a failed folder write keeps being removed: dask's local schedulers raise the first
#: task error at once while other chunk writes may still run and recreate files.
SETTLE_S = 2.0
#: netCDF-C/HDF5 are not thread-safe: experiments of a batch run as threads of one worker
#: process (a waiting experiment secedes), and two concurrent writes corrupted a file.
NETCDF_LOCK = threading.Lock()
#: File inside every folder operando writes (batch and experiment folders): the proof that
#: the folder may be replaced.
MARKER = ".operando-output.json"
#: Root attribute of every Zarr store operando writes (a file in a store's root would be
#: reported by zarr as an unknown object).
STORE_MARK = "operando_output"
#: Names of temporaries (and of outputs moved aside) that a killed run may leave behind.
LEFTOVER = re.compile(r"^\.tmp-.+-[0-9a-f]{8}(\.[A-Za-z0-9]+)?$")


class OutputError(ValueError):
    """An output that operando refuses to write (it would lose a file), or cannot write now.

    Attributes
    ----------
    exit_code
        Exit status of the command line: 2 for a usage mistake (an output pointing at an input
        or at a user's folder, an existing output without ``--overwrite``), 1 otherwise (e.g.
        another run holds the folder's lock).
    """

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code


def _root_attributes(store: Path) -> list[tuple[Path, list[str]]]:
    """Files of a Zarr store's root attributes and the key path to them in each file."""
    if (store / "zarr.json").is_file():  # Zarr v3: attributes beside the group's metadata
        return [(store / "zarr.json", ["attributes"])]
    if (store / ".zgroup").is_file():  # Zarr v2: .zattrs, and its copy in .zmetadata
        found = [(store / ".zattrs", [])]
        if (store / ".zmetadata").is_file():
            found.append((store / ".zmetadata", ["metadata", ".zattrs"]))
        return found
    return []


def is_ours(folder: str | os.PathLike[str]) -> bool:
    """Tell a folder operando wrote (:data:`MARKER`, or :data:`STORE_MARK` for a store)."""
    folder = Path(folder)
    if (folder / MARKER).is_file():
        return True
    for path, keys in _root_attributes(folder)[:1]:
        try:
            attributes = json.loads(path.read_text(encoding="utf-8"))
            for key in keys:
                attributes = attributes.get(key, {})
        except (OSError, ValueError, AttributeError):
            return False
        return isinstance(attributes, dict) and STORE_MARK in attributes
    return False


def write_marker(folder: Path, written_by: str = "operando") -> None:
    """Mark a folder operando is writing (a private temporary folder) as its own.

    A Zarr store gets the root attribute :data:`STORE_MARK` (in every metadata file that holds
    the root attributes, so consolidated metadata agrees); any other folder the file
    :data:`MARKER`.
    """
    from pipelines._version import __version__

    mark = {"written_by": written_by, "operando_version": __version__}
    roots = _root_attributes(folder)
    if not roots:
        (folder / MARKER).write_text(json.dumps(mark) + "\n", encoding="utf-8")
    for path, keys in roots:
        document = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        attributes = document
        for key in keys:
            attributes = attributes.setdefault(key, {})
        attributes[STORE_MARK] = mark
        path.write_text(json.dumps(document, indent=2), encoding="utf-8")


def check_replaceable(target: Path) -> None:
    """Raise unless ``target`` is absent, a file, or a folder operando wrote.

    Raises
    ------
    OutputError
        ``target`` is a folder without :data:`MARKER` (a user's folder).
    """
    if target.is_dir() and not target.is_symlink() and not is_ours(target):
        raise OutputError(
            f"{target}: is a folder that operando did not write; it is never replaced, "
            "even with --overwrite: choose another output"
        )


def remove_leftovers(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporaries a killed run left in ``folder`` (names matching :data:`LEFTOVER`).

    Call it only while holding the folder's lock (:class:`pipelines.outputs.FolderLock`): a
    temporary of a run still writing would look the same.
    """
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if not LEFTOVER.match(entry.name):
            continue
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def _temporary_name(target: Path, suffix: str = "") -> Path:
    return target.with_name(f".tmp-{target.name}-{secrets.token_hex(4)}{suffix}")


def _create_file(target: Path, suffix: str) -> Path:
    """Create an empty temporary file beside ``target`` (mode 0o666, reduced by the umask)."""
    while True:
        temporary = _temporary_name(target, suffix)
        try:
            os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return temporary


def _create_directory(target: Path) -> Path:
    """Create an empty temporary folder beside ``target`` (mode 0o777, reduced by the umask)."""
    while True:
        temporary = _temporary_name(target)
        try:
            os.mkdir(temporary, 0o777)
        except FileExistsError:
            continue
        return temporary


@contextlib.contextmanager
def atomic_file(
    target: str | os.PathLike[str], suffix: str = "", *, mode: int | None = None
) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success rename it to ``target``.

    Parameters
    ----------
    target
        The file to publish.
    suffix
        Extension of the temporary name, for writers that choose the format from it
        (``.nc``, ``.parquet``).
    mode
        Permission bits of the published file (default: those of a newly created file).

    The temporary file is removed if the body raises.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = _create_file(target, suffix)
    try:
        yield temporary
        if mode is not None:
            os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_directory(
    target: str | os.PathLike[str],
    *,
    mode: int | None = None,
    settle_s: float = SETTLE_S,
    written_by: str = "operando",
) -> Iterator[Path]:
    """Yield a temporary folder beside ``target``; on success it replaces ``target``.

    The new folder gets :data:`MARKER` (``written_by`` names the writer). An existing
    ``target`` is replaced only if it holds the marker, i.e. operando wrote it; it is moved
    aside first and deleted only after the new folder is in place, so at every instant one
    complete version exists. If the body raises, the temporary folder is removed, and removed
    again during ``settle_s`` seconds in case writes still in flight (dask tasks of a failed
    computation) recreate parts of it.

    Raises
    ------
    OutputError
        ``target`` is a folder operando did not write (checked before the body runs, and
        again before the rename).
    """
    target = Path(target)
    check_replaceable(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = _create_directory(target)
    try:
        yield temporary
        write_marker(temporary, written_by)
        check_replaceable(target)
    except BaseException:
        _remove_partial(temporary, settle_s)
        raise
    if mode is not None:
        os.chmod(temporary, mode)
    replace_aside([(temporary, target)])


def replace_aside(pairs: list[tuple[Path, Path]]) -> None:
    """Rename each ``(source, target)`` pair onto its target, as one set.

    Every existing target is first moved aside (a ``.tmp-.old-*`` folder beside it), then the
    sources are renamed in the given order, then the old versions are deleted: a process killed
    half-way leaves some outputs new and others missing — never new ones beside old ones of an
    earlier run — and its leftovers are removed by the next run (:func:`remove_leftovers`).
    """
    aside = []
    for _, target in pairs:
        if os.path.lexists(target):
            old = _create_directory(target.with_name(f".old-{target.name}"))
            os.replace(target, old / target.name)
            aside.append(old)
    for source, target in pairs:
        os.replace(source, target)
    for old in aside:
        shutil.rmtree(old, ignore_errors=True)


def _remove_partial(folder: Path, settle_s: float) -> None:
    deadline = time.monotonic() + settle_s
    while True:
        shutil.rmtree(folder, ignore_errors=True)
        if time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    shutil.rmtree(folder, ignore_errors=True)


def write_atomically(
    target: str | os.PathLike[str], write: Callable[[Path], object], *, mode: int | None = None
) -> Path:
    """Call ``write(temporary_path)`` and move the result onto ``target``; return ``target``.

    The temporary path keeps the target's suffix, for writers that pick a format from it.
    """
    target = Path(target)
    with atomic_file(target, suffix=target.suffix, mode=mode) as temporary:
        write(temporary)
    return target


def write_text_atomic(
    target: str | os.PathLike[str], text: str, *, mode: int | None = None
) -> Path:
    """Write ``text`` (UTF-8) to ``target`` atomically."""
    return write_atomically(target, lambda tmp: tmp.write_text(text, encoding="utf-8"), mode=mode)


def strict_json(value: Any) -> Any:
    """Return ``value`` as plain JSON types: what ``json.dumps(allow_nan=False)`` accepts.

    NaN and ±infinity become ``None`` (``null``; the documents that hold such numbers say why,
    e.g. the ``null_reasons`` of a CEI summary); numpy scalars and arrays become Python numbers
    and lists, tuples become lists, paths strings, mapping keys strings.

    Raises
    ------
    TypeError
        A value of any other type (it would be written as something unreadable).
    """
    if isinstance(value, str | bool | int | None):
        return value
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(key): strict_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [strict_json(item) for item in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "tolist"):  # numpy scalar or array
        return strict_json(value.tolist())
    raise TypeError(f"cannot write {type(value).__name__} {value!r} as JSON")


def write_json_atomic(
    target: str | os.PathLike[str], document: Any, *, mode: int | None = None
) -> Path:
    r"""Write a JSON document atomically: strict JSON (:func:`strict_json`), 2-space indent.

    Non-ASCII characters are escaped as ``\uXXXX``: the file is plain ASCII.
    """
    text = json.dumps(strict_json(document), indent=2, allow_nan=False)
    return write_text_atomic(target, text + "\n", mode=mode)


def write_netcdf_atomic(dataset: Any, target: str | os.PathLike[str]) -> Path:
    """Compute ``dataset`` and write it as netCDF atomically, one netCDF write per process."""
    loaded = dataset.load()
    with NETCDF_LOCK:
        return write_atomically(target, loaded.to_netcdf)


def write_dataset_atomic(dataset: Any, target: str | os.PathLike[str]) -> Path:
    """Write a dataset to a ``.zarr`` store or a ``.nc`` file atomically (by the suffix).

    Fixed-width unicode variables are stored as variable-length strings (Zarr v3 has no
    specification for fixed-width unicode); stores get consolidated metadata, which
    ``xarray.open_zarr`` reads first.
    """
    target = Path(target)
    dataset = dataset.copy()
    for name, variable in dataset.variables.items():
        if variable.dtype.kind == "U":
            dataset[name] = variable.astype(object)
    if target.suffix != ".zarr":
        return write_netcdf_atomic(dataset, target)
    with atomic_directory(target) as temporary, warnings.catch_warnings():
        # zarr 3 warns that consolidated metadata is not (yet) in the v3 specification
        warnings.filterwarnings("ignore", message="Consolidated metadata", module="zarr")
        dataset.to_zarr(temporary, mode="w", consolidated=True)
        record_chunks(temporary)
    return target
