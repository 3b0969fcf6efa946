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

#: Background models of :func:`dems.process.quantify_run` (``auto``: by number of windows).
BACKGROUND_MODELS = ("auto", "constant", "linear", "polynomial", "als")
#: Onset criteria of :func:`dems.onset.detect_onset`.
ONSET_METHODS = ("threshold", "tangent")
#: Largest time (s) an option may give: a window end, a clock offset (10⁹ s ≈ 32 years, so an
#: unset instrument clock can still be corrected).
MAX_SECONDS = 1e9
#: Largest transit delay (s): the gas reaches the spectrometer within minutes, not hours.
MAX_DELAY_S = 3600.0
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
        help="Background model (auto: drift through anchors found from the data; with "
        "--bg-window by number of windows).",
    )
    bg_windows: tuple[tuple[float, float], ...] = background_windows_option(
        "Quiet window in MS seconds (repeatable)."
    )
    degree: int = option(
        2,
        convert=integer,
        at_least=0,
        at_most=10,
        flag="--degree",
        help="Degree of the polynomial drift model.",
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
