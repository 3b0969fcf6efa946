"""Synthetic layered TOF-SIMS volumes with known ground truth.

A sample is a stack of layers seen from the surface: cathode–electrolyte interphase (CEI,
per-pixel thickness map), an optional CeO2 coating of uniform thickness, and the oxide bulk
(optionally B-doped). Each fragment has an expected count rate per voxel in each layer (the
species, their levels, the sample parameters and the presets are described in
:mod:`tofsims.synthetic_samples` and importable from here too); layer boundaries are broadened
by the MRI depth-resolution function (:mod:`tofsims.resolution`: roughness
``interface_sigma_nm``, mixing ``mixing_nm``, information depth ``information_depth_nm``; with
the last two 0 it is a Gaussian, erf edges of 16–84 % width 2σ); a surface transient
(pre-equilibrium yield ramp) multiplies every signal and optional surface excesses
(contamination) add to some; counts are Poisson (or, with saturation, binomial over the primary
shots) samples of the expectation, scaled so a chosen marker reaches a chosen number of counts
per pixel and scan at its maximum. Scan ``k`` sputters through depths ``[r·t_k, r·(t_k + Δt)]``
and stores ``sputter_time = t_k = k·Δt`` (start of the scan, ``docs/conventions.md``). See
``docs/methods.md`` ("Synthetic layered samples").

The result follows ``docs/conventions.md`` ("TOF-SIMS volume"): ``counts(fragment, scan, y, x)``.
Randomness is drawn row by row from ``numpy.random.default_rng([seed, row])``, so the same seed
gives the same counts whether the volume is built in memory or as a dask array of any chunking.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from itertools import pairwise
from typing import Any

import numpy as np
import xarray as xr
from scipy.ndimage import gaussian_filter
from scipy.special import erf

from tofsims.fragments import NATURAL_10B_11B, ion_mass
from tofsims.resolution import MriResolution, mri_cdf
from tofsims.synthetic_samples import (
    DEFAULT_LEVELS,
    DOPED_BULK_BO2,
    FRAGMENTS,
    ISOTOPOLOGUE_WINDOWS,
    ISOTOPOLOGUES,
    NEIGHBOURS,
    PRESETS,
    REAL_LEVELS,
    LayeredSample,
)

__all__ = [
    "DEFAULT_LEVELS",
    "DOPED_BULK_BO2",
    "FRAGMENTS",
    "ISOTOPOLOGUES",
    "ISOTOPOLOGUE_WINDOWS",
    "NEIGHBOURS",
    "PRESETS",
    "REAL_LEVELS",
    "LayeredSample",
    "SampleTruth",
    "layered_sample",
    "marker_peak_counts",
]


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
    count_scale
        Factor applied to every level (1 unless ``marker_peak`` was given).
    peak_counts
        Field-mean expected counts per pixel and scan at each fragment's maximum
        ``(fragment,)``.
    resolution
        The depth resolution used (:class:`tofsims.resolution.MriResolution`).
    """

    cei_thickness_nm: xr.DataArray
    coating_thickness_nm: float
    interface_sigma_nm: float
    sputter_rate_nm_per_s: float
    shifts: xr.DataArray
    expected: xr.DataArray
    count_scale: float = 1.0
    peak_counts: xr.DataArray | None = None
    resolution: MriResolution | None = None


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
    sample = _with_species(replace(sample, **overrides))
    canvas, yield_map, margin = _thickness_canvas(sample, seed)
    field_of_view = (slice(margin, margin + sample.ny), slice(margin, margin + sample.nx))
    scale = _count_scale(sample, canvas[field_of_view], yield_map[field_of_view])
    sample = replace(
        sample, levels={k: tuple(scale * v for v in lv) for k, lv in sample.levels.items()}
    )
    shifts = _shifts(sample)
    fragments = list(sample.levels)
    shape = (len(fragments), sample.n_scans, sample.ny, sample.nx)

    def rows(y0: int, y1: int) -> np.ndarray:
        return _sample_rows(sample, (canvas, yield_map), margin, shifts, seed, y0, y1)

    if chunks is None:
        data: Any = rows(0, sample.ny)
    else:
        data = _dask_counts(rows, shape, chunks)
    sputter_time = sample.seconds_per_scan * np.arange(sample.n_scans)
    volume = xr.Dataset(
        {"counts": (("fragment", "scan", "y", "x"), data, {"units": "counts"})},
        coords={
            "fragment": fragments,
            "mass_low": ("fragment", [_window(f)[0] for f in fragments], {"units": "u"}),
            "mass_high": ("fragment", [_window(f)[1] for f in fragments], {"units": "u"}),
            "scan": np.arange(sample.n_scans, dtype=np.int64),
            "sputter_time": ("scan", sputter_time, {"units": "s", "time_reference": "start"}),
            "y": np.arange(sample.ny, dtype=np.int64),
            "x": np.arange(sample.nx, dtype=np.int64),
        },
        attrs=_attrs(sample, preset if isinstance(preset, str) else "custom", seed),
    )
    volume.attrs["synthetic_count_scale"] = scale
    if sample.neighbours:
        volume = volume.assign_coords(
            target=("fragment", [_target(f) for f in fragments]),
            species_mass=("fragment", [ion_mass(f) for f in fragments], {"units": "u"}),
        )
    truth_map = canvas[field_of_view]
    expected = _expected_profile(sample, truth_map, yield_map[field_of_view], fragments, volume)
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
        expected=expected,
        count_scale=scale,
        peak_counts=(expected.max("scan") / (sample.ny * sample.nx)).drop_vars(
            "sputter_time", errors="ignore"
        ),
        resolution=_resolution(sample),
    )
    return volume, truth


