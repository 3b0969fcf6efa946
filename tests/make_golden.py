"""Golden outputs: every processing command and a batch on small inputs, normalised.

``python tests/make_golden.py`` regenerates ``tests/data/golden/`` (about 20 s); run it after a
deliberate change of numbers and review the diff. ``tests/pipelines/test_golden.py`` makes them
again and compares them byte for byte with the committed files.

Inputs: the generated example study (16 x 16 pixels, seed 3, the one :mod:`example_results` runs
the batch on) and a committed SurfaceLab depth profile. Normalisation replaces what differs
between runs and machines and nothing else: absolute folders (``<tmp>``, ``<data>``), the
batch's temporary work folders (``<work>``), ``created`` and ``operando_version``.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import tempfile
from pathlib import Path

import numpy as np

TESTS = Path(__file__).resolve().parent
GOLDEN = TESTS / "data" / "golden"
DATA = TESTS / "data"
SURFACELAB = (
    DATA
    / "tofsims"
    / "uhasselt_surfacelab73_depth_profiles"
    / "I241209p_A_MAPI_1f-1nA_neg-B4 - NF.txt"
)
#: Experiments of the example study and the outputs of each kept as goldens.
BATCH_OUTPUTS = {
    "pristine-dems": ("summary.json", "calibration.json"),
    "modified-dems": ("summary.json", "calibration.json"),
    "pristine-sims": ("summary.json",),
    "modified-sims": ("summary.json",),
}


def _invoke(*args: object) -> None:
    from click.testing import CliRunner

    from pipelines.cli import cli

    result = CliRunner().invoke(cli, [str(a) for a in args])
    if result.exit_code != 0:
        raise RuntimeError(f"operando {' '.join(map(str, args))} failed:\n{result.output}")


def _digest(values: np.ndarray) -> str:
    return hashlib.blake2b(np.ascontiguousarray(values).tobytes(), digest_size=16).hexdigest()


def _volume_record(store: Path) -> str:
    """The numbers of a reconstructed volume: attributes, coordinates, digests of the counts."""
    import xarray as xr

    with xr.open_zarr(store) as volume:
        counts = volume["counts"].values
        record = {
            "sizes": dict(volume.sizes),
            "attrs": {
                k: v
                for k, v in sorted(volume.attrs.items())
                if k
                not in ("source_file", "operando_output", "stored_chunks")  # paths, bookkeeping
            },
            "fragment": [str(f) for f in volume["fragment"].values],
            "mass_low": volume["mass_low"].values.tolist(),
            "mass_high": volume["mass_high"].values.tolist(),
            "sputter_time": volume["sputter_time"].values.tolist(),
            "counts_per_fragment": counts.sum(axis=(1, 2, 3)).tolist(),
            "counts_digest": _digest(counts),
            "spectrum_digest": _digest(volume["spectrum"].values),
        }
    return json.dumps(record, indent=2, default=str) + "\n"


def _map_record(path: Path) -> str:
    """The per-pixel CEI map: attributes and a digest of every variable's values."""
    import xarray as xr

    with xr.open_dataset(path) as cei:
        record = {
            "attrs": {k: v for k, v in sorted(cei.attrs.items()) if k != "source_file"},
            "sizes": dict(cei.sizes),
            "variables": {name: _digest(cei[name].values) for name in sorted(cei.data_vars)},
            "thickness_mean_nm": float(np.nanmean(cei["thickness"].values)),
        }
    return json.dumps(record, indent=2, default=str) + "\n"


