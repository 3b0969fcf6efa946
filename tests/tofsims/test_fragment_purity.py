"""Fragment purity (#17): windows from the peak width, peak fits, isotope evidence.

Ground truth: GRD runs written by :func:`tofsims.synthetic_raw.write_grd`, which places every
fragment of ``counts`` — interferents included — at its true mass, with Gaussian peaks of a
known resolving power.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from tofsims.fragment_evidence import window_counts_of_blocks
from tofsims.fragments import NATURAL_10B_11B, ion_mass
from tofsims.io import grd
from tofsims.io.grd_records import open_records
from tofsims.io.volume_store import open_volume, write_volume
from tofsims.masscal import mass_to_tof, window_channels
from tofsims.peak_fit import (
    block_of_scan,
    fit_window_fractions,
    fitted_counts,
    nnls_small,
    spectrum_channels,
)
from tofsims.peak_windows import PeakWidth, measure_peak_width, window_interferences
from tofsims.spectrum_sampling import sample_spectrum
from tofsims.synthetic_raw import write_grd
from tofsims.workflows.fragment_purity import (
    block_spectra,
    purity_analysis,
    purity_summary,
    spectrum_isotope_summary,
    with_isotopologues,
)
from tofsims.workflows.options import ReconstructOptions
from tofsims.workflows.reconstruction import reconstruct, reconstruct_into

SHAPE = (37, 6, 6)  # 37 scans: several depth blocks of the one-pass engine


def _grd(tmp_path, rates: dict[str, float], resolution: float, seed: int = 0):
    """A GRD run of Poisson counts (mean per voxel) of the given species; its truth."""
    rng = np.random.default_rng(seed)
    names = list(rates)
    means = np.array([rates[n] for n in names])[:, None, None, None]
    counts = rng.poisson(means * np.ones((1, *SHAPE))).astype(np.int64)
    truth = xr.DataArray(counts, dims=("fragment", "scan", "y", "x"), coords={"fragment": names})
    path = tmp_path / "run.grd"
    write_grd(truth, path, resolution=resolution, calibration_per_pixel=3.0,
              seconds_per_scan=1.0, seed=seed + 1)  # fmt: skip
    return path, truth


def _reconstructed(tmp_path, path, fragments):
    store = tmp_path / "volume.zarr"
    options = ReconstructOptions(fragments=tuple(fragments), recalibrate=False)
    reconstruct_into(store, path, options, workers=1)
    volume = open_volume(store)
    fitted, analysis = purity_analysis(volume)
    analysis = analysis.compute()
    summary = purity_summary(volume, analysis)
    return volume, fitted.compute(), summary


def _total(volume, name):
    return float(volume["counts"].sel(fragment=name).sum())


def test_peak_width_measured_on_calibration_peaks(tmp_path):
    path, _ = _grd(tmp_path, {"NiO2-": 1.0}, resolution=5000.0)
    records = open_records(path)
    spectrum = sample_spectrum(records, records.n_records, 1_100_000)[0].sum(axis=0)
    width = measure_peak_width(spectrum, records.properties.sf, records.properties.k0)
    powers = width.resolving_power([ion_mass("C2HO-"), ion_mass("NiO2-")])
    np.testing.assert_allclose(powers, 5000.0, rtol=0.03)
    assert PeakWidth.from_record(json.dumps(width.to_record())) == width
    # windows ±1.5 FWHM: 1.5·43/5000 u at m/z 43, far inside the old ±0.05 u
    np.testing.assert_allclose(width.half_width_u(43.0), 1.5 * 43.0 / 5000.0, rtol=0.03)


def test_window_check_names_interferents_and_needed_resolving_power():
    mass = ion_mass("BO2-")
    low, high = mass - 0.05, mass + 0.05
    at_5000 = window_interferences(["BO2-"], [low], [high], [5000.0])[0]
    found = {i["interferent"]: i for i in at_5000["interferents_in_window"]}
    assert set(found) == {"C2F-", "CHNO-", "C2H3O-", "AlO-"}
    assert found["C2F-"]["required_resolving_power"] == pytest.approx(58787, rel=1e-3)
    assert not found["C2F-"]["resolved"] and found["C2H3O-"]["resolved"]
    at_80000 = window_interferences(["BO2-"], [low], [high], [80000.0])[0]
    assert all(i["resolved"] for i in at_80000["interferents_in_window"])


def test_isotopologues_added_beside_their_fragments():
    assert with_isotopologues(["C2HO-", "BO2-", "LiF2-"]) == (
        "C2HO-", "BO2-", "10BO2-", "LiF2-", "6LiF2-",
    )  # fmt: skip
    assert with_isotopologues(["6LiF2-", "LiF2-"]) == ("6LiF2-", "LiF2-")


def test_nnls_small_is_non_negative_least_squares():
    rng = np.random.default_rng(3)
    design = rng.random((40, 4))
    target = design @ np.array([2.0, 0.0, 1.0, 0.5]) + rng.normal(0, 0.01, 40)
    target[:5] -= 3.0  # pushes an unconstrained solution negative somewhere
    solution = nnls_small(design, target)
    assert (solution >= 0).all()
    best = np.sum((design @ solution - target) ** 2)
    for _ in range(200):  # no non-negative point nearby does better
        trial = np.clip(solution + rng.normal(0, 0.05, 4), 0, None)
        assert np.sum((design @ trial - target) ** 2) >= best - 1e-9


def test_boron_free_bo2_flagged_and_fitted_to_zero_at_high_resolving_power(tmp_path):
    # pristine boron-free cathode: m/z 43 holds organics, C2F- and AlO- only
    rates = {"C2H3O-": 0.6, "C2F-": 0.25, "CHNO-": 0.05, "AlO-": 0.05, "NiO2-": 1.0}
    path, _ = _grd(tmp_path, rates, resolution=80000.0)
    volume, fitted, (values, _, warnings) = _reconstructed(tmp_path, path, ["BO2-", "NiO2-"])
    window = _total(volume, "BO2-")
    assert window > 150  # the window holds part of C2F- (0.9 FWHM away at R = 80 000)
    assert abs(_total(fitted, "BO2-")) < 2 * np.sqrt(window)
    entry = values["mass_windows"]["BO2-"]
    assert "C2F-" in entry["fitted_species"] and not entry["unresolved"]
    assert entry["purity"] < 0.05
    boron = values["isotope_evidence"]["boron"]
    assert boron["consistent_with_boron"] is False
    assert any("inconsistent with boron" in w for w in warnings)
    assert values["resolving_power"]["at_fragments"]["BO2-"] == pytest.approx(80000, rel=0.05)


def test_bo2_with_c2f_unresolved_says_so(tmp_path):
    rates = {"C2F-": 0.4, "C2H3O-": 0.8, "NiO2-": 1.0}
    path, truth = _grd(tmp_path, rates, resolution=3000.0)
    volume, fitted, (values, reasons, _) = _reconstructed(tmp_path, path, ["BO2-", "NiO2-"])
    entry = values["mass_windows"]["BO2-"]
    assert "C2F-" in entry["unresolved"] and "C2H3O-" in entry["fitted_species"]
    assert entry["purity"] is None and "not resolved" in reasons["mass_windows.BO2-.purity"]
    # C2H3O- is resolved at 3000 (needs 2234) and removed; C2F- stays, the isotopes flag it
    planted_c2f = float(truth.sel(fragment="C2F-").sum())
    assert _total(volume, "BO2-") > 1.2 * planted_c2f
    assert _total(fitted, "BO2-") == pytest.approx(planted_c2f, rel=0.05)
    assert values["isotope_evidence"]["boron"]["consistent_with_boron"] is False


def test_lif2_and_c2ho_within_3_percent_with_neighbours(tmp_path):
    # formate and CHN2- at realistic levels beside the CEI markers, R = 5000 (resolves them)
    rates = {"LiF2-": 2.0, "CHO2-": 0.8, "C2H5O-": 0.3, "C2HO-": 1.5, "CHN2-": 0.6,
             "C3H5-": 0.4, "NiO2-": 1.0}  # fmt: skip
    path, truth = _grd(tmp_path, rates, resolution=5000.0)
    volume, fitted, (values, _, _) = _reconstructed(tmp_path, path, ["C2HO-", "LiF2-", "NiO2-"])
    assert volume.sizes["block"] > 1  # the fits are per depth block
    for name in ("LiF2-", "C2HO-"):
        true_total = float(truth.sel(fragment=name).sum())
        assert _total(volume, name) > 1.05 * true_total  # the window alone is not clean
        assert _total(fitted, name) == pytest.approx(true_total, rel=0.03)
        assert values["mass_windows"][name]["purity"] < 0.95
    # per depth: the fitted profile follows the planted one
    profile = fitted["counts"].sel(fragment="LiF2-").sum(("y", "x")).values
    planted = truth.sel(fragment="LiF2-").sum(("y", "x")).values
    assert abs(profile.sum() - planted.sum()) / planted.sum() < 0.03
    assert fitted["counts_window"].dtype == np.uint32


def test_boron_ratio_of_doped_sample_within_two_sigma(tmp_path):
    rng = np.random.default_rng(7)
    boron = rng.poisson(3.0 * np.ones(SHAPE))
    b10 = rng.binomial(boron, 0.199)
    species = {
        "BO2-": boron - b10,
        "10BO2-": b10,
        "C2H3O-": rng.poisson(0.8 * np.ones(SHAPE)),
        "NiO2-": rng.poisson(np.ones(SHAPE)),
    }
    counts = xr.DataArray(np.stack(list(species.values())).astype(np.int64),
                          dims=("fragment", "scan", "y", "x"),
                          coords={"fragment": list(species)})  # fmt: skip
    path = tmp_path / "doped.grd"
    write_grd(counts, path, resolution=5000.0, calibration_per_pixel=3.0, seconds_per_scan=1.0)
    _, _, (values, _, warnings) = _reconstructed(tmp_path, path, ["BO2-", "NiO2-"])
    evidence = values["isotope_evidence"]["boron"]
    assert evidence["counts"] == "fitted"
    assert abs(evidence["ratio"] - NATURAL_10B_11B) < 2 * evidence["ratio_error"]
    assert evidence["consistent_with_boron"] is True
    assert len(evidence["per_block"]) > 1
    assert not any("boron" in w for w in warnings)


def test_fitted_counts_scale_each_depth_block():
    counts = xr.DataArray(
        np.full((1, 4, 2, 2), 10, dtype=np.uint32),
        dims=("fragment", "scan", "y", "x"),
        coords={"fragment": ["BO2-"]},
    )
    volume = xr.Dataset({"counts": counts}, coords={"block_first_scan": ("block", [0, 3])})
    purity = xr.Dataset(
        {"purity": (("fragment", "block"), [[0.5, 0.25]]), "purity_run": ("fragment", [0.4])},
        coords={"fragment": ["BO2-"]},
    )
    assert block_of_scan(volume).tolist() == [0, 0, 0, 1]
    out = fitted_counts(volume, purity).sum(("y", "x")).values[0]
    np.testing.assert_allclose(out, [20, 20, 20, 10])


def test_window_fractions_separate_resolved_neighbours():
    width = PeakWidth(0.0, 1.0 / 10000.0, 72000.0, -2100.0)  # R = 5000
    mass = ion_mass("C2HO-")
    half = float(width.half_width_u(mass))
    channels = np.arange(455_000, 465_000)
    window = (channels >= mass_to_tof(mass - half, 72000.0, -2100.0)) & (
        channels <= mass_to_tof(mass + half, 72000.0, -2100.0)
    )
    parts = {}
    for name, total in (("C2HO-", 4000.0), ("CHN2-", 2000.0)):
        centre = mass_to_tof(ion_mass(name), 72000.0, -2100.0)
        s = width.fwhm_channels_at(ion_mass(name)) / 2.3548
        parts[name] = (
            total * np.exp(-0.5 * ((channels - centre) / s) ** 2) / (s * np.sqrt(2 * np.pi))
        )
    spectrum = parts["C2HO-"] + parts["CHN2-"]
    _, run, species = fit_window_fractions(
        spectrum[None, :], int(channels[0]), "C2HO-", mass - half, mass + half, width
    )
    assert species == ["C2HO-", "CHN2-", "C3H5-", "background"]
    expected = parts["C2HO-"][window].sum() / spectrum[window].sum()
    assert expected < 0.9  # CHN2- reaches well into the window
    assert run[0] == pytest.approx(expected, rel=0.01)


def _doped_lithiated(tmp_path, seed: int = 3):
    """A B-doped, lithiated run at R = 5000 with C2H3O- beside BO2- and formate beside LiF2-."""
    rng = np.random.default_rng(seed)
    boron, lithium = rng.poisson(2.0 * np.ones(SHAPE)), rng.poisson(3.0 * np.ones(SHAPE))
    b10, li6 = rng.binomial(boron, 0.199), rng.binomial(lithium, 0.0759)
    species = {
        "BO2-": boron - b10,
        "10BO2-": b10,
        "LiF2-": lithium - li6,
        "6LiF2-": li6,
        "C2H3O-": rng.poisson(0.8 * np.ones(SHAPE)),
        "CHO2-": rng.poisson(0.5 * np.ones(SHAPE)),
        "NiO2-": rng.poisson(np.ones(SHAPE)),
    }
    counts = xr.DataArray(np.stack(list(species.values())).astype(np.int64),
                          dims=("fragment", "scan", "y", "x"),
                          coords={"fragment": list(species)})  # fmt: skip
    path = tmp_path / "doped.grd"
    write_grd(counts, path, resolution=5000.0, calibration_per_pixel=3.0, seconds_per_scan=1.0)
    return path


def test_block_spectra_give_the_volumes_window_counts(tmp_path):
    path = _doped_lithiated(tmp_path)
    volume, _, _ = _reconstructed(tmp_path, path, ["BO2-", "LiF2-", "NiO2-"])
    from_spectra = window_counts_of_blocks(volume).compute()
    blocks = xr.DataArray(block_of_scan(volume), dims="scan", name="block")
    from_volume = volume["counts"].sum(("y", "x")).groupby(blocks).sum().compute()
    assert volume.sizes["block"] > 1
    np.testing.assert_array_equal(from_spectra.values, from_volume.values)


def test_both_engines_give_the_same_fits_whatever_the_read_blocks(tmp_path):
    # the peak fits and the isotope evidence are per depth block: the dask engine, reading
    # blocks of 5 scans (two across a group boundary), stores the one-pass engine's blocks
    path = _doped_lithiated(tmp_path)
    fragments = ["BO2-", "LiF2-", "NiO2-"]
    one_pass, fitted, (values, _, warnings) = _reconstructed(tmp_path, path, fragments)
    events = grd.read(path, validate=False, block_events=8000)
    assert events.encoding["block_scans"][:5] == [0, 5, 10, 15, 20]
    options = ReconstructOptions(fragments=tuple(fragments), recalibrate=False)
    write_volume(reconstruct(events, options), tmp_path / "dask.zarr")
    lazy = open_volume(tmp_path / "dask.zarr")
    np.testing.assert_array_equal(lazy["spectrum_part"].values, one_pass["spectrum_part"].values)
    np.testing.assert_array_equal(lazy["block_first_scan"], one_pass["block_first_scan"])
    lazy_fitted, analysis = purity_analysis(lazy)
    lazy_values, _, lazy_warnings = purity_summary(lazy, analysis.compute())
    np.testing.assert_allclose(lazy_fitted["counts"], fitted["counts"], rtol=1e-9)
    assert lazy_warnings == warnings
    for name in ("boron", "lithium"):
        ours, theirs = lazy_values["isotope_evidence"][name], values["isotope_evidence"][name]
        assert ours["ratio"] == pytest.approx(theirs["ratio"], rel=1e-9)
        for a, b in zip(ours["per_block"], theirs["per_block"], strict=True):
            assert a["first_scan"] == b["first_scan"]
            assert a["ratio"] == pytest.approx(b["ratio"], rel=1e-9)
    for name in fragments:
        ours, theirs = lazy_values["mass_windows"][name], values["mass_windows"][name]
        assert ours["purity_per_block"] == pytest.approx(theirs["purity_per_block"], rel=1e-9)


def test_block_spectra_evidence_is_the_volumes(tmp_path):
    # what reconstruct prints (block spectra only, the volume not read) = cei's summary.json
    path = _doped_lithiated(tmp_path)
    volume, _, (values, _, warnings) = _reconstructed(tmp_path, path, ["BO2-", "LiF2-", "NiO2-"])
    evidence, reasons, found = spectrum_isotope_summary(block_spectra(volume))
    assert found == warnings and reasons == {}
    for name in ("boron", "lithium"):
        ours, cei = evidence[name], values["isotope_evidence"][name]
        assert ours["counts"] == cei["counts"] == "fitted"
        assert ours["ratio"] == pytest.approx(cei["ratio"], rel=1e-9)
        assert ours["window_ratio"] == pytest.approx(cei["window_ratio"], rel=1e-9)
        assert [b["first_scan"] for b in ours["per_block"]] == [
            b["first_scan"] for b in cei["per_block"]
        ]
        for a, b in zip(ours["per_block"], cei["per_block"], strict=True):
            assert a["ratio"] == pytest.approx(b["ratio"], rel=1e-9)
            assert a["ratio_error"] == pytest.approx(b["ratio_error"], rel=1e-9)
    boron, lithium = evidence["boron"], evidence["lithium"]
    assert abs(boron["ratio"] - NATURAL_10B_11B) < 2 * boron["ratio_error"]
    assert boron["consistent_with_boron"] is True and lithium["saturated"] is False


def test_block_spectra_without_isotope_pairs_say_why(tmp_path):
    rates = {"NiO2-": 1.0, "C2HO-": 1.0}
    path, _ = _grd(tmp_path, rates, resolution=5000.0)
    volume, _, _ = _reconstructed(tmp_path, path, ["C2HO-", "NiO2-"])
    evidence, reasons, found = spectrum_isotope_summary(block_spectra(volume))
    assert evidence == {"boron": None, "lithium": None} and found == []
    assert "not both in the volume" in reasons["isotope_evidence.boron"]


def test_spectrum_channels_follow_the_channel_coordinate():
    spectra = xr.DataArray(np.arange(20).reshape(2, 10), dims=("block", "tof_channel"))
    cut, first = spectrum_channels(spectra, 3, 7)
    assert first == 3 and cut.values[0].tolist() == [3, 4, 5, 6]
    numbered = spectra.assign_coords(tof_channel=np.arange(100, 110))
    cut, first = spectrum_channels(numbered.isel(tof_channel=slice(2, 8)), 101, 105)
    assert first == 102 and cut["tof_channel"].values.tolist() == [102, 103, 104]
    cut, first = spectrum_channels(numbered, 108, 130)  # as far as they reach
    assert first == 108 and cut.sizes["tof_channel"] == 2


def test_block_spectra_hold_only_the_channels_the_evidence_needs(tmp_path):
    path = _doped_lithiated(tmp_path)
    volume, _, _ = _reconstructed(tmp_path, path, ["BO2-", "LiF2-", "NiO2-"])
    spectra = block_spectra(open_volume(tmp_path / "volume.zarr", dask=False))
    assert not spectra["spectrum_part"].chunks  # read on indexing, no dask
    channels = spectra["tof_channel"].values
    assert 0 < channels.size < volume.sizes["tof_channel"] / 5
    for name in ("10BO2-", "BO2-", "6LiF2-", "LiF2-"):
        low, high = window_channels(volume["mass_low"].sel(fragment=name).values,
                                    volume["mass_high"].sel(fragment=name).values,
                                    volume.attrs["sf"], volume.attrs["k0"])  # fmt: skip
        assert channels[0] < low and high < channels[-1]
    assert list(spectra["fragment"].values) == ["BO2-", "10BO2-", "LiF2-", "6LiF2-"]
