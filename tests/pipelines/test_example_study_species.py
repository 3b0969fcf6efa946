"""The demo's TOF-SIMS files hold what the truth says at m/z 42 and 43 (issue 17).

The pristine cathode is boron-free: its m/z 43 window holds C2F− of the fluorinated CEI,
organics and AlO−, no ¹¹BO2−. The modified one is B-doped with ¹⁰BO2− at the natural ratio.
Checked on the spectrum of the written GRD (the demo's size and seed), against the truth the
generator returned (``truth.json``).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import norm

import tofsims
from pipelines.example_study import (
    RESOLVING_POWER,
    TOFSIMS_SAMPLES,
    StudySize,
    tofsims_sample,
    write_example_study,
)
from tofsims.fragments import NATURAL_10B_11B, ion_mass
from tofsims.masscal import mass_to_tof, tof_to_mass

#: write_grd's flat background: counts per pixel and scan, uniform in TOF over this range (u).
BACKGROUND_PER_PIXEL = 0.2
BACKGROUND_RANGE_U = (0.5, 200.0)
WINDOW_43 = (42.95, 43.05)
WINDOW_42 = (41.95, 42.05)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """The demo's study (default size and seed) and its truth."""
    folder = tmp_path_factory.mktemp("study")
    write_example_study(folder)
    return folder, json.loads((folder / "truth.json").read_text())


def _spectrum(folder, sample):
    """Masses (u, with the file's own calibration) and scans of every event of a GRD."""
    events = tofsims.open(folder / "raw" / f"{sample}-sims" / f"{sample}.itm.grd")
    masses = tof_to_mass(events["tof"].values.astype("float64"), events.sf, events.k0)
    return masses, events["scan"].values, events.attrs


def _inside(masses, window):
    return (masses > window[0]) & (masses < window[1])


def _background(attrs, window):
    """Expected flat-background counts of the whole file inside a mass window."""
    sf, k0 = attrs["sf"], attrs["k0"]
    inside = np.diff(mass_to_tof(np.asarray(window), sf, k0))[0]
    spread = np.diff(mass_to_tof(np.asarray(BACKGROUND_RANGE_U), sf, k0))[0]
    voxels = attrs["raster_y"] * attrs["raster_x"] * attrs["total_scans"]
    return BACKGROUND_PER_PIXEL * voxels * inside / spread


def _core_mean(species, low, high, *, as_boron=False):
    """Mean mass of the events of ``species`` inside ``[low, high]`` (Gaussian peaks, R)."""
    weighted = total = 0.0
    for name, entry in species.items():
        if entry["target"] != "BO2-":
            continue
        centre = ion_mass("BO2-") if (as_boron and name == "C2F-") else entry["mass_u"]
        sigma = centre / RESOLVING_POWER / (2 * np.sqrt(2 * np.log(2)))
        a, b = (low - centre) / sigma, (high - centre) / sigma
        share = norm.cdf(b) - norm.cdf(a)
        mean = centre + sigma * (norm.pdf(a) - norm.pdf(b)) / share
        weighted += entry["counts"] * share * mean
        total += entry["counts"] * share
    return weighted / total


def test_pristine_grd_holds_c2f_and_no_boron_at_m43(study):
    folder, truth = study
    species = truth["pristine-sims"]["species"]
    assert truth["pristine-sims"]["boron"] == "none"
    assert species["BO2-"]["counts"] == 0 and species["10BO2-"]["counts"] == 0
    assert species["C2F-"]["counts"] > 1000
    masses, _, attrs = _spectrum(folder, "pristine")
    # every event at m/z 43 is one of the written species (or the flat background)
    planted = sum(e["counts"] for e in species.values() if e["target"] == "BO2-")
    extra = _inside(masses, WINDOW_43).sum() - planted
    background = _background(attrs, WINDOW_43)
    assert abs(extra - background) < 5 * np.sqrt(background) + 1
    # the peak's core (±FWHM/2 around C2F−) is centred where C2F− and the organics put it,
    # not where ¹¹BO2− (0.0007 u heavier) in place of C2F− would
    fwhm = ion_mass("C2F-") / RESOLVING_POWER
    low, high = ion_mass("C2F-") - fwhm / 2, ion_mass("C2F-") + fwhm / 2
    core = masses[(masses > low) & (masses < high)]
    measured, error = core.mean(), core.std() / np.sqrt(core.size)
    assert abs(measured - _core_mean(species, low, high)) < 4 * error
    assert abs(measured - _core_mean(species, low, high, as_boron=True)) > 8 * error


def test_modified_grd_holds_10bo2_at_the_natural_ratio(study):
    folder, truth = study
    species = truth["modified-sims"]["species"]
    assert truth["modified-sims"]["boron"] == "doped bulk"
    boron_10, boron_11 = species["10BO2-"]["counts"], species["BO2-"]["counts"]
    ratio = boron_10 / boron_11
    assert ratio == pytest.approx(
        NATURAL_10B_11B, abs=3 * ratio * np.sqrt(1 / boron_10 + 1 / boron_11)
    )
    # in the B-doped bulk (scans below CEI and coating) the file's m/z 42 / 43 ratio is the
    # natural one, diluted only by the neighbours the generator put there (AlO−, organics)
    seed = TOFSIMS_SAMPLES.index("modified")  # the study's seed (0) + the sample's index
    volume, _ = tofsims_sample("modified", seed=seed, pixels=StudySize().pixels)
    deep = volume.scan >= 100  # ≥ 10 nm: CEI (≈ 4 nm) and coating (3 nm) are sputtered
    planted = volume["counts"].sel(scan=deep).sum(("scan", "y", "x"))
    expected = float(
        planted.where(planted.target == "10BO2-", 0).sum()
        / planted.where(planted.target == "BO2-", 0).sum()
    )
    assert expected == pytest.approx(NATURAL_10B_11B, rel=0.05)
    masses, scans, _ = _spectrum(folder, "modified")
    bulk = scans >= 100
    i42 = (_inside(masses, WINDOW_42) & bulk).sum()
    i43 = (_inside(masses, WINDOW_43) & bulk).sum()
    assert i42 / i43 == pytest.approx(expected, abs=3 * expected * np.sqrt(1 / i42 + 1 / i43))
