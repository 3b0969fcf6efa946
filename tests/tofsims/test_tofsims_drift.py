import numpy as np
import pytest
import xarray as xr

from tests.tofsims_helpers import raise_if_dask_computes
from tofsims.depth import depth_constant_rate
from tofsims.drift import apply_drift, estimate_drift
from tofsims.errors import AnalysisError
from tofsims.synthetic import layered_sample
from tofsims.thickness import cei_thickness_map

DRIFT = (3, -4)


@pytest.fixture(scope="module")
def drifting():
    return layered_sample("pristine", seed=2, drift_px=DRIFT, cei_bump_amplitude=0.4)


def test_estimated_shifts_match_the_applied_drift(drifting):
    volume, truth = drifting
    shifts = estimate_drift(volume).compute()
    assert shifts.dims == ("scan", "axis")
    error = np.abs(shifts.values - truth.shifts.values)
    assert error.max() <= 1  # off by one only where the linear drift rounds to the next pixel
    assert (error == 0).mean() > 0.6
    np.testing.assert_array_equal(shifts.isel(scan=-3).values, DRIFT)


def test_correction_crops_to_the_common_field_and_restores_the_map(drifting):
    volume, truth = drifting
    corrected = apply_drift(volume, truth.shifts)
    assert corrected.sizes["y"] == volume.sizes["y"] - 3
    assert corrected.sizes["x"] == volume.sizes["x"] - 4
    np.testing.assert_array_equal(corrected.x.values, np.arange(4, volume.sizes["x"]))
    # scan 0 is the reference: unchanged inside the common field
    np.testing.assert_array_equal(
        corrected.counts.isel(scan=0).values,
        volume.counts.isel(scan=0, y=slice(0, -3), x=slice(4, None)).values,
    )
    # the last scan's counts came from 3 rows down and 4 columns left
    np.testing.assert_array_equal(
        corrected.counts.isel(scan=-1, y=0, x=0).values,
        volume.counts.isel(scan=-1, y=3, x=0).values,
    )
    before = depth_constant_rate(volume, 0.05)
    after = depth_constant_rate(corrected, 0.05)

    def rmse(vol):
        found = cei_thickness_map(vol, bin_size=4).thickness
        ref = truth.cei_thickness_nm.sel(y=vol.y, x=vol.x).coarsen(y=4, x=4, boundary="trim").mean()
        return float(np.sqrt(np.nanmean((found.values - ref.values) ** 2)))

    assert rmse(after) < 0.5 * rmse(before)


def test_lazy_on_dask():
    volume, truth = layered_sample(
        "pristine", ny=16, nx=16, n_scans=20, chunks={"y": 8}, drift_px=(1, 2)
    )
    with raise_if_dask_computes():
        shifts = estimate_drift(volume)
        corrected = apply_drift(volume, truth.shifts)
    assert shifts.chunks is not None and corrected.counts.chunks is not None
    eager = apply_drift(volume.compute(), truth.shifts)
    np.testing.assert_array_equal(corrected.counts.values, eager.counts.values)


def test_bad_shifts():
    volume, truth = layered_sample("pristine", ny=8, nx=8, n_scans=10)
    with pytest.raises(AnalysisError, match="compute the drift shifts first"):
        apply_drift(volume, truth.shifts.chunk())
    with pytest.raises(AnalysisError, match="no common field"):
        apply_drift(volume, xr.full_like(truth.shifts, 0) + np.array([[0, 0]] * 9 + [[9, 0]]))
    with pytest.raises(AnalysisError, match="shape"):
        apply_drift(volume, truth.shifts.isel(scan=slice(0, 5)))


def test_roi_profiles_after_drift_correction_find_each_region_thickness(drifting):
    from tofsims.interfaces import layer_marker
    from tofsims.profiles import roi_profiles

    volume, truth = drifting
    corrected = depth_constant_rate(
        apply_drift(volume, estimate_drift(volume).compute()), 0.05, at="midpoint"
    )
    reference = truth.cei_thickness_nm.sel(y=corrected.y, x=corrected.x)
    thick = reference > reference.median()
    profiles = roi_profiles(corrected, {"thick": thick, "thin": ~thick})
    found = layer_marker(profiles.intensity.sel(peak=0), n_boot=5).position_50
    for name, mask in (("thick", thick), ("thin", ~thick)):
        # the summed profile of a region falls to 50 % where half of its pixels have left the
        # layer: near the median thickness of the region (not the mean, the spread is skewed)
        expected = float(reference.where(mask).median())
        assert float(found.sel(roi=name)) == pytest.approx(expected, rel=0.05)
    assert float(found.sel(roi="thick")) > float(found.sel(roi="thin")) + 1.0
