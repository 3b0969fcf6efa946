"""Forward model of a layer stack (CEI, optional coating, bulk) and its Poisson fit.

The expected counts of fragment ``f`` in scan ``k`` are

``μ_fk = ⟨ Y(z) · Σ_L c_fL · o_L(z) + e_f · S(z) ⟩_k``

* ``o_L(z)``: occupancy of layer L (CEI ``(−∞, d₁]``, coating ``[d₁, d₁ + d₂]``, bulk
  ``[d₁ + d₂, ∞)``) measured through the MRI depth resolution (:mod:`tofsims.resolution`):
  ``o = F(z − a) − F(z − b)``;
* ``Y(z) = 1 − a_t·exp(−z/λ_t)``: the surface transient (pre-equilibrium yield), shared;
* ``S(z) = exp(−z/λ_t)``: a surface excess (contamination) with its own amplitude ``e_f``;
* ``⟨·⟩_k``: the mean over the depth interval scan k sputters through
  (:func:`tofsims.depth.scan_intervals`), and, when a lateral thickness distribution is given,
  over CEI thicknesses ``d₁ + δ_i`` weighted by ``w_i`` (the whole field of a laterally varying
  CEI is a mixture of stacks).

The levels ``c_fL ≥ 0`` and ``e_f ≥ 0`` are free per fragment, so any fragment can be fitted
(CEI markers, coating marker, bulk marker); the boundaries, the resolution and the transient are
shared: all fragments are fitted jointly with a Poisson likelihood by a bounded
Levenberg–Marquardt (Fisher-scoring) iteration, started from the best point of a coarse grid in
the thicknesses. The statistical covariance is the inverse Fisher information at the optimum.
The xarray interface is :func:`tofsims.stackfit.fit_layer_stack`. See ``docs/methods.md``
("Layer-stack forward model").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from scipy.optimize import nnls

from tofsims.resolution import mri_cdf

__all__ = [
    "RESOLUTION_MODELS",
    "StackFit",
    "StackModel",
    "fit_stack",
    "stack_expectation",
]

#: Depth-resolution variants: their free parameters. The information depth is fixed (to
#: ``StackModel.information_depth_nm``) except in ``mri-free``: it shifts every interface by
#: about its own value and the data hardly tell the two apart (``docs/methods.md``).
RESOLUTION_MODELS: dict[str, tuple[str, ...]] = {
    "mri": ("roughness_nm", "mixing_nm"),
    "mri-free": ("roughness_nm", "mixing_nm", "information_depth_nm"),
    "gauss": ("roughness_nm",),
}
#: Bounds of the nonlinear parameters (nm, or 1 for the transient fraction).
BOUNDS: dict[str, tuple[float, float]] = {
    "cei_nm": (0.05, np.inf),
    "coating_nm": (0.05, np.inf),
    "roughness_nm": (0.05, 10.0),
    "mixing_nm": (0.0, 10.0),
    "information_depth_nm": (0.0, 5.0),
    "transient_fraction": (0.0, 0.99),
    "transient_depth_nm": (0.05, 20.0),
}
_START = {
    "roughness_nm": 0.6,
    "mixing_nm": 0.5,
    "information_depth_nm": 0.2,
    "transient_fraction": 0.5,
    "transient_depth_nm": 1.0,
}
_SUBSAMPLES = 4


@dataclass(frozen=True)
class StackModel:
    """What is fitted: the scan intervals, the layers and the resolution variant.

    Attributes
    ----------
    intervals
        ``(scan, 2)`` depth interval (nm) each scan sputters through.
    coating
        Whether a coating layer lies between CEI and bulk.
    resolution
        Key of :data:`RESOLUTION_MODELS`.
    information_depth_nm
        Information depth λ (nm) where the resolution variant does not fit it.
    offsets, weights
        Lateral CEI-thickness offsets (nm) and their weights (sum 1); ``(0,), (1,)`` = one
        uniform thickness.
    """

    intervals: np.ndarray
    coating: bool = False
    resolution: str = "mri"
    information_depth_nm: float = 0.3
    offsets: np.ndarray = field(default_factory=lambda: np.zeros(1))
    weights: np.ndarray = field(default_factory=lambda: np.ones(1))

    @property
    def names(self) -> tuple[str, ...]:
        """Names of the nonlinear parameters, in vector order."""
        layers = ("cei_nm", "coating_nm") if self.coating else ("cei_nm",)
        return (
            *layers,
            *RESOLUTION_MODELS[self.resolution],
            "transient_fraction",
            "transient_depth_nm",
        )

    @property
    def n_basis(self) -> int:
        """Layers plus the surface term."""
        return 4 if self.coating else 3

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds of the nonlinear parameters."""
        top = float(self.intervals[-1, 1])
        pairs = [BOUNDS[n] for n in self.names]
        lower = np.array([p[0] for p in pairs])
        upper = np.array([min(p[1], top) for p in pairs])
        return lower, upper

    def resolution_of(self, theta: np.ndarray) -> tuple[float, float, float]:
        """``(σ, w, λ)`` of the depth resolution for parameters ``theta``."""
        p = dict(zip(self.names, theta, strict=True))
        return (
            float(p["roughness_nm"]),
            float(p.get("mixing_nm", 0.0)),
            float(p.get("information_depth_nm", self.information_depth_nm)),
        )

    def basis_over_cei(self, theta: np.ndarray, cei_values: np.ndarray) -> np.ndarray:
        """Basis ``(cei, n_basis, scan)`` for many uniform CEI thicknesses, the rest fixed.

        ``theta``'s own CEI thickness and the lateral offsets are not used.
        """
        p = dict(zip(self.names, theta, strict=True))
        cdf = _tabulated_cdf(*self.resolution_of(theta))
        z, yield_ramp, surface = self._depth_terms(p)
        shifted = z[None] - np.asarray(cei_values, dtype=float)[:, None, None]  # (cei, scan, sub)
        past_cei = cdf(shifted)
        layers = [1 - past_cei]
        if self.coating:
            past_coating = cdf(shifted - p["coating_nm"])
            layers += [past_cei - past_coating, past_coating]
        else:
            layers.append(past_cei)
        parts = np.stack([layer * yield_ramp for layer in layers], axis=1)
        surface_part = np.broadcast_to(surface, (parts.shape[0], 1, *surface.shape))
        return np.concatenate([parts, surface_part], axis=1).mean(axis=-1)

    def _depth_terms(self, p: dict[str, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sub-sampled depths ``(scan, sub)``, the transient yield and the surface term."""
        lo, hi = self.intervals[:, 0], self.intervals[:, 1]
        frac = (np.arange(_SUBSAMPLES) + 0.5) / _SUBSAMPLES
        z = lo[:, None] + frac[None, :] * (hi - lo)[:, None]
        surface = np.exp(-np.clip(z, 0, None) / p["transient_depth_nm"])
        return z, 1 - p["transient_fraction"] * surface, surface

    def basis(self, theta: np.ndarray) -> np.ndarray:
        """Scan-averaged basis ``(n_basis, scan)``: layers × transient yield, then surface term.

        The layers are averaged over the lateral CEI offsets with their weights.
        """
        cei = float(theta[0]) + self.offsets
        return np.einsum("i,ibk->bk", self.weights, self.basis_over_cei(theta, cei))


class _Cdf:
    """The MRI CDF tabulated on a uniform grid, evaluated by linear interpolation."""

    def __init__(self, sigma: float, w: float, lam: float):
        self.step = min(0.005, sigma / 20)
        reach = 14 * (sigma + w + lam)
        self.start = -reach
        self.table = mri_cdf(np.arange(-reach, reach + self.step, self.step), sigma, w, lam)

    def __call__(self, t: np.ndarray) -> np.ndarray:
        position = np.clip((t - self.start) / self.step, 0, self.table.size - 1.000001)
        index = position.astype(np.int64)
        frac = position - index
        return self.table[index] * (1 - frac) + self.table[index + 1] * frac


@lru_cache(maxsize=32)
def _tabulated_cdf(sigma: float, w: float, lam: float) -> _Cdf:
    # interpolation error ≤ step²/8 · max|F″| < 1e-5 with step ≤ σ/20
    return _Cdf(sigma, w, lam)


@dataclass
class StackFit:
    """Result of :func:`fit_stack`.

    Attributes
    ----------
    model
        The :class:`StackModel` fitted.
    theta
        Nonlinear parameters (``model.names``).
    levels
        ``(fragment, n_basis)`` levels ≥ 0: counts per scan of each layer at full yield, then
        the surface-excess amplitude.
    nll
        Poisson negative log-likelihood (up to a data-only constant).
    deviance
        Poisson deviance ``2 Σ [n ln(n/μ) − (n − μ)]``.
    theta_std
        Statistical standard deviations of ``theta`` (inverse Fisher information; NaN for a
        parameter at a bound).
    converged
        Whether the iteration met its tolerance.
    """

    model: StackModel
    theta: np.ndarray
    levels: np.ndarray
    nll: float
    deviance: float
    theta_std: np.ndarray
    converged: bool

    def value(self, name: str) -> float:
        """One nonlinear parameter by name (NaN if the model has none of that name)."""
        return (
            float(self.theta[self.model.names.index(name)]) if name in self.model.names else np.nan
        )

    def std(self, name: str) -> float:
        """Statistical σ of one nonlinear parameter (NaN if absent)."""
        if name not in self.model.names:
            return np.nan
        return float(self.theta_std[self.model.names.index(name)])

    def expected(self) -> np.ndarray:
        """Fitted expectation ``(fragment, scan)``."""
        return self.levels @ self.model.basis(self.theta)


def stack_expectation(model: StackModel, theta: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Return the expected counts ``(fragment, scan)`` of a stack (levels as in StackFit)."""
    return np.asarray(levels, dtype=float) @ model.basis(np.asarray(theta, dtype=float))


# --------------------------------------------------------------------------- likelihood
def _nll(counts: np.ndarray, mu: np.ndarray) -> float:
    mu = np.maximum(mu, 1e-300)
    return float(np.sum(mu - counts * np.log(mu)))


def _deviance(counts: np.ndarray, mu: np.ndarray) -> float:
    mu = np.maximum(mu, 1e-300)
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(counts > 0, counts * np.log(counts / mu), 0.0)
    return float(2 * np.sum(term - (counts - mu)))


def _levels_for(counts: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """Non-negative levels per fragment by weighted NNLS (a start for the Poisson fit)."""
    weights = 1 / np.sqrt(np.maximum(counts, 1.0))
    levels = np.empty((counts.shape[0], basis.shape[0]))
    for f, row in enumerate(counts):
        levels[f], _ = nnls((basis * weights[f]).T, row * weights[f])
    return levels


# --------------------------------------------------------------------------- Levenberg–Marquardt
def _jacobian_theta(model: StackModel, theta: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """Forward-difference derivative of the basis: ``(n_theta, n_basis, scan)``."""
    _lower, upper = model.bounds()
    out = np.empty((theta.size, *basis.shape))
    for i in range(theta.size):
        h = 1e-5 * max(1.0, abs(theta[i]))
        if theta[i] + h > upper[i]:
            h = -h
        step = theta.copy()
        step[i] += h
        out[i] = (model.basis(step) - basis) / h
    return out


def _poisson_lm(
    counts: np.ndarray,
    model: StackModel,
    theta: np.ndarray,
    levels: np.ndarray,
    *,
    max_iter: int = 200,
) -> StackFit:
    """Bounded Levenberg–Marquardt on the Poisson likelihood of all parameters."""
    lower, upper = model.bounds()
    n_theta, (n_frag, n_basis) = theta.size, levels.shape
    p = np.concatenate([np.clip(theta, lower, upper), levels.ravel()])
    lo = np.concatenate([lower, np.zeros(levels.size)])
    hi = np.concatenate([upper, np.full(levels.size, np.inf)])

    def split(vector: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return vector[:n_theta], vector[n_theta:].reshape(n_frag, n_basis)

    def expectation(vector: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        th, lv = split(vector)
        basis = model.basis(th)
        return basis, lv @ basis

    basis, mu = expectation(p)
    current = _nll(counts, mu)
    damping, converged = 1e-3, False
    for _ in range(max_iter):
        grad, info = _gradient_and_information(counts, model, p, basis, mu, n_theta, split)
        free = ~(((p <= lo) & (grad > 0)) | ((p >= hi) & (grad < 0)))
        improved, gain = False, 0.0
        while damping < 1e12:
            step = np.zeros_like(p)
            sub = info[np.ix_(free, free)]
            try:
                step[free] = -np.linalg.solve(
                    sub + damping * np.diag(np.diag(sub) + 1e-12), grad[free]
                )
            except np.linalg.LinAlgError:
                damping *= 10
                continue
            trial = np.clip(p + step, lo, hi)
            trial_basis, trial_mu = expectation(trial)
            value = _nll(counts, trial_mu)
            if value < current:
                improved = True
                gain = current - value
                p, basis, mu, current = trial, trial_basis, trial_mu, value
                damping = max(damping / 5, 1e-9)
                break
            damping *= 8
        if not improved or gain < 1e-9 * max(1.0, abs(current)):
            converged = True  # no step lowers the likelihood any more: a (local) optimum
            break
    th, lv = split(p)
    grad, info = _gradient_and_information(counts, model, p, basis, mu, n_theta, split)
    return StackFit(
        model=model,
        theta=th,
        levels=lv,
        nll=current,
        deviance=_deviance(counts, mu),
        theta_std=_theta_std(info, p, lo, hi, n_theta),
        converged=converged,
    )


def _gradient_and_information(counts, model, p, basis, mu, n_theta, split):
    """Gradient of the NLL and Fisher information ``Jᵀ diag(1/μ) J`` of all parameters."""
    theta, levels = split(p)
    n_frag, n_basis = levels.shape
    mu = np.maximum(mu, 1e-300)
    d_basis = _jacobian_theta(model, theta, basis)  # (n_theta, n_basis, scan)
    j_theta = np.einsum("fb,tbk->fkt", levels, d_basis)  # (frag, scan, n_theta)
    jac = np.zeros((n_frag, mu.shape[1], p.size))
    jac[..., :n_theta] = j_theta
    for f in range(n_frag):
        jac[f, :, n_theta + f * n_basis : n_theta + (f + 1) * n_basis] = basis.T
    flat = jac.reshape(-1, p.size)
    residual = (1 - counts / mu).ravel()
    weight = (1 / mu).ravel()
    return flat.T @ residual, flat.T @ (flat * weight[:, None])


def _theta_std(info, p, lo, hi, n_theta) -> np.ndarray:
    """σ of the nonlinear parameters from the inverse Fisher information (free ones only)."""
    with np.errstate(invalid="ignore"):  # inf upper bounds
        inside = (p > lo + 1e-9 * (1 + np.abs(lo))) & (p < hi - 1e-9 * (1 + np.abs(hi)))
    inside[n_theta:] |= p[n_theta:] > 0
    std = np.full(n_theta, np.nan)
    idx = np.flatnonzero(inside)
    try:
        cov = np.linalg.pinv(info[np.ix_(idx, idx)], rcond=1e-12)
    except np.linalg.LinAlgError:
        return std
    diag = np.sqrt(np.clip(np.diag(cov), 0, None))
    for position, i in enumerate(idx):
        if i < n_theta:
            std[i] = diag[position]
    return std


# --------------------------------------------------------------------------- starting points
def _start_theta(model: StackModel, thickness: tuple[float, ...]) -> np.ndarray:
    values = {"cei_nm": thickness[0], "coating_nm": thickness[-1], **_START}
    return np.array([values[n] for n in model.names])


def _grid_starts(counts: np.ndarray, model: StackModel, n_best: int = 3) -> list[np.ndarray]:
    """Best few thickness combinations on a coarse grid (fixed resolution, NNLS levels)."""
    top = float(model.intervals[-1, 1])
    cei_grid = np.geomspace(0.3, 0.6 * top, 28)
    coating_grid = np.geomspace(0.3, 0.4 * top, 14) if model.coating else [None]
    scored = []
    for cei in cei_grid:
        for coating in coating_grid:
            thickness = (cei,) if coating is None else (cei, coating)
            theta = _start_theta(model, thickness)
            basis = model.basis(theta)
            levels = _levels_for(counts, basis)
            scored.append((_nll(counts, levels @ basis), theta))
    scored.sort(key=lambda item: item[0])
    return [theta for _, theta in scored[:n_best]]


#: Alternative (roughness, mixing) starts: the likelihood has separate valleys for a
#: roughness-dominated and a mixing-dominated resolution.
_RESOLUTION_STARTS = ((0.3, 1.5), (1.5, 0.1), (0.8, 0.8))


def _resolution_variants(model: StackModel, theta: np.ndarray) -> list[np.ndarray]:
    if "mixing_nm" not in model.names:
        return []
    out = []
    for roughness, mixing in _RESOLUTION_STARTS:
        variant = theta.copy()
        variant[model.names.index("roughness_nm")] = roughness
        variant[model.names.index("mixing_nm")] = mixing
        out.append(variant)
    return out


def fit_stack(
    counts: np.ndarray,
    model: StackModel,
    *,
    start: np.ndarray | None = None,
    n_starts: int = 3,
) -> StackFit:
    """Fit a :class:`StackModel` to counts ``(fragment, scan)`` by maximum Poisson likelihood.

    Parameters
    ----------
    counts
        Raw counts (whole field or a region), one row per fragment.
    model
        Scan intervals, layers and resolution variant.
    start
        Nonlinear starting values (``model.names`` order), e.g. a neighbouring fit's; default:
        the best ``n_starts`` points of a coarse thickness grid, plus the best one with a few
        other depth resolutions (roughness- or mixing-dominated).
    n_starts
        Starts tried when ``start`` is not given; the best fit is returned.

    Returns
    -------
    StackFit
    """
    counts = np.asarray(counts, dtype=float)
    starts = (
        [np.asarray(start, dtype=float)]
        if start is not None
        else _grid_starts(counts, model, n_starts)
    )
    if start is None:
        starts += _resolution_variants(model, starts[0])
    best: StackFit | None = None
    for theta in starts:
        basis = model.basis(theta)
        fit = _poisson_lm(counts, model, theta, _levels_for(counts, basis))
        if best is None or fit.nll < best.nll:
            best = fit
    assert best is not None
    return best
