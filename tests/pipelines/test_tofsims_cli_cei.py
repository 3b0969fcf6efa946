import json
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from click.testing import CliRunner

from pipelines.cli import cli
from tofsims.synthetic import layered_sample

SUMMARY_KEYS = {"cei_thickness_nm", "coating_thickness_nm", "fragments"}
FRAGMENT_KEYS = {"time_to_max_s", "depth_at_max_nm", "depth_50_nm", "width_16_84_nm"}


def _store(tmp_path_factory, name, **overrides):
    # signals from an information depth of 0.3 nm, as real ones (and the stack fit's prior)
    overrides = {"information_depth_nm": 0.3, **overrides}
    volume, truth = layered_sample(name, seed=31, chunks={"y": 16}, **overrides)
    path = tmp_path_factory.mktemp(name) / f"{name}.zarr"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zarr v3: fixed-length string dtype warning
        volume.to_zarr(path)
    return path, truth


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    return {name: _store(tmp_path_factory, name) for name in ("pristine", "modified")}


def _run(*args):
    return CliRunner().invoke(cli, ["tofsims", *map(str, args)])


def _cei(store, tmp_path, *extra):
    summary = tmp_path / "summary.json"
    result = _run("cei", store, "--sputter-rate", 0.05, "--summary", summary, "--overwrite", *extra)
    assert result.exit_code == 0, result.output
    return json.loads(summary.read_text())


@pytest.mark.parametrize("name", ["pristine", "modified"])
def test_cei_summary_against_ground_truth(stores, tmp_path, name):
    store, truth = stores[name]
    summary = _cei(store, tmp_path, "--map", tmp_path / "map.nc")
    assert SUMMARY_KEYS <= set(summary)
    cei = summary["cei_thickness_nm"]
    assert {"mean", "median", "std", "uncertainty", "method"} <= set(cei)
    mean = float(truth.cei_thickness_nm.mean())
    assert cei["mean"] == pytest.approx(mean, abs=max(0.05 * mean, 0.3))
    assert cei["std"] > 0 and cei["uncertainty"] > 0
    assert cei["method"] == "stack map" and "layer stack" in cei["method_details"]
    assert set(cei["estimators"]) == {
        "50 % after the maximum",
        "erf fit",
        "emg fit",
        "stack fit",
        "stack map",
    }
    assert cei["estimators"]["stack map"] == cei["mean"]
    assert cei["whole_field"] == cei["estimators"]["stack fit"]
    assert 0 <= cei["method_spread"] < 0.1 * mean
    # the ± combines every budget term; the lateral spread is reported beside it
    terms = np.array(list(cei["budget"].values()))
    assert cei["uncertainty"] == pytest.approx(float(np.sqrt((terms**2).sum())))
    assert 0 < cei["lateral_std"] <= cei["std"]
    assert cei["valid_fraction"] + cei["filled_fraction"] + cei["masked_fraction"] == (
        pytest.approx(1.0)
    )
    assert summary["layer_stack"]["coating_present"] is (name == "modified")
    assert summary["warnings"] == []
    for fragment in ("C2HO-", "PO3-", "LiF2-", "BO2-", "CeO2-", "NiO2-"):
        assert FRAGMENT_KEYS <= set(summary["fragments"][fragment])
    c2ho = summary["fragments"]["C2HO-"]
    assert c2ho["depth_at_max_nm"] == pytest.approx(0.05 * c2ho["time_to_max_s"])
    if name == "modified":
        assert summary["coating_thickness_nm"] == pytest.approx(3.0, abs=0.5)
        assert summary["coating_thickness_uncertainty_nm"] > 0
        assert set(summary["coating_budget"]) == set(cei["budget"])
        assert summary["coating_estimators"]["stack fit"] == summary["coating_thickness_nm"]
    else:
        assert summary["coating_thickness_nm"] is None
        assert "coating_thickness_nm" in summary["null_reasons"]
    # the map file holds the thickness and sigma maps
    with xr.open_dataset(tmp_path / "map.nc") as thickness_map:
        assert {"thickness", "thickness_std", "mask"} <= set(thickness_map.data_vars)
        assert float(thickness_map.thickness.mean()) == pytest.approx(cei["mean"])


