"""What a reconstructed fragment volume holds: variables, coordinates, attributes.

One definition for both writers of a volume store: :func:`tofsims.reconstruct.reconstruct`
turns the layout into an xarray Dataset (:func:`to_dataset`), and the one-pass reader
(:mod:`tofsims.grd_to_volume`) creates the Zarr store from it directly
(:func:`tofsims.io.volume_store.create_volume_store`), without importing xarray — whose
import (with the array libraries it probes: dask, pint …) costs more than binning a
small file. The data model is ``docs/conventions.md`` "TOF-SIMS volume".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import xarray as xr

__all__ = [
    "CORRECTED_ATTRS",
    "INCREASE_ATTRS",
    "SATURATED_ATTRS",
    "VOLUME_DIMS",
    "LayoutVariable",
    "VolumeLayout",
    "placeholder",
    "seconds_per_scan_of",
    "to_dataset",
    "volume_layout",
]

VOLUME_DIMS = ("fragment", "scan", "y", "x")
CORRECTED_ATTRS = {"units": "counts", "long_name": "Poisson-corrected counts"}
SATURATED_ATTRS = {
    "long_name": "a pixel counted in > 0.5 of its live shots (dead-time correction unreliable)"
}
INCREASE_ATTRS = {
    "units": "1",
    "long_name": "dead-time correction: corrected / raw total counts - 1",
}
#: Attributes of the event table a volume keeps.
KEPT_SOURCE_ATTRS = (
    "time_resolution_s",
    "shots_per_pixel",
    "field_of_view_m",
    "polarity",
    "source_file",
    "format",
    "reader",
    "reader_version",
    "properties_file",
)


@dataclass(frozen=True)
class LayoutVariable:
    """One variable: dimension names, values (NumPy, dask or a placeholder), attributes."""

    dims: tuple[str, ...]
    data: Any
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class VolumeLayout:
    """Data variables, coordinates (dimension coordinates included) and attributes."""

    data_vars: dict[str, LayoutVariable]
    coords: dict[str, LayoutVariable]
    attrs: dict[str, Any]

    def add_poisson(
        self, corrected: Any, saturated: Any, increase: Any, dead_time_s: float
    ) -> None:
        """Make ``corrected`` the ``counts``, keeping the raw ones as ``counts_raw``.

        ``increase`` (along ``fragment``): what the correction adds to each fragment's total,
        as a fraction of the raw total.
        """
        self.data_vars["counts_raw"] = self.data_vars["counts"]
        self.data_vars["counts"] = LayoutVariable(VOLUME_DIMS, corrected, dict(CORRECTED_ATTRS))
        self.data_vars["saturated"] = LayoutVariable(VOLUME_DIMS, saturated, dict(SATURATED_ATTRS))
        self.data_vars["dead_time_increase"] = LayoutVariable(
            ("fragment",), increase, dict(INCREASE_ATTRS)
        )
        self.attrs.update(poisson_corrected=1, dead_time_s=float(dead_time_s))


def placeholder(dtype: Any, shape: tuple[int, ...]) -> np.ndarray:
    """Return a zero-stride array of ``shape`` holding the fill value (NaN for floats, else 0).

    Stands for an array written later region by region; it takes no memory.
    """
    fill = np.nan if np.issubdtype(dtype, np.floating) else 0
    return np.broadcast_to(np.array(fill, dtype=dtype), shape)


def volume_layout(
    counts: Any,
    spectrum_parts: Any,
    spectrum: Any,
    fragments: Sequence[str],
    windows: tuple[np.ndarray, np.ndarray, np.ndarray],
    source_attrs: dict[str, Any],
    *,
    sf: float,
    k0: float,
    lateral_bin: int = 1,
    seconds_per_scan: float | None = None,
    block_first_scans: Sequence[int] | None = None,
) -> VolumeLayout:
    """Lay out a volume (see :func:`tofsims.reconstruct.reconstruct` for its content).

    Parameters
    ----------
    counts
        ``(fragment, scan, y, x)`` counts.
    spectrum_parts, spectrum
        ``(block, tof_channel)`` spectra of the blocks of scans and their sum.
    fragments
        Fragment names (our notation).
    windows
        ``(mass, mass_low, mass_high)`` of the fragments, u.
    source_attrs
        Attributes of the event table (:func:`tofsims.io.grd_records.event_attrs`).
    sf, k0
        Calibration applied.
    lateral_bin
        Lateral binning applied.
    seconds_per_scan
        Sputter time per scan (s) for the ``sputter_time`` coordinate; default: the source's
        (:func:`seconds_per_scan_of`).
    block_first_scans
        First scan of each block of ``spectrum_parts`` (coordinate ``block_first_scan``: the
        depth blocks of the peak fits, :mod:`tofsims.peak_fit`).
    """
    n_scans, ny, nx = counts.shape[1:]
    scan = np.arange(n_scans, dtype=np.int64)
    seconds_per_scan, time_source = seconds_per_scan_of(source_attrs, seconds_per_scan)
    per_scan = math.nan if seconds_per_scan is None else seconds_per_scan
    channels = np.arange(spectrum_parts.shape[1], dtype=np.int64)
    time_attrs = {"units": "s", "time_reference": "start"}
    if seconds_per_scan is None:
        time_attrs["reason"] = (
            "unknown: properties.txt holds no sputter time (Analysis.SputterTime); "
            "pass seconds_per_scan"
        )
    mass, low, high = windows
    coords = {
        "fragment": LayoutVariable(("fragment",), np.array(list(fragments))),
        "mass": LayoutVariable(("fragment",), mass, {"units": "u"}),
        "mass_low": LayoutVariable(("fragment",), low, {"units": "u"}),
        "mass_high": LayoutVariable(("fragment",), high, {"units": "u"}),
        "scan": LayoutVariable(("scan",), scan),
        "sputter_time": LayoutVariable(("scan",), scan * per_scan, time_attrs),
        "y": LayoutVariable(("y",), np.arange(ny, dtype=np.int64)),
        "x": LayoutVariable(("x",), np.arange(nx, dtype=np.int64)),
        "tof_channel": LayoutVariable(("tof_channel",), channels, {"units": "channel"}),
        "spectrum_mass": LayoutVariable(
            ("tof_channel",), np.clip(channels - k0, 0, None) ** 2 / sf**2, {"units": "u"}
        ),
    }
    if block_first_scans is not None:
        coords["block_first_scan"] = LayoutVariable(
            ("block",), np.asarray(block_first_scans, dtype=np.int64), {"units": "scan"}
        )
    data_vars = {
        "counts": LayoutVariable(
            VOLUME_DIMS, counts, {"units": "counts", "long_name": "ion counts per voxel and window"}
        ),
        "spectrum": LayoutVariable(
            ("tof_channel",),
            spectrum,
            {"units": "counts", "long_name": "summed spectrum (all events)"},
        ),
        "spectrum_part": LayoutVariable(
            ("block", "tof_channel"),
            spectrum_parts,
            {"units": "counts", "long_name": "spectrum of each block of scans (sum = spectrum)"},
        ),
    }
    attrs = {k: source_attrs[k] for k in KEPT_SOURCE_ATTRS if k in source_attrs}
    attrs.update(
        sf=sf,
        k0=k0,
        lateral_bin=lateral_bin,
        seconds_per_scan=per_scan,
        sputter_time_source=time_source,
        poisson_corrected=0,
        dead_time_s=float(source_attrs.get("dead_time_s", math.nan)),
        raster_y=int(source_attrs["raster_y"]),
        raster_x=int(source_attrs["raster_x"]),
    )
    return VolumeLayout(data_vars, coords, attrs)


def seconds_per_scan_of(
    source_attrs: dict[str, Any], given: float | None
) -> tuple[float | None, str]:
    """Sputter time per scan (s) of a volume and where it came from.

    ``sputter_time`` is ``scan · seconds_per_scan``, the start of each scan
    (``docs/conventions.md``).

    Parameters
    ----------
    source_attrs
        Attributes of the event table: ``seconds_per_scan`` and ``sputter_time_source`` from
        ``properties.txt`` (:func:`tofsims.io.grd_records.event_attrs`).
    given
        Seconds per scan passed by the caller; it wins over the file's.

    Returns
    -------
    seconds, source
        ``(given, "argument seconds_per_scan")``, else the file's value and source, else
        ``(None, "none")``.
    """
    if given is not None:
        return float(given), "argument seconds_per_scan"
    from_file = float(source_attrs.get("seconds_per_scan", math.nan))
    if math.isfinite(from_file) and from_file > 0:
        return from_file, str(source_attrs.get("sputter_time_source", "properties.txt"))
    return None, "none"


def to_dataset(layout: VolumeLayout) -> xr.Dataset:
    """Return the layout as an xarray Dataset (lazy when its arrays are dask arrays)."""
    import xarray as xr

    def entries(variables: dict[str, LayoutVariable]) -> dict[str, Any]:
        return {name: (v.dims, v.data, dict(v.attrs)) for name, v in variables.items()}

    return xr.Dataset(
        entries(layout.data_vars), coords=entries(layout.coords), attrs=dict(layout.attrs)
    )
