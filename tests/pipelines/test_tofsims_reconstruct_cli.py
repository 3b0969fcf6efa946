"""``operando tofsims reconstruct``: end to end on generated GRD files, errors."""

from __future__ import annotations

import json
import shutil
import threading
import warnings

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

from pipelines.cli import cli
from pipelines.commands.tofsims_reconstruct import run_reconstruct
from pipelines.outputs import publishing
from tofsims.dead_time import DeadTimeWarning
from tofsims.io.volume_store import open_volume
from tofsims.reconstruct import mass_windows
from tofsims.synthetic_raw import poisson_volume, write_grd
from tofsims.workflows.fragment_purity import purity_analysis, purity_summary
from tofsims.workflows.options import ReconstructOptions

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
    # no heavy calibration ions in this file: said, and the fragments flagged as extrapolated
    assert "not found: C3-" in result.output
    assert "extrapolated beyond the calibration ions (1.0–35.0 u)" in result.output
    record = json.loads(xr.open_zarr(out).attrs["mass_calibration_json"])
    assert {row["fragment"] for row in record["fragments"]} == set(FRAGMENTS.split(","))
    assert all(row["extrapolated"] for row in record["fragments"])
    assert "100% Completed" in result.output
    volume = xr.open_zarr(out)
    assert abs(volume.attrs["sf"] - SF) / SF < 20e-6
    assert abs(volume.attrs["k0"] - K0) / abs(K0) < 20e-6
    assert volume.attrs["sf_properties"] == pytest.approx(SF * (1 + 2e-4))
    asked = FRAGMENTS.split(",")
    counts = volume["counts"].sel(fragment=asked).values
    np.testing.assert_array_equal(counts, truth["window_counts"].values)
    # the isotopologues of the isotope evidence are binned beside BO2- and LiF2-
    assert volume["fragment"].values.tolist() == [
        "C2HO-", "PO3-", "LiF2-", "6LiF2-", "BO2-", "10BO2-", "CeO2-", "NiO2-",
    ]  # fmt: skip
    assert "spectrum" in volume
    assert volume.attrs["window_source"] == "fixed ±0.05 u (--window-u)"


def test_default_windows_follow_the_measured_peak_width(raw, tmp_path):
    path, _ = raw
    out = tmp_path / "measured.zarr"
    result = run(path, "-o", out, "--fragments", "LiF2-,NiO2-", "--no-recalibrate")
    assert result.exit_code == 0, result.output
    assert "mass windows: ±1.5 FWHM of the peak width measured on" in result.output
    assert "CHO2-    Δm 0.0152 u  needs R    2970  resolved, fitted" in result.output
    volume = xr.open_zarr(out)
    half = (volume["mass_high"] - volume["mass_low"]).values / 2
    masses = volume["mass"].values
    np.testing.assert_allclose(half, 1.5 * masses / 5000.0, rtol=0.05)  # write_grd: R = 5000
    record = json.loads(volume.attrs["mass_windows_json"])
    assert [e["fragment"] for e in record] == ["LiF2-", "6LiF2-", "NiO2-"]
    width = json.loads(volume.attrs["peak_width_json"])
    assert width["ions"][0] == "H-"
    # no heavy calibration ions in this file: the width beyond Cl- (35 u) is extrapolated
    assert width["excluded"]["C8-"] == "not found" and "C8H-" not in width["excluded"]
    assert all(e["resolving_power_extrapolated"] for e in record)
    assert "(1.0–35.0 u)" in volume.attrs["window_source"]
    assert "R extrapolated beyond the peaks measured" in result.output


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
    # one shot per pixel and 1–3 ions per pixel and scan: the correction is large
    assert "warning: " in result.output and "run.itm.grd: the dead-time correction" in result.output
    volume = xr.open_zarr(out)
    assert len(volume.attrs["dead_time_increase"]) == 2
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


def test_calibration_is_fitted_on_a_sample_and_recorded(raw, tmp_path):
    path, _ = raw
    out = tmp_path / "v.zarr"
    result = run(path, "-o", out, "--fragments", FRAGMENTS)
    assert result.exit_code == 0, result.output
    assert "pass 1/2" not in result.output  # no second pass over the file
    assert "fitted on" in result.output and "ppm at the fragments" in result.output
    record = json.loads(xr.open_zarr(out).attrs["mass_calibration_json"])
    assert record["sample"]["events"] > 0 and 0 < record["sample"]["fraction"] <= 1
    assert record["sample"]["mass_error_ppm"] <= 1.0


