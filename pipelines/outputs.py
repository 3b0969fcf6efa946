"""Where a command may write: outputs checked against its inputs, locked, published as one set.

Rules (``docs/cli.md``, "Outputs"):

- an output that is, contains or lies inside one of the command's inputs is refused (paths are
  compared after resolving symbolic links, and by inode, so a hard link or a second mount of
  the same folder is recognised too);
- an existing output is replaced only with ``--overwrite``, and an existing folder only when
  operando wrote it (:func:`pipelines.atomic.is_ours`) — never a user's folder;
- one run at a time writes into a folder: a lock file (:data:`LOCK_NAME`) held for the whole
  run, released by the kernel when the process dies; whoever takes the lock first removes the
  leftovers of killed runs (:func:`pipelines.atomic.remove_leftovers`);
- the outputs of one run are written under temporary names and renamed together at the end
  (:func:`pipelines.atomic.replace_aside`): never a new summary beside an old report.

Example
-------
>>> with publishing({"-o": out, "--summary": summary}, inputs=[raw], overwrite=False) as staged:
...     write_dataset_atomic(result, staged.path(out))        # doctest: +SKIP
...     write_json_atomic(staged.path(summary), document)      # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import sys
import threading
import time
from collections.abc import Collection, Iterable, Iterator, Mapping
from pathlib import Path

from pipelines.atomic import (
    OutputError,
    check_replaceable,
    is_ours,
    remove_leftovers,
    replace_aside,
    write_marker,
)

__all__ = [
    "LOCK_NAME",
    "FolderLock",
    "OutputError",
    "Staging",
    "check_outputs",
    "claim_folder",
    "input_relation",
    "locked",
    "publishing",
]

#: Lock file of a folder being written (removed when the run ends).
LOCK_NAME = ".operando.lock"
#: Output suffixes that are folders (Zarr stores).
FOLDER_SUFFIXES = (".zarr",)


def _stat(path: Path) -> os.stat_result | None:
    try:
        return path.stat()
    except OSError:
        return None


def _same(a: os.stat_result | None, b: os.stat_result | None) -> bool:
    return a is not None and b is not None and (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _chain(path: Path) -> list[Path]:
    """``path`` resolved (symbolic links followed) and its parents, innermost first."""
    resolved = path.resolve()
    return [resolved, *resolved.parents]


def input_relation(output: Path, source: Path) -> str | None:
    """How an output path relates to an input: ``"is"``, ``"inside"``, ``"contains"`` or None.

    Compares resolved paths and, for what exists, device and inode numbers.
    """
    out_chain, in_chain = _chain(output), _chain(source)
    out_stat, in_stat = _stat(out_chain[0]), _stat(in_chain[0])
    if out_chain[0] == in_chain[0] or _same(out_stat, in_stat):
        return "is"
    if in_chain[0] in out_chain[1:] or any(_same(_stat(p), in_stat) for p in out_chain[1:]):
        return "inside"
    if out_chain[0] in in_chain[1:] or any(_same(_stat(p), out_stat) for p in in_chain[1:]):
        return "contains"
    return None


_RELATION = {
    "is": "is the input {source}",
    "inside": "lies inside the input {source}",
    "contains": "contains the input {source}",
}


def _check_one(
    name: str, path: Path, sources: list[Path], overwrite: bool, folder: bool = False
) -> None:
    for source in sources:
        if relation := input_relation(path, source):
            problem = _RELATION[relation].format(source=source)
            raise OutputError(f"{name} {path}: {problem}; inputs are never overwritten")
    if not os.path.lexists(path):
        return
    folder = folder or path.suffix in FOLDER_SUFFIXES
    if path.is_dir() and not folder:
        raise OutputError(f"{name} {path}: is a folder; give a file name")
    if folder and path.exists() and not path.is_dir():
        kind = f" (a {path.suffix} store)" if path.suffix in FOLDER_SUFFIXES else ""
        raise OutputError(f"{name} {path}: exists and is not a folder{kind}")
    check_replaceable(path)
    if not overwrite:
        raise OutputError(f"{name} {path}: exists (add --overwrite to replace it)")


def check_outputs(
    outputs: Mapping[str, str | os.PathLike[str] | None],
    inputs: Iterable[str | os.PathLike[str] | None],
    *,
    overwrite: bool = False,
    folders: Collection[str] = (),
) -> None:
    """Check a command's outputs before anything is computed.

    Parameters
    ----------
    outputs
        Option name (as the user typed it, e.g. ``"--summary"``) -> path, ``None``: not asked.
    inputs
        Every file or folder the command reads (sidecars included), ``None`` entries skipped.
    overwrite
        Whether existing outputs may be replaced.
    folders
        Option names whose outputs are folders whatever their name (Zarr stores, ending in
        ``.zarr``, always are); an existing one is replaced only when operando wrote it.

    Raises
    ------
    OutputError
        An output is, contains or lies inside an input; two outputs are the same file; an
        output exists and ``overwrite`` is false; an existing folder was not written by
        operando; a folder stands where a file goes or the other way round.
    """
    sources = [Path(p) for p in inputs if p is not None]
    seen: dict[Path, str] = {}
    for name, raw in outputs.items():
        if raw is None:
            continue
        path = Path(raw)
        resolved = path.resolve()
        if resolved in seen:
            raise OutputError(f"{seen[resolved]} and {name} name the same file {path}")
        seen[resolved] = name
        _check_one(name, path, sources, overwrite, folder=name in folders)


def claim_folder(
    folder: str | os.PathLike[str],
    *,
    files: Iterable[str],
    folders: Iterable[str],
    inputs: Iterable[str | os.PathLike[str] | None],
    written_by: str,
) -> None:
    """Make sure a command may write the given entries into ``folder``, then mark the folder.

    A folder operando marked earlier is its own: its ``files`` are replaced and its ``folders``
    too, when each is marked (an experiment folder a user created is not). Into any other
    folder — a user's — a command writes only entries that do not exist yet; nothing in it is
    deleted or overwritten.

    Parameters
    ----------
    folder
        The output folder (created when missing).
    files, folders
        Names of the files and of the (marked) folders the command writes inside ``folder``.
    inputs
        Every input of the command: no entry may be, contain or lie inside one.
    written_by
        Recorded in the marker.

    Raises
    ------
    OutputError
        ``folder`` is a file; an entry points at an input; an entry exists in a folder that is
        not operando's, or is a folder operando did not write.
    """
    folder = Path(folder)
    if os.path.lexists(folder) and not folder.is_dir():
        raise OutputError(f"{folder}: exists and is not a folder")
    files, folders = list(files), list(folders)
    sources = [Path(p) for p in inputs if p is not None]
    for name in [*files, *folders]:
        for source in sources:
            if relation := input_relation(folder / name, source):
                problem = _RELATION[relation].format(source=source)
                raise OutputError(f"{folder / name}: {problem}; inputs are never overwritten")
    ours = is_ours(folder)
    clashes = [
        name
        for name in [*files, *folders]
        if os.path.lexists(folder / name)
        and not (ours and (name in files or is_ours(folder / name)))
    ]
    if clashes:
        raise OutputError(
            f"{folder}: already holds {', '.join(clashes)}, not written by operando; nothing "
            "is overwritten: choose another output folder (or move them away)"
        )
    folder.mkdir(parents=True, exist_ok=True)
    if not ours:
        write_marker(folder, written_by)


#: Folders this process holds the lock of (a command calling another, e.g. ``demo`` running
#: ``batch``, takes a folder's lock once) -> number of holders.
#: Folders this process holds the lock of: the descriptor holding the ``flock`` and how many
#: holders (threads, or a command running another into the same folder) share it.
_HELD: dict[Path, list[int]] = {}
_HELD_LOCK = threading.Lock()


class FolderLock:
    """Exclusive lock of an output folder for the duration of one run.

    The lock is ``flock`` on :data:`LOCK_NAME` (released by the kernel if the process dies, so a
    killed run never leaves a stale lock); the file holds who took it, for the message of the
    run that finds it taken. Taking it removes the leftovers of killed runs in the folder.
    Within one process the lock is shared and counted (a command running another into the same
    folder, or the threads of a batch): the last holder to leave releases it, whatever the
    order in which they leave.
    """

    def __init__(self, folder: str | os.PathLike[str]):
        self.folder = Path(folder).resolve()
        self.path = self.folder / LOCK_NAME
        self._held = False

    def acquire(self) -> None:
        """Take the lock (non-blocking) and clean the folder's leftovers.

        Raises
        ------
        OutputError
            Another run holds the lock (exit status 1).
        """
        with _HELD_LOCK:
            if self._held:
                return
            if self.folder in _HELD:
                _HELD[self.folder][1] += 1
            else:
                _HELD[self.folder] = [self._take(), 1]
            self._held = True

    def _take(self) -> int:
        """Lock the file and record the holder; return the descriptor holding the lock."""
        self.folder.mkdir(parents=True, exist_ok=True)
        locked_fd = None
        while locked_fd is None:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            if not _try_lock(fd):
                holder = _holder(fd)
                os.close(fd)
                raise OutputError(
                    f"{self.folder}: another operando run is writing into this folder "
                    f"({holder}); wait for it to end or choose another output",
                    exit_code=1,
                )
            # the previous holder removes the file when it releases: lock the file that is
            # still there, not a removed one
            if _same(os.fstat(fd), _stat(self.path)):
                locked_fd = fd
            else:
                os.close(fd)
        record = {"pid": os.getpid(), "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
        record["command"] = " ".join(["operando", *sys.argv[1:]])[:200]
        os.ftruncate(locked_fd, 0)
        os.pwrite(locked_fd, json.dumps(record).encode(), 0)
        remove_leftovers(self.folder)
        return locked_fd

    def release(self) -> None:
        """Leave the lock; the last holder in the process removes the file and releases it."""
        with _HELD_LOCK:
            if not self._held:
                return
            self._held = False
            held = _HELD[self.folder]
            held[1] -= 1
            if held[1] > 0:
                return
            del _HELD[self.folder]
            with contextlib.suppress(OSError):
                self.path.unlink()
            os.close(held[0])  # closing the descriptor releases the flock

    def __enter__(self) -> FolderLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _try_lock(fd: int) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows: lock the first byte instead
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _holder(fd: int) -> str:
    try:
        record = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f"pid {record['pid']} since {record['started']}: {record['command']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


@contextlib.contextmanager
def locked(folders: Iterable[str | os.PathLike[str]]) -> Iterator[None]:
    """Hold the locks of several folders (each once, in a fixed order) for the body."""
    unique = sorted({Path(f).resolve() for f in folders})
    with contextlib.ExitStack() as stack:
        for folder in unique:
            stack.enter_context(FolderLock(folder))
        yield


class Staging:
    """Temporary paths of a run's outputs, renamed onto them together by :meth:`commit`.

    ``path(target)`` gives the name to write ``target`` under (a ``.tmp-`` name beside it, same
    suffix); outputs that were never written are left alone.
    """

    def __init__(self, targets: Iterable[Path], written_by: str = "operando"):
        self.targets = list(targets)
        self.written_by = written_by
        self._staged = {
            target: target.with_name(f".tmp-{target.name}-{secrets.token_hex(4)}{target.suffix}")
            for target in self.targets
        }

    def path(self, target: str | os.PathLike[str] | None) -> Path | None:
        """Where to write ``target`` (``None`` stays ``None``: an output not asked for)."""
        if target is None:
            return None
        return self._staged[Path(target)]

    def commit(self) -> list[Path]:
        """Rename every written output onto its target (folders get the marker); return them."""
        pairs = []
        for target in self.targets:
            staged = self._staged[target]
            if not os.path.lexists(staged):
                continue
            if staged.is_dir() and not is_ours(staged):
                write_marker(staged, self.written_by)
            check_replaceable(target)
            pairs.append((staged, target))
        replace_aside(pairs)
        return [target for _, target in pairs]

    def discard(self) -> None:
        """Remove whatever was written (a failed run publishes nothing)."""
        for staged in self._staged.values():
            if staged.is_dir() and not staged.is_symlink():
                shutil.rmtree(staged, ignore_errors=True)
            elif os.path.lexists(staged):
                staged.unlink()


@contextlib.contextmanager
def publishing(
    outputs: Mapping[str, str | os.PathLike[str] | None],
    inputs: Iterable[str | os.PathLike[str] | None],
    *,
    overwrite: bool = False,
    written_by: str = "operando",
    folders: Collection[str] = (),
) -> Iterator[Staging]:
    """Check, lock and stage a run's outputs; publish them together when the body succeeds.

    Parameters
    ----------
    outputs
        Option name -> output path (``None``: not asked for), see :func:`check_outputs`.
    inputs
        Every file the run reads.
    overwrite
        Whether existing outputs may be replaced (``--overwrite``).
    written_by
        Recorded in the marker of folder outputs.
    folders
        Option names whose outputs are folders (see :func:`check_outputs`): the body builds
        each in its staged folder, which gets the marker and replaces the target as a whole.

    Yields
    ------
    Staging
        Write each output ``target`` to ``staging.path(target)``.

    Raises
    ------
    OutputError
        See :func:`check_outputs`; another run holds the lock of an output's folder.
    """
    sources = [p for p in inputs if p is not None]
    check_outputs(outputs, sources, overwrite=overwrite, folders=folders)
    targets = [Path(p) for p in outputs.values() if p is not None]
    with locked(target.parent for target in targets):
        # the folder may have changed while waiting for the lock
        check_outputs(outputs, sources, overwrite=overwrite, folders=folders)
        staging = Staging(targets, written_by)
        try:
            yield staging
            staging.commit()
        except BaseException:
            staging.discard()
            raise
