"""How DEMS quantities are shown: SI prefixes, thinned curves, the potential's reference.

Shared by the HoloViews views (:mod:`dems.plots`) and the print figures
(:mod:`dems.figures`), so an axis reads the same in a report, the app and a paper figure.
No I/O, no HoloViews.
"""

from __future__ import annotations

import itertools

import numpy as np
import xarray as xr

__all__ = [
    "AMOUNT_UNITS",
    "charging",
    "display_scale",
    "envelope",
    "first_charge",
    "potential_unit",
    "reference_label",
    "reference_of",
]

#: SI prefixes tried for display, and the units they apply to (others are shown as stored).
PREFIXES = ((1e-15, "f"), (1e-12, "p"), (1e-9, "n"), (1e-6, "µ"), (1e-3, "m"), (1.0, ""))
SCALABLE_UNITS = ("A", "mol/s", "mol", "mol/(s·g)", "mol/g")
#: Unit of a flux integrated over time (s).
AMOUNT_UNITS = {"mol/s": "mol", "mol/(s·g)": "mol/g"}
#: How EC-Lab and people write a lithium reference.
LITHIUM_NAMES = ("li", "li/li+", "li+/li", "limetal", "lithium", "lithiummetal")


def display_scale(values: np.ndarray, unit: str) -> tuple[float, str]:
    """Choose the display unit that puts the largest magnitude between 1 and 1000.

    Parameters
    ----------
    values
        Data in ``unit`` (NaN ignored).
    unit
        Stored unit; only ``A``, ``mol/s``, ``mol``, ``mol/(s·g)`` and ``mol/g`` are rescaled
        (e.g. to ``pA``, ``nmol/s``, ``µmol/g``).

    Returns
    -------
    factor, unit
        Multiply the data by ``factor`` to express it in the returned unit.
    """
    finite = np.abs(np.asarray(values, dtype=float))
    finite = finite[np.isfinite(finite)]
    if unit not in SCALABLE_UNITS or finite.size == 0 or finite.max() == 0:
        return 1.0, unit
    peak = finite.max()
    size, prefix = max(((f, p) for f, p in PREFIXES if f <= peak), default=PREFIXES[0])
    return 1.0 / size, prefix + unit


def envelope(t: np.ndarray, y: np.ndarray, max_points: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Thin a long curve to at most ``max_points`` samples, keeping every peak and dip.

    The samples are cut into ``max_points // 2`` consecutive buckets and each bucket keeps its
    minimum and its maximum (in time order), so spikes survive, unlike plain striding.

    Parameters
    ----------
    t, y
        Times (s) and values, same length, NaN-free.
    max_points
        Largest number of samples to keep; ``None`` keeps all.

    Returns
    -------
    t, y
        The kept samples.
    """
    if max_points is None or t.size <= max_points:
        return t, y
    edges = np.linspace(0, t.size, max(max_points // 2, 1) + 1).astype(int)
    keep = []
    for start, stop in itertools.pairwise(edges):
        bucket = y[start:stop]
        keep += [start + int(np.argmin(bucket)), start + int(np.argmax(bucket))]
    kept = np.unique(keep)
    return t[kept], y[kept]


def reference_label(reference: str | None) -> str | None:
    """Short name of a reference electrode for an axis (``"Li/Li⁺"``, ``"SCE"``), or ``None``.

    Parameters
    ----------
    reference
        As recorded by the potentiostat (EC-Lab's ``Reference electrode`` line, e.g.
        ``"Li/Li+ (0 V)"``, ``"Li metal"``, ``"SCE Saturated Calomel Electrode (0.241 V)"``).
    """
    text = (reference or "").strip()
    if not text or text.lower() in ("none", "unknown", "n/a"):
        return None
    name = text.split("(")[0].strip()
    if name.lower().replace(" ", "") in LITHIUM_NAMES:
        return "Li/Li⁺"
    return name.split()[0]


def potential_unit(reference: str | None = None) -> str:
    """``"V vs Li/Li⁺"`` when the reference electrode is known, else ``"V"``."""
    short = reference_label(reference)
    return "V" if short is None else f"V vs {short}"


def reference_of(obj: xr.DataArray | xr.Dataset) -> str | None:
    """Return the reference electrode recorded on the potential of ``obj`` (or on ``obj``).

    The readers and ``dems process`` keep it as the ``reference_electrode`` attribute.
    """
    if isinstance(obj, xr.DataArray):
        potential = obj.coords.get("potential")
    else:
        potential = obj.get("potential")
    for source in (potential, obj):
        if source is not None and source.attrs.get("reference_electrode"):
            return str(source.attrs["reference_electrode"])
    return None


def charging(flux: xr.DataArray) -> np.ndarray:
    """Mask of the charging samples of a flux (along ``time``).

    The ``charge`` coordinate when present (:func:`dems.result_views.result_flux`: a charge
    half-cycle while an anodic current flows, rests excluded); else the samples where the
    ``potential`` coordinate rises.
    """
    if "charge" in flux.coords:
        return np.asarray(flux["charge"], dtype=bool)
    potential = np.asarray(flux["potential"], dtype=float)
    return np.gradient(potential) > 0 if potential.size > 1 else np.ones(potential.size, bool)


def first_charge(flux: xr.DataArray) -> tuple[np.ndarray, int | None]:
    """Mask of the samples of the first charge, and its cycle number (``None``: no cycles).

    Charging samples as in :func:`charging`, restricted to the first cycle that has any.
    """
    mask = charging(flux)
    if "cycle" not in flux.coords or not mask.any():
        return mask, None
    cycles = np.asarray(flux["cycle"])
    first = int(cycles[mask][0])
    return mask & (cycles == first), first
