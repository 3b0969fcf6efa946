"""Spectro Inlets Zilien .tsv reader: the real v2 file, synthetic v1/v2 files, bad input."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import dems
from dems.errors import DemsReadError, MissingStreamError
from dems.io import detect_format, zilien
from dems.io.zilien import ZilienBackend, read_ec, read_ms

FILE = "zilien_v2_test-21/2022-09-19 11_27_59 test-21.tsv"
MASSES = [2, 4, 15, 18, 26, 28, 29, 32, 40, 43, 44, 45, 59, 88, 19, 56]


@pytest.fixture(scope="module")
def tsv(data_dir: Path) -> Path:
    return data_dir / "dems" / FILE


@pytest.fixture(scope="module")
def ms(tsv: Path) -> xr.Dataset:
    return read_ms(tsv)


@pytest.fixture(scope="module")
def ec(tsv: Path) -> xr.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return read_ec(tsv)


# --- the real v2 file ----------------------------------------------------------------------


def test_ms_channels_follow_conventions(ms):
    assert ms.sizes["channel"] == 16 and ms.sizes["sample"] == 18
    assert ms["channel"].values.tolist() == [f"M{m}" for m in MASSES]
    assert ms["mass"].values.tolist() == [float(m) for m in MASSES]
    assert ms["label"].sel(channel="M32").item() == "M32-O2 [A]"
    assert ms["series"].sel(channel="M32").item() == "C7M32"
    assert ms["signal"].dims == ("channel", "sample") and ms["time"].dims == ("channel", "sample")
    assert ms["signal"].attrs["units"] == "A" and ms["time"].attrs["units"] == "s"
    assert ms.attrs["quantity"] == "ion current"
    assert (ms["dwell_time"].values == 32).all()


def test_ms_values_match_raw_text(ms):
    m32 = ms.sel(channel="M32")
    # line 210, columns 39-40: 1.055923e+00 1.061463e-16; line 227: 3.719378e+01 9.186853e-15
    assert m32["time"].values[0] == 1.055923 and m32["signal"].values[0] == 1.061463e-16
    assert m32["time"].values[17] == 37.19378 and m32["signal"].values[17] == 9.186853e-15
    assert np.isfinite(ms["signal"].values).all()  # NaN padding below row 18 trimmed


def test_channels_keep_their_own_clocks(ms):
    first = ms["time"].isel(sample=0).values
    assert np.all(np.diff(first[:14]) > 0.06)  # channels are read one after another
    period = np.diff(ms["time"].sel(channel="M32").values)
    assert np.median(period) == pytest.approx(2.126, abs=0.01)


def test_time_attributes(ms, tsv):
    assert ms.attrs["start_time"] == "2022-09-19T11:28:02.704037+02:00"
    assert ms.attrs["timezone"] == "UTC+02:00" and ms.attrs["timezone_source"] == "file"
    assert ms.attrs["start_time_unix"] == 1663579682.704037
    assert ms.attrs["ec_offset_s"] == pytest.approx(13.44293)
    assert ms.attrs["file_format_version"] == 2
    assert ms.attrs["source_file"] == str(tsv.resolve())


def test_same_instant_whatever_the_zone(tsv):
    for zone in ("UTC", "Asia/Tokyo", "America/Chicago"):
        start = read_ms(tsv, timezone=zone).attrs["start_time"]
        assert dems.io.timestamps.parse_iso(start).timestamp() == pytest.approx(1663579682.704037)


def test_extra_series_on_their_own_dimensions(ms):
    assert ms["pot_voltage"].dims == ("pot_sample",) and ms.sizes["pot_sample"] == 109
    assert ms["pot_voltage"].values[0] == 0.336438 and ms["pot_time"].values[0] == 14.02573
    assert ms["pot_current"].attrs["units"] == "mA"
    assert ms.sizes["iongauge_value_sample"] == 81
    assert ms["iongauge_value_pressure"].attrs["units"] == "mbar"
    assert ms["iongauge_value_time"].values[0] == 0.3901613


def test_embedded_ec_block(ec):
    assert ec.sizes["time"] == 1191
    assert ec["time"].values[0] == 13.442929655313492 and ec["Ewe"].values[0] == 0.044815823
    assert ec["time"].values[-1] == 31.45592920026684
    techniques = ec["technique_number"].values
    assert (techniques == 1).sum() == 1170 and (techniques == 2).sum() == 21
    assert ec.attrs["clock"] == "Zilien" and ec.attrs["ec_offset_s"] == pytest.approx(13.44293)
    assert np.isnan(ec["I"].values[0]) and np.isfinite(ec["current"].values).all()
    assert ec.attrs["potential_defect_rows"] == 10  # the CP defect survives into Zilien's copy


def test_numbers_match_ixdat(tsv, ms, ec):
    import ixdat

    theirs = ixdat.Measurement.read(tsv, reader="zilien")
    for mass in MASSES:
        series = theirs[f"M{mass} [A]"]
        ours = ms.sel(channel=f"M{mass}")
        np.testing.assert_array_equal(ours["signal"].values, series.data)
        np.testing.assert_array_equal(ours["time"].values, series.t)
    np.testing.assert_array_equal(ms["pot_voltage"].values, theirs["Voltage [V]"].data)
    ewe = theirs["Ewe/V"]
    finite = np.isfinite(ec["Ewe"].values)
    np.testing.assert_allclose(ec["Ewe"].values[finite], ewe.data, rtol=1e-12)
    np.testing.assert_allclose(ec["time"].values[finite], ewe.t, rtol=1e-12)


def test_engine_name_class_and_sniffing(tsv, ms, ec):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        xr.testing.assert_identical(xr.open_dataset(tsv, engine="dems_zilien"), ms)
        xr.testing.assert_identical(xr.open_dataset(tsv, engine=ZilienBackend), ms)
        xr.testing.assert_identical(xr.open_dataset(tsv, engine=ZilienBackend, stream="ec"), ec)
        xr.testing.assert_identical(dems.open_ms(tsv), ms)
        xr.testing.assert_identical(dems.open_ec(tsv), ec)
    assert detect_format(tsv) is zilien
    assert ZilienBackend().guess_can_open(tsv)
    with pytest.raises(ValueError, match="stream must be one of"):
        xr.open_dataset(tsv, engine=ZilienBackend, stream="both")


# --- synthetic files -----------------------------------------------------------------------


def write_zilien(
    path: Path,
    *,
    version: int = 2,
    counts: tuple[int, ...] = (5, 4),
    with_ec: bool = False,
    time_of=lambda channel, row: 0.5 + 2.0 * row + 0.07 * channel,
) -> Path:
    """A small Zilien file with MS channels C0M32, C1M44... of the given lengths."""
    masses = [32, 44, 18, 2][: len(counts)]
    series = [f"C{i}M{m}" for i, m in enumerate(masses)]
    meta = [
        ("num_header_lines", "Number of header lines", "", "int", "{n}"),
        ("num_data_header_lines", "Number of data header lines", "", "int", "2"),
        ("data_start", "Line number of data start (0-based)", "", "int", "{start}"),
    ]
    if version >= 2:
        meta += [
            ("file_format_version", "Version of the file format", "", "int", str(version)),
            ("start_time_unix", "Start time as UNIX time stamp", "", "double", "1663579682.704037"),
            (
                "start_timestamp",
                "Start time in ISO 8601 format",
                "",
                "string",
                "2022-09-19 11:28:02.704037",
            ),
        ]
    for name, mass, count in zip(series, masses, counts, strict=True):
        meta += [
            ("mass", "Measurement mass", name, "double", f"{mass}.0"),
            ("plotname", "plotname", name, "string", f"M{mass}-x [A]"),
            (f"{name}_count", "Number of points", name, "int", str(count)),
        ]
    if version >= 2:
        meta.append(("offset", "The offset (time - EC-Lab time)", "pot_01", "double", "1.5e+00"))
    heads, titles = [], []
    for name, mass in zip(series, masses, strict=True):
        heads += [name, ""]
        titles += ["Time [s]", f"M{mass}-x [A]"]
    if with_ec:
        heads += ["EC-lab", "", ""]
        titles += ["time/s", "technique_number", "Ewe/V"]
    n_rows = max(*counts, 3 if with_ec else 0)
    rows = []
    for row in range(n_rows):
        cells = []
        for channel, count in enumerate(counts):
            if row < count:
                cells += [repr(time_of(channel, row)), f"{(channel + 1) * 1e-12 * (row + 1):e}"]
            else:
                cells += ["NaN", "NaN"]
        if with_ec:
            cells += [repr(1.5 + row), "1.0", f"{0.1 * row}"] if row < 3 else ["NaN"] * 3
        rows.append("\t".join(cells))
    n = len(meta)
    lines = ["\t".join(m).format(n=n, start=n + 2) for m in meta]
    text = "\n".join([*lines, "\t".join(heads), "\t".join(titles), *rows]) + "\n"
    path.write_text(text, encoding="latin-1")
    return path


def test_synthetic_v2_ground_truth(tmp_path):
    ds = read_ms(write_zilien(tmp_path / "2022-09-19 11_27_59 syn.tsv"), timezone="UTC")
    assert ds["channel"].values.tolist() == ["M32", "M44"]
    assert ds.sizes["sample"] == 5
    np.testing.assert_allclose(ds["time"].values[1, :4], 0.57 + 2.0 * np.arange(4))
    assert np.isnan(ds["time"].values[1, 4]) and np.isnan(ds["signal"].values[1, 4])  # padding
    np.testing.assert_allclose(ds["signal"].values[0], 1e-12 * np.arange(1, 6))
    assert ds.attrs["start_time"] == "2022-09-19T09:28:02.704037+00:00"
    assert ds.attrs["ec_offset_s"] == 1.5


def test_v1_start_time_from_file_name(tmp_path):
    path = write_zilien(tmp_path / "2021-03-15 18_50_10 old run.tsv", version=1)
    ds = read_ms(path, timezone="Europe/Berlin")
    assert ds.attrs["file_format_version"] == 1
    assert ds.attrs["start_time"] == "2021-03-15T18:50:10.000000+01:00"
    assert ds.attrs["timezone_source"] == "user"
    assert np.isnan(ds.attrs["ec_offset_s"])
    with pytest.raises(MissingStreamError, match="no EC-lab block"):
        read_ec(path)


def test_v1_without_time_in_name_is_an_error(tmp_path):
    path = write_zilien(tmp_path / "renamed.tsv", version=1)
    with pytest.raises(DemsReadError, match=r"renamed\.tsv: no start time"):
        read_ms(path, timezone="UTC")


def test_synthetic_ec_block(tmp_path):
    ds = read_ec(write_zilien(tmp_path / "ec.tsv", with_ec=True), timezone="UTC")
    assert ds["time"].values.tolist() == [1.5, 2.5, 3.5]
    assert ds["potential"].values.tolist() == pytest.approx([0.0, 0.1, 0.2])


def test_missing_ec_block_raises_missing_stream(tmp_path):
    with pytest.raises(MissingStreamError) as info:
        read_ec(write_zilien(tmp_path / "ms_only.tsv"))
    assert isinstance(info.value, LookupError) and "ms_only.tsv" in str(info.value)


# --- bad input -----------------------------------------------------------------------------


def test_empty(tmp_path):
    path = tmp_path / "empty.tsv"
    path.write_text("")
    with pytest.raises(DemsReadError, match=r"empty\.tsv: file is empty"):
        read_ms(path)


def test_binary_garbage(tmp_path):
    path = tmp_path / "junk.tsv"
    path.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(DemsReadError, match=r"junk\.tsv"):
        read_ms(path)


def test_other_format(data_dir):
    path = data_dir / "dems" / "ec_ms_pvmassspec_scan" / "1_FC_1E-4.dat"
    with pytest.raises(DemsReadError, match=r"1_FC_1E-4\.dat: line 1: metadata line has"):
        read_ms(path)


def test_truncated_header(tsv, tmp_path):
    path = tmp_path / "cut.tsv"
    path.write_bytes(b"\n".join(tsv.read_bytes().split(b"\n")[:100]))
    with pytest.raises(DemsReadError, match=r"cut\.tsv: .*truncated"):
        read_ms(path)


def test_truncated_data(tsv, tmp_path):
    path = tmp_path / "cut.tsv"
    path.write_bytes(tsv.read_bytes()[:-200])
    with pytest.raises(DemsReadError, match=r"cut\.tsv: line 1400: file is truncated"):
        read_ms(path)


def test_rows_missing_at_the_end(tsv, tmp_path):
    path = tmp_path / "short.tsv"
    path.write_bytes(b"\n".join(tsv.read_bytes().split(b"\n")[:220]) + b"\n")
    with pytest.raises(DemsReadError, match=r"short\.tsv: line 220: .*announces 109 points"):
        read_ms(path)


def test_non_number_cell(tmp_path):
    path = write_zilien(tmp_path / "bad.tsv")
    lines = path.read_text().split("\n")
    lines[-3] = lines[-3].replace("e-12", "e-1x", 1)
    path.write_text("\n".join(lines))
    with pytest.raises(DemsReadError, match=r"bad\.tsv: line \d+: column 2: '.*e-1x' is not a"):
        read_ms(path)


def test_non_monotonic_time(tmp_path):
    path = write_zilien(
        tmp_path / "back.tsv", time_of=lambda channel, row: [0.0, 2.0, 1.0, 3.0, 4.0][row]
    )
    with pytest.raises(DemsReadError, match=r"back\.tsv: line 18: .*'C0M32': time is not monoton"):
        read_ms(path)


def test_open_dataset_without_engine_sniffs_content(tsv):
    assert xr.open_dataset(tsv).attrs["format"] == zilien.FORMAT


def test_ec_lab_header_without_columns_is_missing_stream(tmp_path):
    """Zilien names an EC-lab series but writes no columns when it found no .mpt (ixdat #107)."""
    path = write_zilien(tmp_path / "noec.tsv")
    lines = path.read_text().split("\n")
    series_line = next(i for i, line in enumerate(lines) if line.startswith("C0M32\t"))
    lines[series_line] += "\tEC-lab"
    path.write_text("\n".join(lines))
    assert read_ms(path, timezone="UTC").sizes["channel"] == 2
    with pytest.raises(MissingStreamError, match="no EC-lab block"):
        read_ec(path, timezone="UTC")
