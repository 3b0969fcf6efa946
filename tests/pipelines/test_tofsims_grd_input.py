"""`tofsims cei` and `tofsims profile` straight from a GRD event list (binned on the fly)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from pipelines.cli import cli
from tofsims.synthetic import layered_sample
from tofsims.synthetic_raw import write_grd


@pytest.fixture(scope="module")
def grd(tmp_path_factory):
    folder = tmp_path_factory.mktemp("grd")
    volume, _ = layered_sample("modified", seed=2, ny=16, nx=16)
    path = folder / "modified.itm.grd"
    write_grd(volume["counts"], path, seed=2)
    return path


def _assert_close(a, b, rel=1e-9):
    """Equal JSON values, numbers to ``rel``."""
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            _assert_close(a[key], b[key], rel)
    elif isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _assert_close(x, y, rel)
    elif isinstance(a, float) and isinstance(b, float):
        assert a == pytest.approx(b, rel=rel, nan_ok=True)
    else:
        assert a == b


def _run(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


@pytest.mark.parametrize("block_events", [None, 30_000])
def test_cei_on_grd_equals_cei_on_its_reconstructed_store(grd, tmp_path, block_events, monkeypatch):
    from tofsims.io import grd as grd_reader

    if block_events is not None:  # read blocks of 10–13 scans: across the groups of 16
        monkeypatch.setitem(grd_reader.read.__kwdefaults__, "block_events", block_events)
        assert grd_reader.read(grd).encoding["block_scans"][:4] == [0, 13, 23, 32]
    store = tmp_path / "volume.zarr"
    _run("tofsims", "reconstruct", grd, "-o", store, "--no-recalibrate", "--seconds-per-scan", 2)
    _run(
        "tofsims",
        "cei",
        store,
        "--sputter-rate",
        0.05,
        "--marker",
        "LiF2-",
        "--summary",
        tmp_path / "store.json",
    )
    _run(
        "tofsims",
        "cei",
        grd,
        "--sputter-rate",
        0.05,
        "--seconds-per-scan",
        2,
        "--marker",
        "LiF2-",
        "--summary",
        tmp_path / "grd.json",
    )
    from_store = json.loads((tmp_path / "store.json").read_text())
    from_grd = json.loads((tmp_path / "grd.json").read_text())
    # the peak fits assign counts per depth block (spectrum_part): groups of 16 scans for
    # the store and for the GRD binned on the fly by dask, whatever blocks dask read
    assert from_grd["cei_thickness_nm"]["mean"] == pytest.approx(
        from_store["cei_thickness_nm"]["mean"], rel=1e-9
    )
    assert from_grd["cei_thickness_nm"]["mean"] == pytest.approx(4.0, rel=0.1)
    assert from_grd["coating_thickness_nm"] == pytest.approx(3.0, abs=0.5)
    # fragment purity (#17): windows from the measured width (write_grd's R = 5000)
    assert from_grd["resolving_power"]["at_fragments"]["LiF2-"] == pytest.approx(5000, rel=0.05)
    lif2 = from_grd["mass_windows"]["LiF2-"]
    assert lif2["mass_high_u"] - lif2["mass_low_u"] < 0.05  # not the ±0.05 u of before
    assert [i["interferent"] for i in lif2["interferents_in_window"]] == ["CHO2-", "C2H5O-"]
    assert set(from_grd["isotope_evidence"]) == {"boron", "lithium"}
    for key in ("mass_windows", "isotope_evidence"):  # the same windows, fits and ratios
        _assert_close(from_store[key], from_grd[key])


def test_profile_on_grd_needs_and_uses_seconds_per_scan(grd, tmp_path):
    missing = CliRunner().invoke(
        cli, ["tofsims", "profile", str(grd), "-o", str(tmp_path / "p.csv")]
    )
    assert missing.exit_code == 1 and "--seconds-per-scan" in missing.output
    _run("tofsims", "profile", grd, "--seconds-per-scan", 2, "-o", tmp_path / "p.csv")
    table = pd.read_csv(tmp_path / "p.csv")
    assert list(table["sputter_time_s"][:3]) == [0, 2, 4]  # start of each scan
    assert {"LiF2-", "NiO2-", "CeO2-"} <= set(table.columns)
