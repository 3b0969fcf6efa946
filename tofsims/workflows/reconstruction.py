"""The reconstruction workflow: a GRD event list -> calibrated fragment volumes.

:func:`mass_recalibration` refits the mass scale on a sample of the events (no pass over the
file, :func:`tofsims.spectrum_sampling.calibrate_sampled`). With that fit (or the calibration
of ``properties.txt``) :func:`reconstruct` bins the events lazily into
``counts(fragment, scan, y, x)`` — for any dask scheduler, a cluster included; the caller
computes it while writing the store (:func:`tofsims.io.volume_store.write_volume`) — and
:func:`reconstruct_into` writes the same store in one pass on local threads, the fast way on
one machine. This module and what it imports at the top need NumPy and numba only: the
one-pass path starts binning before xarray would have loaded.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from operando_core.options import OptionError
from tofsims.binning import window_masses
from tofsims.errors import AnalysisError
from tofsims.grd_to_volume import ReconstructedStore, reconstruct_grd, reconstruction_plan
from tofsims.io.grd_records import GrdRecords, open_records
from tofsims.peak_windows import DEFAULT_FWHM_FACTOR, PeakWidth, measure_peak_width
from tofsims.spectrum_sampling import (
    MIN_SAMPLE_EVENTS,
    SampledCalibration,
    calibrate_sampled,
    sample_spectrum,
)
from tofsims.workflows.fragment_purity import (
    measured_on,
    peak_width_from_resolution,
    window_record,
    with_isotopologues,
)
from tofsims.workflows.options import ReconstructOptions

if TYPE_CHECKING:
    import xarray as xr

__all__ = [
    "RunWindows",
    "fit_record",
    "mass_recalibration",
    "open_events",
    "open_records",
    "reconstruct",
    "reconstruct_into",
]


def open_events(
    events: xr.Dataset | str | os.PathLike[str],
    properties: str | os.PathLike[str] | None = None,
) -> xr.Dataset:
    """Open the lazy event table of a GRD file (``properties``: if not beside it)."""
    import xarray as xr

    from tofsims.io import grd

    if isinstance(events, xr.Dataset):
        return events
    return grd.read(events, properties=properties, validate=False)


def _records(events: GrdRecords | xr.Dataset | str | os.PathLike[str]) -> GrdRecords:
    """Return the record-level view of a GRD file from its records, event table or path."""
    if isinstance(events, GrdRecords):
        return events
    if isinstance(events, str | os.PathLike):
        return open_records(events)
    attrs = events.attrs
    return open_records(attrs["source_file"], properties=attrs["properties_file"])


def _dead_time_s(records: GrdRecords, options: ReconstructOptions) -> float | None:
    """Dead time of the Poisson correction (s): the option's, or the file's with ``poisson``."""
    if options.dead_time_ns is not None:
        return options.dead_time_ns * 1e-9
    if not options.poisson:
        return None
    dead_time_s = records.properties.dead_time_s
    if not math.isfinite(dead_time_s):
        raise OptionError("poisson", "properties.txt has no dead time: give {dead_time_ns} NS")
    return dead_time_s


def _windows(options: ReconstructOptions) -> dict[str, float | None]:
    return {"window_u": options.window_u, "resolution": options.resolution}


def mass_recalibration(
    events: GrdRecords | xr.Dataset | str | os.PathLike[str], options: ReconstructOptions
) -> SampledCalibration:
    """Refit SF/K0 on the calibration peaks of a sample of the events (eager, no full pass).

    Parameters
    ----------
    events
        The GRD file: its path, its lazy event table (:func:`open_events`) or its records
        (:func:`open_records`).
    options
        Fragments and windows (where the calibration error is judged), dead time.

    Returns
    -------
    tofsims.spectrum_sampling.SampledCalibration
        The fit (starting from the ``properties.txt`` calibration), the sample it used and
        its mass error at the fragments.
    """
    records = _records(events)
    _dead_time_s(records, options)  # a missing dead time fails before anything is read
    props = records.properties
    plan = reconstruction_plan(
        records, options.fragments, sf=props.sf, k0=props.k0, **_windows(options)
    )
    masses = window_masses(options.fragments, **_windows(options))[0]
    # the fragments choose the heavy calibration ions and get their error in the record
    fragments = dict(zip(options.fragments, masses.tolist(), strict=True))
    return calibrate_sampled(records, plan.n_channels, check_masses=masses, fragments=fragments)


def fit_record(fit: SampledCalibration) -> str:
    """Return the mass calibration applied: the volume's ``mass_calibration_json``."""
    return json.dumps(fit.to_record())


