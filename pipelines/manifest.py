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
(:attr:`pipelines.kinds.Kind.inputs`) or a processing parameter: a field of the kind's options
classes (e.g. :class:`dems.workflows.options.ProcessOptions`), with the same name, units, default
and checks as in Python and on the command line. ``[defaults.<kind>]`` (and ``[defaults]`` for
keys common to all kinds) fill in what an experiment leaves out. The whole manifest is checked
here, in the batch process, before any experiment is sent to a worker.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from operando_core.options import OptionError, option_fields
from pipelines.kinds import KINDS, Kind

__all__ = ["Experiment", "ManifestError", "load_manifest"]

T = TypeVar("T")

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
        Processing parameters as the manifest gives them (units in the key names, e.g.
        ``sputter_rate_nm_per_s``).
    labels
        Free-form labels copied into the comparison table (sample, cycle, temperature ...).
    options
        The checked options of the kind's workflows, made from ``params``
        (:meth:`options_of`).
    """

    name: str
    kind: str
    inputs: dict[str, Path]
    params: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, Any] = field(default_factory=dict)
    options: tuple[Any, ...] = ()

    def options_of(self, options_class: type[T]) -> T:
        """Return the experiment's options of one workflow (its defaults when none were made)."""
        for options in self.options:
            if isinstance(options, options_class):
                return options
        return options_class()


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
    kind = KINDS.get(entry.get("kind"))
    if kind is None:
        raise ManifestError(
            f"{where}: 'kind' must be one of {list(KINDS)}, not {entry.get('kind')!r}"
        )
    labels = entry.get("labels", {})
    if not isinstance(labels, dict):
        raise ManifestError(f"{where}: 'labels' must be a table, e.g. {{ sample = \"NCM83\" }}")
    shared = {k: v for k, v in defaults.items() if k not in KINDS}
    merged = {**shared, **defaults.get(kind.name, {}), **entry}
    inputs: dict[str, Path] = {}
    params: dict[str, Any] = {}
    for key, value in merged.items():
        if key in ("name", "kind", "labels"):
            continue
        if key in kind.inputs:
            inputs[key] = _resolve(path, where, key, value)
        else:
            params[key] = value
    missing = [key for key in kind.required if key not in inputs]
    if missing:
        raise ManifestError(f"{where}: missing input {', '.join(missing)}")
    if kind.name == "dems" and "calibration" in inputs and "calibration_steps" in inputs:
        raise ManifestError(f"{where}: give either 'calibration' or 'calibration_steps', not both")
    if kind.name == "dems" and "calibration_steps" in inputs and "cal_ms" not in inputs:
        raise ManifestError(f"{where}: 'calibration_steps' needs the calibration run 'cal_ms'")
    return Experiment(
        name=name,
        kind=kind.name,
        inputs=inputs,
        params=params,
        labels=dict(labels),
        options=_options(where, kind, params),
    )


def _options(where: str, kind: Kind, params: dict[str, Any]) -> tuple[Any, ...]:
    """Check the parameters against the kind's options classes and make the options."""
    fields = {f.name: f for options_class in kind.options for f, _ in option_fields(options_class)}
    unknown = sorted(set(params) - set(fields))
    if unknown:
        known = ", ".join(sorted(fields))
        raise ManifestError(f"{where}: unknown parameter(s) {', '.join(unknown)} (known: {known})")
    made = []
    for options_class in kind.options:
        own = {f.name for f, _ in option_fields(options_class)}
        required = [
            f.name
            for f, _ in option_fields(options_class)
            if f.default is dataclasses.MISSING and f.name not in params
        ]
        if required:
            raise ManifestError(f"{where}: missing parameter {', '.join(required)}")
        try:
            made.append(options_class(**{k: v for k, v in params.items() if k in own}))
        except OptionError as err:
            value = params.get(err.name)
            raise ManifestError(f"{where}: {err.name} = {value!r}: {err.render(str)}") from None
    return tuple(made)


def _resolve(manifest: Path, where: str, key: str, value: Any) -> Path:
    if not isinstance(value, str) or not value:
        raise ManifestError(f"{where}: '{key}' must be a path string")
    resolved = (manifest.parent / value).resolve()
    if not resolved.exists():
        raise ManifestError(f"{where}: {key} = {value!r}: no such file ({resolved})")
    return resolved
