import struct

import numpy as np
import pytest
import xarray as xr

from tofsims.errors import TofsimsReadError
from tofsims.io import bif6, detect_format, open_tofsims
from tofsims.io.bif6 import Bif6Backend

WINDOWS = [(0.0, 0.0, 800.0), (42.9, 42.98, 43.05), (78.9, 78.959, 79.0), (171.8, 171.9, 172.0)]


def images(ny=4, nx=6, seed=1):
    rng = np.random.default_rng(seed)
    peaks = rng.integers(0, 1000, size=(len(WINDOWS) - 1, ny, nx), dtype=np.uint32)
    return np.concatenate([peaks.sum(axis=0, keepdims=True, dtype=np.uint32), peaks])


def write_bif6(path, stack, layout=12, windows=WINDOWS):
    """Write a BIF6 file in the 12-byte (tofsims/pybif6) or 16-byte (pySPM) layout."""
    n, ny, nx = stack.shape
    out = bytearray(b"\x00\x00BIF6" + struct.pack("<3H", n, nx, ny))
    if layout == 16:
        out += struct.pack("<2H", 7, 9)
    for interval, ((lower, middle, upper), image) in enumerate(zip(windows, stack, strict=True)):
        if layout == 12:
            out += struct.pack("<I3f", interval, lower, middle, upper)
        else:
            out += struct.pack("<4f", lower, upper, 0.0, 0.0)
        out += image.astype("<u4").tobytes()
    path.write_bytes(bytes(out))
    return path


def test_twelve_byte_layout(tmp_path):
    stack = images()
    ds = bif6.read(write_bif6(tmp_path / "a.bif6", stack, layout=12))
    assert ds.attrs["layout"] == "12-byte header"
    assert ds.counts.dims == ("fragment", "y", "x") and ds.counts.dtype == np.uint32
    np.testing.assert_array_equal(ds.counts.values, stack)
    assert list(ds.interval_id.values) == [0, 1, 2, 3]
    assert ds.fragment.values[0] == "total" and ds.fragment.values[2] == "m/z 78.9590"
    np.testing.assert_allclose(ds.mass_low, [w[0] for w in WINDOWS], rtol=1e-6)
    np.testing.assert_allclose(ds.mass_center, [w[1] for w in WINDOWS], rtol=1e-6)
    np.testing.assert_allclose(ds.mass_high, [w[2] for w in WINDOWS], rtol=1e-6)
    assert ds.mass_low.attrs["units"] == "u"


def test_sixteen_byte_layout(tmp_path):
    stack = images()
    ds = bif6.read(write_bif6(tmp_path / "b.bif6", stack, layout=16))
    assert ds.attrs["layout"] == "16-byte header"
    assert ds.attrs["header_unknown_uint16"] == "7 9"
    np.testing.assert_array_equal(ds.counts.values, stack)
    np.testing.assert_allclose(ds.mass_high, [w[2] for w in WINDOWS], rtol=1e-6)
    assert np.isnan(ds.mass_center).all()
    assert ds.fragment.values[1] == "interval 1"


def test_pixel_order_is_x_fastest(tmp_path):
    stack = np.zeros((2, 3, 5), dtype=np.uint32)
    stack[1, 0, 4] = 7  # last pixel of the first stored row
    stack[0] = stack[1]
    path = write_bif6(tmp_path / "c.bif6", stack, windows=WINDOWS[:2])
    raw = path.read_bytes()
    first_image = np.frombuffer(raw, "<u4", count=15, offset=12 + 16 + 60 + 16)
    assert first_image[4] == 7
    ds = bif6.read(path)
    assert int(ds.counts[1, 0, 4]) == 7 and int(ds.counts[1].sum()) == 7


def test_total_check_rejects_inconsistent_files(tmp_path):
    stack = images()
    stack[0, 0, 0] += 5  # total no longer the sum: e.g. unassigned ions
    path = write_bif6(tmp_path / "d.bif6", stack)
    with pytest.raises(TofsimsReadError, match="not the sum") as info:
        bif6.read(path)
    assert "check_total=False" in str(info.value) and info.value.path == str(path)
    ds = bif6.read(path, check_total=False)
    assert ds.attrs["total_checked"] == 0
    np.testing.assert_array_equal(ds.counts.values, stack)


def test_implausible_masses(tmp_path):
    windows = [(0.0, 0.0, 800.0), (42.9, 42.98, 43.05), (90.0, 80.0, 85.0), (1.0, 2.0, 3.0)]
    path = write_bif6(tmp_path / "e.bif6", images(), windows=windows)
    with pytest.raises(TofsimsReadError, match="not ordered"):
        bif6.read(path)
    windows = [(0.0, 0.0, 800.0), (1e-44, 42.98, 43.05), (78.9, 78.96, 79.0), (1.0, 2.0, 3.0)]
    path = write_bif6(tmp_path / "f.bif6", images(), windows=windows)
    with pytest.raises(TofsimsReadError, match="outside"):
        bif6.read(path)


def test_misread_layout_would_be_rejected(tmp_path):
    """A 12-byte file with 4 extra bytes appended is read as 16-byte layout: garbage masses."""
    path = write_bif6(tmp_path / "g.bif6", images(), layout=12)
    path.write_bytes(path.read_bytes() + b"\x00" * 4)
    with pytest.raises(TofsimsReadError, match="16-byte header layout"):
        bif6.read(path)


def test_truncated_and_wrong_size(tmp_path):
    path = write_bif6(tmp_path / "h.bif6", images())
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(TofsimsReadError, match="truncated"):
        bif6.read(path)


def test_empty_garbage_and_zero_header(tmp_path):
    empty = tmp_path / "empty.bif6"
    empty.write_bytes(b"")
    with pytest.raises(TofsimsReadError, match="empty"):
        bif6.read(empty)
    junk = tmp_path / "junk.bif6"
    junk.write_bytes(bytes(range(256)))
    with pytest.raises(TofsimsReadError, match="no 'BIF6' signature"):
        bif6.read(junk)
    zero = tmp_path / "zero.bif6"
    zero.write_bytes(b"\x00\x00BIF6" + struct.pack("<3H", 0, 4, 4))
    with pytest.raises(TofsimsReadError, match="empty BIF6 header"):
        bif6.read(zero)


@pytest.mark.parametrize("engine", ["tofsims_bif6", Bif6Backend, None])
def test_open_dataset_engines(tmp_path, engine):
    stack = images()
    path = write_bif6(tmp_path / "i.bif6", stack, layout=16)
    ds = xr.open_dataset(path, engine=engine)
    np.testing.assert_array_equal(ds.counts.values, stack)


def test_sniffing(tmp_path):
    path = write_bif6(tmp_path / "no_extension", images())
    assert detect_format(path) is bif6
    assert open_tofsims(path).attrs["layout"] == "12-byte header"