class RunWindows:
    """The windows of a run: from the measured peak width unless an override is given.

    Attributes
    ----------
    fragments
        The fragments binned: those asked, with ¹⁰BO₂⁻/⁶LiF₂⁻ beside BO₂⁻/LiF₂⁻
        (:func:`tofsims.workflows.fragment_purity.with_isotopologues`).
    peak_width
        The measured width (``--resolution``: the width it means); ``None``: not measured.
    source
        How the windows were chosen, in words (the store's ``window_source``).
    spectrum
        The sample's spectrum the width was measured on (``None`` with an override).
    """

    def __init__(
        self, records: GrdRecords, options: ReconstructOptions, fit: SampledCalibration | None
    ):
        props = records.properties
        self.sf, self.k0 = (fit.fit.sf, fit.fit.k0) if fit is not None else (props.sf, props.k0)
        self.fragments = with_isotopologues(options.fragments)
        self.window_u, self.resolution = options.window_u, options.resolution
        self.spectrum: np.ndarray | None = None
        self.peak_width: PeakWidth | None = None
        if self.window_u is not None:
            self.source = f"fixed ±{self.window_u:g} u (--window-u)"
        elif self.resolution is not None:
            self.source = f"m ± m/(2R), R = {self.resolution:g} (--resolution)"
            self.peak_width = peak_width_from_resolution(self.resolution, self.sf, self.k0)
        else:
            self._measure(records, fit)

    def _measure(self, records: GrdRecords, fit: SampledCalibration | None) -> None:
        if fit is not None and fit.spectrum is not None:
            spectrum = fit.spectrum
        else:
            plan = reconstruction_plan(records, self.fragments, sf=self.sf, k0=self.k0)
            size = min(records.n_records, MIN_SAMPLE_EVENTS)
            spectrum = sample_spectrum(records, size, plan.n_channels)[0].sum(axis=0)
        try:
            self.peak_width = measure_peak_width(
                spectrum,
                self.sf,
                self.k0,
                polarity=records.properties.polarity,
                fragments=self.fragments,
            )
        except AnalysisError as err:
            self.source = f"fixed ±0.05 u: {err}"
            return
        self.spectrum = spectrum
        self.source = f"±{DEFAULT_FWHM_FACTOR:g} FWHM of the {measured_on(self.peak_width)}"

    @property
    def binning(self) -> dict[str, Any]:
        """Window keyword arguments of the binning."""
        measured = self.peak_width if self.window_u is None and self.resolution is None else None
        return {"window_u": self.window_u, "resolution": self.resolution, "peak_width": measured}

    @cached_property
    def record(self) -> list[dict[str, Any]]:
        """Every window, the interferents in it and a purity estimate from the sample.

        See :func:`tofsims.workflows.fragment_purity.window_record`.
        """
        _, lows, highs = window_masses(self.fragments, **self.binning)
        return window_record(self.fragments, lows, highs, self.peak_width, self.spectrum)

    def sample_spectra(self) -> xr.Dataset | None:
        """Return the sample's spectrum as one depth block, with the windows of :attr:`fragments`.

        What :func:`tofsims.workflows.fragment_purity.spectrum_purity_analysis` takes (as
        :func:`~tofsims.workflows.fragment_purity.block_spectra` of a store); ``None`` when no
        spectrum was sampled (windows fixed by ``--window-u``/``--resolution``, or no
        measurable peak width).
        """
        import xarray as xr

        from tofsims.workflows.fragment_purity import block_spectra

        if self.spectrum is None:
            return None
        _, lows, highs = window_masses(self.fragments, **self.binning)
        sample = xr.Dataset(
            {"spectrum_part": (("block", "tof_channel"), np.asarray(self.spectrum)[None, :])},
            coords={
                "fragment": list(self.fragments),
                "mass_low": ("fragment", lows),
                "mass_high": ("fragment", highs),
                "block_first_scan": ("block", [0]),
            },
            attrs={"sf": self.sf, "k0": self.k0, **self.attrs()},
        )
        return block_spectra(sample)

    def attrs(self) -> dict[str, str]:
        """Return the attributes recording the windows.

        ``window_source``, ``peak_width_json`` and ``mass_windows_json`` (:attr:`record`).
        """
        record = self.record
        width = "null" if self.peak_width is None else json.dumps(self.peak_width.to_record())
        return {
            "window_source": self.source,
            "peak_width_json": width,
            "mass_windows_json": json.dumps(record),
        }


