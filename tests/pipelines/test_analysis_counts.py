"""One sample, one set of numbers: ``tofsims profile`` and ``compare`` use the counts ``cei`` uses.

Ground truth: a GRD run written by :func:`tofsims.synthetic_raw.write_grd` with formate
(CHO₂⁻) beside LiF₂⁻ at R = 5000 — resolved, so the peak fits separate it, while LiF₂⁻'s mass
window holds part of it. Exports without spectra (the real SurfaceLab profile, a 3D ASCII
export) have nothing to fit and keep their window counts.
"""

from __future__ import annotations

import json
import warnings

import dask
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from click.testing import CliRunner

from pipelines.cli import cli
from pipelines.compare import CompareOptions, counts_note, load_comparison
from tofsims.io import open_tofsims
from tofsims.io.volume_store import open_volume, write_volume
from tofsims.synthetic_raw import write_grd
from tofsims.workflows.fragment_purity import (
    FITTED_COUNTS,
    WINDOW_COUNTS,
    analysis_volume,
    purity_analysis,
)
from tofsims.workflows.options import ReconstructOptions
from tofsims.workflows.reconstruction import reconstruct_into

SHAPE = (37, 6, 6)  # 37 scans: several depth blocks, each fitted on its own spectrum
RATES = {"LiF2-": 2.0, "CHO2-": 0.8, "NiO2-": 1.0}  # mean counts per voxel
SURFACELAB = "tofsims/uhasselt_surfacelab73_depth_profiles/I241209p_A_MAPI_1f-1nA_neg-B4 - NF.txt"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A reconstructed GRD store with formate beside LiF2-, and the planted LiF2- total."""
    folder = tmp_path_factory.mktemp("formate")
    rng = np.random.default_rng(5)
    means = np.array(list(RATES.values()))[:, None, None, None]
    counts = rng.poisson(means * np.ones((1, *SHAPE))).astype(np.int64)
    truth = xr.DataArray(counts, dims=("fragment", "scan", "y", "x"),
                         coords={"fragment": list(RATES)})  # fmt: skip
    grd = folder / "run.grd"
    write_grd(truth, grd, resolution=5000.0, calibration_per_pixel=3.0, seconds_per_scan=1.0,
              seed=6)  # fmt: skip
    store = folder / "volume.zarr"
    options = ReconstructOptions(fragments=("LiF2-", "NiO2-"), recalibrate=False)
    reconstruct_into(store, grd, options, workers=1)
    return store, float(truth.sel(fragment="LiF2-").sum())


def _ascii_export(folder):
    """A 3D ASCII export (one file per peak, no spectrum): ``{label: counts(z, y, x)}``."""
    rng = np.random.default_rng(2)
    truth = {}
    header = "# IONTOF SurfaceLab 3D export (synthetic)\n# x\ty\tz\tintensity\n"
    for number, label in ((1, "LiF_2-"), (2, "NiO_2-")):
        values = rng.poisson(4.0, size=(3, 4, 5))
        truth[label] = values
        rows = "".join(
            f"{x}\t{y}\t{z}\t{values[z, y, x]}\n" for z, y, x in np.ndindex(values.shape)
        )
        (folder / f"run_1 ({number}) - {label}.txt").write_text(header + rows, encoding="latin-1")
    return folder / "run_1 (1) - LiF_2-.txt", truth


def _profile(*args):
    result = CliRunner().invoke(cli, ["tofsims", "profile", *map(str, args)])
    assert result.exit_code == 0, result.output
    return result.output


def test_profile_of_a_reconstructed_grd_gives_the_fitted_counts(run, tmp_path):
    store, planted = run
    output = _profile(store, "-o", tmp_path / "p.csv")
    assert f"counts: {FITTED_COUNTS}" in output and "(window)" in output
    table = pd.read_csv(tmp_path / "p.csv")
    # the columns users read are kept; the window counts follow under their own names
    assert list(table.columns[:5]) == ["scan", "sputter_time_s", "LiF2-", "6LiF2-", "NiO2-"]
    assert list(table.columns[5:]) == ["LiF2- (window)", "6LiF2- (window)", "NiO2- (window)"]
    assert table["LiF2-"].sum() == pytest.approx(planted, rel=0.03)
    assert table["LiF2- (window)"].sum() > 1.05 * planted  # the window holds formate too
    _profile(store, "-o", tmp_path / "p.nc")
    with xr.open_dataset(tmp_path / "p.nc") as profile:
        assert profile.attrs["counts"] == FITTED_COUNTS
        np.testing.assert_allclose(profile["intensity"].values, table.iloc[:, 2:5].values)
        np.testing.assert_allclose(profile["intensity_window"].values, table.iloc[:, 5:].values)


def test_profile_and_cei_count_the_same(run):
    volume = open_volume(run[0])
    shared = analysis_volume(volume)
    of_cei, _ = purity_analysis(volume)
    again = analysis_volume(shared)  # analysed twice: fitted from the window counts again
    # lazy: the windows and blocks are read to build the fits, the counts and spectra are not
    assert all(dask.is_dask_collection(v["counts"].data) for v in (shared, of_cei, again))
    assert shared.attrs["counts"] == of_cei.attrs["counts"] == FITTED_COUNTS
    np.testing.assert_allclose(shared["counts"].values, of_cei["counts"].values)
    np.testing.assert_allclose(again["counts"].values, shared["counts"].values)
    np.testing.assert_array_equal(shared["counts_window"].values, volume["counts"].values)


def _result(folder, name, group, store):
    experiment = folder / name
    experiment.mkdir()
    done = {"name": name, "kind": "tofsims", "labels": {"sample": group}}
    (experiment / "done.json").write_text(json.dumps(done))
    (experiment / "summary.json").write_text("{}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the export's string coordinates: object dtype
        write_volume(store, experiment / "volume.zarr")


def test_compare_uses_the_fitted_counts_and_exports_their_window_counts(run, tmp_path):
    store, planted = run
    results = tmp_path / "results"
    results.mkdir()
    _result(results, "grd-sims", "grd", xr.open_zarr(store))
    export, truth = _ascii_export(tmp_path)
    _result(results, "ascii-sims", "ascii", open_tofsims(export))
    comparison = load_comparison(results, CompareOptions())
    assert comparison.counts == {"grd": FITTED_COUNTS, "ascii": WINDOW_COUNTS}
    note = counts_note(comparison.counts)
    assert f"grd: {FITTED_COUNTS}" in note and f"ascii: {WINDOW_COUNTS}" in note
    fitted = comparison.profiles["grd"]
    pixels = SHAPE[1] * SHAPE[2]
    assert fitted.attrs["counts"] == FITTED_COUNTS
    assert float(fitted.sel(fragment="LiF2-").sum()) * pixels == pytest.approx(planted, rel=0.03)
    window = comparison.volumes["grd"]["counts_window"].sel(fragment="LiF2-").sum()
    assert float(window) > 1.05 * planted  # what compare showed before
    # the 3D render draws the same fitted counts
    drawn = comparison.volumes["grd"]["counts"].sel(fragment="LiF2-").sum()
    assert float(drawn) == pytest.approx(float(fitted.sel(fragment="LiF2-").sum()) * pixels)
    exported = comparison.profiles["ascii"]
    assert exported.attrs["counts"] == WINDOW_COUNTS
    pixels = truth["LiF_2-"].shape[1] * truth["LiF_2-"].shape[2]
    np.testing.assert_allclose(
        exported.sel(fragment="LiF2-").values * pixels, truth["LiF_2-"].sum(axis=(1, 2))
    )


def test_exports_keep_their_window_counts_and_say_so(data_dir, tmp_path):
    export, truth = _ascii_export(tmp_path)
    output = _profile(export, "--seconds-per-scan", 2, "-o", tmp_path / "a.csv")
    assert "counts: window; not fitted: the volume holds no spectrum" in output
    table = pd.read_csv(tmp_path / "a.csv")
    assert list(table.columns) == ["scan", "sputter_time_s", "LiF_2-", "NiO_2-"]  # its labels
    np.testing.assert_array_equal(table["LiF_2-"], truth["LiF_2-"].sum(axis=(1, 2)))
    _profile(export, "--seconds-per-scan", 2, "-o", tmp_path / "a.nc")
    with xr.open_dataset(tmp_path / "a.nc") as profile:
        assert profile.attrs["counts"] == WINDOW_COUNTS and "intensity_window" not in profile
    surfacelab = data_dir / SURFACELAB
    output = _profile(surfacelab, "-o", tmp_path / "s.csv")
    assert "counts: window; not fitted: a depth profile export: no spectra to fit" in output
    assert not any(c.endswith("(window)") for c in pd.read_csv(tmp_path / "s.csv").columns)
