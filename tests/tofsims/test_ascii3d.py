import pickle

import dask
import numpy as np
import pytest
import xarray as xr

from tofsims.errors import TofsimsReadError
from tofsims.io import ascii3d, detect_format, open_tofsims
from tofsims.io.ascii3d import Ascii3dBackend

SHAPE = (3, 4, 5)  # (nz, ny, nx)
LABELS = {1: "C_2HO-", 2: "^6LiF_2-", 5: "PO_3-"}
HEADER = ["# IONTOF SurfaceLab 3D export (synthetic)", "# x\ty\tz\tintensity"]


def write_export(folder, measurement="run_1", labels=LABELS, shape=SHAPE, seed=0, fmt="{:d}"):
    """Write one file per peak; return {label: volume(z, y, x)}."""
    rng = np.random.default_rng(seed)
    nz, ny, nx = shape
    z, y, x = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
    truth = {}
    for number, label in labels.items():
        volume = rng.poisson(5.0, size=shape)
        truth[label] = volume
        rows = "\n".join(
            f"{xi}\t{yi}\t{zi}\t" + fmt.format(vi)
            for xi, yi, zi, vi in zip(x.ravel(), y.ravel(), z.ravel(), volume.ravel(), strict=True)
        )
        path = folder / f"{measurement} ({number}) - {label}.txt"
        path.write_text("\n".join(HEADER) + "\n" + rows + "\n", encoding="latin-1")
    return truth


def edit_lines(path, edit):
    lines = path.read_text(encoding="latin-1").splitlines()
    edit(lines)
    path.write_text("\n".join(lines) + "\n", encoding="latin-1")


def test_round_trip_from_folder(tmp_path):
    truth = write_export(tmp_path)
    ds = ascii3d.read(tmp_path)
    assert ds.counts.dims == ("fragment", "scan", "y", "x")
    assert ds.counts.shape == (3, *SHAPE)
    assert isinstance(ds.counts.data, dask.array.Array)
    assert list(ds.fragment.values) == ["C2HO-", "6LiF2-", "PO3-"]
    assert list(ds.peak_label.values) == ["C_2HO-", "^6LiF_2-", "PO_3-"]
    assert list(ds.file_number.values) == [1, 2, 5]
    for label, volume in truth.items():
        got = ds.counts.isel(fragment=list(ds.peak_label.values).index(label)).values
        np.testing.assert_array_equal(got, volume)
    assert ds.attrs["polarity"] == "negative"
    assert ds.attrs["measurement"] == "run_1"
    assert np.isnan(ds.mass_low).all() and np.isnan(ds.sputter_time).all()
    assert "IONTOF SurfaceLab 3D export" in ds.attrs["header_json"]


