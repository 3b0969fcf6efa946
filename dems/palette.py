"""One colour per gas, for every DEMS view (HTML, PNG, the app and the comparison figures).

O2 is the same blue whether it is drawn first, alone or beside another sample's curves; gases
without a fixed colour get a stable one chosen by their name
(:class:`operando_core.palette.NamedPalette`). The fixed colours are from the Okabe–Ito
colour-blind-safe palette.
"""

from __future__ import annotations

from operando_core.palette import NamedPalette

__all__ = ["GASES", "gas_colour"]

#: The gas palette: fixed colours of common gases, others by name.
GASES = NamedPalette(
    fixed={
        "O2": "#0072B2",  # blue
        "CO2": "#D55E00",  # vermillion
        "CO": "#E69F00",  # orange
        "H2": "#009E73",  # bluish green
        "C2H4": "#CC79A7",  # reddish purple
        "H2O": "#56B4E9",  # sky blue
        "POF3": "#8C564B",  # brown
        "Ar": "#7F7F7F",  # grey
    },
    fallback=("#1B9E77", "#7570B3", "#E7298A", "#66A61E", "#A6761D", "#17BECF", "#BCBD22"),
)
gas_colour = GASES.colour
