"""Options of the TOF-SIMS workflows: one typed definition per parameter.

Each field carries its default, units, range, help text and command-line flag
(:func:`operando_core.options.option`); ``operando tofsims reconstruct``/``cei``/``profile``
offer exactly these flags and a ``kind = "tofsims"`` batch manifest accepts exactly these keys
(field names). Light to import (no numpy or xarray).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from operando_core.options import OptionError, boolean, integer, number, option, text, validate

__all__ = [
    "DEFAULT_BULK",
    "DEFAULT_FRAGMENTS",
    "STACK_FRAGMENTS",
    "CeiOptions",
    "ProfileOptions",
    "ReconstructOptions",
    "fragment_list",
]

#: Battery fragments binned by default (our notation): CEI markers, coating, bulk.
DEFAULT_FRAGMENTS = ("C2HO-", "PO3-", "LiF2-", "BO2-", "CeO2-", "NiO2-")
#: Bulk marker of the two-marker crossing when none is given.
DEFAULT_BULK = "NiO2-"
#: Fragments the layer-stack fit uses by default, where present: CEI markers, coating, bulk.
STACK_FRAGMENTS = ("LiF2-", "C2HO-", "PO3-", "CeO2-", "NiO2-")
#: Longest sputter (+ analysis) time of one scan, s (a day: far beyond any acquisition).
MAX_SECONDS_PER_SCAN = 86400.0


def fragment_list(value: Any) -> tuple[str, ...]:
    """Convert fragments to a tuple of names (text: comma-separated, e.g. ``"LiF2-,NiO2-"``)."""
    if isinstance(value, str):
        names = [name.strip() for name in value.split(",")]
    elif isinstance(value, Sequence):
        names = [text(name).strip() for name in value]
    else:
        raise TypeError(f'{value!r}: expected fragment names, e.g. "LiF2-,NiO2-"')
    names = [name for name in names if name]
    if not names:
        raise ValueError("is empty: give at least one fragment")
    return tuple(names)


def seconds_per_scan_option(help: str) -> Any:
    """Declare the sputter (+ analysis) time of one scan, in s."""
    return option(None, convert=number, greater_than=0, at_most=MAX_SECONDS_PER_SCAN, units="s",
                  flag="--seconds-per-scan", metavar="S", help=help)  # fmt: skip


@dataclass(frozen=True)
class ReconstructOptions:
    """Options of :func:`tofsims.workflows.reconstruct`: GRD events -> fragment volumes."""

    fragments: tuple[str, ...] = option(
        DEFAULT_FRAGMENTS,
        convert=fragment_list,
        flag="--fragments",
        help="Comma-separated fragments (our notation).",
    )
    window_u: float | None = option(
        None,
        convert=number,
        greater_than=0,
        at_most=0.5,
        units="u",
        flag="--window-u",
        help="Fixed window half-width ±Δm in u [default: 0.05 unless --resolution].",
    )
    resolution: float | None = option(
        None,
        convert=number,
        at_least=100,
        at_most=1e6,
        flag="--resolution",
        help="Mass resolving power m/Δm: window = m ± m/(2R) (excludes --window-u).",
    )
    bin: int = option(
        1,
        convert=integer,
        at_least=1,
        at_most=4096,
        flag="--bin",
        help="Lateral binning: sum BIN×BIN pixels.",
    )
    dead_time_ns: float | None = option(
        None,
        convert=number,
        greater_than=0,
        at_most=10_000,
        units="ns",
        flag="--dead-time",
        help="Detector dead time in ns; enables the Poisson correction.",
    )
    poisson: bool = option(
        False,
        convert=boolean,
        flag="--poisson",
        help="Poisson-correct with the dead time from properties.txt.",
    )
    recalibrate: bool = option(
        True,
        convert=boolean,
        flag="--recalibrate/--no-recalibrate",
        help="Refit SF/K0 on the calibration peaks first, in the spectrum of a sample of "
        "the events (grown until the fit is good enough).",
    )
    seconds_per_scan: float | None = seconds_per_scan_option(
        "Sputter + analysis time per scan (s) for the sputter_time coordinate."
    )

    def __post_init__(self) -> None:
        validate(self)
        if self.window_u is not None and self.resolution is not None:
            raise OptionError("resolution", "give either {window_u} or {resolution}, not both")


@dataclass(frozen=True)
class CeiOptions:
    """Options of :func:`tofsims.workflows.cei`: CEI (and coating) thickness."""

    sputter_rate_nm_per_s: float = option(
        convert=number,
        greater_than=0,
        at_most=1000,
        units="nm/s",
        flag="--sputter-rate",
        metavar="NM_PER_S",
        help="Sputter rate in nm/s (constant) for the depth scale.",
    )
    seconds_per_scan: float | None = seconds_per_scan_option(
        "Sputter time per scan in s  [default: what the file says]"
    )
    marker: str = option(
        "C2HO-",
        convert=text,
        flag="--marker",
        help="CEI marker fragment (our notation), e.g. C2HO-, LiF2-, PO3-.",
    )
    bulk: str | None = option(
        None,
        convert=text,
        flag="--bulk",
        help=f"Bulk marker fragment for the two-marker crossing [default: {DEFAULT_BULK} "
        "when present].",
    )
    sputter_rate_uncertainty_nm_per_s: float = option(
        0.0,
        convert=number,
        at_least=0,
        at_most=1000,
        units="nm/s",
        flag="--sputter-rate-uncertainty",
        metavar="NM_PER_S",
        help="Standard uncertainty of the sputter rate (nm/s), a term of every thickness budget.",
    )
    information_depth_nm: float = option(
        0.3,
        convert=number,
        at_least=0,
        at_most=100,
        units="nm",
        flag="--information-depth",
        metavar="NM",
        help="Information depth of the MRI depth resolution (fixed in the layer-stack fit).",
    )
    information_depth_uncertainty_nm: float = option(
        0.15,
        convert=number,
        at_least=0,
        at_most=100,
        units="nm",
        flag="--information-depth-uncertainty",
        metavar="NM",
        help="Standard uncertainty of the information depth, a term of the thickness budgets.",
    )
    coating: str = option(
        "auto",
        convert=text,
        choices=("auto", "yes", "no"),
        flag="--coating",
        help="Coating layer under the CEI in the layer-stack fit: auto (likelihood-ratio "
        "test), yes or no.",
    )
    stack_fragments: tuple[str, ...] | None = option(
        None,
        convert=fragment_list,
        flag="--stack-fragments",
        help="Comma-separated fragments fitted jointly by the layer stack [default: those of "
        f"{','.join(STACK_FRAGMENTS)} present, plus the markers].",
    )
    force: bool = option(
        False,
        convert=boolean,
        flag="--force",
        help="Report a thickness even when the input checks fail (static acquisition, buried "
        "marker); the failures become warnings.",
    )

    def __post_init__(self) -> None:
        validate(self)


@dataclass(frozen=True)
class ProfileOptions:
    """Options of :func:`tofsims.workflows.profile`: whole-field depth profiles."""

    seconds_per_scan: float | None = seconds_per_scan_option(
        "Sputter time per scan (s) [default: what the file says; needed for GRD and 3D ASCII]."
    )

    def __post_init__(self) -> None:
        validate(self)