def _target(species: str) -> str:
    """Target window a species falls in (a target names itself)."""
    return NEIGHBOURS[species][0] if species in NEIGHBOURS else species


def _window(species: str) -> tuple[float, float]:
    """Integration window (u) of a species: its target's."""
    target = _target(species)
    return FRAGMENTS[target] if target in FRAGMENTS else ISOTOPOLOGUE_WINDOWS[target]


def _with_species(sample: LayeredSample) -> LayeredSample:
    """Apply ``boron_free`` and ``neighbours`` to the levels (per species)."""
    if sample.boron_free and sample.boron_doped:
        raise ValueError("a sample cannot be both boron_free and boron_doped")
    levels = dict(sample.levels)
    if sample.neighbours:
        for species, (main, ratio) in ISOTOPOLOGUES.items():
            if main in levels and species not in levels:
                levels[species] = tuple(ratio * v for v in levels[main])
        for species, (target, reference, fractions) in NEIGHBOURS.items():
            if target in levels and reference in levels and species not in levels:
                levels[species] = tuple(
                    f * v for f, v in zip(fractions, levels[reference], strict=True)
                )
    if sample.boron_free:
        for species in ("BO2-", "10BO2-"):
            if species in levels:
                levels[species] = (0.0, 0.0, 0.0)
    return replace(sample, levels=levels)


def _resolution(sample: LayeredSample) -> MriResolution:
    return MriResolution(sample.interface_sigma_nm, sample.mixing_nm, sample.information_depth_nm)


