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
_UNSAFE_UNIT = re.compile(r"[^A-Za-z0-9]+")

__all__ = [
    "canonical_variables",
    "ec_variables",
    "mean_current_from_charge",
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
    "Acir/Dcir Control": ("Acir/Dcir Control", ""),
    "d(Q-Qo)/dE/mA.h/V": ("d(Q-Qo)/dE", "mA.h/V"),
    "dI/dt/mA/s": ("dI/dt", "mA/s"),
}

#: ``<Ewe/V>``: an averaged quantity whose unit EC-Lab wrote inside the angle brackets.
_AVERAGED_WITH_UNIT = re.compile(r"^<(?P<quantity>[^<>/]+)/(?P<unit>[^<>]+)>$")

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

#: Columns holding the working-electrode potential, in order of preference. ``Ecell`` is the
#: cell voltage that battery techniques (BT-Lab BCD) record instead of ``Ewe``.
POTENTIAL_NAMES = ("Ewe", "Ewe_mean", "Ecell", "Ecell_mean")

#: Columns holding a measured current, in order of preference.
CURRENT_NAMES = ("I", "I_mean")

#: mA·s in one mA·h.
MAH_TO_MAS = 3600.0

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
    >>> split_column_title("<Ewe/V>")
    ('<Ewe>', 'V')
    """
    title = title.strip()
    if title in SPECIAL_TITLES:
        return SPECIAL_TITLES[title]
    if title in UNITLESS_TITLES or "/" not in title:
        return title, ""
    averaged = _AVERAGED_WITH_UNIT.match(title)
    if averaged:
        return f"<{averaged['quantity'].strip()}>", averaged["unit"].strip()
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
    (``<I>/mA`` -> ``I_mean``, ``ox/red`` -> ``ox_red``). A repeated quantity never
    overwrites the first one: it gets its unit appended when the unit differs
    (``control/V`` after ``control/V/mA`` -> ``control_V``), else a number (a second
    ``<I>/mA`` -> ``I_mean_2``), with a warning.

    Parameters
    ----------
    titles
        Verbatim column titles.
    source
        File name used in the warning.
    """
    names: list[str] = []
    unit_of: dict[str, str] = {}
    for title in titles:
        quantity, unit = split_column_title(title)
        name = safe_name(quantity)
        if name in unit_of:
            base = name
            unit_tag = _UNSAFE_UNIT.sub("_", unit).strip("_")
            same_unit = unit == unit_of[base] or not unit_tag
            name = f"{base}_2" if same_unit else f"{base}_{unit_tag}"
            suffix = 2
            while name in unit_of:
                suffix += 1
                name = f"{base}_{suffix}"
            warnings.warn(
                f"{source}: column {title!r} repeats quantity {base!r}; stored as {name!r}",
                UserWarning,
                stacklevel=3,
            )
        unit_of[name] = unit
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


def _potential(
    columns: Mapping[str, np.ndarray], line_numbers: np.ndarray, source: str
) -> tuple[xr.Variable, dict[str, Any]]:
    """``Ewe`` else ``<Ewe>`` else ``Ecell`` (battery techniques) per row, in V."""
    names = _first_present(columns, POTENTIAL_NAMES)
    potential = _combine(columns, names, len(line_numbers))
    attrs: dict[str, Any] = {
        "potential_source": " then ".join(names) or "none (no Ewe, <Ewe> or Ecell column)"
    }
    defect = zero_potential_rows(potential)
    if defect.any():
        attrs.update(_repair_zero_potential(columns, potential, defect, line_numbers, source))
    variable = xr.Variable(
        "time", potential, {"units": "V", "long_name": "working electrode potential"}
    )
    return variable, attrs