def test_pristine_thicker_than_modified_in_every_summary_number(stores, tmp_path_factory):
    summaries = {
        name: _cei(stores[name][0], tmp_path_factory.mktemp(name))
        for name in ("pristine", "modified")
    }
    p, m = summaries["pristine"], summaries["modified"]
    assert p["cei_thickness_nm"]["mean"] > m["cei_thickness_nm"]["mean"]
    assert p["cei_thickness_nm"]["median"] > m["cei_thickness_nm"]["median"]
    for key in ("time_to_max_s", "depth_at_max_nm", "depth_50_nm"):
        assert p["fragments"]["C2HO-"][key] > m["fragments"]["C2HO-"][key], key
    assert p["two_marker_crossing_nm"]["value"] > m["two_marker_crossing_nm"]["value"]


def test_seconds_per_scan_option_rescales_time(stores, tmp_path):
    store, _ = stores["modified"]
    default = _cei(store, tmp_path)
    slower = _cei(store, tmp_path, "--seconds-per-scan", 4, "--marker", "LiF2-")
    assert slower["fragments"]["LiF2-"]["time_to_max_s"] == pytest.approx(
        2 * default["fragments"]["LiF2-"]["time_to_max_s"]
    )
    assert slower["input"]["sputter_time_source"] == "option --seconds-per-scan"
    assert slower["input"]["marker"] == "LiF2-"


def test_profile_command_csv_and_netcdf(stores, tmp_path):
    store, _ = stores["modified"]
    csv = tmp_path / "profiles.csv"
    result = _run("profile", store, "-o", csv)
    assert result.exit_code == 0, result.output
    table = pd.read_csv(csv)
    volume = xr.open_zarr(store)
    assert list(table.columns[:2]) == ["scan", "sputter_time_s"]
    np.testing.assert_array_equal(
        table["CeO2-"].values, volume.counts.sel(fragment="CeO2-").sum(("y", "x")).values
    )
    nc = tmp_path / "profiles.nc"
    assert _run("profile", store, "-o", nc).exit_code == 0
    with xr.open_dataset(nc) as profile:
        assert profile.intensity.dims == ("scan", "peak")
        np.testing.assert_array_equal(profile.intensity.values, table.iloc[:, 2:].values)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp files


def test_help_has_examples():
    for command in ("cei", "profile"):
        result = _run(command, "--help")
        assert result.exit_code == 0 and "Examples:" in result.output
    assert "--sputter-rate" in _run("cei", "--help").output


# ---------------------------------------------------------------- bad input
def test_missing_input(tmp_path):
    result = _run(
        "cei", tmp_path / "nope.zarr", "--sputter-rate", 0.05, "--summary", tmp_path / "s.json"
    )
    assert result.exit_code == 2  # click: path does not exist


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    result = _run(
        "cei", tmp_path / "empty", "--sputter-rate", 0.05, "--summary", tmp_path / "s.json"
    )
    assert result.exit_code == 1
    assert "empty" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "s.json").exists()


def test_store_without_counts(tmp_path):
    store = tmp_path / "other.zarr"
    xr.Dataset({"temperature": ("t", [1.0, 2.0])}).to_zarr(store)
    result = _run("profile", store, "-o", tmp_path / "p.csv")
    assert result.exit_code == 1
    assert "neither a TOF-SIMS volume" in result.output
    assert not (tmp_path / "p.csv").exists()


