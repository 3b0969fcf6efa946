"""Colours fixed by name: the mechanism behind the gas and fragment palettes.

A :class:`NamedPalette` gives every name the same colour wherever it is drawn (first, alone,
beside another sample); names without a fixed colour get one of the fallback colours chosen by
a checksum of the name, stable across runs and processes. The palettes themselves are in
:mod:`dems.palette` (gases) and :mod:`tofsims.palette` (fragments).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = ["NamedPalette"]


@dataclass(frozen=True)
class NamedPalette:
    """Colours (hex strings, usable by Bokeh and matplotlib) by name.

    Attributes
    ----------
    fixed
        ``{name: colour}`` of the names with a colour of their own.
    fallback
        Colours for other names, picked by the CRC-32 of the name.
    """

    fixed: Mapping[str, str]
    fallback: tuple[str, ...]

    def colour(self, name: str) -> str:
        """Return the colour of ``name``."""
        text = str(name)
        if text in self.fixed:
            return self.fixed[text]
        return self.fallback[zlib.crc32(text.encode("utf-8")) % len(self.fallback)]

    def colours(self, names: Iterable[str]) -> dict[str, str]:
        """``{name: colour}`` for several names (e.g. for ``hv.dim(...).categorize``)."""
        return {str(name): self.colour(name) for name in names}
