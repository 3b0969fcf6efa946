"""Hostile claims: headers and metadata claiming 10⁹ scans or pixels.

Each command runs in a child process (the risk is a hang or a memory blow-up in the process
itself) under a generous timeout; it must end with exit status 1, one line naming the file, and
a peak memory below 500 MB. A real claim of a large raster is honoured in bounded memory: a
35 MB GRD over 2048 × 2048 pixels reconstructs below 1 GB with either engine.
"""

from __future__ import annotations

import json
import shutil
import sys

import pytest

from tests.pipelines.hostile import CEI_ON_GRD, run_child, write_wide_grd

pytestmark = pytest.mark.timeout(600)

MAX_RSS_MB = 500
MAX_RECONSTRUCT_MB = 1024
GRD_COMMANDS = {
    "inspect": ["tofsims", "inspect", "run.itm.grd"],
    "reconstruct": ["tofsims", "reconstruct", "run.itm.grd", "-o", "v.zarr"],
    "profile": ["tofsims", "profile", "run.itm.grd", "--seconds-per-scan", "2", "-o", "p.csv"],
    "cei": CEI_ON_GRD,
}
CLAIMS = {
    "1e9 scans": ("Analysis.TotalScans", "1000000000"),
    "1e9 pixels per side": ("Registration.Raster.Resolution", "1000000000"),
    "1e6 scans": ("Analysis.TotalScans", "1000000"),
    "1e12 channels per √u": ("Context.MassScale.SF", "1e12"),
}


def _claim(folder, key, value):
    path = folder / "run.itm.grd.properties.txt"
    lines = path.read_text(encoding="cp1252").splitlines()
    kept = [line for line in lines if not line.startswith(("Analysis.PIShots", key))]
    kept.append(f"{key}\t{value}\t{value}\t{value}")
    path.write_text("\r\n".join(kept) + "\r\n", encoding="cp1252")


def _assert_clean_failure(run, name):
    assert not run.timed_out, f"still running after {run.seconds:.0f} s"
    assert run.returncode == 1, run.stderr
    errors = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("Error: ") and name in errors[0], run.stderr
    assert run.max_rss_mb < MAX_RSS_MB, f"{run.max_rss_mb:.0f} MB"


@pytest.mark.parametrize("claim", CLAIMS)
@pytest.mark.parametrize("command", GRD_COMMANDS)
def test_absurd_grd_claims_end_quickly_with_one_line(tmp_path, grd_inputs, claim, command):
    for path in grd_inputs.iterdir():
        shutil.copy(path, tmp_path / path.name)
    _claim(tmp_path, *CLAIMS[claim])
    run = _assert_clean_failure(run_child(*GRD_COMMANDS[command], cwd=tmp_path), "run.itm.grd")
    assert not (tmp_path / "v.zarr").exists() and not (tmp_path / "c.json").exists()
    return run


def test_batch_on_an_absurd_grd_claim_fails_that_experiment_quickly(tmp_path, grd_inputs):
    for path in grd_inputs.iterdir():
        shutil.copy(path, tmp_path / path.name)
    _claim(tmp_path, "Analysis.TotalScans", "1000000000")
    (tmp_path / "study.toml").write_text(
        "[defaults.tofsims]\nsputter_rate_nm_per_s = 0.05\nseconds_per_scan = 2\n\n"
        '[[experiment]]\nname = "claims"\nkind = "tofsims"\ninput = "run.itm.grd"\n'
    )
    run = run_child("batch", "study.toml", "-o", "out", "--workers", 1, cwd=tmp_path, timeout_s=300)
    assert not run.timed_out and run.returncode == 1, run.stderr
    console = run.stdout + run.stderr
    failure = [line for line in console.splitlines() if line.startswith("  claims: ")]
    assert len(failure) == 1 and "run.itm.grd" in failure[0] and "scans" in failure[0], console
    assert "Traceback" not in console
    assert not (tmp_path / "out" / "claims").exists()


def _claim_scans(store, scans, keep_record):
    """Edit a store's metadata (and its consolidated copy) to claim ``scans`` scans."""
    root = json.loads((store / "zarr.json").read_text())
    if not keep_record:
        del root["attributes"]["stored_chunks"]
    for name, meta in root["consolidated_metadata"]["metadata"].items():
        if meta.get("dimension_names") and "scan" in meta["dimension_names"]:
            axis = meta["dimension_names"].index("scan")
            meta["shape"][axis] = scans
            own = json.loads((store / name / "zarr.json").read_text())
            own["shape"][axis] = scans
            (store / name / "zarr.json").write_text(json.dumps(own))
    (store / "zarr.json").write_text(json.dumps(root))


@pytest.mark.parametrize("keep_record", [True, False], ids=["recorded", "foreign"])
@pytest.mark.parametrize(
    "command",
    [
        ["tofsims", "profile", "v.zarr", "-o", "p.csv"],
        ["tofsims", "cei", "v.zarr", "--sputter-rate", "0.05", "--summary", "c.json"],
        ["tofsims", "inspect", "v.zarr"],
        ["serve", "v.zarr", "--port", "65001"],
    ],
    ids=lambda c: c[1] if c[0] == "tofsims" else c[0],
)
def test_a_store_claiming_1e9_scans_ends_quickly(tmp_path, volume_store, command, keep_record):
    shutil.copytree(volume_store, tmp_path / "v.zarr")
    _claim_scans(tmp_path / "v.zarr", 1_000_000_000, keep_record)
    _assert_clean_failure(run_child(*command, cwd=tmp_path), "v.zarr")


#: Reconstruct with the lazy dask engine (the one a cluster uses) on local threads.
DASK_ENGINE = [
    sys.executable,
    "-c",
    """
import sys
import dask
from tofsims.io.volume_store import write_volume
from tofsims.workflows.options import ReconstructOptions
from tofsims.workflows.reconstruction import open_events, reconstruct
volume = reconstruct(open_events(sys.argv[1]), ReconstructOptions(recalibrate=False))
with dask.config.set(scheduler="threads"):
    write_volume(volume, sys.argv[2])
""",
]


@pytest.fixture(scope="module")
def wide_grd(tmp_path_factory):
    """35 MB of events (1.75 million) over a 2048 × 2048 raster, 20 scans."""
    path = tmp_path_factory.mktemp("wide") / "wide.itm.grd"
    write_wide_grd(path, side=2048, scans=20, events=1_750_000)
    assert path.stat().st_size == 35_000_000
    return path


@pytest.mark.parametrize("engine", ["one pass", "dask"])
def test_a_2048_raster_reconstructs_in_under_1_gb(tmp_path, wide_grd, engine):
    if engine == "one pass":  # the command on one machine, recalibration included
        run = run_child(
            "tofsims", "reconstruct", wide_grd, "-o", "v.zarr", cwd=tmp_path, timeout_s=900
        )
    else:
        run = run_child(wide_grd, "v.zarr", cwd=tmp_path, timeout_s=900, program=DASK_ENGINE)
    assert not run.timed_out and run.returncode == 0, run.stderr
    assert run.max_rss_mb < MAX_RECONSTRUCT_MB, f"{run.max_rss_mb:.0f} MB"
    import xarray as xr

    stored = xr.open_zarr(tmp_path / "v.zarr")
    assert dict(stored.sizes)["y"] == dict(stored.sizes)["x"] == 2048
    assert int(stored["spectrum"].sum()) == 1_750_000  # every record binned
