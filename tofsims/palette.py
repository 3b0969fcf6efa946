"""One colour per fragment, for every TOF-SIMS view (HTML, PNG, the app and the comparisons).

LiF2- is the same blue in a report, the app and a comparison figure; other fragments get a
stable colour chosen by their name (:class:`operando_core.palette.NamedPalette`). The fixed
colours are from the Okabe–Ito colour-blind-safe palette.
"""

from __future__ import annotations

from operando_core.palette import NamedPalette

__all__ = ["FRAGMENTS", "fragment_colour"]

#: The fragment palette: fixed colours of a Ni-rich cathode study's fragments, others by name.
FRAGMENTS = NamedPalette(
    fixed={
        "LiF2-": "#0072B2",  # blue: LiF-rich CEI marker
        "C2HO-": "#E69F00",  # orange: organic CEI species
        "PO3-": "#CC79A7",  # reddish purple: phosphates
        "PO2-": "#56B4E9",  # sky blue
        "BO2-": "#009E73",  # bluish green: borate coating
        "CeO2-": "#D55E00",  # vermillion: ceria coating
        "NiO2-": "#333333",  # near black: bulk cathode
        "F-": "#8C564B",  # brown
        "LiF-": "#17BECF",  # cyan
    },
    fallback=("#1B9E77", "#7570B3", "#E7298A", "#66A61E", "#A6761D", "#BCBD22", "#7F7F7F"),
)
fragment_colour = FRAGMENTS.colour
