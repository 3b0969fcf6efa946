"""IONTOF peak labels (``C_2HO-``, ``^6LiF_2-``, sums, ratios) in our fragment notation.

IONTOF SurfaceLab writes peak labels with ``_n`` for a subscript count and ``^A`` for the
isotope mass number of the *next* element (``docs/formats.md``, "IONTOF peak labels"):

==================================================  =====================================
IONTOF label                                        meaning
==================================================  =====================================
``C_2HO-``                                          one fragment, C2HO−
``^6LiF_2-``                                        ⁶LiF2−
``^118SnI_3-SnI_3-``                                sum of ¹¹⁸SnI3− and SnI3−
``^206PbI_3-, ^207PbI_3-PbI_3-``                    sum of three fragments
``CN- / ( InO- )``                                  ratio of two (possibly summed) signals
``total``                                           total ion counts
==================================================  =====================================

Our notation is a plain string: atoms ``<mass number?><Element><count?>`` in the label's
order followed by the charge sign, e.g. ``C2HO-``, ``6LiF2-``, ``10BO2-``, ``58NiO2-``; a plain
element means the most abundant isotope. A mass number on an atom that is not the first one
would be ambiguous after a count (``Sn118Sn`` = Sn₁₁₈Sn?), so such atoms are bracketed:
``Sn[118Sn]I5-``, ``118Sn[117Sn]I3-``. :func:`parse_peak_name` also accepts our notation, so
``parse_peak_name(name.members[0])`` round-trips.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from tofsims.errors import FragmentError

__all__ = ["Atom", "PeakName", "fragment_notation", "parse_formula", "parse_peak_name"]

PeakKind = Literal["total", "single", "sum", "ratio"]

#: Element symbols H … Og (validation of parsed labels).
ELEMENTS: frozenset[str] = frozenset(
    """H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge
    As Se Br Kr Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm Sm Eu
    Gd Tb Dy Ho Er Tm Yb Lu Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi Po At Rn Fr Ra Ac Th Pa U Np Pu
    Am Cm Bk Cf Es Fm Md No Lr Rf Db Sg Bh Hs Mt Ds Rg Cn Nh Fl Mc Lv Ts Og""".split()
)

# One atom: IONTOF ``^118Sn_2`` / ours ``118Sn2`` (first atom) or ``[118Sn]2``.
_ATOM = r"(?:\[\d+[A-Z][a-z]?\]|(?:\^\d+|\d+(?=[A-Z]))?[A-Z][a-z]?)(?:_?\d+)?"
_ATOM_RE = re.compile(
    r"(?:\[(?P<bracket>\d+)(?P<bel>[A-Z][a-z]?)\]|(?:\^(?P<caret>\d+)|(?P<lead>\d+)(?=[A-Z]))?"
    r"(?P<el>[A-Z][a-z]?))(?:_?(?P<count>\d+))?"
)
_CHARGED = rf"(?:{_ATOM})+[+-]"
_SUM_RE = re.compile(rf"{_CHARGED}(?:(?:, )?{_CHARGED})*")
_MEMBER_RE = re.compile(_CHARGED)
_RATIO_RE = re.compile(r"(?P<num>.+?) / \( (?P<den>.+) \)")


@dataclass(frozen=True)
class Atom:
    """One element of a fragment formula.

    Attributes
    ----------
    element
        Element symbol, e.g. ``"Li"``.
    count
        Number of atoms (≥ 1).
    mass_number
        Isotope mass number (``6`` for ⁶Li), or ``None`` for the most abundant isotope.
    """

    element: str
    count: int = 1
    mass_number: int | None = None


@dataclass(frozen=True)
class PeakName:
    """A parsed IONTOF peak label.

    Attributes
    ----------
    label
        The label verbatim, e.g. ``"^118SnI_3-SnI_3-"``.
    kind
        ``"total"``, ``"single"``, ``"sum"`` or ``"ratio"``.
    members
        Fragments in our notation: one for ``single``, several for ``sum``; for ``ratio`` the
        numerator members followed by the denominator members; empty for ``total``.
    charge
        ``-1`` (anions) or ``+1`` (cations); ``0`` for ``total``.
    numerator, denominator
        For ratios, the members above and below the fraction bar; otherwise ``members`` and ``()``.
    """

    label: str
    kind: PeakKind
    members: tuple[str, ...]
    charge: int
    numerator: tuple[str, ...] = ()
    denominator: tuple[str, ...] = ()

    @property
    def fragment(self) -> str:
        """Our notation for a single fragment (``"C2HO-"``), ``""`` for sums, ratios, total."""
        return self.members[0] if self.kind == "single" else ""

    @property
    def polarity(self) -> str:
        """``"negative"``, ``"positive"`` or ``""`` (total)."""
        return {-1: "negative", 1: "positive"}.get(self.charge, "")


def parse_formula(formula: str) -> tuple[tuple[Atom, ...], int]:
    """Split one charged fragment (IONTOF or our notation) into atoms and charge.

    Parameters
    ----------
    formula
        E.g. ``"^6LiF_2-"``, ``"6LiF2-"``, ``"Sn^118SnI_5-"``.

    Returns
    -------
    tuple
        ``(atoms, charge)`` with charge ``-1`` or ``+1``.

    Raises
    ------
    FragmentError
        If the text is not one charged formula of known elements.
    """
    if not formula or formula[-1] not in "+-" or not re.fullmatch(_CHARGED, formula):
        raise FragmentError(f"{formula!r}: not a fragment formula such as 'C_2HO-' or 'C2HO-'")
    atoms = []
    for match in _ATOM_RE.finditer(formula[:-1]):
        element = match["bel"] or match["el"]
        if element not in ELEMENTS:
            raise FragmentError(f"{formula!r}: unknown element {element!r}")
        mass = match["caret"] or match["bracket"] or match["lead"]
        count = int(match["count"]) if match["count"] else 1
        if count < 1 or (mass is not None and int(mass) < 1):
            raise FragmentError(f"{formula!r}: zero count or mass number for {element}")
        atoms.append(Atom(element, count, int(mass) if mass else None))
    return tuple(atoms), -1 if formula[-1] == "-" else 1


def fragment_notation(atoms: tuple[Atom, ...], charge: int) -> str:
    """Write atoms in our notation: ``(Atom("Li", 1, 6), Atom("F", 2)), -1`` -> ``"6LiF2-"``.

    A mass number on any atom but the first is bracketed (``Sn[118Sn]I5-``).
    """
    parts = []
    for index, atom in enumerate(atoms):
        symbol = atom.element
        if atom.mass_number is not None:
            isotope = f"{atom.mass_number}{symbol}"
            symbol = isotope if index == 0 else f"[{isotope}]"
        parts.append(symbol + (str(atom.count) if atom.count != 1 else ""))
    return "".join(parts) + ("-" if charge < 0 else "+")


def _members(text: str, label: str) -> tuple[list[str], int]:
    if not _SUM_RE.fullmatch(text):
        raise FragmentError(f"peak label {label!r}: cannot read {text!r} as a fragment or a sum")
    members, charges = [], set()
    for match in _MEMBER_RE.finditer(text):
        try:
            atoms, charge = parse_formula(match.group())
        except FragmentError as err:
            raise FragmentError(f"peak label {label!r}: {err}") from None
        members.append(fragment_notation(atoms, charge))
        charges.add(charge)
    if len(charges) != 1:
        raise FragmentError(f"peak label {label!r}: members have different charges")
    return members, charges.pop()


def parse_peak_name(label: str) -> PeakName:
    """Parse an IONTOF peak label (or a fragment in our notation).

    Parameters
    ----------
    label
        E.g. ``"C_2HO-"``, ``"^6LiF_2-"``, ``"^206PbI_3-, ^207PbI_3-PbI_3-"``,
        ``"CN- / ( InO- )"``, ``"total"``.

    Returns
    -------
    PeakName
        Kind, members in our notation, charge and the verbatim label.

    Raises
    ------
    FragmentError
        If the label follows none of these forms; the message names the label.

    Examples
    --------
    >>> parse_peak_name("^6LiF_2-").fragment
    '6LiF2-'
    >>> parse_peak_name("^118SnI_3-SnI_3-").members
    ('118SnI3-', 'SnI3-')
    """
    text = label.strip()
    if text.lower() == "total":
        return PeakName(label, "total", (), 0)
    ratio = _RATIO_RE.fullmatch(text)
    if ratio:
        numerator, charge_num = _members(ratio["num"], label)
        denominator, charge_den = _members(ratio["den"], label)
        if charge_num != charge_den:
            raise FragmentError(f"peak label {label!r}: numerator and denominator charges differ")
        return PeakName(
            label,
            "ratio",
            (*numerator, *denominator),
            charge_num,
            tuple(numerator),
            tuple(denominator),
        )
    members, charge = _members(text, label)
    kind: PeakKind = "single" if len(members) == 1 else "sum"
    return PeakName(label, kind, tuple(members), charge, tuple(members), ())
