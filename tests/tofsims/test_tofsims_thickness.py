import json

import numpy as np
import pytest
import xarray as xr

from tests.tofsims_helpers import raise_if_dask_computes
from tofsims.depth import depth_constant_rate
from tofsims.errors import AnalysisError
from tofsims.profiles import depth_profile, select_fragment
from tofsims.synthetic import layered_sample
from tofsims.thickness import (
    bin_laterally,
    cei_thickness_map,
    coating_thickness,
    thickness_statistics,
)


@pytest.fixture(scope="module")
def samples():
    out = {}
    for name in ("pristine", "modified"):
        volume, truth = layered_sample(name, seed=21)
        out[name] = (depth_constant_rate(volume, truth.sputter_rate_nm_per_s, at="midpoint"), truth)
    return out


def _binned_truth(truth, size):
    binned = truth.cei_thickness_nm.coarsen(y=size, x=size, boundary="trim").mean()
    return binned.assign_coords(y=np.arange(binned.sizes["y"]), x=np.arange(binned.sizes["x"]))


def test_binning_sums_blocks():
    counts = xr.DataArray(
        np.arange(2 * 5 * 6).reshape(2, 5, 6),
        dims=("scan", "y", "x"),
        coords={"y": np.arange(5), "x": np.arange(6)},
    )
    binned = bin_laterally(counts, 2)
    assert binned.sizes == {"scan": 2, "y": 2, "x": 3}
    assert int(binned[0, 0, 0]) == 0 + 1 + 6 + 7
    np.testing.assert_array_equal(binned.x, [0, 1, 2])
    assert binned.attrs["lateral_bin"] == 2


@pytest.mark.parametrize("name", ["pristine", "modified"])
def test_map_mean_and_rmse_at_4x4(samples, name):
    volume, truth = samples[name]
    result = cei_thickness_map(volume, "C2HO-", bin_size=4)
    reference = _binned_truth(truth, 4)
    found = result.thickness
    assert found.dims == ("y", "x") and found.shape == reference.shape
    assert float(result.mask.mean()) > 0.9
    mean = float(reference.mean())
    assert float(found.mean()) == pytest.approx(mean, abs=max(0.05 * mean, 0.3))
    rmse = float(np.sqrt(((found - reference) ** 2).mean()))
    assert rmse <= 0.10 * mean
    # the sigma map is of the size of the actual errors (not 0, not 10x too large)
    sigma = float(result.thickness_std.median())
    assert 0.2 * sigma < float(np.abs(found - reference).median()) < 10 * sigma + 0.1
    method = json.loads(result.attrs["method"])
    assert method["lateral_bin"] == 4 and method["marker"] == "C2HO-"


@pytest.mark.parametrize("size", [8, 16])
def test_coarser_binning_still_tracks_the_map(samples, size):
    volume, truth = samples["pristine"]
    found = cei_thickness_map(volume, bin_size=size).thickness
    reference = _binned_truth(truth, size)
    assert float(np.sqrt(((found - reference) ** 2).mean())) <= 0.1 * float(reference.mean())


@pytest.mark.parametrize("marker", ["LiF2-", "PO3-"])
def test_other_cei_markers_agree(samples, marker):
    volume, truth = samples["pristine"]
    found = cei_thickness_map(volume, marker, bin_size=4).thickness
    reference = _binned_truth(truth, 4)
    assert float(found.mean()) == pytest.approx(float(reference.mean()), rel=0.05)


def test_pristine_thicker_than_modified_on_every_map_statistic(samples):
    stats = {
        name: thickness_statistics(cei_thickness_map(samples[name][0])).compute()
        for name in samples
    }
    for key in ("mean", "median", "p05", "p16", "p84", "p95"):
        assert float(stats["pristine"][key]) > float(stats["modified"][key]), key


def test_statistics_of_a_known_map():
    values = np.array([[1.0, 2.0], [3.0, np.nan]])
    known = xr.Dataset(
        {"thickness": (("y", "x"), values), "thickness_std": (("y", "x"), np.full((2, 2), 0.3))}
    )
    stats = thickness_statistics(known, rate_relative_uncertainty=0.1)
    assert float(stats["mean"]) == pytest.approx(2.0)
    assert float(stats["median"]) == pytest.approx(2.0)
    assert float(stats["std"]) == pytest.approx(1.0)
    assert float(stats["valid_fraction"]) == pytest.approx(0.75)
    assert float(stats["uncertainty"]) == pytest.approx(np.hypot(0.3 * np.sqrt(3) / 3, 0.2))
    assert float(stats["p05"]) == pytest.approx(np.nanpercentile(values, 5))


