import numpy as np
import pytest

from tests.tofsims_helpers import raise_if_dask_computes
from tofsims.depth import depth_constant_rate
from tofsims.errors import AnalysisError
from tofsims.profiles import (
    depth_profile,
    roi_profiles,
    roi_rectangle,
    roi_threshold,
    select_fragment,
    smooth_along_scan,
)
from tofsims.synthetic import layered_sample


@pytest.fixture(scope="module")
def volume():
    volume, _ = layered_sample("modified", ny=16, nx=12, n_scans=40, seed=5)
    return depth_constant_rate(volume, 0.05)


def test_whole_field_profile_is_the_pixel_sum(volume):
    profile = depth_profile(volume)
    assert profile.intensity.dims == ("scan", "peak")
    np.testing.assert_array_equal(
        select_fragment(profile.intensity, "CeO2-").values,
        volume.counts.sel(fragment="CeO2-").sum(("y", "x")).values,
    )
    assert list(profile.fragment.values) == list(volume.fragment.values)
    assert set(profile.kind.values) == {"single"}
    assert profile.mass_center.sel(peak=0) == pytest.approx(41.005)
    np.testing.assert_array_equal(profile.depth, volume.depth)  # depth carried along
    assert int(profile.pixels) == 16 * 12


def test_rectangle_roi(volume):
    mask = roi_rectangle(volume, y=slice(2, 5), x=slice(0, 3))
    assert int(mask.sum()) == 4 * 4
    profile = depth_profile(volume, mask)
    expected = volume.counts.isel(y=slice(2, 6), x=slice(0, 4)).sum(("y", "x"))
    np.testing.assert_array_equal(profile.intensity.values, expected.transpose("scan", ...).values)
    assert int(profile.pixels) == 16


def test_threshold_roi_and_stacked_profiles(volume):
    bright = roi_threshold(volume, "NiO2-", 0.5)
    image = volume.counts.sel(fragment="NiO2-").sum("scan")
    np.testing.assert_array_equal(bright.values, (image > 0.5 * image.max()).values)
    both = roi_profiles(volume, {"bright": bright, "dark": ~bright})
    assert both.intensity.dims == ("roi", "scan", "peak")
    total = both.intensity.sum("roi")
    np.testing.assert_allclose(total.values, depth_profile(volume).intensity.values)


def test_smoothing_keeps_area_and_reduces_noise(volume):
    profile = depth_profile(volume).intensity
    smooth = smooth_along_scan(profile, 2.0)
    np.testing.assert_allclose(smooth.sum("scan"), profile.sum("scan"), rtol=0.02)
    assert float(smooth.diff("scan").std()) < float(profile.diff("scan").std())
    np.testing.assert_array_equal(smooth_along_scan(profile, 0).values, profile.values)


def test_lazy_on_dask():
    volume, _ = layered_sample("pristine", ny=8, nx=8, n_scans=20, chunks={"y": 4})
    with raise_if_dask_computes():
        mask = roi_threshold(volume, "NiO2-", 0.3)
        profile = depth_profile(volume, mask)
        smooth_along_scan(profile.intensity, 1.5)
    assert profile.intensity.chunks is not None


def test_bad_input(volume):
    with pytest.raises(AnalysisError, match="outside the field"):
        roi_rectangle(volume, y=slice(100, 120), x=slice(0, 3))
    with pytest.raises(AnalysisError, match="'ZrO2-' is not in the data"):
        roi_threshold(volume, "ZrO2-", 0.5)
    with pytest.raises(AnalysisError, match="sigma"):
        smooth_along_scan(volume.counts, -1)
    with pytest.raises(AnalysisError, match="no ROI"):
        roi_profiles(volume, {})
