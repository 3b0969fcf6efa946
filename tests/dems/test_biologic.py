"""BioLogic EC-Lab .mpt reader: real files, synthetic dialects, bad input."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import dems
from dems.errors import DemsReadError
from dems.io import biologic, detect_format, mpr
from dems.io.biologic import BiologicBackend, read_ec, read_run
from dems.io.eclab_columns import split_column_title, zero_potential_rows

TZ = "Europe/Copenhagen"
RUN = "zilien_v2_test-21/2022-09-19 11_27_59 test-21"


@pytest.fixture(scope="module")
def cv_path(data_dir: Path) -> Path:
    return data_dir / "dems" / f"{RUN}_01_01_CV_C01.mpt"


@pytest.fixture(scope="module")
def cp_path(data_dir: Path) -> Path:
    return data_dir / "dems" / f"{RUN}_01_02_CP_C01.mpt"


@pytest.fixture(scope="module")
def pt_path(data_dir: Path) -> Path:
    return data_dir / "dems" / "ixdat_biologic_mpt" / "Pt_poly_cv_CUT.mpt"


def quiet_read(path, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return read_ec(path, **options)


# --- real files: spot checks against the raw text ------------------------------------------


def test_cv_file_values_match_raw_text(cv_path):
    ds = quiet_read(cv_path, timezone=TZ)
    assert ds.sizes["time"] == 1170
    # line 64: 2 1 0 0 0 0,000…E+000 4,4586502E-002 4,4815823E-002 9,416156448423862E-003 …
    assert ds["time"].values[0] == 0.0
    assert ds["control"].values[0] == pytest.approx(4.4586502e-2)
    assert ds["Ewe"].values[0] == pytest.approx(4.4815823e-2)
    assert ds["I_mean"].values[0] == pytest.approx(9.416156448423862e-3)
    assert ds["mode"].values[0] == 2 and ds["ox_red"].values[0] == 1
    assert ds["I Range"].values[0] == 42
    # line 1233 (last): time 7,910999800151330E+000, P/W 1,3522569E-010
    assert ds["time"].values[-1] == pytest.approx(7.910999800151330)
    assert ds["P"].values[-1] == pytest.approx(1.3522569e-10)
    assert ds["potential"].values[-1] == pytest.approx(2.3430548e-4)
    assert ds["current"].values[0] == pytest.approx(9.416156448423862e-3)
    assert ds["cycle"].dtype == np.int64 and set(np.unique(ds["cycle"].values)) == {1}


def test_cv_file_attributes(cv_path):
    ds = quiet_read(cv_path, timezone=TZ)
    assert ds.attrs["technique"] == "Cyclic Voltammetry"
    assert ds.attrs["start_time"] == "2022-09-19T11:28:15.894000+02:00"
    assert ds.attrs["timezone"] == TZ and ds.attrs["timezone_source"] == "user"
    assert ds.attrs["decimal"] == ","
    assert ds.attrs["characteristic_mass_g"] == pytest.approx(0.001)
    assert ds.attrs["mass_key"] == "Characteristic mass"
    assert ds.attrs["characteristic_mass_placeholder"] == 1
    assert ds.attrs["electrode_area_cm2"] == pytest.approx(0.001)
    assert ds.attrs["format"] == biologic.FORMAT
    assert ds.attrs["source_file"] == str(cv_path.resolve())
    header = json.loads(ds.attrs["header_json"])
    assert header["Electrode surface area"] == ["0,001 cm²"]  # Latin-1 decoded
    assert ds["Ewe"].attrs == {"long_name": "Ewe/V", "units": "V"}
    assert ds["Q-Qo"].attrs["units"] == "C"
    assert "units" not in ds["cycle number"].attrs


def test_placeholder_mass_warns(cv_path):
    with pytest.warns(UserWarning, match="placeholder"):
        read_ec(cv_path, timezone=TZ)


@pytest.mark.filterwarnings("ignore:.*placeholder")
def test_cp_zero_potential_defect_is_flagged(cp_path):
    with pytest.warns(UserWarning, match="exact zeros in 10 rows"):
        ds = read_ec(cp_path, timezone=TZ)
    assert ds.sizes["time"] == 21
    assert ds["time"].values[0] == pytest.approx(8.410999787520268)  # acquisition, not technique
    raw = ds["Ewe_mean"].values
    assert raw[10] == pytest.approx(1.0125977e-1) and np.all(raw[11:] == 0.0)  # raw kept verbatim
    assert np.isfinite(ds["potential"].values[:11]).all()
    assert np.isnan(ds["potential"].values[11:]).all()
    assert ds.attrs["potential_defect_rows"] == 10
    assert "lines 70-79" in ds.attrs["potential_defect"]
    assert ds["Q charge_discharge"].attrs == {
        "long_name": "Q charge/discharge/mA.h",
        "units": "mA.h",
    }
    assert ds.attrs["technique"] == "Chronopotentiometry"


def test_older_dialect_lf_and_second_resolution(pt_path):
    ds = quiet_read(pt_path, timezone="UTC")
    assert ds.sizes["time"] == 223
    assert ds.attrs["start_time"] == "2020-07-29T10:31:01.000000+00:00"
    assert ds.attrs["technique"] == "Cyclic Voltammetry Advanced"
    assert ds["time"].values[[0, -1]] == pytest.approx([3.289600104471901, 151.8101963525260])
    assert ds["Ewe-Ece"].values[0] == pytest.approx(-4.3846965e-3)
    assert ds["Ece_mean"].values[-1] == pytest.approx(7.9727894e-1)
    counts = np.unique(ds["cycle"].values, return_counts=True)
    assert counts[0].tolist() == [1, 2, 3, 4, 5] and counts[1].tolist() == [48, 52, 52, 52, 19]


def test_matches_ixdat_numbers(cv_path, pt_path):
    import ixdat

    for path in (cv_path, pt_path):
        ours = quiet_read(path, timezone="UTC")
        theirs = ixdat.Measurement.read(path, reader="biologic")
        for title, name in (("Ewe/V", "Ewe"), ("<I>/mA", "I_mean"), ("(Q-Qo)/C", "Q-Qo")):
            np.testing.assert_allclose(ours[name].values, theirs[title].data, rtol=1e-12)
        np.testing.assert_allclose(ours["time"].values, theirs["Ewe/V"].t, rtol=1e-12)


def test_same_instant_in_any_zone(cv_path):
    a = quiet_read(cv_path, timezone="Europe/Copenhagen").attrs["start_time"]
    b = quiet_read(cv_path, timezone="America/New_York").attrs["start_time"]
    assert a.endswith("+02:00") and b.endswith("-04:00")
    assert a[:23] == b[:23]  # same wall clock, different instants: the zone is the user's call


# --- entry points --------------------------------------------------------------------------


def test_open_dataset_engine_name_and_class_and_sniffing(cv_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        by_name = xr.open_dataset(cv_path, engine="dems_biologic", timezone=TZ)
        by_class = xr.open_dataset(cv_path, engine=BiologicBackend, timezone=TZ)
        sniffed = dems.open_ec(cv_path, timezone=TZ)
    reference = quiet_read(cv_path, timezone=TZ)
    for ds in (by_name, by_class, sniffed):
        xr.testing.assert_identical(ds, reference)
    assert detect_format(cv_path) is biologic
    assert BiologicBackend().guess_can_open(cv_path)


def test_drop_variables(cv_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = xr.open_dataset(cv_path, engine=BiologicBackend, drop_variables=["P"], timezone=TZ)
    assert "P" not in ds and "Ewe" in ds


def test_read_run_concatenates_techniques(cv_path, cp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = read_run([cp_path, cv_path], timezone=TZ)
    assert run.sizes["time"] == 1191
    assert np.all(np.diff(run["time"].values) > 0)
    techniques = run["technique"].values
    assert (techniques == "Cyclic Voltammetry").sum() == 1170
    assert (techniques == "Chronopotentiometry").sum() == 21
    assert np.isnan(run["Ns"].values[0])  # CV has no Ns column
    assert run.attrs["start_time"] == "2022-09-19T11:28:15.894000+02:00"


# --- synthetic dialects --------------------------------------------------------------------

HEADER = """EC-Lab ASCII FILE
Nb header lines : {n}

