"""Fragment library: isotope table, exact ion masses, isotopologues, interferences.

Formula notation (ours)
-----------------------
A formula is a sequence of element symbols, each optionally preceded by an isotope
mass number and followed by a count, ending with the charge sign:

* ``C2HO-``   = C₂HO⁻ (every element its most abundant isotope);
* ``6LiF2-``  = ⁶LiF₂⁻, ``LiF2-`` = ⁷LiF₂⁻ (most abundant Li isotope);
* ``10BO2-``  = ¹⁰BO₂⁻, ``BO2-`` = ¹¹BO₂⁻; ``NiO2-`` = ⁵⁸NiO₂⁻; ``140CeO2-``.

A mass number is recognised at the start of the formula or after ``^`` (``C^13CH-``);
elsewhere digits are counts of the preceding element. Masses are AME2020 atomic masses
(Wang et al., Chin. Phys. C 45 (2021) 030003) and abundances are IUPAC representative
isotopic compositions; an anion gains and a cation loses one electron mass
(:data:`ELECTRON_MASS_U`), as pySPM's ``get_mass`` does.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from tofsims.errors import FragmentError

if TYPE_CHECKING:
    # imported where used: the one-pass GRD reconstruction needs the mass table long before
    # it needs xarray, whose import would delay its start (tofsims.grd_to_volume)
    import xarray as xr

__all__ = [
    "BATTERY_FRAGMENTS",
    "CALIBRATION_IONS",
    "CALIBRATION_IONS_HEAVY",
    "ELECTRON_MASS_U",
    "INTERFERENCES",
    "ISOTOPES",
    "NATURAL_6LI_7LI",
    "NATURAL_10B_11B",
    "Isotope",
    "boron_isotope_check",
    "interferences",
    "ion_mass",
    "iontof_label",
    "isotopologues",
    "lithium_saturation_check",
    "parse_formula",
    "polarity",
    "required_resolving_power",
]

#: Electron rest mass in u (CODATA 2018).
ELECTRON_MASS_U = 0.000548580


@dataclass(frozen=True)
class Isotope:
    """One isotope: mass number, atomic mass (u, AME2020) and natural abundance (fraction)."""

    mass_number: int
    mass: float
    abundance: float


def _iso(*rows: tuple[int, float, float]) -> tuple[Isotope, ...]:
    return tuple(Isotope(a, m, x) for a, m, x in rows)


#: Element symbol -> isotopes (AME2020 atomic masses in u, IUPAC abundances).
ISOTOPES: dict[str, tuple[Isotope, ...]] = {
    "H": _iso((1, 1.00782503190, 0.999885), (2, 2.01410177784, 0.000115)),
    "Li": _iso((6, 6.0151228874, 0.0759), (7, 7.0160034366, 0.9241)),
    "B": _iso((10, 10.01293695, 0.199), (11, 11.00930536, 0.801)),
    "C": _iso((12, 12.0, 0.9893), (13, 13.00335483534, 0.0107)),
    "N": _iso((14, 14.00307400425, 0.99636), (15, 15.00010889827, 0.00364)),
    "O": _iso(
        (16, 15.99491461926, 0.99757), (17, 16.99913175595, 0.00038), (18, 17.99915961214, 0.00205)
    ),
    "F": _iso((19, 18.99840316207, 1.0)),
    "Na": _iso((23, 22.9897692820, 1.0)),
    "Al": _iso((27, 26.98153841, 1.0)),
    "Si": _iso(
        (28, 27.97692653442, 0.92223), (29, 28.97649466434, 0.04685), (30, 29.973770137, 0.03092)
    ),
    "P": _iso((31, 30.97376199768, 1.0)),
    "S": _iso(
        (32, 31.9720711744, 0.9499),
        (33, 32.9714589098, 0.0075),
        (34, 33.967867004, 0.0425),
        (36, 35.96708071, 0.0001),
    ),
    "Cl": _iso((35, 34.968852682, 0.7576), (37, 36.965902602, 0.2424)),
    "Mn": _iso((55, 54.93804391, 1.0)),
    "Co": _iso((59, 58.93319429, 1.0)),
    "Ni": _iso(
        (58, 57.93534241, 0.680769),
        (60, 59.93078588, 0.262231),
        (61, 60.93105557, 0.011399),
        (62, 61.92834537, 0.036345),
        (64, 63.92796682, 0.009256),
    ),
    "Br": _iso((79, 78.9183376, 0.5069), (81, 80.9162897, 0.4931)),
    "Ag": _iso((107, 106.9050916, 0.51839), (109, 108.9047553, 0.48161)),
    "Sn": _iso(
        (112, 111.90482387, 0.0097),
        (114, 113.9027827, 0.0066),
        (115, 114.903344699, 0.0034),
        (116, 115.90174280, 0.1454),
        (117, 116.90295398, 0.0768),
        (118, 117.90160657, 0.2422),
        (119, 118.90331117, 0.0859),
        (120, 119.90220163, 0.3258),
        (122, 121.9034438, 0.0463),
        (124, 123.9052766, 0.0579),
    ),
    "I": _iso((127, 126.9044719, 1.0)),
    "Cs": _iso((133, 132.905451961, 1.0)),
    "Ce": _iso(
        (136, 135.90712921, 0.00185),
        (138, 137.905991, 0.00251),
        (140, 139.9054431, 0.88450),
        (142, 141.9092504, 0.11114),
    ),
    "Pb": _iso(
        (204, 203.9730440, 0.014),
        (206, 205.9744657, 0.241),
        (207, 206.9758973, 0.221),
        (208, 207.9766525, 0.524),
    ),
}


def _abundance(element: str, mass_number: int) -> float:
    return next(i.abundance for i in ISOTOPES[element] if i.mass_number == mass_number)


#: Natural ¹⁰B/¹¹B atom ratio (0.199/0.801 = 0.248).
NATURAL_10B_11B = _abundance("B", 10) / _abundance("B", 11)
#: Natural ⁶Li/⁷Li atom ratio (0.0759/0.9241 = 0.0821).
NATURAL_6LI_7LI = _abundance("Li", 6) / _abundance("Li", 7)

#: Target fragments of the battery (CEI / cathode) analysis, negative polarity.
BATTERY_FRAGMENTS: dict[str, str] = {
    "C2HO-": "organic CEI (carbonate solvent decomposition)",
    "PO2-": "LiPF6 decomposition (phosphates)",
    "PO3-": "LiPF6 decomposition (phosphates)",
    "POF2-": "LiPF6 decomposition (fluorophosphates)",
    "LiF2-": "LiF in the CEI (7Li)",
    "6LiF2-": "LiF in the CEI, 6Li isotopologue (saturation check)",
    "7LiCO3-": "Li2CO3",
    "BO2-": "boron dopant in the bulk (11B; interferes with C2F-)",
    "10BO2-": "boron dopant, 10B isotopologue (clean boron marker)",
    "NiO2-": "layered oxide bulk (58Ni)",
    "CeO2-": "CeO2 surface coating (140Ce)",
    "142CeO2-": "CeO2 coating, 142Ce isotopologue",
}

#: Calibration ions per polarity, lightest first (low masses fix K0, heavy ones SF).
CALIBRATION_IONS: dict[str, tuple[str, ...]] = {
    "negative": ("H-", "C-", "CH-", "O-", "OH-", "F-", "C2-", "C2H-", "CN-", "Cl-"),
    "positive": ("H+", "6Li+", "7Li+", "C+", "CH+", "CH2+", "CH3+", "Na+", "C2H3+", "C3H5+"),
}

#: Heavier calibration ions per polarity, lightest first, added by
#: :func:`tofsims.masscal.fit_calibration` up to (and one beyond) the heaviest fragment asked
#: for, so SF is fixed over the fragments' range instead of extrapolated from Cl⁻ (35 u).
#: Negative: carbon cluster anions Cₙ⁻/CₙH⁻ (conductive carbon, binder and organics give a
#: series up to n ≈ 15 in every negative spectrum of a composite electrode; even n strongest)
#: and PF₆⁻ (LiPF₆ electrolyte, 145 u). Positive: aromatic hydrocarbon cations and Cs⁺.
CALIBRATION_IONS_HEAVY: dict[str, tuple[str, ...]] = {
    "negative": (
        "C3-",
        "C4-",
        "C4H-",
        "C5-",
        "C6-",
        "C6H-",
        "C7-",
        "C8-",
        "C8H-",
        "C9-",
        "C10-",
        "C10H-",
        "C12-",
        "PF6-",
        "C13-",
        "C14-",
        "C15-",
        "C16-",
    ),
    "positive": ("C4H7+", "C5H9+", "C6H5+", "C7H7+", "C9H7+", "C10H8+", "Cs+", "C13H9+", "C14H10+"),
}

#: Known isobaric interferences (methods.md §B2): (target, interferent).
INTERFERENCES: tuple[tuple[str, str], ...] = (
    ("BO2-", "C2F-"),
    ("BO2-", "CHNO-"),
    ("BO2-", "C2H3O-"),
    ("BO2-", "AlO-"),
    ("10BO2-", "CNO-"),
    ("10BO2-", "C2H2O-"),
    ("C2HO-", "CHN2-"),
    ("C2HO-", "C3H5-"),
    ("LiF2-", "CHO2-"),
    ("LiF2-", "C2H5O-"),
    ("6LiF2-", "CH2NO-"),
    ("6LiF2-", "CO2-"),
    ("PO3-", "Br-"),
    ("NiO2-", "C3H6O3-"),
    ("CeO2-", "C12H12O-"),
)

_TOKEN = re.compile(r"(\^?)(\d*)([A-Z][a-z]?)(\d*)")


@lru_cache(maxsize=1024)
def parse_formula(formula: str) -> tuple[tuple[tuple[str, int | None, int], ...], int]:
    """Split a formula of our notation into ``((element, mass_number, count), ...), charge``.

    Parameters
    ----------
    formula
        E.g. ``"6LiF2-"``; ``mass_number`` is ``None`` for "most abundant isotope".

    Returns
    -------
    tuple
        The element terms in order and the charge (+1, -1 or 0 for a neutral).

    Raises
    ------
    FragmentError
        Unknown element, unknown isotope or unparsable text.
    """
    text = formula.strip()
    charge = 0
    if text.endswith(("-", "+")):
        charge = -1 if text[-1] == "-" else 1
        text = text[:-1]
    if not text:
        raise FragmentError(f"{formula!r}: empty formula")
    terms: list[tuple[str, int | None, int]] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise FragmentError(f"{formula!r}: cannot parse at {text[position:]!r}")
        caret, mass_text, element, count_text = match.groups()
        if mass_text and not caret and position != 0:
            raise FragmentError(f"{formula!r}: write an isotope inside a formula as '^13C'")
        if element not in ISOTOPES:
            raise FragmentError(f"{formula!r}: element {element!r} is not in the isotope table")
        mass_number = int(mass_text) if mass_text else None
        if mass_number is not None and mass_number not in {
            i.mass_number for i in ISOTOPES[element]
        }:
            raise FragmentError(f"{formula!r}: no isotope {mass_number}{element} in the table")
        count = int(count_text) if count_text else 1
        if count == 0:
            raise FragmentError(f"{formula!r}: zero count for {element}")
        terms.append((element, mass_number, count))
        position = match.end()
    return tuple(terms), charge


def _main_isotope(element: str) -> Isotope:
    return max(ISOTOPES[element], key=lambda iso: iso.abundance)


def _isotope(element: str, mass_number: int | None) -> Isotope:
    if mass_number is None:
        return _main_isotope(element)
    return next(i for i in ISOTOPES[element] if i.mass_number == mass_number)


def polarity(formula: str) -> str:
    """``"negative"``, ``"positive"`` or ``"neutral"`` from the formula's charge sign."""
    charge = parse_formula(formula)[1]
    return {-1: "negative", 1: "positive", 0: "neutral"}[charge]


