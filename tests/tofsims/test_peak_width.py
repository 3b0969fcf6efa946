"""Peak width over the fragments' mass range: heavy calibration ions, their checks, the flag.

Ground truth: GRD runs written by :func:`tofsims.synthetic_raw.write_grd`, whose peaks have a
known width (:func:`tofsims.synthetic_raw.peak_fwhm_channels`): a constant resolving power R,
or, with a primary-ion pulse added in quadrature, one that grows with mass (R = 5000 and a
30-channel pulse: R ≈ 1170 at H⁻, 4090 at Cl⁻, 4190 at C₂HO⁻, 4770 at CeO₂⁻).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from tofsims.fragments import CALIBRATION_IONS, CALIBRATION_IONS_HEAVY, ion_mass
from tofsims.io.volume_store import open_volume
from tofsims.masscal import mass_to_tof
from tofsims.peak_windows import PeakWidth, measure_peak_width
from tofsims.synthetic_raw import peak_fwhm_channels, write_grd
from tofsims.workflows.fragment_purity import peak_width_from_resolution, window_record
from tofsims.workflows.options import ReconstructOptions
from tofsims.workflows.reconstruction import reconstruct_into

SF, K0 = 72000.0, -2100.0
RESOLUTION = 5000.0
FRAGMENTS = ["C2HO-", "NiO2-", "CeO2-"]
ALL_IONS = [*CALIBRATION_IONS["negative"], *CALIBRATION_IONS_HEAVY["negative"]]


def _run(tmp_path, calibration_ions=None, pulse=0.0, extra=None, seed=0):
    """A generated run of the fragments and ``extra`` species (1 count per voxel)."""
    names = [*FRAGMENTS, *(extra or [])]
    rng = np.random.default_rng(seed)
    counts = xr.DataArray(
        rng.poisson(1.0, (len(names), 37, 6, 6)),
        dims=("fragment", "scan", "y", "x"),
        coords={"fragment": names},
    )
    path = tmp_path / "run.grd"
    write_grd(
        counts,
        path,
        sf=SF,
        k0=K0,
        resolution=RESOLUTION,
        pulse_fwhm_channels=pulse,
        calibration_per_pixel=3.0,
        calibration_ions=calibration_ions,
        seed=seed + 1,
    )
    return path


def _spectrum(tmp_path, calibration_ions=None, pulse=0.0, extra=None, seed=0):
    """Summed spectrum of :func:`_run`."""
    path = _run(tmp_path, calibration_ions, pulse, extra, seed)
    events = np.fromfile(path, dtype="<u4").reshape(-1, 5)  # GRD: 5 × uint32 per event
    n_channels = int(mass_to_tof(200.0, SF, K0))
    return np.bincount(events[:, 4], minlength=n_channels)[:n_channels]


def _true_power(mass, pulse):
    mass = np.asarray(mass, dtype="float64")
    return mass / (2.0 * np.sqrt(mass) * peak_fwhm_channels(mass, SF, K0, RESOLUTION, pulse) / SF)


@pytest.mark.parametrize("pulse", [0.0, 30.0])
def test_heavy_calibration_peaks_give_the_width_at_the_heavy_fragments(tmp_path, pulse):
    spectrum = _spectrum(tmp_path, ALL_IONS, pulse)
    width = measure_peak_width(spectrum, SF, K0, fragments=FRAGMENTS)
    # the mass calibration's ions: up to one beyond CeO2- (172 u)
    assert width.ions[-1] == "C15-" and width.measured_mass_range[1] == ion_mass("C15-")
    masses = [ion_mass(f) for f in FRAGMENTS]
    assert not width.extrapolated(masses).any()
    # with a pulse in quadrature the true width is a hyperbola in t: the line
    # FWHM_t = a + b(t - k0) is a few % off at the ends, and H- (pulse-dominated) off it
    np.testing.assert_allclose(
        width.resolving_power(masses), _true_power(masses, pulse), rtol=0.02 if pulse == 0 else 0.04
    )
    assert dict(width.excluded) == ({} if pulse == 0 else {"H-": "rejected"})


def test_reconstruction_records_the_heavy_peaks_and_the_range(tmp_path):
    path = _run(tmp_path, ALL_IONS, pulse=30.0)
    store = tmp_path / "volume.zarr"
    options = ReconstructOptions(fragments=tuple(FRAGMENTS), recalibrate=False)
    reconstruct_into(store, path, options, workers=1)
    attrs = open_volume(store).attrs
    width = json.loads(attrs["peak_width_json"])
    assert width["ions"][-1] == "C15-" and width["mass_range_u"][1] == ion_mass("C15-")
    assert "26 calibration peaks, C- to C15- (12.0–180.0 u)" in attrs["window_source"]
    windows = {e["fragment"]: e for e in json.loads(attrs["mass_windows_json"])}
    assert not any(e["resolving_power_extrapolated"] for e in windows.values())
    ceo2 = ion_mass("CeO2-")
    assert windows["CeO2-"]["resolving_power"] == pytest.approx(_true_power(ceo2, 30.0), rel=0.04)


def test_light_calibration_peaks_alone_extrapolate_and_say_so(tmp_path):
    pulse = 30.0
    spectrum = _spectrum(tmp_path, None, pulse)  # the writer's default: light ions only
    width = measure_peak_width(spectrum, SF, K0, fragments=FRAGMENTS)
    excluded = dict(width.excluded)
    assert excluded["C3-"] == excluded["C15-"] == "not found"
    assert width.measured_mass_range[1] == pytest.approx(ion_mass("Cl-"))
    ceo2 = ion_mass("CeO2-")
    assert width.extrapolated(ceo2)
    # the light peaks' line overestimates R at CeO2- by a quarter: what heavy ions remove
    assert width.resolving_power(ceo2) > 1.15 * _true_power(ceo2, pulse)
    report = window_record(
        FRAGMENTS,
        [m - 0.05 for m in (41.0, 89.9, 171.9)],
        [m + 0.05 for m in (41.0, 89.9, 171.9)],
        width,
        None,
    )
    assert [e["resolving_power_extrapolated"] for e in report] == [True, True, True]
    record = json.loads(json.dumps(width.to_record()))
    assert record["mass_range_u"][1] == pytest.approx(ion_mass("Cl-"))
    assert record["excluded"]["C15-"] == "not found"
    assert PeakWidth.from_record(record) == width


def test_a_calibration_peak_widened_by_a_neighbour_is_rejected(tmp_path):
    # C12H- (145.008 u) 0.044 u from PF6- (144.964 u): 1.5 FWHM at R = 5000
    spectrum = _spectrum(tmp_path, ALL_IONS, extra=["C12H-"])
    width = measure_peak_width(spectrum, SF, K0, fragments=FRAGMENTS)
    assert dict(width.excluded) == {"PF6-": "rejected"}
    assert "PF6-" not in width.ions and "C15-" in width.ions
    masses = [ion_mass(f) for f in FRAGMENTS]
    np.testing.assert_allclose(width.resolving_power(masses), RESOLUTION, rtol=0.02)


def test_a_peak_needs_the_significance_asked_for():
    rng = np.random.default_rng(1)
    n_channels = int(mass_to_tof(40.0, SF, K0))
    tofs = []
    for ion in CALIBRATION_IONS["negative"]:
        centre = mass_to_tof(ion_mass(ion), SF, K0)
        tofs.append(np.rint(rng.normal(centre, (centre - K0) / 1e4 / 2.3548, 20000)).astype(int))
    # C3- (36 u): 1000 counts over ±3σ = 110 channels of 100 counts (~10σ)
    centre = mass_to_tof(ion_mass("C3-"), SF, K0)
    tofs.append(np.rint(rng.normal(centre, (centre - K0) / 1e4 / 2.3548, 1000)).astype(int))
    spectrum = np.bincount(np.concatenate(tofs), minlength=n_channels)[:n_channels]
    spectrum += rng.poisson(100.0, n_channels)
    width = measure_peak_width(spectrum, SF, K0, fragments=["LiF2-"])
    assert "C3-" in width.ions and width.measured_mass_range[1] == ion_mass("C3-")
    assert dict(width.excluded) == {"C4-": "not found"}  # beyond the spectrum
    strict = measure_peak_width(spectrum, SF, K0, fragments=["LiF2-"], min_significance=20.0)
    assert dict(strict.excluded)["C3-"] == "not significant"
    assert strict.measured_mass_range[1] == pytest.approx(ion_mass("Cl-"))
    assert strict.extrapolated(ion_mass("C3-")) and not width.extrapolated(ion_mass("C3-"))


def test_a_given_resolving_power_is_not_flagged():
    width = peak_width_from_resolution(5000.0, SF, K0)
    assert width.measured_mass_range is None and not width.extrapolated(171.9)
    report = window_record(["CeO2-"], [171.85], [171.95], width, None)
    assert report[0]["resolving_power_extrapolated"] is None
    assert width.to_record()["mass_range_u"] is None
