"""Checks of a DEMS run's inputs before anything is computed: damage is reported, not averaged.

A missing or overflowing sample (NaN, ±inf, a value beyond :data:`OVERFLOW`) in a channel the
run uses is masked as missing and reported as a warning of the summary; a channel or an EC
column with no usable sample at all is an error naming the file and the column. A calibration
whose sensitivity matrix cannot separate the gases (two gases calibrated on the same m/z only)
is an error naming the calibration: its fluxes would be an arbitrary split.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import xarray as xr

from dems.errors import CalibrationError, DemsReadError
from dems.fragmentation import sensitivity_matrix

__all__ = ["CONDITION_WARNING", "OVERFLOW", "check_separable", "screen_ec", "screen_ms"]

#: Magnitude beyond which a number is an overflow or a fill value, not a measurement: no ion
#: current, potential or electrode current comes near it in any unit.
OVERFLOW = 1e100
#: Condition number of the sensitivity matrix above which the fluxes are reported as poorly
#: separated (a relative noise ε in the signals becomes up to ε·cond in the fluxes).
CONDITION_WARNING = 1e4
#: EC columns a run needs (the potential for onsets, the current for charges).
EC_COLUMNS = ("potential", "current")


def _usable(values: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.isfinite(values) & (np.abs(values) <= OVERFLOW)


def _count_note(source: str, column: str, bad: int, total: int) -> str:
    return (
        f"{source}: {column}: {bad} of {total} samples missing, not finite or beyond "
        f"±{OVERFLOW:g} (treated as missing)"
    )


def screen_ms(ms: xr.Dataset, masses: Iterable[float]) -> tuple[xr.Dataset, list[str]]:
    """Mask unusable samples of the MS channels at ``masses``; return the data and warnings.

    Raises
    ------
    DemsReadError
        A channel at one of ``masses`` holds no usable sample.
    """
    source = ms.attrs.get("source_file", "MS data")
    signal = np.asarray(ms["signal"].values, dtype=float)
    channel_mass = np.asarray(ms["mass"].values, dtype=float)
    usable = _usable(signal)
    notes = []
    for mass in sorted(set(masses)):
        rows = np.flatnonzero(channel_mass == mass)
        for row in rows:
            total = int(np.isfinite(ms["time"].values[row]).sum()) if "time" in ms else 0
            good = int(usable[row].sum())
            if good == 0:
                raise DemsReadError(source, f"channel m/z {mass:g} holds no usable value")
            if good < max(total, 1):
                notes.append(_count_note(source, f"m/z {mass:g}", total - good, total))
    if usable.all():
        return ms, notes
    return ms.assign(signal=ms["signal"].where(usable)), notes


def screen_ec(ec: xr.Dataset) -> tuple[xr.Dataset, list[str]]:
    """Mask unusable potential/current samples of an EC record; return it and warnings.

    Raises
    ------
    DemsReadError
        The potential or the current holds no usable sample.
    """
    source = ec.attrs.get("source_file", "EC data")
    notes = []
    for column in EC_COLUMNS:
        if column not in ec:
            continue
        usable = _usable(np.asarray(ec[column].values, dtype=float))
        if not usable.any():
            raise DemsReadError(source, f"the {column} column holds no usable value")
        if not usable.all():
            notes.append(_count_note(source, column, int((~usable).sum()), usable.size))
            ec = ec.assign({column: ec[column].where(usable)})
    return ec, notes


def check_separable(
    factors: Mapping[str, Mapping[float, float]],
    channel_masses: Iterable[float],
    calibration: str | None,
) -> list[str]:
    """Check that the sensitivity matrix of the used m/z separates every gas; return warnings.

    Raises
    ------
    CalibrationError
        The matrix has a lower rank than the number of gases: some gases are calibrated only
        on m/z they share, and their fluxes cannot be told apart.
    """
    present = set(float(m) for m in channel_masses)
    masses = sorted({m for by_mass in factors.values() for m in by_mass} & present)
    matrix = sensitivity_matrix(factors, masses).values
    gases = list(factors)
    rank = int(np.linalg.matrix_rank(matrix)) if matrix.size else 0
    where = calibration or "calibration"
    if rank < len(gases):
        raise CalibrationError(
            f"{where}: gases {', '.join(gases)} cannot be separated with m/z "
            f"{', '.join(f'{m:g}' for m in masses)} (sensitivity matrix of rank {rank} for "
            f"{len(gases)} gases): calibrate each gas on an m/z of its own, or report fewer "
            "gases (--gas)"
        )
    condition = float(np.linalg.cond(matrix))
    if condition > CONDITION_WARNING:
        return [
            f"{where}: the sensitivity matrix is ill-conditioned (condition number "
            f"{condition:.3g}): the gases' fluxes are poorly separated"
        ]
    return []
