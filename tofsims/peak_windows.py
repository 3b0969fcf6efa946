"""Mass windows from the measured peak width, checked against the interference table.

The peak width is measured on the calibration peaks of a summed spectrum (single species:
H⁻, C⁻, O⁻, OH⁻, F⁻, C₂H⁻, CN⁻, Cl⁻ and, up to just beyond the heaviest fragment, the heavy
ones the mass calibration uses, carbon clusters Cₙ⁻ and PF₆⁻) and modelled as a FWHM in TOF
channels that grows linearly with the flight time, ``FWHM_t = a + b·(t − k0)``: ``b = 0`` is a
TOF resolution limited by the primary-ion pulse length (R = m/Δm ∝ √m), ``a = 0`` a constant
resolving power. A heavy peak is used when it is significant and its width agrees with the
others (a neighbour under it would widen it), so the width at the heavy fragments is
interpolated; a fragment outside the measured mass range is flagged (extrapolated). A mass
window is the peak's centre ±``fwhm_factor`` FWHM (default 1.5 FWHM = ±3.5σ of a Gaussian: all
of the peak), so it follows the instrument instead of a constant ±0.05 u that holds listed
neighbours (``docs/methods.md`` "Mass windows"). Every window is then checked against
:data:`tofsims.fragments.INTERFERENCES` at the run's resolving power.

NumPy only (no xarray): the one-pass reconstruction sets its windows before xarray loads.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tofsims.calibration_peaks import (
    MIN_SIGNIFICANCE,
    half_maximum_extent,
    peak_significance,
    smoothed_for_top,
)
from tofsims.errors import AnalysisError
from tofsims.fragments import INTERFERENCES, ion_mass
from tofsims.masscal import (
    NOT_FOUND,
    NOT_SIGNIFICANT,
    REJECTED,
    mass_to_tof,
    select_calibration_ions,
)

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
#: Relative error of a measured FWHM beyond counting (peak shape, background, the line's
#: approximation of the instrument): without it the strongest light peaks alone would fix
#: the line, and any curvature of the true width would reappear at the heavy fragments.
WIDTH_ERROR_FLOOR = 0.02
#: A peak whose FWHM lies more than this many of its errors from the fitted line is dropped
#: (worst first): a neighbour under it widens it.
REJECT_SIGMA = 4.0
#: FWHM of a Gaussian in σ.
FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))
#: Variance of a standard normal truncated to ±3σ (moments are taken over ±3σ).
_TRUNCATED_VARIANCE_3 = 0.9733


def peak_sigma_channels(
    spectrum: np.ndarray, expected: float, half_width: float
) -> tuple[float, float, float]:
    """Centre, Gaussian σ (channels) and net counts of the strongest peak near ``expected``.

    The peak top (channels above half maximum, read on the counts smoothed just enough that
    the maximum is not a counting fluctuation, :func:`tofsims.calibration_peaks.
    smoothed_for_top`) gives a first centre and width; centre and σ are then the first two
    moments over ±3σ after subtracting the mean of the search window's outer quarters,
    iterated to convergence (σ corrected for the truncation at ±3σ).

    Returns
    -------
    centre, sigma, counts
        Channel, σ in channels and net counts; NaN (counts 0) when there is no peak.
    """
    return _peak_moments(spectrum, expected, half_width)[:3]


def _peak_moments(
    spectrum: np.ndarray, expected: float, half_width: float
) -> tuple[float, float, float, float]:
    """:func:`peak_sigma_channels` plus the peak's significance (σ of its local background)."""
    lo = max(int(np.floor(expected - half_width)), 0)
    hi = min(int(np.ceil(expected + half_width)) + 1, spectrum.shape[0])
    if hi - lo < 8:
        return np.nan, np.nan, 0.0, 0.0
    region = np.asarray(spectrum[lo:hi], dtype="float64")
    quarter = max((hi - lo) // 4, 1)
    level = 0.5 * (region[:quarter].mean() + region[-quarter:].mean())
    net = region - level
    # a wide heavy peak has a few counts per channel, and any peak may hold a one-channel
    # spike: a raw top there would start the moments on a fixed point around the spike
    smooth, kernel = smoothed_for_top(net, min_sigma=1.0)
    top = int(np.argmax(smooth))
    if smooth[top] <= 0:
        return np.nan, np.nan, 0.0, 0.0
    left, right = half_maximum_extent(smooth, top)
    channels = np.arange(net.size, dtype="float64")
    centre = float(top)
    # the kernel widens the top (σ² adds); a peak needing it is at least as wide as it
    top_sigma = (right - left + 1) / FWHM_PER_SIGMA
    sigma = float(np.sqrt(max(top_sigma**2 - kernel**2, kernel**2, 0.25)))
    total, inside = 0.0, np.zeros(net.size, dtype=bool)
    # a noisy top underestimates the first width; the truncated moments converge from there
    for _ in range(50):
        previous = sigma
        inside = np.abs(channels - centre) <= 3.0 * sigma
        weights = np.where(inside, net, 0.0)
        total = float(weights.sum())
        if total <= 0:
            return np.nan, np.nan, 0.0, 0.0
        centre = float(np.sum(channels * weights) / total)
        variance = float(np.sum(weights * (channels - centre) ** 2) / total)
        # a channel is a bin of width 1: its rounding adds 1/12 channel² to the variance
        sigma = float(np.sqrt(max(variance / _TRUNCATED_VARIANCE_3 - 1.0 / 12.0, 0.04)))
        if abs(sigma - previous) < 1e-4 * sigma:
            break
    significance = float(peak_significance(total, max(level, 0.0) * np.count_nonzero(inside)))
    return lo + centre, sigma, total, significance


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
        The calibration peaks measured: names, masses (u) and FWHM (channels); empty for a
        width that was given (a resolving power), not measured.
    excluded
        The calibration ions searched but not used, each with why: ``"not found"`` (fewer
        than the needed net counts in the search window), ``"not significant"`` (below the
        needed σ above the local background) or ``"rejected"`` (width off the line).
    """

    intercept_channels: float
    slope: float
    sf: float
    k0: float
    ions: tuple[str, ...] = ()
    masses: tuple[float, ...] = ()
    fwhm_channels: tuple[float, ...] = ()
    excluded: tuple[tuple[str, str], ...] = ()

    @property
    def measured_mass_range(self) -> tuple[float, float] | None:
        """Lightest and heaviest mass (u) of the peaks measured; ``None``: not measured."""
        if not self.masses:
            return None
        return min(self.masses), max(self.masses)

    def extrapolated(self, mass: Any) -> np.ndarray:
        """Flag masses (u) outside :attr:`measured_mass_range` (all False when not measured)."""
        mass = np.asarray(mass, dtype="float64")
        span = self.measured_mass_range
        if span is None:
            return np.zeros(mass.shape, dtype=bool)
        return (mass < span[0]) | (mass > span[1])

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
        """JSON-ready record (the store's ``peak_width_json``).

        ``mass_range_u`` is :attr:`measured_mass_range` (``None``: not measured) and
        ``excluded`` maps each ion searched but not used to why.
        """
        span = self.measured_mass_range
        return {
            "model": "FWHM_t = a + b*(t - k0) (TOF channels)",
            "intercept_channels": self.intercept_channels,
            "slope": self.slope,
            "sf": self.sf,
            "k0": self.k0,
            "ions": list(self.ions),
            "masses_u": list(self.masses),
            "fwhm_channels": list(self.fwhm_channels),
            "mass_range_u": None if span is None else list(span),
            "excluded": dict(self.excluded),
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
            tuple((str(k), str(v)) for k, v in (data.get("excluded") or {}).items()),
        )


def measure_peak_width(
    spectrum: np.ndarray,
    sf: float,
    k0: float,
    *,
    polarity: str = "negative",
    ions: Sequence[str] | None = None,
    fragments: Sequence[str] | None = None,
    search_u: float = 0.3,
    min_counts: float = MIN_PEAK_COUNTS,
    min_significance: float = MIN_SIGNIFICANCE,
    reject_sigma: float = REJECT_SIGMA,
) -> PeakWidth:
    """Measure the peak width on the calibration peaks of a summed spectrum.

    Parameters
    ----------
    spectrum
        Counts per TOF channel (a sample of the events is enough).
    sf, k0
        Calibration of the spectrum (channels per √u, channels).
    polarity, ions, fragments
        Calibration ions: ``ions`` as given, else those the mass calibration uses
        (:func:`tofsims.masscal.select_calibration_ions`): the light ions of ``polarity``
        plus the heavy ones up to just beyond the heaviest of ``fragments`` (our notation).
    search_u
        Half-width (u) of the search window around each expected peak.
    min_counts
        Net counts a peak needs to be used.
    min_significance
        Significance (σ of the local background, :func:`tofsims.calibration_peaks.
        peak_significance`) a peak needs to be used, as in the mass calibration.
    reject_sigma
        A peak whose FWHM lies more than this many of its errors from the fitted line is
        dropped, worst first (leave-one-out) while more than two peaks remain.

    Returns
    -------
    PeakWidth
        Weighted least-squares line ``FWHM_t = a + b·(t − k0)`` through the peaks' FWHM
        (a proportional line ``b·(t − k0)`` when the free line would give a negative width
        anywhere up to 300 u, or with a single peak), the peaks used and those excluded.

    Raises
    ------
    AnalysisError
        No calibration peak with ``min_counts`` net counts and ``min_significance``.

    Notes
    -----
    A FWHM's relative error is taken as ``√(1/N + 4/S² + f²)``: the peak's counts (N net
    counts; the moment estimate scatters by ≈ 1/√(2N) to 1/√N), the background B under ±3σ
    (S = N/√B is the significance; B adds ``4B/N²`` to the relative variance of a σ taken
    from second moments over a flat ±3σ box) and ``f`` = :data:`WIDTH_ERROR_FLOOR`; the
    weights are its inverse square. The floor keeps the strongest (light) peaks from fixing
    the line alone, so weaker heavy peaks decide the width at the heavy fragments.
    """
    fragment_mass = None if fragments is None else [ion_mass(f) for f in fragments]
    names = select_calibration_ions(ions, polarity, fragment_mass)
    measured: list[tuple[str, float, float, float]] = []
    excluded: dict[str, str] = {}
    for name in names:
        mass = ion_mass(name)
        centre = float(mass_to_tof(mass, sf, k0))
        half = float(mass_to_tof(mass + search_u, sf, k0) - centre)
        _, sigma, counts, significance = _peak_moments(spectrum, centre, half)
        if not np.isfinite(sigma) or counts < min_counts:
            excluded[name] = NOT_FOUND
        elif significance < min_significance:
            excluded[name] = NOT_SIGNIFICANT
        else:
            error = np.sqrt(1.0 / counts + 4.0 / significance**2 + WIDTH_ERROR_FLOOR**2)
            measured.append((name, mass, FWHM_PER_SIGMA * sigma, float(error)))
    if not measured:
        raise AnalysisError(
            f"no calibration peak ({', '.join(names)}) with {min_counts:g} net counts and "
            f"{min_significance:g} σ above its local background: the peak width cannot be "
            "measured"
        )
    flight = sf * np.sqrt(np.array([m[1] for m in measured]))
    fwhm = np.array([m[2] for m in measured])
    error = np.array([m[3] for m in measured])
    used = np.ones(len(measured), dtype=bool)
    line = _fit_line(flight[used], fwhm[used], error[used], sf)
    while used.sum() > 2 and _worst_deviation(line, flight, fwhm, error, used)[1] > reject_sigma:
        used[_leave_one_out(flight, fwhm, error, used, sf)] = False
        line = _fit_line(flight[used], fwhm[used], error[used], sf)
    for (name, *_), keep in zip(measured, used, strict=True):
        if not keep:
            excluded[name] = REJECTED
    kept = [m for m, keep in zip(measured, used, strict=True) if keep]
    return PeakWidth(
        line[0],
        line[1],
        float(sf),
        float(k0),
        tuple(m[0] for m in kept),
        tuple(m[1] for m in kept),
        tuple(float(m[2]) for m in kept),
        tuple((name, excluded[name]) for name in names if name in excluded),
    )


def _fit_line(
    flight: np.ndarray, fwhm: np.ndarray, error: np.ndarray, sf: float
) -> tuple[float, float]:
    """Weighted line ``fwhm = a + b·flight`` (relative errors ``error``), or ``a = 0``."""
    w = 1.0 / (fwhm * error) ** 2
    slope_only = float(np.sum(w * flight * fwhm) / np.sum(w * flight**2))
    if len(flight) < 2 or np.ptp(flight) <= 0:
        return 0.0, slope_only
    design = np.column_stack([np.ones_like(flight), flight])
    sw = np.sqrt(w)
    (a, b), *_ = np.linalg.lstsq(design * sw[:, None], fwhm * sw, rcond=None)
    top = sf * np.sqrt(300.0)
    if a > 0 and a + b * top > 0 and b >= 0:
        return float(a), float(b)
    return 0.0, slope_only


def _worst_deviation(
    line: tuple[float, float],
    flight: np.ndarray,
    fwhm: np.ndarray,
    error: np.ndarray,
    used: np.ndarray,
) -> tuple[int, float]:
    """Return the used peak furthest from the line and its distance in its errors."""
    model = line[0] + line[1] * flight
    z = np.where(used, np.abs(fwhm / model - 1.0) / error, -np.inf)
    worst = int(np.argmax(z))
    return worst, float(z[worst])


def _leave_one_out(
    flight: np.ndarray, fwhm: np.ndarray, error: np.ndarray, used: np.ndarray, sf: float
) -> int:
    """Peak whose removal leaves the others closest to their line (smallest worst distance).

    Robust against one strong wrong peak, which would pull the line towards itself and make
    the good peaks look like outliers (as :func:`tofsims.masscal.fit_calibration` does).
    """
    best, best_spread = -1, np.inf
    for candidate in np.flatnonzero(used):
        keep = used.copy()
        keep[candidate] = False
        line = _fit_line(flight[keep], fwhm[keep], error[keep], sf)
        spread = _worst_deviation(line, flight, fwhm, error, keep)[1]
        if spread < best_spread:
            best, best_spread = int(candidate), spread
    return best


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
