"""One-pass GRD -> volume store on local threads: the same store as the dask reconstruction."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import warnings

import numpy as np
import pytest
import xarray as xr

from tofsims import threaded_binning
from tofsims.dead_time import DeadTimeWarning
from tofsims.errors import TofsimsReadError
from tofsims.fragments import ion_mass
from tofsims.grd_to_volume import reconstruct_grd, reconstruction_plan
from tofsims.io import grd
from tofsims.io.grd_records import open_records
from tofsims.io.volume_store import write_volume
from tofsims.masscal import mass_to_tof
from tofsims.reconstruct import mass_windows, reconstruct
from tofsims.synthetic_raw import poisson_volume, write_grd, write_properties
from tofsims.threaded_binning import ScanGroupBinner

FRAGMENTS = ["C2HO-", "PO3-", "LiF2-", "BO2-", "CeO2-", "NiO2-"]
SF, K0 = 72013.7, -2131.4


SECONDS_PER_SCAN = 3.0  # written to properties.txt as Analysis.SputterTime


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """37 scans (three groups of at most 16), 9 x 11 pixels, background, a dead time.

    Its ``properties.txt`` holds a sputter time; ``no_time.properties.txt`` beside it is the
    same without one.
    """
    path = tmp_path_factory.mktemp("one_pass") / "run.grd"
    volume = poisson_volume(FRAGMENTS, (37, 9, 11), mean=[0.5, 1.0, 2.0, 0.3, 0.2, 3.0], seed=4)
    windows = mass_windows(FRAGMENTS)
    truth = write_grd(
        volume,
        path,
        sf=SF,
        k0=K0,
        windows=list(zip(windows.mass_low.values, windows.mass_high.values, strict=True)),
        background_per_pixel=3.0,
        dead_time_s=6.5e-8,
        seconds_per_scan=SECONDS_PER_SCAN,
        seed=5,
    )
    properties = path.with_name("run.grd.properties.txt").read_bytes()
    lines = properties.splitlines(keepends=True)
    without = b"".join(x for x in lines if not x.startswith(b"Analysis.SputterTime"))
    assert len(without) < len(properties)
    path.with_name("no_time.properties.txt").write_bytes(without)
    return path, truth


@pytest.mark.parametrize(
    ("lateral_bin", "dead_time_s", "workers", "seconds_per_scan", "properties", "block_events"),
    [
        (1, None, 2, None, None, None),  # sputter time from properties.txt
        (2, None, 1, 2.5, None, 5000),  # the argument wins over properties.txt
        (1, 6.5e-8, 2, None, "no_time.properties.txt", 5000),  # no sputter time anywhere
        (3, 6.5e-8, 1, 2.5, "no_time.properties.txt", None),
    ],
)
def test_store_identical_to_the_dask_reconstruction(
    generated,
    tmp_path,
    lateral_bin,
    dead_time_s,
    workers,
    seconds_per_scan,
    properties,
    block_events,
):
    path, _ = generated
    if properties is not None:
        properties = path.with_name(properties)
    options = {
        "lateral_bin": lateral_bin,
        "dead_time_s": dead_time_s,
        "seconds_per_scan": seconds_per_scan,
    }
    sizes = {} if block_events is None else {"block_events": block_events}
    events = grd.read(path, properties=properties, validate=False, **sizes)
    # read blocks unlike the groups of 16 scans: one block of all 37 scans, or blocks of
    # 3 scans, two of them across a group boundary (15-17, 30-32)
    read_blocks = events.encoding["block_scans"]
    assert read_blocks == ([0, 37] if block_events is None else [*range(0, 37, 3), 37])
    lazy = reconstruct(events, FRAGMENTS, sf=SF, k0=K0, **options)
    lazy.attrs["note"] = "extra"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeadTimeWarning)  # generated rates saturate
        write_volume(lazy, tmp_path / "dask.zarr")
        result = reconstruct_grd(
            open_records(path, properties=properties),
            FRAGMENTS,
            tmp_path / "one_pass.zarr",
            sf=SF,
            k0=K0,
            attrs={"note": "extra"},
            workers=workers,
            **options,
        )
    expected, stored = (
        xr.open_zarr(tmp_path / "dask.zarr"),
        xr.open_zarr(tmp_path / "one_pass.zarr"),
    )
    # the record of chunk files written (operando_core.stores) follows each writer's chunks
    for store in (expected, stored):
        assert store.attrs.pop("stored_chunks")["counts"]["shape"] == list(store["counts"].shape)
    if dead_time_s is not None:
        # totals over the volume, summed in another order: equal to the last digits
        increases = [store.attrs.pop("dead_time_increase") for store in (expected, stored)]
        np.testing.assert_allclose(*increases, rtol=1e-12)
        np.testing.assert_allclose(
            expected["dead_time_increase"], stored["dead_time_increase"], rtol=1e-12
        )
        expected, stored = (v.drop_vars("dead_time_increase") for v in (expected, stored))
    # the depth blocks too: spectrum_part and block_first_scan are the groups of 16 scans,
    # whatever blocks the dask engine read, so the peak fits per block agree
    xr.testing.assert_identical(expected.load(), stored.load())
    assert stored["block_first_scan"].values.tolist() == [0, 16, 32]
    np.testing.assert_array_equal(stored["spectrum_part"].sum("block"), stored["spectrum"])
    np.testing.assert_array_equal(result.spectrum, stored["spectrum"].values)
    for name in stored.data_vars:
        assert stored[name].dtype == expected[name].dtype
    assert stored["counts"].encoding["chunks"][1] == 16
    assert result.sizes == {k: stored.sizes[k] for k in ("fragment", "scan", "y", "x")}
    # both follow the start-of-scan convention and say where the time came from
    time = stored["sputter_time"]
    assert time.attrs["time_reference"] == "start" and time.attrs["units"] == "s"
    if seconds_per_scan is not None:
        np.testing.assert_array_equal(time.values, 2.5 * np.arange(37))
        assert stored.attrs["sputter_time_source"] == "argument seconds_per_scan"
        assert "reason" not in time.attrs
    elif properties is None:
        np.testing.assert_array_equal(time.values, SECONDS_PER_SCAN * np.arange(37))
        assert stored.attrs["seconds_per_scan"] == SECONDS_PER_SCAN
        assert stored.attrs["sputter_time_source"] == (
            "properties.txt: Analysis.SputterTime / Analysis.TotalScans"
        )
    else:
        assert np.isnan(time.values).all() and np.isnan(stored.attrs["seconds_per_scan"])
        assert stored.attrs["sputter_time_source"] == "none"
        assert "Analysis.SputterTime" in time.attrs["reason"]


def test_groups_and_runs_give_the_true_counts(generated):
    path, truth = generated
    records = open_records(path)
    plan = reconstruction_plan(records, FRAGMENTS, sf=SF, k0=K0)
    # tiny runs and small groups, on three threads
    counts = np.zeros(truth["window_counts"].shape, dtype=np.uint32)
    spectrum = np.zeros(plan.n_channels, dtype=np.uint64)
    seen = []
    with ScanGroupBinner(records, plan, workers=3, scans_per_group=5, run_events=1000) as binner:
        for group in binner:
            counts[:, group.scans] = group.counts
            spectrum += group.spectrum
            seen.append(group.block)
    assert sorted(seen) == list(range(8))  # 37 scans in groups of 5
    np.testing.assert_array_equal(counts, truth["window_counts"].values)
    tof = np.fromfile(path, dtype="<u4").reshape(-1, 5)[:, 4]
    np.testing.assert_array_equal(spectrum, np.bincount(tof, minlength=plan.n_channels))


def test_a_channel_counting_past_a_table_word_spills(tmp_path):
    rng = np.random.default_rng(1)
    po3 = round(float(mass_to_tof(ion_mass("PO3-"), SF, K0)))
    records = np.zeros((3 * 7000, 5), dtype="<u4")
    records[:, 0] = np.repeat(np.arange(3), 7000)
    records[:, 2:4] = rng.integers(0, 4, (len(records), 2))
    records[:, 4] = np.where(rng.random(len(records)) < 0.8, po3, rng.integers(1, po3, 21000))
    path = tmp_path / "one_channel.grd"
    records.tofile(path)
    write_properties(
        tmp_path / "one_channel.grd.properties.txt", sf=SF, k0=K0, raster=(4, 4), scans=3
    )
    opened = open_records(path)
    plan = reconstruction_plan(opened, ["PO3-"], sf=SF, k0=K0)
    with ScanGroupBinner(opened, plan, workers=1, run_events=1000) as binner:
        (group,) = list(binner)
    expected = np.bincount(records[:, 4], minlength=plan.n_channels)
    assert expected[po3] > 16_000  # wraps a 2 048-count table word eight times
    np.testing.assert_array_equal(group.spectrum, expected)
    inside = records[plan.lut[records[:, 4]] == 0]
    truth = np.zeros((1, 3, 4, 4), dtype=np.int64)
    np.add.at(truth, (0, inside[:, 0], inside[:, 3], inside[:, 2]), 1)
    np.testing.assert_array_equal(group.counts, truth)


def test_groups_waiting_for_the_consumer_are_bounded(generated, monkeypatch):
    path, _ = generated
    records = open_records(path)
    plan = reconstruction_plan(records, FRAGMENTS, sf=SF, k0=K0)
    binned, consumed, most = [], [], 0
    original = ScanGroupBinner._bin_group

    def counting(self, *args):
        group = original(self, *args)
        binned.append(group.block)
        return group

    ScanGroupBinner._bin_group = counting
    monkeypatch.setattr(threaded_binning, "PENDING_BYTES", 0)  # the minimum: two groups
    try:
        with ScanGroupBinner(records, plan, workers=2, scans_per_group=2) as binner:
            for group in binner:
                time.sleep(0.02)  # a slow consumer (a slow disk for the store)
                most = max(most, len(binned) - len(consumed))
                consumed.append(group.block)
    finally:
        ScanGroupBinner._bin_group = original
    assert len(consumed) == 19 and most <= 2


def test_bad_record_raises_and_stops_the_workers(tmp_path):
    good = np.zeros((3000, 5), dtype="<u4")
    good[:, 0] = np.repeat(np.arange(3), 1000)
    good[:, 4] = 400_000
    good[2500, 2] = 9  # x outside a 4 x 4 raster, in scan 2
    path = tmp_path / "bad.grd"
    path.write_bytes(good.tobytes())
    write_properties(tmp_path / "bad.grd.properties.txt", sf=SF, k0=K0, raster=(4, 4), scans=3)
    records = open_records(path)
    plan = reconstruction_plan(records, ["PO3-"], sf=SF, k0=K0)
    before = threading.active_count()
    with pytest.raises(TofsimsReadError, match="record 2500: x = 9 outside the raster"):
        with ScanGroupBinner(records, plan, workers=2, scans_per_group=1) as binner:
            for _ in binner:
                pass
    assert threading.active_count() == before


def test_one_pass_imports_neither_xarray_nor_dask(generated, tmp_path):
    path, _ = generated
    script = (
        "import sys\n"
        "from tofsims.io.grd_records import open_records\n"
        "from tofsims.grd_to_volume import reconstruct_grd\n"
        f"reconstruct_grd(open_records({str(path)!r}), ['PO3-'], {str(tmp_path / 'v.zarr')!r},"
        f" sf={SF}, k0={K0})\n"
        "print(sorted(m for m in ('xarray', 'dask', 'pandas') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    assert xr.open_zarr(tmp_path / "v.zarr")["counts"].sum() > 0
