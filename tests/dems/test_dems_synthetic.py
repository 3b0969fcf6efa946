"""The synthetic experiment generator and its instrument-format writers."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from dems.synthetic import Scenario, make_experiment
from dems.synthetic_files import write_experiment, write_mpt, write_quadera_asc


@pytest.fixture(scope="module")
def experiment():
    return make_experiment(seed=8, ms_lead_s=600.0, clock_offset_s=15.0)


def test_ground_truth_is_consistent(experiment):
    truth = experiment.truth
    sc = Scenario()
    assert truth["delay_s"] == pytest.approx(sc.dead_time_s + sc.tau_s * math.log(2))
    assert truth["align_offset_s"] == -15.0
    assert truth["evolved"]["CO"]["umol"] == 0.0
    assert truth["evolved"]["O2"]["umol_per_g"] == pytest.approx(
        truth["evolved"]["O2"]["umol"] / 0.01
    )
    # amounts follow from the evolution law: O2 rate ∝ (U − 4.39 V) during charge and hold
    assert 10 < truth["evolved"]["O2"]["umol_per_g"] < 100


def test_ms_channels_have_their_own_clocks_and_the_ec_starts_later(experiment):
    time = experiment.ms["time"].values
    assert np.all(np.diff(time[:, 0]) > 0)  # channels measured one after another
    assert np.all(np.diff(time, axis=1) > 0)
    ms_start = np.datetime64(experiment.ms.attrs["start_time"][:26])
    ec_start = np.datetime64(experiment.ec.attrs["start_time"][:26])
    assert (ec_start - ms_start) / np.timedelta64(1, "s") == pytest.approx(615.0)


def test_noise_scale_scales_the_baseline_noise():
    quiet = make_experiment(seed=1).ms["signal"].sel(channel="M32").values[:100]
    noisy = make_experiment(seed=1, noise_scale=5.0).ms["signal"].sel(channel="M32").values[:100]
    assert np.std(np.diff(noisy)) / np.std(np.diff(quiet)) == pytest.approx(5.0, rel=0.3)


def test_mpt_layout_follows_eclab(tmp_path, experiment):
    path = write_mpt(experiment.ec, tmp_path / "run_C01.mpt")
    raw = path.read_bytes()
    assert raw.startswith(b"EC-Lab ASCII FILE\r\n")
    assert "cm²".encode("latin-1") in raw
    lines = raw.decode("latin-1").split("\r\n")
    n_header = int(lines[1].split(":")[1])
    assert lines[n_header - 1].startswith("mode\tox/red\t") and lines[n_header - 1].endswith("\t")
    assert "Acquisition started on : 03/14/2026 09:10:15.000" in lines
    assert "Mass of active material : 10,000 mg" in lines
    first = lines[n_header].split("\t")
    columns = lines[n_header - 1].rstrip("\t").split("\t")
    assert len(first) == len(columns)
    ewe = first[columns.index("Ewe/V")]
    assert ewe == "3,5500000E+000"  # decimal comma, three-digit exponent
    assert len(lines) - 1 - n_header == experiment.ec.sizes["time"]


def test_quadera_layout_follows_the_real_export(tmp_path, experiment):
    path = write_quadera_asc(experiment.ms, tmp_path / "run.asc")
    raw = path.read_bytes()
    assert not raw.endswith(b"\r\n")  # like the real export: no final line break
    lines = raw.decode("latin-1").split("\r\n")
    assert lines[0] == "Sourcefile\trun.qmp"
    assert lines[3] == "Start Time\t14/03/2026 09:00:00"
    assert lines[6] == "\t\t16\t\t\t18\t\t\t28\t\t\t32\t\t\t40\t\t\t44\t"
    assert lines[7] == "Time\tTime Relative [s]\tIon Current [A]\t" * 6
    row = lines[8].split("\t")
    assert len(row) == 18
    assert float(row[1]) == pytest.approx(experiment.ms["time"].values[0, 0], abs=1e-3)
    assert float(row[2]) == pytest.approx(experiment.ms["signal"].values[0, 0], rel=1e-6)
    assert "e-011" in lines[8] or "e-012" in lines[8]


def test_write_experiment_writes_every_file_and_the_truth(tmp_path, experiment):
    paths = write_experiment(experiment, tmp_path)
    assert set(paths) == {"ms", "ec", "calibration_ms", "steps", "truth"}
    truth = json.loads(paths["truth"].read_text())
    assert truth["onsets_V"] == {"O2": 4.39, "CO2": 4.35, "CO": None}


def test_readers_read_back_what_the_writers_wrote(tmp_path, experiment):
    import dems

    paths = write_experiment(experiment, tmp_path)
    ms = dems.open_ms(paths["ms"], timezone="UTC")
    ec = dems.open_ec(paths["ec"], timezone="UTC")
    np.testing.assert_allclose(ms["time"].values, experiment.ms["time"].values, atol=1e-3)
    np.testing.assert_allclose(ms["signal"].values, experiment.ms["signal"].values, rtol=1e-6)
    np.testing.assert_allclose(ec["potential"].values, experiment.ec["potential"].values, atol=1e-6)
    np.testing.assert_allclose(ec["current"].values, experiment.ec["current"].values, atol=1e-6)
    assert ec.attrs["characteristic_mass_g"] == pytest.approx(0.010)
    assert ms.attrs["start_time"] == "2026-03-14T09:00:00.000000+00:00"
    assert ec.attrs["start_time"] == "2026-03-14T09:10:15.000000+00:00"