{technique}

Acquisition started on : {start}
{extra}
{titles}
"""


def write_mpt(
    path: Path,
    titles: list[str],
    rows: list[str],
    *,
    start: str = "09/19/2022 11:28:15.894",
    extra: str = "Characteristic mass : 1.390 mg",
    technique: str = "Chronopotentiometry",
    newline: str = "\r\n",
) -> Path:
    extra_lines = extra.count("\n") + 1
    n = 7 + extra_lines
    text = HEADER.format(
        n=n, technique=technique, start=start, extra=extra, titles="\t".join(titles) + "\t"
    )
    text += "\n".join(rows) + "\n"
    path.write_bytes(text.replace("\n", newline).encode("latin-1"))
    return path


def test_decimal_point_file_and_units_lookup(tmp_path):
    titles = ["mode", "time/s", "Ewe/V", "I/mA", "Q charge/mA.h/g", "control/V/mA", "ox/red"]
    rows = ["1\t0.5\t3.7\t0.1\t1.5\t0.1\t1", "1\t1.5\tXXXX\t0.1\t2.5\t0.1\t1"]
    path = write_mpt(
        tmp_path / "point.mpt",
        titles,
        rows,
        extra="Mass of active material : 1.390 mg\nCharacteristic mass : 0,001 g",
    )
    ds = read_ec(path, timezone="UTC")
    assert ds.attrs["decimal"] == "."
    assert ds["Ewe"].values.tolist()[0] == 3.7 and np.isnan(ds["Ewe"].values[1])  # XXXX -> NaN
    assert ds["Q charge"].attrs["units"] == "mA.h/g"
    assert ds["control"].attrs["units"] == "V/mA"
    assert ds["ox_red"].attrs == {"long_name": "ox/red"}
    assert ds.attrs["characteristic_mass_g"] == pytest.approx(1.39e-3)
    assert ds.attrs["mass_key"] == "Mass of active material"


def test_duplicate_columns_are_disambiguated_with_warning(tmp_path):
    titles = ["time/s", "control/V/mA", "control/V", "control/mA", "Ewe/V"]
    path = write_mpt(tmp_path / "dup.mpt", titles, ["0,0\t1,0\t2,0\t3,0\t0,5"])
    with pytest.warns(UserWarning, match="repeats quantity 'control'"):
        ds = read_ec(path, timezone="UTC")
    assert ds["control"].values[0] == 1.0
    assert ds["control_V"].values[0] == 2.0 and ds["control_mA"].values[0] == 3.0


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("07/29/2020 10:31:01", "2020-07-29T10:31:01.000000+00:00"),
        ("09/19/2022 11:28:15.894", "2022-09-19T11:28:15.894000+00:00"),
        ("07-29-2020 10:31:01", "2020-07-29T10:31:01.000000+00:00"),
        ("07/29/2020 10.31.01", "2020-07-29T10:31:01.000000+00:00"),
        ("07/29/2020 10.31.01.250", "2020-07-29T10:31:01.250000+00:00"),
        ("07.29.2020 10:31:01", "2020-07-29T10:31:01.000000+00:00"),
    ],
)
def test_timestamp_forms(tmp_path, stamp, expected):
    path = write_mpt(
        tmp_path / "t.mpt",
        ["time/s", "Ewe/V"],
        ["0,0\t0,1"],
        start=stamp,
        extra="Characteristic mass : 2,5 g",
    )
    assert read_ec(path, timezone="UTC").attrs["start_time"] == expected


def test_day_first_option_and_ambiguity_flag(tmp_path):
    path = write_mpt(
        tmp_path / "de.mpt",
        ["time/s", "Ewe/V"],
        ["0,0\t0,1"],
        start="12/08/2022 14:36:53.355",
        extra="Characteristic mass : 2 g",
    )
    month_first = read_ec(path, timezone="UTC")
    day_first = read_ec(path, timezone="UTC", date_order="day-first")
    assert month_first.attrs["start_time"].startswith("2022-12-08")
    assert day_first.attrs["start_time"].startswith("2022-08-12")
    assert month_first.attrs["start_time_ambiguous"] == 1
    impossible = write_mpt(
        tmp_path / "dm.mpt",
        ["time/s", "Ewe/V"],
        ["0,0\t0,1"],
        start="19/09/2022 11:28:15",
        extra="Characteristic mass : 2 g",
    )
    with pytest.raises(DemsReadError, match=r"line 6: .*try date_order='day-first'"):
        read_ec(impossible, timezone="UTC")


def test_lf_and_crlf_give_same_numbers(tmp_path):
    titles, rows = ["time/s", "Ewe/V", "<I>/mA"], ["0,0\t0,1\t1,0", "0,5\t0,2\t2,0"]
    crlf = read_ec(write_mpt(tmp_path / "a.mpt", titles, rows), timezone="UTC")
    lf = read_ec(write_mpt(tmp_path / "b.mpt", titles, rows, newline="\n"), timezone="UTC")
    np.testing.assert_array_equal(crlf["potential"].values, lf["potential"].values)
    assert crlf["current"].values.tolist() == [1.0, 2.0]


def test_zero_potential_rebuilt_from_counter_electrode(tmp_path):
    titles = ["time/s", "<Ewe>/V", "I/mA", "Ewe-Ece/V", "<Ece>/V"]
    rows = [
        f"{t},0\t{e}\t0,02\t-0,5\t0,6"
        for t, e in [(0, "0,1"), (1, "0,1"), (2, "0,0"), (3, "0,0"), (4, "0,0")]
    ]
    ds = read_ec(write_mpt(tmp_path / "cp.mpt", titles, rows), timezone="UTC")
    np.testing.assert_allclose(ds["potential"].values, [0.1, 0.1, 0.1, 0.1, 0.1])
    assert "rebuilt as Ewe-Ece + Ece_mean" in ds.attrs["potential_defect"]


def test_split_column_title_rules():
    assert split_column_title("Q charge/discharge/mA.h") == ("Q charge/discharge", "mA.h")
    assert split_column_title("Im(Conductivity)/mS/cm") == ("Im(Conductivity)", "mS/cm")
    assert split_column_title("|Energy|/W.h") == ("|Energy|", "W.h")
    assert split_column_title("cycle number") == ("cycle number", "")
    assert split_column_title("Efficiency/%") == ("Efficiency", "%")


def test_zero_runs_shorter_than_three_are_real_values():
    mask = zero_potential_rows(np.array([0.1, 0.0, 0.2, 0.0, 0.0, 0.0, 0.3]))
    assert mask.tolist() == [False, False, False, True, True, True, False]


# --- bad input -----------------------------------------------------------------------------


def test_empty_file(tmp_path):
    path = tmp_path / "empty.mpt"
    path.write_bytes(b"")
    with pytest.raises(DemsReadError, match=r"empty\.mpt: file is empty"):
        read_ec(path)


def test_binary_garbage(tmp_path):
    path = tmp_path / "junk.mpt"
    path.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(DemsReadError, match=r"junk\.mpt"):
        read_ec(path)


def test_other_format(data_dir):
    path = data_dir / "dems" / "datalab_quadera_asc" / "20221128 134958 TGA MS Megan.asc"
    with pytest.raises(DemsReadError, match=r"line 1: not an EC-Lab ASCII export"):
        read_ec(path)


def test_truncated_in_header(cv_path, tmp_path):
    path = tmp_path / "cut.mpt"
    path.write_bytes(b"\r\n".join(cv_path.read_bytes().split(b"\r\n")[:30]))
    with pytest.raises(DemsReadError, match=r"cut\.mpt: line 30: file is truncated"):
        read_ec(path)


def test_truncated_last_row(cv_path, tmp_path):
    path = tmp_path / "cut.mpt"
    path.write_bytes(cv_path.read_bytes()[:-60])
    with pytest.raises(DemsReadError, match=r"cut.mpt: line 1233: expected 13 TAB-separated"):
        read_ec(path)


def test_wrong_decimal_forced(cv_path):
    with pytest.raises(DemsReadError, match=r"line 64: column 'time/s'.*decimal separator '.'"):
        read_ec(cv_path, decimal=".")


def test_non_monotonic_time(tmp_path):
    rows = ["0,0\t0,1", "1,0\t0,1", "0,5\t0,1"]
    path = write_mpt(tmp_path / "back.mpt", ["time/s", "Ewe/V"], rows)
    with pytest.raises(DemsReadError, match=r"back.mpt: line 11: time is not monotonic"):
        read_ec(path)


def test_no_data_rows_gives_an_empty_dataset(tmp_path):
    path = write_mpt(tmp_path / "none.mpt", ["time/s", "Ewe/V"], [])
    with pytest.warns(UserWarning, match=r"none.mpt: line \d+: no data points"):
        ds = read_ec(path)
    assert ds.sizes["time"] == 0
    assert ds["potential"].size == 0


def test_mpr_without_yadg_says_how_to_install(tmp_path, monkeypatch):
    path = tmp_path / "run.mpr"
    path.write_bytes(b"BIO-LOGIC MODULAR FILE\x1a" + bytes(100))
    monkeypatch.setitem(__import__("sys").modules, "yadg.extractors", None)
    assert detect_format(path) is mpr
    with pytest.raises(DemsReadError, match=r'run.mpr: .*pip install "operando\[mpr\]"'):
        dems.open_ec(path)
    assert mpr.MprBackend().guess_can_open(path)


def test_open_dataset_without_engine_sniffs_content(cv_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = xr.open_dataset(cv_path, timezone=TZ)
    assert ds.attrs["format"] == biologic.FORMAT and ds.sizes["time"] == 1170


def test_dataset_round_trips_through_zarr(cp_path, tmp_path):
    ds = quiet_read(cp_path, timezone=TZ)
    ds.to_zarr(tmp_path / "cp.zarr", consolidated=False)
    back = xr.open_zarr(tmp_path / "cp.zarr", consolidated=False).load()
    xr.testing.assert_identical(back, ds)


def test_read_run_refuses_files_of_different_runs(cv_path, pt_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DemsReadError, match=r"Pt_poly_cv_CUT\.mpt: .*not the same run"):
            read_run([cv_path, pt_path], timezone=TZ)


def test_missing_header_count_line(tmp_path):
    path = tmp_path / "nocount.mpt"
    path.write_text("EC-Lab ASCII FILE\nsomething else\n")
    with pytest.raises(DemsReadError, match=r"nocount\.mpt: line 2: missing 'Nb header lines"):
        read_ec(path)


def test_explicit_zone_does_not_depend_on_machine_zone(cv_path, monkeypatch):
    starts = set()
    for machine in ("Asia/Tokyo", "America/Los_Angeles", "UTC"):
        monkeypatch.setenv("TZ", machine)
        starts.add(quiet_read(cv_path, timezone=TZ).attrs["start_time"])
        default = quiet_read(cv_path)
        assert default.attrs["timezone"] == machine
        assert default.attrs["timezone_source"] == "machine"
    assert starts == {"2022-09-19T11:28:15.894000+02:00"}


def test_dataset_writes_to_netcdf4_and_zarr(cv_path, tmp_path):
    ds = quiet_read(cv_path, timezone="UTC")
    assert {"I_mean", "Q-Qo", "ox_red"} <= set(ds.data_vars)
    ds.to_netcdf(tmp_path / "ec.nc", engine="netcdf4")
    ds.to_zarr(tmp_path / "ec.zarr")
    back = xr.open_dataset(tmp_path / "ec.nc", engine="netcdf4")
    np.testing.assert_array_equal(back["I_mean"].values, ds["I_mean"].values)
    assert back["I_mean"].attrs["long_name"] == "<I>/mA"
