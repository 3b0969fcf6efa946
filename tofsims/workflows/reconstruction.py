"""The reconstruction workflow: a GRD event list -> calibrated fragment volumes (lazy).

:func:`mass_recalibration` refits the mass scale on the summed spectrum (one pass over the
file); :func:`reconstruct` bins the events into ``counts(fragment, scan, y, x)`` with that fit
(or the calibration of ``properties.txt``), records the calibration applied and stays lazy:
the caller computes it while writing the store (:func:`tofsims.io.volume_store.write_volume`).
"""

from __future__ import annotations

import json
import math
import os

import xarray as xr

from operando_core.options import OptionError
from tofsims.io import grd
from tofsims.masscal import calibrate
from tofsims.reconstruct import reconstruct as bin_events
from tofsims.workflows.options import ReconstructOptions

__all__ = ["fit_record", "mass_recalibration", "open_events", "reconstruct"]


def open_events(
    events: xr.Dataset | str | os.PathLike[str],
    properties: str | os.PathLike[str] | None = None,
) -> xr.Dataset:
    """Open the lazy event table of a GRD file (``properties``: if not beside it)."""
    if isinstance(events, xr.Dataset):
        return events
    return grd.read(events, properties=properties, validate=False)


def _dead_time_s(events: xr.Dataset, options: ReconstructOptions) -> float | None:
    """Dead time of the Poisson correction (s): the option's, or the file's with ``poisson``."""
    if options.dead_time_ns is not None:
        return options.dead_time_ns * 1e-9
    if not options.poisson:
        return None
    dead_time_s = events.attrs["dead_time_s"]
    if not math.isfinite(dead_time_s):
        raise OptionError("poisson", "properties.txt has no dead time: give {dead_time_ns} NS")
    return dead_time_s


def _windows(options: ReconstructOptions) -> dict[str, float | None]:
    return {"window_u": options.window_u, "resolution": options.resolution}


def mass_recalibration(events: xr.Dataset, options: ReconstructOptions) -> xr.Dataset:
    """Refit SF/K0 on the calibration peaks of the summed spectrum (lazy, one pass).

    Returns
    -------
    xarray.Dataset
        :func:`tofsims.masscal.calibrate` of the summed spectrum, starting from the
        ``properties.txt`` calibration of ``events``.
    """
    _dead_time_s(events, options)  # a missing dead time fails before the pass over the file
    spectrum = bin_events(events, list(options.fragments), **_windows(options))["spectrum"]
    attrs = events.attrs
    return calibrate(spectrum, attrs["sf"], attrs["k0"], polarity=attrs["polarity"])


def fit_record(fit: xr.Dataset) -> str:
    """Return the mass calibration applied: the volume's ``mass_calibration_json``."""
    return json.dumps(
        {
            "sf_start": fit.attrs["sf_start"],
            "k0_start": fit.attrs["k0_start"],
            "sf": float(fit.sf),
            "k0": float(fit.k0),
            "peaks": [
                {
                    "ion": str(ion),
                    "mass_u": float(m),
                    "used": bool(u),
                    "residual_ppm": float(r) if math.isfinite(r) else None,
                }
                for ion, m, u, r in zip(
                    fit.ion.values,
                    fit.mass.values,
                    fit.used.values,
                    fit.residual_ppm.values,
                    strict=True,
                )
            ],
        }
    )


def reconstruct(
    events: xr.Dataset,
    options: ReconstructOptions | None = None,
    fit: xr.Dataset | None = None,
) -> xr.Dataset:
    """Bin GRD events into fragment volumes ``counts(fragment, scan, y, x)`` (lazy).

    Each fragment's mass window (coordinates ``mass_low``/``mass_high``, u) and the
    calibration applied (attributes ``sf``, ``k0``; ``sf_properties``/``k0_properties`` from
    the file, ``mass_calibration_json``) are stored with the volume; the summed spectrum is
    the variable ``spectrum``.

    Parameters
    ----------
    events
        The lazy event table (:func:`open_events`).
    options
        Fragments, windows, binning, dead time, time per scan, recalibration.
    fit
        A computed :func:`mass_recalibration` to apply. ``None``: with
        ``options.recalibrate`` it is computed here (one pass over the file, the only
        computation of this function), else the calibration of ``properties.txt`` is used.
    """
    options = options or ReconstructOptions()
    if fit is None and options.recalibrate:
        fit = mass_recalibration(events, options).compute()
    sf, k0 = (float(fit.sf), float(fit.k0)) if fit is not None else (None, None)
    volume = bin_events(
        events,
        list(options.fragments),
        sf=events.attrs["sf"] if sf is None else sf,
        k0=events.attrs["k0"] if k0 is None else k0,
        lateral_bin=options.bin,
        dead_time_s=_dead_time_s(events, options),
        seconds_per_scan=options.seconds_per_scan,
        **_windows(options),
    )
    volume.attrs.update(
        sf_properties=events.attrs["sf"],
        k0_properties=events.attrs["k0"],
        mass_calibration_json=fit_record(fit) if fit is not None else "null",
    )
    return volume
