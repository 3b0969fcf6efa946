"""Normalisation of TOF-SIMS volumes and depth profiles (raw counts always kept).

Methods (``docs/methods.md``, "Normalisation"; reference methods.md §B4):

``raw``
    the counts themselves;
``total``
    counts / total ion counts of the same scan (and pixel); the total is the profile's
    ``total`` peak when present, a ``total`` variable of a volume when present, otherwise the sum
    over all listed fragments (recorded in ``total_source``);
``reference``
    counts / counts of a reference (bulk) ion, e.g. ``NiO2-``;
``max``
    counts / their maximum along ``scan`` (per fragment, and per pixel for volumes).

Every ratio whose denominator is 0 (0/0 or x/0) becomes NaN — SurfaceLab writes ``inf``.
"""

from __future__ import annotations

import xarray as xr

from tofsims.errors import AnalysisError
from tofsims.profiles import select_fragment

__all__ = ["METHODS", "normalise"]

METHODS = ("raw", "total", "reference", "max")


def _signal_name(ds: xr.Dataset) -> str:
    for name in ("counts", "intensity"):
        if name in ds.data_vars:
            return name
    raise AnalysisError("no 'counts' (volume) or 'intensity' (profile) variable to normalise")


def _channel_dim(signal: xr.DataArray) -> str:
    return "peak" if "peak" in signal.dims else "fragment"


def _total(ds: xr.Dataset, signal: xr.DataArray) -> tuple[xr.DataArray, str]:
    dim = _channel_dim(signal)
    if dim == "peak" and "kind" in signal.coords:
        totals = [i for i, k in enumerate(signal["kind"].values) if str(k) == "total"]
        if totals:
            return signal.isel(peak=totals[0], drop=True), "total column"
    if "total" in ds.data_vars:
        return ds["total"], "total variable"
    if dim == "peak" and "kind" in signal.coords:
        singles = signal.where(signal["kind"] == "single", 0.0)
        return singles.sum(dim), "sum of single peaks"
    return signal.sum(dim), "sum of listed fragments"


def _safe_divide(numerator: xr.DataArray, denominator: xr.DataArray) -> xr.DataArray:
    """Divide, with NaN where the denominator is 0 (no inf, lazy on dask)."""
    denominator = denominator.astype(float)
    return numerator.astype(float) / denominator.where(denominator != 0)


def normalise(ds: xr.Dataset, method: str = "raw", *, reference: str | None = None) -> xr.Dataset:
    """Add a ``normalised`` variable beside the raw ``counts``/``intensity``.

    Parameters
    ----------
    ds
        Volume (``counts(fragment, scan, y, x)``) or profile (``intensity(scan, peak)`` or
        ``intensity(scan, fragment)``).
    method
        ``"raw"``, ``"total"``, ``"reference"`` or ``"max"``.
    reference
        Fragment of the reference ion (our notation) for ``method="reference"``.

    Returns
    -------
    xarray.Dataset
        ``ds`` with ``normalised`` (float64; attrs ``normalisation``, ``units``). Lazy on dask.
    """
    if method not in METHODS:
        raise AnalysisError(f"unknown normalisation {method!r} (use one of {', '.join(METHODS)})")
    name = _signal_name(ds)
    signal = ds[name]
    attrs = {"normalisation": method}
    if method == "raw":
        out = signal.astype(float)
        attrs["units"] = signal.attrs.get("units", "counts")
    elif method == "total":
        total, source = _total(ds, signal)
        out = _safe_divide(signal, total)
        attrs |= {"units": "1", "total_source": source}
    elif method == "reference":
        if not reference:
            raise AnalysisError("reference normalisation needs a reference fragment, e.g. NiO2-")
        out = _safe_divide(signal, select_fragment(signal, reference))
        attrs |= {"units": "1", "reference": reference}
    else:
        out = _safe_divide(signal, signal.max("scan"))
        attrs["units"] = "1"
    return ds.assign(normalised=out.assign_attrs(attrs))