def ion_mass(formula: str) -> float:
    """Exact monoisotopic mass-to-charge ratio of an ion, in u.

    Parameters
    ----------
    formula
        Our notation, e.g. ``"NiO2-"`` (⁵⁸NiO₂⁻) or ``"6LiF2-"``.

    Returns
    -------
    float
        Sum of the atomic masses plus one electron mass for an anion (minus for a cation).

    Examples
    --------
    >>> round(ion_mass("NiO2-"), 5)
    89.92572
    """
    terms, charge = parse_formula(formula)
    neutral = sum(_isotope(el, a).mass * n for el, a, n in terms)
    return neutral - charge * ELECTRON_MASS_U


def iontof_label(formula: str) -> str:
    """IONTOF peak label of a formula: ``"6LiF2-"`` -> ``"^6LiF_2-"``, ``"C2HO-"`` -> ``"C_2HO-"``.

    The inverse (parsing IONTOF labels, sums and ratios) lives in :mod:`tofsims.peaknames`.
    """
    terms, charge = parse_formula(formula)
    parts = [
        (f"^{a}" if a is not None else "") + el + (f"_{n}" if n > 1 else "") for el, a, n in terms
    ]
    return "".join(parts) + {-1: "-", 1: "+", 0: ""}[charge]


def _element_variants(element: str, mass_number: int | None, count: int) -> list[tuple]:
    """All isotope combinations of ``count`` atoms: (isotope mass numbers, mass, probability)."""
    if mass_number is not None:
        iso = _isotope(element, mass_number)
        return [(((mass_number, count),), iso.mass * count, 1.0)]
    variants = []
    for combo in itertools.combinations_with_replacement(ISOTOPES[element], count):
        numbers: dict[int, int] = {}
        for iso in combo:
            numbers[iso.mass_number] = numbers.get(iso.mass_number, 0) + 1
        probability = math.factorial(count)
        for a, k in numbers.items():
            probability /= math.factorial(k)
            probability *= _isotope(element, a).abundance ** k
        mass = sum(iso.mass for iso in combo)
        variants.append((tuple(sorted(numbers.items())), mass, probability))
    return variants


