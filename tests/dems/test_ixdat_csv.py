from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import dems
from dems.errors import DemsReadError, MissingStreamError
from dems.io import detect_format, ixdat_csv

FOLDER = Path(__file__).parents[1] / "data" / "dems" / "spectroinlets_co_strip_ixdat_csv"
MS_FILE = FOLDER / "data_part1_COstrip_11-11-21.csv"
EC_FILE = FOLDER / "ecdata_part1_COstrip_11-11-21.csv"
MASSES = ["M2", "M32", "M40", "M44", "M4", "M18", "M28"]


@pytest.fixture(scope="module")
def ms() -> xr.Dataset:
    return ixdat_csv.read_ms(MS_FILE, timezone="Europe/Copenhagen")


@pytest.fixture(scope="module")
def ixdat_ms():
    import ixdat

    return ixdat.Measurement.read(MS_FILE, reader="ixdat")


def valid(ds: xr.Dataset, channel: str, var: str) -> np.ndarray:
    values = ds[var].sel(channel=channel).values
    return values[np.isfinite(ds["time"].sel(channel=channel).values)]


# --- real files ------------------------------------------------------------------------------


def test_ms_file_channels_and_first_row(ms):
    assert ms["channel"].values.tolist() == MASSES
    assert ms["label"].values.tolist() == MASSES
    np.testing.assert_array_equal(ms["mass"].values, [2, 32, 40, 44, 4, 18, 28])
    # line 19: 8400.091000080109,<TAB>2.583207e-10,<TAB>8400.388999938965,<TAB>2.391879e-10
    assert ms["time"].sel(channel="M2").values[0] == 8400.091000080109
    assert ms["signal"].sel(channel="M2").values[0] == 2.583207e-10
    assert ms["time"].sel(channel="M32").values[0] == 8400.388999938965
    assert ms["signal"].sel(channel="M44").values[0] == 1.040615e-11
    assert ms["signal"].attrs["units"] == "A"
    assert ms.attrs["delimiter"] == ",\t"


def test_ms_start_time_is_tstamp(ms):
    # tstamp = 1636617385.0 = 2021-11-11 07:56:25 UTC (the file name's 08_56_25 is local UTC+1)
    assert ms.attrs["start_time"] == "2021-11-11T08:56:25.000000+01:00"
    assert ms.attrs["timezone_source"] == "file"


@pytest.mark.parametrize("name", MASSES)
def test_ms_series_equal_ixdat_reader(ms, ixdat_ms, name):
    np.testing.assert_array_equal(valid(ms, name, "time"), ixdat_ms[name].t)
    np.testing.assert_array_equal(valid(ms, name, "signal"), ixdat_ms[name].data)


def test_ms_padding_only_at_the_end(ms):
    # shorter series are padded with empty fields: NaN at the end only
    for name in MASSES:
        time = ms["time"].sel(channel=name).values
        n = np.isfinite(time).sum()
        assert np.isfinite(time[:n]).all() and np.isnan(time[n:]).all()
    assert ms.sizes["sample"] == max(np.isfinite(ms["time"].values).sum(axis=1))


def test_ec_part_of_the_ms_file_equals_ixdat(ixdat_ms):
    ec = ixdat_csv.read_ec(MS_FILE)
    np.testing.assert_array_equal(ec["time"].values, ixdat_ms["time/s"].data)
    np.testing.assert_array_equal(ec["Ewe"].values, ixdat_ms["Ewe/V"].data)
    np.testing.assert_array_equal(ec["current"].values, ixdat_ms["I/mA"].data)
    assert ec["time"].values[[0, -1]].tolist() == [8400.075000047684, 10499.849999904633]
    assert ec["cycle"].dtype == np.int64
    assert ec["cycle"].values[[0, -1]].tolist() == [12, 14]


