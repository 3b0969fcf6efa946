import hashlib
import pickle
import shutil
from pathlib import Path

import dask
import numpy as np
import pyimzml  # noqa: F401  (a test dependency: fail, do not skip, without it)
import pytest
import xarray as xr
from pyimzml.ImzMLWriter import ImzMLWriter

from tofsims.errors import TofsimsReadError
from tofsims.io import detect_format, imzml, open_tofsims
from tofsims.io.imzml import ImzmlBackend

FOLDER = Path(__file__).parents[1] / "data" / "tofsims" / "pyimzml_examples"
CONTINUOUS = FOLDER / "Example_Continuous.imzML"
PROCESSED = FOLDER / "Example_Processed.imzML"


def copy_pair(tmp_path, source, name="copy"):
    for suffix in (".imzML", ".ibd"):
        shutil.copy(source.with_suffix(suffix), tmp_path / f"{name}{suffix}")
    return tmp_path / f"{name}.imzML"


def test_continuous_example_tic_oracle():
    ds = imzml.read(CONTINUOUS)
    assert ds.attrs["mode"] == "continuous"
    assert ds.intensity.dims == ("z", "y", "x", "mz")
    assert ds.intensity.shape == (1, 3, 3, 8399)
    assert isinstance(ds.intensity.data, dask.array.Array)
    assert ds.mz.values[0] == pytest.approx(100.0833, abs=1e-4)
    assert ds.mz.values[-1] == pytest.approx(799.9167, abs=1e-4)
    tic = ds.intensity.sum("mz", dtype="float64").compute()
    # pixel (x=1, y=1) -> index (0, 0); (3, 3) -> (2, 2)
    assert float(tic[0, 0, 0]) == pytest.approx(121.85039, rel=1e-6)
    assert float(tic[0, 2, 2]) == pytest.approx(243.53951, rel=1e-6)
    np.testing.assert_allclose(tic, ds.total_ion_current, rtol=1e-5)
    assert ds.attrs["polarity"] == "negative"
    assert ds.attrs["pixel_size_x_um"] == 100.0
    assert ds.attrs["uuid"] == "554a27fa79d247669a2c862e6d78b1f3"
    assert ds.attrs["checksum_verified"] == 1


def test_continuous_values_match_raw_bytes():
    raw = (FOLDER / "Example_Continuous.ibd").read_bytes()
    mz = np.frombuffer(raw, dtype="<f4", count=8399, offset=16)
    second_pixel = np.frombuffer(raw, dtype="<f4", count=8399, offset=16 + 2 * 33596)
    ds = imzml.read(CONTINUOUS)
    np.testing.assert_array_equal(ds.mz.values, mz)
    # spectra are stored in XML order: (1,1), (2,1), ... so the 2nd is x=2, y=1
    np.testing.assert_array_equal(ds.intensity.values[0, 0, 1], second_pixel)


def test_processed_example_equals_continuous():
    processed = imzml.read(PROCESSED)
    continuous = imzml.read(CONTINUOUS)
    assert processed.attrs["mode"] == "processed"
    assert processed.intensity.dims == ("z", "y", "x", "point")
    np.testing.assert_array_equal(processed.intensity.values, continuous.intensity.values)
    np.testing.assert_array_equal(
        processed.mz.values, np.broadcast_to(continuous.mz.values.astype("f4"), (1, 3, 3, 8399))
    )
    assert (processed.n_points == 8399).all()


def test_fragment_windows_give_counts_volume():
    windows = {"all": (100.0, 800.0), "narrow": (300.0, 301.0)}
    processed = imzml.read(PROCESSED, fragments=windows)
    continuous = imzml.read(CONTINUOUS, fragments=windows)
    assert processed.counts.dims == ("fragment", "scan", "y", "x")
    np.testing.assert_allclose(processed.counts, continuous.counts)
    np.testing.assert_allclose(
        processed.counts.sel(fragment="all"), processed.total_ion_current, rtol=1e-5
    )
    full = imzml.read(CONTINUOUS)
    inside = (full.mz >= 300.0) & (full.mz < 301.0)
    expected = full.intensity.where(inside, 0).sum("mz", dtype="float64")
    np.testing.assert_allclose(
        continuous.counts.sel(fragment="narrow").values, expected.values, atol=1e-9
    )
    assert list(continuous.mass_low.values) == [100.0, 300.0]
    assert continuous.mass_high.attrs["units"] == "u"


