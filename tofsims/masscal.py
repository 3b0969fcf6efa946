"""TOF-SIMS mass calibration ``t = SF·√m + K0`` (t in TOF channels, m in u).

:func:`calibrate` starts from the SF/K0 of the properties, finds the calibration peaks
(H⁻, C⁻, CH⁻, O⁻, OH⁻, F⁻ … or their positive counterparts) near their expected flight
times in the summed spectrum, centroids them and refits SF and K0 by weighted least
squares, reporting each peak's residual in ppm of mass. See ``docs/methods.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from tofsims.errors import AnalysisError
from tofsims.fragments import CALIBRATION_IONS, ion_mass

if TYPE_CHECKING:
    # imported in calibrate(): the sampled calibration of a GRD runs before xarray is loaded
    import xarray as xr

__all__ = [
    "CalibrationFit",
    "calibrate",
    "centroid_peak",
    "fit_calibration",
    "fit_sf_k0",
    "mass_to_tof",
    "tof_to_mass",
    "window_channels",
]

#: Floor of the centroid uncertainty in channels (quantisation, residual systematic shifts).
CENTROID_ERROR_FLOOR = 0.01


def mass_to_tof(mass: Any, sf: float, k0: float) -> Any:
    """Flight time in channels of a mass in u: ``sf·√m + k0``."""
    return sf * np.sqrt(mass) + k0


def tof_to_mass(tof: Any, sf: float, k0: float) -> Any:
    """Mass in u of a flight time in channels: ``((t − k0)/sf)²``."""
    return ((np.asarray(tof, dtype="float64") - k0) / sf) ** 2


def window_channels(mass_low: Any, mass_high: Any, sf: float, k0: float) -> tuple[Any, Any]:
    """First and last TOF channel (inclusive) whose flight time lies inside a mass window.

    A channel ``c`` belongs to ``[mass_low, mass_high]`` when
    ``mass_to_tof(mass_low) ≤ c ≤ mass_to_tof(mass_high)``.
    """
    first = np.ceil(mass_to_tof(np.asarray(mass_low, dtype="float64"), sf, k0))
    last = np.floor(mass_to_tof(np.asarray(mass_high, dtype="float64"), sf, k0))
    return first.astype(np.int64), last.astype(np.int64)


def centroid_peak(
    spectrum: np.ndarray, expected: float, half_width: float, min_counts: float = 20.0
) -> tuple[float, float, float]:
    """Centroid of the strongest peak within ``expected ± half_width`` channels.

    The peak top (contiguous channels above half maximum) gives a first estimate; the
    centroid is then recomputed twice over ±1.5 FWHM around the previous one, after
    subtracting the mean level of the search window's outer quarters (local background).

    Returns
    -------
    centroid, error, counts
        Channel (float), its 1σ standard error (channels) and the net counts in the
        centroid window; NaN when the window holds fewer than ``min_counts`` net counts.
    """
    lo = max(int(np.floor(expected - half_width)), 0)
    hi = min(int(np.ceil(expected + half_width)) + 1, spectrum.shape[0])
    if hi - lo < 5:
        return np.nan, np.nan, 0.0
    region = spectrum[lo:hi].astype("float64")
    quarter = max((hi - lo) // 4, 1)
    background = 0.5 * (region[:quarter].mean() + region[-quarter:].mean())
    net = np.clip(region - background, 0.0, None)
    top = int(np.argmax(net))
    if net[top] <= 0:
        return np.nan, np.nan, 0.0
    left, right = top, top
    while left > 0 and net[left - 1] > 0.5 * net[top]:
        left -= 1
    while right < net.size - 1 and net[right + 1] > 0.5 * net[top]:
        right += 1
    fwhm = right - left + 1
    channels = np.arange(net.size, dtype="float64")
    centre = float(
        np.sum(channels[left : right + 1] * net[left : right + 1]) / np.sum(net[left : right + 1])
    )
    weights = net
    for _ in range(3):
        half = 1.5 * fwhm
        mask = np.abs(channels - centre) <= half
        weights = np.where(mask, net, 0.0)
        total = weights.sum()
        if total <= 0:
            return np.nan, np.nan, 0.0
        centre = float(np.sum(channels * weights) / total)
    total = float(weights.sum())
    if total < min_counts:
        return np.nan, np.nan, total
    spread = np.sqrt(np.sum(weights * (channels - centre) ** 2) / total)
    error = max(spread / np.sqrt(total), CENTROID_ERROR_FLOOR)
    return lo + centre, float(error), total


def fit_sf_k0(
    masses: np.ndarray, tofs: np.ndarray, errors: np.ndarray
) -> tuple[float, float, np.ndarray]:
    """Weighted least squares of ``t = sf·√m + k0``.

    Parameters
    ----------
    masses
        Exact ion masses in u (at least two distinct).
    tofs, errors
        Peak centroids and their 1σ errors, in channels.

    Returns
    -------
    sf, k0, residual_ppm
        Fitted parameters and the mass residuals ``(m_fit − m_exact)/m_exact`` in ppm.
    """
    design = np.column_stack([np.sqrt(masses), np.ones_like(masses)])
    weights = 1.0 / np.asarray(errors, dtype="float64")
    solution, *_ = np.linalg.lstsq(design * weights[:, None], tofs * weights, rcond=None)
    sf, k0 = float(solution[0]), float(solution[1])
    residual = (tof_to_mass(tofs, sf, k0) - masses) / masses * 1e6
    return sf, k0, residual


def _worst_peak(
    masses: np.ndarray, centroid: np.ndarray, error: np.ndarray, used: np.ndarray
) -> int:
    """Peak whose removal leaves the smallest maximum |residual| (leave-one-out).

    Robust against one strong wrong peak, which would pull a weighted fit towards itself
    and make the good peaks look like outliers.
    """
    best, best_spread = -1, np.inf
    for candidate in np.flatnonzero(used):
        keep = used.copy()
        keep[candidate] = False
        spread = np.abs(fit_sf_k0(masses[keep], centroid[keep], error[keep])[2]).max()
        if spread < best_spread:
            best, best_spread = int(candidate), spread
    return best


def _calibrate_numpy(
    spectrum: np.ndarray,
    sf: float,
    k0: float,
    masses: np.ndarray,
    search_u: float,
    min_counts: float,
    reject_ppm: float,
) -> tuple[np.ndarray, ...]:
    expected = mass_to_tof(masses, sf, k0)
    half_widths = search_u * sf / (2.0 * np.sqrt(masses))
    found = [
        centroid_peak(spectrum, e, w, min_counts)
        for e, w in zip(expected, half_widths, strict=True)
    ]
    centroid, error, counts = (np.array(col, dtype="float64") for col in zip(*found, strict=True))
    used = np.isfinite(centroid)
    if used.sum() < 2:
        raise AnalysisError(
            f"mass calibration: only {int(used.sum())} calibration peak(s) with ≥ {min_counts:g} "
            f"counts within ±{search_u:g} u of the expected flight times (need 2); "
            "check polarity and SF/K0, or skip the recalibration"
        )
    new_sf, new_k0, residual = fit_sf_k0(masses[used], centroid[used], error[used])
    while used.sum() > 2 and np.abs(residual).max() > reject_ppm:
        used[_worst_peak(masses, centroid, error, used)] = False
        new_sf, new_k0, residual = fit_sf_k0(masses[used], centroid[used], error[used])
    residual_all = (tof_to_mass(centroid, new_sf, new_k0) - masses) / masses * 1e6
    return (
        np.float64(new_sf),
        np.float64(new_k0),
        expected,
        centroid,
        error,
        counts,
        used,
        residual_all,
    )


@dataclass(frozen=True)
class CalibrationFit:
    """A mass calibration refitted on a spectrum (NumPy result of :func:`fit_calibration`).

    Attributes
    ----------
    sf, k0
        Refitted calibration (channels per √u, channels).
    sf_start, k0_start
        The calibration the peaks were searched with.
    ions
        Calibration ions (our notation).
    mass
        Their exact masses (u).
    tof_expected, tof_centroid, tof_error, counts, used, residual_ppm
        Per ion, as the variables of :func:`calibrate`.
    covariance
        2 × 2 covariance of (sf, k0) propagated from the centroid errors of the used peaks.
    """

    sf: float
    k0: float
    sf_start: float
    k0_start: float
    ions: tuple[str, ...]
    mass: np.ndarray
    tof_expected: np.ndarray
    tof_centroid: np.ndarray
    tof_error: np.ndarray
    counts: np.ndarray
    used: np.ndarray
    residual_ppm: np.ndarray
    covariance: np.ndarray

    def mass_error_ppm(self, mass: Any) -> np.ndarray:
        """1σ error (ppm) of a mass calibrated with this fit, from its (sf, k0) covariance.

        With √m = (t − k0)/sf, ∂√m/∂sf = −√m/sf and ∂√m/∂k0 = −1/sf; the relative mass
        error is twice that of √m.
        """
        root = np.sqrt(np.asarray(mass, dtype="float64"))
        gradient = np.stack([-root / self.sf, np.full_like(root, -1.0 / self.sf)])
        variance = np.einsum("i...,ij,j...->...", gradient, self.covariance, gradient)
        return 2.0 * np.sqrt(variance) / root * 1e6

    def to_record(self) -> dict[str, Any]:
        """JSON-ready description: start and refitted SF/K0, every peak's residual."""
        return {
            "sf_start": self.sf_start,
            "k0_start": self.k0_start,
            "sf": self.sf,
            "k0": self.k0,
            "peaks": [
                {
                    "ion": ion,
                    "mass_u": float(m),
                    "used": bool(u),
                    "residual_ppm": float(r) if np.isfinite(r) else None,
                }
                for ion, m, u, r in zip(
                    self.ions, self.mass, self.used, self.residual_ppm, strict=True
                )
            ],
        }