def test_ec_file_equals_ixdat_and_has_canonical_columns():
    import ixdat

    reference = ixdat.Measurement.read(EC_FILE, reader="ixdat")
    ec = ixdat_csv.read_ec(EC_FILE, timezone="UTC")
    assert ec.sizes["time"] == len(reference["time/s"].data) == 2249  # 2260 lines - 11 header lines
    np.testing.assert_array_equal(ec["time"].values, reference["time/s"].data)
    np.testing.assert_array_equal(ec["potential"].values, reference["Ewe/V"].data)
    np.testing.assert_array_equal(ec["current"].values, reference["<I>/mA"].data)
    # line 13: 7150.6716594696045,<TAB>0.051130261,<TAB>-0.001226059484016152,<TAB>0
    assert ec["time"].values[0] == 7150.6716594696045
    assert ec["I_mean"].values[0] == -0.001226059484016152
    assert ec["I_mean"].attrs == {"long_name": "<I>/mA", "units": "mA"}
    assert ec["potential"].attrs["units"] == "V" and ec["current"].attrs["units"] == "mA"
    assert ec["selector"].values[-1] == 2
    assert ec.attrs["start_time"] == "2021-11-11T08:17:51.000000+00:00"  # tstamp 1636618671.0
    assert ec.attrs["technique"] == "EC"
    assert "cycle" not in ec


def test_ec_file_has_no_ms_stream():
    with pytest.raises(MissingStreamError, match="no mass-spectrometer series"):
        ixdat_csv.read_ms(EC_FILE)
    with pytest.raises(DemsReadError):
        dems.open_ms(EC_FILE)


def test_engine_name_class_and_sniffing(ms):
    by_name = xr.open_dataset(MS_FILE, engine="dems_ixdat_csv", timezone="Europe/Copenhagen")
    by_class = xr.open_dataset(
        MS_FILE, engine=ixdat_csv.IxdatCsvBackend, timezone="Europe/Copenhagen"
    )
    sniffed = dems.open_ms(MS_FILE, timezone="Europe/Copenhagen")
    for ds in (by_name, by_class, sniffed):
        xr.testing.assert_identical(ds.load(), ms)
    ec = xr.open_dataset(EC_FILE, engine="dems_ixdat_csv", stream="ec")
    xr.testing.assert_identical(ec.load(), dems.open_ec(EC_FILE))
    # without stream=: MS when the file has MS series, else EC
    xr.testing.assert_identical(xr.open_dataset(EC_FILE, engine="dems_ixdat_csv").load(), ec.load())
    ms_file_ec = xr.open_dataset(MS_FILE, engine="dems_ixdat_csv", stream="ec").load()
    assert "potential" in ms_file_ec and ms_file_ec.sizes["time"] == 12436
    assert detect_format(MS_FILE) is ixdat_csv and detect_format(EC_FILE) is ixdat_csv
    assert ixdat_csv.IxdatCsvBackend().guess_can_open(EC_FILE)


def test_round_trip_through_current_ixdat_exporter(tmp_path, ixdat_ms):
    """ixdat >= 0.2.6 writes ',' instead of ',\\t' and reorders columns: same numbers."""
    path = tmp_path / "exported.csv"
    ixdat_ms.export(path)
    assert ",\t" not in path.read_text().splitlines()[-1]
    again = ixdat_csv.read_ms(path, timezone="UTC")
    assert again.attrs["delimiter"] == ","
    for name in MASSES:
        np.testing.assert_array_equal(valid(again, name, "time"), ixdat_ms[name].t)
        np.testing.assert_array_equal(valid(again, name, "signal"), ixdat_ms[name].data)


# --- generated and bad input -----------------------------------------------------------------


