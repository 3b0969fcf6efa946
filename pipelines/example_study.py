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

The TOF-SIMS files are as hard as real ones in two respects (issue 17): every species is
written at its true mass with its isobaric neighbours and isotopologues
(:data:`tofsims.synthetic_samples.NEIGHBOURS`) — the pristine cathode holds no boron, so its
m/z 43 window sees only C2F− of the fluorinated CEI, organics and AlO−, while the modified one is
B-doped with ¹⁰BO2− at the natural ratio — and the spectra carry the heavy calibration ions
(carbon clusters, PF6−) that bracket CeO2− (172 u), so the mass calibration is interpolated
over the fragments, not extrapolated.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "DEMS_SAMPLES",
    "RESOLVING_POWER",
    "TOFSIMS_SAMPLES",
    "TOFSIMS_SPECIES",
    "StudySize",
    "calibration_ions",
    "tofsims_sample",
    "write_example_study",
]

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
#: Options of :func:`tofsims.synthetic.layered_sample` per sample besides the preset: isobaric
#: neighbours and isotopologues at their true masses; the pristine cathode holds no boron (the
#: modified preset is B-doped).
TOFSIMS_SPECIES: dict[str, dict[str, bool]] = {
    "pristine": {"neighbours": True, "boron_free": True},
    "modified": {"neighbours": True},
}
#: Mass resolving power m/Δm (FWHM) of every peak of the generated GRD files: the lower end of
#: an IONTOF high-current bunched mode (≈ 5000–10 000 at m/z 40) on a rough composite
#: electrode, whose topography broadens the peaks.
RESOLVING_POWER = 5000.0
#: Mean counts per pixel and scan of each light calibration ion (H−, C−, … Cl−).
LIGHT_CALIBRATION_PER_PIXEL = 0.5
#: Mean counts per pixel and scan of the heavy calibration ions at 36 u (C3−); weaker with mass
#: (∝ 1/m: 0.04 at C15−, 180 u), as carbon-cluster anions are in a real negative spectrum.
HEAVY_CALIBRATION_PER_PIXEL_36U = 0.2
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


def calibration_ions() -> dict[str, float]:
    """Calibration ions of the generated GRD files → mean counts per pixel and scan.

    The light negative ions at :data:`LIGHT_CALIBRATION_PER_PIXEL` and the heavy ones
    (:data:`tofsims.fragments.CALIBRATION_IONS_HEAVY`) falling off as 1/m from
    :data:`HEAVY_CALIBRATION_PER_PIXEL_36U` at 36 u.
    """
    from tofsims.fragments import CALIBRATION_IONS, CALIBRATION_IONS_HEAVY, ion_mass

    ions = dict.fromkeys(CALIBRATION_IONS["negative"], LIGHT_CALIBRATION_PER_PIXEL)
    for ion in CALIBRATION_IONS_HEAVY["negative"]:
        ions[ion] = HEAVY_CALIBRATION_PER_PIXEL_36U * 36.0 / ion_mass(ion)
    return ions


def tofsims_sample(sample: str, seed: int, pixels: int) -> tuple[Any, Any]:
    """Species volume and truth of one TOF-SIMS sample, as the study writes it.

    Returns the :func:`tofsims.synthetic.layered_sample` volume (one ``fragment`` per species,
    coordinates ``target`` and ``species_mass``) and its :class:`~tofsims.synthetic.SampleTruth`.
    """
    from tofsims.synthetic import layered_sample

    return layered_sample(
        sample,
        seed=seed,
        ny=pixels,
        nx=pixels,
        information_depth_nm=INFORMATION_DEPTH_NM,
        **TOFSIMS_SPECIES[sample],
    )


def _write_tofsims(folder: Path, sample: str, seed: int, pixels: int) -> dict[str, Any]:
    import numpy as np

    from tofsims.synthetic_raw import write_grd

    folder.mkdir(parents=True, exist_ok=True)
    volume, truth = tofsims_sample(sample, seed, pixels)
    path = folder / f"{sample}.itm.grd"
    write_grd(
        volume["counts"],
        path,
        resolution=RESOLVING_POWER,
        calibration_ions=calibration_ions(),
        seconds_per_scan=SECONDS_PER_SCAN,
        seed=seed,
    )
    thickness = truth.cei_thickness_nm.values
    species_counts = volume["counts"].sum(("scan", "y", "x")).values
    return {
        "paths": {"grd": path},
        "truth": {
            "cei_thickness_nm_mean": float(np.mean(thickness)),
            "coating_thickness_nm": truth.coating_thickness_nm,
            "sputter_rate_nm_per_s": truth.sputter_rate_nm_per_s,
            "boron": "none" if TOFSIMS_SPECIES[sample].get("boron_free") else "doped bulk",
            # every species written into the GRD: the window it falls in, its mass, its counts
            "species": {
                str(name): {
                    "target": str(target),
                    "mass_u": round(float(mass), 6),
                    "counts": int(n),
                }
                for name, target, mass, n in zip(
                    volume["fragment"].values,
                    volume["target"].values,
                    volume["species_mass"].values,
                    species_counts,
                    strict=True,
                )
            },
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
