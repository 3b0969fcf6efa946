import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from tofsims.errors import TofsimsReadError
from tofsims.io import detect_format, open_tofsims, surfacelab
from tofsims.io.surfacelab import SurfaceLabBackend

FOLDER = Path(__file__).parents[1] / "data" / "tofsims" / "uhasselt_surfacelab73_depth_profiles"
NEGATIVE = FOLDER / "I241209p_A_MAPI_1f-1nA_neg-B4 - NF.txt"
POSITIVE = FOLDER / "I241209m_A_MAPI_1f-1nA_pos-B4 - NF.txt"
STATIC = FOLDER / "I241213h_M_PCBM-ref_2D_neg-B1 - NF.txt"


def quiet_read(path, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return surfacelab.read(path, **options)


def column(ds, label):
    (index,) = np.flatnonzero(ds.peak_label.values == label)
    return ds.intensity.isel(peak=index)


def test_negative_profile_oracles():
    with pytest.warns(UserWarning, match="dropped 1 final data point"):
        ds = surfacelab.read(NEGATIVE)
    assert ds.sizes == {"scan": 164, "peak": 132}
    assert ds.attrs["dropped_incomplete_rows"] == 1
    assert ds.attrs["polarity"] == "negative"
    assert ds.attrs["poisson_corrected"] == 1
    assert ds.attrs["acquisition"] == "depth profile"
    assert ds.attrs["seconds_per_scan"] == pytest.approx(1.4666)
    assert float(column(ds, "total").sum()) == pytest.approx(71_112_496)
    po3 = column(ds, "PO_3-")
    assert float(po3.sum()) == pytest.approx(41_524.377, abs=1e-3)
    assert int(po3.argmax("scan")) == 72 and float(po3.max()) == pytest.approx(2419.28)
    fluoride = column(ds, "F-")
    assert int(fluoride.argmax("scan")) == 75 and float(fluoride.max()) == 18897
    (po3_index,) = np.flatnonzero(ds.peak_label.values == "PO_3-")
    assert float(ds.mass_center[po3_index]) == 78.9639
    assert ds.fragment.values[po3_index] == "PO3-"
    assert ds.sputter_time.attrs["units"] == "s" and ds.mass_center.attrs["units"] == "u"


def test_first_and_last_rows_match_the_raw_text():
    lines = NEGATIVE.read_text(encoding="latin-1").splitlines()
    first = [float(v) for v in lines[4].split("\t")[:-1]]
    last_kept = [float(v) for v in lines[-2].split("\t")[:-1]]
    ds = quiet_read(NEGATIVE)
    for row, values in ((0, first), (-1, last_kept)):
        assert float(ds.sputter_time[row]) == values[1]
        assert float(ds.dose[row]) == values[2]
        assert float(ds.fluence[row]) == values[3]
        raw = np.array(values[4:])
        finite = np.isfinite(raw)
        np.testing.assert_array_equal(ds.intensity[row].values[finite], raw[finite])
    assert float(ds.dose[0]) == 2.81193e06 and float(ds.intensity[0, 0]) == 677428


def test_kinds_sums_and_ratios_are_kept_and_marked():
    ds = quiet_read(NEGATIVE)
    kinds = dict(zip(ds.peak_label.values, ds.kind.values, strict=True))
    assert kinds["total"] == "total"
    assert kinds["^206PbI_3-, ^207PbI_3-PbI_3-"] == "sum"
    assert kinds["CN- / ( InO- )"] == "ratio"
    assert (ds.kind == "ratio").sum() == 9
    assert set(ds.fragment.values[ds.kind.values != "single"]) == {""}
    assert np.isnan(ds.mass_center.values[ds.kind.values != "single"]).all()
    assert np.isfinite(ds.mass_center.values[ds.kind.values == "single"]).all()


def test_inf_ratios_become_nan():
    ds = quiet_read(NEGATIVE, drop_incomplete=False)
    assert ds.sizes["scan"] == 165
    ratios = ds.intensity.values[:, ds.kind.values == "ratio"]
    assert np.isnan(ratios).sum() == 132  # the 132 `inf` cells of the raw file
    assert not np.isinf(ds.intensity.values).any()
    label = "Cs_2I_3- / ( CH_4N_2I- )"
    assert int(column(ds, label).isnull().sum()) == 100  # 92 x/0 + 8 0/0


def test_positive_profile_duplicate_labels():
    ds = quiet_read(POSITIVE)
    assert ds.attrs["polarity"] == "positive"
    assert float(column(ds, "total").sum()) == pytest.approx(76_406_519)
    cs = column(ds, "Cs+")
    assert int(cs.argmax("scan")) == 3 and float(cs.max()) == pytest.approx(924.9)
    sno = np.flatnonzero(ds.peak_label.values == "SnO+")
    assert sno.size == 2
    assert sorted(ds.mass_center.values[sno]) == [135.8979, 135.9143]
    assert ds.indexes["peak"].is_unique


def test_static_acquisition_starts_late_and_keeps_all_rows():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = surfacelab.read(STATIC)
    assert ds.sizes["scan"] == 47
    assert ds.attrs["dropped_incomplete_rows"] == 0
    assert ds.attrs["acquisition"] == "static"
    assert float(ds.sputter_time[0]) == 1.6384
    assert ds.attrs["seconds_per_scan"] == pytest.approx(3.2768)
    assert float(column(ds, "total").sum()) == pytest.approx(4_678_588.1)
    total = column(ds, "total")
    assert int(total.argmax("scan")) == 0  # static: the surface signal decays
    assert float(total[0]) == 182528 and float(total[-1]) == 75786.4


@pytest.mark.parametrize("engine", ["tofsims_surfacelab", SurfaceLabBackend, None])
def test_open_dataset_engines(engine):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ds = xr.open_dataset(NEGATIVE, engine=engine)
    assert ds.sizes == {"scan": 164, "peak": 132}
    assert float(ds.intensity[0, 0]) == 677428
    assert ds.attrs["reader"] == "tofsims.io.surfacelab.read"


def test_open_tofsims_sniffs_content(tmp_path):
    copy = tmp_path / "profile.dat"  # extension does not matter
    copy.write_bytes(STATIC.read_bytes())
    assert detect_format(copy) is surfacelab
    ds = open_tofsims(copy)
    assert ds.attrs["format"] == surfacelab.FORMAT
    assert ds.attrs["source_file"] == str(copy.resolve())


def _variant(tmp_path, transform, name="bad.txt"):
    text = STATIC.read_bytes().decode("latin-1")
    path = tmp_path / name
    path.write_bytes(transform(text).encode("latin-1"))
    return path


def _replace_field(text, line, field, value):
    lines = text.split("\r\n")
    fields = lines[line - 1].split("\t")
    fields[field] = value
    lines[line - 1] = "\t".join(fields)
    return "\r\n".join(lines)


@pytest.mark.parametrize(
    ("transform", "message", "line"),
    [
        (lambda t: t[: t.rindex("\t", 0, len(t) - 600)], "fields, expected", 50),  # truncated
        (lambda t: t.replace("Sputter Time (s)", "Depth (nm)"), "unexpected column titles", 4),
        (lambda t: _replace_field(t, 7, 1, "8,192"), "decimal comma", 7),
        (lambda t: _replace_field(t, 7, 1, "1.0"), "not monotonic", 7),
        (lambda t: _replace_field(t, 8, 0, "9"), "out of sequence", 8),
        (lambda t: _replace_field(t, 9, 6, "nan"), "intensity of 'Au_7-' is nan", 9),
        (lambda t: _replace_field(t, 9, 1, "inf"), "not a finite number", 9),
        (lambda t: _replace_field(t, 10, 5, "abc"), "'abc' is not a number", 10),
        (lambda t: "\r\n".join(t.split("\r\n")[:4]), "no data rows", 4),
        (lambda t: _replace_field(t, 3, 7, "x.y"), "is not a number", 3),
        (lambda t: t.replace("\tAu_7-\t", "\t", 1), "header fields for 132", 2),
    ],
)
def test_malformed_files_name_file_and_line(tmp_path, transform, message, line):
    path = _variant(tmp_path, transform)
    with pytest.raises(TofsimsReadError, match=message) as info:
        quiet_read(path)
    assert info.value.path == str(path)
    assert info.value.line == line
    assert str(info.value).startswith(f"{path}: line {line}: ")


def test_missing_header_lines(tmp_path):
    path = _variant(tmp_path, lambda t: "\r\n".join(t.split("\r\n")[3:]))
    with pytest.raises(TofsimsReadError, match="column-title line"):
        surfacelab.read(path)


def test_empty_and_binary_files(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(TofsimsReadError, match="empty"):
        surfacelab.read(empty)
    with pytest.raises(TofsimsReadError, match="empty"):
        open_tofsims(empty)
    junk = tmp_path / "junk.txt"
    junk.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(TofsimsReadError, match="binary"):
        surfacelab.read(junk)
    with pytest.raises(TofsimsReadError, match="not a recognised TOF-SIMS file"):
        open_tofsims(junk)


def test_all_zero_profile_is_an_error(tmp_path):
    def zero(text):
        lines = text.split("\r\n")
        for i in range(4, len(lines) - 1):
            fields = lines[i].split("\t")
            lines[i] = "\t".join(fields[:4] + ["0"] * (len(fields) - 5) + [""])
        return "\r\n".join(lines)

    with pytest.raises(TofsimsReadError, match="total 0"):
        quiet_read(_variant(tmp_path, zero))


def test_lf_line_endings_without_trailing_tabs(tmp_path):
    text = STATIC.read_bytes().decode("latin-1").replace("\t\r\n", "\n").replace("\r\n", "\n")
    path = tmp_path / "lf.txt"
    path.write_bytes(text.encode("latin-1"))
    ds, reference = surfacelab.read(path), surfacelab.read(STATIC)
    np.testing.assert_array_equal(ds.intensity.values, reference.intensity.values)
    assert list(ds.peak_label.values) == list(reference.peak_label.values)