def write_3d(path, mode, missing=(), origin=1):
    """3 x 2 pixels x 2 scans; spectrum length varies in processed mode."""
    truth = {}
    rng = np.random.default_rng(3)
    with ImzMLWriter(
        str(path), mode=mode, mz_dtype=np.float64, intensity_dtype=np.float32, polarity="positive"
    ) as writer:
        for z in range(2):
            for y in range(2):
                for x in range(3):
                    if (x, y, z) in missing:
                        continue
                    n = 5 if mode == "continuous" else 3 + x + y + z
                    mz = (
                        np.linspace(10.0, 50.0, n)
                        if mode == "continuous"
                        else np.sort(rng.uniform(10, 50, n))
                    )
                    intensity = rng.integers(0, 100, n).astype(np.float32)
                    writer.addSpectrum(mz, intensity, (x + origin, y + origin, z + origin))
                    truth[(z, y, x)] = (mz, intensity)
    return truth


@pytest.mark.parametrize("mode", ["continuous", "processed"])
def test_3d_files_index_z_y_x(tmp_path, mode):
    path = tmp_path / f"cube_{mode}.imzML"
    truth = write_3d(path, mode, missing={(2, 1, 1)})
    ds = imzml.read(path)
    assert ds.attrs["mode"] == mode
    assert ds.sizes["z"] == 2 and ds.sizes["y"] == 2 and ds.sizes["x"] == 3
    assert ds.attrs["polarity"] == "positive"
    values = ds.intensity.values
    for (z, y, x), (mz, intensity) in truth.items():
        np.testing.assert_array_equal(values[z, y, x, : intensity.size], intensity)
        if mode == "processed":
            np.testing.assert_array_equal(ds.mz.values[z, y, x, : mz.size], mz)
            assert np.isnan(values[z, y, x, intensity.size :]).all()
            assert int(ds.n_points[z, y, x]) == intensity.size
    assert np.isnan(values[1, 1, 2]).all()  # the pixel without a spectrum
    assert np.isnan(float(ds.total_ion_current[1, 1, 2]))
    counts = imzml.read(path, fragments={"low": (10.0, 30.0)}).counts
    for (z, y, x), (mz, intensity) in truth.items():
        expected = intensity[(mz >= 10.0) & (mz < 30.0)].sum(dtype=np.float64)
        assert float(counts.sel(fragment="low")[z, y, x]) == pytest.approx(expected)


def test_zero_based_positions_are_accepted(tmp_path):
    path = tmp_path / "zero.imzML"
    truth = write_3d(path, "continuous", origin=0)
    ds = imzml.read(path)
    assert ds.attrs["position_origin"] == 0
    np.testing.assert_array_equal(ds.intensity.values[1, 0, 2], truth[(1, 0, 2)][1])


def test_graph_holds_no_open_file_and_small_chunks(tmp_path):
    path = tmp_path / "cube.imzML"
    write_3d(path, "processed")
    ds = imzml.read(path, chunk_bytes=1)  # one image row per chunk
    assert ds.intensity.data.numblocks[:3] == (2, 2, 1)
    pickled = pickle.dumps(ds.intensity.data)
    assert b"SpectrumTable" not in pickled  # tasks carry only their own pixel locations
    assert b"BufferedReader" not in pickled  # and no open file
    graph = pickle.loads(pickled)
    np.testing.assert_array_equal(graph.compute(scheduler="sync"), ds.intensity.values)


@pytest.mark.parametrize("engine", ["tofsims_imzml", ImzmlBackend, None])
def test_open_dataset_engines(engine):
    ds = xr.open_dataset(CONTINUOUS, engine=engine)
    assert ds.intensity.shape == (1, 3, 3, 8399)
    assert float(ds.total_ion_current[0, 0, 0]) == pytest.approx(121.85039)


