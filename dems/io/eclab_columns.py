"""EC-Lab column titles and the canonical potentiostat quantities.

Shared by the ``.mpt`` reader (:mod:`dems.io.biologic`) and the EC-Lab block embedded in
Zilien files (:mod:`dems.io.zilien`): both carry EC-Lab column titles such as ``Ewe/V``,
``<I>/mA`` or ``Q charge/discharge/mA.h``.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

_UNSAFE = re.compile(r"[^A-Za-z0-9 _.+-]")

__all__ = [
    "canonical_variables",
    "ec_variables",
    "split_column_title",
    "variable_names",
    "zero_potential_rows",
]

#: Titles whose unit cannot be found by splitting on the last ``/`` (formats-dems.md §1).
SPECIAL_TITLES: dict[str, tuple[str, str]] = {
    "Q charge/mA.h/g": ("Q charge", "mA.h/g"),
    "Q discharge/mA.h/g": ("Q discharge", "mA.h/g"),
    "Im(Conductivity)/mS/cm": ("Im(Conductivity)", "mS/cm"),
    "Re(Conductivity)/mS/cm": ("Re(Conductivity)", "mS/cm"),
    "control/V/mA": ("control", "V/mA"),
    "ox/red": ("ox/red", ""),
}

#: Columns without a unit (flags, counters, integer codes).
UNITLESS_TITLES = frozenset(
    {
        "mode",
        "error",
        "control changes",
        "Ns changes",
        "counter inc.",
        "Ns",
        "cycle number",
        "half cycle",
        "x",
        "I Range",
        "experiment_number",
        "technique_number",
    }
)

#: Factor converting a current column to mA.
CURRENT_TO_MA = {"mA": 1.0, "A": 1e3, "µA": 1e-3, "uA": 1e-3, "nA": 1e-6}

#: Runs of at least this many exact zeros in the potential are the EC-Lab CP export defect.
MIN_ZERO_RUN = 3


def split_column_title(title: str) -> tuple[str, str]:
    """Split an EC-Lab column title into quantity and unit.

    Parameters
    ----------
    title
        Verbatim title, e.g. ``"Ewe/V"``, ``"Q charge/discharge/mA.h"``, ``"ox/red"``.

    Returns
    -------
    tuple of str
        ``(quantity, unit)``; the unit is ``""`` for unitless columns.

    Examples
    --------
    >>> split_column_title("Q charge/discharge/mA.h")
    ('Q charge/discharge', 'mA.h')
    >>> split_column_title("Q charge/mA.h/g")
    ('Q charge', 'mA.h/g')
    """
    title = title.strip()
    if title in SPECIAL_TITLES:
        return SPECIAL_TITLES[title]
    if title in UNITLESS_TITLES or "/" not in title:
        return title, ""
    quantity, unit = title.rsplit("/", 1)
    return quantity, unit


def safe_name(quantity: str) -> str:
    """NetCDF/Zarr-safe variable name of an EC-Lab quantity.

    ``<Ewe>`` (averaged over the recording interval) -> ``Ewe_mean``, ``|Energy|`` ->
    ``abs_Energy``, ``(Q-Qo)`` -> ``Q-Qo``, ``ox/red`` -> ``ox_red``; any other character
    outside letters, digits, space, ``_ - . +`` becomes ``_`` (netCDF4 rejects names starting
    with ``<`` or ``(``, and ``/`` is a path separator in netCDF and Zarr).
    """
    name = quantity.strip()
    if len(name) > 2 and name.startswith("<") and name.endswith(">"):
        name = f"{name[1:-1]}_mean"
    elif len(name) > 2 and name.startswith("|") and name.endswith("|"):
        name = f"abs_{name[1:-1]}"
    elif len(name) > 2 and name.startswith("(") and name.endswith(")"):
        name = name[1:-1]
    name = _UNSAFE.sub("_", name)
    if not name or not (name[0].isalpha() or name[0] == "_"):
        name = f"_{name}"
    return name


def variable_names(titles: Sequence[str], source: str) -> list[str]:
    """Dataset variable names for EC-Lab column titles, unique and netCDF/Zarr-safe.

    The name is the quantity without its unit, made safe by :func:`safe_name`
    (``<I>/mA`` -> ``I_mean``, ``ox/red`` -> ``ox_red``). A repeated quantity
    (``control/V/mA`` next to ``control/V``) gets its unit appended, ``control_V``, with a
    warning.

    Parameters
    ----------
    titles
        Verbatim column titles.
    source
        File name used in the warning.
    """
    names: list[str] = []
    for title in titles:
        quantity, unit = split_column_title(title)
        name = safe_name(quantity)
        if name in names:
            candidate = f"{name}_{_UNSAFE.sub('_', unit)}" if unit else f"{name}_2"
            suffix = 2
            while candidate in names:
                suffix += 1
                candidate = f"{name}_{suffix}"
            warnings.warn(
                f"{source}: column {title!r} repeats quantity {name!r}; stored as {candidate!r}",
                UserWarning,
                stacklevel=3,
            )
            name = candidate
        names.append(name)
    return names


def zero_potential_rows(potential: np.ndarray, min_run: int = MIN_ZERO_RUN) -> np.ndarray:
    """Mask of the EC-Lab chronopotentiometry export defect: runs of exact-zero potential.

    EC-Lab sometimes exports ``<Ewe>/V`` as ``0,0000000E+000`` for the rest of a CP technique
    (ixdat issues #84, #180). A measured potential is practically never exactly zero for
    ``min_run`` consecutive points, so such runs are flagged.

    Parameters
    ----------
    potential
        Potential in V.
    min_run
        Shortest run of exact zeros that counts as the defect.

    Returns
    -------
    numpy.ndarray of bool
        True on rows that belong to a run of at least ``min_run`` exact zeros.
    """
    zero = np.asarray(potential) == 0.0
    mask = np.zeros_like(zero)
    if not zero.any():
        return mask
    edges = np.diff(np.concatenate(([0], zero.astype(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    stops = np.flatnonzero(edges == -1)
    for start, stop in zip(starts, stops, strict=True):
        if stop - start >= min_run:
            mask[start:stop] = True
    return mask


def _first_present(columns: Mapping[str, np.ndarray], names: Sequence[str]) -> list[str]:
    return [name for name in names if name in columns]


def _combine(columns: Mapping[str, np.ndarray], names: Sequence[str], size: int) -> np.ndarray:
    """First finite value among ``names`` on each row (e.g. ``Ewe`` else ``Ewe_mean``)."""
    combined = np.full(size, np.nan)
    for name in names:
        values = np.asarray(columns[name], dtype=float)
        combined = np.where(np.isfinite(combined), combined, values)
    return combined


def canonical_variables(
    columns: Mapping[str, np.ndarray],
    units: Mapping[str, str],
    line_numbers: np.ndarray,
    source: str,
) -> tuple[dict[str, xr.Variable], dict[str, Any]]:
    """Canonical ``potential`` [V], ``current`` [mA] and ``cycle`` from EC-Lab columns.

    Parameters
    ----------
    columns
        Column arrays keyed by variable name (``"Ewe"``, ``"Ewe_mean"``, ``"I"``, ...).
    units
        Unit of each column (``"V"``, ``"mA"``, ...).
    line_numbers
        1-based line number of each row in the source file (for messages).
    source
        File name used in warnings.

    Returns
    -------
    variables, attrs
        The canonical variables on dimension ``time`` and dataset attributes describing how
        the potential was obtained (``potential_source``, ``potential_defect``, ...).
    """
    size = len(line_numbers)
    attrs: dict[str, Any] = {}
    variables: dict[str, xr.Variable] = {}

    potential_names = _first_present(columns, ("Ewe", "Ewe_mean"))
    potential = _combine(columns, potential_names, size)
    attrs["potential_source"] = " then ".join(potential_names) or "none (no Ewe column)"
    defect = zero_potential_rows(potential)
    if defect.any():
        attrs.update(_repair_zero_potential(columns, potential, defect, line_numbers, source))
    variables["potential"] = xr.Variable(
        "time", potential, {"units": "V", "long_name": "working electrode potential"}
    )

    current_names = _first_present(columns, ("I", "I_mean"))
    current = np.full(size, np.nan)
    for name in current_names:
        factor = CURRENT_TO_MA.get(units.get(name, "mA"), np.nan)
        values = np.asarray(columns[name], dtype=float) * factor
        current = np.where(np.isfinite(current), current, values)
    attrs["current_source"] = " then ".join(current_names) or "none (no I column)"
    variables["current"] = xr.Variable("time", current, {"units": "mA", "long_name": "current"})

    if "cycle number" in columns:
        cycle = np.asarray(columns["cycle number"], dtype=float)
        if np.isfinite(cycle).all():
            cycle = cycle.astype(np.int64)
        variables["cycle"] = xr.Variable("time", cycle, {"long_name": "cycle number"})
    return variables, attrs


def _repair_zero_potential(
    columns: Mapping[str, np.ndarray],
    potential: np.ndarray,
    defect: np.ndarray,
    line_numbers: np.ndarray,
    source: str,
) -> dict[str, Any]:
    """Rebuild zeroed potential rows from ``Ewe-Ece + Ece`` or set them to NaN (in place)."""
    rows = np.flatnonzero(defect)
    where = f"lines {line_numbers[rows[0]]}-{line_numbers[rows[-1]]}"
    ece_names = _first_present(columns, ("Ece", "Ece_mean"))
    if "Ewe-Ece" in columns and ece_names:
        rebuilt = np.asarray(columns["Ewe-Ece"], float) + _combine(
            columns, ece_names, len(potential)
        )
        potential[defect] = rebuilt[defect]
        how = f"rebuilt as Ewe-Ece + {ece_names[0]}"
    else:
        potential[defect] = np.nan
        how = "set to NaN (no Ewe-Ece and Ece columns to rebuild it)"
        warnings.warn(
            f"{source}: {where}: potential exported as exact zeros in {rows.size} rows "
            f"(EC-Lab CP export defect); {how}",
            UserWarning,
            stacklevel=4,
        )
    return {
        "potential_defect": f"exact-zero potential in {rows.size} rows ({where}); {how}",
        "potential_defect_rows": int(rows.size),
    }


def ec_variables(
    titles: Sequence[str],
    data: Mapping[str, np.ndarray],
    line_numbers: np.ndarray,
    source: str,
) -> tuple[dict[str, xr.Variable], dict[str, Any]]:
    """Dataset variables (every column + canonical quantities) on dimension ``time``.

    Parameters
    ----------
    titles
        Verbatim EC-Lab column titles, time column excluded.
    data
        Column arrays keyed by verbatim title.
    line_numbers
        1-based line number of each row (for messages).
    source
        File name used in warnings.

    Returns
    -------
    variables, attrs
        ``{name: xarray.Variable}`` with ``units`` and ``long_name`` attributes, and dataset
        attributes from :func:`canonical_variables`.
    """
    names = variable_names(titles, source)
    variables: dict[str, xr.Variable] = {}
    by_name: dict[str, np.ndarray] = {}
    units: dict[str, str] = {}
    for title, name in zip(titles, names, strict=True):
        unit = split_column_title(title)[1]
        values = np.asarray(data[title])
        attrs = {"long_name": title, "units": unit} if unit else {"long_name": title}
        variables[name] = xr.Variable("time", values, attrs)
        by_name[name] = values
        units[name] = unit
    canonical, attrs = canonical_variables(by_name, units, line_numbers, source)
    variables.update(canonical)
    return variables, attrs
