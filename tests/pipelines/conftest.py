"""Fixtures of the pipelines tests: generated inputs shared by the hostile-input suite."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def dems_inputs(tmp_path_factory) -> Path:
    """A synthetic DEMS run: ``operando.asc``, ``cell.mpt``, ``calibration.asc``,
    ``steps.toml`` and the calibration made from them, ``cal.json`` (never modified)."""
    from dems.synthetic import make_experiment
    from dems.synthetic_files import write_experiment
    from dems.workflows import calibrate
    from pipelines.atomic import write_json_atomic

    folder = tmp_path_factory.mktemp("dems-inputs")
    paths = write_experiment(make_experiment(seed=21), folder)
    paths["ec"].rename(folder / "cell.mpt")
    paths["truth"].unlink()
    write_json_atomic(
        folder / "cal.json", calibrate(paths["calibration_ms"], paths["steps"]).to_document()
    )
    return folder


@pytest.fixture(scope="session")
def grd_inputs(tmp_path_factory) -> Path:
    """A small pristine-cathode GRD (16 × 16 pixels) with ``run.itm.grd.properties.txt``."""
    from tofsims.synthetic import layered_sample
    from tofsims.synthetic_raw import write_grd

    folder = tmp_path_factory.mktemp("grd-inputs")
    volume, _ = layered_sample("pristine", seed=3, ny=16, nx=16)
    write_grd(volume["counts"], folder / "run.itm.grd", seed=3)
    return folder


@pytest.fixture(scope="session")
def volume_store(tmp_path_factory, grd_inputs) -> Path:
    """The volume store of the GRD of :func:`grd_inputs` (``v.zarr``; tests damage copies)."""
    from tests.pipelines.hostile import invoke

    store = tmp_path_factory.mktemp("volume-store") / "v.zarr"
    arguments = ["--no-recalibrate", "--seconds-per-scan", 2, "-o", store]
    result = invoke("tofsims", "reconstruct", grd_inputs / "run.itm.grd", *arguments)
    assert result.exit_code == 0, result.output
    return store


@pytest.fixture
def hostile_inputs(tmp_path, dems_inputs, grd_inputs) -> Path:
    """This test's own copy of the DEMS and GRD inputs, in ``tmp_path`` (it may damage them)."""
    for folder in (dems_inputs, grd_inputs):
        for path in folder.iterdir():
            shutil.copy(path, tmp_path / path.name)
    return tmp_path