def write_csv(
    path: Path,
    rows: list[str],
    *,
    header_extra: tuple[str, ...] = (),
    n_header: int | None = None,
    names: str = "M2-x,\tM2,\tM44-x,\tM44",
    timecols: tuple[str, ...] | None = None,
) -> Path:
    timecols = timecols or ("timecol 'M2-x' for: 'M2'", "timecol 'M44-x' for: 'M44'")
    head = [
        "ixdat version = 0.2.1dev",
        "name = gen",
        "technique = MS",
        "tstamp = 1636617385.0",
        *timecols,
        *header_extra,
    ]
    n = n_header if n_header is not None else len(head) + 3
    lines = [*head, f"N_header_lines = {n}", "", names, *rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_ms_only_file_has_no_ec_stream(tmp_path):
    path = write_csv(tmp_path / "ms.csv", ["0.1,\t1e-10,\t0.2,\t2e-11", "1.1,\t1.5e-10,\t1.2,\t"])
    ds = ixdat_csv.read_ms(path)
    assert np.isnan(ds["signal"].sel(channel="M44").values[1])
    assert ds["time"].sel(channel="M44").values[1] == 1.2
    with pytest.raises(MissingStreamError, match="no potentiostat series"):
        ixdat_csv.read_ec(path)


def test_time_going_backwards_names_the_line(tmp_path):
    path = write_csv(
        tmp_path / "back.csv", ["0.1,\t1,\t0.2,\t2", "1.1,\t1,\t1.2,\t2", "0.9,\t1,\t2.2,\t2"]
    )
    with pytest.raises(
        DemsReadError,
        match=r"back\.csv: line 12: channel 'M2': time is not monotonic \(0\.9 s after 1\.1 s\)",
    ):
        ixdat_csv.read_ms(path)


def test_non_numeric_field_names_the_line(tmp_path):
    path = write_csv(tmp_path / "text.csv", ["0.1,\t1,\t0.2,\t2", "1.1,\tabc,\t1.2,\t2"])
    with pytest.raises(DemsReadError, match=r"line 11: 'abc' is not a number \(column 'M2'\)"):
        ixdat_csv.read_ms(path)


def test_wrong_n_header_lines_is_reported(tmp_path):
    path = write_csv(tmp_path / "n.csv", ["0.1,\t1,\t0.2,\t2"], n_header=8)  # the empty line
    with pytest.raises(DemsReadError, match=r"line 8: column line lacks series"):
        ixdat_csv.read_ms(path)


def test_missing_tstamp_is_reported(tmp_path):
    path = write_csv(tmp_path / "t.csv", ["0.1,\t1,\t0.2,\t2"])
    path.write_text(
        path.read_text().replace("tstamp = 1636617385.0\n", "").replace("= 9\n", "= 8\n")
    )
    with pytest.raises(DemsReadError, match="no 'tstamp"):
        ixdat_csv.read_ms(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "file is empty"),
        (b"\x00\x01\x02\xff" * 500, "binary"),
        (b"ixdat version = 0.2.1dev\nname = x\ntstamp = 1.0\n", "no 'N_header_lines"),
        (b"Sourcefile\trun.qmp\r\n", "not an ixdat CSV export"),
    ],
    ids=["empty", "binary", "truncated-header", "other-format"],
)
def test_bad_files(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(DemsReadError, match=message) as info:
        ixdat_csv.read_ms(path)
    assert str(path) in str(info.value)


def test_truncated_file_after_header(tmp_path):
    path = write_csv(tmp_path / "cut.csv", [])
    path.write_text("\n".join(path.read_text().splitlines()[:-1]))  # drop the column line
    with pytest.raises(DemsReadError, match="file ends before the column line"):
        ixdat_csv.read_ms(path)


def test_quadera_file_is_not_an_ixdat_csv(data_dir):
    other = data_dir / "dems" / "datalab_quadera_asc" / "20221128 134958 TGA MS Megan.asc"
    assert not ixdat_csv.IxdatCsvBackend().guess_can_open(other)


def test_shared_time_column_for_ms_and_ec(tmp_path):
    """A resampled export puts every series on one time column: both streams still split."""
    path = write_csv(
        tmp_path / "shared.csv",
        ["0.0,\t1e-10,\t0.5,\t-0.01", "1.0,\t2e-10,\t0.6,\t-0.02"],
        names="time/s,\tM32,\tEwe/V,\tI/mA",
        timecols=("timecol 'time/s' for: 'M32' and 'Ewe/V' and 'I/mA'",),
    )
    ms = ixdat_csv.read_ms(path)
    ec = ixdat_csv.read_ec(path)
    assert ms["channel"].values.tolist() == ["M32"]
    np.testing.assert_array_equal(ms["time"].values[0], [0.0, 1.0])
    assert "M32" not in ec
    np.testing.assert_array_equal(ec["potential"].values, [0.5, 0.6])
    np.testing.assert_array_equal(ec["current"].values, [-0.01, -0.02])


def test_ec_dataset_writes_to_netcdf4(tmp_path):
    ec = ixdat_csv.read_ec(EC_FILE, timezone="UTC")
    ec.to_netcdf(tmp_path / "ec.nc", engine="netcdf4")  # '<I>' as a name is rejected by netCDF
    assert "I_mean" in xr.open_dataset(tmp_path / "ec.nc", engine="netcdf4")
