"""The DEMS processing workflow: an MS run and its EC file -> gas fluxes, amounts and onsets.

:func:`process` aligns the two clocks, chooses the transit delay and the background windows and
builds the lazy quantification (:func:`dems.process.quantify_run`); :meth:`ProcessRun.compute`
computes it and summarises it (:func:`dems.summary.summarize`) into a :class:`ProcessSummary`,
whose :meth:`~ProcessSummary.to_dict` is the ``summary.json`` of ``operando dems process``.
Nothing is written.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import xarray as xr

from dems.alignment import align
from dems.calibration_file import Calibration, created_now, read_calibration
from dems.errors import CalibrationError
from dems.fragmentation import primary_mass
from dems.io import open_ec, open_ms
from dems.process import default_background_windows, quantify_run
from dems.quantify import grid_bounds
from dems.summary import summarize
from dems.workflows.calibration import PathLike, opened, source_path
from dems.workflows.input_checks import check_separable, screen_ec, screen_ms
from dems.workflows.options import ProcessOptions
from operando_core.readers import package_version

__all__ = ["ProcessResult", "ProcessRun", "ProcessSummary", "process", "transit_delay"]

#: Gases followed (base-peak channel kept) when no calibration names them.
DEFAULT_GASES = ("O2", "CO2")
NO_DELAY = "assumed 0 s: no --delay and no delay in the calibration"
NO_CALIBRATION = "no calibration: fluxes and amounts need --calibration"


@dataclass(frozen=True)
class ProcessSummary:
    """The numbers of a processed run: ``summary.json`` of ``operando dems process``.

    Attributes
    ----------
    analysis
        :func:`dems.summary.summarize` of the computed result: ``onsets`` (first charge),
        ``evolved``, ``delay_s``, ``sensitivity``, ``mass_g``, ``onset_method``, ``cycles``,
        ``half_cycles``, ``warnings`` (``docs/cli.md`` lists every key).
    mass_source
        Where the active mass came from (``"--mass"``, the EC file's key, ``"unknown"``).
    delay_source
        Where the transit delay came from (``"--delay"``, ``"calibration"``, or why 0 s).
    inputs
        Absolute paths of the ``ms``, ``ec`` and ``calibration`` files (``None``: none).
    background_windows_s
        The quiet windows used (s, MS time).
    evolved_reason
        Why there are no fluxes and amounts (``None`` when calibrated).
    input_warnings
        What the input checks found (:mod:`dems.workflows.input_checks`: missing or
        overflowing samples, a poorly separating calibration); listed under ``warnings``
        after the analysis's own.
    """

    analysis: dict[str, Any]
    mass_source: str
    delay_source: str
    inputs: dict[str, str | None]
    background_windows_s: list[list[float]]
    evolved_reason: str | None = None
    input_warnings: tuple[str, ...] = ()
    created: str = field(default_factory=created_now)
    operando_version: str = field(default_factory=package_version)

    @property
    def onsets(self) -> dict[str, Any]:
        """Onset of every gas in the first charge (``potential_V`` None: no onset)."""
        return self.analysis["onsets"]

    @property
    def warnings(self) -> list[str]:
        """Every warning of the summary (analysis and input checks)."""
        return [*self.analysis.get("warnings", []), *self.input_warnings]

    def to_dict(self) -> dict[str, Any]:
        """Return the ``summary.json`` document (NaN is written as ``null``)."""
        document = {
            **self.analysis,
            "warnings": [*self.analysis.get("warnings", []), *self.input_warnings],
            "mass_source": self.mass_source,
            "delay_source": self.delay_source,
            "inputs": self.inputs,
            "background_windows_s": self.background_windows_s,
            "created": self.created,
            "operando_version": self.operando_version,
        }
        if self.evolved_reason is not None:
            document["evolved_reason"] = self.evolved_reason
        return document


@dataclass(frozen=True)
class ProcessResult:
    """A computed run: the result dataset (``docs/conventions.md``) and its summary."""

    dataset: xr.Dataset
    summary: ProcessSummary


@dataclass(frozen=True)
class ProcessRun:
    """A run ready to compute: the lazy result and the choices made for it.

    Attributes
    ----------
    dataset
        The lazy result of :func:`dems.process.quantify_run` (dask-backed).
    options
        The options it was built with.
    delay_s, delay_source
        The transit delay applied (s) and where it came from.
    windows
        The background windows (s, MS time).
    mass_source
        Where the active mass came from.
    inputs
        Absolute paths of the input files.
    calibrated
        Whether a calibration gave fluxes and amounts.
    warnings
        What the input checks found (go into the summary's ``warnings``).
    """

    dataset: xr.Dataset
    options: ProcessOptions
    delay_s: float
    delay_source: str
    windows: tuple[tuple[float, float], ...]
    mass_source: str
    inputs: dict[str, str | None]
    calibrated: bool
    warnings: tuple[str, ...] = ()

    def compute(self, **compute_options: Any) -> ProcessResult:
        """Compute the result (``compute_options`` go to ``Dataset.compute``) and summarise it.

        The summary's onsets are also stored in the dataset's ``onsets_json`` attribute (read
        by ``operando serve``).
        """
        dataset = self.dataset.compute(**compute_options)
        summary = self.summarize(dataset)
        dataset.attrs["onsets_json"] = json.dumps(summary.onsets)
        return ProcessResult(dataset, summary)

    def summarize(self, dataset: xr.Dataset) -> ProcessSummary:
        """Summarise the computed result (onsets, amounts, per cycle) with the run's choices."""
        options = self.options
        analysis = summarize(
            dataset,
            method=options.onset_method,
            k=options.k,
            persistence=options.persistence,
            delay_uncertainty_s=options.delay_uncertainty_s,
            gases=list(options.gases) or None,
            z=dict(options.z),
            baseline_potential_V=options.baseline_potential_V,
            onset_rate_umol_per_min_g=options.onset_rate_umol_per_min_g,
        )
        return ProcessSummary(
            analysis=analysis,
            mass_source=self.mass_source,
            delay_source=self.delay_source,
            inputs=self.inputs,
            background_windows_s=[list(w) for w in self.windows],
            evolved_reason=None if self.calibrated else NO_CALIBRATION,
            input_warnings=self.warnings,
        )


def transit_delay(delay_s: float | None, calibration: Calibration | None) -> tuple[float, str]:
    """Return the transit delay to apply (s) and where it came from."""
    if delay_s is not None:
        return float(delay_s), "--delay"
    if calibration is not None and math.isfinite(calibration.delay_s):
        return calibration.delay_s, "calibration"
    return 0.0, NO_DELAY


def _active_mass_g(ec: xr.Dataset, mass_mg: float | None) -> tuple[float, str]:
    if mass_mg is not None:
        return mass_mg * 1e-3, "--mass"
    value = float(ec.attrs.get("characteristic_mass_g", math.nan))
    return (value, ec.attrs.get("mass_key", "EC file")) if value > 0 else (math.nan, "unknown")


def _factors(
    calibration: Calibration | None, gases: tuple[str, ...]
) -> dict[str, dict[float, float]] | None:
    """Sensitivity factors of the reported gases (all calibrated gases by default)."""
    factors = calibration.factors() if calibration is not None else None
    if factors and gases:
        missing = [g for g in gases if g not in factors]
        if missing:
            raise CalibrationError(f"gas(es) {missing} have no calibrated m/z in the calibration")
        factors = {g: factors[g] for g in gases}
    return factors


def _factor_uncertainty(
    calibration: Calibration | None, factors: dict[str, dict[float, float]] | None
) -> dict[str, float]:
    """Gas -> relative standard error of its largest calibrated factor (0 when unknown)."""
    out = {}
    for gas, by_mass in (factors or {}).items():
        mass = max(by_mass, key=lambda m: by_mass[m])
        out[gas] = calibration.relative_uncertainty(gas, mass) if calibration else 0.0
    return out


def _check_carrier_flow(calibration: Calibration | None, carrier_flow_sccm: float | None) -> None:
    """Raise unless a carrier flow, when given, has a calibration flow to be compared with."""
    if carrier_flow_sccm is None:
        return
    if calibration is None:
        raise CalibrationError("--carrier-flow scales a calibration's factors: give --calibration")
    if not calibration.sources.get("total_flow_mol_per_s"):
        raise CalibrationError(
            f"{calibration.path or 'calibration'}: records no carrier flow (method "
            f"{calibration.method!r}), so --carrier-flow cannot be compared with it"
        )


def _step_reference_notes(ms: xr.Dataset, options: ProcessOptions) -> list[str]:
    """Warn when the requested step-reference m/z is not a channel (no steps are fitted)."""
    mass = options.step_reference_mass
    if mass is None or options.background not in ("auto", "anchored", "drift"):
        return []
    if mass in set(ms["mass"].values.astype(float).tolist()):
        return []
    return [f"--step-reference m/z {mass:g} is not a channel: no background steps were fitted"]


def process(
    ms: xr.Dataset | PathLike,
    ec: xr.Dataset | PathLike,
    calibration: Calibration | PathLike | None = None,
    options: ProcessOptions | None = None,
) -> ProcessRun:
    """Turn an MS run and its EC record into gas fluxes, amounts and onset potentials (lazy).

    Align the two clocks, fit the background, deconvolve all m/z into gas fluxes (mol/s) with
    the calibration's sensitivity matrix, apply the transit delay, match the potential,
    integrate per cycle and half-cycle; :meth:`ProcessRun.compute` then detects the onset
    potential of every gas in every charge.

    Parameters
    ----------
    ms, ec
        MS and EC records: datasets (:func:`dems.open_ms`, :func:`dems.open_ec`) or files.
    calibration
        A :class:`~dems.calibration_file.Calibration` or its JSON file; ``None``: no fluxes,
        onsets on the background-corrected signals only.
    options
        Processing options (:class:`~dems.workflows.options.ProcessOptions`).

    Returns
    -------
    ProcessRun
        The lazy result and the choices made (delay, windows, mass); nothing is computed.

    Raises
    ------
    CalibrationError
        A requested gas has no calibrated m/z.
    """
    options = options or ProcessOptions()
    if calibration is not None and not isinstance(calibration, Calibration):
        calibration = read_calibration(calibration)
    inputs = {
        "ms": source_path(ms),
        "ec": source_path(ec),
        "calibration": calibration.path if calibration is not None else None,
    }
    factors = _factors(calibration, options.gases)
    _check_carrier_flow(calibration, options.carrier_flow_sccm)
    ms_raw = opened(ms, open_ms, options.timezone)
    used = (
        [m for by_mass in factors.values() for m in by_mass]
        if factors
        else [float(primary_mass(gas)) for gas in options.gases or DEFAULT_GASES]
    )
    ms_raw, ms_notes = screen_ms(ms_raw, used)
    ec_raw, ec_notes = screen_ec(opened(ec, open_ec, options.timezone))
    warnings = [*ms_notes, *ec_notes]
    if factors:
        warnings += check_separable(factors, ms_raw["mass"].values, inputs["calibration"])
    ms_data, ec_data = align(ms_raw, ec_raw, offset_s=options.clock_offset_s)
    warnings += _step_reference_notes(ms_data, options)
    mass_g, mass_source = _active_mass_g(ec_data, options.mass_mg)
    delay, delay_source = transit_delay(options.delay_s, calibration)
    # EC-record windows (AnchorCandidates) start the anchor search; user windows are used as given
    windows = options.bg_windows or default_background_windows(ms_data, ec_data, delay)
    # one dask task per channel; the coordinates stay in memory
    lazy_ms = ms_data.chunk({"channel": 1}).assign_coords(
        {n: ms_data[n] for n in ("mass", "label") if n in ms_data.coords}
    )
    dataset = quantify_run(
        lazy_ms,
        ec_data,
        factors=factors,
        delay_s=delay,
        grid=grid_bounds(ms_data),
        windows=windows,
        background=options.background,
        degree=options.degree,
        mass_g=mass_g,
        gases=options.gases or DEFAULT_GASES,
        factor_uncertainty=_factor_uncertainty(calibration, factors),
        knot_spacing_s=options.knot_spacing_s,
        calibration=calibration,
        carrier_flow_sccm=options.carrier_flow_sccm,
        flow_reference_C=options.flow_reference_C,
        cylinder_tolerance=options.cylinder_tolerance,
        flow_controller_tolerance=options.flow_controller_tolerance,
        step_reference_mass=options.step_reference_mass,
    )
    return ProcessRun(
        dataset=dataset,
        options=options,
        delay_s=delay,
        delay_source=delay_source,
        windows=tuple(windows),
        mass_source=mass_source,
        inputs=inputs,
        calibrated=calibration is not None,
        warnings=tuple(warnings),
    )
