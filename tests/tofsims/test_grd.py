"""GRD raw event reader: a hand-written 6-record file, laziness, bad input."""

from __future__ import annotations

import pickle

import dask
import numpy as np
import pytest
import xarray as xr

from tofsims.errors import TofsimsReadError
from tofsims.io import detect_format, grd, open_tofsims
from tofsims.io.grd_records import MAX_SCANS, open_records
from tofsims.io.properties import MAX_RASTER_SIDE
from tofsims.synthetic_raw import write_properties

# Six records (scan, shot, x, y, tof), as in the 120-byte test.grd of AlanRace/imzMLConverter:
RECORDS = np.array(
    [
        [0, 0, 0, 0, 100000],
        [0, 0, 1, 0, 250000],
        [0, 1, 3, 2, 250001],
        [1, 0, 2, 1, 100000],
        [1, 0, 3, 3, 400000],
        [2, 1, 0, 3, 123456],
    ],
    dtype="<u4",
)


def write_test_grd(folder, records=RECORDS, scans=3, raster=(4, 4), name="test.grd"):
    path = folder / name
    path.write_bytes(np.asarray(records, dtype="<u4").tobytes())
    write_properties(
        folder / f"{name}.properties.txt",
        sf=72000.0,
        k0=-2100.0,
        raster=raster,
        scans=scans,
        shots_per_pixel=2,
        dead_time_s=6.5e-8,
    )
    return path


@pytest.fixture
def test_grd(tmp_path):
    return write_test_grd(tmp_path)


def test_six_record_file_round_trip(test_grd):
    assert test_grd.stat().st_size == 120
    ds = grd.read(test_grd)
    assert ds.sizes["event"] == 6
    for i, name in enumerate(grd.FIELDS):
        np.testing.assert_array_equal(ds[name].values, RECORDS[:, i])
    np.testing.assert_array_equal(ds["record"].values, RECORDS)
    assert ds["first_event"].values.tolist() == [0, 3, 5]
    assert ds["events_per_scan"].values.tolist() == [3, 2, 1]
    assert ds.attrs["sf"] == 72000.0 and ds.attrs["k0"] == -2100.0
    assert ds.attrs["shots_per_pixel"] == 2
    assert ds.attrs["dead_time_s"] == pytest.approx(6.5e-8)
    assert ds.attrs["polarity"] == "negative"
    assert (ds.attrs["raster_y"], ds.attrs["raster_x"]) == (4, 4)
    assert ds.attrs["source_file"] == str(test_grd.resolve())
    assert ds.attrs["format"] == grd.FORMAT


def test_lazy_blocks_per_scan_group_and_picklable_graph(test_grd):
    ds = grd.read(test_grd, block_events=2)
    assert ds["record"].data.chunks[0] == (3, 2, 1)  # whole scans, never split
    with dask.config.set(scheduler="sync"):
        graph = pickle.dumps(ds["tof"].data)  # no open file handle inside the graph
    np.testing.assert_array_equal(pickle.loads(graph).compute(), RECORDS[:, 4])


def test_engine_and_sniffing(test_grd, tmp_path):
    ds = xr.open_dataset(test_grd, engine="tofsims_grd")
    assert ds["x"].values.tolist() == RECORDS[:, 2].tolist()
    assert detect_format(test_grd) is grd
    assert open_tofsims(test_grd).sizes["event"] == 6
    assert grd.TofsimsGrdBackend().guess_can_open(str(test_grd))
    other = tmp_path / "notes.txt"
    other.write_text("hello")
    assert not grd.TofsimsGrdBackend().guess_can_open(str(other))


def test_properties_names_accepted(tmp_path):
    path = tmp_path / "run.itm.grd"
    path.write_bytes(RECORDS.tobytes())
    write_properties(tmp_path / "properties.txt", sf=7e4, k0=0.0, raster=(4, 4), scans=3)
    assert grd.find_properties(path).name == "properties.txt"
    write_properties(tmp_path / "run.properties.txt", sf=7e4, k0=0.0, raster=(4, 4), scans=3)
    assert grd.find_properties(path).name == "run.properties.txt"
    write_properties(tmp_path / "run.itm.properties.txt", sf=7e4, k0=0.0, raster=(4, 4), scans=3)
    assert grd.find_properties(path).name == "run.itm.properties.txt"
    assert grd.read(path).attrs["properties_file"].endswith("run.itm.properties.txt")


