"""The results of a batch (or demo) output folder: one entry per finished experiment.

``operando batch -o DIR`` (and ``operando demo``) publish every experiment as
``DIR/<name>/`` with a ``done.json`` (name, kind, labels, outputs) and a ``summary.json``.
:func:`find_results` lists them — in the order of the batch table ``summary.csv`` when it is
there — and :func:`group_results` groups them by a manifest label, for ``operando compare``
and ``operando serve DIR``. Light to import (no numpy or xarray).
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "DONE_FILE",
    "ExperimentResult",
    "ResultsFolderError",
    "find_results",
    "group_results",
    "is_results_folder",
    "titled",
]

DONE_FILE = "done.json"


def titled(name: str, labels: Mapping[str, Any]) -> str:
    """``pristine-dems (sample pristine, cycle 1)``: an experiment's name and its labels."""
    shown = ", ".join(f"{key} {value}" for key, value in labels.items())
    return f"{name} ({shown})" if shown else name


class ResultsFolderError(ValueError):
    """A folder holds no batch results, or they cannot be grouped as asked."""


@dataclass(frozen=True)
class ExperimentResult:
    """One finished experiment of a batch output folder.

    Attributes
    ----------
    name
        The experiment's name (its folder).
    kind
        ``"dems"`` or ``"tofsims"``.
    labels
        Its manifest labels (``sample``, ``cycle`` …).
    folder
        ``DIR/<name>``.
    summary
        Its ``summary.json`` (empty when unreadable).
    """

    name: str
    kind: str
    labels: Mapping[str, Any]
    folder: Path
    summary: Mapping[str, Any] = field(default_factory=dict)

    @property
    def title(self) -> str:
        """Name and labels, for pickers, page titles and legends (:func:`titled`)."""
        return titled(self.name, self.labels)

    def output(self, name: str) -> Path | None:
        """Path of an output (``result.zarr``, ``volume.zarr``, ``cei_map.nc`` …) if present."""
        path = self.folder / name
        return path if path.exists() else None


def is_results_folder(path: str | os.PathLike[str]) -> bool:
    """Say whether ``path`` is a folder holding finished batch experiments."""
    folder = Path(path)
    return folder.is_dir() and any((child / DONE_FILE).is_file() for child in _children(folder))


def _children(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _table_order(folder: Path) -> list[str]:
    """Experiment names in the order of ``summary.csv`` (the manifest's order)."""
    try:
        with open(folder / "summary.csv", newline="", encoding="utf-8") as table:
            return [row["experiment"] for row in csv.DictReader(table) if row.get("experiment")]
    except (OSError, KeyError, csv.Error):
        return []


def find_results(path: str | os.PathLike[str]) -> list[ExperimentResult]:
    """List the finished experiments of a batch or demo output folder.

    Parameters
    ----------
    path
        The ``-o`` folder of ``operando batch`` or ``operando demo``.

    Returns
    -------
    list of ExperimentResult
        In the order of the batch table (``summary.csv``), then by name.

    Raises
    ------
    ResultsFolderError
        ``path`` is not a folder or holds no finished experiment (no ``<name>/done.json``).
    """
    folder = Path(path)
    if not folder.is_dir():
        raise ResultsFolderError(f"{os.fspath(folder)}: not a folder")
    found = {}
    for child in _children(folder):
        done = _read_json(child / DONE_FILE)
        if not done:
            continue
        found[child.name] = ExperimentResult(
            name=str(done.get("name", child.name)),
            kind=str(done.get("kind", "")),
            labels=dict(done.get("labels") or {}),
            folder=child,
            summary=_read_json(child / "summary.json"),
        )
    if not found:
        raise ResultsFolderError(
            f"{os.fspath(folder)}: no finished experiment (no <name>/done.json); "
            "give the output folder of 'operando batch' or 'operando demo'"
        )
    order = [name for name in _table_order(folder) if name in found]
    order += [name for name in found if name not in order]
    return [found[name] for name in order]


def group_results(results: list[ExperimentResult], by: str) -> dict[str, list[ExperimentResult]]:
    """Group experiments by the value of one label, in order of first appearance.

    Raises
    ------
    ResultsFolderError
        An experiment has no such label (the message lists the labels there are).
    """
    missing = [r.name for r in results if by not in r.labels]
    if missing:
        known = sorted({key for r in results for key in r.labels})
        raise ResultsFolderError(
            f"label {by!r} missing in experiment(s) {', '.join(missing)}; "
            f"labels there are: {', '.join(known) or 'none'}"
        )
    groups: dict[str, list[ExperimentResult]] = {}
    for result in results:
        groups.setdefault(str(result.labels[by]), []).append(result)
    return groups
