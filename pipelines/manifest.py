"""Batch manifests: a TOML file listing experiments with shared defaults.

Example (paths are relative to the manifest's folder)::

    [defaults.tofsims]
    sputter_rate_nm_per_s = 0.05
    marker = "LiF2-"
    bulk = "NiO2-"

    [[experiment]]
    name = "NCM83-dems"
    kind = "dems"
    ms = "raw/NCM83.asc"
    ec = "raw/NCM83_C03.mpt"
    calibration_steps = "raw/calibration.toml"   # or calibration = "calibration.json"
    cal_ms = "raw/gas calibration.asc"
    labels = { sample = "NCM83", cycle = 1 }

Every key of an experiment that is not ``name``, ``kind`` or ``labels`` is either an input path
(:data:`INPUT_KEYS`) or a processing parameter; ``[defaults.<kind>]`` (and ``[defaults]`` for
keys common to all kinds) fill in what an experiment leaves out.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["INPUT_KEYS", "KINDS", "Experiment", "ManifestError", "load_manifest"]

#: Experiment kinds and the keys of each that name input files (resolved against the manifest).
INPUT_KEYS: dict[str, frozenset[str]] = {
    "dems": frozenset({"ms", "ec", "cal_ms", "calibration_steps", "calibration"}),
    "tofsims": frozenset({"input", "properties"}),
}
#: Inputs each kind cannot do without.
REQUIRED_INPUTS: dict[str, tuple[str, ...]] = {"dems": ("ms", "ec"), "tofsims": ("input",)}
KINDS = tuple(INPUT_KEYS)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


class ManifestError(ValueError):
    """The manifest is malformed; the message names the manifest and the experiment."""


@dataclass(frozen=True)
class Experiment:
    """One entry of a manifest, with defaults applied and paths resolved.

    Attributes
    ----------
    name
        Unique name; also the name of the experiment's output folder.
    kind
        ``"dems"`` or ``"tofsims"``.
    inputs
        Input role -> absolute path (e.g. ``{"ms": Path(...), "ec": Path(...)}``).
    params
        Processing parameters (units in the key names, e.g. ``sputter_rate_nm_per_s``).
    labels
        Free-form labels copied into the comparison table (sample, cycle, temperature ...).
    """

    name: str
    kind: str
    inputs: dict[str, Path]
    params: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, Any] = field(default_factory=dict)


def load_manifest(path: str | Path) -> list[Experiment]:
    """Read and validate a manifest.

    Raises
    ------
    ManifestError
        On TOML syntax errors, unknown kinds, duplicate names, missing or absent input files.
    """
    path = Path(path)
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise ManifestError(f"{path}: not valid TOML: {err}") from err
    except (OSError, UnicodeDecodeError) as err:
        raise ManifestError(f"{path}: cannot read: {err}") from err
    entries = document.get("experiment")
    if not isinstance(entries, list) or not entries:
        raise ManifestError(f"{path}: no [[experiment]] entries")
    unknown = set(document) - {"experiment", "defaults"}
    if unknown:
        raise ManifestError(f"{path}: unknown top-level keys {sorted(unknown)}")
    defaults = document.get("defaults", {})
    experiments = [_experiment(path, i, entry, defaults) for i, entry in enumerate(entries, 1)]
    seen: set[str] = set()
    for experiment in experiments:
        if experiment.name in seen:
            raise ManifestError(f"{path}: experiment name {experiment.name!r} is used twice")
        seen.add(experiment.name)
    return experiments


def _experiment(
    path: Path, index: int, entry: dict[str, Any], defaults: dict[str, Any]
) -> Experiment:
    where = f"{path}: experiment #{index}"
    name = entry.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ManifestError(
            f"{where}: 'name' must be a non-empty string of letters, digits, . _ + -"
        )
    where = f"{path}: experiment {name!r}"
    kind = entry.get("kind")
    if kind not in INPUT_KEYS:
        raise ManifestError(f"{where}: 'kind' must be one of {list(KINDS)}, not {kind!r}")
    labels = entry.get("labels", {})
    if not isinstance(labels, dict):
        raise ManifestError(f"{where}: 'labels' must be a table, e.g. {{ sample = \"NCM83\" }}")
    shared = {k: v for k, v in defaults.items() if k not in KINDS}
    merged = {**shared, **defaults.get(kind, {}), **entry}
    inputs: dict[str, Path] = {}
    params: dict[str, Any] = {}
    for key, value in merged.items():
        if key in ("name", "kind", "labels"):
            continue
        if key in INPUT_KEYS[kind]:
            inputs[key] = _resolve(path, where, key, value)
        else:
            params[key] = value
    from pipelines.runners import PARAMETERS, unknown_parameters

    unknown = unknown_parameters(kind, params)
    if unknown:
        known = ", ".join(sorted(PARAMETERS[kind]))
        raise ManifestError(f"{where}: unknown parameter(s) {', '.join(unknown)} (known: {known})")
    missing = [key for key in REQUIRED_INPUTS[kind] if key not in inputs]
    if missing:
        raise ManifestError(f"{where}: missing input {', '.join(missing)}")
    if kind == "dems" and "calibration" in inputs and "calibration_steps" in inputs:
        raise ManifestError(f"{where}: give either 'calibration' or 'calibration_steps', not both")
    if kind == "dems" and "calibration_steps" in inputs and "cal_ms" not in inputs:
        raise ManifestError(f"{where}: 'calibration_steps' needs the calibration run 'cal_ms'")
    return Experiment(name=name, kind=kind, inputs=inputs, params=params, labels=dict(labels))


def _resolve(manifest: Path, where: str, key: str, value: Any) -> Path:
    if not isinstance(value, str) or not value:
        raise ManifestError(f"{where}: '{key}' must be a path string")
    resolved = (manifest.parent / value).resolve()
    if not resolved.exists():
        raise ManifestError(f"{where}: {key} = {value!r}: no such file ({resolved})")
    return resolved
