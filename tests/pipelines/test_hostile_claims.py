"""Hostile claims: headers and metadata claiming 10⁹ scans or pixels.

Each command runs in a child process (the risk is a hang or a memory blow-up in the process
itself) under a generous timeout; it must end with exit status 1, one line naming the file, and
a peak memory below 500 MB.
"""

from __future__ import annotations

import json
import shutil

import pytest

from tests.pipelines.hostile import run_child

pytestmark = pytest.mark.timeout(600)

MAX_RSS_MB = 500
GRD_COMMANDS = {
    "inspect": ["tofsims", "inspect", "run.itm.grd"],
    "reconstruct": ["tofsims", "reconstruct", "run.itm.grd", "-o", "v.zarr"],
    "profile": ["tofsims", "profile", "run.itm.grd", "--seconds-per-scan", "2", "-o", "p.csv"],
    "cei": [
        "tofsims",
        "cei",
        "run.itm.grd",
        "--sputter-rate",
        "0.05",
        "--seconds-per-scan",
        "2",
        "--summary",
        "c.json",
    ],
}
CLAIMS = {
    "1e9 scans": ("Analysis.TotalScans", "1000000000"),
    "1e9 pixels per side": ("Registration.Raster.Resolution", "1000000000"),
    "1e6 scans": ("Analysis.TotalScans", "1000000"),
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


@pytest.fixture(scope="module")
def volume_store(tmp_path_factory, grd_inputs):
    from tests.pipelines.hostile import invoke

    folder = tmp_path_factory.mktemp("claims-store")
    store = folder / "v.zarr"
    result = invoke(
        "tofsims",
        "reconstruct",
        grd_inputs / "run.itm.grd",
        "--no-recalibrate",
        "--seconds-per-scan",
        2,
        "-o",
        store,
    )
    assert result.exit_code == 0, result.output
    return store


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
