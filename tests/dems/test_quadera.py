from __future__ import annotations

from pathlib import Path

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import dems
from dems.errors import DemsReadError
from dems.io import detect_format, quadera

REAL = (
    Path(__file__).parents[1]
    / "data"
    / "dems"
    / "datalab_quadera_asc"
    / "20221128 134958 TGA MS Megan.asc"
)


def write_asc(
    path: Path,
    rows: list[list[tuple[str, str, str]]],
    *,
    labels: tuple[str, ...] = ("14", "Water"),
    start: str = "28/11/2022 13:51:12",
    title: str = "Ion Current [A]",
    newline: str = "\r\n",
    last_line: str | None = None,
) -> Path:
    """Write a QUADERA-layout export; each row is one (abs, rel, value) triplet per channel."""
    head = [
        "Sourcefile\tgenerated.qmp",
        f"Exporttime\t{start}",
        "",
        f"Start Time\t{start}",
        f"End Time\t{start}",
        "",
        "".join(f"\t\t{label}\t" for label in labels),
        f"Time\tTime Relative [s]\t{title}\t" * len(labels),
    ]
    body = ["\t".join("\t".join(triplet) for triplet in row) for row in rows]
    if last_line is not None:
        body.append(last_line)
    path.write_bytes(newline.join(head + body).encode("latin-1"))
    return path


def simple_rows(stamp: str = "28/11/2022 13:51:12", n: int = 4) -> list[list[tuple[str, str, str]]]:
    return [
        [
            (stamp, f"{i:.3f}", f"{1e-11 * (i + 1):e}"),
            (stamp, f"{i + 0.5:.3f}", f"{2e-12 * (i + 1):e}"),
        ]
        for i in range(n)
    ]


# --- the real export -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real() -> xr.Dataset:
    return quadera.read_ms(REAL, timezone="Europe/London")


def test_real_file_channels_and_labels(real):
    assert real.sizes == {"channel": 7, "sample": 1366}
    assert real["label"].values.tolist() == [
        "14",
        "16",
        "Water",
        "Nitrogen/Carbonmonoxide",
        "Oxygen",
        "Argon",
        "Carbondioxide",
    ]
    assert real["channel"].values.tolist() == [
        "M14",
        "M16",
        "Water",
        "Nitrogen_Carbonmonoxide",
        "Oxygen",
        "Argon",
        "Carbondioxide",
    ]
    np.testing.assert_array_equal(real["mass"].values[:2], [14.0, 16.0])
    assert np.isnan(real["mass"].values[2:]).all()
    assert real["signal"].attrs["units"] == "mbar"
    assert real.attrs["quantity"] == "partial pressure"
    assert real.attrs["format"] == "Pfeiffer QUADERA .asc"


def test_real_file_first_row_matches_raw_text(real):
    # row 1 (file line 9): each channel has its own relative time
    np.testing.assert_allclose(
        real["time"].values[:, 0], [0.000, 0.222, 0.445, 1.536, 2.628, 2.860, 3.951]
    )
    np.testing.assert_allclose(
        real["signal"].values[:, 0],
        [
            1.083137e-11,
            8.512007e-12,
            -1.415928e-13,
            3.765051e-13,
            2.359224e-13,
            8.967970e-15,
            7.596080e-14,
        ],
        rtol=1e-12,
    )


def test_real_file_truncated_last_row_keeps_complete_triplets(real):
    # last line has 3 of 7 triplets: 5431.151/1.067100e-011 ... 5431.577/4.948199e-014
    np.testing.assert_allclose(real["time"].values[:3, -1], [5431.151, 5431.364, 5431.577])
    assert real["signal"].values[2, -1] == pytest.approx(4.948199e-14, rel=1e-12)
    assert np.isnan(real["time"].values[3:, -1]).all()
    assert np.isnan(real["signal"].values[3:, -1]).all()
    # the previous (complete) line is intact for every channel
    assert real["time"].values[6, -2] == pytest.approx(5430.939)
    assert real["signal"].values[6, -2] == pytest.approx(1.063759e-14, rel=1e-12)


def test_real_file_start_time_and_header(real):
    assert real.attrs["start_time"] == "2022-11-28T13:51:12.000000+00:00"
    assert real.attrs["timezone"] == "Europe/London"
    assert real.attrs["timezone_source"] == "user"
    assert real.attrs["date_order"] == "day-first"
    assert real.attrs["date_order_source"] == "file"
    assert '"End Time": "28/11/2022 15:21:44"' in real.attrs["header_json"]
    berlin = quadera.read_ms(REAL, timezone="Europe/Berlin")
    assert berlin.attrs["start_time"] == "2022-11-28T13:51:12.000000+01:00"


