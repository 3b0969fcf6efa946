"""``operando tofsims reconstruct``: end to end on generated GRD files, errors."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

from pipelines.cli import cli
from tofsims.reconstruct import mass_windows
from tofsims.synthetic_raw import poisson_volume, write_grd

FRAGMENTS = "C2HO-,PO3-,LiF2-,BO2-,CeO2-,NiO2-"
SF, K0 = 72013.7, -2131.4


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    names = FRAGMENTS.split(",")
    volume = poisson_volume(names, (6, 12, 12), mean=1.5, seed=11)
    windows = mass_windows(names, window_u=0.05)
    truth = write_grd(
        volume,
        folder / "run.itm.grd",
        sf=SF,
        k0=K0,
        calibration_per_pixel=40.0,
        windows=list(zip(windows.mass_low.values, windows.mass_high.values, strict=True)),
        properties_sf=SF * (1 + 2e-4),
        properties_k0=K0 + 10.0,
        dead_time_s=6.5e-8,
        seed=12,
    )
    return folder / "run.itm.grd", truth


def run(*args):
    return CliRunner().invoke(cli, ["tofsims", "reconstruct", *map(str, args)])


def test_reconstruct_with_recalibration(raw, tmp_path):
    path, truth = raw
    out = tmp_path / "volume.zarr"
    result = run(path, "-o", out, "--fragments", FRAGMENTS, "--window-u", "0.05")
    assert result.exit_code == 0, result.output
    assert "mass calibration" in result.output and "F- " in result.output
    assert "100% Completed" in result.output
    volume = xr.open_zarr(out)
    assert abs(volume.attrs["sf"] - SF) / SF < 20e-6
    assert abs(volume.attrs["k0"] - K0) / abs(K0) < 20e-6
    assert volume.attrs["sf_properties"] == pytest.approx(SF * (1 + 2e-4))
    np.testing.assert_array_equal(volume["counts"].values, truth["window_counts"].values)
    assert volume["fragment"].values.tolist() == FRAGMENTS.split(",")
    assert "spectrum" in volume


def test_no_recalibration_binning_and_dead_time(raw, tmp_path):
    path, _ = raw
    out = tmp_path / "binned.zarr"
    result = run(
        path,
        "-o",
        out,
        "--no-recalibrate",
        "--bin",
        "3",
        "--poisson",
        "--fragments",
        "PO3-,NiO2-",
        "--seconds-per-scan",
        "2.5",
        "--workers",
        "1",
    )
    assert result.exit_code == 0, result.output
    assert "mass calibration" not in result.output
    volume = xr.open_zarr(out)
    sizes = {d: volume.sizes[d] for d in ("fragment", "scan", "y", "x")}
    assert sizes == {"fragment": 2, "scan": 6, "y": 4, "x": 4}
    assert volume.attrs["sf"] == pytest.approx(SF * (1 + 2e-4))
    assert volume.attrs["poisson_corrected"] == 1
    assert volume.attrs["dead_time_s"] == pytest.approx(6.5e-8)
    assert volume["counts"].dtype == np.float64 and volume["counts_raw"].dtype == np.uint32
    assert volume["sputter_time"].values.tolist() == [2.5 * k for k in range(6)]  # scan starts


def test_usage_errors(raw, tmp_path):
    path, _ = raw
    both = run(path, "-o", tmp_path / "a.zarr", "--window-u", "0.1", "--resolution", "3000")
    assert both.exit_code == 2 and "either --window-u or --resolution" in both.output
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    wrong = run(text, "-o", tmp_path / "b.zarr")
    assert wrong.exit_code == 2 and "needs a GRD event list" in wrong.output
    existing = tmp_path / "c.zarr"
    existing.mkdir()
    assert run(path, "-o", existing).exit_code == 2


def test_bad_data_gives_one_line_error(raw, tmp_path):
    path, _ = raw
    cut = tmp_path / "cut.grd"
    cut.write_bytes(path.read_bytes()[:1003])
    (tmp_path / "cut.grd.properties.txt").write_bytes(
        path.with_name("run.itm.grd.properties.txt").read_bytes()
    )
    result = run(cut, "-o", tmp_path / "v.zarr")
    assert result.exit_code == 1
    assert "cut.grd: truncated: 1003 bytes" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "v.zarr").exists()
    unknown = run(path, "-o", tmp_path / "w.zarr", "--fragments", "Xy2-")
    assert unknown.exit_code == 1 and "not in the isotope table" in unknown.output


def test_help_has_examples():
    result = CliRunner().invoke(cli, ["tofsims", "reconstruct", "--help"])
    assert result.exit_code == 0
    assert "Examples:" in result.output and "--resolution" in result.output