def test_missing_properties(tmp_path):
    path = tmp_path / "lonely.grd"
    path.write_bytes(RECORDS.tobytes())
    with pytest.raises(TofsimsReadError, match=r"lonely\.grd: no properties file beside"):
        grd.read(path)


def test_truncated_file(test_grd):
    test_grd.write_bytes(test_grd.read_bytes()[:-7])
    with pytest.raises(
        TofsimsReadError, match=r"test\.grd: truncated: 113 bytes is not a multiple"
    ):
        grd.read(test_grd)


def test_empty_file(tmp_path):
    path = write_test_grd(tmp_path, records=np.zeros((0, 5)))
    with pytest.raises(TofsimsReadError, match="file is empty"):
        grd.read(path)


def test_scan_beyond_total_scans(tmp_path):
    path = write_test_grd(tmp_path, scans=2)
    with pytest.raises(TofsimsReadError, match=r"record 5: scan 2 but .*TotalScans = 2"):
        grd.read(path)


@pytest.mark.parametrize("opener", ["read", "open_records"])
def test_a_file_ending_before_its_last_scan_is_truncated(tmp_path, opener):
    path = write_test_grd(tmp_path, scans=5)  # the records end in scan 2 of 5
    open_file = grd.read if opener == "read" else open_records
    with pytest.raises(TofsimsReadError, match=r"ends in scan 3 of the 5 .*truncated"):
        open_file(path)


@pytest.mark.parametrize("opener", ["read", "open_records"])
def test_absurd_scan_claims_are_refused_before_any_work_per_scan(tmp_path, opener):
    path = write_test_grd(tmp_path, scans=MAX_SCANS + 1)
    open_file = grd.read if opener == "read" else open_records
    with pytest.raises(TofsimsReadError, match=r"claim 1048577 scans"):
        open_file(path)


def test_absurd_raster_claims_are_refused_naming_the_line(tmp_path):
    path = write_test_grd(tmp_path, raster=(MAX_RASTER_SIDE + 1, 4))
    with pytest.raises(TofsimsReadError, match=r"line \d+: .*claims 16385 pixels per side"):
        grd.read(path)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        (2, 4, r"record 4: x = 4 outside the raster \(0…3\)"),
        (3, 9, r"record 4: y = 9 outside the raster \(0…3\)"),
    ],
)
def test_coordinates_outside_raster(tmp_path, field, value, message):
    records = RECORDS.copy()
    records[4, field] = value
    ds = grd.read(write_test_grd(tmp_path, records=records))  # lazy: found when read
    with pytest.raises(TofsimsReadError, match=message):
        ds["x"].compute()


def test_records_not_ordered_by_scan(tmp_path):
    records = RECORDS[[0, 3, 1, 2, 4, 5]]
    ds = grd.read(write_test_grd(tmp_path, records=records))
    with pytest.raises(TofsimsReadError, match="not ordered by scan"):
        ds["tof"].compute()


def test_malformed_properties_beside_grd(test_grd):
    props = test_grd.with_name("test.grd.properties.txt")
    props.write_bytes(props.read_bytes().replace(b"\t72000.0\t", b"\tseventy\t"))
    with pytest.raises(TofsimsReadError, match=r"properties\.txt: line 4: property Context"):
        grd.read(test_grd)


def test_binary_garbage_named_grd(tmp_path):
    path = tmp_path / "garbage.grd"
    path.write_bytes(bytes(range(256)) * 4 + b"\xff" * 3)
    with pytest.raises(TofsimsReadError, match="truncated"):
        grd.read(path, properties=write_test_grd(tmp_path).with_name("test.grd.properties.txt"))
