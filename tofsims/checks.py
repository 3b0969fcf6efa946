"""Input checks before a CEI thickness is reported: a depth profile of a surface film.

Two situations give a confident-looking but meaningless "CEI thickness":

* a **static acquisition** (no sputter beam, e.g. a SurfaceLab "2D" export): the profile shows
  only beam damage. Recognised from the file: SurfaceLab's ``acquisition`` attribute (first
  point at half a scan, not 0 s), a final fluence below the static limit (10¹³ ions/cm²), or a
  ``properties.txt`` whose ``Analysis.SputterTime`` is 0 s;
* a **buried marker**: a fragment whose maximum lies at an interior interface (PO3− at a
  MAPI/SnO2 interface) is not a surface film. A surface film's marker rises within the surface
  transient and stays high over the film; a buried one is low over a long stretch first. The
  marker is flagged when it needs more depth to reach half its maximum than it then stays
  above half (``rise_50 > fall_50 − rise_50``), or when the bulk marker has already reached
  half its plateau before the marker peaks.

:func:`static_acquisition` works on coordinates and attributes only; the marker check is split
into lazy numbers (:func:`surface_marker_diagnostics`) and a verdict on the computed numbers
(:func:`surface_marker_warning`), so nothing is computed behind the caller's back.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from tofsims.profiles import gaussian_smooth, rechunk_data

__all__ = [
    "STATIC_FLUENCE_LIMIT",
    "static_acquisition",
    "surface_marker_diagnostics",
    "surface_marker_warning",
]

#: Primary-ion fluence (ions/cm²) below which an acquisition is static SIMS (Benninghoven's
#: static limit is commonly quoted as 10¹²–10¹³ ions/cm²).
STATIC_FLUENCE_LIMIT = 1e13


def static_acquisition(data: xr.Dataset | xr.DataArray) -> str | None:
    """Tell why ``data`` looks like a static (non-depth) acquisition, or None.

    Uses only attributes and in-memory coordinates: ``acquisition == "static"`` (SurfaceLab
    reader), the last ``fluence`` value below :data:`STATIC_FLUENCE_LIMIT`, or a
    ``sputter_time_reason`` saying ``Analysis.SputterTime`` is 0 s (GRD reader).
    """
    attrs = data.attrs
    if str(attrs.get("acquisition", "")).lower() == "static":
        return "static acquisition (the export's first point is not at 0 s sputter time)"
    if "fluence" in data.coords and data["fluence"].ndim == 1:
        final = float(np.nanmax(np.asarray(data["fluence"].values, dtype=float)))
        if np.isfinite(final) and final < STATIC_FLUENCE_LIMIT:
            return (
                f"static acquisition: the primary-ion fluence reaches only {final:.3g} ions/cm² "
                f"(< {STATIC_FLUENCE_LIMIT:.0e}, the static limit): no depth profile"
            )
    reason = str(attrs.get("sputter_time_reason", ""))
    if "is 0 s" in reason:
        return f"static acquisition? {reason}"
    return None


def _rise(profile: np.ndarray, level: np.ndarray) -> np.ndarray:
    reached = profile >= level[..., None]
    return np.where(reached.any(axis=-1), np.argmax(reached, axis=-1), np.nan)


def _diagnostics_kernel(
    marker: np.ndarray, bulk: np.ndarray, sigma: float, tail: float
) -> np.ndarray:
    m = gaussian_smooth(np.nan_to_num(marker), sigma)
    peak = np.argmax(m, axis=-1)
    top = np.max(m, axis=-1)
    rise = _rise(m, top / 2)
    after = np.arange(m.shape[-1]) > peak[..., None]
    below = after & (m <= top[..., None] / 2)
    fall = np.where(below.any(axis=-1), np.argmax(below, axis=-1), np.nan)
    has_bulk = ~np.isnan(bulk).all(axis=-1)
    b = gaussian_smooth(np.nan_to_num(bulk), sigma)
    n_tail = max(round(tail * b.shape[-1]), 3)
    bulk_half = np.where(has_bulk, _rise(b, b[..., -n_tail:].mean(axis=-1) / 2), np.nan)
    return np.stack([peak.astype(float), rise, fall, bulk_half], axis=-1)


def surface_marker_diagnostics(
    marker: xr.DataArray,
    bulk: xr.DataArray | None = None,
    *,
    smooth_scans: float = 2.0,
    tail_fraction: float = 0.2,
) -> xr.Dataset:
    """Scan indices that tell a surface film from a buried layer (lazy).

    Parameters
    ----------
    marker, bulk
        Raw counts of the layer marker and (optionally) of the bulk marker, with ``scan``.
    smooth_scans
        Gaussian σ (scans) before the indices are read.
    tail_fraction
        Deepest share of the bulk profile whose mean is its plateau.

    Returns
    -------
    xarray.Dataset
        ``peak``, ``rise_50`` (first scan at half the maximum), ``fall_50`` (first scan after
        the peak back at half), ``bulk_50`` (first scan where the bulk marker reaches half its
        plateau; NaN without bulk) — fractional scan indices, NaN when never reached.
    """
    drop = ("fragment", "peak", "peak_label", "mass_center", "kind", "mass_low", "mass_high")
    marker = rechunk_data(marker, {"scan": -1}).drop_vars(drop, errors="ignore")
    bulk = (
        xr.full_like(marker, np.nan, dtype=float)
        if bulk is None
        else rechunk_data(bulk, {"scan": -1}).drop_vars(drop, errors="ignore")
    )
    out = xr.apply_ufunc(
        _diagnostics_kernel,
        marker,
        bulk,
        kwargs={"sigma": float(smooth_scans), "tail": float(tail_fraction)},
        input_core_dims=[["scan"], ["scan"]],
        output_core_dims=[["quantity"]],
        dask="parallelized",
        output_dtypes=[float],
        dask_gufunc_kwargs={"output_sizes": {"quantity": 4}},
    )
    names = ("peak", "rise_50", "fall_50", "bulk_50")
    return xr.Dataset({name: out.isel(quantity=i, drop=True) for i, name in enumerate(names)})


def surface_marker_warning(
    diagnostics: xr.Dataset, marker: str, bulk: str | None = None
) -> str | None:
    """Verdict on computed :func:`surface_marker_diagnostics` of one profile, or None if fine."""
    peak, rise, fall, bulk_half = (
        float(diagnostics[name]) for name in ("peak", "rise_50", "fall_50", "bulk_50")
    )
    if np.isfinite(bulk_half) and bulk_half <= peak:
        return (
            f"{marker} peaks at scan {peak:.0f}, after {bulk} has reached half its plateau "
            f"(scan {bulk_half:.0f}): its maximum is buried, not a surface film"
        )
    if np.isfinite(rise) and np.isfinite(fall) and rise > fall - rise:
        return (
            f"{marker} reaches half its maximum only at scan {rise:.0f} and falls below it at "
            f"scan {fall:.0f}: its maximum is buried (an interface layer), not a surface film"
        )
    return None
