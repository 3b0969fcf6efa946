"""Calibration workflows: sensitivity factors and transit delay from a gas-step or Faradaic run."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import xarray as xr

from dems.alignment import align
from dems.calibration import calibrate_gas_steps, faradaic_calibration
from dems.calibration_file import Calibration
from dems.calibration_steps import CalibrationSteps, read_steps
from dems.io import open_ec, open_ms
from dems.workflows.options import CalibrateOptions, FaradaicOptions

__all__ = ["calibrate", "calibrate_faradaic", "opened", "source_path"]

PathLike = str | os.PathLike[str]


def source_path(data: xr.Dataset | PathLike) -> str | None:
    """Return the absolute path of an input: the path given, or the file a dataset came from."""
    if isinstance(data, xr.Dataset):
        return data.attrs.get("source_file")
    return str(Path(data).resolve())


def opened(data: xr.Dataset | PathLike, reader: Any, timezone: str | None) -> xr.Dataset:
    """Return ``data`` itself, or the dataset ``reader`` opens from the file ``data``."""
    if isinstance(data, xr.Dataset):
        return data
    return reader(data, **({"timezone": timezone} if timezone else {}))


def calibrate(
    cal_ms: xr.Dataset | PathLike,
    steps: CalibrationSteps | PathLike,
    options: CalibrateOptions | None = None,
) -> Calibration:
    """Sensitivity factors F (C/mol) per gas and m/z, transit delay and response time.

    For each m/z channel the plateau means of the steps are fitted linearly against the known
    molar fluxes (x · total flow); slope = F, with intercept and r². The transit delay (valve
    switch to 50 % of the change) and the 10–90 % response time are measured at every step
    where a gas's fraction changes (:func:`dems.calibration.calibrate_gas_steps`).

    Parameters
    ----------
    cal_ms
        The calibration run: an MS dataset or a file :func:`dems.open_ms` reads.
    steps
        The gas steps (:func:`dems.calibration_steps.read_steps`) or their TOML file.
    options
        Reader options (time zone).

    Returns
    -------
    Calibration
        With the files it came from (``sources``); :meth:`Calibration.to_document` is the
        JSON document ``operando dems calibrate`` writes.
    """
    options = options or CalibrateOptions()
    steps_file = steps.source if isinstance(steps, CalibrationSteps) else source_path(steps)
    if not isinstance(steps, CalibrationSteps):
        steps = read_steps(steps)
    ms = opened(cal_ms, open_ms, options.timezone)
    result = calibrate_gas_steps(ms, steps)
    sources = {
        "source_file": source_path(cal_ms),
        "steps_file": steps_file,
        "ms_start_time": ms.attrs.get("start_time"),
        **result.sources,  # the flows and their reference temperature
    }
    return dataclasses.replace(result, sources=sources)


def calibrate_faradaic(
    ms: xr.Dataset | PathLike, ec: xr.Dataset | PathLike, options: FaradaicOptions
) -> Calibration:
    """Faradaic calibration of one gas and m/z: ``F = ∫(S − S_bg) dt / (Q/(z·F))``.

    The gas is produced at a known charge ``Q``, the EC file's current integrated over
    ``options.ec_window`` (:func:`dems.calibration.faradaic_calibration`).

    Parameters
    ----------
    ms, ec
        The MS and EC records (datasets or files); aligned here with :func:`dems.align`.
    options
        Gas, m/z, z, windows, transit delay and time zone.

    Returns
    -------
    Calibration
        One factor, with the files it came from.
    """
    ms_data = opened(ms, open_ms, options.timezone)
    ec_data = opened(ec, open_ec, options.timezone)
    ms_data, ec_data = align(ms_data, ec_data)
    gas, mass, z = options.faradaic
    result = faradaic_calibration(
        ms_data,
        ec_data,
        gas=gas,
        mass=mass,
        z=z,
        ec_window=options.ec_window,
        background_windows=list(options.bg_windows),
        delay_s=options.delay_s,
    )
    sources = {
        "source_file": source_path(ms),
        "ec_file": source_path(ec),
        "ms_start_time": ms_data.attrs.get("start_time"),
    }
    return dataclasses.replace(result, sources=sources)
