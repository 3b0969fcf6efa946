"""Writers of real-format files from a counts volume: GRD truth, 3D ASCII, SurfaceLab."""

from __future__ import annotations

import numpy as np
import pytest

from tofsims.fragments import ion_mass
from tofsims.io import grd
from tofsims.masscal import tof_to_mass
from tofsims.synthetic_raw import (
    poisson_volume,
    write_ascii3d,
    write_grd,
    write_surfacelab_profile,
)

FRAGMENTS = ["C2HO-", "6LiF2-", "PO3-"]


@pytest.fixture
def volume():
    return poisson_volume(FRAGMENTS, (3, 4, 5), mean=[1.0, 0.5, 2.0], seed=7)


def test_grd_events_carry_every_count(volume, tmp_path):
    path = tmp_path / "v.grd"
    truth = write_grd(
        volume,
        path,
        sf=72000.0,
        k0=-2000.0,
        calibration_per_pixel=0,
        background_per_pixel=0,
        shots_per_pixel=3,
        seed=2,
    )
    records = np.fromfile(path, dtype="<u4").reshape(-1, 5)
    assert records.shape[0] == int(volume.sum()) == int(truth["events"].sum())
    assert np.all(np.diff(records[:, 0].astype(int)) >= 0)  # ordered by scan
    assert records[:, 1].max() < 3  # shot inside the pixel's shots
    mass = tof_to_mass(records[:, 4], 72000.0, -2000.0)
    nearest = np.array([ion_mass(f) for f in FRAGMENTS])
    assigned = np.abs(mass[:, None] - nearest[None, :]).argmin(axis=1)
    assert np.abs(mass - nearest[assigned]).max() < 0.02  # inside ±3σ of R = 5000
    recount = np.zeros(volume.shape, dtype=int)
    np.add.at(recount, (assigned, records[:, 0], records[:, 3], records[:, 2]), 1)
    np.testing.assert_array_equal(recount, volume.values)
    events = grd.read(path)
    assert events.attrs["shots_per_pixel"] == 3
    assert events["events_per_scan"].values.tolist() == truth["events"].values.tolist()


def test_grd_scan_order_is_shuffled_within_scans(volume, tmp_path):
    path = tmp_path / "v.grd"
    write_grd(volume, path, seed=3)
    records = np.fromfile(path, dtype="<u4").reshape(-1, 5)
    first_scan = records[records[:, 0] == 0]
    pixel = first_scan[:, 3] * 5 + first_scan[:, 2]
    assert np.any(np.diff(pixel.astype(int)) < 0)  # not written pixel by pixel


def test_ascii3d_files_reshape_back(volume, tmp_path):
    paths = write_ascii3d(volume, tmp_path, measurement="cube")
    assert [p.name for p in paths] == [
        "cube (1) - C_2HO-.txt",
        "cube (2) - ^6LiF_2-.txt",
        "cube (3) - PO_3-.txt",
    ]
    table = np.loadtxt(paths[1], comments="#", delimiter="\t")
    assert table.shape == (3 * 4 * 5, 4)
    assert table[:6, 0].tolist() == [0, 1, 2, 3, 4, 0]  # x fastest
    nx, ny, nz = (int(table[:, k].max()) + 1 for k in range(3))
    cube = table[:, 3].reshape((nx, ny, nz), order="F")  # tarahoffman's reading
    np.testing.assert_array_equal(cube.transpose(2, 1, 0), volume.sel(fragment="6LiF2-").values)
    assert paths[0].read_bytes().startswith(b"# cube - C_2HO-\r\n")


def test_surfacelab_profile_layout_and_values(volume, tmp_path):
    path = write_surfacelab_profile(
        volume,
        tmp_path / "p - NF.txt",
        seconds_per_scan=1.5,
        primary_current_a=1e-9,
        field_of_view_m=4e-4,
    )
    raw = path.read_bytes()
    lines = raw.decode("latin-1").split("\r\n")
    assert lines[0] == "# Profile Smoothing is Disabled"
    assert lines[1] == "#\t\t\t\ttotal\tC_2HO-\t^6LiF_2-\tPO_3-\t"
    assert lines[2] == f"#\t\t\t\tN/A\t{ion_mass('C2HO-'):.4f}\t{ion_mass('6LiF2-'):.4f}\t78.9591\t"
    assert lines[3].startswith("#Data Point #\tSputter Time (s)\tDose (ions)\tFluence (ions/cm^2)")
    rows = [line.split("\t") for line in lines[4:] if line]
    assert len(rows) == 3 and all(row[-1] == "" for row in rows)
    sums = volume.sum(("y", "x")).transpose("scan", "fragment").values
    for k, row in enumerate(rows):
        assert int(row[0]) == k + 1
        assert float(row[1]) == pytest.approx(1.5 * k)
        dose = 1e-9 * 1.5 * (k + 1) / 1.602176634e-19
        assert float(row[2]) == pytest.approx(dose, rel=1e-5)
        assert float(row[3]) == pytest.approx(dose / 0.04**2, rel=1e-5)
        assert [float(v) for v in row[5:-1]] == sums[k].tolist()
        assert float(row[4]) == sums[k].sum()


def test_writers_leave_no_partial_files(volume, tmp_path):
    bad = volume.astype("float64") - 5.0
    with pytest.raises(ValueError, match="non-negative integers"):
        write_grd(bad, tmp_path / "x.grd")
    assert list(tmp_path.iterdir()) == []