def test_record_outside_the_raster_mid_file(raw, tmp_path):
    path, _ = raw
    records = np.fromfile(path, dtype="<u4").reshape(-1, 5).copy()
    middle = len(records) // 2
    records[middle, 3] = 99
    bad = tmp_path / "bad.grd"
    records.tofile(bad)
    (tmp_path / "bad.grd.properties.txt").write_bytes(
        path.with_name("run.itm.grd.properties.txt").read_bytes()
    )
    result = run(bad, "-o", tmp_path / "v.zarr", "--no-recalibrate")
    assert result.exit_code == 1
    assert f"record {middle}: y = 99 outside the raster (0…11)" in result.output
    assert "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.grd", "bad.grd.properties.txt"]


def test_scheduler_of_the_caller_decides_the_engine(raw, tmp_path, monkeypatch):
    import dask

    import tofsims.reconstruct
    import tofsims.workflows.reconstruction as workflow

    calls = []
    one_pass, lazy = workflow.reconstruct_grd, tofsims.reconstruct.reconstruct

    def recording_one_pass(*args, workers=None, **kwargs):
        calls.append(("one pass", workers))
        return one_pass(*args, workers=workers, **kwargs)

    def recording_lazy(*args, **kwargs):
        calls.append(("dask", None))
        return lazy(*args, **kwargs)

    monkeypatch.setattr(workflow, "reconstruct_grd", recording_one_pass)
    monkeypatch.setattr(tofsims.reconstruct, "reconstruct", recording_lazy)
    path, _ = raw
    options = ["--fragments", FRAGMENTS, "--no-recalibrate"]
    assert run(path, "-o", tmp_path / "a.zarr", *options, "--workers", "2").exit_code == 0
    with dask.config.set(scheduler="synchronous"):  # operando batch, inside a worker
        assert run(path, "-o", tmp_path / "b.zarr", *options).exit_code == 0
    with dask.config.set(scheduler=dask.get):  # a scheduler of the caller's (a cluster)
        assert run(path, "-o", tmp_path / "c.zarr", *options).exit_code == 0
    assert calls == [("one pass", 2), ("one pass", 1), ("dask", None)]
    volumes = [xr.open_zarr(tmp_path / f"{n}.zarr")["counts"].values for n in "abc"]
    np.testing.assert_array_equal(volumes[0], volumes[1])
    np.testing.assert_array_equal(volumes[0], volumes[2])


def test_dead_time_warning_goes_to_each_runs_own_log(raw, tmp_path):
    # two files reconstructed at once on threads, as operando batch does: each log gets its own
    # file's warning, once, and no Python warning is raised or left for the process
    path, _ = raw
    paths = {}
    for name in ("first", "second"):
        copy = tmp_path / f"{name}.itm.grd"
        shutil.copy(path, copy)
        shutil.copy(path.with_name(path.name + ".properties.txt"),
                    copy.with_name(copy.name + ".properties.txt"))  # fmt: skip
        paths[name] = copy
    options = ReconstructOptions(fragments=("PO3-", "NiO2-"), recalibrate=False, poisson=True)
    logs = {name: [] for name in paths}
    errors = []

    def reconstruct(name):
        output = tmp_path / f"{name}.zarr"
        log = logs[name]
        try:
            with publishing({"-o": output}, [paths[name]], overwrite=False) as staging:
                run_reconstruct(
                    paths[name],
                    options,
                    output=output,
                    staging=staging,
                    workers=1,
                    echo=lambda message, err=False: log.append(message),
                    progress=False,
                )
        except Exception as err:  # reported below, with the thread's name
            errors.append((name, err))

    with warnings.catch_warnings():
        warnings.simplefilter("error", DeadTimeWarning)
        threads = [threading.Thread(target=reconstruct, args=(n,)) for n in paths]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    for name, lines in logs.items():
        found = [line for line in lines if "dead-time correction raises" in line]
        assert len(found) == 1 and found[0].startswith(f"warning: {paths[name]}: "), lines
    assert warnings.showwarning is warnings._showwarning_orig  # nothing swapped and left


