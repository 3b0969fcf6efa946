"""Reconstruction: volume == true event counts per voxel and window; Poisson; Zarr store."""

from __future__ import annotations

import dask
import numpy as np
import pytest
import xarray as xr

from tofsims.errors import AnalysisError, TofsimsReadError
from tofsims.fragments import ion_mass
from tofsims.grd_to_volume import reconstruct_grd
from tofsims.io import grd
from tofsims.io.grd_records import open_records
from tofsims.io.volume_store import storage_chunks, write_volume
from tofsims.masscal import calibrate, mass_to_tof
from tofsims.reconstruct import (
    channel_lookup,
    mass_windows,
    poisson_correct,
    reconstruct,
    shadow_lookup,
)
from tofsims.synthetic_raw import poisson_volume, write_grd, write_properties

FRAGMENTS = ["C2HO-", "PO3-", "LiF2-", "BO2-", "CeO2-", "NiO2-"]
SF, K0 = 72013.7, -2131.4


def _no_compute(*args, **kwargs):
    raise AssertionError("something was computed")


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """A small GRD with all target fragments, calibration peaks and background."""
    folder = tmp_path_factory.mktemp("grd")
    volume = poisson_volume(FRAGMENTS, (7, 9, 11), mean=[0.5, 1.0, 2.0, 0.3, 0.2, 3.0], seed=4)
    windows = mass_windows(FRAGMENTS, window_u=0.05)
    truth = write_grd(
        volume,
        folder / "run.grd",
        sf=SF,
        k0=K0,
        windows=list(zip(windows.mass_low.values, windows.mass_high.values, strict=True)),
        background_per_pixel=3.0,
        seed=5,
    )
    return folder / "run.grd", truth


def test_windows_fixed_and_from_resolution():
    fixed = mass_windows(["PO3-"], window_u=0.02)
    assert (fixed.mass_high - fixed.mass_low).item() == pytest.approx(0.04)
    by_resolution = mass_windows(["PO3-"], resolution=5000)
    width = (by_resolution.mass_high - by_resolution.mass_low).item()
    assert width == pytest.approx(ion_mass("PO3-") / 5000)
    assert mass_windows(["PO3-"]).mass_low.item() == pytest.approx(ion_mass("PO3-") - 0.05)
    with pytest.raises(AnalysisError, match="either"):
        mass_windows(["PO3-"], window_u=0.1, resolution=100)


def test_channel_lookup_and_overlap():
    lut = channel_lookup(np.array([41.0]), np.array([41.01]), SF, K0, 600000)
    inside = np.flatnonzero(lut == 0)
    assert inside[0] == np.ceil(mass_to_tof(41.0, SF, K0))
    assert inside[-1] == np.floor(mass_to_tof(41.01, SF, K0))
    with pytest.raises(AnalysisError, match="overlap"):
        channel_lookup(np.array([44.0, 44.5]), np.array([45.0, 45.5]), SF, K0, 600000)
    with pytest.raises(AnalysisError, match="covers no TOF channel"):
        channel_lookup(np.array([300.0]), np.array([301.0]), SF, K0, 600000)


def test_volume_equals_true_window_counts(generated):
    path, truth = generated
    events = grd.read(path, validate=False, block_events=3000)
    assert events["record"].data.numblocks[0] > 2
    with dask.config.set(scheduler=_no_compute):
        volume = reconstruct(events, FRAGMENTS, window_u=0.05)  # builds the graph only
    volume = volume.compute()
    np.testing.assert_array_equal(volume["counts"].values, truth["window_counts"].values)
    assert volume["counts"].dims == ("fragment", "scan", "y", "x")
    assert volume["mass_low"].values.tolist() == truth["mass_low"].values.tolist()
    assert volume.attrs["sf"] == SF and volume.attrs["k0"] == K0
    assert volume.attrs["poisson_corrected"] == 0
    # background falls into the windows too: the planted counts alone are smaller
    assert volume["counts"].sum() > truth["counts"].sum()


def test_spectrum_is_the_histogram_of_every_event(generated):
    path, truth = generated
    volume = reconstruct(grd.read(path), FRAGMENTS)
    raw = np.fromfile(path, dtype="<u4").reshape(-1, 5)
    expected = np.bincount(raw[:, 4], minlength=volume.sizes["tof_channel"])
    n_channels = volume.sizes["tof_channel"]
    np.testing.assert_array_equal(volume["spectrum"].values, expected[:n_channels])
    assert int(volume["spectrum"].sum()) == int(truth["events"].sum())