def test_real_file_every_channel_time_increases(real):
    for row in real["time"].values:
        finite = row[np.isfinite(row)]
        assert (np.diff(finite) > 0).all()


def test_open_through_xarray_engine_name_class_and_sniffing(real):
    by_name = xr.open_dataset(REAL, engine="dems_quadera", timezone="Europe/London")
    by_class = xr.open_dataset(REAL, engine=quadera.QuaderaBackend, timezone="Europe/London")
    sniffed = dems.open_ms(REAL, timezone="Europe/London")
    assert detect_format(REAL) is quadera
    assert quadera.QuaderaBackend().guess_can_open(REAL)
    for ds in (by_name, by_class, sniffed):
        xr.testing.assert_identical(ds.load(), real)


def test_default_timezone_is_machine(monkeypatch):
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    ds = quadera.read_ms(REAL)
    assert ds.attrs["timezone"] == "Asia/Tokyo"
    assert ds.attrs["timezone_source"] == "machine"
    assert ds.attrs["start_time"].endswith("+09:00")


# --- generated variants ----------------------------------------------------------------------


def test_month_first_detected_from_a_day_above_12(tmp_path):
    path = write_asc(
        tmp_path / "us.asc", simple_rows("11/28/2022 13:51:12"), start="11/28/2022 13:51:12"
    )
    ds = quadera.read_ms(path, timezone="UTC")
    assert ds.attrs["date_order"] == "month-first"
    assert ds.attrs["start_time"] == "2022-11-28T13:51:12.000000+00:00"


def test_ambiguous_dates_need_date_order(tmp_path):
    path = write_asc(
        tmp_path / "amb.asc", simple_rows("05/11/2022 13:51:12"), start="05/11/2022 13:51:12"
    )
    with pytest.raises(DemsReadError, match=r"amb\.asc: line 4: .*ambiguous.*date_order") as info:
        quadera.read_ms(path, timezone="UTC")
    assert info.value.line == 4
    day = quadera.read_ms(path, timezone="UTC", date_order="day-first")
    month = quadera.read_ms(path, timezone="UTC", date_order="month-first")
    assert day.attrs["start_time"].startswith("2022-11-05T13:51:12")
    assert month.attrs["start_time"].startswith("2022-05-11T13:51:12")
    assert day.attrs["date_order_source"] == "user"


def test_date_order_contradicting_the_file_is_an_error(tmp_path):
    path = write_asc(tmp_path / "d.asc", simple_rows())
    with pytest.raises(DemsReadError, match="contradicts"):
        quadera.read_ms(path, timezone="UTC", date_order="month-first")


def test_twelve_hour_clock_and_fractional_seconds(tmp_path):
    stamp = "11/28/2022 1:51:12.250 PM"
    path = write_asc(tmp_path / "pm.asc", simple_rows(stamp), start=stamp)
    ds = quadera.read_ms(path, timezone="America/New_York")
    assert ds.attrs["start_time"] == "2022-11-28T13:51:12.250000-05:00"
    midnight = "11/28/2022 12:05:00 AM"
    path = write_asc(tmp_path / "am.asc", simple_rows(midnight), start=midnight)
    assert (
        quadera.read_ms(path, timezone="UTC").attrs["start_time"]
        == "2022-11-28T00:05:00.000000+00:00"
    )


def test_decimal_comma(tmp_path):
    stamp = "28.11.2022 13:51:12,5"
    rows = [
        [(stamp, "0,000", "1,5e-011"), (stamp, "0,222", "-2,25e-012")],
        [(stamp, "4,163", "1,75e-011"), (stamp, "4,376", "3,0e-012")],
    ]
    path = write_asc(tmp_path / "de.asc", rows, start=stamp)
    ds = quadera.read_ms(path, timezone="UTC")
    assert ds.attrs["decimal"] == ","
    assert ds.attrs["start_time"] == "2022-11-28T13:51:12.500000+00:00"
    np.testing.assert_allclose(ds["time"].values, [[0.0, 4.163], [0.222, 4.376]])
    np.testing.assert_allclose(ds["signal"].values, [[1.5e-11, 1.75e-11], [-2.25e-12, 3.0e-12]])


def test_dashes_are_missing_values_with_time_kept(tmp_path):
    rows = simple_rows()
    rows[1][1] = (rows[1][1][0], rows[1][1][1], "---")
    path = write_asc(tmp_path / "dash.asc", rows, title="Partial Pressure [mbar]")
    ds = quadera.read_ms(path, timezone="UTC")
    assert np.isnan(ds["signal"].values[1, 1])
    assert ds["time"].values[1, 1] == pytest.approx(1.5)
    assert ds["signal"].attrs["units"] == "mbar"


