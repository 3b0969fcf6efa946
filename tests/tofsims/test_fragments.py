"""Fragment library: exact masses against methods.md §B1, isotopologues, checks."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import xarray as xr

from tofsims.errors import FragmentError
from tofsims.fragments import (
    BATTERY_FRAGMENTS,
    CALIBRATION_IONS,
    NATURAL_6LI_7LI,
    NATURAL_10B_11B,
    boron_isotope_check,
    interferences,
    ion_mass,
    iontof_label,
    isotopologues,
    lithium_saturation_check,
    parse_formula,
    required_resolving_power,
)

# methods.md §B1 (copied, 5 decimals)
REFERENCE_MASSES = {
    "C2HO-": 41.00329,
    "10BO2-": 42.00331,
    "BO2-": 42.99968,
    "11BO2-": 42.99968,
    "6LiF2-": 44.01248,
    "LiF2-": 45.01336,
    "7LiF2-": 45.01336,
    "PO2-": 62.96414,
    "7LiCO3-": 67.00130,
    "PO3-": 78.95905,
    "POF2-": 84.96603,
    "NiO2-": 89.92572,
    "58NiO2-": 89.92572,
    "CeO2-": 171.89582,
    "140CeO2-": 171.89582,
    "142CeO2-": 173.89963,
    "H-": 1.00837,
    "C-": 12.00055,
    "CH-": 13.00837,
    "O-": 15.99546,
    "OH-": 17.00329,
    "F-": 18.99895,
    "C2-": 24.00055,
    "C2H-": 25.00837,
    "CN-": 26.00362,
    "7LiF-": 26.01496,
    "Cl-": 34.96940,
    "58Ni-": 57.93589,
    "H+": 1.00728,
    "6Li+": 6.01457,
    "7Li+": 7.01545,
    "C+": 11.99945,
    "CH+": 13.00728,
    "CH2+": 14.01510,
    "CH3+": 15.02293,
    "Na+": 22.98922,
    "C2H3+": 27.02293,
    "C3H5+": 41.03858,
    "Cs+": 132.90490,
    "58Ni+": 57.93479,
    # "other useful anions"
    "58NiO-": 73.93081,
    "60NiO2-": 91.92116,
    "CoO2-": 90.92357,
    "MnO2-": 86.92842,
    "58NiF2-": 95.93270,
    "58NiF3-": 114.93110,
    "PO2F2-": 100.96095,
    "PF6-": 144.96473,
    "CO3-": 59.98529,
    "140CeO-": 155.90091,
    "140CeO3-": 187.89074,
    # §B2 interferents
    "C2F-": 42.99895,
    "CHNO-": 43.00636,
    "C2H3O-": 43.01894,
    "AlO-": 42.97700,
    "CNO-": 41.99854,
    "C2H2O-": 42.01111,
    "CHN2-": 41.01452,
    "C3H5-": 41.03967,
    "CHO2-": 44.99820,
    "C2H5O-": 45.03459,
    "CH2NO-": 44.01419,
    "CO2-": 43.99038,
    "Br-": 78.91889,
    "C3H6O3-": 90.03224,
    "C12H12O-": 172.08936,
}


@pytest.mark.parametrize(("formula", "expected"), sorted(REFERENCE_MASSES.items()))
def test_ion_mass_matches_reference_table(formula, expected):
    assert round(ion_mass(formula), 5) == pytest.approx(expected, abs=1.5e-5)


def test_every_library_ion_has_a_mass():
    for formula in [
        *BATTERY_FRAGMENTS,
        *CALIBRATION_IONS["negative"],
        *CALIBRATION_IONS["positive"],
    ]:
        assert 1.0 < ion_mass(formula) < 200.0


def test_nickel_default_is_58_not_60():
    # pySPM's table lacks 58Ni and returns the 60Ni value 91.921
    assert ion_mass("NiO2-") == pytest.approx(89.92572, abs=1e-5)
    assert ion_mass("NiO2-") != pytest.approx(91.92116, abs=1e-3)


def test_parse_formula_isotopes_and_counts():
    assert parse_formula("6LiF2-") == ((("Li", 6, 1), ("F", None, 2)), -1)
    assert parse_formula("C2HO-") == ((("C", None, 2), ("H", None, 1), ("O", None, 1)), -1)
    assert parse_formula("C^13CH-")[0][1] == ("C", 13, 1)
    assert parse_formula("H2O")[1] == 0


@pytest.mark.parametrize("bad", ["", "-", "Xx2-", "5LiF-", "C2H0-", "LiF2$", "C2H-2"])
def test_bad_formulas_raise(bad):
    with pytest.raises(FragmentError):
        ion_mass(bad)


def test_iontof_labels():
    assert iontof_label("6LiF2-") == "^6LiF_2-"
    assert iontof_label("C2HO-") == "C_2HO-"
    assert iontof_label("PO3-") == "PO_3-"


def test_isotopologues_of_lif2():
    isos = isotopologues("LiF2-")
    by_formula = {i["formula"]: i for i in isos}
    assert set(by_formula) == {"6LiF2-", "LiF2-"}
    assert by_formula["6LiF2-"]["mass"] == pytest.approx(44.01248, abs=1e-5)
    assert by_formula["6LiF2-"]["abundance"] / by_formula["LiF2-"]["abundance"] == pytest.approx(
        NATURAL_6LI_7LI
    )
    assert sum(i["abundance"] for i in isos) == pytest.approx(1.0)


def test_isotopologues_of_ceo2_and_cl2():
    isos = {i["formula"]: i for i in isotopologues("CeO2-", min_abundance=0.01)}
    assert isos["CeO2-"]["mass"] == pytest.approx(171.89582, abs=1e-5)
    assert isos["142CeO2-"]["mass"] == pytest.approx(173.89963, abs=1e-5)
    cl2 = {i["formula"]: i["abundance"] for i in isotopologues("Cl2-")}
    assert cl2["Cl^37Cl-"] == pytest.approx(2 * 0.7576 * 0.2424)
    # a fixed isotope stays fixed
    assert [i["formula"] for i in isotopologues("10BO2-", 0.01)] == ["10BO2-"]


def test_interference_flags():
    bo2 = {i["interferent"]: i for i in interferences("BO2-", resolution=10000)}
    assert bo2["C2F-"]["required_resolving_power"] == pytest.approx(59000, rel=0.02)
    assert bo2["C2F-"]["resolved"] is False
    assert bo2["AlO-"]["resolved"] is True
    assert required_resolving_power("PO3-", "Br-") == pytest.approx(2000, rel=0.02)
    assert interferences("11BO2-")[0]["resolved"] is None
    assert interferences("H-") == []


def test_natural_ratios():
    assert NATURAL_10B_11B == pytest.approx(0.248, abs=5e-4)
    assert NATURAL_6LI_7LI == pytest.approx(0.0821, abs=1e-4)


def test_boron_check_flags_c2f_and_error_bars():
    i10 = xr.DataArray([248.0, 248.0, 0.0, 5.0], dims="scan")
    i11 = xr.DataArray([1000.0, 2000.0, 0.0, 0.0], dims="scan")
    out = boron_isotope_check(i10, i11)
    assert out["ratio"][0] == pytest.approx(0.248)
    expected_error = 0.248 * np.sqrt(1 / 248 + 1 / 1000)
    assert out["ratio_error"][0] == pytest.approx(expected_error)
    assert not bool(out["interfered"][0])
    assert bool(out["interfered"][1])  # ratio 0.124: m/z 43 carries ~1000 extra counts
    assert out["c2f_estimate"][1] == pytest.approx(2000 - 248 / NATURAL_10B_11B)
    assert np.isnan(out["ratio"][2]) and np.isnan(out["ratio"][3])


def test_lithium_check_is_lazy_and_flags_saturation():
    i6 = xr.DataArray(da.from_array(np.array([82.0, 300.0]), chunks=1), dims="px")
    i7 = xr.DataArray(da.from_array(np.array([1000.0, 1000.0]), chunks=1), dims="px")
    out = lithium_saturation_check(i6, i7)
    assert isinstance(out["ratio"].data, da.Array)
    out = out.compute()
    assert out["saturated"].values.tolist() == [False, True]
    assert out["lif2_estimate"][1] == pytest.approx(300 / NATURAL_6LI_7LI)
    assert out["lif2_estimate"][1] == pytest.approx(12.18 * 300, rel=1e-3)
