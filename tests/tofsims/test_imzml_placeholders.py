"""imzML files whose identifiers are placeholders (pewlib's test files): warn, still read."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from tofsims.errors import TofsimsReadError
from tofsims.io import imzml

FOLDER = Path(__file__).parents[1] / "data" / "tofsims" / "pewlib_imzml_placeholder_uuid"
#: pewlib's tests/test_io_imzml.py: total-ion-current image of test.imzML
PEWLIB_TIC = [[80436, 72098], [52676, 75608]]


def read_recording(path: Path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = imzml.read(path)
    return ds, [str(w.message) for w in caught]


def test_placeholder_uuid_and_md5_are_warnings():
    ds, messages = read_recording(FOLDER / "test.imzML")
    assert any(
        "'universally unique identifier' is a placeholder" in m and "not checked" in m
        for m in messages
    )
    assert any("'ibd MD5' is a placeholder" in m for m in messages)
    assert ds.attrs["uuid"] == ""
    assert ds.attrs["checksum_verified"] == 0
    np.testing.assert_array_equal(ds["total_ion_current"].values[0], PEWLIB_TIC)


def test_placeholder_file_values_match_its_total_ion_currents():
    ds, _ = read_recording(FOLDER / "test.imzML")
    summed = ds["intensity"].sum("point").compute().values
    np.testing.assert_allclose(summed, ds["total_ion_current"].values, rtol=1e-5)


def test_placeholder_sha1_file_reads_like_pyimzml():
    from pyimzml.ImzMLParser import ImzMLParser

    path = FOLDER / "test_orbi.imzml"
    ds, messages = read_recording(path)
    assert any("'ibd SHA-1' is a placeholder" in m for m in messages)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parser = ImzMLParser(str(path))
    assert parser.coordinates == [(1, 31, 1), (1, 32, 1)]
    for index, (x, y, z) in enumerate(parser.coordinates):
        mz, intensity = parser.getspectrum(index)
        pixel = ds.isel(z=z - 1, y=y - 1, x=x - 1)
        n = int(pixel["n_points"])
        assert n == len(mz)
        np.testing.assert_array_equal(pixel["mz"].values[:n], mz)
        np.testing.assert_array_equal(pixel["intensity"].values[:n], intensity)


def test_a_real_uuid_that_does_not_match_stays_an_error(tmp_path):
    text = (FOLDER / "test.imzML").read_text(encoding="utf-8")
    placeholder = "00000000-0000-0000-0000-00000000000"
    assert placeholder in text
    real = "554a27fa-79d2-4766-9a2c-862e6d78b1f3"  # a valid UUID, not this .ibd's
    (tmp_path / "test.imzML").write_text(text.replace(placeholder, real), encoding="utf-8")
    shutil.copy(FOLDER / "test.ibd", tmp_path / "test.ibd")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(TofsimsReadError, match=r"test\.ibd: UUID .* does not match"):
            imzml.read(tmp_path / "test.imzML")
