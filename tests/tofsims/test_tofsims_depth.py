import json

import numpy as np
import pytest
import xarray as xr

from tofsims.depth import (
    depth_constant_rate,
    depth_piecewise_rate,
    rate_from_reference_layer,
    scan_intervals,
    scan_time,
)
from tofsims.errors import AnalysisError


def _profile(times):
    return xr.Dataset(
        {"intensity": (("scan", "peak"), np.ones((len(times), 1)))},
        coords={"scan": np.arange(len(times)), "sputter_time": ("scan", np.asarray(times, float))},
    )


def test_constant_rate_adds_depth_beside_time():
    profile = _profile([2.0, 4.0, 6.0])
    out = depth_constant_rate(profile, 0.05, rate_uncertainty_nm_per_s=0.005)
    np.testing.assert_allclose(out.depth, [0.1, 0.2, 0.3])
    np.testing.assert_array_equal(out.sputter_time, profile.sputter_time)
    assert out.depth.dims == ("scan",)
    assert out.depth.attrs["units"] == "nm"
    assert out.depth.attrs["method"] == "constant rate"
    assert out.depth.attrs["sputter_rate_uncertainty_nm_per_s"] == 0.005
    assert "depth" not in profile.coords  # input untouched


def test_time_references_follow_the_start_of_scan_convention():
    # sputter_time is the start of each scan (SurfaceLab: first point 0 s)
    profile = _profile([0.0, 1.5, 3.0])
    np.testing.assert_allclose(scan_time(profile), [0, 1.5, 3.0])
    np.testing.assert_allclose(scan_time(profile, "midpoint"), [0.75, 2.25, 3.75])
    np.testing.assert_allclose(scan_time(profile, "end"), [1.5, 3.0, 4.5])
    with pytest.raises(AnalysisError, match="time reference"):
        scan_time(profile, "centre")


def test_scan_intervals_follow_the_depth_time_reference():
    # whichever depth a scan is labelled with, it sputters through the same interval
    profile = _profile([0.0, 2.0, 4.0])
    for at in ("start", "midpoint", "end"):
        intervals = scan_intervals(depth_constant_rate(profile, 0.05, at=at))
        np.testing.assert_allclose(intervals, [[0, 0.1], [0.1, 0.2], [0.2, 0.3]], atol=1e-12)


def test_piecewise_rates_step_at_the_interface():
    profile = _profile(np.arange(1, 11) * 10.0)  # 10..100 s
    out = depth_piecewise_rate(profile, (0.07, 0.03), (45.0,))
    t = profile.sputter_time.values
    expected = np.where(t <= 45, 0.07 * t, 0.07 * 45 + 0.03 * (t - 45))
    np.testing.assert_allclose(out.depth, expected)
    assert json.loads(out.depth.attrs["sputter_rates_nm_per_s"]) == [0.07, 0.03]


def test_piecewise_rates_with_a_linear_transition():
    profile = _profile([20.0, 40.0, 60.0, 80.0])
    out = depth_piecewise_rate(profile, (0.07, 0.03), (50.0,), transition_s=20.0)
    # rate falls linearly from 0.07 to 0.03 between 40 and 60 s: mean 0.05 over that window
    np.testing.assert_allclose(out.depth, [1.4, 2.8, 2.8 + 1.0, 3.8 + 0.6])


def test_rate_from_reference_layer():
    rate, sigma = rate_from_reference_layer(
        200.0, 10.0, interface_time_uncertainty_s=4.0, thickness_uncertainty_nm=0.3
    )
    assert rate == pytest.approx(0.05)
    assert sigma == pytest.approx(0.05 * np.hypot(0.02, 0.03))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda p: depth_constant_rate(p, 0.0), "positive"),
        (lambda p: depth_constant_rate(p, float("nan")), "positive"),
        (lambda p: depth_piecewise_rate(p, (0.1, 0.2), ()), "switch times"),
        (lambda p: depth_piecewise_rate(p, (0.1, 0.2, 0.3), (50.0, 40.0)), "increase"),
        (lambda p: depth_constant_rate(p.drop_vars("sputter_time"), 0.1), "sputter_time"),
        (lambda p: rate_from_reference_layer(0.0, 10.0), "> 0 s"),
    ],
)
def test_bad_input(call, message):
    with pytest.raises(AnalysisError, match=message):
        call(_profile([1.0, 2.0, 3.0]))


def test_non_monotonic_time_is_refused():
    with pytest.raises(AnalysisError, match="not increasing at scan 2"):
        depth_constant_rate(_profile([1.0, 2.0, 2.0]), 0.1)