def _count_scale(sample: LayeredSample, thickness: np.ndarray, yield_map: np.ndarray) -> float:
    """Factor on every level that brings ``marker_peak``'s fragment to its target maximum."""
    if sample.marker_peak is None:
        return 1.0
    fragment, target = sample.marker_peak
    if fragment not in sample.levels:
        raise ValueError(f"marker_peak fragment {fragment!r} is not among the levels")
    # exact up to 512 × 512 pixels; a regular subsample of larger fields (smooth maps)
    step = max(1, -(-max(thickness.shape) // 512))
    cei, weight = thickness[::step, ::step], yield_map[::step, ::step]
    profile = sum(
        (_expected_rows(sample, cei[row][None, :], [fragment])[0] * weight[row]).sum(axis=1)
        for row in range(cei.shape[0])
    )
    return float(target * cei.size / profile.max())


def marker_peak_counts(truth: SampleTruth, fragment: str) -> float:
    """Field-mean expected counts per pixel and scan at ``fragment``'s maximum (truth)."""
    if truth.peak_counts is None:
        raise ValueError("the truth holds no peak counts")
    return float(truth.peak_counts.sel(fragment=fragment))


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


#: Sub-samples per scan when averaging the MRI occupancy over a scan's depth interval.
_SUBSAMPLES = 6


@lru_cache(maxsize=8)
def _scan_averaged_cdf(
    step: float, sigma: float, w: float, lam: float
) -> tuple[np.ndarray, np.ndarray]:
    """MRI CDF averaged over one scan's depth interval ``[t, t + step]``, on a 2 pm grid."""
    reach = 12 * (sigma + w + lam)
    grid = np.arange(-reach - step, reach + step, 0.002)
    offsets = (np.arange(_SUBSAMPLES) + 0.5) / _SUBSAMPLES
    table = sum(mri_cdf(grid + f * step, sigma, w, lam) for f in offsets) / _SUBSAMPLES
    return grid, table


def _occupancies(
    sample: LayeredSample, z_lo: np.ndarray, z_hi: np.ndarray, cei: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean fraction of CEI, coating and bulk over each depth interval [z_lo, z_hi] (nm)."""
    scale = np.sqrt(2) * sample.interface_sigma_nm
    mri = sample.mixing_nm > 0 or sample.information_depth_nm > 0

    if mri:
        grid, table = _scan_averaged_cdf(
            sample.sputter_rate_nm_per_s * sample.seconds_per_scan,
            sample.interface_sigma_nm,
            sample.mixing_nm,
            sample.information_depth_nm,
        )

    def above(edge: np.ndarray) -> np.ndarray:
        if not mri:  # exact mean of 0.5·(1 + erf((z − edge)/√2σ)) over the interval
            return 0.5 * (1 + _mean_erf((z_lo - edge) / scale, (z_hi - edge) / scale))
        return np.interp(z_lo - edge, grid, table)

    past_cei = above(cei)
    past_coating = above(cei + sample.coating_thickness_nm)
    return 1 - past_cei, past_cei - past_coating, past_coating


def _expected_rows(sample: LayeredSample, cei: np.ndarray, fragments: list[str]) -> np.ndarray:
    """Compute expected counts ``(fragment, scan, ...)`` for CEI thickness ``cei (scan, ...)``."""
    t_end = sample.seconds_per_scan * np.arange(1, sample.n_scans + 1)  # scan k ends at (k+1)Δt
    z_hi = (sample.sputter_rate_nm_per_s * t_end).reshape((-1,) + (1,) * (cei.ndim - 1))
    z_lo = z_hi - sample.sputter_rate_nm_per_s * sample.seconds_per_scan
    occ = _occupancies(sample, z_lo, z_hi, cei)
    z_mid = 0.5 * (z_lo + z_hi)
    surface = np.exp(-z_mid / sample.transient_depth_nm)
    yield_ramp = 1 - sample.transient_depth_fraction * surface
    out = []
    for name in fragments:
        levels = list(sample.levels[name])
        if name == "BO2-" and sample.boron_doped:
            levels[2] = DOPED_BULK_BO2
        elif name == "10BO2-" and sample.boron_doped:
            levels[2] = DOPED_BULK_BO2 * NATURAL_10B_11B
        signal = yield_ramp * sum(level * o for level, o in zip(levels, occ, strict=True))
        # occupancy differences can be −1e-17; a species absent from a layer must stay ≥ 0
        signal = np.clip(signal, 0.0, None)
        excess = sample.surface_excess.get(name, 0.0)
        out.append(signal + excess * levels[0] * surface if excess else signal)
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
