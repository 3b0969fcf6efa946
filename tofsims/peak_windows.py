"""Mass windows from the measured peak width, checked against the interference table.

The peak width is measured on the calibration peaks of a summed spectrum (single species
such as H⁻, C⁻, O⁻, OH⁻, F⁻, C₂H⁻, CN⁻, Cl⁻) and modelled as a FWHM in TOF channels that
grows linearly with the flight time, ``FWHM_t = a + b·(t − k0)``: ``b = 0`` is a TOF
resolution limited by the primary-ion pulse length (R = m/Δm ∝ √m), ``a = 0`` a constant
resolving power. A mass window is the peak's centre ±``fwhm_factor`` FWHM (default 1.5 FWHM
= ±3.5σ of a Gaussian: all of the peak), so it follows the instrument instead of a constant
±0.05 u that holds listed neighbours (``docs/methods.md`` "Mass windows"). Every window is
then checked against :data:`tofsims.fragments.INTERFERENCES` at the run's resolving power.

NumPy only (no xarray): the one-pass reconstruction sets its windows before xarray loads.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tofsims.errors import AnalysisError
from tofsims.fragments import CALIBRATION_IONS, INTERFERENCES, ion_mass
from tofsims.masscal import mass_to_tof

__all__ = [
    "DEFAULT_FWHM_FACTOR",
    "MAX_HALF_WIDTH_U",
    "PeakWidth",
    "listed_interferents",
    "measure_peak_width",
    "peak_sigma_channels",
    "window_interferences",
]

#: Default window half-width in FWHM of the measured peak (±3.5σ of a Gaussian).
DEFAULT_FWHM_FACTOR = 1.5
#: Widest half-window a measured width may give (u): a window must stay within its nominal mass.
MAX_HALF_WIDTH_U = 0.3
#: Net counts a calibration peak needs for its width to be used.
MIN_PEAK_COUNTS = 200.0
#: FWHM of a Gaussian in σ.
FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))
#: Variance of a standard normal truncated to ±3σ (moments are taken over ±3σ).
_TRUNCATED_VARIANCE_3 = 0.9733


def peak_sigma_channels(
    spectrum: np.ndarray, expected: float, half_width: float
) -> tuple[float, float, float]:
    """Centre, Gaussian σ (channels) and net counts of the strongest peak near ``expected``.

    The peak top (channels above half maximum) gives a first centre and width; centre and σ
    are then the first two moments over ±3σ after subtracting the mean of the search
    window's outer quarters, iterated to convergence (σ corrected for the truncation at ±3σ).

    Returns
    -------
    centre, sigma, counts
        Channel, σ in channels and net counts; NaN (counts 0) when there is no peak.
    """
    lo = max(int(np.floor(expected - half_width)), 0)
    hi = min(int(np.ceil(expected + half_width)) + 1, spectrum.shape[0])
    if hi - lo < 8:
        return np.nan, np.nan, 0.0
    region = np.asarray(spectrum[lo:hi], dtype="float64")
    quarter = max((hi - lo) // 4, 1)
    net = region - 0.5 * (region[:quarter].mean() + region[-quarter:].mean())
    top = int(np.argmax(net))
    if net[top] <= 0:
        return np.nan, np.nan, 0.0
    left, right = top, top
    while left > 0 and net[left - 1] > 0.5 * net[top]:
        left -= 1
    while right < net.size - 1 and net[right + 1] > 0.5 * net[top]:
        right += 1
    channels = np.arange(net.size, dtype="float64")
    centre = float(top)
    sigma = max((right - left + 1) / FWHM_PER_SIGMA, 0.5)
    total = 0.0
    # a noisy top underestimates the first width; the truncated moments converge from there
    for _ in range(50):
        previous = sigma
        inside = np.abs(channels - centre) <= 3.0 * sigma
        weights = np.where(inside, net, 0.0)
        total = float(weights.sum())
        if total <= 0:
            return np.nan, np.nan, 0.0
        centre = float(np.sum(channels * weights) / total)
        variance = float(np.sum(weights * (channels - centre) ** 2) / total)
        # a channel is a bin of width 1: its rounding adds 1/12 channel² to the variance
        sigma = float(np.sqrt(max(variance / _TRUNCATED_VARIANCE_3 - 1.0 / 12.0, 0.04)))
        if abs(sigma - previous) < 1e-4 * sigma:
            break
    return lo + centre, sigma, total


@dataclass(frozen=True)
class PeakWidth:
    """Measured peak width ``FWHM_t = a + b·(t − k0)`` (channels) under a calibration.

    Attributes
    ----------
    intercept_channels, slope
        ``a`` (channels) and ``b`` (FWHM channels per channel of flight time).
    sf, k0
        Calibration (channels per √u, channels).
    ions, masses, fwhm_channels
        The calibration peaks measured: names, masses (u) and FWHM (channels).
    """

    intercept_channels: float
    slope: float
    sf: float
    k0: float
    ions: tuple[str, ...] = ()
    masses: tuple[float, ...] = ()
    fwhm_channels: tuple[float, ...] = ()

    def fwhm_channels_at(self, mass: Any) -> np.ndarray:
        """FWHM (TOF channels) of a peak at ``mass`` (u)."""
        flight = self.sf * np.sqrt(np.asarray(mass, dtype="float64"))
        return self.intercept_channels + self.slope * flight

    def fwhm_u(self, mass: Any) -> np.ndarray:
        """FWHM (u) at ``mass``: ``Δm = 2√m·Δt/SF`` (from ``m = ((t − k0)/SF)²``)."""
        mass = np.asarray(mass, dtype="float64")
        return 2.0 * np.sqrt(mass) * self.fwhm_channels_at(mass) / self.sf

    def resolving_power(self, mass: Any) -> np.ndarray:
        """Mass resolving power ``m/Δm`` (FWHM) at ``mass``."""
        mass = np.asarray(mass, dtype="float64")
        return mass / self.fwhm_u(mass)

    def half_width_u(self, mass: Any, fwhm_factor: float = DEFAULT_FWHM_FACTOR) -> np.ndarray:
        """Window half-width (u): ``fwhm_factor`` FWHM, at most :data:`MAX_HALF_WIDTH_U`."""
        return np.minimum(fwhm_factor * self.fwhm_u(mass), MAX_HALF_WIDTH_U)

    def to_record(self) -> dict[str, Any]:
        """JSON-ready record (the store's ``peak_width_json``)."""
        return {
            "model": "FWHM_t = a + b*(t - k0) (TOF channels)",
            "intercept_channels": self.intercept_channels,
            "slope": self.slope,
            "sf": self.sf,
            "k0": self.k0,
            "ions": list(self.ions),
            "masses_u": list(self.masses),
            "fwhm_channels": list(self.fwhm_channels),
        }

    @classmethod
    def from_record(cls, record: dict[str, Any] | str) -> PeakWidth:
        """Rebuild from :meth:`to_record` (a dict or its JSON text)."""
        data = json.loads(record) if isinstance(record, str) else record
        return cls(
            float(data["intercept_channels"]),
            float(data["slope"]),
            float(data["sf"]),
            float(data["k0"]),
            tuple(data.get("ions", ())),
            tuple(float(v) for v in data.get("masses_u", ())),
            tuple(float(v) for v in data.get("fwhm_channels", ())),
        )


def measure_peak_width(
    spectrum: np.ndarray,
    sf: float,
    k0: float,
    *,
    polarity: str = "negative",
    ions: Sequence[str] | None = None,
    search_u: float = 0.3,
    min_counts: float = MIN_PEAK_COUNTS,
) -> PeakWidth:
    """Measure the peak width on the calibration peaks of a summed spectrum.

    Parameters
    ----------
    spectrum
        Counts per TOF channel (a sample of the events is enough).
    sf, k0
        Calibration of the spectrum (channels per √u, channels).
    polarity, ions
        Calibration ions (default: :data:`tofsims.fragments.CALIBRATION_IONS` of ``polarity``).
    search_u
        Half-width (u) of the search window around each expected peak.
    min_counts
        Net counts a peak needs to be used.

    Returns
    -------
    PeakWidth
        Weighted least-squares line ``FWHM_t = a + b·(t − k0)`` through the peaks' FWHM
        (a proportional line ``b·(t − k0)`` when the free line would give a negative width
        anywhere up to 300 u, or with a single peak).

    Raises
    ------
    AnalysisError
        No calibration peak with ``min_counts`` net counts.
    """
    names = list(ions) if ions is not None else list(CALIBRATION_IONS[polarity])
    used, masses, widths, weights = [], [], [], []
    for name in names:
        mass = ion_mass(name)
        centre = float(mass_to_tof(mass, sf, k0))
        half = float(mass_to_tof(mass + search_u, sf, k0) - centre)
        _, sigma, counts = peak_sigma_channels(spectrum, centre, half)
        if not np.isfinite(sigma) or counts < min_counts:
            continue
        used.append(name)
        masses.append(mass)
        widths.append(FWHM_PER_SIGMA * sigma)
        weights.append(counts)
    if not used:
        raise AnalysisError(
            f"no calibration peak ({', '.join(names)}) with {min_counts:g} net counts: "
            "the peak width cannot be measured"
        )
    flight = sf * np.sqrt(np.array(masses))
    fwhm = np.array(widths)
    # relative error of a width ~ 1/√(2N): weights N/FWHM²
    w = np.array(weights) / fwhm**2
    slope_only = float(np.sum(w * flight * fwhm) / np.sum(w * flight**2))
    intercept, slope = 0.0, slope_only
    if len(used) >= 2 and np.ptp(flight) > 0:
        design = np.column_stack([np.ones_like(flight), flight])
        sw = np.sqrt(w)
        (a, b), *_ = np.linalg.lstsq(design * sw[:, None], fwhm * sw, rcond=None)
        top = sf * np.sqrt(300.0)
        if a > 0 and a + b * top > 0 and b >= 0:
            intercept, slope = float(a), float(b)
    return PeakWidth(intercept, slope, float(sf), float(k0), tuple(used), tuple(masses),
                     tuple(float(v) for v in fwhm))  # fmt: skip


def listed_interferents(fragment: str) -> list[str]:
    """Interferents :data:`~tofsims.fragments.INTERFERENCES` lists for a fragment's mass."""
    mass = ion_mass(fragment)
    return [
        interferent for target, interferent in INTERFERENCES if abs(ion_mass(target) - mass) < 1e-9
    ]


def window_interferences(
    fragments: Sequence[str],
    mass_low: Sequence[float],
    mass_high: Sequence[float],
    resolving_power: Sequence[float | None],
    *,
    fwhm_factor: float = DEFAULT_FWHM_FACTOR,
) -> list[dict[str, Any]]:
    """Check every window against the interference table at the run's resolving power.

    An interferent is *in* a window when its peak (±``fwhm_factor`` FWHM at the run's
    resolving power, the extent of a window) overlaps the window; without a resolving power,
    when its centre lies inside.

    Parameters
    ----------
    fragments
        Fragments (our notation).
    mass_low, mass_high
        Their windows (u).
    resolving_power
        The run's m/Δm at each fragment (``None``: not measured).
    fwhm_factor
        Half-extent of a peak in FWHM.

    Returns
    -------
    list of dict
        One per fragment: ``fragment``, ``mass_u``, ``mass_low_u``, ``mass_high_u``,
        ``resolving_power`` and ``interferents_in_window``, each ``{"interferent",
        "mass_u", "delta_mass_u", "required_resolving_power", "resolved"}`` (``resolved``:
        the run's resolving power reaches the required one, ``None`` when not measured).
    """
    report = []
    for name, low, high, power in zip(fragments, mass_low, mass_high, resolving_power,
                                      strict=True):  # fmt: skip
        mass = ion_mass(name)
        inside = []
        for interferent in listed_interferents(name):
            other = ion_mass(interferent)
            reach = 0.0 if power is None else fwhm_factor * other / power
            if not low - reach <= other <= high + reach:
                continue
            delta = abs(other - mass)
            needed = 0.5 * (mass + other) / delta
            inside.append(
                {
                    "interferent": interferent,
                    "mass_u": other,
                    "delta_mass_u": delta,
                    "required_resolving_power": needed,
                    "resolved": None if power is None else bool(power >= needed),
                }
            )
        report.append(
            {
                "fragment": name,
                "mass_u": mass,
                "mass_low_u": float(low),
                "mass_high_u": float(high),
                "resolving_power": None if power is None else float(power),
                "interferents_in_window": inside,
            }
        )
    return report