def test_garbage_file(tmp_path):
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(bytes(range(256)) * 4)
    result = _run("cei", garbage, "--sputter-rate", 0.05, "--summary", tmp_path / "s.json")
    assert result.exit_code == 1
    assert "garbage.bin" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sputter-rate", "-1"], "must be > 0"),
        (["--sputter-rate", "0.05", "--marker", "ZrO2-"], "'ZrO2-' is not in the data"),
        (["--sputter-rate", "0.05", "--seconds-per-scan", "0"], "must be > 0"),
        (["--sputter-rate", "0.05", "--bulk", "CoO2-"], "'CoO2-' is not in the data"),
    ],
)
def test_bad_options(stores, tmp_path, args, message):
    store, _ = stores["pristine"]
    summary = tmp_path / "s.json"
    result = _run("cei", store, *args, "--summary", summary)
    assert result.exit_code in (1, 2)
    assert message in result.output
    assert not summary.exists()


def test_bad_profile_suffix(stores, tmp_path):
    result = _run("profile", stores["pristine"][0], "-o", tmp_path / "p.xlsx")
    assert result.exit_code == 2 and ".csv or .nc" in result.output


def test_non_monotonic_time_in_store(tmp_path):
    volume, _ = layered_sample("pristine", ny=8, nx=8, n_scans=20)
    times = volume.sputter_time.values.copy()
    times[5] = times[3]
    store = tmp_path / "bad.zarr"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        volume.assign_coords(sputter_time=("scan", times)).to_zarr(store)
    result = _run("cei", store, "--sputter-rate", 0.05, "--summary", tmp_path / "s.json")
    assert result.exit_code == 1
    assert "not increasing at scan 5" in result.output


def _write_ascii3d(volume, folder):
    """Write per-peak 3D ASCII exports (x fastest, then y, then scan) from a volume."""
    labels = {
        "C2HO-": "C_2HO-",
        "PO3-": "PO_3-",
        "LiF2-": "LiF_2-",
        "BO2-": "BO_2-",
        "NiO2-": "NiO_2-",
        "CeO2-": "CeO_2-",
    }
    nz, ny, nx = (volume.sizes[d] for d in ("scan", "y", "x"))
    z, y, x = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
    for number, fragment in enumerate(volume.fragment.values, start=1):
        values = volume.counts.sel(fragment=fragment).values
        table = np.column_stack([x.ravel(), y.ravel(), z.ravel(), values.ravel()])
        path = folder / f"sample ({number}) - {labels[str(fragment)]}.txt"
        np.savetxt(path, table, fmt="%d", header="3D export test", comments="# ")


def test_cei_on_3d_ascii_exports(tmp_path):
    volume, truth = layered_sample("modified", ny=16, nx=16, n_scans=150, seed=3)
    folder = tmp_path / "export"
    folder.mkdir()
    _write_ascii3d(volume, folder)
    summary = tmp_path / "s.json"
    no_time = _run("cei", folder, "--sputter-rate", 0.05, "--summary", summary)
    assert no_time.exit_code == 1 and "--seconds-per-scan" in no_time.output
    result = _run(
        "cei",
        folder,
        "--sputter-rate",
        0.05,
        "--seconds-per-scan",
        2,
        "--summary",
        summary,
        "--map",
        tmp_path / "map.nc",
    )
    assert result.exit_code == 0, result.output
    from_ascii = json.loads(summary.read_text())
    mean = float(truth.cei_thickness_nm.mean())
    assert from_ascii["cei_thickness_nm"]["mean"] == pytest.approx(mean, abs=max(0.05 * mean, 0.3))
    assert from_ascii["coating_thickness_nm"] == pytest.approx(3.0, abs=0.5)
    # the same numbers as from the in-memory volume
    store = tmp_path / "same.zarr"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        volume.to_zarr(store)
    from_store = _cei(store, tmp_path)
    assert from_ascii["cei_thickness_nm"]["mean"] == pytest.approx(
        from_store["cei_thickness_nm"]["mean"]
    )
    assert from_ascii["fragments"] == from_store["fragments"]