def isotopologues(formula: str, min_abundance: float = 1e-3) -> list[dict[str, Any]]:
    """Isotopologues of an ion with exact masses and abundances relative to the whole ion.

    Elements given with an explicit mass number stay fixed; the others take every
    natural isotope combination (multinomial probabilities).

    Parameters
    ----------
    formula
        Our notation, e.g. ``"LiF2-"``.
    min_abundance
        Drop isotopologues rarer than this fraction.

    Returns
    -------
    list of dict
        ``{"formula", "mass" (u), "abundance" (fraction), "relative" (to the most abundant)}``,
        sorted by mass. ``formula`` names every isotope explicitly only where it differs
        from the most abundant one (``"6LiF2-"``).
    """
    terms, charge = parse_formula(formula)
    sign = {-1: "-", 1: "+", 0: ""}[charge]
    per_term = [_element_variants(el, a, n) for el, a, n in terms]
    result = []
    for combo in itertools.product(*per_term):
        probability = math.prod(v[2] for v in combo)
        if probability < min_abundance:
            continue
        mass = sum(v[1] for v in combo) - charge * ELECTRON_MASS_U
        pieces = []
        for (element, mass_number, _), (numbers, _, _) in zip(terms, combo, strict=True):
            main = _main_isotope(element).mass_number
            for a, k in numbers:
                prefix = str(a) if (a != main or mass_number is not None) else ""
                joiner = "^" if prefix and pieces else ""
                pieces.append(f"{joiner}{prefix}{element}{k if k > 1 else ''}")
        result.append({"formula": "".join(pieces) + sign, "mass": mass, "abundance": probability})
    top = max(r["abundance"] for r in result)
    for r in result:
        r["relative"] = r["abundance"] / top
    return sorted(result, key=lambda r: r["mass"])