def _settings(
    records: GrdRecords,
    options: ReconstructOptions,
    fit: SampledCalibration | None,
    windows: RunWindows | None = None,
) -> tuple[dict[str, Any], dict[str, Any], RunWindows]:
    """Return the binning's keyword arguments, the attributes and the windows.

    The attributes record the calibration and the windows.
    """
    props = records.properties
    windows = RunWindows(records, options, fit) if windows is None else windows
    settings = {
        "sf": windows.sf,
        "k0": windows.k0,
        "lateral_bin": options.bin,
        "dead_time_s": _dead_time_s(records, options),
        "seconds_per_scan": options.seconds_per_scan,
        **windows.binning,
    }
    attrs = {
        "sf_properties": props.sf,
        "k0_properties": props.k0,
        "mass_calibration_json": fit_record(fit) if fit is not None else "null",
        **windows.attrs(),
    }
    return settings, attrs, windows


def reconstruct(
    events: xr.Dataset,
    options: ReconstructOptions | None = None,
    fit: SampledCalibration | None = None,
    windows: RunWindows | None = None,
) -> xr.Dataset:
    """Bin GRD events into fragment volumes ``counts(fragment, scan, y, x)`` (lazy).

    Each fragment's mass window (coordinates ``mass_low``/``mass_high``, u; by default
    ±1.5 FWHM of the peak width measured on the calibration peaks of the sampled spectrum,
    :class:`RunWindows`; attributes ``window_source``, ``peak_width_json`` and
    ``mass_windows_json`` = the interferents inside each window and a purity estimate) and
    the calibration applied (attributes ``sf``, ``k0``; ``sf_properties``/``k0_properties`` from
    the file, ``mass_calibration_json``) are stored with the volume; the summed spectrum is
    the variable ``spectrum``.

    Parameters
    ----------
    events
        The lazy event table (:func:`open_events`).
    options
        Fragments, windows, binning, dead time, time per scan, recalibration.
    fit
        A :func:`mass_recalibration` to apply. ``None``: with ``options.recalibrate`` it is
        made here (reading a sample of the events), else the calibration of
        ``properties.txt`` is used.
    windows
        The windows (:class:`RunWindows` of the same ``options`` and ``fit``); default: made
        here (measuring the peak width on the fit's sample).
    """
    from tofsims.reconstruct import reconstruct as bin_events

    options = options or ReconstructOptions()
    if fit is None and options.recalibrate:
        fit = mass_recalibration(events, options)
    settings, attrs, windows = _settings(_records(events), options, fit, windows)
    volume = bin_events(events, list(windows.fragments), **settings)
    volume.attrs.update(attrs)
    return volume


def reconstruct_into(
    folder: str | os.PathLike[str],
    events: GrdRecords | str | os.PathLike[str],
    options: ReconstructOptions | None = None,
    fit: SampledCalibration | None = None,
    windows: RunWindows | None = None,
    *,
    workers: int | None = None,
    on_events: Callable[[int], Any] | None = None,
    warn_dead_time: bool = True,
) -> ReconstructedStore:
    """Write the volume of :func:`reconstruct` into ``folder``, reading the file once.

    The one workflow that writes: worker threads bin groups of scans while the store is
    filled, so memory stays flat however large the file
    (:func:`tofsims.grd_to_volume.reconstruct_grd`). Publish ``folder`` atomically
    (:func:`pipelines.atomic.atomic_directory`).

    Parameters
    ----------
    folder
        New or empty folder for the Zarr store.
    events
        The GRD file or its records (:func:`open_records`).
    options, fit, windows
        As :func:`reconstruct`.
    workers
        Binning threads (default: all cores).
    on_events
        Called with each number of records binned (progress).
    warn_dead_time
        ``False``: the caller reports large dead-time corrections from the store's
        ``dead_time_increase`` attribute instead of a warning (:func:`tofsims.grd_to_volume.
        reconstruct_grd`).
    """
    records = _records(events)
    options = options or ReconstructOptions()
    if fit is None and options.recalibrate:
        fit = mass_recalibration(records, options)
    settings, attrs, windows = _settings(records, options, fit, windows)
    return reconstruct_grd(
        records,
        list(windows.fragments),
        folder,
        attrs=attrs,
        workers=workers,
        on_events=on_events,
        warn_dead_time=warn_dead_time,
        **settings,
    )
