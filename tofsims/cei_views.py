"""The views of a ``tofsims cei`` result: profiles with interfaces, and the thickness map.

Turns a CEI ``summary.json`` into interface markers and assembles the report page used by
``--html``/``--png`` and ``operando serve`` from the :mod:`tofsims.plots` views. No I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import holoviews as hv
import numpy as np
import xarray as xr

from operando_core.formatting import finite, format_uncertain
from tofsims.plots import depth_profile, peak_names, select_peaks, thickness_map

__all__ = ["cei_headline", "cei_interfaces", "cei_report", "interfaces_on"]


def cei_interfaces(summary: Mapping[str, Any]) -> dict[str, float]:
    """Interface depths of a CEI ``summary.json``, as ``interfaces`` for :func:`depth_profile`.

    Parameters
    ----------
    summary
        Summary written by ``operando tofsims cei`` (``cei_thickness_nm``,
        ``two_marker_crossing_nm``, ``coating_thickness_nm``, ``input``).

    Returns
    -------
    dict
        ``{label: depth in nm}`` for every interface that was determined (``null`` values are
        left out), e.g. ``{"CEI (LiF2-) 10.08 ± 0.15 nm": 10.08, "LiF2-/NiO2- 10.2 nm": 10.20}``;
        a coating (which lies under the CEI) is marked at its lower boundary, CEI + coating.
    """
    given = summary.get("input", {})
    marker, bulk = given.get("marker", "marker"), given.get("bulk", "bulk")
    block = summary.get("cei_thickness_nm") or {}
    cei = block.get("mean")
    interfaces = {}
    if finite(cei):
        interfaces[f"CEI ({marker}) {_with_uncertainty(cei, block.get('uncertainty'))}"] = float(
            cei
        )
    crossing = (summary.get("two_marker_crossing_nm") or {}).get("value")
    if finite(crossing):
        interfaces[f"{marker}/{bulk} {float(crossing):.3g} nm"] = float(crossing)
    coating = summary.get("coating_thickness_nm")
    if finite(coating) and finite(cei):
        # the coating lies under the CEI: its lower boundary is at CEI + coating thickness
        thick = _with_uncertainty(coating, summary.get("coating_thickness_uncertainty_nm"))
        interfaces[f"coating end ({thick} thick)"] = float(cei) + float(coating)
    return interfaces


def _with_uncertainty(value: float, uncertainty: Any) -> str:
    """``"10.08 ± 0.15 nm"`` (two decimals), or ``"10.1 nm"`` without an uncertainty."""
    if finite(uncertainty):
        return format_uncertain(value, uncertainty, 2, "nm")
    return f"{float(value):.3g} nm"


def cei_headline(summary: Mapping[str, Any]) -> tuple[float | None, float | None] | None:
    """``(mean, uncertainty)`` of the CEI thickness in nm, as the summary states it.

    The value the tables and the console show (``cei_thickness_nm.mean`` ± its combined
    uncertainty), for titling the map with the same statistic; ``None`` without one.
    """
    block = summary.get("cei_thickness_nm") or {}
    if not finite(block.get("mean")):
        return None
    spread = block.get("uncertainty")
    return float(block["mean"]), float(spread) if finite(spread) else None


def interfaces_on(
    profile: xr.Dataset, interfaces: Mapping[str, float], axis: str
) -> dict[str, float]:
    """Move interfaces given as depths (nm) onto another axis of the profile.

    Parameters
    ----------
    profile
        Depth profile with a ``depth`` coordinate (nm) along ``scan``.
    interfaces
        ``{label: depth in nm}`` (:func:`cei_interfaces`).
    axis
        ``"depth"``, ``"sputter_time"`` or ``"scan"``: the positions are interpolated from
        the profile's depth to this coordinate (the scan index for ``"scan"``).

    Returns
    -------
    dict
        ``{label: position}`` in the units of ``axis``; empty without a depth coordinate.
    """
    if axis == "depth" or not interfaces:
        return dict(interfaces)
    if "depth" not in profile.coords:
        return {}
    depth = np.asarray(profile["depth"], float)
    target = np.asarray(profile[axis] if axis in profile.coords else profile["scan"], float)
    order = np.argsort(depth)
    return {
        label: float(np.interp(position, depth[order], target[order]))
        for label, position in interfaces.items()
    }


def cei_report(
    profile: xr.Dataset,
    summary: Mapping[str, Any] | None = None,
    thickness: xr.DataArray | None = None,
    *,
    static: bool = False,
    max_peaks: int = 8,
) -> hv.Layout:
    """Every view of a ``tofsims cei`` result on one page.

    Parameters
    ----------
    profile
        Depth profile ``Dataset(scan, peak)`` with a ``depth`` coordinate (nm) — a SurfaceLab
        export or a volume summed over pixels.
    summary
        The command's ``summary.json``; its interfaces are drawn on the profiles.
    thickness
        CEI thickness map ``DataArray(y, x)`` in nm, or ``None`` (a depth profile has no map).
    static
        Layout for a PNG figure (matplotlib): the log profile only, above the map and histogram.
    max_peaks
        Most curves per profile: the marker and bulk fragments of the summary first, then the
        single peaks with the most counts (SurfaceLab exports hold a hundred or more).

    Returns
    -------
    holoviews.Layout
        Depth profiles (log, and normalised to their maximum) with the interfaces, and the
        thickness map with its colour bar and histogram when ``thickness`` is given.
    """
    axis = "depth" if "depth" in profile.coords else "sputter_time"
    interfaces = cei_interfaces(summary or {}) if axis == "depth" else None
    peaks = _report_peaks(profile, (summary or {}).get("input", {}), max_peaks)
    panels: list[Any] = [depth_profile(profile, peaks, axis=axis, interfaces=interfaces)]
    if not static:
        panels.append(
            depth_profile(
                profile, peaks, axis=axis, logy=False, normalise="max", interfaces=interfaces
            )
        )
    if thickness is not None:
        panels += list(thickness_map(thickness, headline=cei_headline(summary or {})))
    layout = hv.Layout(panels).cols(1)
    return layout.opts(fig_inches=(8, 10), sublabel_format="", backend="matplotlib")


def _report_peaks(profile: xr.Dataset, given: Mapping[str, Any], max_peaks: int) -> list[str]:
    """Peak labels for a report: marker and bulk first, then the most intense single peaks."""
    names = peak_names(profile)
    singles = select_peaks(profile, None)
    totals = np.asarray(profile["intensity"].isel(peak=singles).sum("scan"), dtype=float)
    by_counts = [singles[i] for i in np.argsort(-np.nan_to_num(totals), kind="stable")]
    fragments = [str(f) for f in profile["fragment"].values] if "fragment" in profile.coords else []
    first = [fragments.index(f) for f in (given.get("marker"), given.get("bulk")) if f in fragments]
    chosen = list(dict.fromkeys([*first, *by_counts]))[:max_peaks]
    return [names[i] for i in sorted(chosen)]