def test_planted_counts_recovered_without_background(tmp_path):
    volume = poisson_volume(FRAGMENTS, (3, 5, 4), mean=2.0, seed=1)
    path = tmp_path / "clean.grd"
    write_grd(volume, path, sf=SF, k0=K0, calibration_per_pixel=0, background_per_pixel=0)
    # generated peaks: R = 5000 clipped at ±3σ = ±m/3925; windows m ± m/2000 contain them
    result = reconstruct(grd.read(path), FRAGMENTS, resolution=1000).compute()
    np.testing.assert_array_equal(result["counts"].values, volume.values)


def test_lateral_binning_sums_blocks_with_partial_edges(generated):
    path, truth = generated
    binned = reconstruct(grd.read(path), FRAGMENTS, lateral_bin=2).compute()
    assert (binned.sizes["y"], binned.sizes["x"]) == (5, 6)  # 9 x 11 pixels
    expected = truth["window_counts"].coarsen(y=2, x=2, boundary="pad").sum()
    np.testing.assert_array_equal(binned["counts"].values, expected.values)


def test_recalibration_on_generated_grd_within_20_ppm(tmp_path):
    volume = poisson_volume(["PO3-", "NiO2-"], (10, 16, 16), mean=1.0, seed=2)
    path = tmp_path / "cal.grd"
    write_grd(
        volume,
        path,
        sf=SF,
        k0=K0,
        calibration_per_pixel=20.0,
        background_per_pixel=1.0,
        properties_sf=SF * (1 - 2.5e-4),
        properties_k0=K0 - 12.0,
        seed=3,
    )
    events = grd.read(path)
    assert events.attrs["sf"] == pytest.approx(SF * (1 - 2.5e-4))
    spectrum = reconstruct(events, ["PO3-"])["spectrum"]
    fit = calibrate(spectrum, events.attrs["sf"], events.attrs["k0"], polarity="negative")
    fit = fit.compute()
    assert abs(float(fit.sf) - SF) / SF < 20e-6
    assert abs(float(fit.k0) - K0) / abs(K0) < 20e-6
    assert float(np.abs(fit.residual_ppm.where(fit.used)).max()) < 10


def test_out_of_raster_record_is_reported_by_the_kernel(tmp_path):
    records = np.array([[0, 0, 1, 1, 400000], [0, 0, 7, 1, 400000]], dtype="<u4")
    path = tmp_path / "bad.grd"
    path.write_bytes(records.tobytes())
    write_properties(tmp_path / "bad.grd.properties.txt", sf=SF, k0=K0, raster=(4, 4), scans=1)
    volume = reconstruct(grd.read(path, validate=False), ["PO3-"])
    with pytest.raises(TofsimsReadError, match=r"bad\.grd: record 1: x = 7 outside the raster"):
        volume["counts"].compute()