def run_commands(study: Path, work: Path) -> dict[str, str]:
    """Run every processing command on the study's raw files; return name -> output text."""
    raw = study / "raw"
    dems, sims = raw / "pristine-dems", raw / "pristine-sims"
    out: dict[str, str] = {}
    calibration = work / "calibration.json"
    _invoke(
        "dems",
        "calibrate",
        dems / "calibration.asc",
        "--steps",
        dems / "steps.toml",
        "-o",
        calibration,
    )
    out["cli-dems-calibrate.json"] = calibration.read_text()
    faradaic = work / "faradaic.json"
    _invoke(
        "dems",
        "calibrate",
        dems / "operando.asc",
        "--faradaic",
        "CO2:44:2",
        "--ec",
        dems / "operando_01_GCPL_C01.mpt",
        "--ec-window",
        "4000:9000",
        "--bg-window",
        "300:900",
        "--bg-window",
        "12000:12600",
        "--delay",
        "12",
        "-o",
        faradaic,
    )
    out["cli-dems-calibrate-faradaic.json"] = faradaic.read_text()
    process = ["dems", "process", dems / "operando.asc", "--ec", dems / "operando_01_GCPL_C01.mpt"]
    _invoke(
        *process,
        "--calibration",
        calibration,
        "-o",
        work / "run.zarr",
        "--summary",
        work / "process.json",
    )
    out["cli-dems-process.json"] = (work / "process.json").read_text()
    _invoke(
        *process,
        "--calibration",
        calibration,
        "-o",
        work / "options.nc",
        "--summary",
        work / "options.json",
        "--mass",
        12.5,
        "--delay",
        11.5,
        "--delay-uncertainty",
        2,
        "--gas",
        "O2",
        "--gas",
        "CO2",
        "--onset-method",
        "tangent",
        "--k",
        4,
        "--persistence",
        3,
        "--z",
        "CO2=2",
        "--z",
        "O2=4",
        "--background",
        "linear",
        "--clock-offset",
        0.5,
    )
    out["cli-dems-process-options.json"] = (work / "options.json").read_text()
    _invoke(
        *process,
        "-o",
        work / "signals.zarr",
        "--summary",
        work / "signals.json",
        "--bg-window",
        "0:600",
        "--bg-window",
        "12000:12600",
        "--degree",
        1,
    )
    out["cli-dems-process-no-calibration.json"] = (work / "signals.json").read_text()
    volume = work / "volume.zarr"
    _invoke(
        "tofsims", "reconstruct", sims / "pristine.itm.grd", "--seconds-per-scan", 2, "-o", volume
    )
    out["cli-tofsims-reconstruct.json"] = _volume_record(volume)
    _invoke(
        "tofsims",
        "reconstruct",
        sims / "pristine.itm.grd",
        "--fragments",
        "LiF2-,NiO2-",
        "--resolution",
        4000,
        "--bin",
        2,
        "--dead-time",
        50,
        "--no-recalibrate",
        "-o",
        work / "options-volume.zarr",
    )
    out["cli-tofsims-reconstruct-options.json"] = _volume_record(work / "options-volume.zarr")
    _invoke(
        "tofsims",
        "cei",
        volume,
        "--sputter-rate",
        0.05,
        "--marker",
        "LiF2-",
        "--bulk",
        "NiO2-",
        "--map",
        work / "map.nc",
        "--summary",
        work / "cei-volume.json",
    )
    out["cli-tofsims-cei-volume.json"] = (work / "cei-volume.json").read_text()
    out["cli-tofsims-cei-map.json"] = _map_record(work / "map.nc")
    _invoke(
        "tofsims",
        "cei",
        raw / "modified-sims" / "modified.itm.grd",
        "--sputter-rate",
        0.04,
        "--seconds-per-scan",
        2,
        "--marker",
        "LiF2-",
        "--summary",
        work / "cei-grd.json",
    )
    out["cli-tofsims-cei-grd.json"] = (work / "cei-grd.json").read_text()
    _invoke(
        "tofsims",
        "cei",
        SURFACELAB,
        "--sputter-rate",
        0.05,
        "--marker",
        "PO3-",
        "--bulk",
        "O-",
        "--summary",
        work / "cei-profile.json",
        "--force",  # PO3- marks a buried interface of this perovskite stack: a warning
    )
    out["cli-tofsims-cei-profile.json"] = (work / "cei-profile.json").read_text()
    _invoke("tofsims", "profile", volume, "-o", work / "profile.csv")
    out["cli-tofsims-profile.csv"] = (work / "profile.csv").read_text()
    return out


def batch_outputs(outdir: Path) -> dict[str, str]:
    """The summaries (and calibrations) the batch wrote, name -> text."""
    return {
        f"batch-{name}-{file}": (outdir / name / file).read_text()
        for name, files in BATCH_OUTPUTS.items()
        for file in files
    }


def normalise(text: str, roots: dict[str, Path]) -> str:
    """Replace run- and machine-specific parts of an output's text (see the module docstring)."""
    for label, root in roots.items():
        text = text.replace(str(root), f"<{label}>")
    text = re.sub(r"/\.tmp-[^/\"]*", "/<work>", text)
    from pipelines import __version__

    text = text.replace(f"operando {__version__} ", "operando <version> ")
    text = re.sub(r'"created": "[^"]*"', '"created": "<created>"', text)
    return re.sub(r'"operando_version": "[^"]*"', '"operando_version": "<version>"', text)


def golden_texts(study: Path, batch_outdir: Path, work: Path, roots: dict[str, Path]) -> dict:
    """Every golden output, normalised: the batch's and the commands' (run into ``work``)."""
    texts = {**batch_outputs(batch_outdir), **run_commands(study, work)}
    roots = {"data": DATA, **roots}
    return {name: normalise(text, roots) for name, text in sorted(texts.items())}


def main() -> None:
    sys.path.insert(0, str(TESTS.parent))
    from tests.example_results import run_example_batch

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder).resolve()
        run = run_example_batch(root)
        if run.exit_code != 0:
            raise SystemExit(f"the example batch failed:\n{run.output}")
        work = root / "commands"
        work.mkdir()
        texts = golden_texts(run.manifest.parent, run.outdir, work, {"tmp": root})
    GOLDEN.mkdir(parents=True, exist_ok=True)
    for stale in GOLDEN.iterdir():
        if stale.name not in texts:
            stale.unlink()
    for name, text in texts.items():
        (GOLDEN / name).write_text(text, encoding="utf-8")
    print(f"wrote {len(texts)} golden outputs to {GOLDEN}")


if __name__ == "__main__":
    main()