def test_open_dataset_passes_fragments():
    ds = xr.open_dataset(PROCESSED, engine="tofsims_imzml", fragments={"a": (100.0, 800.0)})
    assert ds.counts.shape == (1, 1, 3, 3)


def test_sniffing_accepts_imzml_and_ibd(tmp_path):
    assert detect_format(CONTINUOUS) is imzml
    assert detect_format(FOLDER / "Example_Continuous.ibd") is imzml
    ds = open_tofsims(FOLDER / "Example_Processed.ibd")
    assert ds.attrs["mode"] == "processed"


def test_wrong_ibd_pairing_is_detected(tmp_path):
    path = copy_pair(tmp_path, CONTINUOUS)
    shutil.copy(FOLDER / "Example_Processed.ibd", tmp_path / "copy.ibd")
    with pytest.raises(TofsimsReadError, match=r"UUID .* does not match") as info:
        imzml.read(path)
    assert "copy.ibd" in str(info.value)


def test_modified_ibd_fails_sha1(tmp_path):
    path = copy_pair(tmp_path, CONTINUOUS)
    ibd = tmp_path / "copy.ibd"
    data = bytearray(ibd.read_bytes())
    data[1000] ^= 0xFF
    ibd.write_bytes(bytes(data))
    assert hashlib.sha1(bytes(data)).hexdigest() != "a5be532d25997b71be6d20c76561ddc4d5307ddd"
    with pytest.raises(TofsimsReadError, match="SHA-1"):
        imzml.read(path)
    ds = imzml.read(path, verify_checksum=False)
    assert ds.attrs["checksum_verified"] == 0


def test_truncated_ibd(tmp_path):
    path = copy_pair(tmp_path, PROCESSED)
    ibd = tmp_path / "copy.ibd"
    ibd.write_bytes(ibd.read_bytes()[:-100])
    with pytest.raises(TofsimsReadError, match="truncated"):
        imzml.read(path, verify_checksum=False)


def test_missing_ibd(tmp_path):
    shutil.copy(CONTINUOUS, tmp_path / "alone.imzML")
    with pytest.raises(TofsimsReadError, match=r"no 'alone\.ibd'"):
        imzml.read(tmp_path / "alone.imzML")


def test_truncated_xml_names_file_and_line(tmp_path):
    path = copy_pair(tmp_path, CONTINUOUS)
    path.write_bytes(CONTINUOUS.read_bytes()[:5000])
    with pytest.raises(TofsimsReadError, match="malformed XML") as info:
        imzml.read(path)
    assert info.value.path == str(path) and info.value.line is not None


def test_xml_without_spectra_or_mode(tmp_path):
    path = copy_pair(tmp_path, CONTINUOUS)
    text = CONTINUOUS.read_text(encoding="latin-1")
    path.write_text(
        text.replace(
            'accession="IMS:1000030" name="continuous"', 'accession="IMS:1000999" name="other"'
        ),
        encoding="latin-1",
    )
    with pytest.raises(TofsimsReadError, match="neither 'continuous' nor 'processed'"):
        imzml.read(path)


def test_garbage_and_empty(tmp_path):
    junk = tmp_path / "junk.imzML"
    junk.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(TofsimsReadError):
        imzml.read(junk)
    empty = tmp_path / "empty.imzML"
    empty.write_bytes(b"")
    with pytest.raises(TofsimsReadError, match="empty"):
        imzml.read(empty)


def test_bad_fragment_windows():
    with pytest.raises(ValueError, match="low < high"):
        imzml.read(CONTINUOUS, fragments={"x": (5.0, 1.0)})


def test_read_computes_nothing(tmp_path):
    path = tmp_path / "cube.imzML"
    write_3d(path, "processed")

    def refuse(*args, **kwargs):
        raise AssertionError("read() must not compute dask graphs")

    with dask.config.set(scheduler=refuse):
        ds = imzml.read(path)
        windows = imzml.read(path, fragments={"a": (10.0, 20.0)})
    assert ds.intensity.data.npartitions >= 1 and windows.counts.data.npartitions >= 1
