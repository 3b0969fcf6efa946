"""Summaries of opened datasets for ``operando dems inspect`` and reports.

Pure functions: they look at an already opened :class:`xarray.Dataset` and
return plain dictionaries (JSON-serialisable).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

__all__ = ["describe_ec", "describe_ms"]


def _finite_count(values: np.ndarray) -> int:
    return (
        int(np.count_nonzero(np.isfinite(values))) if values.dtype.kind == "f" else int(values.size)
    )


def _common(ds: xr.Dataset) -> dict[str, Any]:
    return {
        "format": ds.attrs.get("format"),
        "source_file": ds.attrs.get("source_file"),
        "start_time": ds.attrs.get("start_time"),
        "timezone": ds.attrs.get("timezone"),
        "timezone_source": ds.attrs.get("timezone_source"),
    }


def describe_ms(ds: xr.Dataset) -> dict[str, Any]:
    """Describe a mass-spectrometer dataset (see ``docs/conventions.md``).

    Returns
    -------
    dict
        ``format``, ``start_time``, ``duration_s`` and one entry per channel with its
        label, m/z, units and number of valid samples.
    """
    if ds.attrs.get("layout") == "mass scan":
        return _describe_mass_scans(ds)
    time = np.asarray(ds["time"].values, dtype=float)
    signal = np.asarray(ds["signal"].values)
    finite_time = time[np.isfinite(time)]
    duration = float(finite_time.max() - finite_time.min()) if finite_time.size else None
    channels = []
    for i, name in enumerate(ds["channel"].values.tolist()):
        mass = float(ds["mass"].values[i]) if "mass" in ds.coords else float("nan")
        channels.append(
            {
                "name": str(name),
                "label": str(ds["label"].values[i]) if "label" in ds.coords else str(name),
                "mass": None if not np.isfinite(mass) else mass,
                "units": ds["signal"].attrs.get("units"),
                "samples": _finite_count(signal[i]),
            }
        )
    return {**_common(ds), "kind": "ms", "duration_s": duration, "channels": channels}


def _describe_mass_scans(ds: xr.Dataset) -> dict[str, Any]:
    """Describe a PV MassSpec scan export: ``signal(scan, mass)`` with ``time(scan)``."""
    time = np.asarray(ds["time"].values, dtype=float)
    finite = time[np.isfinite(time)]
    mass = np.asarray(ds["mass"].values, dtype=float)
    valid = np.isfinite(np.asarray(ds["signal"].values, dtype=float)).any(axis=1)
    return {
        **_common(ds),
        "kind": "ms",
        "layout": "mass scan",
        "duration_s": float(finite.max() - finite.min()) if finite.size else None,
        "scans": int(valid.sum()),
        "masses": int(mass.size),
        "mass_range": [float(np.nanmin(mass)), float(np.nanmax(mass))],
        "units": ds["signal"].attrs.get("units"),
    }


def describe_ec(ds: xr.Dataset) -> dict[str, Any]:
    """Describe a potentiostat dataset (see ``docs/conventions.md``).

    Returns
    -------
    dict
        ``format``, ``start_time``, ``duration_s``, ``technique``, ``software`` and
        ``ec_lab_version`` (None when the file does not say), the active mass
        and one entry per column with units and number of valid samples.
    """
    time = np.asarray(ds["time"].values, dtype=float)
    finite = time[np.isfinite(time)]
    duration = float(finite.max() - finite.min()) if finite.size else None
    columns = [
        {
            "name": str(name),
            "long_name": var.attrs.get("long_name", str(name)),
            "units": var.attrs.get("units"),
            "samples": _finite_count(np.asarray(var.values)),
        }
        for name, var in ds.data_vars.items()
    ]
    mass = ds.attrs.get("characteristic_mass_g")
    return {
        **_common(ds),
        "kind": "ec",
        "technique": ds.attrs.get("technique"),
        "software": ds.attrs.get("software") or None,
        "ec_lab_version": ds.attrs.get("ec_lab_version") or None,
        "characteristic_mass_g": None if mass is None or not np.isfinite(mass) else float(mass),
        "duration_s": duration,
        "samples": int(ds.sizes.get("time", 0)),
        "columns": columns,
    }
