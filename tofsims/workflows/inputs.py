"""The inputs of the TOF-SIMS workflows: a volume Zarr store or a raw export, with sputter time.

A Zarr store is opened lazily with :func:`xarray.open_zarr`; every other path goes to
:func:`tofsims.io.open_tofsims` (GRD with properties, 3D ASCII, SurfaceLab profile, ...), which
recognises the format from the content. A GRD event list is binned lazily into a volume of the
battery fragments (:data:`~tofsims.workflows.options.DEFAULT_FRAGMENTS` plus the requested
markers, with ¹⁰BO₂⁻/⁶LiF₂⁻ beside BO₂⁻/LiF₂⁻) with the calibration of its ``properties.txt``
and windows of ±1.5 FWHM of the peak width measured on a sample of its events;
:func:`tofsims.workflows.reconstruct` gives control over windows, recalibration, binning and
dead-time correction.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from tofsims.errors import TofsimsReadError
from tofsims.io import input_files as reader_input_files
from tofsims.io import open_tofsims
from tofsims.io.grd_records import is_event_list
from tofsims.io.volume_store import is_zarr_store
from tofsims.workflows.options import DEFAULT_FRAGMENTS, ReconstructOptions
from tofsims.workflows.reconstruction import reconstruct

__all__ = ["input_files", "is_event_list", "is_profile", "open_input"]

VOLUME_DIMS = ("fragment", "scan", "y", "x")


def input_files(
    path: str | os.PathLike[str], properties: str | os.PathLike[str] | None = None
) -> list[Path]:
    """Every file opening ``path`` reads: a store, or the export and its sidecars.

    A GRD's ``properties.txt`` (given, or the one found beside it), an imzML's ``.ibd``, the
    sibling files of a 3D ASCII export; a Zarr store is its folder.
    """
    return reader_input_files(path, **({"properties": properties} if properties else {}))


def is_profile(data: Any) -> bool:
    """Tell a depth profile (``intensity(scan, peak)``, True) from a volume (False)."""
    return "counts" not in data.data_vars and "intensity" in data.data_vars


def _check(data: Any, path: Path) -> None:
    if "counts" in data.data_vars:
        if set(data["counts"].dims) != set(VOLUME_DIMS):
            raise TofsimsReadError(
                path, f"'counts' has dims {data['counts'].dims}, expected {VOLUME_DIMS}"
            )
        if "fragment" not in data.coords:
            raise TofsimsReadError(path, "the volume has no 'fragment' coordinate")
        return
    if "intensity" in data.data_vars and "scan" in data["intensity"].dims:
        if "fragment" not in data.coords:
            raise TofsimsReadError(path, "the depth profile has no 'fragment' coordinate")
        return
    raise TofsimsReadError(
        path, "holds neither a TOF-SIMS volume ('counts') nor a depth profile ('intensity')"
    )


def _with_seconds_per_scan(data: Any, seconds: float | None, path: Path) -> Any:
    n = data.sizes["scan"]
    if seconds is not None:
        if not (np.isfinite(seconds) and seconds > 0):
            raise TofsimsReadError(path, f"seconds per scan must be > 0, got {seconds}")
        if is_profile(data) and "sputter_time" in data.coords:
            # keep the file's first time (SurfaceLab profiles start at 0 s), rescale the step
            start = float(data["sputter_time"].values[0])
            times = start + seconds * np.arange(n)
        else:
            times = seconds * np.arange(n)
        source = "option --seconds-per-scan"
    elif "sputter_time" in data.coords and np.isfinite(data["sputter_time"].values).all():
        return data.assign_attrs(sputter_time_source=data.attrs.get("sputter_time_source", "file"))
    elif "seconds_per_scan" in data.attrs and float(data.attrs["seconds_per_scan"]) > 0:
        times = float(data.attrs["seconds_per_scan"]) * np.arange(n)
        source = "file attribute seconds_per_scan"
    elif data.attrs.get("sputter_time_reason"):  # a GRD whose properties hold no sputter time
        raise TofsimsReadError(
            path,
            f"has no sputter time ({data.attrs['sputter_time_reason']}); give --seconds-per-scan",
        )
    else:
        raise TofsimsReadError(
            path,
            "has no sputter time (3D ASCII exports do not store it, nor does a properties.txt "
            "without Analysis.SputterTime); give --seconds-per-scan",
        )
    data = data.assign_coords(
        sputter_time=("scan", times, {"units": "s", "time_reference": "start"})
    )
    return data.assign_attrs(sputter_time_source=source)


def _volume_from_events(events: Any, fragments: tuple[str, ...], seconds: float | None) -> Any:
    wanted = tuple(dict.fromkeys([*DEFAULT_FRAGMENTS, *fragments]))
    # windows from the peak width measured on a sample of the events, the calibration of
    # properties.txt (as before: a recalibration is `operando tofsims reconstruct`'s)
    options = ReconstructOptions(fragments=wanted, recalibrate=False, seconds_per_scan=seconds)
    volume = reconstruct(events, options)
    # the block spectra stay (lazy): the peak fits of the windows need them
    volume = volume.drop_vars([v for v in volume.data_vars if v not in ("counts", "spectrum_part")])
    # why the properties give no sputter time (e.g. 0 s: a static acquisition), for the checks
    return volume.assign_attrs(sputter_time_reason=events.attrs.get("sputter_time_reason", ""))


def open_input(
    path: str | os.PathLike[str],
    *,
    seconds_per_scan: float | None = None,
    fragments: tuple[str, ...] = (),
) -> Any:
    """Open a volume store or a raw export and make sure it has ``sputter_time`` (s).

    Parameters
    ----------
    path
        Zarr store (directory) written from a volume, or any file ``tofsims.io.open_tofsims``
        reads.
    seconds_per_scan
        Overrides the file's time axis: a volume gets ``sputter_time = S·scan`` (start of each
        scan, ``docs/conventions.md``); a profile keeps its first time and gets a step of S.
        Without it, a GRD event list takes ``Analysis.SputterTime`` / ``Analysis.TotalScans``
        from its ``properties.txt``.
    fragments
        Fragments that must be in the volume when a GRD event list is binned (e.g. the CEI and
        bulk markers), besides :data:`~tofsims.workflows.options.DEFAULT_FRAGMENTS`.

    Returns
    -------
    xarray.Dataset
        The volume (lazy, dask-backed for stores) or the depth profile.
    """
    path = Path(path)
    if not path.exists():
        raise TofsimsReadError(path, "no such file or directory")
    if path.is_dir() and not is_zarr_store(path):
        if not any(path.iterdir()):
            raise TofsimsReadError(path, "the folder is empty")
    data = open_tofsims(path)
    if "record" in data.data_vars and "tof" in data.data_vars:  # GRD event table
        data = _volume_from_events(data, tuple(fragments), seconds_per_scan)
    _check(data, path)
    return _with_seconds_per_scan(data, seconds_per_scan, path)