def test_inspect_grd_reports_the_default_windows(raw):
    path, _ = raw
    result = CliRunner().invoke(cli, ["tofsims", "inspect", str(path), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)[0]
    assert report["resolving_power"]["C2HO-"] == pytest.approx(5000, rel=0.05)
    windows = {e["fragment"]: e for e in report["mass_windows"]}
    assert set(windows) == {"C2HO-", "PO3-", "LiF2-", "6LiF2-", "BO2-", "10BO2-", "CeO2-", "NiO2-"}
    assert windows["CeO2-"]["resolving_power_extrapolated"] is True  # light ions only
    bo2 = {i["interferent"]: i["resolved"] for i in windows["BO2-"]["interferents_in_window"]}
    assert bo2["C2F-"] is False and bo2["C2H3O-"] is True
    text = CliRunner().invoke(cli, ["tofsims", "inspect", str(path)]).output
    assert "C2F-     Δm 0.0007 u  needs R   58787  NOT resolved" in text


@pytest.fixture(scope="module")
def boron_free(tmp_path_factory):
    """A boron-free, lithiated run: m/z 43 holds C2F- and C2H3O-, m/z 42 nothing."""
    folder = tmp_path_factory.mktemp("boron_free")
    rng = np.random.default_rng(5)
    shape = (40, 6, 6)
    lithium = rng.poisson(3.0 * np.ones(shape))
    li6 = rng.binomial(lithium, 0.0759)
    species = {
        "C2F-": rng.poisson(0.5 * np.ones(shape)),
        "C2H3O-": rng.poisson(0.8 * np.ones(shape)),
        "LiF2-": lithium - li6,
        "6LiF2-": li6,
        "NiO2-": rng.poisson(np.ones(shape)),
    }
    counts = xr.DataArray(np.stack(list(species.values())).astype(np.int64),
                          dims=("fragment", "scan", "y", "x"),
                          coords={"fragment": list(species)})  # fmt: skip
    path = folder / "pristine.itm.grd"
    write_grd(counts, path, resolution=5000.0, calibration_per_pixel=3.0, seconds_per_scan=1.0)
    return path


def test_reconstruct_prints_isotope_evidence_per_depth_block(boron_free, tmp_path):
    out = tmp_path / "v.zarr"
    result = run(boron_free, "-o", out, "--fragments", "BO2-,LiF2-,NiO2-", "--no-recalibrate")
    assert result.exit_code == 0, result.output
    text = result.output
    assert "isotope evidence: counts in the windows of 3 depth-block spectra" in text
    boron = next(line for line in text.splitlines() if line.startswith("  10B/11B"))
    assert "INCONSISTENT with boron" in boron and "natural 0.248" in boron
    lithium = next(line for line in text.splitlines() if line.startswith("  6Li/7Li"))
    assert "not saturated" in lithium and "fitted counts" in lithium
    assert "scan    0:" in text and "scan   16:" in text and "scan   32:" in text
    assert "interfered in the blocks from scans 0, 16, 32" in text
    assert "warning: BO2- window counts are inconsistent with boron" in text
    # the printed run ratio is the one cei's summary.json takes from the volume
    volume = open_volume(out)
    _, analysis = purity_analysis(volume)
    values, _, _ = purity_summary(volume, analysis.compute())
    printed = float(lithium.split()[1])
    assert printed == pytest.approx(values["isotope_evidence"]["lithium"]["ratio"], rel=2e-3)


def test_inspect_grd_prints_the_samples_isotope_evidence(boron_free):
    result = CliRunner().invoke(cli, ["tofsims", "inspect", str(boron_free), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("[") :])[0]
    boron = report["isotope_evidence"]["boron"]
    assert boron["consistent_with_boron"] is False and len(boron["per_block"]) == 1
    assert report["isotope_evidence"]["lithium"]["saturated"] is False
    assert any("inconsistent with boron" in w for w in report["isotope_evidence_warnings"])
    text = CliRunner().invoke(cli, ["tofsims", "inspect", str(boron_free)]).output
    assert "isotope evidence: counts in the windows of the sampled spectrum" in text
    assert "INCONSISTENT with boron" in text


def test_reconstruct_without_isotope_pairs_says_so(raw, tmp_path):
    path, _ = raw
    out = tmp_path / "v.zarr"
    result = run(path, "-o", out, "--fragments", "C2HO-,NiO2-", "--no-recalibrate")
    assert result.exit_code == 0, result.output
    assert "10B/11B  n/a (10BO2- and BO2- are not both in the volume)" in result.output
