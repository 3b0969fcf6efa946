"""Smooth background drift of a mass-spectrometer channel, anchored where no gas evolves.

The drift model (``docs/methods.md``, "Background")
    A cubic P-spline (Eilers & Marx 1996): B-splines on equally spaced knots
    (``knot_spacing_s``, default 1 h) with a second-difference penalty λ·‖Dβ‖², plus one
    unpenalised step function per detected step (a flow disturbance). λ is chosen by
    generalised cross-validation on the anchor samples, so the data decide how closely
    the spline follows them; across an interval without anchors the penalty makes the
    spline continue as a straight line and its uncertainty grows.

Anchors (:func:`find_anchors`)
    Fit on the initial quiet windows, flag evolution, exclude, refit: every sample whose
    residual, smoothed over ``smooth_s``, lies more than ``k``·σ_smooth from the drift
    is flagged, and each flagged excursion is widened while the residual smoothed over
    ``TAIL_WIDTHS``·``smooth_s`` keeps its sign beyond its own noise and the drift's
    uncertainty (backwards: the weak start of an evolution) or beyond the drift's
    uncertainty alone (forwards: its tail) — but not into the initial quiet windows
    (the EC record's rests, the second half of discharges, the low-potential part of
    charges), which are flagged only by the threshold itself. All other samples of the
    record become anchors and the drift is refitted, until the anchors no longer change.
    Channels that see the same gases then share their flags
    (:func:`dems.background.fit_background` with ``joint``): a tail is excluded from all
    of them where it is clearest, e.g. a CO2 tail seen at m/z 44 also from m/z 28.

Steps
    A step of the background (a flow disturbance) is looked for on a channel without
    gas evolution — the carrier's, where it is clearest — and its time is then fitted
    in every channel as an unpenalised step function: in a channel with gas, a step
    cannot be told from the start of an evolution.

Uncertainty
    The Bayesian covariance of the penalised fit, ``C = σ²(XᵀX + λDᵀD)⁻¹`` (Wahba 1983;
    σ = standard deviation of the anchor residuals), gives the band
    ``σ_b(t) = sqrt(x(t)ᵀ C x(t))`` and the standard uncertainty of an integral of the
    background, ``sqrt(gᵀ C g)`` with ``g = ∫ x(t) dt``.

Kernels on NumPy arrays of one channel (called per channel through
``xr.apply_ufunc`` by :func:`dems.background.fit_background`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from scipy import sparse

__all__ = [
    "DriftFit",
    "DriftModel",
    "excursions",
    "find_anchors",
    "fit_drift",
    "row_variance",
    "smooth",
    "trapezoid_weights",
    "white_noise",
]

#: The widening of an excursion follows the residual smoothed over this many flag widths.
TAIL_WIDTHS = 5

#: λ candidates for the generalised cross-validation, relative to mean(diag XᵀX).
LAMBDA_GRID = 10.0 ** np.arange(-4.0, 6.5, 0.5)


@dataclass(frozen=True)
class DriftModel:
    """Basis of the drift model over one channel's record.

    Parameters
    ----------
    start_s, end_s
        Time span covered (s); times outside are clipped to it.
    knot_spacing_s
        Target distance between B-spline knots (s); the span is cut into whole intervals.
    steps_s
        Times (s) of background steps, each adds a unit step function ``t ≥ step``.
    """

    start_s: float
    end_s: float
    knot_spacing_s: float = 3600.0
    steps_s: tuple[float, ...] = ()

    @property
    def n_intervals(self) -> int:
        """Number of knot intervals over the span."""
        span = max(self.end_s - self.start_s, 1e-9)
        return max(1, int(np.ceil(span / self.knot_spacing_s - 1e-9)))

    @property
    def n_spline(self) -> int:
        """Number of B-spline coefficients (cubic)."""
        return self.n_intervals + 3

    @property
    def knots(self) -> np.ndarray:
        """Full knot vector (three extra knots at either end)."""
        h = max(self.end_s - self.start_s, 1e-9) / self.n_intervals
        return self.start_s + h * np.arange(-3, self.n_intervals + 4)

    def spline_design(self, time: np.ndarray) -> sparse.csr_matrix:
        """Sparse B-spline part of the design matrix (NaN times give zero rows)."""
        from scipy.interpolate import BSpline

        time = np.asarray(time, float)
        t = np.clip(np.where(np.isfinite(time), time, self.start_s), self.start_s, self.end_s)
        x = BSpline.design_matrix(t, self.knots, 3).tocsr()
        if not np.isfinite(time).all():
            x = sparse.diags(np.isfinite(time).astype(float)) @ x
        return x

    def design(self, time: np.ndarray, spline: sparse.csr_matrix | None = None):
        """Sparse design matrix ``(n, n_spline + n_steps)`` at the times ``time`` (s).

        ``spline``: the precomputed :meth:`spline_design` at the same times.
        """
        spline = self.spline_design(time) if spline is None else spline
        if not self.steps_s:
            return spline
        time = np.asarray(time, float)
        steps = np.column_stack([(time >= s).astype(float) for s in self.steps_s])
        return sparse.hstack([spline, sparse.csr_matrix(steps)], format="csr")

    def penalty(self) -> np.ndarray:
        """Second-difference penalty ``DᵀD`` (zero for the step columns)."""
        n = self.n_spline
        d = np.diff(np.eye(n), n=2, axis=0)
        p = np.zeros((n + len(self.steps_s),) * 2)
        p[:n, :n] = d.T @ d
        return p


def trapezoid_weights(time: np.ndarray) -> np.ndarray:
    """Weights w with ``Σ w·f = ∫ f dt`` by the trapezoidal rule on the samples ``time``."""
    time = np.asarray(time, float)
    if time.size < 2:
        return np.zeros(time.shape)
    dt = np.diff(time)
    return 0.5 * (np.concatenate([dt, [0.0]]) + np.concatenate([[0.0], dt]))


def row_variance(x, covariance: np.ndarray) -> np.ndarray:
    """``diag(X C Xᵀ)`` for a dense or sparse design ``X``."""
    xc = x @ covariance
    rows = x.multiply(xc).sum(axis=1) if sparse.issparse(x) else np.sum(x * xc, axis=1)
    return np.clip(np.asarray(rows, float).ravel(), 0, None)


@dataclass
class DriftFit:
    """A fitted drift model: coefficients, λ and the coefficient covariance."""

    model: DriftModel
    coefficients: np.ndarray
    covariance: np.ndarray
    sigma: float
    lam: float
    n_anchors: int
    info: dict = field(default_factory=dict)

    def __call__(self, time: np.ndarray, design=None) -> np.ndarray:
        """Background at ``time`` (signal units); ``design``: precomputed at ``time``."""
        x = self.model.design(time) if design is None else design
        return np.asarray(x @ self.coefficients, float)

    def band(self, time: np.ndarray) -> np.ndarray:
        """Return the standard uncertainty of the background at ``time`` (signal units)."""
        return np.sqrt(row_variance(self.model.design(time), self.covariance))

    def integral_sd(self, time: np.ndarray) -> float:
        """Return the standard uncertainty of ``∫ background dt`` over ``time`` (signal·s)."""
        g = self.model.design(time).T @ trapezoid_weights(time)
        return float(np.sqrt(max(g @ self.covariance @ g, 0.0)))


def fit_drift(
    time: np.ndarray,
    signal: np.ndarray,
    anchors: np.ndarray,
    model: DriftModel,
    design=None,
    lam: float | None = None,
) -> DriftFit | None:
    """Penalised least-squares fit of ``model`` to the anchor samples, λ by GCV.

    Solved for all λ of :data:`LAMBDA_GRID` at once by simultaneous diagonalisation
    of XᵀX and the penalty (Demmler–Reinsch). ``design``: the model's design matrix at
    ``time`` when already computed; ``lam``: a fixed λ instead of the GCV choice.

    Returns
    -------
    DriftFit or None
        None with fewer anchor samples than 4 + number of steps.
    """
    use = anchors & np.isfinite(time) & np.isfinite(signal)
    n = int(use.sum())
    if n < 4 + len(model.steps_s):
        return None
    x = (model.design(time) if design is None else design)[use]
    y = signal[use]
    offset = float(np.median(y))
    y = y - offset
    gram = np.asarray((x.T @ x).todense() if sparse.issparse(x) else x.T @ x)
    xty, yty = np.asarray(x.T @ y, float).ravel(), float(y @ y)
    penalty = model.penalty()
    scale = float(np.mean(np.diag(gram)[: model.n_spline])) or 1.0
    try:
        lower = np.linalg.cholesky(gram + 1e-9 * scale * np.eye(gram.shape[0]))
    except np.linalg.LinAlgError:
        return None
    inv_lower = np.linalg.inv(lower)
    s, u = np.linalg.eigh(inv_lower @ penalty @ inv_lower.T)
    s = np.clip(s, 0, None)
    z = inv_lower.T @ u
    c = z.T @ xty
    grid = LAMBDA_GRID * scale if lam is None else np.array([lam])
    lam = grid[:, None]
    shrink = 1.0 / (1.0 + lam * s[None, :])
    edf = shrink.sum(axis=1)
    rss = np.clip(yty - 2 * (shrink * c**2).sum(axis=1) + (shrink**2 * c**2).sum(axis=1), 0, None)
    with np.errstate(divide="ignore", invalid="ignore"):
        gcv = np.where(n - edf > 1, n * rss / (n - edf) ** 2, np.inf)
    best = int(np.argmin(gcv))
    if not np.isfinite(gcv[best]):
        return None
    beta = z @ (shrink[best] * c)
    # the spline basis sums to one: the offset goes to every B-spline coefficient
    beta[: model.n_spline] += offset
    sigma = float(np.sqrt(rss[best] / (n - edf[best])))
    covariance = sigma**2 * (z * shrink[best]) @ z.T
    info = {"edf": float(edf[best]), "rss": float(rss[best])}
    return DriftFit(model, beta, covariance, sigma, float(lam[best, 0]), n, info)


def smooth(values: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average over ``width`` samples, NaN-aware (NaN where none is valid)."""
    width = max(int(width), 1)
    finite = np.isfinite(values)
    total = np.concatenate([[0.0], np.cumsum(np.where(finite, values, 0.0))])
    count = np.concatenate([[0], np.cumsum(finite)])
    i = np.arange(values.size)
    lo = np.clip(i - (width - 1) // 2, 0, values.size)
    hi = np.clip(i + width // 2 + 1, 0, values.size)
    n = count[hi] - count[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, (total[hi] - total[lo]) / n, np.nan)


def white_noise(values: np.ndarray) -> float:
    """White-noise σ of a series: 1.4826·MAD of its first differences / √2 (NaN-aware)."""
    steps = np.diff(values[np.isfinite(values)])
    if steps.size < 5:
        return float("nan")
    return float(1.4826 * np.median(np.abs(steps - np.median(steps))) / np.sqrt(2))


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Half-open index ranges [a, b) of the True runs of ``mask``."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))


def _widen(flags: np.ndarray, before: np.ndarray, after: np.ndarray | None = None) -> np.ndarray:
    """Extend each flagged run over the adjacent ``before`` (earlier) and ``after`` samples."""
    after = before if after is None else after
    out = flags.copy()
    for a, b in _runs(flags):
        while a > 0 and before[a - 1] and not out[a - 1]:
            a -= 1
            out[a] = True
        while b < flags.size and after[b] and not out[b]:
            out[b] = True
            b += 1
    return out


def excursions(
    residual: np.ndarray,
    sigma_smooth: float | np.ndarray,
    width: int,
    k: float,
    *,
    slow_level: float | np.ndarray = 0.0,
    tail_level: float | np.ndarray = 0.0,
    protected: np.ndarray | None = None,
) -> np.ndarray:
    """Return the excursions of the smoothed residual beyond ±k·σ, widened.

    ``sigma_smooth``: the standard deviation of the residual smoothed over ``width``
    samples, per sample or one value. An upward excursion is widened backwards over the
    samples where the residual smoothed over ``TAIL_WIDTHS·width`` stays above
    ``slow_level`` (the weak start of an evolution) and forwards while it stays above
    ``tail_level`` (its long tail), a downward one while it stays below
    ``-slow_level``; never into ``protected`` samples (flagged only by the threshold).
    """
    r = smooth(residual, width)
    slow = smooth(residual, TAIL_WIDTHS * width)
    finite = np.isfinite(r) & np.isfinite(slow)
    open_ = finite if protected is None else finite & ~protected
    high = _widen(
        finite & (r > k * sigma_smooth), open_ & (slow > slow_level), open_ & (slow > tail_level)
    )
    low = _widen(finite & (r < -k * sigma_smooth), open_ & (slow < -slow_level))
    flags = high | low
    return smooth(flags.astype(float), width) > 0


def _step_score(residual: np.ndarray, window: int) -> np.ndarray:
    """|mean after − mean before| over ``window`` samples at each sample, in units of σ = 1."""
    r = np.where(np.isfinite(residual), residual, 0.0)
    n = np.concatenate([[0.0], np.cumsum(np.isfinite(residual))])
    c = np.concatenate([[0.0], np.cumsum(r)])
    i = np.arange(residual.size)
    lo, hi = np.clip(i - window, 0, None), np.clip(i + window, None, residual.size)
    n_before, n_after = n[i] - n[lo], n[hi] - n[i]
    with np.errstate(invalid="ignore", divide="ignore"):
        before = (c[i] - c[lo]) / n_before
        after = (c[hi] - c[i]) / n_after
        score = np.abs(after - before) / np.sqrt(1.0 / n_before + 1.0 / n_after)
    return np.where((n_before >= window // 2) & (n_after >= window // 2), score, 0.0)


def _add_step(
    time: np.ndarray,
    signal: np.ndarray,
    residual: np.ndarray,
    seen: np.ndarray,
    model: DriftModel,
    spline: sparse.csr_matrix,
    window: int,
    z: float,
) -> DriftModel | None:
    """Return the model with a step at the sharpest level change of the residual, if any.

    The change must be ``z`` standard errors (two-window test over ``window`` samples)
    and, refitted at the same λ over the samples ``seen``, lower the residual sum of
    squares by at least ``z²``σ² against the drift without it.
    """
    sigma = white_noise(np.where(seen, residual, np.nan))
    if not np.isfinite(sigma) or sigma <= 0:
        return None
    score = _step_score(np.where(seen, residual, np.nan) / sigma, window)
    for s in model.steps_s:  # one step per place
        score[np.abs(time - s) < window * float(np.nanmedian(np.diff(time)))] = 0.0
    where = int(np.argmax(score))
    if score[where] < z or not np.isfinite(time[where]):
        return None
    trial = replace(model, steps_s=(*model.steps_s, float(time[where])))
    without = fit_drift(time, signal, seen, model, model.design(time, spline))
    if without is None:
        return None
    with_step = fit_drift(time, signal, seen, trial, trial.design(time, spline), lam=without.lam)
    if with_step is None:
        return None
    gain = (without.info["rss"] - with_step.info["rss"]) / with_step.sigma**2
    return trial if gain >= z**2 else None


def find_anchors(
    time: np.ndarray,
    signal: np.ndarray,
    initial: np.ndarray,
    *,
    knot_spacing_s: float = 3600.0,
    k: float = 3.0,
    smooth_s: float = 120.0,
    steps_s: Sequence[float] = (),
    detect_steps: bool = False,
    step_window_s: float = 900.0,
    step_z: float = 8.0,
    max_steps: int = 3,
    iterations: int = 20,
) -> tuple[np.ndarray, DriftFit | None]:
    """Anchors without gas evolution and the drift fitted through them (module docs).

    Parameters
    ----------
    time, signal
        One channel's own time stamps (s) and signal.
    initial
        Boolean mask of the initial quiet samples (the first fit).
    knot_spacing_s, k, smooth_s
        Drift knot spacing (s); flag level in smoothed-residual σ; smoothing width (s).
    steps_s
        Known step times (s), e.g. found on the carrier's channel.
    detect_steps
        Look for steps in this channel first (meant for a channel without gas
        evolution, such as the carrier's): fitted through all samples, the sharpest
        level change of the residual (two-window test over ``step_window_s``) becomes a
        step when it is ``step_z`` standard errors and improves the fit by
        ``step_z²``σ²; repeated, at most ``max_steps``.
    iterations
        Most fit–flag rounds.

    Returns
    -------
    anchors, fit
        Boolean anchor mask and the final :class:`DriftFit` (None if too few anchors).
    """
    valid = np.isfinite(time) & np.isfinite(signal)
    if valid.sum() < 8:
        return np.zeros(time.shape, bool), None
    t_valid = time[valid]
    model = DriftModel(float(t_valid.min()), float(t_valid.max()), knot_spacing_s)
    inside = [float(s) for s in steps_s if np.isfinite(s) and model.start_s < s < model.end_s]
    model = replace(model, steps_s=tuple(sorted(inside)))
    dt = float(np.median(np.diff(t_valid))) if t_valid.size > 1 else 1.0
    width = max(3, round(smooth_s / dt))
    anchors = initial & valid
    spline = model.spline_design(time)
    design = model.design(time, spline)
    window = max(10, round(step_window_s / dt))
    while detect_steps and len(model.steps_s) < max_steps:
        # a channel without gas: every sample is evidence about steps
        fit = fit_drift(time, signal, valid, model, design)
        if fit is None:
            break
        residual = np.where(valid, signal - fit(time, design), np.nan)
        stepped = _add_step(time, signal, residual, valid, model, spline, window, step_z)
        if stepped is None:
            break
        model = stepped
        design = model.design(time, spline)
    fit = None
    for _ in range(iterations):
        fit = fit_drift(time, signal, anchors, model, design)
        if fit is None:
            break
        residual = np.where(valid, signal - fit(time, design), np.nan)
        sigma = white_noise(np.where(anchors, residual, np.nan))
        smoothed = smooth(np.where(anchors, residual, np.nan), width)[anchors]
        sigma_smooth = max(
            sigma / np.sqrt(width) if np.isfinite(sigma) else 0.0,
            float(1.4826 * np.median(np.abs(smoothed - np.median(smoothed)))),
        )
        # a deviation is not significant where the drift itself is uncertain
        band2 = row_variance(design, fit.covariance)
        scale = np.sqrt(sigma_smooth**2 + band2)
        slow = np.sqrt(sigma**2 / (TAIL_WIDTHS * width) + band2) if np.isfinite(sigma) else 0.0
        new = valid & ~excursions(
            residual,
            scale,
            width,
            k,
            slow_level=slow,
            tail_level=np.sqrt(band2),
            protected=initial & valid,
        )
        changed = int(np.sum(new != anchors))
        anchors = new
        # flags at the noise level can flip back and forth: a few widths is converged
        if changed <= 5 * width:
            break
    if fit is not None and fit.model is not model:
        fit = fit_drift(time, signal, anchors, model, design)
    return anchors, fit