def test_pixels_without_a_layer_are_masked(samples):
    volume, _ = samples["pristine"]
    # remove the CEI marker from a corner: no counts there
    counts = volume.counts.copy(data=volume.counts.values.copy())
    counts.loc[{"fragment": "C2HO-"}] = counts.sel(fragment="C2HO-").where(
        (counts.y >= 8) | (counts.x >= 8), 0
    )
    result = cei_thickness_map(volume.assign(counts=counts), bin_size=4)
    assert not bool(result.mask.isel(y=slice(0, 2), x=slice(0, 2)).any())
    assert np.isnan(result.thickness.isel(y=0, x=0))
    assert float(result.mask.isel(y=slice(2, None)).mean()) > 0.9
    assert "units" not in result.mask.attrs


def test_coating_thickness(samples):
    volume, truth = samples["modified"]
    coating = coating_thickness(select_fragment(depth_profile(volume).intensity, "CeO2-"))
    assert bool(coating.present)
    assert float(coating.thickness) == pytest.approx(truth.coating_thickness_nm, abs=0.5)
    assert 0 < float(coating.thickness_std) < 0.5
    none = coating_thickness(
        select_fragment(depth_profile(samples["pristine"][0]).intensity, "CeO2-")
    )
    assert not bool(none.present) and np.isnan(float(none.thickness))


def test_lazy_on_a_volume_larger_than_memory():
    # 6 fragments x 2000 scans x 1024 x 1024 uint32 = 50 GB: only the graph is built
    volume, _ = layered_sample(
        "pristine", ny=1024, nx=1024, n_scans=2000, chunks={"y": 64, "scan": 50}
    )
    assert volume.counts.nbytes > 40e9
    volume = depth_constant_rate(volume, 0.05)
    with raise_if_dask_computes():
        result = cei_thickness_map(volume, bin_size=16)
        stats = thickness_statistics(result)
    assert result.thickness.chunks is not None and stats["mean"].chunks is not None
    assert result.thickness.shape == (64, 64)


def test_lazy_map_equals_eager_map():
    volume, _ = layered_sample("modified", ny=16, nx=16, n_scans=60, chunks={"y": 8})
    volume = depth_constant_rate(volume, 0.05)
    with raise_if_dask_computes():
        lazy = cei_thickness_map(volume, n_boot=5)
        coating = coating_thickness(
            select_fragment(depth_profile(volume).intensity, "CeO2-"), n_boot=2
        )
    eager = cei_thickness_map(volume.compute(), n_boot=5)
    np.testing.assert_allclose(lazy.thickness.values, eager.thickness.values)
    np.testing.assert_allclose(lazy.thickness_std.values, eager.thickness_std.values)
    assert coating.thickness.chunks is not None


def test_bad_input(samples):
    volume, _ = samples["pristine"]
    with pytest.raises(AnalysisError, match=r"1\.\.20"):
        cei_thickness_map(volume, bin_size=21)
    with pytest.raises(AnalysisError, match="'Li2CO3-' is not in the data"):
        cei_thickness_map(volume, "Li2CO3-")
    with pytest.raises(AnalysisError, match="depth"):
        cei_thickness_map(volume.drop_vars("depth"))
    with pytest.raises(AnalysisError, match="smaller than one"):
        cei_thickness_map(volume.isel(y=slice(0, 3)), bin_size=4)


def test_per_pixel_rate_map(samples):
    volume, truth = samples["modified"]
    uniform = xr.full_like(truth.cei_thickness_nm, 0.05)
    by_time = cei_thickness_map(volume.drop_vars("depth"), rate_map=uniform)
    by_depth = cei_thickness_map(volume)
    # midpoint depth in the fixture vs start-of-scan time here: half a scan (0.05 nm) apart
    np.testing.assert_allclose(by_time.thickness, by_depth.thickness - 0.05, atol=1e-9)
    two_classes = uniform.where(uniform.x < 24, 0.1)  # a faster-sputtering right half
    scaled = cei_thickness_map(volume.drop_vars("depth"), rate_map=two_classes)
    np.testing.assert_allclose(
        scaled.thickness.isel(x=slice(6, None)), 2 * by_time.thickness.isel(x=slice(6, None))
    )
    np.testing.assert_allclose(
        scaled.thickness.isel(x=slice(0, 6)), by_time.thickness.isel(x=slice(0, 6))
    )
    with pytest.raises(AnalysisError, match="dims"):
        cei_thickness_map(volume, rate_map=uniform.isel(x=0))
