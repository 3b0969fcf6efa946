"""Summaries of opened TOF-SIMS datasets for ``operando tofsims inspect`` and reports.

Pure functions: they look only at coordinates and attributes of an already opened
:class:`xarray.Dataset` (never at dask-backed data, so nothing is computed) and return plain
JSON-serialisable dictionaries; numbers that cannot be determined are ``None``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

__all__ = ["describe"]

#: Attributes never repeated in summaries (provenance is reported separately, headers are long).
SKIPPED_ATTRS = frozenset({"header_json", "source_file", "format", "reader", "reader_version"})
#: Per-peak/per-fragment coordinates reported when present.
PEAK_FIELDS = (
    "peak_label",
    "fragment",
    "kind",
    "mass_low",
    "mass_center",
    "mass_high",
    "interval_id",
    "file_number",
)


def _plain(value: Any) -> Any:
    """Convert numpy scalars to Python; NaN/inf -> ``None``."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _range(ds: xr.Dataset, name: str) -> dict[str, Any] | None:
    if name not in ds.coords:
        return None
    values = np.asarray(ds[name].values, dtype=float)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return {
            "min": None,
            "max": None,
            "units": ds[name].attrs.get("units"),
            "note": ds[name].attrs.get("note", "no finite values"),
        }
    return {
        "min": float(finite.min()),
        "max": float(finite.max()),
        "units": ds[name].attrs.get("units"),
    }


def _peaks(ds: xr.Dataset) -> list[dict[str, Any]]:
    dim = "peak" if "peak" in ds.dims else "fragment" if "fragment" in ds.dims else None
    if dim is None:
        return []
    fields = [f for f in PEAK_FIELDS if f in ds.coords and ds[f].dims == (dim,)]
    if dim == "fragment" and "fragment" not in fields:
        fields.insert(0, "fragment")
    rows = []
    for index in range(ds.sizes[dim]):
        rows.append({field: _plain(ds[field].values[index]) for field in fields})
    return rows


def describe(ds: xr.Dataset) -> dict[str, Any]:
    """Describe a TOF-SIMS dataset of any reader (see ``docs/conventions.md``).

    Returns
    -------
    dict
        ``format``, ``source_file``, ``reader``, ``dimensions`` (name -> size),
        ``variables`` (dims, dtype, units, lazy), ``peaks`` (one entry per peak/fragment with
        label, our notation, kind and masses in u), ``sputter_time`` and ``mz`` ranges (or
        ``None``), and the remaining scalar ``attributes``.
    """
    variables = {
        name: {
            "dims": list(var.dims),
            "dtype": str(var.dtype),
            "units": var.attrs.get("units"),
            "lazy": not isinstance(var.data, np.ndarray),
        }
        for name, var in ds.data_vars.items()
    }
    attributes = {k: _plain(v) for k, v in ds.attrs.items() if k not in SKIPPED_ATTRS}
    return {
        "format": ds.attrs.get("format"),
        "source_file": ds.attrs.get("source_file"),
        "reader": ds.attrs.get("reader"),
        "dimensions": {str(k): int(v) for k, v in ds.sizes.items()},
        "variables": variables,
        "peaks": _peaks(ds),
        "sputter_time": _range(ds, "sputter_time"),
        "mz": _range(ds, "mz"),
        "attributes": attributes,
    }
