from pathlib import Path

import pytest

from tofsims.errors import FragmentError
from tofsims.peaknames import Atom, fragment_notation, parse_formula, parse_peak_name

PROFILES = Path(__file__).parents[1] / "data" / "tofsims" / "uhasselt_surfacelab73_depth_profiles"


@pytest.mark.parametrize(
    ("label", "fragment"),
    [
        ("C_2HO-", "C2HO-"),
        ("^6LiF_2-", "6LiF2-"),
        ("LiF_2-", "LiF2-"),
        ("^10BO_2-", "10BO2-"),
        ("^58NiO_2-", "58NiO2-"),
        ("CeO_2-", "CeO2-"),
        ("POF_2-", "POF2-"),
        ("PO_3-", "PO3-"),
        ("Cs_2PO_3+", "Cs2PO3+"),
        ("^13CC_25H_21N_2+", "13CC25H21N2+"),
        ("^206Pb_2I_3-", "206Pb2I3-"),
        ("C_81H_68N_4O_8+", "C81H68N4O8+"),
        # a labelled atom after the first one is bracketed (Sn118Sn would read as Sn x 118)
        ("Sn^118SnI_5-", "Sn[118Sn]I5-"),
        ("^118Sn^117SnI_3-", "118Sn[117Sn]I3-"),
    ],
)
def test_single_fragments(label, fragment):
    name = parse_peak_name(label)
    assert name.kind == "single"
    assert name.fragment == fragment
    assert name.label == label
    assert name.members == (fragment,)
    assert name.charge == (-1 if label.endswith("-") else 1)


def test_atoms_carry_isotope_and_count():
    atoms, charge = parse_formula("^6LiF_2-")
    assert atoms == (Atom("Li", 1, 6), Atom("F", 2, None))
    assert charge == -1
    atoms, _ = parse_formula("Sn^118SnI_5-")
    assert atoms == (Atom("Sn"), Atom("Sn", 1, 118), Atom("I", 5))


@pytest.mark.parametrize(
    ("label", "members"),
    [
        ("^118SnI_3-SnI_3-", ("118SnI3-", "SnI3-")),
        ("^206PbI_3-, ^207PbI_3-PbI_3-", ("206PbI3-", "207PbI3-", "PbI3-")),
        ("Sn^118SnI_5-Sn_2I_5-", ("Sn[118Sn]I5-", "Sn2I5-")),
        (
            "^206Pb_2I_3-, ^207Pb^206PbI_3-, Pb^206PbI_3-, Pb^207PbI_3-Pb_2I_3-",
            ("206Pb2I3-", "207Pb[206Pb]I3-", "Pb[206Pb]I3-", "Pb[207Pb]I3-", "Pb2I3-"),
        ),
        ("^6LiF_2-LiF_2-", ("6LiF2-", "LiF2-")),
    ],
)
def test_sums_split_at_charge_followed_by_formula(label, members):
    name = parse_peak_name(label)
    assert name.kind == "sum"
    assert name.members == members
    assert name.fragment == ""


def test_ratio_of_sums():
    label = "^118SnI_3-SnI_3- / ( ^206PbI_3-, ^207PbI_3-PbI_3- )"
    name = parse_peak_name(label)
    assert name.kind == "ratio"
    assert name.numerator == ("118SnI3-", "SnI3-")
    assert name.denominator == ("206PbI3-", "207PbI3-", "PbI3-")
    assert name.members == name.numerator + name.denominator
    assert name.fragment == ""
    assert name.polarity == "negative"


def test_simple_ratio_and_total():
    ratio = parse_peak_name("Cs_2+ / ( ^13CH_5N_2+ )")
    assert (ratio.numerator, ratio.denominator, ratio.charge) == (("Cs2+",), ("13CH5N2+",), 1)
    total = parse_peak_name("total")
    assert (total.kind, total.members, total.charge, total.polarity) == ("total", (), 0, "")


@pytest.mark.parametrize(
    "fragment", ["C2HO-", "6LiF2-", "Sn[118Sn]I5-", "118Sn[117Sn]I3-", "10BO2-", "CeO2-"]
)
def test_our_notation_round_trips(fragment):
    atoms, charge = parse_formula(fragment)
    assert fragment_notation(atoms, charge) == fragment
    assert parse_peak_name(fragment).fragment == fragment


def test_every_label_of_the_real_exports_parses():
    kinds = {}
    for path in sorted(PROFILES.glob("*.txt")):
        labels = path.read_text(encoding="latin-1").splitlines()[1].split("\t")[4:-1]
        for label in labels:
            kinds[label] = parse_peak_name(label).kind
    assert kinds["total"] == "total"
    assert kinds["PO_3-"] == "single"
    assert kinds["^206PbI_3-, ^207PbI_3-PbI_3-"] == "sum"
    assert kinds["CN- / ( InO- )"] == "ratio"
    assert len(kinds) > 150


@pytest.mark.parametrize(
    ("label", "reason"),
    [
        ("Xx-", "unknown element 'Xx'"),
        ("C_2HO", "cannot read"),  # no charge
        ("", "cannot read"),
        ("C_0-", "zero count"),
        ("CN- / InO-", "cannot read"),  # ratio without parentheses
        ("CN- / ( InO+ )", "charges differ"),
        ("CN-InO+", "different charges"),
        ("C2HO^-", "cannot read"),
        ("lowercase-", "cannot read"),
    ],
)
def test_unknown_syntax_raises_fragment_error_naming_the_label(label, reason):
    with pytest.raises(FragmentError, match=reason) as info:
        parse_peak_name(label)
    assert repr(label) in str(info.value)
