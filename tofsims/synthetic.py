"""Synthetic layered TOF-SIMS volumes with known ground truth.

A sample is a stack of layers seen from the surface: cathode–electrolyte interphase (CEI,
per-pixel thickness map), an optional CeO2 coating of uniform thickness, and the oxide bulk
(optionally B-doped). Each fragment has an expected count rate per voxel in each layer; layer
boundaries are broadened by a Gaussian of standard deviation ``interface_sigma_nm`` (erf edges,
16–84 % width = 2σ); a surface transient (pre-equilibrium yield ramp) multiplies every signal;
counts are Poisson (or, with saturation, binomial over the primary shots) samples of the
expectation. See ``docs/methods.md`` ("Synthetic layered samples").

The result follows ``docs/conventions.md`` ("TOF-SIMS volume"): ``counts(fragment, scan, y, x)``.
Randomness is drawn row by row from ``numpy.random.default_rng([seed, row])``, so the same seed
gives the same counts whether the volume is built in memory or as a dask array of any chunking.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from importlib.metadata import PackageNotFoundError, version
from itertools import pairwise
from typing import Any

import numpy as np
import xarray as xr
from scipy.ndimage import gaussian_filter
from scipy.special import erf

__all__ = [
    "FRAGMENTS",
    "PRESETS",
    "LayeredSample",
    "SampleTruth",
    "layered_sample",
]

#: Fragments of the synthetic samples, our notation, with integration windows (u).
FRAGMENTS: dict[str, tuple[float, float]] = {
    "C2HO-": (40.98, 41.03),
    "PO3-": (78.93, 78.99),
    "LiF2-": (44.99, 45.04),
    "BO2-": (42.98, 43.02),
    "NiO2-": (89.90, 89.95),
    "CeO2-": (171.85, 171.94),
}

#: Expected counts per voxel in each layer (``cei``, ``coating``, ``bulk``) at full yield.
DEFAULT_LEVELS: dict[str, tuple[float, float, float]] = {
    "C2HO-": (3.0, 0.10, 0.05),
    "PO3-": (1.0, 0.05, 0.03),
    "LiF2-": (5.0, 0.20, 0.05),
    "BO2-": (0.10, 0.20, 0.05),
    "NiO2-": (0.05, 0.30, 4.0),
    "CeO2-": (0.02, 4.0, 0.02),
}


@dataclass(frozen=True)
class LayeredSample:
    """Parameters of a synthetic layered sample (lengths in nm, times in s).

    Attributes
    ----------
    cei_thickness_nm
        Mean CEI thickness (nm) before the tilt and bumps are added.
    cei_tilt
        Relative thickness change across the field (fraction of the mean, along x and y).
    cei_bumps
        Number of Gaussian bumps (random sign) added to the thickness map.
    cei_bump_amplitude
        Bump height as a fraction of the mean thickness.
    coating_thickness_nm
        CeO2 coating thickness below the CEI (nm); 0 means no coating.
    boron_doped
        Bulk BO2− level raised to 0.8 counts/voxel (B-doped oxide).
    interface_sigma_nm
        Gaussian broadening σ of every layer boundary (nm); 16–84 % width = 2σ.
    sputter_rate_nm_per_s
        Constant sputter rate (nm/s) used to map time to depth.
    seconds_per_scan
        Sputter time per scan (s).
    n_scans, ny, nx
        Volume size.
    transient_depth_nm, transient_depth_fraction
        Surface transient: yield factor ``1 − a·exp(−z/λ)`` with a = fraction, λ = depth (nm).
    drift_px
        Total lateral drift (dy, dx) in pixels reached at the last scan (linear in scan).
    lateral_contrast
        Relative standard deviation of a smooth lateral yield map (secondary particles, binder,
        topography) multiplying every signal; it does not move interfaces but gives drift
        correction a structure to register.
    saturation_shots
        Primary shots per pixel and scan; when given, counts are binomial(N, 1 − exp(−λ/N)),
        the dead-time saturated detector; ``None`` gives Poisson counts.
    levels
        Expected counts per voxel per layer (cei, coating, bulk) for every fragment.
    """

    cei_thickness_nm: float = 10.0
    cei_tilt: float = 0.15
    cei_bumps: int = 4
    cei_bump_amplitude: float = 0.15
    coating_thickness_nm: float = 0.0
    boron_doped: bool = False
    interface_sigma_nm: float = 0.5
    sputter_rate_nm_per_s: float = 0.05
    seconds_per_scan: float = 2.0
    n_scans: int = 150
    ny: int = 48
    nx: int = 48
    transient_depth_nm: float = 2.0
    transient_depth_fraction: float = 0.9
    drift_px: tuple[int, int] = (0, 0)
    lateral_contrast: float = 0.3
    saturation_shots: int | None = None
    levels: dict[str, tuple[float, float, float]] = field(
        default_factory=lambda: dict(DEFAULT_LEVELS)
    )


#: Presets of the study: pristine NCM83 (thick CEI, max of the CEI markers at ≈160 s) and the
#: B/Ce-modified one (thin CEI on a CeO2 coating, B-doped bulk, max at ≈60 s).
PRESETS: dict[str, LayeredSample] = {
    "pristine": LayeredSample(cei_thickness_nm=10.0, cei_tilt=0.1, cei_bump_amplitude=0.1),
    "modified": LayeredSample(
        cei_thickness_nm=4.0, coating_thickness_nm=3.0, boron_doped=True, cei_tilt=0.1
    ),
}


@dataclass(frozen=True)
class SampleTruth:
    """Ground truth of a generated sample.

    Attributes
    ----------
    cei_thickness_nm
        Per-pixel CEI thickness map (nm), dims ``(y, x)``, in the frame of scan 0.
    coating_thickness_nm
        Coating thickness (nm); 0 when there is no coating.
    interface_sigma_nm
        Boundary broadening σ (nm).
    sputter_rate_nm_per_s
        Sputter rate (nm/s).
    shifts
        Applied lateral shift (pixels) of each scan, dims ``(scan, axis)``, axis = ``["y", "x"]``.
    expected
        Noise-free expected counts ``(fragment, scan)`` summed over the field (for profile tests).
    """

    cei_thickness_nm: xr.DataArray
    coating_thickness_nm: float
    interface_sigma_nm: float
    sputter_rate_nm_per_s: float
    shifts: xr.DataArray
    expected: xr.DataArray


def layered_sample(
    preset: str | LayeredSample = "pristine",
    *,
    seed: int = 0,
    chunks: dict[str, int] | None = None,
    **overrides: Any,
) -> tuple[xr.Dataset, SampleTruth]:
    """Generate a layered volume ``counts(fragment, scan, y, x)`` and its ground truth.

    Parameters
    ----------
    preset
        ``"pristine"``, ``"modified"`` or a :class:`LayeredSample`.
    seed
        Seed of the random counts and of the thickness-map bumps.
    chunks
        ``{"y": n}`` (and optionally ``"scan"``) to build a dask-backed volume lazily; ``None``
        builds it in memory. The counts are identical either way.
    **overrides
        Fields of :class:`LayeredSample` to change, e.g. ``ny=32, drift_px=(2, 3)``.

    Returns
    -------
    volume, truth
        The volume (conventions "TOF-SIMS volume", ``uint32`` counts, attrs incl.
        ``seconds_per_scan``) and a :class:`SampleTruth`.

    Examples
    --------
    >>> volume, truth = layered_sample("modified", ny=16, nx=16, seed=1)
    >>> volume.counts.dims
    ('fragment', 'scan', 'y', 'x')
    """
    sample = PRESETS[preset] if isinstance(preset, str) else preset
    sample = replace(sample, **overrides)
    canvas, yield_map, margin = _thickness_canvas(sample, seed)
    shifts = _shifts(sample)
    fragments = list(sample.levels)
    shape = (len(fragments), sample.n_scans, sample.ny, sample.nx)

    def rows(y0: int, y1: int) -> np.ndarray:
        return _sample_rows(sample, (canvas, yield_map), margin, shifts, seed, y0, y1)

    if chunks is None:
        data: Any = rows(0, sample.ny)
    else:
        data = _dask_counts(rows, shape, chunks)
    sputter_time = sample.seconds_per_scan * np.arange(1, sample.n_scans + 1)
    volume = xr.Dataset(
        {"counts": (("fragment", "scan", "y", "x"), data, {"units": "counts"})},
        coords={
            "fragment": fragments,
            "mass_low": ("fragment", [FRAGMENTS[f][0] for f in fragments], {"units": "u"}),
            "mass_high": ("fragment", [FRAGMENTS[f][1] for f in fragments], {"units": "u"}),
            "scan": np.arange(sample.n_scans, dtype=np.int64),
            "sputter_time": ("scan", sputter_time, {"units": "s"}),
            "y": np.arange(sample.ny, dtype=np.int64),
            "x": np.arange(sample.nx, dtype=np.int64),
        },
        attrs=_attrs(sample, preset if isinstance(preset, str) else "custom", seed),
    )
    truth_map = canvas[margin : margin + sample.ny, margin : margin + sample.nx]
    truth = SampleTruth(
        cei_thickness_nm=xr.DataArray(
            truth_map,
            dims=("y", "x"),
            coords={"y": volume.y, "x": volume.x},
            attrs={"units": "nm"},
        ),
        coating_thickness_nm=float(sample.coating_thickness_nm),
        interface_sigma_nm=sample.interface_sigma_nm,
        sputter_rate_nm_per_s=sample.sputter_rate_nm_per_s,
        shifts=xr.DataArray(shifts, dims=("scan", "axis"), coords={"axis": ["y", "x"]}),
        expected=_expected_profile(
            sample,
            truth_map,
            yield_map[margin : margin + sample.ny, margin : margin + sample.nx],
            fragments,
            volume,
        ),
    )
    return volume, truth


def _attrs(sample: LayeredSample, name: str, seed: int) -> dict[str, Any]:
    try:
        package = version("operando")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        package = "unknown"
    return {
        "sf": 68914.58,
        "k0": -2129.25,
        "time_resolution_s": 5e-11,
        "shots_per_pixel": sample.saturation_shots or 1,
        "seconds_per_scan": sample.seconds_per_scan,
        "field_of_view_m": 1e-4,
        "poisson_corrected": 0,
        "dead_time_s": 6.5e-8,
        "polarity": "negative",
        "source_file": "",
        "format": "synthetic layered sample",
        "reader": "tofsims.synthetic.layered_sample",
        "reader_version": package,
        "synthetic_preset": name,
        "synthetic_seed": seed,
        "synthetic_sputter_rate_nm_per_s": sample.sputter_rate_nm_per_s,
        "synthetic_coating_thickness_nm": sample.coating_thickness_nm,
    }


def _thickness_canvas(sample: LayeredSample, seed: int) -> tuple[np.ndarray, np.ndarray, int]:
    """CEI thickness (nm) and lateral yield on a canvas padded by the largest drift.

    The thickness is a tilted plane plus Gaussian bumps; the yield is smoothed white noise.
    """
    margin = int(max(abs(sample.drift_px[0]), abs(sample.drift_px[1])))
    ny, nx = sample.ny + 2 * margin, sample.nx + 2 * margin
    yy, xx = np.meshgrid(np.arange(ny) - margin, np.arange(nx) - margin, indexing="ij")
    mean = sample.cei_thickness_nm
    plane = sample.cei_tilt * ((xx - sample.nx / 2) / sample.nx + (yy - sample.ny / 2) / sample.ny)
    rng = np.random.default_rng([seed, 2**31 - 1])
    bumps = np.zeros_like(plane, dtype=float)
    radius = max(sample.nx, sample.ny) / 8
    for _ in range(sample.cei_bumps):
        cy, cx = rng.uniform(0, sample.ny), rng.uniform(0, sample.nx)
        sign = rng.choice([-1.0, 1.0])
        bumps += sign * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * radius**2))
    canvas = mean * (1 + plane + sample.cei_bump_amplitude * bumps)
    texture = gaussian_filter(rng.standard_normal((ny, nx)), 2.0, mode="wrap")
    texture = (texture - texture.mean()) / texture.std()
    yield_map = np.clip(1 + sample.lateral_contrast * texture, 0.2, None)
    return np.clip(canvas, 0.2 * mean, None), yield_map, margin


def _shifts(sample: LayeredSample) -> np.ndarray:
    """Integer (dy, dx) displacement of each scan, growing linearly to ``drift_px``."""
    frac = np.arange(sample.n_scans) / max(sample.n_scans - 1, 1)
    return np.rint(np.outer(frac, sample.drift_px)).astype(np.int64)


def _mean_erf(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean of erf(u) over [a, b] (elementwise, a < b)."""

    def primitive(u: np.ndarray) -> np.ndarray:
        return u * erf(u) + np.exp(-(u**2)) / np.sqrt(np.pi)

    return (primitive(b) - primitive(a)) / (b - a)


