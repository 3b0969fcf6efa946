"""The views of a ``dems process`` result: its store and ``summary.json`` as one page.

Adapters from the result dataset (``docs/conventions.md``, "DEMS result") and the summary to
the inputs of the :mod:`dems.plots` views, and the report page used by ``--html``/``--png``
and ``operando serve``. No I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import holoviews as hv
import numpy as np
import xarray as xr

from dems.plots import Onsets, cumulative_gas, flux_vs_potential, flux_vs_time, ion_currents

__all__ = ["grid_currents", "onsets_from_summary", "process_report", "result_flux"]


def result_flux(result: xr.Dataset) -> xr.DataArray:
    """Return the ``flux`` of a DEMS result store with the coordinates the flux views use.

    Parameters
    ----------
    result
        Result of ``operando dems process`` (``docs/conventions.md``): ``flux(gas, time)`` in
        mol/s and ``potential``, ``cycle``, ``direction`` along ``time`` (lazy or in memory).

    Returns
    -------
    xarray.DataArray
        ``flux(gas, time)`` with the coordinates ``potential`` (V), ``cycle`` (samples before
        the first cycle dropped; no ``cycle`` when the EC file has no cycle numbers) and
        ``charge`` (a charge half-cycle, ``direction == +1``, while an anodic current flows,
        ``current > 0``: the rest after a potential hold is not charge), as expected by
        :func:`flux_vs_time`, :func:`flux_vs_potential` and :func:`cumulative_gas`. Only the
        1-D variables along ``time`` are read; ``flux`` stays lazy.

    Raises
    ------
    KeyError
        ``result`` has no ``flux`` (processed without a calibration).
    """
    if "flux" not in result:
        raise KeyError("the result has no 'flux' (processed without --calibration)")
    flux = result["flux"]
    coords = {"potential": ("time", np.asarray(result["potential"]), {"units": "V"})}
    if "direction" in result:
        charging = np.asarray(result["direction"]) > 0
        if "current" in result:
            charging &= np.asarray(result["current"]) > 0
        coords["charge"] = ("time", charging)
    flux = flux.assign_coords(coords)
    cycle = np.asarray(result["cycle"], dtype=float) if "cycle" in result else np.array([])
    if np.isfinite(cycle).any():  # an EC file without cycle numbers: no cycle coordinate
        flux = flux.assign_coords(cycle=("time", cycle)).isel(time=np.isfinite(cycle))
        flux = flux.assign_coords(cycle=flux["cycle"].astype(int))
    return flux


def onsets_from_summary(summary: Mapping[str, Any]) -> tuple[Onsets, dict[int, Onsets]]:
    """Onsets of a DEMS ``summary.json`` in the form :func:`flux_vs_potential` takes.

    Parameters
    ----------
    summary
        Summary written by ``operando dems process`` (``onsets`` of the first charge and,
        under ``cycles``, ``{"cycle": n, "onsets": {...}}`` per cycle).

    Returns
    -------
    onsets, cycle_onsets
        ``{gas: {"potential_V", "uncertainty_V", "method"}}`` (V; ``None`` when no onset) and
        the same per cycle number.
    """

    def simple(entries: Mapping[str, Any]) -> Onsets:
        return {
            str(gas): {
                "potential_V": entry.get("potential_V"),
                "uncertainty_V": entry.get("uncertainty_V"),
                "method": entry.get("method", ""),
            }
            for gas, entry in entries.items()
            if isinstance(entry, Mapping)
        }

    per_cycle = {
        int(item["cycle"]): simple(item.get("onsets", {}))
        for item in summary.get("cycles", [])
        if isinstance(item, Mapping) and item.get("cycle") is not None
    }
    return simple(summary.get("onsets", {})), per_cycle


def grid_currents(result: xr.Dataset, *, stacked: bool = False) -> hv.Overlay | hv.Layout:
    """Background-corrected ion currents of a DEMS result against electrode time.

    Parameters
    ----------
    result
        DEMS result with ``signal_grid(mass, time)`` (A) and ``potential(time)`` (V).
    stacked
        Potential in a panel below instead of on a twin axis (for PNG figures).

    Returns
    -------
    holoviews.Overlay or holoviews.Layout
        One curve per m/z (``M32`` …, linear axis: corrected currents can be negative).
    """
    grid = result["signal_grid"]
    ms = xr.Dataset(
        {"signal": grid.rename(mass="channel")},
        coords={"time": grid["time"].broadcast_like(grid).rename(mass="channel")},
    )
    ms = ms.assign_coords(channel=[f"M{m:g}" for m in grid["mass"].values])
    ms["signal"].attrs["units"] = grid.attrs.get("units", "A")
    ms.attrs["quantity"] = "corrected ion current"
    ec = xr.Dataset({"potential": result["potential"]})
    return ion_currents(ms, ec, logy=False, stacked=stacked)


def process_report(
    result: xr.Dataset, summary: Mapping[str, Any] | None = None, *, static: bool = False
) -> hv.Layout:
    """Every view of a ``dems process`` result on one page.

    Parameters
    ----------
    result
        DEMS result (see :func:`result_flux`). Without ``flux`` (no calibration) the page shows
        the background-corrected ion currents on the grid instead.
    summary
        Its ``summary.json`` (onsets per charge); ``None`` draws no onset markers.
    static
        Layout for a PNG figure (matplotlib): last cycle only, potential in a panel below.

    Returns
    -------
    holoviews.Layout
        One column: flux against potential per charge (cycle slider) with the onsets and their
        uncertainty bands, fluxes and potential against time, gas evolved per cycle.
    """
    onsets, cycle_onsets = onsets_from_summary(summary or {})
    if "flux" not in result:
        return hv.Layout([grid_currents(result, stacked=static)]).cols(1)
    flux = result_flux(result)
    against_potential = flux_vs_potential(flux, onsets, cycle_onsets=cycle_onsets)
    if static:
        against_potential = against_potential.last
    panels = [against_potential, flux_vs_time(flux, stacked=static), cumulative_gas(flux)]
    return hv.Layout(panels).cols(1 if not static else 2)