def mean_current_from_charge(dq: np.ndarray, time: np.ndarray) -> np.ndarray:
    """Mean current since the previous point from EC-Lab's ``dq`` column, in mA.

    EC-Lab computes the ``<I>/mA`` of its ``.mpt`` export this way when the binary file
    holds no current (galvanostatic techniques store only ``dq`` and the control value):
    ``<I> = dq / Δt`` with ``dq`` in mA·h, and 0 on the first row when ``dq`` is 0 there.
    Verified to 1e-16 mA against the ``.mpt`` exports of three GCPL runs.

    Parameters
    ----------
    dq
        Charge passed since the previous point, mA·h.
    time
        Time, s.
    """
    dq = np.asarray(dq, dtype=float)
    step = np.diff(np.asarray(time, dtype=float), prepend=np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        current = np.where(step > 0, dq * MAH_TO_MAS / step, np.nan)
    if current.size and dq[0] == 0.0:
        current[0] = 0.0
    return current


def _control_current(
    columns: Mapping[str, np.ndarray], units: Mapping[str, str], size: int
) -> tuple[np.ndarray, str] | None:
    """Return the applied current of the ``control`` column on galvanostatic rows, or None.

    ``control/V/mA`` holds the applied current in mA on galvanostatic rows (``mode`` 1)
    and the applied potential on potentiostatic rows (``mode`` 2); on rest rows (``mode``
    3, open circuit) no current flows, which is also what EC-Lab exports as ``<I>``.
    """
    name = next(
        (n for n in ("control", "control_mA") if units.get(n) in ("V/mA", "mA") and n in columns),
        None,
    )
    if name is None or "mode" not in columns:
        return None
    mode = np.asarray(columns["mode"], dtype=float)
    control = np.asarray(columns[name], dtype=float)
    current = np.where(mode == 1, control, np.where(mode == 3, 0.0, np.nan))
    source = (
        f"{name} on galvanostatic rows (mode 1), 0 on rest rows (mode 3), "
        "NaN on potentiostatic rows (mode 2): the file holds no measured current"
    )
    return current[:size], source


def _current(
    columns: Mapping[str, np.ndarray], units: Mapping[str, str], time: np.ndarray
) -> tuple[xr.Variable, dict[str, Any]]:
    """Measured ``I``/``<I>``, else ``dq``/Δt, else the control current; in mA."""
    size = len(time)
    names = _first_present(columns, CURRENT_NAMES)
    current = np.full(size, np.nan)
    for name in names:
        factor = CURRENT_TO_MA.get(units.get(name, "mA"), np.nan)
        values = np.asarray(columns[name], dtype=float) * factor
        current = np.where(np.isfinite(current), current, values)
    source = " then ".join(names)
    if not names and "dq" in columns and units.get("dq") == "mA.h":
        current = mean_current_from_charge(columns["dq"], time)
        source = "dq / time step (mean current since the previous point, as EC-Lab's <I>)"
    elif not names:
        control = _control_current(columns, units, size)
        if control is not None:
            current, source = control
    attrs = {"current_source": source or "none (no I, <I>, dq or control current column)"}
    return xr.Variable("time", current, {"units": "mA", "long_name": "current"}), attrs


def _cycle(columns: Mapping[str, np.ndarray]) -> tuple[xr.Variable | None, dict[str, Any]]:
    """``cycle number``, else ``half cycle // 2`` (EC-Lab's own numbering in ``.mpt``)."""
    if "cycle number" in columns:
        cycle, source = np.asarray(columns["cycle number"], dtype=float), "cycle number"
    elif "half cycle" in columns:
        cycle = np.floor(np.asarray(columns["half cycle"], dtype=float) / 2)
        source = "half cycle // 2 (EC-Lab numbers a cycle as two half cycles)"
    else:
        return None, {"cycle_source": "none (no cycle number or half cycle column)"}
    if np.isfinite(cycle).all():
        cycle = cycle.astype(np.int64)
    variable = xr.Variable("time", cycle, {"long_name": "cycle number"})
    return variable, {"cycle_source": source}


def canonical_variables(
    columns: Mapping[str, np.ndarray],
    units: Mapping[str, str],
    time: np.ndarray,
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
    time
        Time of each row, s.
    line_numbers
        1-based line number of each row in the source file (for messages).
    source
        File name used in warnings.

    Returns
    -------
    variables, attrs
        The canonical variables on dimension ``time`` and dataset attributes saying which
        columns each came from (``potential_source``, ``current_source``, ``cycle_source``,
        ``potential_defect``, ...).
    """
    potential, attrs = _potential(columns, line_numbers, source)
    current, current_attrs = _current(columns, units, time)
    cycle, cycle_attrs = _cycle(columns)
    variables = {"potential": potential, "current": current}
    if cycle is not None:
        variables["cycle"] = cycle
    return variables, {**attrs, **current_attrs, **cycle_attrs}


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
    values: Sequence[np.ndarray],
    time: np.ndarray,
    line_numbers: np.ndarray,
    source: str,
) -> tuple[dict[str, xr.Variable], dict[str, Any]]:
    """Dataset variables (every column + canonical quantities) on dimension ``time``.

    Parameters
    ----------
    titles
        Verbatim EC-Lab column titles, time column excluded; may repeat.
    values
        One array per title, in the same order (a repeated title keeps its own column).
    time
        Time of each row, s.
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
    for title, name, column in zip(titles, names, values, strict=True):
        unit = split_column_title(title)[1]
        column = np.asarray(column)
        attrs = {"long_name": title, "units": unit} if unit else {"long_name": title}
        variables[name] = xr.Variable("time", column, attrs)
        by_name[name] = column
        units[name] = unit
    canonical, attrs = canonical_variables(by_name, units, time, line_numbers, source)
    variables.update(canonical)
    return variables, attrs
