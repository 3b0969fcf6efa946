"""Content fingerprints of experiments, so unchanged work is never recomputed.

An experiment's fingerprint hashes its kind, its options, the operando version and the
*content* of every file it reads (BLAKE2b): the inputs the manifest names and the sidecars their
readers find by themselves (a GRD's ``properties.txt``, an imzML's ``.ibd``; see
:attr:`pipelines.kinds.Kind.files`). Digests of big files are cached per (path, size,
modification time), so re-running a batch does not re-read gigabytes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from pipelines._version import __version__
from pipelines.atomic import write_json_atomic
from pipelines.kinds import KINDS, ExperimentOptions
from pipelines.manifest import Experiment

__all__ = ["DigestCache", "experiment_fingerprint", "file_digest"]

_BLOCK = 8 * 1024 * 1024


def file_digest(path: Path) -> str:
    """BLAKE2b digest of a file's bytes, or of every file below a directory (sorted)."""
    digest = hashlib.blake2b(digest_size=20)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode())
        with open(file, "rb") as handle:
            while block := handle.read(_BLOCK):
                digest.update(block)
    return digest.hexdigest()


class DigestCache:
    """File digests remembered across runs in a small JSON file."""

    def __init__(self, store: Path):
        self.store = store
        try:
            self._entries: dict[str, Any] = json.loads(store.read_text())
        except (OSError, ValueError):
            self._entries = {}
        self._dirty = False

    def digest(self, path: Path) -> str:
        """Digest of ``path``, recomputed only when its size or modification time changed."""
        stat = os.stat(path)
        key = str(path)
        stamp = [stat.st_size, stat.st_mtime_ns]
        entry = self._entries.get(key)
        if path.is_file() and entry and entry["stamp"] == stamp:
            return entry["digest"]
        value = file_digest(path)
        self._entries[key] = {"stamp": stamp, "digest": value}
        self._dirty = True
        return value

    def save(self) -> None:
        """Persist new digests (atomically)."""
        if self._dirty:
            write_json_atomic(self.store, self._entries)
            self._dirty = False


def read_files(experiment: Experiment) -> tuple[list[Path], str | None]:
    """Every file the experiment reads, and why the list may be short (``None``: complete).

    A sidecar that cannot be found (a GRD without ``properties.txt``) is left out: the
    experiment then fails on its worker with the reader's message.
    """
    declared = list(experiment.inputs.values())
    try:
        files = KINDS[experiment.kind].files(experiment.inputs)
    except (OSError, ValueError) as err:  # the readers' errors are ValueErrors
        return declared, str(err)
    return list(dict.fromkeys([*declared, *files])), None


def experiment_fingerprint(experiment: Experiment, cache: DigestCache) -> str:
    """Hash of everything that determines an experiment's results (not its labels)."""
    files, problem = read_files(experiment)
    by_role = {path: role for role, path in experiment.inputs.items()}
    document = {
        "kind": experiment.kind,
        "options": [
            {"type": type(o).__name__, **dataclasses.asdict(o)}
            for o in experiment.options
            if not isinstance(o, ExperimentOptions)  # how it runs, not what it gives
        ],
        # declared inputs by role, sidecars by name: moving a study keeps its fingerprints
        "files": sorted([by_role.get(path, path.name), cache.digest(path)] for path in files),
        "incomplete": problem,
        "operando": __version__,
    }
    text = json.dumps(document, sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