def _calibration_ions(ions: Sequence[str] | None, polarity: str | None) -> list[str]:
    if ions is None:
        if polarity not in CALIBRATION_IONS:
            raise AnalysisError("mass calibration: give ions= or polarity='negative'/'positive'")
        ions = CALIBRATION_IONS[polarity]
    return list(ions)


def fit_calibration(
    spectrum: np.ndarray,
    sf: float,
    k0: float,
    ions: Sequence[str] | None = None,
    polarity: str | None = None,
    search_u: float = 0.05,
    min_counts: float = 20.0,
    reject_ppm: float = 100.0,
) -> CalibrationFit:
    """Refine the mass calibration on a NumPy spectrum (counts per TOF channel, channel 0 first).

    The same fit as :func:`calibrate` (see there for the parameters), eager and without
    xarray, plus the covariance of the refitted SF/K0.

    Raises
    ------
    AnalysisError
        Fewer than two calibration peaks found.
    """
    ions = _calibration_ions(ions, polarity)
    masses = np.array([ion_mass(ion) for ion in ions])
    results = _calibrate_numpy(
        np.asarray(spectrum), sf, k0, masses, search_u, min_counts, reject_ppm
    )
    new_sf, new_k0, expected, centroid, error, counts, used, residual = results
    design = np.column_stack([np.sqrt(masses[used]), np.ones(int(used.sum()))])
    covariance = np.linalg.pinv(design.T @ (design / error[used, None] ** 2))
    return CalibrationFit(
        float(new_sf),
        float(new_k0),
        float(sf),
        float(k0),
        tuple(ions),
        masses,
        expected,
        centroid,
        error,
        counts,
        used,
        residual,
        covariance,
    )