def required_resolving_power(formula_a: str, formula_b: str) -> float:
    """Mass resolving power m/Δm needed to separate two ions (m = mean mass)."""
    mass_a, mass_b = ion_mass(formula_a), ion_mass(formula_b)
    return 0.5 * (mass_a + mass_b) / abs(mass_a - mass_b)


def interferences(formula: str, resolution: float | None = None) -> list[dict[str, Any]]:
    """Known isobaric interferences of a target ion (methods.md §B2).

    Parameters
    ----------
    formula
        Target ion, e.g. ``"BO2-"``.
    resolution
        Mass resolving power m/Δm of the measurement; when given, each entry says whether
        it is resolved.

    Returns
    -------
    list of dict
        ``{"target", "interferent", "delta_mass_u", "required_resolving_power",
        "resolved"}`` (``resolved`` is ``None`` without ``resolution``).
    """
    target_mass = ion_mass(formula)
    found = []
    for target, interferent in INTERFERENCES:
        if abs(ion_mass(target) - target_mass) > 1e-9:
            continue
        needed = required_resolving_power(target, interferent)
        found.append(
            {
                "target": formula,
                "interferent": interferent,
                "delta_mass_u": abs(ion_mass(interferent) - target_mass),
                "required_resolving_power": needed,
                "resolved": None if resolution is None else bool(resolution >= needed),
            }
        )
    return found


