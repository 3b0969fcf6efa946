import numpy as np
import pytest
import xarray as xr

from tests.tofsims_helpers import raise_if_dask_computes
from tofsims.errors import AnalysisError
from tofsims.normalise import normalise
from tofsims.synthetic import layered_sample


def _volume():
    counts = np.array([[[[0, 2]], [[4, 0]]], [[[0, 2]], [[4, 4]]]], dtype=np.uint32)
    return xr.Dataset(
        {"counts": (("fragment", "scan", "y", "x"), counts)},
        coords={"fragment": ["A-", "B-"], "scan": [0, 1], "y": [0], "x": [0, 1]},
    )


def test_raw_keeps_counts():
    out = normalise(_volume(), "raw")
    np.testing.assert_array_equal(out.normalised, out.counts)
    assert out.counts.dtype == np.uint32  # raw kept as it was


def test_total_ion_with_zero_division_as_nan():
    out = normalise(_volume(), "total")
    values = out.normalised.sel(fragment="A-").values
    # pixel x=0 scan 0: 0/0 -> NaN; x=1 scan 1: 0/4 -> 0
    assert np.isnan(values[0, 0, 0])
    assert values[1, 0, 1] == 0.0
    assert values[0, 0, 1] == pytest.approx(0.5)
    assert out.normalised.attrs["total_source"] == "sum of listed fragments"
    assert not np.isinf(out.normalised.values).any()


def test_reference_ion():
    out = normalise(_volume(), "reference", reference="B-")
    np.testing.assert_allclose(out.normalised.sel(fragment="A-", scan=1).values, [[1.0, 0.0]])
    assert np.isnan(out.normalised.sel(fragment="A-", scan=0, x=0)).all()


def test_max_per_pixel_and_fragment():
    out = normalise(_volume(), "max")
    assert float(out.normalised.max()) == 1.0
    np.testing.assert_allclose(out.normalised.sel(fragment="B-", x=1).values.ravel(), [0.5, 1])


def test_profile_uses_its_total_column():
    profile = xr.Dataset(
        {"intensity": (("scan", "peak"), [[10.0, 2.0], [0.0, 0.0]])},
        coords={
            "peak": [0, 1],
            "fragment": ("peak", ["", "PO3-"]),
            "kind": ("peak", ["total", "single"]),
        },
    )
    out = normalise(profile, "total")
    assert out.normalised.isel(peak=1).values[0] == pytest.approx(0.2)
    assert np.isnan(out.normalised.isel(peak=1).values[1])
    assert out.normalised.attrs["total_source"] == "total column"


def test_lazy_on_dask():
    volume, _ = layered_sample("pristine", ny=8, nx=8, n_scans=20, chunks={"y": 4})
    with raise_if_dask_computes():
        for method in ("raw", "total", "max"):
            assert normalise(volume, method).normalised.chunks is not None
        normalise(volume, "reference", reference="NiO2-")


def test_bad_input():
    with pytest.raises(AnalysisError, match="unknown normalisation"):
        normalise(_volume(), "tic")
    with pytest.raises(AnalysisError, match="needs a reference"):
        normalise(_volume(), "reference")
    with pytest.raises(AnalysisError, match="'NiO2-' is not in the data"):
        normalise(_volume(), "reference", reference="NiO2-")