def calibrate(
    spectrum: xr.DataArray,
    sf: float,
    k0: float,
    ions: Sequence[str] | None = None,
    polarity: str | None = None,
    search_u: float = 0.05,
    min_counts: float = 20.0,
    reject_ppm: float = 100.0,
) -> xr.Dataset:
    """Refine the mass calibration on the summed spectrum.

    Lazy on dask-backed input (``xr.apply_ufunc(..., dask="parallelized")``).

    Parameters
    ----------
    spectrum
        Counts per TOF channel along dimension ``tof_channel`` (channel 0 first), e.g. the
        ``spectrum`` by-product of :func:`tofsims.reconstruct.reconstruct`.
    sf, k0
        Starting calibration (from ``properties.txt``), channels per √u and channels.
    ions
        Calibration ions (our notation); default :data:`tofsims.fragments.CALIBRATION_IONS`
        of ``polarity`` (or of ``spectrum.attrs["polarity"]``).
    search_u
        Half-width (u) of the search window around each expected peak.
    min_counts
        Minimum net counts for a peak to be used.
    reject_ppm
        Peaks whose residual exceeds this are dropped one at a time (worst first) while
        more than two remain.

    Returns
    -------
    xarray.Dataset
        Scalars ``sf`` and ``k0`` (refitted) and, along ``ion`` (coordinate ``mass``, u):
        ``tof_expected`` (from the starting calibration), ``tof_centroid``, ``tof_error``
        (1σ, channels), ``counts`` (net), ``used`` (bool) and ``residual_ppm``. Attributes
        ``sf_start``, ``k0_start``.

    Raises
    ------
    AnalysisError
        (at compute time) fewer than two calibration peaks found.
    """
    import xarray as xr

    if ions is None:
        polarity = polarity or spectrum.attrs.get("polarity")
    ions = _calibration_ions(ions, polarity)
    masses = np.array([ion_mass(ion) for ion in ions])
    results = xr.apply_ufunc(
        _calibrate_numpy,
        spectrum,
        input_core_dims=[["tof_channel"]],
        output_core_dims=[[], [], *[["ion"]] * 6],
        kwargs={
            "sf": sf,
            "k0": k0,
            "masses": masses,
            "search_u": search_u,
            "min_counts": min_counts,
            "reject_ppm": reject_ppm,
        },
        dask="parallelized",
        output_dtypes=[np.float64] * 6 + [bool, np.float64],
        dask_gufunc_kwargs={"output_sizes": {"ion": len(ions)}, "allow_rechunk": True},
    )
    names = [
        "sf",
        "k0",
        "tof_expected",
        "tof_centroid",
        "tof_error",
        "counts",
        "used",
        "residual_ppm",
    ]
    ds = xr.Dataset(dict(zip(names, results, strict=True)))
    ds = ds.assign_coords(ion=ions, mass=("ion", masses))
    ds["mass"].attrs["units"] = "u"
    ds["residual_ppm"].attrs["units"] = "ppm"
    for name in ("tof_expected", "tof_centroid", "tof_error", "k0"):
        ds[name].attrs["units"] = "channel"
    ds.attrs.update({"sf_start": float(sf), "k0_start": float(k0)})
    return ds
