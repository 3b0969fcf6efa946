"""Mass calibration on a sample of a GRD's events: as good as a fit on the whole file."""

from __future__ import annotations

import numpy as np
import pytest

from tofsims import spectrum_sampling
from tofsims.binning import window_masses
from tofsims.errors import AnalysisError
from tofsims.io.grd_records import open_records, read_records
from tofsims.masscal import fit_calibration, mass_to_tof, tof_to_mass
from tofsims.spectrum_sampling import calibrate_sampled, sample_spectrum
from tofsims.synthetic_raw import poisson_volume, write_grd

FRAGMENTS = ["C2HO-", "PO3-", "LiF2-", "BO2-", "CeO2-", "NiO2-"]
SF, K0 = 72013.7, -2131.4
N_CHANNELS = int(mass_to_tof(200.0, SF, K0)) + 1
#: Properties written 300 ppm and 12 channels off: a recalibration has to find the peaks.
WRONG_SF, WRONG_K0 = SF * (1 + 3e-4), K0 + 12.0


@pytest.fixture(scope="module")
def wrong_scale(tmp_path_factory):
    """About 330 000 events over 30 scans, with a deliberately wrong SF/K0 in the properties."""
    path = tmp_path_factory.mktemp("sampling") / "run.grd"
    volume = poisson_volume(FRAGMENTS, (30, 24, 24), mean=1.0, seed=7)
    write_grd(
        volume,
        path,
        sf=SF,
        k0=K0,
        calibration_per_pixel=1.0,
        background_per_pixel=3.0,
        properties_sf=WRONG_SF,
        properties_k0=WRONG_K0,
        seed=8,
    )
    return open_records(path)


def _mass_difference_ppm(a, b, masses):
    """Largest relative difference (ppm) of the masses two calibrations give a flight time."""
    tofs = mass_to_tof(masses, a.sf, a.k0)
    return np.max(np.abs(tof_to_mass(tofs, b.sf, b.k0) / masses - 1.0)) * 1e6


def _whole_file_fit(records):
    spectra, sample = sample_spectrum(records, records.n_records, N_CHANNELS)
    assert sample.fraction == 1.0
    return fit_calibration(spectra.sum(axis=0), WRONG_SF, WRONG_K0, polarity="negative")


def test_whole_file_spectrum_is_the_histogram_of_every_event(wrong_scale):
    spectra, sample = sample_spectrum(wrong_scale, wrong_scale.n_records, N_CHANNELS)
    tof = np.fromfile(wrong_scale.path, dtype="<u4").reshape(-1, 5)[:, 4]
    expected = np.bincount(tof[tof < N_CHANNELS], minlength=N_CHANNELS)
    np.testing.assert_array_equal(spectra.sum(axis=0), expected)
    assert sample.events == wrong_scale.n_records


def test_sample_is_spread_through_the_file(wrong_scale, monkeypatch):
    reads = []

    def recording(handle, first, out):
        reads.append((first, len(out)))
        return read_records(handle, first, out)

    monkeypatch.setattr(spectrum_sampling, "read_records", recording)
    spectra, sample = sample_spectrum(wrong_scale, 20_000, N_CHANNELS, runs=64)
    assert sample.runs == 64 and sample.events == 64 * sample.run_events
    assert 0.05 < sample.fraction < 0.07
    assert spectra.sum() == sample.events  # every flight time is below 200 u
    # runs evenly spaced from the first record to the last (every depth contributes)
    starts = np.array([first for first, _ in reads])
    assert starts[0] == 0 and reads[-1][0] + reads[-1][1] == wrong_scale.n_records
    gaps = np.diff(starts)
    assert gaps.min() >= gaps.max() - 1


def test_sampled_fit_within_5_ppm_of_the_whole_file_fit(wrong_scale):
    masses = window_masses(FRAGMENTS)[0]
    sampled = calibrate_sampled(
        wrong_scale, N_CHANNELS, check_masses=masses, min_events=40_000, first_fraction=0.0
    )
    whole = _whole_file_fit(wrong_scale)
    assert sampled.sample.fraction < 0.5  # a sample, not the file
    assert abs(sampled.fit.sf / whole.sf - 1) < 5e-6
    assert _mass_difference_ppm(sampled.fit, whole, masses) < 5.0
    calibration_masses = whole.mass[whole.used]
    assert _mass_difference_ppm(sampled.fit, whole, calibration_masses) < 5.0
    # and both found the true scale despite the wrong start
    assert abs(sampled.fit.sf / SF - 1) < 20e-6
    assert sampled.mass_error_ppm <= 1.0
    record = sampled.to_record()
    assert record["sample"]["events"] == sampled.sample.events
    assert record["sf_start"] == pytest.approx(WRONG_SF)


def test_a_too_small_first_sample_grows(wrong_scale):
    # 1 000 events hold ~30 counts per calibration peak: the halves disagree, it must grow
    masses = window_masses(FRAGMENTS)[0]
    sampled = calibrate_sampled(
        wrong_scale, N_CHANNELS, check_masses=masses, min_events=1_000, first_fraction=0.0
    )
    assert sampled.rounds > 1 and sampled.sample.events > 1_000
    assert _mass_difference_ppm(sampled.fit, _whole_file_fit(wrong_scale), masses) < 5.0


def test_weak_calibration_peaks_fall_back_to_the_whole_file(tmp_path):
    path = tmp_path / "weak.grd"
    volume = poisson_volume(["PO3-"], (10, 16, 16), mean=1.0, seed=3)
    write_grd(
        volume,
        path,
        sf=SF,
        k0=K0,
        calibration_per_pixel=0.15,
        background_per_pixel=0.5,
        properties_sf=WRONG_SF,
        properties_k0=WRONG_K0,
        seed=4,
    )
    records = open_records(path)
    sampled = calibrate_sampled(records, N_CHANNELS, min_events=200, first_fraction=0.0)
    assert sampled.sample.fraction == 1.0
    assert abs(sampled.fit.sf / SF - 1) < 100e-6


def test_no_calibration_peaks_anywhere_is_an_error(tmp_path):
    path = tmp_path / "none.grd"
    volume = poisson_volume(["PO3-"], (4, 8, 8), mean=1.0, seed=3)
    write_grd(volume, path, sf=SF, k0=K0, calibration_per_pixel=0, background_per_pixel=0)
    with pytest.raises(AnalysisError, match="calibration peak"):
        calibrate_sampled(open_records(path), N_CHANNELS, min_events=100, first_fraction=0.0)
