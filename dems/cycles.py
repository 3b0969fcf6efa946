"""Charge and discharge half-cycles of a potentiostat dataset, and gas amounts per cycle.

A sample is *charging* when the current exceeds ``+threshold`` (oxidation of the
cathode), *discharging* below ``−threshold``, *resting* otherwise. A half-cycle is
a run of active samples of one sign; rest samples belong to the half-cycle before
them (samples before the first active one get ``-1``). Half-cycles count from 0.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = ["amount_per_cycle", "half_cycle_kernel", "label_half_cycles", "running_amount"]


def half_cycle_kernel(current: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Half-cycle index and direction (+1 charge, −1 discharge, 0 before any) per sample.

    Parameters
    ----------
    current
        Current (any unit), last axis = time.
    threshold
        Absolute current below which a sample counts as rest (same unit).
    """
    state = np.where(current > threshold, 1, np.where(current < -threshold, -1, 0))
    index = np.empty(current.shape, dtype=np.int64)
    direction = np.empty(current.shape, dtype=np.int64)
    for row in np.ndindex(current.shape[:-1]):
        s = state[row]
        active = np.flatnonzero(s)
        filled = np.zeros_like(s)
        if active.size:
            # forward fill the last active state over rests
            last = np.maximum.accumulate(np.where(s != 0, np.arange(s.size), -1))
            filled = np.where(last >= 0, s[np.clip(last, 0, None)], 0)
        changes = np.concatenate([[0], (np.diff(filled) != 0) & (filled[1:] != 0)])
        counter = np.cumsum(changes) - (1 if filled[0] == 0 else 0)
        index[row] = np.where(filled == 0, -1, counter)
        direction[row] = filled
    return index, direction


def label_half_cycles(ec: xr.Dataset, threshold_mA: float | None = None) -> xr.Dataset:
    """Add ``half_cycle`` and ``direction`` (+1 charge, −1 discharge) to an EC dataset.

    Parameters
    ----------
    ec
        Potentiostat dataset with ``current`` (mA) on ``time``; dask input stays lazy.
    threshold_mA
        Rest threshold; default 1 % of the largest absolute current.

    Returns
    -------
    xarray.Dataset
        ``ec`` with ``half_cycle`` (int64, −1 before the first active sample) and
        ``direction`` (int64).
    """
    current = ec["current"]
    if threshold_mA is None:
        threshold_mA = 0.01 * abs(current).max()
    if current.chunks is not None:
        current = current.chunk({"time": -1})
    index, direction = xr.apply_ufunc(
        half_cycle_kernel,
        current,
        threshold_mA,
        input_core_dims=[["time"], []],
        output_core_dims=[["time"], ["time"]],
        dask="parallelized",
        output_dtypes=[np.int64, np.int64],
    )
    out = ec.copy()
    out["half_cycle"] = index.assign_attrs(long_name="half-cycle index (0-based, −1 before)")
    out["direction"] = direction.assign_attrs(long_name="+1 charge, −1 discharge")
    return out


def amount_per_cycle(flux: xr.DataArray) -> xr.DataArray:
    """Amount of each gas evolved in each cycle (trapezoidal integral of flux over time).

    Parameters
    ----------
    flux
        ``DataArray(gas, time)`` in mol/s with a ``cycle`` coordinate along ``time``.

    Returns
    -------
    xarray.DataArray
        ``(gas, cycle)`` in mol. Lazy when ``flux`` is dask-backed (only a dask-backed
        ``cycle`` coordinate is read, to know the groups).
    """
    amount = _with_cycles(flux).groupby("cycle").map(lambda part: part.integrate("time"))
    return amount.assign_attrs(units="mol", long_name="gas evolved per cycle")


def running_amount(flux: xr.DataArray) -> xr.DataArray:
    """Amount of each gas evolved since the start of the current cycle (cumulative trapezoid).

    Parameters
    ----------
    flux
        ``DataArray(gas, time)`` in mol/s, optionally with a ``cycle`` coordinate along ``time``.

    Returns
    -------
    xarray.DataArray
        ``(gas, time)`` in mol, restarting at 0 at the first sample of every cycle.
    """
    grouped = _with_cycles(flux).groupby("cycle")
    running = grouped.map(lambda part: part.cumulative_integrate("time"))
    return running.transpose(*flux.dims).assign_attrs(units="mol", long_name="gas evolved in cycle")


def _with_cycles(flux: xr.DataArray) -> xr.DataArray:
    """NaN fluxes as 0 and a ``cycle`` coordinate known in memory (needed to group)."""
    if "cycle" not in flux.coords:
        flux = flux.assign_coords(cycle=("time", np.zeros(flux.sizes["time"], dtype=int)))
    elif flux["cycle"].chunks is not None:
        # The groups must be known to build the graph: read the (small, 1-D) cycle numbers.
        flux = flux.assign_coords(cycle=("time", np.asarray(flux["cycle"])))
    return flux.fillna(0)
