"""A small generated study: pristine vs B/Ce-modified NCM83, DEMS and TOF-SIMS.

Written in real instrument formats (QUADERA ``.asc``, EC-Lab ``.mpt``, GRD +
``properties.txt``) by :mod:`dems.synthetic` and :mod:`tofsims.synthetic`, together with a
batch manifest and the ground truth. Used by ``operando demo``, the batch tests and the
batch benchmark.

Truth (by construction): the pristine cathode releases O2 above 4.39 V and CO2 above
4.35 V; the modified one releases no O2 and a little CO2 above 4.45 V. The pristine CEI is
10 nm thick, the modified one 4 nm on a 3 nm CeO2 coating (sputter rate 0.05 nm/s); their
secondary ions come from an information depth of :data:`INFORMATION_DEPTH_NM`, as real ones do
(the MRI depth resolution, ``docs/methods.md``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["DEMS_SAMPLES", "TOFSIMS_SAMPLES", "StudySize", "write_example_study"]

#: DEMS scenarios: sample -> onsets (V, None = never evolves) and evolution slopes.
DEMS_SAMPLES: dict[str, dict[str, Any]] = {
    "pristine": {"onsets_V": {"O2": 4.39, "CO2": 4.35, "CO": None}},
    "modified": {
        "onsets_V": {"O2": None, "CO2": 4.45, "CO": None},
        "slope_umol_per_min_g_V": {"O2": 10.0, "CO2": 8.0, "CO": 10.0},
    },
}
#: TOF-SIMS presets of :func:`tofsims.synthetic.layered_sample`.
TOFSIMS_SAMPLES = ("pristine", "modified")
SPUTTER_RATE_NM_PER_S = 0.05
SECONDS_PER_SCAN = 2.0
#: Information depth (nm) of the generated TOF-SIMS signals: each layer is seen from this far
#: below the sputtered surface (the layer-stack fit's default prior, ``tofsims cei``).
INFORMATION_DEPTH_NM = 0.3


@dataclass(frozen=True)
class StudySize:
    """How big the generated TOF-SIMS fields are (pixels per side)."""

    pixels: int = 32


def _write_dems(folder: Path, sample: str, seed: int) -> dict[str, Any]:
    from dems.synthetic import make_experiment
    from dems.synthetic_files import write_experiment

    experiment = make_experiment(seed=seed, **DEMS_SAMPLES[sample])
    paths = write_experiment(experiment, folder)
    return {"paths": paths, "truth": experiment.truth}


def _write_tofsims(folder: Path, sample: str, seed: int, pixels: int) -> dict[str, Any]:
    import numpy as np

    from tofsims.synthetic import layered_sample
    from tofsims.synthetic_raw import write_grd

    folder.mkdir(parents=True, exist_ok=True)
    volume, truth = layered_sample(
        sample, seed=seed, ny=pixels, nx=pixels, information_depth_nm=INFORMATION_DEPTH_NM
    )
    path = folder / f"{sample}.itm.grd"
    write_grd(volume["counts"], path, seconds_per_scan=SECONDS_PER_SCAN, seed=seed)
    thickness = truth.cei_thickness_nm.values
    return {
        "paths": {"grd": path},
        "truth": {
            "cei_thickness_nm_mean": float(np.mean(thickness)),
            "coating_thickness_nm": truth.coating_thickness_nm,
            "sputter_rate_nm_per_s": truth.sputter_rate_nm_per_s,
        },
    }


def _manifest(entries: list[dict[str, Any]]) -> str:
    lines = [
        "# Generated example study (operando demo): pristine vs B/Ce-modified NCM83.",
        "[defaults.tofsims]",
        f"sputter_rate_nm_per_s = {SPUTTER_RATE_NM_PER_S}",
        'marker = "LiF2-"',
        'bulk = "NiO2-"',
        "",
    ]
    for entry in entries:
        lines.append("[[experiment]]")
        for key, value in entry.items():
            if key == "labels":
                inner = ", ".join(f"{k} = {json.dumps(v)}" for k, v in value.items())
                lines.append(f"labels = {{ {inner} }}")
            else:
                lines.append(f"{key} = {json.dumps(value)}")
        lines.append("")
    return "\n".join(lines)


def write_example_study(
    folder: str | Path, *, size: StudySize | None = None, seed: int = 0
) -> Path:
    """Generate the example study in ``folder`` and return the manifest's path.

    Writes ``raw/<sample>-dems/`` (operando ``.asc`` + ``.mpt``, calibration ``.asc`` and
    ``steps.toml``), ``raw/<sample>-sims/`` (GRD + properties), ``manifest.toml`` and
    ``truth.json`` (what every number should come out as). Deterministic for a given seed.
    """
    folder = Path(folder)
    size = size or StudySize()
    raw = folder / "raw"
    entries, truth = [], {}
    for index, sample in enumerate(DEMS_SAMPLES):
        name = f"{sample}-dems"
        written = _write_dems(raw / name, sample, seed + index)
        paths = written["paths"]
        entries.append(
            {
                "name": name,
                "kind": "dems",
                "ms": str(paths["ms"].relative_to(folder)),
                "ec": str(paths["ec"].relative_to(folder)),
                "cal_ms": str(paths["calibration_ms"].relative_to(folder)),
                "calibration_steps": str(paths["steps"].relative_to(folder)),
                "labels": {"sample": sample, "cycle": 1},
            }
        )
        truth[name] = written["truth"]
    for index, sample in enumerate(TOFSIMS_SAMPLES):
        name = f"{sample}-sims"
        written = _write_tofsims(raw / name, sample, seed + index, size.pixels)
        entries.append(
            {
                "name": name,
                "kind": "tofsims",
                "input": str(written["paths"]["grd"].relative_to(folder)),
                "labels": {"sample": sample},
            }
        )
        truth[name] = written["truth"]
    (folder / "truth.json").write_text(json.dumps(truth, indent=2, default=str) + "\n")
    manifest = folder / "manifest.toml"
    manifest.write_text(_manifest(entries))
    return manifest
