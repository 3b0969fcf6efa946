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

from dems.plots import (
    Amounts,
    Onsets,
    cumulative_gas,
    ec_ms,
    flux_vs_potential,
    ion_currents,
)
from operando_core.formatting import finite

__all__ = [
    "amounts_from_summary",
    "grid_currents",
    "onsets_from_summary",
    "per_gram",
    "process_report",
    "result_ec",
    "result_flux",
]


def per_gram(result: xr.Dataset) -> bool:
    """Say whether the active mass of a result is known (fluxes and amounts per gram)."""
    mass = result.attrs.get("mass_g")
    return isinstance(mass, int | float | np.floating) and bool(np.isfinite(mass) and mass > 0)


def result_flux(result: xr.Dataset, *, specific: bool = False) -> xr.DataArray:
    """Return the ``flux`` of a DEMS result store with the coordinates the flux views use.

    Parameters
    ----------
    result
        Result of ``operando dems process`` (``docs/conventions.md``): ``flux(gas, time)`` in
        mol/s and ``potential``, ``cycle``, ``direction`` along ``time`` (lazy or in memory).
    specific
        Divide by the active mass (``mass_g`` attribute) when it is known: mol/(s·g).

    Returns
    -------
    xarray.DataArray
        ``flux(gas, time)`` in mol/s (mol/(s·g) when ``specific`` and the mass is known) with
        the coordinates ``potential`` (V, its ``reference_electrode`` attribute when
        recorded), ``cycle`` (samples before
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
    if specific and per_gram(result):
        mass = float(result.attrs["mass_g"])
        flux = (flux / mass).assign_attrs({**flux.attrs, "units": "mol/(s·g)", "mass_g": mass})
    reference = {"reference_electrode": result.attrs.get("reference_electrode", "")}
    coords = {"potential": ("time", np.asarray(result["potential"]), {"units": "V", **reference})}
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


def result_ec(result: xr.Dataset) -> xr.Dataset:
    """Potential and current of a DEMS result on its time axis, for :func:`dems.plots.ec_ms`.

    Parameters
    ----------
    result
        Result of ``operando dems process`` with ``potential`` (V) and, when recorded,
        ``current`` (mA) along ``time``.

    Returns
    -------
    xarray.Dataset
        ``potential`` (its ``reference_electrode`` attribute when recorded) and ``current``.
    """
    names = [name for name in ("potential", "current") if name in result]
    ec = result[names].load()
    ec["potential"].attrs.update(
        units="V", reference_electrode=result.attrs.get("reference_electrode", "")
    )
    return ec


def amounts_from_summary(summary: Mapping[str, Any], *, specific: bool = False) -> Amounts:
    """Gas evolved per cycle with its uncertainty, from a DEMS ``summary.json``.

    Parameters
    ----------
    summary
        Summary written by ``operando dems process`` (``cycles[].evolved``).
    specific
        Per gram (``umol_per_g``) instead of absolute amounts (``umol``).

    Returns
    -------
    dict
        ``{cycle: {gas: (amount, uncertainty)}}`` in mol (mol/g when ``specific``), the
        uncertainty ``None`` when the summary has none; an amount that is ``null`` in the
        summary is left out.
    """
    key = "umol_per_g" if specific else "umol"
    amounts: dict[int, dict[str, tuple[float, float | None]]] = {}
    for item in summary.get("cycles", []):
        if not isinstance(item, Mapping) or item.get("cycle") is None:
            continue
        per_gas = {}
        for gas, evolved in (item.get("evolved") or {}).items():
            value, spread = evolved.get(key), evolved.get(f"{key}_uncertainty")
            if finite(value):
                per_gas[str(gas)] = (value * 1e-6, spread * 1e-6 if finite(spread) else None)
        if per_gas:
            amounts[int(item["cycle"])] = per_gas
    return amounts


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
) -> Any:
    """Every view of a ``dems process`` result on one page (or one print figure).

    Fluxes and amounts are per gram of active material when the result knows the mass.

    Parameters
    ----------
    result
        DEMS result (see :func:`result_flux`). Without ``flux`` (no calibration) the page shows
        the background-corrected ion currents on the grid instead.
    summary
        Its ``summary.json``: onsets per charge and the amounts per cycle with their
        uncertainty; ``None`` draws no onset markers and no ± whiskers.
    static
        The figure for ``--png`` instead of the page: a matplotlib figure
        (:func:`dems.figures.process_figure`), or a HoloViews layout without ``flux``.

    Returns
    -------
    holoviews.Layout or matplotlib.figure.Figure
        One column: the standard EC-MS figure (fluxes over potential and current on one time
        axis), flux against potential per charge (cycle slider) with the onsets and their
        uncertainty bands, gas evolved per cycle with ±.
    """
    onsets, cycle_onsets = onsets_from_summary(summary or {})
    if "flux" not in result:
        return hv.Layout([grid_currents(result, stacked=static)]).cols(1)
    specific = per_gram(result)
    flux = result_flux(result, specific=specific)
    amounts = amounts_from_summary(summary or {}, specific=specific) or None
    ec = result_ec(result)
    if static:
        from dems.figures import process_figure

        return process_figure(flux, ec, onsets, amounts)
    against_potential = flux_vs_potential(flux, onsets, cycle_onsets=cycle_onsets)
    panels = [*ec_ms(flux, ec), against_potential, *cumulative_gas(flux, amounts)]
    return hv.Layout(panels).cols(1)
