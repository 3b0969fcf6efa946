from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import dems
from dems.errors import DemsReadError
from dems.io import detect_format, pvmassspec

REAL = Path(__file__).parents[1] / "data" / "dems" / "ec_ms_pvmassspec_scan" / "1_FC_1E-4.dat"

MID_COLUMNS = [
    "Time Relative (sec)",
    "Time Absolute (UTC)",
    "Time Absolute (Date_Time)",
    "2_amu",
    "18_amu",
    "28_amu",
    "32_amu",
    "44_amu",
    "Ionizer_State",
    "Pressure_(mBar)",
]


def long_preamble(n: int = 370) -> list[str]:
    """A PV MassSpec 20.x-like preamble: key/value lines with blank lines in between."""
    lines = ["PV MassSpec-20.08.01", "EXPORTED BIN DATA", "02/25/2020 11:10:13", ""]
    for i in range(n):
        lines.append(f"Parameter {i}: {i * 0.5}" if i % 50 else "")
    lines += ["3 TimePoints", "5 Bins", ""]
    return lines


def write_mid(path: Path, rows: list[list[str]], *, columns=MID_COLUMNS, preamble=None) -> Path:
    lines = [*(long_preamble() if preamble is None else preamble), "\t".join(columns) + "\t"]
    lines += ["\t".join(row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="latin-1")
    return path


def mid_rows(n: int = 4) -> list[list[str]]:
    rows = []
    for i in range(n):
        t = 10.0 + 2.5 * i
        rows.append(
            [
                f"{t:.3f}",
                f"{1582625413.5 + t:.3f}",
                "02/25/2020_11:10:23.500",
                f"{1e-9 * (i + 1):.6e}",
                f"{2e-10 * (i + 1):.6e}",
                f"{3e-9:.6e}",
                f"{4e-11:.6e}",
                "-nan" if i == 2 else f"{5e-12:.6e}",
                "1",
                f"{1.5e-6 * (i + 1):.3e}",
            ]
        )
    return rows


# --- the real scan export --------------------------------------------------------------------


@pytest.fixture(scope="module")
def scan() -> xr.Dataset:
    return pvmassspec.read_ms(REAL, timezone="UTC")


def test_scan_is_a_spectrum_over_mass(scan):
    assert scan.sizes == {"scan": 3, "mass": 899}  # 903 columns - 4 time/step columns
    assert scan.attrs["layout"] == "mass scan"
    assert scan["mass"].values[0] == 0.2 and scan["mass"].values[-1] == 90.0
    np.testing.assert_allclose(np.diff(scan["mass"].values), 0.1, atol=1e-9)
    assert scan["signal"].attrs["units"] == "A"


def test_scan_values_match_raw_text(scan):
    # line 10, columns 5/183/283/443/903 = masses 0.20/18.00/28.00/44.00/90.00
    first = scan["signal"].isel(scan=0)
    assert first.sel(mass=0.2).item() == 1.683892886e-10
    assert first.sel(mass=18.0).item() == 1.628669595e-11
    assert first.sel(mass=28.0).item() == 1.095474711e-09
    assert first.sel(mass=44.0).item() == 1.428319268e-12
    assert first.sel(mass=90.0).item() == 1.074064882e-14
    # rows 2 and 3 are entirely -nan although "3 TimePoints" are announced
    assert np.isnan(scan["signal"].values[1:]).all()
    np.testing.assert_array_equal(scan["time"].values, [237.308, 237.333, 237.358])
    np.testing.assert_array_equal(scan["step"].values, [1, 1, 1])


def test_scan_start_time_from_epoch_column(scan):
    # epoch 1582625650.827 (10:14:10.827 UTC) at relative 237.308 s -> 10:10:13.519 UTC,
    # i.e. the preamble's local 11:10:13 (UTC+1)
    assert scan.attrs["start_time"] == "2020-02-25T10:10:13.519000+00:00"
    assert scan.attrs["timezone_source"] == "file"
    berlin = pvmassspec.read_ms(REAL, timezone="Europe/Berlin")
    assert berlin.attrs["start_time"] == "2020-02-25T11:10:13.519000+01:00"


def test_scan_preamble_is_kept(scan):
    assert '"SensorID": "RGA PrismaPro 200 44527822"' in scan.attrs["header_json"]
    assert "From 0 to 90 with 10 points per amu" in scan.attrs["header_json"]


def test_engine_name_class_and_sniffing(scan):
    by_name = xr.open_dataset(REAL, engine="dems_pvmassspec", timezone="UTC")
    by_class = xr.open_dataset(REAL, engine=pvmassspec.PVMassSpecBackend, timezone="UTC")
    sniffed = dems.open_ms(REAL, timezone="UTC")
    for ds in (by_name, by_class, sniffed):
        xr.testing.assert_identical(ds.load(), scan)
    assert detect_format(REAL) is pvmassspec


# --- MID (Bin) exports, generated ------------------------------------------------------------


def test_mid_with_long_preamble_follows_channel_layout(tmp_path):
    path = write_mid(tmp_path / "run - Bin.dat", mid_rows())
    ds = pvmassspec.read_ms(path, timezone="UTC")
    assert ds.attrs["layout"] == "channels"
    assert ds["channel"].values.tolist() == ["M2", "M18", "M28", "M32", "M44"]
    assert ds["label"].values.tolist() == ["2_amu", "18_amu", "28_amu", "32_amu", "44_amu"]
    np.testing.assert_array_equal(ds["mass"].values, [2, 18, 28, 32, 44])
    np.testing.assert_array_equal(ds["time"].sel(channel="M32").values, [10.0, 12.5, 15.0, 17.5])
    np.testing.assert_allclose(ds["signal"].sel(channel="M2").values, [1e-9, 2e-9, 3e-9, 4e-9])
    assert np.isnan(ds["signal"].sel(channel="M44").values[2])
    np.testing.assert_allclose(ds["Pressure_mBar"].values, [1.5e-6, 3e-6, 4.5e-6, 6e-6])
    assert ds["Pressure_mBar"].attrs["long_name"] == "Pressure_(mBar)"
    assert ds.attrs["start_time"] == "2020-02-25T10:10:13.500000+00:00"
    assert '"Parameter 7": "3.5"' in ds.attrs["header_json"]
    assert dems.open_ms(path, timezone="UTC").identical(ds)


def test_mid_without_epoch_uses_preamble_date_in_given_zone(tmp_path):
    columns = [
        c for c in MID_COLUMNS if c not in ("Time Absolute (UTC)", "Time Absolute (Date_Time)")
    ]
    rows = [[r[0], *r[3:]] for r in mid_rows()]
    path = write_mid(tmp_path / "noepoch.dat", rows, columns=columns)
    ds = pvmassspec.read_ms(path, timezone="Europe/Copenhagen")
    assert ds.attrs["start_time"] == "2020-02-25T11:10:13.000000+01:00"
    assert ds.attrs["timezone_source"] == "user"
    assert "month-first" in ds.attrs["start_time_source"]


def test_preamble_date_order_option(tmp_path):
    columns = [
        c for c in MID_COLUMNS if c not in ("Time Absolute (UTC)", "Time Absolute (Date_Time)")
    ]
    rows = [[r[0], *r[3:]] for r in mid_rows()]
    preamble = ["PV MassSpec-20.08.01", "03/04/2020 11:10:13", ""]
    path = write_mid(tmp_path / "amb.dat", rows, columns=columns, preamble=preamble)
    default = pvmassspec.read_ms(path, timezone="UTC")
    assert default.attrs["start_time"].startswith("2020-03-04T11:10:13")
    day_first = pvmassspec.read_ms(path, timezone="UTC", date_order="day-first")
    assert day_first.attrs["start_time"].startswith("2020-04-03T11:10:13")
    proven = write_mid(
        tmp_path / "proven.dat", rows, columns=columns, preamble=["25/02/2020 11:10:13", ""]
    )
    assert pvmassspec.read_ms(proven, timezone="UTC").attrs["start_time"].startswith("2020-02-25")
    with pytest.raises(DemsReadError, match=r"line 1: date_order='month-first' contradicts"):
        pvmassspec.read_ms(proven, timezone="UTC", date_order="month-first")


def test_ixdat_style_header_on_line_7(tmp_path):
    """ixdat's PVMassSpecReader assumes a fixed header=6; we find the line by content."""
    preamble = ["PV MassSpec-18.05.05", "EXPORTED BIN DATA", "02-25-2020 11'10'13", "x", "y", ""]
    path = write_mid(tmp_path / "short.dat", mid_rows(2), preamble=preamble)
    ds = pvmassspec.read_ms(path, timezone="UTC")
    assert ds.sizes == {"channel": 5, "sample": 2}


# --- bad input -------------------------------------------------------------------------------


def test_time_going_backwards_names_the_line(tmp_path):
    rows = mid_rows()
    rows[2][0] = "11.000"
    path = write_mid(tmp_path / "back.dat", rows, preamble=["PV MassSpec-18.05.05", ""])
    with pytest.raises(
        DemsReadError,
        match=r"back\.dat: line 6: column 'Time Relative \(sec\)': time is not monotonic "
        r"\(11 s after 12\.5 s\)",
    ):
        pvmassspec.read_ms(path)


def test_non_numeric_value_names_the_line(tmp_path):
    rows = mid_rows()
    rows[1][4] = "oops"
    path = write_mid(tmp_path / "text.dat", rows, preamble=["PV MassSpec-18.05.05", ""])
    with pytest.raises(DemsReadError, match=r"line 5: 'oops' is not a number \(column '18_amu'\)"):
        pvmassspec.read_ms(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "file is empty"),
        (b"\x00\x01\x02\xff" * 500, "binary"),
        (b"PV MassSpec-18.05.05\nEXPORTED SCAN DATA\n02/25/2020 11:10:13\n", "no column line"),
        (b"PV MassSpec-18.05.05\n\nTime Relative (sec)\tStep\tfoo\n1\t1\t2\n", "no mass columns"),
        (b"Sourcefile\trun.qmp\r\n", "not a PV MassSpec export"),
    ],
    ids=["empty", "binary", "truncated", "no-masses", "other-format"],
)
def test_bad_files(tmp_path, content, message):
    path = tmp_path / "bad.dat"
    path.write_bytes(content)
    with pytest.raises(DemsReadError, match=message) as info:
        pvmassspec.read_ms(path)
    assert str(path) in str(info.value)


def test_other_real_formats_are_not_sniffed(data_dir):
    quadera_file = data_dir / "dems" / "datalab_quadera_asc" / "20221128 134958 TGA MS Megan.asc"
    assert not pvmassspec.PVMassSpecBackend().guess_can_open(quadera_file)