def test_truncated_last_line_drops_incomplete_triplet_only(tmp_path):
    stamp = "28/11/2022 13:51:12"
    path = write_asc(
        tmp_path / "cut.asc", simple_rows(n=3), last_line=f"{stamp}\t3.000\t4e-11\t{stamp}\t3.5"
    )
    ds = quadera.read_ms(path, timezone="UTC")
    assert ds.sizes["sample"] == 4
    assert ds["time"].values[0, 3] == 3.0
    assert ds["signal"].values[0, 3] == pytest.approx(4e-11)
    assert np.isnan(ds["time"].values[1, 3])
    assert np.isnan(ds["signal"].values[1, 3])


def test_lf_newlines_and_labels_with_spaces(tmp_path):
    path = write_asc(
        tmp_path / "lf.asc", simple_rows(), labels=("Carbon dioxide", "M32"), newline="\n"
    )
    ds = quadera.read_ms(path, timezone="UTC")
    assert ds["label"].values.tolist() == ["Carbon dioxide", "M32"]
    assert ds["channel"].values.tolist() == ["Carbon_dioxide", "M32"]
    assert ds["mass"].values[1] == 32.0


def test_chunked_read_is_dask_backed_and_equal(tmp_path):
    path = write_asc(tmp_path / "big.asc", simple_rows(n=25))
    eager = quadera.read_ms(path, timezone="UTC")
    lazy = quadera.read_ms(path, timezone="UTC", chunk_rows=10)
    assert isinstance(eager["signal"].data, np.ndarray)
    assert isinstance(lazy["signal"].data, da.Array)
    assert lazy["signal"].data.chunks == ((2,), (10, 10, 5))
    xr.testing.assert_identical(lazy.compute(), eager)


def test_chunked_read_computes_nothing(tmp_path):
    import dask

    def refuse(*args, **kwargs):
        raise AssertionError("the reader computed a dask graph")

    path = write_asc(tmp_path / "lazy.asc", simple_rows(n=12))
    with dask.config.set(scheduler=refuse):
        ds = quadera.read_ms(path, timezone="UTC", chunk_rows=5)
        scaled = ds["signal"] * 2  # stays lazy
    assert isinstance(scaled.data, da.Array)
    np.testing.assert_allclose(scaled.values[0, :2], [2e-11, 4e-11])


def test_file_is_parsed_once(tmp_path, monkeypatch):
    path = write_asc(tmp_path / "once.asc", simple_rows(n=30))
    calls = []
    original = pd.read_csv

    def counting_read_csv(*args, **kwargs):
        calls.append(kwargs.get("usecols"))
        return original(*args, **kwargs)

    monkeypatch.setattr(quadera.pd, "read_csv", counting_read_csv)
    ds = quadera.read_ms(path, timezone="UTC", chunk_rows=7)
    assert len(calls) == 1
    # relative times and values only (+ the empty column after the last triplet), no date strings
    assert calls[0] == [1, 2, 4, 5, 6]
    assert ds.sizes["sample"] == 30


# --- bad input -------------------------------------------------------------------------------


def test_time_going_backwards_names_the_line(tmp_path):
    rows = simple_rows(n=5)
    rows[3][0] = (rows[3][0][0], "1.500", rows[3][0][2])  # channel 14: 0, 1, 2, 1.5 ...
    path = write_asc(tmp_path / "back.asc", rows)
    with pytest.raises(
        DemsReadError,
        match=r"back\.asc: line 12: channel '14': time is not monotonic \(1\.5 s after 2 s\)",
    ) as info:
        quadera.read_ms(path, timezone="UTC")
    assert info.value.line == 12


def test_non_numeric_value_names_line_and_column(tmp_path):
    rows = simple_rows()
    rows[2][1] = (rows[2][1][0], rows[2][1][1], "abc")
    path = write_asc(tmp_path / "text.asc", rows)
    with pytest.raises(DemsReadError, match=r"line 11: 'abc' is not a number \(column 6"):
        quadera.read_ms(path, timezone="UTC")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "file is empty"),
        (b"\x00\x01\x02\xff" * 500, "binary"),
        (
            b"Sourcefile\trun.qmp\r\nExporttime\t28/11/2022 15:24:02\r\n\r\nStart Time\t28/11",
            "no column line",
        ),
        (b"time_s,M2,M28\n0,1e-10,2e-10\n", "not a QUADERA export"),
    ],
    ids=["empty", "binary", "truncated-header", "other-format"],
)
def test_bad_files_raise_read_error_naming_the_file(tmp_path, content, message):
    path = tmp_path / "bad.asc"
    path.write_bytes(content)
    with pytest.raises(DemsReadError, match=message) as info:
        quadera.read_ms(path, timezone="UTC")
    assert str(path) in str(info.value)


