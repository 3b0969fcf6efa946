import numpy as np
import pytest

from tofsims.synthetic import FRAGMENTS, PRESETS, layered_sample


def test_volume_follows_conventions():
    volume, truth = layered_sample("modified", ny=12, nx=10, n_scans=40, seed=4)
    assert volume.counts.dims == ("fragment", "scan", "y", "x")
    assert volume.counts.shape == (6, 40, 12, 10)
    assert list(volume.fragment.values) == list(FRAGMENTS)
    assert volume.counts.dtype == np.uint32
    assert volume.sputter_time.attrs["units"] == "s"
    np.testing.assert_allclose(np.diff(volume.sputter_time), volume.attrs["seconds_per_scan"])
    for attr in (
        "source_file",
        "format",
        "reader",
        "reader_version",
        "poisson_corrected",
        "seconds_per_scan",
        "polarity",
        "shots_per_pixel",
    ):
        assert attr in volume.attrs
    assert truth.cei_thickness_nm.dims == ("y", "x")
    assert truth.coating_thickness_nm == 3.0


def test_seeded_and_identical_in_memory_and_dask():
    a, _ = layered_sample("pristine", ny=16, nx=8, n_scans=30, seed=7)
    b, _ = layered_sample("pristine", ny=16, nx=8, n_scans=30, seed=7, chunks={"y": 5})
    c, _ = layered_sample("pristine", ny=16, nx=8, n_scans=30, seed=8)
    assert b.counts.chunks is not None
    np.testing.assert_array_equal(a.counts.values, b.counts.values)
    assert not np.array_equal(a.counts.values, c.counts.values)


def test_counts_follow_the_expectation():
    volume, truth = layered_sample("pristine", seed=1, lateral_contrast=0.0)
    observed = volume.counts.sum(("y", "x")).values
    expected = truth.expected.values
    # Poisson: sum over 2304 pixels agrees with the expectation to a few sigma
    big = expected > 100
    z = (observed[big] - expected[big]) / np.sqrt(expected[big])
    assert np.abs(z).max() < 5
    per_voxel = expected / (volume.sizes["y"] * volume.sizes["x"])
    assert 0.01 < per_voxel.max() <= 5.0  # realistic 0.05–5 counts per voxel


@pytest.mark.parametrize(("preset", "t_max"), [("pristine", 160), ("modified", 60)])
def test_presets_reach_the_marker_maximum_as_in_the_study(preset, t_max):
    _, truth = layered_sample(preset, seed=1)
    expected = truth.expected.sel(fragment="C2HO-")
    assert float(expected.sputter_time[int(expected.argmax("scan"))]) == pytest.approx(
        t_max, abs=10
    )


def test_thickness_map_has_tilt_and_bumps():
    _, truth = layered_sample("pristine", seed=1, cei_bumps=0)
    t = truth.cei_thickness_nm
    tilt = PRESETS["pristine"].cei_tilt * PRESETS["pristine"].cei_thickness_nm
    rise = float(t.isel(x=-1).mean() - t.isel(x=0).mean())
    assert rise == pytest.approx(tilt * 47 / 48, rel=0.01)
    _, bumpy = layered_sample("pristine", seed=1)
    assert float(np.abs(bumpy.cei_thickness_nm - t).max()) > 0.5


def test_drift_shifts_the_images():
    _, truth = layered_sample("pristine", seed=2, drift_px=(3, -2))
    np.testing.assert_array_equal(truth.shifts.isel(scan=-1).values, [3, -2])
    np.testing.assert_array_equal(truth.shifts.isel(scan=0).values, [0, 0])


def test_saturation_limits_counts_to_the_shots():
    volume, _ = layered_sample("pristine", seed=1, saturation_shots=2, ny=8, nx=8)
    assert int(volume.counts.max()) <= 2
    assert volume.attrs["shots_per_pixel"] == 2
    free, _ = layered_sample("pristine", seed=1, ny=8, nx=8)
    lif = "LiF2-"
    assert float(volume.counts.sel(fragment=lif).mean()) < float(
        free.counts.sel(fragment=lif).mean()
    )
