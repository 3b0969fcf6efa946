"""TOF-SIMS mass calibration ``t = SF·√m + K0`` (t in TOF channels, m in u).

:func:`calibrate` starts from the SF/K0 of the properties, finds the calibration peaks
(H⁻, C⁻, CH⁻, O⁻, OH⁻, F⁻ … or their positive counterparts) near their expected flight
times in the summed spectrum, centroids them (:mod:`tofsims.calibration_peaks`) and refits
SF and K0 by weighted least squares, reporting each peak's residual in ppm of mass. Given
the fragments to be calibrated, heavier calibration ions
(:data:`tofsims.fragments.CALIBRATION_IONS_HEAVY`, carbon clusters Cₙ⁻ …) are added up to
and one beyond the heaviest fragment; a peak is used only if it stands ``min_significance``
σ above its local background, and the fit says which ions were used, which were missing and
the 1σ error (ppm) at every fragment, flagging fragments outside the mass range of the used
ions (extrapolated). See ``docs/methods.md``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from tofsims.calibration_peaks import (
    MIN_SIGNIFICANCE,
    centroid_peak,
    locate_peaks,
    peak_significance,
)
from tofsims.errors import AnalysisError
from tofsims.fragments import CALIBRATION_IONS, CALIBRATION_IONS_HEAVY, ion_mass

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
    "peak_significance",
    "select_calibration_ions",
    "tof_to_mass",
    "window_channels",
]

#: Status of a calibration ion in a fit.
USED, NOT_FOUND, NOT_SIGNIFICANT, REJECTED = "used", "not found", "not significant", "rejected"


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


def _locate_peaks(
    spectrum: np.ndarray,
    sf: float,
    k0: float,
    masses: np.ndarray,
    search_u: float,
    min_counts: float,
    min_significance: float,
) -> tuple[np.ndarray, ...]:
    """:func:`~tofsims.calibration_peaks.locate_peaks` within ±``search_u`` u of each mass."""
    expected = mass_to_tof(masses, sf, k0)
    # dt/dm = sf/(2√m): the search window's half-width in channels at each mass
    half_widths = search_u * sf / (2.0 * np.sqrt(masses))
    return locate_peaks(spectrum, expected, half_widths, min_counts, min_significance)


def _robust_fit(
    masses: np.ndarray, centroid: np.ndarray, error: np.ndarray, used: np.ndarray, reject_ppm: float
) -> tuple[float, float, np.ndarray]:
    """Fit the used peaks, dropping the worst (leave-one-out) while a residual > reject_ppm."""
    new_sf, new_k0, residual = fit_sf_k0(masses[used], centroid[used], error[used])
    while used.sum() > 2 and np.abs(residual).max() > reject_ppm:
        used[_worst_peak(masses, centroid, error, used)] = False
        new_sf, new_k0, residual = fit_sf_k0(masses[used], centroid[used], error[used])
    return new_sf, new_k0, residual


def _calibrate_numpy(
    spectrum: np.ndarray,
    sf: float,
    k0: float,
    masses: np.ndarray,
    search_u: float,
    min_counts: float,
    reject_ppm: float,
    min_significance: float = MIN_SIGNIFICANCE,
) -> tuple[np.ndarray, ...]:
    expected = mass_to_tof(masses, sf, k0)
    located = _locate_peaks(spectrum, sf, k0, masses, search_u, min_counts, min_significance)
    used = located[4].copy()
    if used.sum() < 2:
        raise AnalysisError(
            f"mass calibration: only {int(used.sum())} calibration peak(s) with ≥ {min_counts:g} "
            f"counts and ≥ {min_significance:g} σ above the local background within "
            f"±{search_u:g} u of the expected flight times (need 2); "
            "check polarity and SF/K0, or skip the recalibration"
        )
    new_sf, new_k0, _ = _robust_fit(masses, located[0], located[1], used, reject_ppm)
    # second pass: search again around the positions the first fit predicts, so heavy
    # ions (whose position a wrong SF moves most) are centred in their search windows
    second = _locate_peaks(spectrum, new_sf, new_k0, masses, search_u, min_counts, min_significance)
    if second[4].sum() >= 2:
        located, used = second, second[4].copy()
        new_sf, new_k0, _ = _robust_fit(masses, located[0], located[1], used, reject_ppm)
    centroid, error, counts, significance, _ = located
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
        significance,
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
    significance
        Per ion: net counts over the Poisson error of the local background under the peak
        (:func:`peak_significance`); NaN-free, 0 where no peak was found.
    status
        Per ion: ``"used"``, ``"not found"`` (no peak with ``min_counts`` net counts in the
        search window, e.g. absent or beyond the spectrum), ``"not significant"`` (below
        ``min_significance``) or ``"rejected"`` (residual outlier).
    min_significance
        The significance a peak needed.
    fragments, fragment_mass
        Fragments (names) and masses (u) where the calibration's error is reported.
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
    significance: np.ndarray | None = None
    status: tuple[str, ...] = ()
    min_significance: float = MIN_SIGNIFICANCE
    fragments: tuple[str, ...] = ()
    fragment_mass: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def mass_error_ppm(self, mass: Any) -> np.ndarray:
        """1σ error (ppm) of a mass calibrated with this fit, from its (sf, k0) covariance.

        With √m = (t − k0)/sf, ∂√m/∂sf = −√m/sf and ∂√m/∂k0 = −1/sf; the relative mass
        error is twice that of √m. Statistical only: outside the mass range of the used
        peaks (:meth:`extrapolated`) any deviation of the instrument from ``t = SF·√m + K0``
        adds an error this does not contain.
        """
        root = np.sqrt(np.asarray(mass, dtype="float64"))
        gradient = np.stack([-root / self.sf, np.full_like(root, -1.0 / self.sf)])
        variance = np.einsum("i...,ij,j...->...", gradient, self.covariance, gradient)
        return 2.0 * np.sqrt(variance) / root * 1e6

    @property
    def used_mass_range(self) -> tuple[float, float]:
        """Lightest and heaviest mass (u) among the used calibration peaks."""
        used = self.mass[self.used]
        return float(used.min()), float(used.max())

    def extrapolated(self, mass: Any) -> np.ndarray:
        """Flag masses (u) outside the range of the used calibration peaks (True = outside)."""
        low, high = self.used_mass_range
        mass = np.asarray(mass, dtype="float64")
        return (mass < low) | (mass > high)

    @property
    def missing(self) -> tuple[str, ...]:
        """Calibration ions that were asked for but not used (see :attr:`status`)."""
        return tuple(ion for ion, used in zip(self.ions, self.used, strict=True) if not used)

    @property
    def fragment_error_ppm(self) -> np.ndarray:
        """1σ calibration error (ppm) at each of :attr:`fragment_mass`."""
        return self.mass_error_ppm(self.fragment_mass)

    def to_record(self) -> dict[str, Any]:
        """JSON-ready description: start and refitted SF/K0, every peak, error per fragment."""
        significance = np.zeros(len(self.ions)) if self.significance is None else self.significance
        status = self.status or tuple(USED if u else NOT_FOUND for u in self.used)
        low, high = self.used_mass_range
        return {
            "sf_start": self.sf_start,
            "k0_start": self.k0_start,
            "sf": self.sf,
            "k0": self.k0,
            "min_significance": self.min_significance,
            "used_mass_range_u": [low, high],
            "missing": list(self.missing),
            "peaks": [
                {
                    "ion": ion,
                    "mass_u": float(m),
                    "used": bool(u),
                    "status": st,
                    "significance": round(float(sig), 1),
                    "residual_ppm": float(r) if np.isfinite(r) else None,
                }
                for ion, m, u, st, sig, r in zip(
                    self.ions,
                    self.mass,
                    self.used,
                    status,
                    significance,
                    self.residual_ppm,
                    strict=True,
                )
            ],
            "fragments": [
                {
                    "fragment": name,
                    "mass_u": float(m),
                    "error_ppm": float(e),
                    "extrapolated": bool(x),
                }
                for name, m, e, x in zip(
                    self.fragments,
                    self.fragment_mass,
                    self.fragment_error_ppm,
                    self.extrapolated(self.fragment_mass),
                    strict=True,
                )
            ],
        }


def _fragment_masses(
    fragments: Sequence[str] | Mapping[str, float] | None,
) -> tuple[tuple[str, ...], np.ndarray]:
    """Names and masses (u) of the fragments: formulas, or a mapping name → mass."""
    if fragments is None:
        return (), np.zeros(0)
    if isinstance(fragments, Mapping):
        names = tuple(str(name) for name in fragments)
        return names, np.array([float(fragments[n]) for n in fragments], dtype="float64")
    names = tuple(str(f) for f in fragments)
    return names, np.array([ion_mass(f) for f in names], dtype="float64")


def select_calibration_ions(
    ions: Sequence[str] | None, polarity: str | None, fragment_mass: Any = None
) -> list[str]:
    """Return the ions given, or the light ions of a polarity plus heavy ones to the fragments.

    Heavy ions (:data:`tofsims.fragments.CALIBRATION_IONS_HEAVY`) are added up to the
    heaviest fragment and one beyond it, so the fragments lie inside the calibrated range.
    The mass calibration and the peak width
    (:func:`tofsims.peak_windows.measure_peak_width`) choose their ions with it.

    Parameters
    ----------
    ions
        Ions to use as they are (our notation); ``None``: choose them.
    polarity
        ``"negative"`` or ``"positive"`` (:data:`tofsims.fragments.CALIBRATION_IONS`).
    fragment_mass
        Masses (u) of the fragments; ``None`` or empty: the light ions only.
    """
    if ions is not None:
        return list(ions)
    if polarity not in CALIBRATION_IONS:
        raise AnalysisError("mass calibration: give ions= or polarity='negative'/'positive'")
    chosen = list(CALIBRATION_IONS[polarity])
    if fragment_mass is None or len(fragment_mass) == 0:
        return chosen
    heaviest = float(np.max(fragment_mass))
    light_top = max(ion_mass(ion) for ion in chosen)
    for ion in sorted(CALIBRATION_IONS_HEAVY[polarity], key=ion_mass):
        mass = ion_mass(ion)
        if mass <= light_top:
            continue
        chosen.append(ion)
        if mass > heaviest:
            break
    return chosen


def fit_calibration(
    spectrum: np.ndarray,
    sf: float,
    k0: float,
    ions: Sequence[str] | None = None,
    polarity: str | None = None,
    search_u: float = 0.05,
    min_counts: float = 20.0,
    reject_ppm: float = 100.0,
    fragments: Sequence[str] | Mapping[str, float] | None = None,
    min_significance: float = MIN_SIGNIFICANCE,
) -> CalibrationFit:
    """Refine the mass calibration on a NumPy spectrum (counts per TOF channel, channel 0 first).

    The same fit as :func:`calibrate` (see there for the parameters), eager and without
    xarray, plus the covariance of the refitted SF/K0, each ion's status and the error at
    each fragment.

    Raises
    ------
    AnalysisError
        Fewer than two calibration peaks found.
    """
    fragment_names, fragment_mass = _fragment_masses(fragments)
    ions = select_calibration_ions(ions, polarity, fragment_mass)
    masses = np.array([ion_mass(ion) for ion in ions])
    results = _calibrate_numpy(
        np.asarray(spectrum), sf, k0, masses, search_u, min_counts, reject_ppm, min_significance
    )
    new_sf, new_k0, expected, centroid, error, counts, used, residual, significance = results
    design = np.column_stack([np.sqrt(masses[used]), np.ones(int(used.sum()))])
    covariance = np.linalg.pinv(design.T @ (design / error[used, None] ** 2))
    status = tuple(
        USED
        if u
        else NOT_FOUND
        if not np.isfinite(c)
        else NOT_SIGNIFICANT
        if sig < min_significance
        else REJECTED
        for u, c, sig in zip(used, centroid, significance, strict=True)
    )
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
        significance,
        status,
        float(min_significance),
        fragment_names,
        fragment_mass,
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
    fragments: Sequence[str] | Mapping[str, float] | None = None,
    min_significance: float = MIN_SIGNIFICANCE,
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
        of ``polarity`` (or of ``spectrum.attrs["polarity"]``), plus the heavy ions of
        :data:`tofsims.fragments.CALIBRATION_IONS_HEAVY` up to and one beyond the heaviest
        of ``fragments``.
    search_u
        Half-width (u) of the search window around each expected peak.
    min_counts
        Minimum net counts for a peak to be used.
    reject_ppm
        Peaks whose residual exceeds this are dropped one at a time (worst first) while
        more than two remain.
    fragments
        Fragments (formulas, or a mapping name → mass in u) to be calibrated: they choose
        the heavy calibration ions, and the result gives the 1σ calibration error at each.
    min_significance
        Significance (:func:`peak_significance`, σ of the local background) a peak needs
        to be used.

    Returns
    -------
    xarray.Dataset
        Scalars ``sf`` and ``k0`` (refitted) and, along ``ion`` (coordinate ``mass``, u):
        ``tof_expected`` (from the starting calibration), ``tof_centroid``, ``tof_error``
        (1σ, channels), ``counts`` (net), ``used`` (bool), ``residual_ppm`` and
        ``significance`` (σ); with ``fragments``, along ``fragment`` (coordinate
        ``fragment_mass``, u): ``fragment_error_ppm`` (1σ, from the centroid errors of the
        used peaks) and ``extrapolated`` (outside the used peaks' mass range). Attributes
        ``sf_start``, ``k0_start``, ``min_significance``.

    Raises
    ------
    AnalysisError
        (at compute time) fewer than two calibration peaks found.
    """
    import xarray as xr

    if ions is None:
        polarity = polarity or spectrum.attrs.get("polarity")
    fragment_names, fragment_mass = _fragment_masses(fragments)
    ions = select_calibration_ions(ions, polarity, fragment_mass)
    masses = np.array([ion_mass(ion) for ion in ions])
    results = xr.apply_ufunc(
        _calibrate_numpy,
        spectrum,
        input_core_dims=[["tof_channel"]],
        output_core_dims=[[], [], *[["ion"]] * 7],
        kwargs={
            "sf": sf,
            "k0": k0,
            "masses": masses,
            "search_u": search_u,
            "min_counts": min_counts,
            "reject_ppm": reject_ppm,
            "min_significance": min_significance,
        },
        dask="parallelized",
        output_dtypes=[np.float64] * 6 + [bool, np.float64, np.float64],
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
        "significance",
    ]
    ds = xr.Dataset(dict(zip(names, results, strict=True)))
    ds = ds.assign_coords(ion=ions, mass=("ion", masses))
    ds["mass"].attrs["units"] = "u"
    ds["residual_ppm"].attrs["units"] = "ppm"
    for name in ("tof_expected", "tof_centroid", "tof_error", "k0"):
        ds[name].attrs["units"] = "channel"
    ds["significance"].attrs["units"] = "sigma"
    if fragment_names:
        ds = ds.assign(_fragment_error(ds, masses, fragment_mass)).assign_coords(
            fragment=list(fragment_names), fragment_mass=("fragment", fragment_mass)
        )
        ds["fragment_mass"].attrs["units"] = "u"
    ds.attrs.update(
        {"sf_start": float(sf), "k0_start": float(k0), "min_significance": min_significance}
    )
    return ds