def test_other_real_formats_are_not_sniffed_as_quadera(data_dir):
    other = data_dir / "dems" / "ec_ms_pvmassspec_scan" / "1_FC_1E-4.dat"
    assert not quadera.QuaderaBackend().guess_can_open(other)
    with pytest.raises(DemsReadError, match="not a QUADERA export"):
        quadera.read_ms(other)


def test_unknown_value_column_is_rejected(tmp_path):
    path = write_asc(tmp_path / "u.asc", simple_rows(), title="Counts [c/s]")
    with pytest.raises(DemsReadError, match=r"line 8: unknown value column 'Counts \[c/s\]'"):
        quadera.read_ms(path, timezone="UTC")


def test_row_with_extra_fields_is_rejected(tmp_path):
    stamp = "28/11/2022 13:51:12"
    extra = f"{stamp}\t3.000\t4e-11\t{stamp}\t3.5\t1e-12\t{stamp}\t3.9\t1e-12"
    path = write_asc(tmp_path / "extra.asc", simple_rows(n=3), last_line=extra)
    with pytest.raises(DemsReadError, match=r"line 12: 9 fields, more than the 6 columns"):
        quadera.read_ms(path, timezone="UTC")


def test_garbage_inside_the_data_names_the_line(tmp_path):
    path = write_asc(tmp_path / "junk.asc", simple_rows(n=4))
    raw = path.read_bytes()
    cut = raw.index(b"\r\n", raw.index(b"\r\n28/11") + 2)  # end of the first data line
    path.write_bytes(raw[:cut] + b"\x00\xff\x13junk" * 20 + raw[cut:])
    with pytest.raises(DemsReadError, match=r"junk\.asc: line 9: .* is not a number") as info:
        quadera.read_ms(path, timezone="UTC")
    assert len(str(info.value)) < 200


def test_start_time_from_first_row_without_start_time_line(tmp_path):
    rows = [
        [("28/11/2022 13:51:14", "2.000", "1e-11")],
        [("28/11/2022 13:51:15", "3.000", "2e-11")],
    ]
    path = write_asc(tmp_path / "nostart.asc", rows, labels=("44",))
    path.write_bytes(path.read_bytes().replace(b"Start Time\t28/11/2022 13:51:12\r\n", b""))
    ds = quadera.read_ms(path, timezone="UTC")
    assert ds.attrs["start_time"] == "2022-11-28T13:51:12.000000+00:00"
    assert ds.attrs["start_time_source"] == "first data row"


def test_utf8_bom_and_integer_first_row_with_decimal_comma(tmp_path):
    stamp = "28.11.2022 13:51:12"
    rows = [[(stamp, "0", "0")], [(stamp, "1,5", "2,5e-011")], [(stamp, "3,25", "---")]]
    path = write_asc(tmp_path / "bom.asc", rows, labels=("18",))
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert quadera.QuaderaBackend().guess_can_open(path)
    ds = quadera.read_ms(path, timezone="UTC")
    assert "Sourcefile" in ds.attrs["header_json"]
    np.testing.assert_allclose(ds["time"].values[0], [0.0, 1.5, 3.25])
    np.testing.assert_allclose(ds["signal"].values[0, :2], [0.0, 2.5e-11])


def test_header_without_data_rows(tmp_path):
    path = write_asc(tmp_path / "nodata.asc", [])
    with pytest.raises(DemsReadError, match=r"nodata\.asc: line 8: no data rows"):
        quadera.read_ms(path, timezone="UTC")


def test_garbled_date_in_first_row_names_its_line(tmp_path):
    rows = simple_rows()
    rows[0][0] = ("28/11/2022 13:5", *rows[0][0][1:])
    path = write_asc(tmp_path / "date.asc", rows)
    with pytest.raises(
        DemsReadError, match=r"date\.asc: line 9: unrecognised date/time '28/11/2022 13:5'"
    ):
        quadera.read_ms(path, timezone="UTC")


def test_dataset_round_trips_through_netcdf(tmp_path, real):
    import netCDF4  # noqa: F401

    target = tmp_path / "real.nc"
    real.to_netcdf(target)
    back = xr.load_dataset(target)
    np.testing.assert_array_equal(back["signal"].values, real["signal"].values)
    assert back["label"].values.tolist() == real["label"].values.tolist()
    assert back.attrs["start_time"] == real.attrs["start_time"]
