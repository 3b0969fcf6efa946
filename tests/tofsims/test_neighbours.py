"""Synthetic isobaric neighbours and isotopologues at their true masses (issue 17, part 6)."""

from __future__ import annotations

import numpy as np
import pytest

from tofsims.fragments import (
    NATURAL_6LI_7LI,
    NATURAL_10B_11B,
    boron_isotope_check,
    interferences,
    ion_mass,
)
from tofsims.synthetic import layered_sample
from tofsims.synthetic_raw import write_grd
from tofsims.synthetic_samples import FRAGMENTS, NEIGHBOURS

SMALL = {"ny": 8, "nx": 8, "n_scans": 150}


def test_neighbours_are_the_listed_interferences_with_their_targets():
    volume, _ = layered_sample("modified", neighbours=True, seed=2, **SMALL)
    targets = dict(zip(volume.fragment.values.tolist(), volume.target.values.tolist(), strict=True))
    for species, (target, _, _) in NEIGHBOURS.items():
        assert targets[species] == target
        listed = [row["interferent"] for row in interferences(target)]
        assert species in listed, f"{species} is not a listed interferent of {target}"
    assert targets["10BO2-"] == "10BO2-" and targets["BO2-"] == "BO2-"
    np.testing.assert_allclose(volume.species_mass, [ion_mass(f) for f in volume.fragment.values])
    # C2F- sits 0.0007 u below 11BO2-
    assert ion_mass("BO2-") - float(volume.species_mass.sel(fragment="C2F-")) == pytest.approx(
        0.00073, abs=2e-5
    )


def test_species_levels_and_isotope_ratios_follow_the_truth():
    volume, truth = layered_sample("modified", neighbours=True, seed=3, **SMALL)
    expected = truth.expected
    np.testing.assert_allclose(
        expected.sel(fragment="10BO2-"), NATURAL_10B_11B * expected.sel(fragment="BO2-")
    )
    np.testing.assert_allclose(
        expected.sel(fragment="6LiF2-"), NATURAL_6LI_7LI * expected.sel(fragment="LiF2-")
    )
    total = volume.counts.sum(("scan", "y", "x")).astype(float)
    # interferents a few % to tens of % of their target overall (m/z 42: CNO-/C2H2O- of the
    # organic CEI outweigh 10BO2- there, by design); C2F- is CEI-shaped (none in the bulk)
    for species, (target, _, _) in NEIGHBOURS.items():
        ratio = float(total.sel(fragment=species) / total.sel(fragment=target))
        assert 0.005 < ratio < (10.0 if target == "10BO2-" else 1.0), (species, ratio)
    c2f = expected.sel(fragment="C2F-")
    assert float(c2f[-1]) < 1e-3 * float(c2f.max())  # gone in the bulk
    assert float(expected.sel(fragment="AlO-")[-1]) == pytest.approx(
        float(expected.sel(fragment="AlO-").max()), rel=0.05
    )  # bulk-shaped
    # default samples keep the six fragments and no species coordinates
    plain, _ = layered_sample("modified", seed=3, **SMALL)
    assert list(plain.fragment.values) == list(FRAGMENTS)
    assert "target" not in plain.coords


def test_boron_free_sample_puts_only_neighbours_at_42_and_43():
    volume, truth = layered_sample("pristine", neighbours=True, boron_free=True, seed=1, **SMALL)
    counts = volume.counts.sum(("scan", "y", "x"))
    assert int(counts.sel(fragment="BO2-")) == 0 and int(counts.sel(fragment="10BO2-")) == 0
    assert float(truth.expected.sel(fragment="BO2-").max()) == 0.0
    at_43 = volume.counts.groupby("target").sum().sum(("scan", "y", "x"))
    assert int(at_43.sel(target="BO2-")) == int(
        counts.sel(fragment=["C2F-", "CHNO-", "C2H3O-", "AlO-"]).sum()
    )
    assert int(at_43.sel(target="BO2-")) > 0
    # with m/z 42 clean (true 10BO2- only) the isotope check flags m/z 43 ...
    clean = boron_isotope_check(0, int(at_43.sel(target="BO2-")))
    assert bool(clean.interfered)
    # ... but the CEI organics at m/z 42 (CNO-, C2H2O-) can mimic natural boron, and the
    # C2F- estimate I(43) - I(42)/0.248 is then far below the true C2F- counts
    seen = boron_isotope_check(int(at_43.sel(target="10BO2-")), int(at_43.sel(target="BO2-")))
    assert float(seen.c2f_estimate) < 0.5 * int(counts.sel(fragment="C2F-"))
    with pytest.raises(ValueError, match="boron_free and boron_doped"):
        layered_sample("modified", boron_free=True, **SMALL)


def test_grd_places_each_species_at_its_true_mass(tmp_path):
    volume, _ = layered_sample("modified", neighbours=True, seed=5, ny=6, nx=6, n_scans=40)
    counts = volume.counts
    # R = 20000: peaks ±3σ = ±0.0027 u at 43 u; C2F- (−0.0007 u) merges with 11BO2-,
    # CHNO- (+0.0067 u) and the rest stay outside the first window
    truth = write_grd(
        counts,
        tmp_path / "n.grd",
        resolution=20000.0,
        background_per_pixel=0.0,
        windows=[(42.9960, 43.0030), (43.0030, 43.0100), (42.9700, 42.9850)],
    )
    per_species = counts.sum(("scan", "y", "x"))
    found = truth.window_counts.sum(("scan", "y", "x")).values
    assert found[0] == int(per_species.sel(fragment=["BO2-", "C2F-"]).sum())
    assert found[1] == int(per_species.sel(fragment="CHNO-"))
    assert found[2] == int(per_species.sel(fragment="AlO-"))
    assert int(per_species.sel(fragment="C2F-")) > 0