def _fragment_error_numpy(
    sf: np.ndarray,
    tof_error: np.ndarray,
    used: np.ndarray,
    masses: np.ndarray,
    fragment_mass: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """1σ error (ppm) and extrapolation flag at the fragments, from the used peaks."""
    design = np.column_stack([np.sqrt(masses[used]), np.ones(int(used.sum()))])
    covariance = np.linalg.pinv(design.T @ (design / tof_error[used, None] ** 2))
    root = np.sqrt(fragment_mass)
    gradient = np.stack([-root / sf, np.full_like(root, -1.0 / sf)])
    variance = np.einsum("i...,ij,j...->...", gradient, covariance, gradient)
    used_mass = masses[used]
    outside = (fragment_mass < used_mass.min()) | (fragment_mass > used_mass.max())
    return 2.0 * np.sqrt(variance) / root * 1e6, outside


def _fragment_error(
    ds: xr.Dataset, masses: np.ndarray, fragment_mass: np.ndarray
) -> dict[str, xr.DataArray]:
    import xarray as xr

    error, outside = xr.apply_ufunc(
        _fragment_error_numpy,
        ds["sf"],
        ds["tof_error"],
        ds["used"],
        input_core_dims=[[], ["ion"], ["ion"]],
        output_core_dims=[["fragment"], ["fragment"]],
        kwargs={"masses": masses, "fragment_mass": fragment_mass},
        vectorize=True,
        dask="parallelized",
        output_dtypes=[np.float64, bool],
        dask_gufunc_kwargs={"output_sizes": {"fragment": len(fragment_mass)}},
    )
    error.attrs["units"] = "ppm"
    return {"fragment_error_ppm": error, "extrapolated": outside}
