"""Options of the DEMS workflows: one typed definition per parameter.

Each field carries its default, units, range, help text and command-line flag
(:func:`operando_core.options.option`); ``operando dems calibrate``/``process`` offer exactly
these flags and a batch manifest accepts exactly these keys (field names). Light to import (no
numpy or xarray): the command line builds its ``--help`` from here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from operando_core.options import integer, number, option, text, validate

__all__ = [
    "BACKGROUND_MODELS",
    "ONSET_METHODS",
    "CalibrateOptions",
    "FaradaicOptions",
    "ProcessOptions",
    "gas_z",
    "window",
]

#: Background models of :func:`dems.process.quantify_run`: ``auto`` and the models of
#: :data:`dems.background.MODELS` (``auto``: ``anchored`` without --bg-window, else by the
#: number of windows).
BACKGROUND_MODELS = ("auto", "anchored", "drift", "constant", "linear", "polynomial", "als")
#: Onset criteria of :func:`dems.onset.detect_onset`.
ONSET_METHODS = ("threshold", "tangent")
#: Largest time (s) an option may give: a window end, a clock offset (10⁹ s ≈ 32 years, so an
#: unset instrument clock can still be corrected).
MAX_SECONDS = 1e9
#: Largest transit delay (s): the gas reaches the spectrometer within minutes, not hours.
MAX_DELAY_S = 3600.0
#: Largest carrier flow (sccm): DEMS carrier streams are 0.1–100 sccm.
MAX_FLOW_SCCM = 1e4
#: Largest relative half-width of a cylinder or flow-controller tolerance.
MAX_TOLERANCE = 0.5
#: Shortest knot spacing of the drift spline (s): knots closer than a gas-evolution peak
#: would let the background follow the peak.
MIN_KNOT_SPACING_S = 300.0
#: Largest electrons per molecule of a Faradaic efficiency (O2 from oxide: 4; organics: < 30).
MAX_ELECTRONS = 100.0


def window(value: Any) -> tuple[float, float]:
    """Convert a time window to ``(start, end)`` in s, end after start (text ``"START:END"``)."""
    if isinstance(value, str):
        try:
            start, end = (number(float(v)) for v in value.split(":"))
        except ValueError:
            raise ValueError(f"{value!r}: expected START:END in seconds (finite numbers)") from None
    elif isinstance(value, Sequence) and len(value) == 2:
        start, end = (number(v) for v in value)
    else:
        raise TypeError(f"{value!r}: expected [start, end] in seconds")
    if end <= start:
        raise ValueError(f"{value!r}: END must be after START")
    if max(abs(start), abs(end)) > MAX_SECONDS:
        raise ValueError(f"{value!r}: times must lie within ±{MAX_SECONDS:g} s")
    return start, end


def gas_z(value: Any) -> tuple[str, float]:
    """Convert electrons per molecule of a gas to ``(gas, z)`` (text ``"GAS=Z"``)."""
    if isinstance(value, str):
        gas, _, z = value.partition("=")
        try:
            pair = gas.strip(), number(float(z))
        except ValueError:
            raise ValueError(f"{value!r}: expected GAS=Z, e.g. CO2=2") from None
    elif isinstance(value, Sequence) and len(value) == 2:
        pair = text(value[0]), number(value[1])
    else:
        raise TypeError(f"{value!r}: expected GAS=Z, e.g. CO2=2")
    return pair[0], _electrons(pair[1], value)


def _electrons(z: float, given: Any) -> float:
    if not 0 < z <= MAX_ELECTRONS:
        raise ValueError(f"{given!r}: electrons per molecule must be in (0, {MAX_ELECTRONS:g}]")
    return z


def faradaic_spec(value: Any) -> tuple[str, float, float]:
    """Convert a Faradaic calibration target to ``(gas, m/z, z)`` (text ``"GAS:MZ:Z"``)."""
    if isinstance(value, str):
        try:
            gas, mass, z = value.split(":")
            spec = gas, number(float(mass)), number(float(z))
        except ValueError:
            raise ValueError(f"{value!r}: expected GAS:MZ:Z, e.g. CO2:44:2") from None
    elif isinstance(value, Sequence) and len(value) == 3:
        spec = text(value[0]), number(value[1]), number(value[2])
    else:
        raise TypeError(f"{value!r}: expected GAS:MZ:Z, e.g. CO2:44:2")
    if not 0 < spec[1] <= 1000:
        raise ValueError(f"{value!r}: m/z must be in (0, 1000]")
    if problem := _known_gases((spec[0],)):
        raise ValueError(problem)
    return spec[0], spec[1], _electrons(spec[2], value)


def _known_timezone(name: str) -> str | None:
    from dems.io.timestamps import resolve_timezone

    try:
        resolve_timezone(name)
    except ValueError as err:
        return str(err)
    return None


def _known_gases(gases: tuple[str, ...]) -> str | None:
    from dems.fragmentation import PATTERNS

    unknown = [g for g in gases if g not in PATTERNS]
    if unknown:
        return f"no fragmentation pattern for {unknown}; known: {', '.join(sorted(PATTERNS))}"
    return None


def timezone_option() -> Any:
    """Declare the ``timezone`` option of every workflow that reads vendor files."""
    return option(
        None,
        convert=text,
        check=_known_timezone,
        flag="--timezone",
        metavar="IANA",
        help="Zone of naive vendor timestamps, e.g. Europe/Berlin [default: this machine's].",
    )


def background_windows_option(help: str) -> Any:
    """Declare the quiet windows of an MS channel (repeatable ``--bg-window``)."""
    return option((), convert=window, multiple=True, flag="--bg-window", units="s",
                  metavar="START:END", help=help)  # fmt: skip


@dataclass(frozen=True)
class CalibrateOptions:
    """Options of :func:`dems.workflows.calibrate` (gas steps)."""

    timezone: str | None = timezone_option()

    def __post_init__(self) -> None:
        validate(self)


@dataclass(frozen=True)
class FaradaicOptions:
    """Options of :func:`dems.workflows.calibrate_faradaic`.

    ``F = ∫(S − S_bg) dt / (Q/(z·F))`` for a gas produced at a known charge ``Q`` (the EC
    file's current integrated over ``ec_window``).
    """

    faradaic: tuple[str, float, float] = option(
        convert=faradaic_spec,
        flag="--faradaic",
        metavar="GAS:MZ:Z",
        help="Faradaic calibration of one gas/m/z with z electrons per molecule.",
    )
    ec_window: tuple[float, float] = option(
        convert=window,
        flag="--ec-window",
        units="s",
        metavar="START:END",
        help="Faradaic: window (s, MS time axis after alignment) holding the charge.",
    )
    bg_windows: tuple[tuple[float, float], ...] = background_windows_option(
        "Faradaic: quiet window(s) of the MS channel (repeatable)."
    )
    delay_s: float = option(
        0.0,
        convert=number,
        at_least=0,
        at_most=MAX_DELAY_S,
        flag="--delay",
        units="s",
        metavar="S",
        help="Faradaic: transit delay shifting the MS window (s).",
    )
    timezone: str | None = timezone_option()

    def __post_init__(self) -> None:
        validate(self)
        if not self.bg_windows:
            from operando_core.options import OptionError

            raise OptionError("bg_windows", "a Faradaic calibration needs at least one window")


@dataclass(frozen=True)
class ProcessOptions:
    """Options of :func:`dems.workflows.processing` (every key of a ``kind = "dems"`` manifest)."""

    mass_mg: float | None = option(
        None,
        convert=number,
        greater_than=0,
        at_most=1e5,
        units="mg",
        flag="--mass",
        help="Active mass in mg [default: the EC file's characteristic mass].",
    )
    timezone: str | None = timezone_option()
    clock_offset_s: float | None = option(
        None,
        convert=number,
        at_least=-MAX_SECONDS,
        at_most=MAX_SECONDS,
        units="s",
        flag="--clock-offset",
        metavar="S",
        help="EC clock correction passed to dems.align (s) [default: recorded or 0].",
    )
    delay_s: float | None = option(
        None,
        convert=number,
        at_least=0,
        at_most=MAX_DELAY_S,
        units="s",
        flag="--delay",
        metavar="S",
        help="Transit delay (s) [default: from the calibration, else 0].",
    )
    delay_uncertainty_s: float = option(
        1.0,
        convert=number,
        at_least=0,
        at_most=MAX_DELAY_S,
        units="s",
        flag="--delay-uncertainty",
        metavar="S",
        help="1σ uncertainty of the EC–MS clock alignment (s); combined with the calibration's "
        "delay spread and response time in the onset budget.",
    )
    background: str = option(
        "auto",
        convert=text,
        choices=BACKGROUND_MODELS,
        flag="--background",
        help="Background model. auto: without --bg-window, anchored (a drift spline through "
        "anchors found from the data); with --bg-window, by the number of windows.",
    )
    bg_windows: tuple[tuple[float, float], ...] = background_windows_option(
        "Quiet window in MS seconds (repeatable), e.g. 0:600; used as given."
    )
    degree: int = option(
        2,
        convert=integer,
        at_least=0,
        at_most=10,
        flag="--degree",
        help="Degree of the polynomial background model.",
    )
    knot_spacing_s: float = option(
        3600.0,
        convert=number,
        at_least=MIN_KNOT_SPACING_S,
        at_most=MAX_SECONDS,
        units="s",
        flag="--knot-spacing",
        metavar="S",
        help="Knot spacing of the anchored/drift background spline (s, ≥ 300), e.g. 7200 for "
        "a smoother drift.",
    )
    step_reference_mass: float | None = option(
        None,
        convert=number,
        greater_than=0,
        at_most=1000,
        units="u",
        flag="--step-reference",
        metavar="MZ",
        help="m/z of a channel without gas evolution on which background steps (flow "
        "disturbances) are found, e.g. 40 [default: the carrier's, else m/z 40 or 4].",
    )
    carrier_flow_sccm: float | None = option(
        None,
        convert=number,
        greater_than=0,
        at_most=MAX_FLOW_SCCM,
        units="sccm",
        flag="--carrier-flow",
        metavar="SCCM",
        help="Carrier flow of this run (sccm), e.g. 2.5; the factors are scaled by calibration "
        "flow / this flow [default: the calibration's flow].",
    )
    flow_reference_C: float | None = option(
        None,
        convert=number,
        at_least=-50,
        at_most=50,
        units="°C",
        flag="--flow-reference",
        metavar="C",
        help="Reference temperature (°C) of this run's flow controller, with --carrier-flow, "
        "e.g. 20 [default: the calibration's, else 0].",
    )
    cylinder_tolerance: float = option(
        0.02,
        convert=number,
        at_least=0,
        at_most=MAX_TOLERANCE,
        flag="--cylinder-tolerance",
        metavar="REL",
        help="Relative half-width of the calibration gas concentration (0.02 = ±2 %), into the "
        "amounts' uncertainty.",
    )
    flow_controller_tolerance: float = option(
        0.01,
        convert=number,
        at_least=0,
        at_most=MAX_TOLERANCE,
        flag="--flow-controller-tolerance",
        metavar="REL",
        help="Relative half-width of the calibration flow (0.01 = ±1 % of reading), into the "
        "amounts' uncertainty.",
    )
    gases: tuple[str, ...] = option(
        (),
        convert=text,
        multiple=True,
        check=_known_gases,
        flag="--gas",
        help="Gas to report (repeatable) [default: all].",
    )
    onset_method: str = option(
        "threshold",
        convert=text,
        choices=ONSET_METHODS,
        flag="--onset-method",
        help="Reported onset estimate (both are in the summary).",
    )
    k: float = option(
        3.0,
        convert=number,
        greater_than=0,
        at_most=100,
        flag="--k",
        help="Onset threshold in baseline σ.",
    )
    persistence: int = option(
        5,
        convert=integer,
        at_least=1,
        at_most=1000,
        flag="--persistence",
        help="Samples the flux must stay above.",
    )
    baseline_potential_V: float | None = option(
        None,
        convert=number,
        at_least=-10,
        at_most=10,
        units="V",
        flag="--baseline-potential",
        metavar="V",
        help="Onset baseline: the samples of each charge below this potential, e.g. 4.0 "
        "[default: the background anchors in the charge].",
    )
    onset_rate_umol_per_min_g: float = option(
        0.1,
        convert=number,
        greater_than=0,
        at_most=1e6,
        units="umol/(min.g)",
        flag="--onset-rate",
        metavar="RATE",
        help="Specific rate (µmol min⁻¹ g⁻¹) whose potential is reported as the rate onset.",
    )
    z: tuple[tuple[str, float], ...] = option(
        (),
        convert=gas_z,
        multiple=True,
        check=lambda pairs: _known_gases(tuple(gas for gas, _ in pairs)),
        flag="--z",
        metavar="GAS=Z",
        help="Electrons per molecule for a Faradaic efficiency (repeatable).",
    )

    def __post_init__(self) -> None:
        validate(self)
        if self.flow_reference_C is not None and self.carrier_flow_sccm is None:
            from operando_core.options import OptionError

            # the calibration records its flow in mol/s: a reference temperature alone
            # changes nothing, and silently ignoring it would look like a correction
            raise OptionError(
                "flow_reference_C", "needs {carrier_flow_sccm}, the flow it refers to"
            )