def _occupancies(
    sample: LayeredSample, z_lo: np.ndarray, z_hi: np.ndarray, cei: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean fraction of CEI, coating and bulk over each depth interval [z_lo, z_hi] (nm)."""
    scale = np.sqrt(2) * sample.interface_sigma_nm

    def above(edge: np.ndarray) -> np.ndarray:  # mean of 0.5·(1 + erf((z − edge)/√2σ))
        return 0.5 * (1 + _mean_erf((z_lo - edge) / scale, (z_hi - edge) / scale))

    past_cei = above(cei)
    past_coating = above(cei + sample.coating_thickness_nm)
    return 1 - past_cei, past_cei - past_coating, past_coating


def _expected_rows(sample: LayeredSample, cei: np.ndarray, fragments: list[str]) -> np.ndarray:
    """Compute expected counts ``(fragment, scan, ...)`` for CEI thickness ``cei (scan, ...)``."""
    t_end = sample.seconds_per_scan * np.arange(1, sample.n_scans + 1)
    z_hi = (sample.sputter_rate_nm_per_s * t_end).reshape((-1,) + (1,) * (cei.ndim - 1))
    z_lo = z_hi - sample.sputter_rate_nm_per_s * sample.seconds_per_scan
    occ = _occupancies(sample, z_lo, z_hi, cei)
    z_mid = 0.5 * (z_lo + z_hi)
    yield_ramp = 1 - sample.transient_depth_fraction * np.exp(-z_mid / sample.transient_depth_nm)
    out = []
    for name in fragments:
        levels = list(sample.levels[name])
        if name == "BO2-" and sample.boron_doped:
            levels[2] = 0.8
        out.append(yield_ramp * sum(level * o for level, o in zip(levels, occ, strict=True)))
    return np.stack(out)


def _sample_rows(
    sample: LayeredSample,
    canvases: tuple[np.ndarray, np.ndarray],
    margin: int,
    shifts: np.ndarray,
    seed: int,
    y0: int,
    y1: int,
) -> np.ndarray:
    """Sample the counts of rows ``y0:y1`` for all fragments and scans, one RNG stream per row."""
    fragments = list(sample.levels)
    out = np.empty((len(fragments), sample.n_scans, y1 - y0, sample.nx), dtype=np.uint32)
    x = np.arange(sample.nx)
    for row in range(y0, y1):
        canvas_y = row - shifts[:, 0] + margin  # (scan,)
        canvas_x = x[None, :] - shifts[:, 1:2] + margin  # (scan, x)
        cei = canvases[0][canvas_y[:, None], canvas_x]  # (scan, x)
        expected = _expected_rows(sample, cei, fragments) * canvases[1][canvas_y[:, None], canvas_x]
        rng = np.random.default_rng([seed, row])
        if sample.saturation_shots:
            n = sample.saturation_shots
            out[:, :, row - y0] = rng.binomial(n, 1 - np.exp(-expected / n))
        else:
            out[:, :, row - y0] = rng.poisson(expected)
    return out


def _dask_counts(rows: Any, shape: tuple[int, ...], chunks: dict[str, int]) -> Any:
    import dask.array as da

    y_chunk = int(chunks.get("y", shape[2]))
    template = da.empty(shape, chunks=(-1, -1, y_chunk, -1), dtype=np.uint32)

    def block(_: np.ndarray, block_info: dict[Any, Any] | None = None) -> np.ndarray:
        y0, y1 = block_info[0]["array-location"][2]
        return rows(y0, y1)

    counts = template.map_blocks(block, dtype=np.uint32)
    if "scan" in chunks:
        counts = counts.rechunk({1: chunks["scan"]})
    return counts


def _expected_profile(
    sample: LayeredSample,
    truth_map: np.ndarray,
    yield_map: np.ndarray,
    fragments: list[str],
    volume: xr.Dataset,
) -> xr.DataArray:
    """Noise-free expected counts summed over the field (no drift, no saturation).

    Row by row, and lazily (a dask array) when the volume is dask-backed.
    """

    def rows_sum(y0: int, y1: int) -> np.ndarray:
        block = _expected_rows(sample, truth_map[None, y0:y1, :], fragments) * yield_map[y0:y1]
        return block.sum(axis=(2, 3))

    if volume["counts"].chunks is None:
        step = 16
        expected: Any = sum(
            rows_sum(y0, min(y0 + step, sample.ny)) for y0 in range(0, sample.ny, step)
        )
    else:
        import dask
        import dask.array as da

        bounds = np.cumsum((0, *volume["counts"].chunks[2]))
        shape = (len(fragments), sample.n_scans)
        parts = [
            da.from_delayed(dask.delayed(rows_sum)(int(a), int(b)), shape, dtype=float)
            for a, b in pairwise(bounds)
        ]
        expected = da.stack(parts).sum(axis=0)
    return xr.DataArray(
        expected,
        dims=("fragment", "scan"),
        coords={"fragment": fragments, "scan": volume.scan, "sputter_time": volume.sputter_time},
        attrs={"units": "counts"},
    )
