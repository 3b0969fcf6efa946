"""Depth-resolution function of sputter depth profiling: Hofmann's MRI model.

The mixing–roughness–information-depth (MRI) model (Hofmann, Surf. Interface Anal. 21 (1994)
673; Hofmann et al., Appl. Surf. Sci. 314 (2014) 942) writes the measured profile as the true
composition convolved with a depth-resolution function ``g`` that has three parts:

* atomic mixing over a length ``w``: a delta layer at ``z′`` is first seen when the mixing
  zone reaches it (sputtered depth ``z = z′ − w``) and then decays as ``exp(−(z − z′ + w)/w)``;
* surface roughness ``σ``: a Gaussian;
* information depth ``λ``: the signal of ``z′`` appears before it reaches the surface,
  weighted ``exp(−(z′ − z)/λ)``.

As a random offset ``T = z − z′`` this is ``T = N(0, σ²) + w·(E₁ − 1) − λ·E₂`` with ``E₁``,
``E₂`` standard exponential variates: a normal–Laplace distribution (Reed & Jorgensen,
Commun. Stat. Theory Methods 33 (2004) 1733) shifted by ``−w``, whose CDF and density are
closed-form in Mills' ratio. A layer occupying ``[a, b]`` is measured as
``F(z − a) − F(z − b)`` (``F`` = CDF of ``T``); the top layer as ``1 − F(z − b)``.
With ``w = λ = 0`` the function is a Gaussian (erf edges, 16–84 % width = 2σ).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import erfcx, log_ndtr, ndtr

__all__ = ["MriResolution", "mri_cdf", "mri_pdf"]

_LOG_SQRT_2PI = 0.5 * np.log(2 * np.pi)


@dataclass(frozen=True)
class MriResolution:
    """Parameters of the MRI depth-resolution function (all in nm).

    Attributes
    ----------
    roughness_nm
        Gaussian standard deviation σ (> 0).
    mixing_nm
        Atomic-mixing length w (≥ 0).
    information_depth_nm
        Information depth λ (≥ 0).
    """

    roughness_nm: float = 0.5
    mixing_nm: float = 0.0
    information_depth_nm: float = 0.0

    def cdf(self, t: np.ndarray) -> np.ndarray:
        """CDF of the offset ``T = z − z′`` (see :func:`mri_cdf`)."""
        return mri_cdf(t, self.roughness_nm, self.mixing_nm, self.information_depth_nm)

    def width_16_84(self) -> float:
        """16–84 % width (nm) of a step measured through this resolution."""
        grid = np.linspace(-12, 12, 24001) * (
            self.roughness_nm + self.mixing_nm + self.information_depth_nm
        )
        values = self.cdf(grid)
        return float(np.interp(0.84, values, grid) - np.interp(0.16, values, grid))


def _log_mills(x: np.ndarray) -> np.ndarray:
    """Log of Mills' ratio R(x) = (1 − Φ(x))/φ(x), stable for every x."""
    x = np.asarray(x, dtype=float)
    out = np.empty_like(x)
    positive = x > 0
    # x > 0: R = √(π/2)·erfcx(x/√2) (no underflow); x ≤ 0: log Φ(−x) + x²/2 + log √(2π)
    out[positive] = np.log(np.sqrt(np.pi / 2) * erfcx(x[positive] / np.sqrt(2)))
    rest = x[~positive]
    out[~positive] = log_ndtr(-rest) + rest**2 / 2 + _LOG_SQRT_2PI
    return out


def _tails(
    t: np.ndarray, sigma: float, w: float, lam: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Standardised offset u and the two exponential-tail terms φ(u)·R(·) (0 when absent)."""
    u = (np.asarray(t, dtype=float) + w) / sigma
    log_phi = -(u**2) / 2 - _LOG_SQRT_2PI
    mixing = np.exp(log_phi + _log_mills(sigma / w - u)) if w > 0 else np.zeros_like(u)
    info = np.exp(log_phi + _log_mills(sigma / lam + u)) if lam > 0 else np.zeros_like(u)
    return u, mixing, info


def _check(sigma: float, w: float, lam: float) -> None:
    if not (sigma > 0 and w >= 0 and lam >= 0):
        raise ValueError(f"MRI parameters need σ > 0, w ≥ 0, λ ≥ 0 (got {sigma}, {w}, {lam})")


def mri_cdf(t: np.ndarray, sigma: float, w: float = 0.0, lam: float = 0.0) -> np.ndarray:
    """CDF of the MRI offset ``T = N(0, σ²) + w(E₁ − 1) − λE₂`` (nm).

    Parameters
    ----------
    t
        Offsets ``z − z′`` (nm): sputtered depth minus the depth of the feature.
    sigma, w, lam
        Roughness σ (> 0), mixing length w (≥ 0) and information depth λ (≥ 0), nm.

    Returns
    -------
    numpy.ndarray
        ``P(T ≤ t)``: the measured fraction of a step (bulk starting at ``z′``) at sputtered
        depth ``z′ + t``.
    """
    _check(sigma, w, lam)
    u, mixing, info = _tails(t, sigma, w, lam)
    total = w + lam
    if total == 0:
        return ndtr(u)
    return np.clip(ndtr(u) - (w / total) * mixing + (lam / total) * info, 0.0, 1.0)


def mri_pdf(t: np.ndarray, sigma: float, w: float = 0.0, lam: float = 0.0) -> np.ndarray:
    """Density of the MRI offset (1/nm): the measured profile of a delta layer."""
    _check(sigma, w, lam)
    u, mixing, info = _tails(t, sigma, w, lam)
    phi = np.exp(-(u**2) / 2 - _LOG_SQRT_2PI)
    if w == 0 and lam == 0:
        return phi / sigma
    if w == 0:
        return info / lam
    if lam == 0:
        return mixing / w
    return (mixing + info) / (w + lam)
