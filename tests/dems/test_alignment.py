"""dems.align: MS and EC on one time axis (docs/conventions.md, "Alignment")."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import dask
import numpy as np
import pytest
import xarray as xr

import dems
from dems.errors import AlignmentError
from dems.io.biologic import read_ec as read_mpt
from dems.io.biologic import read_run
from dems.io.zilien import read_ec as read_zilien_ec
from dems.io.zilien import read_ms

RUN = "zilien_v2_test-21/2022-09-19 11_27_59 test-21"
TZ = "Europe/Copenhagen"


@pytest.fixture(scope="module")
def run_paths(data_dir: Path) -> dict[str, Path]:
    base = data_dir / "dems" / RUN
    return {
        "tsv": Path(f"{base}.tsv"),
        "cv": Path(f"{base}_01_01_CV_C01.mpt"),
        "cp": Path(f"{base}_01_02_CP_C01.mpt"),
    }


@pytest.fixture(scope="module")
def streams(run_paths):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "ms": read_ms(run_paths["tsv"]),
            "zilien_ec": read_zilien_ec(run_paths["tsv"]),
            "mpt": read_run([run_paths["cv"], run_paths["cp"]], timezone=TZ),
        }


def test_mpt_potential_matches_zilien_embedded_block(streams):
    """Real oracle: Zilien's EC-lab block is EC-Lab time + its recorded offset."""
    ms, mpt, embedded = streams["ms"], streams["mpt"], streams["zilien_ec"]
    aligned_ms, aligned = dems.align(ms, mpt)
    assert aligned.sizes["time"] == embedded.sizes["time"] == 1191
    np.testing.assert_allclose(aligned["time"].values, embedded["time"].values, atol=1e-6)
    np.testing.assert_array_equal(aligned["potential"].values, embedded["potential"].values)
    np.testing.assert_array_equal(aligned["current"].values, embedded["current"].values)
    # and by time lookup: the .mpt potential at the Zilien block's own times
    lookup = aligned["potential"].sel(time=embedded["time"].values[::50], method="nearest")
    np.testing.assert_array_equal(lookup.values, embedded["potential"].values[::50])
    record = json.loads(aligned.attrs["alignment"])
    assert record["start_difference_s"] == pytest.approx(13.189963, abs=1e-6)
    assert record["offset_s"] == pytest.approx(0.252967, abs=1e-6)
    assert record["ec_time_shift_s"] == pytest.approx(13.44293)
    assert json.loads(aligned_ms.attrs["alignment"]) == record
    assert aligned.attrs["start_time"] == ms.attrs["start_time"]


def test_ms_is_not_changed(streams):
    aligned_ms, _ = dems.align(streams["ms"], streams["mpt"])
    xr.testing.assert_identical(aligned_ms.drop_attrs(), streams["ms"].drop_attrs())
    assert "alignment" not in streams["ms"].attrs  # inputs untouched


def test_recorded_offset_rescues_a_wrong_time_zone(run_paths, streams):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        cv_utc = read_mpt(run_paths["cv"], timezone="UTC")  # wrong zone: 2 h off
    with pytest.warns(UserWarning, match="check the time zone"):
        _, aligned = dems.align(streams["ms"], cv_utc)
    assert aligned["time"].values[0] == pytest.approx(13.44293)


def test_embedded_block_is_already_aligned(streams):
    _, aligned = dems.align(streams["ms"], streams["zilien_ec"])
    np.testing.assert_array_equal(aligned["time"].values, streams["zilien_ec"]["time"].values)
    assert "already on the Zilien clock" in json.loads(aligned.attrs["alignment"])["offset_source"]


def test_explicit_offset_is_added_to_start_difference(streams):
    _, aligned = dems.align(streams["ms"], streams["mpt"], offset_s=0.5)
    record = json.loads(aligned.attrs["alignment"])
    assert record["offset_source"] == "user"
    assert record["ec_time_shift_s"] == pytest.approx(13.189963 + 0.5, abs=1e-6)


def synthetic_pair(ms_start: str, ec_start: str) -> tuple[xr.Dataset, xr.Dataset]:
    ms = xr.Dataset(
        {"signal": (("channel", "sample"), np.ones((1, 4)))},
        coords={"time": (("channel", "sample"), [[0.0, 100.0, 400.0, 700.0]]), "channel": ["M32"]},
        attrs={"start_time": ms_start},
    )
    ec = xr.Dataset(
        {"potential": ("time", [3.0, 3.5, 4.0])},
        coords={"time": [0.0, 60.0, 120.0]},
        attrs={"start_time": ec_start},
    )
    return ms, ec


def test_ms_starting_minutes_before_ec():
    ms, ec = synthetic_pair("2024-05-01T10:00:00.000000+02:00", "2024-05-01T08:05:00.000000+00:00")
    _, aligned = dems.align(ms, ec)
    np.testing.assert_allclose(aligned["time"].values, [300.0, 360.0, 420.0])
    record = json.loads(aligned.attrs["alignment"])
    assert record["offset_s"] == 0.0 and record["offset_source"] == "none (no offset recorded)"
    # the MS sample at 400 s sees the potential recorded at EC time 100 s (interpolated: 3.5..4)
    at_ms = aligned["potential"].interp(time=400.0).item()
    assert at_ms == pytest.approx(3.0 + 0.5 * (100.0 / 60.0))


def test_alignment_stays_lazy():
    ms, ec = synthetic_pair("2024-05-01T10:00:00+00:00", "2024-05-01T10:01:00+00:00")
    ec = ec.chunk({"time": 2})

    def refuse(*args, **kwargs):
        raise AssertionError("align computed a dask array")

    with dask.config.set(scheduler=refuse):
        _, aligned = dems.align(ms, ec)
    assert aligned["potential"].chunks is not None


@pytest.mark.parametrize("bad", ["", "2024-05-01 10:00:00", "not a time"])
def test_missing_or_naive_start_time_is_an_alignment_error(bad):
    ms, ec = synthetic_pair("2024-05-01T10:00:00+00:00", bad)
    with pytest.raises(AlignmentError, match="no usable start_time"):
        dems.align(ms, ec)