def test_block_spectra_are_groups_of_16_scans_whatever_the_read_blocks(tmp_path):
    # 40 scans with events in scans 0–5, 14–19 and 39 only (a file ends in its last scan):
    # read blocks end anywhere, some straddle scan 16, and pieces of empty scans (20–31,
    # 32–38) hold no record
    rng = np.random.default_rng(8)
    scans = np.sort(rng.choice([*range(6), *range(14, 20), 39], 600))
    records = np.zeros((scans.size, 5), dtype="<u4")
    records[:, 0] = scans
    records[:, 2:4] = rng.integers(0, 3, (scans.size, 2))
    po3 = round(float(mass_to_tof(ion_mass("PO3-"), SF, K0)))
    records[:, 4] = np.where(
        rng.random(scans.size) < 0.5, po3, rng.integers(1, 500_000, scans.size)
    )
    path = tmp_path / "sparse.grd"
    path.write_bytes(records.tobytes())
    write_properties(tmp_path / "sparse.grd.properties.txt", sf=SF, k0=K0, raster=(3, 3), scans=40)
    store = tmp_path / "one_pass.zarr"
    reconstruct_grd(open_records(path), ["PO3-"], store, sf=SF, k0=K0, workers=2)
    one_pass = xr.open_zarr(store).load()
    n_channels = one_pass.sizes["tof_channel"]
    expected = np.stack(
        [np.bincount(records[scans // 16 == g, 4], minlength=n_channels) for g in range(3)]
    )
    np.testing.assert_array_equal(one_pass["spectrum_part"].values, expected)
    for block_events in (1, 150, 250, None):
        sizes = {} if block_events is None else {"block_events": block_events}
        events = grd.read(path, validate=False, **sizes)
        if block_events in (150, 250):  # a read block across scan 16: 14–16 or 5–17
            assert 16 not in events.encoding["block_scans"]
        volume = reconstruct(events, ["PO3-"], sf=SF, k0=K0).compute()
        assert volume["block_first_scan"].values.tolist() == [0, 16, 32]
        np.testing.assert_array_equal(volume["spectrum_part"].values, expected)
        assert volume["spectrum_part"].dtype == np.uint32
        np.testing.assert_array_equal(volume["spectrum"].values, expected.sum(axis=0))
        np.testing.assert_array_equal(volume["counts"].values, one_pass["counts"].values)


def test_blocks_must_be_whole_scans(generated):
    path, _ = generated
    events = grd.read(path).chunk(event=1000)
    with pytest.raises(AnalysisError, match="not the start of a scan"):
        reconstruct(events, FRAGMENTS)


def test_poisson_correction_formula():
    # Nelson–Aalen form N·Σ_{k<I} 1/(N′ − k) of −N·ln(1 − I/N′): finite up to I = N′
    counts = xr.DataArray(np.array([0, 1, 5, 9, 10]), dims="v")
    corrected, saturated = poisson_correct(counts, 10)
    harmonic = np.concatenate([[0], np.cumsum(1 / np.arange(1, 11))])
    expected = 10 * (harmonic[10] - harmonic[10 - counts.values])
    np.testing.assert_allclose(corrected.values, expected)
    assert saturated.values.tolist() == [False, False, False, True, True]
    shadowed, _ = poisson_correct(counts[:3], 10, xr.DataArray(np.array([0, 2, 4]), dims="v"))
    expected = [0, 10 / 8, 10 * (1 / 6 + 1 / 5 + 1 / 4 + 1 / 3 + 1 / 2)]
    np.testing.assert_allclose(shadowed.values, expected)


def test_dead_time_shadow_counts_enter_the_correction(tmp_path):
    t0 = int(np.ceil(mass_to_tof(ion_mass("PO3-") - 0.05, SF, K0)))
    # pixel (0,0): 3 ions in PO3-, 2 of them in the 20-channel dead-time shadow; pixel (0,1): 1
    records = np.array(
        [
            [0, 0, 0, 0, t0 + 5],
            [0, 1, 0, 0, t0 + 9],
            [0, 2, 0, 0, t0 + 3],
            [0, 0, 0, 0, t0 - 3],
            [0, 3, 0, 0, t0 - 19],
            [0, 1, 0, 0, t0 - 25],
            [0, 1, 1, 0, t0 + 1],
        ],
        dtype="<u4",
    )
    path = tmp_path / "dead.grd"
    path.write_bytes(records.tobytes())
    write_properties(
        tmp_path / "dead.grd.properties.txt",
        sf=SF,
        k0=K0,
        raster=(1, 2),
        scans=1,
        shots_per_pixel=7,
    )
    volume = reconstruct(grd.read(path), ["PO3-"], dead_time_s=20 * 5e-11).compute()
    assert volume["counts_raw"].values[0, 0, 0].tolist() == [3, 1]
    assert volume.attrs["poisson_corrected"] == 1
    np.testing.assert_allclose(
        volume["counts"].values[0, 0, 0], [7 * (1 / 5 + 1 / 4 + 1 / 3), 7 * (1 / 7)]
    )
    assert volume["saturated"].values[0, 0, 0].tolist() == [True, False]
    lut = shadow_lookup(np.array([ion_mass("PO3-") - 0.05]), SF, K0, t0 + 10, 20)
    assert np.flatnonzero(lut == 0).tolist() == list(range(t0 - 20, t0))


def test_zarr_store_is_chunked_for_profiles_and_slices(generated, tmp_path):
    path, truth = generated
    volume = reconstruct(grd.read(path, block_events=3000), FRAGMENTS)
    out = write_volume(volume, tmp_path / "volume.zarr")
    stored = xr.open_zarr(out)
    np.testing.assert_array_equal(stored["counts"].values, truth["window_counts"].values)
    assert stored["counts"].encoding["chunks"] == storage_chunks(dict(volume.sizes))
    assert stored.attrs["sf"] == SF
    raw = np.fromfile(path, dtype="<u4").reshape(-1, 5)
    expected = np.bincount(raw[:, 4], minlength=stored.sizes["tof_channel"])
    np.testing.assert_array_equal(
        stored["spectrum"].values, expected[: stored.sizes["tof_channel"]]
    )
    # one spectrum per group of 16 scans (here one), not per read block
    assert volume["counts"].data.numblocks[1] > 1
    assert stored["block_first_scan"].values.tolist() == [0]
    np.testing.assert_array_equal(stored["spectrum_part"].values[0], stored["spectrum"].values)
    assert stored["mass_high"].attrs["units"] == "u"
    assert [p.name for p in tmp_path.iterdir()] == ["volume.zarr"]  # no leftovers
    write_volume(volume.isel(fragment=[0]), out)  # a store already there is replaced
    assert xr.open_zarr(out).sizes["fragment"] == 1