def _ratio_with_error(minor: Any, major: Any) -> tuple[Any, Any]:
    """Ratio minor/major and its Poisson (counting) standard error; 0/0 and x/0 -> NaN."""
    import xarray as xr

    minor_f = minor.astype("float64") if hasattr(minor, "astype") else float(minor)
    major_f = major.astype("float64") if hasattr(major, "astype") else float(major)
    major_safe = xr.where(major_f > 0, major_f, np.nan)
    ratio = minor_f / major_safe
    minor_safe = xr.where(minor_f > 0, minor_f, np.nan)
    error = np.abs(ratio) * np.sqrt(1.0 / minor_safe + 1.0 / major_safe)
    # zero minor counts: the error of the ratio is that of one count (upper-bound style)
    error = xr.where(minor_f > 0, error, 1.0 / major_safe)
    return ratio, error


def boron_isotope_check(i_10bo2: Any, i_11bo2: Any, sigmas: float = 3.0) -> xr.Dataset:
    """Check the ¹⁰BO₂⁻/¹¹BO₂⁻ ratio against the natural 0.248 (does m/z 43 carry C₂F⁻?).

    Pure and lazy (works on numbers, NumPy or dask-backed DataArrays, element-wise).

    Parameters
    ----------
    i_10bo2, i_11bo2
        Counts (not Poisson-corrected beyond the counting statistics) at m/z 42 and 43.
    sigmas
        Number of standard errors by which the ratio must fall below the natural one to be
        flagged.

    Returns
    -------
    xarray.Dataset
        ``ratio``, ``ratio_error`` (1σ, Poisson), ``interfered`` (ratio < natural − sigmas·σ:
        m/z 43 carries more than ¹¹BO₂⁻) and ``c2f_estimate`` = I(43) − I(42)/0.248 (counts;
        valid only if m/z 42 is itself clean of CNO⁻/C₂H₂O⁻).
    """
    import xarray as xr

    ratio, error = _ratio_with_error(xr.DataArray(i_10bo2), xr.DataArray(i_11bo2))
    interfered = ratio < NATURAL_10B_11B - sigmas * error
    c2f = xr.DataArray(i_11bo2).astype("float64") - xr.DataArray(i_10bo2) / NATURAL_10B_11B
    ds = xr.Dataset(
        {"ratio": ratio, "ratio_error": error, "interfered": interfered, "c2f_estimate": c2f}
    )
    ds.attrs["natural_ratio"] = NATURAL_10B_11B
    return ds


def lithium_saturation_check(i_6lif2: Any, i_7lif2: Any, sigmas: float = 3.0) -> xr.Dataset:
    """Check the ⁶LiF₂⁻/⁷LiF₂⁻ ratio against the natural 0.0821 (is ⁷LiF₂⁻ saturated?).

    Parameters
    ----------
    i_6lif2, i_7lif2
        Counts at m/z 44 and 45.
    sigmas
        Standard errors above the natural ratio needed to flag saturation.

    Returns
    -------
    xarray.Dataset
        ``ratio``, ``ratio_error`` (1σ Poisson), ``saturated`` (ratio > natural + sigmas·σ) and
        ``lif2_estimate`` = I(⁶LiF₂⁻)/0.0821 (= 12.18·I₆, counts), the ⁷LiF₂⁻ estimate to use
        where saturated. Caveat: ⁶LiF₂⁻ overlaps CH₂NO⁻, and lithium salts are often
        ⁶Li-depleted — calibrate the ratio on a reference area.
    """
    import xarray as xr

    ratio, error = _ratio_with_error(xr.DataArray(i_6lif2), xr.DataArray(i_7lif2))
    saturated = ratio > NATURAL_6LI_7LI + sigmas * error
    estimate = xr.DataArray(i_6lif2).astype("float64") / NATURAL_6LI_7LI
    ds = xr.Dataset(
        {"ratio": ratio, "ratio_error": error, "saturated": saturated, "lif2_estimate": estimate}
    )
    ds.attrs["natural_ratio"] = NATURAL_6LI_7LI
    return ds