def test_spot_check_against_raw_text(tmp_path):
    write_export(tmp_path)
    path = tmp_path / "run_1 (2) - ^6LiF_2-.txt"
    lines = path.read_text(encoding="latin-1").splitlines()
    x, y, z, value = (int(v) for v in lines[2 + 37].split())  # 38th voxel
    ds = ascii3d.read(path)
    assert float(ds.counts.sel(fragment="6LiF2-", scan=z, y=y, x=x)) == value
    assert (x, y, z) == (37 % 5, (37 // 5) % 4, 37 // 20)


def test_one_file_collects_its_siblings_and_glob(tmp_path):
    write_export(tmp_path)
    write_export(tmp_path, measurement="other run", labels={1: "CeO_2-"})
    ds = ascii3d.read(tmp_path / "run_1 (5) - PO_3-.txt")
    assert list(ds.fragment.values) == ["C2HO-", "6LiF2-", "PO3-"]
    ds = ascii3d.read(str(tmp_path / "run_1 (*) - *.txt"))
    assert ds.sizes["fragment"] == 3
    with pytest.raises(TofsimsReadError, match="several measurements"):
        ascii3d.read(tmp_path)


def test_float_intensities_and_sum_labels(tmp_path):
    labels = {1: "^6LiF_2-LiF_2-", 2: "LiF_2-"}
    truth = write_export(tmp_path, labels=labels, fmt="{:.5f}")
    ds = ascii3d.read(tmp_path)
    assert list(ds.fragment.values) == ["^6LiF_2-LiF_2-", "LiF2-"]
    assert list(ds.kind.values) == ["sum", "single"]
    np.testing.assert_allclose(ds.counts.values[0], truth["^6LiF_2-LiF_2-"])


@pytest.mark.parametrize("engine", ["tofsims_ascii3d", Ascii3dBackend])
def test_open_dataset_engines(tmp_path, engine):
    truth = write_export(tmp_path)
    ds = xr.open_dataset(tmp_path / "run_1 (1) - C_2HO-.txt", engine=engine)
    np.testing.assert_array_equal(ds.counts.sel(fragment="C2HO-").values, truth["C_2HO-"])


def test_sniffing_file_and_folder(tmp_path):
    write_export(tmp_path)
    assert detect_format(tmp_path) is ascii3d
    assert detect_format(tmp_path / "run_1 (1) - C_2HO-.txt") is ascii3d
    assert open_tofsims(tmp_path).sizes["fragment"] == 3
    assert xr.open_dataset(tmp_path / "run_1 (1) - C_2HO-.txt").sizes["fragment"] == 3


def test_graph_is_lazy_and_picklable(tmp_path):
    write_export(tmp_path)
    # corrupt a middle row: opening must not notice (nothing parsed yet) ...
    edit_lines(tmp_path / "run_1 (2) - ^6LiF_2-.txt", lambda lines: lines.__setitem__(10, "bad"))
    ds = ascii3d.read(tmp_path)
    assert pickle.loads(pickle.dumps(ds.counts.data)).shape == ds.counts.shape
    # ... computing the first file works, the corrupted one fails naming file and line
    ds.counts.isel(fragment=0).compute()
    with pytest.raises(TofsimsReadError, match="is not four numbers") as info:
        ds.counts.isel(fragment=1).compute()
    assert info.value.line == 11 and "^6LiF_2-" in info.value.path


def test_missing_row_is_an_incomplete_grid(tmp_path):
    write_export(tmp_path)
    edit_lines(tmp_path / "run_1 (1) - C_2HO-.txt", lambda lines: lines.pop(20))
    ds = ascii3d.read(tmp_path)
    with pytest.raises(TofsimsReadError, match=r"incomplete grid: 59 rows, expected .* = 60"):
        ds.counts.compute()


def test_truncated_file_is_detected_at_open(tmp_path):
    write_export(tmp_path)
    edit_lines(tmp_path / "run_1 (5) - PO_3-.txt", lambda lines: lines.__delitem__(slice(-7, None)))
    with pytest.raises(TofsimsReadError, match="incomplete grid: last voxel") as info:
        ascii3d.read(tmp_path)
    assert "PO_3-" in info.value.path


def test_out_of_order_rows(tmp_path):
    write_export(tmp_path)

    def swap(lines):
        lines[5], lines[6] = lines[6], lines[5]

    edit_lines(tmp_path / "run_1 (1) - C_2HO-.txt", swap)
    with pytest.raises(TofsimsReadError, match="out of order") as info:
        ascii3d.read(tmp_path).counts.compute()
    assert info.value.line == 6


def test_decimal_comma(tmp_path):
    write_export(tmp_path, fmt="{:d},5")
    with pytest.raises(TofsimsReadError, match="decimal comma"):
        ascii3d.read(tmp_path)  # seen in the tail already
    middle = tmp_path / "middle"
    middle.mkdir()
    write_export(middle, labels={1: "C_2HO-"})
    edit_lines(middle / "run_1 (1) - C_2HO-.txt", lambda lines: lines.__setitem__(7, "0 0 0 1,5"))
    with pytest.raises(TofsimsReadError, match="decimal comma") as info:
        ascii3d.read(middle).counts.compute()
    assert info.value.line == 8


def test_header_only_binary_and_bad_names(tmp_path):
    (tmp_path / "a (1) - C_2HO-.txt").write_text("# header only\n")
    with pytest.raises(TofsimsReadError, match="no data rows"):
        ascii3d.read(tmp_path)
    garbage = tmp_path / "b"
    garbage.mkdir()
    (garbage / "b (1) - C_2HO-.txt").write_bytes(bytes(range(256)) * 40)
    with pytest.raises(TofsimsReadError):
        ascii3d.read(garbage)
    bad_label = tmp_path / "c"
    bad_label.mkdir()
    write_export(bad_label, labels={1: "Mass 63"})
    with pytest.raises(TofsimsReadError, match="peak label in the file name"):
        ascii3d.read(bad_label)
    with pytest.raises(TofsimsReadError, match="no such file"):
        ascii3d.read(str(tmp_path / "nothing (*) - *.txt"))
    plain = tmp_path / "plain.txt"
    plain.write_text("0 0 0 1\n")
    with pytest.raises(TofsimsReadError, match="file name is not"):
        ascii3d.read(plain)


def test_duplicate_fragments(tmp_path):
    write_export(tmp_path, labels={1: "C_2HO-", 2: "C2HO-"})
    with pytest.raises(TofsimsReadError, match="also in"):
        ascii3d.read(tmp_path)


def test_read_computes_nothing(tmp_path):
    write_export(tmp_path)

    def refuse(*args, **kwargs):
        raise AssertionError("read() must not compute dask graphs")

    with dask.config.set(scheduler=refuse):
        ds = ascii3d.read(tmp_path)
    assert ds.counts.data.npartitions == 3  # one task per file
