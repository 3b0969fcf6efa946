"""Write real-format TOF-SIMS files from any counts volume, with their ground truth.

Input: ``counts(fragment, scan, y, x)`` (integer counts, ``docs/conventions.md``) with
fragments in our notation. Outputs:

* :func:`write_grd` — a GRD event list + ``properties.txt``: each count becomes one
  event whose TOF is drawn inside its fragment's peak (Gaussian of the given mass
  resolution and pulse length, ±3σ), plus calibration peaks and a flat chemical
  background, in random order within each scan; returns the true counts per voxel and
  mass window;
* :func:`write_ascii3d` — IONTOF 3D ASCII per-peak exports (``x y z intensity``);
* :func:`write_surfacelab_profile` — a SurfaceLab ASCII depth-profile export.

Each writer writes to the path it is given (test and example data, not published results).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from tofsims.fragments import CALIBRATION_IONS, ion_mass, iontof_label
from tofsims.jit import cached_njit
from tofsims.masscal import mass_to_tof, window_channels

__all__ = [
    "peak_fwhm_channels",
    "poisson_volume",
    "write_ascii3d",
    "write_grd",
    "write_properties",
    "write_surfacelab_profile",
]

ELEMENTARY_CHARGE_C = 1.602176634e-19
#: TOF channel width written to ``properties.txt`` by default (s).
TIME_RESOLUTION_S = 5e-11


def write_properties(
    path: str | os.PathLike[str],
    *,
    sf: float,
    k0: float,
    raster: tuple[int, int],
    scans: int,
    shots_per_pixel: int = 1,
    polarity: str = "negative",
    time_resolution_s: float = TIME_RESOLUTION_S,
    field_of_view_m: float = 1e-4,
    dead_time_s: float | None = None,
    cycle_time_s: float = 1e-4,
    sputter_time_s: float | None = None,
) -> Path:
    """Write a SurfaceLab-style ``properties.txt`` (4 TAB columns, cp1252, CRLF).

    ``sputter_time_s`` (total, s) is written as ``Analysis.SputterTime`` when given.
    """
    ny, nx = raster
    rows: list[tuple[str, float, str]] = [
        (
            "Analysis.PIShots",
            ny * nx * scans * shots_per_pixel,
            f"{ny * nx * scans * shots_per_pixel}",
        ),
        ("Analysis.TotalScans", scans, f"{scans}"),
        ("Context.MassScale.K0", k0, f"{k0:.3f} "),
        ("Context.MassScale.SF", sf, f"{sf:.3f} "),
        ("Context.MassScale.Polarity", -1 if polarity == "negative" else 1, polarity.title()),
        ("Measurement.CycleTime", cycle_time_s, f"{cycle_time_s * 1e6:g} µs"),
        ("Registration.Raster.FieldOfView", field_of_view_m, f"{field_of_view_m * 1e6:g} µm"),
        ("Registration.Raster.ShotsPerPixel", shots_per_pixel, f"{shots_per_pixel}"),
        ("Registration.TimeResolution", time_resolution_s, f"{time_resolution_s * 1e12:g}ps"),
    ]
    if ny == nx:
        rows.append(("Registration.Raster.Resolution", nx, f"{nx}"))
    else:
        rows.append(("Registration.Raster.StageRaster.TotalResolution.X", nx, f"{nx}"))
        rows.append(("Registration.Raster.StageRaster.TotalResolution.Y", ny, f"{ny}"))
    if dead_time_s is not None:
        rows.append(
            ("Context.Mode.StaticSIMS.TDC.DeadTime", dead_time_s, f"{dead_time_s * 1e9:g} ns")
        )
    if sputter_time_s is not None:
        rows.append(("Analysis.SputterTime", sputter_time_s, f"{sputter_time_s:g} s"))
    text = "".join(f"{key}\t{int(value)}\t{value!r}\t{shown}\r\n" for key, value, shown in rows)
    path = Path(path)
    with open(path, "wb") as handle:
        handle.write(text.encode("cp1252"))
    return path


def peak_fwhm_channels(
    mass: Any, sf: float, k0: float, resolution: float, pulse_fwhm_channels: float = 0.0
) -> Any:
    """FWHM (TOF channels) of the peaks :func:`write_grd` draws at ``mass`` (u).

    The flight-time spread ``t_flight/(2R)`` (a constant resolving power ``R``) and the
    primary-ion pulse (a constant width in time) added in quadrature:
    ``√((t_flight/2R)² + pulse²)``, with ``t_flight = t − k0 = sf·√m``. With a pulse, light
    peaks are broader than ``R`` gives and the resolving power grows with mass towards ``R``.
    """
    flight = mass_to_tof(np.asarray(mass, dtype="float64"), sf, k0) - k0
    return np.hypot(flight / (2.0 * resolution), pulse_fwhm_channels)


def _peak_tofs(
    rng: np.random.Generator,
    mass: float,
    n: int,
    sf: float,
    k0: float,
    resolution: float,
    pulse_fwhm_channels: float,
) -> np.ndarray:
    """``n`` integer flight times of one peak: Gaussian (:func:`peak_fwhm_channels`), ±3σ."""
    centre = mass_to_tof(mass, sf, k0)
    sigma = peak_fwhm_channels(mass, sf, k0, resolution, pulse_fwhm_channels) / 2.3548
    offsets = np.clip(rng.standard_normal(n), -3.0, 3.0) * sigma
    return np.rint(centre + offsets).astype(np.uint32)


def _scan_events(
    rng,
    counts_scan,
    masses,
    sf,
    k0,
    resolution,
    pulse_fwhm_channels,
    calibration,
    background,
    background_channels,
    shots_per_pixel,
):
    """Events ``(n, 5)`` uint32 of one scan, shuffled (scan column filled by the caller)."""
    n_frag, ny, nx = counts_scan.shape
    pulse = pulse_fwhm_channels
    pixel_index = np.arange(ny * nx)
    voxel_parts, tof_parts = [], []
    for f in range(n_frag):
        per_pixel = counts_scan[f].ravel()
        voxel_parts.append(np.repeat(pixel_index, per_pixel))
        tof_parts.append(
            _peak_tofs(rng, masses[f], int(per_pixel.sum()), sf, k0, resolution, pulse)
        )
    for mass, mean in calibration:
        per_pixel = rng.poisson(mean, ny * nx)
        voxel_parts.append(np.repeat(pixel_index, per_pixel))
        tof_parts.append(_peak_tofs(rng, mass, int(per_pixel.sum()), sf, k0, resolution, pulse))
    if background > 0:
        per_pixel = rng.poisson(background, ny * nx)
        voxel_parts.append(np.repeat(pixel_index, per_pixel))
        tof_parts.append(rng.integers(*background_channels, int(per_pixel.sum()), dtype=np.uint32))
    voxels = np.concatenate(voxel_parts)
    tofs = np.concatenate(tof_parts)
    order = rng.permutation(voxels.size)
    voxels, tofs = voxels[order], tofs[order]
    records = np.empty((voxels.size, 5), dtype="<u4")
    records[:, 1] = rng.integers(0, shots_per_pixel, voxels.size)
    records[:, 2] = voxels % nx
    records[:, 3] = voxels // nx
    records[:, 4] = tofs
    return records


def _window_truth(
    records: np.ndarray, channels: tuple[np.ndarray, np.ndarray], ny: int, nx: int
) -> np.ndarray:
    """Count one scan's events per window and pixel (straightforward NumPy reference)."""
    first, last = channels
    pixel = records[:, 3].astype(np.int64) * nx + records[:, 2]
    out = np.zeros((len(first), ny * nx), dtype=np.uint32)
    for w, (lo, hi) in enumerate(zip(first, last, strict=True)):
        inside = (records[:, 4] >= lo) & (records[:, 4] <= hi)
        out[w] = np.bincount(pixel[inside], minlength=ny * nx)
    return out.reshape(len(first), ny, nx)


@cached_njit(nogil=True)
def _detected_in_order(pixel_shot, tofs, dead_channels):  # pragma: no cover - compiled
    # events sorted by (pixel and shot, TOF): non-paralysable detector, an ion within the
    # dead time after the last *detected* ion of the same shot is lost
    kept = np.ones(tofs.shape[0], dtype=np.bool_)
    last = tofs[0] if tofs.shape[0] else 0
    for i in range(1, tofs.shape[0]):
        if pixel_shot[i] != pixel_shot[i - 1] or tofs[i] - last >= dead_channels:
            last = tofs[i]
        else:
            kept[i] = False
    return kept


def _detected(records: np.ndarray, nx: int, shots_per_pixel: int, dead_channels: int):
    """Mask of the records a detector with a dead time of ``dead_channels`` registers."""
    pixel_shot = (records[:, 3].astype(np.int64) * nx + records[:, 2]) * shots_per_pixel
    pixel_shot += records[:, 1]
    order = np.lexsort((records[:, 4], pixel_shot))
    kept = np.empty(records.shape[0], dtype=np.bool_)
    kept[order] = _detected_in_order(
        pixel_shot[order], records[order, 4].astype(np.int64), int(dead_channels)
    )
    return kept


def write_grd(
    counts: xr.DataArray,
    path: str | os.PathLike[str],
    *,
    sf: float = 72000.0,
    k0: float = -2100.0,
    resolution: float = 5000.0,
    pulse_fwhm_channels: float = 0.0,
    calibration_per_pixel: float = 0.5,
    calibration_ions: Sequence[str] | Mapping[str, float] | None = None,
    background_per_pixel: float = 0.2,
    background_mass_range: tuple[float, float] = (0.5, 200.0),
    windows: Iterable[tuple[float, float]] | None = None,
    shots_per_pixel: int = 1,
    properties_sf: float | None = None,
    properties_k0: float | None = None,
    polarity: str = "negative",
    dead_time_s: float | None = None,
    seconds_per_scan: float | None = None,
    seed: int = 0,
    simulate_dead_time: bool = False,
) -> xr.Dataset:
    """Write ``counts`` as a GRD event list and its ``properties.txt``; return the truth.

    Parameters
    ----------
    counts
        Integer ``counts(fragment, scan, y, x)``; ``fragment`` in our notation (masses from
        :func:`tofsims.fragments.ion_mass`).
    path
        Output ``.grd``; the properties go to ``<path>.properties.txt``.
    sf, k0
        True calibration used to draw flight times (channels per √u, channels).
    resolution
        Mass resolving power m/Δm (FWHM) of every peak (without a pulse).
    pulse_fwhm_channels
        FWHM (TOF channels) of the primary-ion pulse, added in quadrature to the spread
        ``resolution`` gives (:func:`peak_fwhm_channels`): the resolving power then grows
        with mass towards ``resolution``. 0: the same resolving power at every mass.
    calibration_per_pixel
        Mean counts per pixel and scan of each calibration ion.
    calibration_ions
        Calibration ions written at their exact masses (our notation): a sequence (each
        at ``calibration_per_pixel``) or a mapping ion → mean counts per pixel and scan;
        default the light ions of ``polarity``
        (:data:`tofsims.fragments.CALIBRATION_IONS`). Add heavy ones
        (:data:`tofsims.fragments.CALIBRATION_IONS_HEAVY`) to test the calibration over the
        fragments' mass range.
    background_per_pixel
        Mean counts per pixel and scan of a flat background (uniform in TOF over
        ``background_mass_range``, u).
    windows
        Mass windows ``(low, high)`` in u whose true counts per voxel are returned.
    shots_per_pixel
        Written to the properties; the ``shot`` field is drawn uniformly in ``0…spp−1``.
    properties_sf, properties_k0
        Calibration written to the properties (default: the true one) — set them off to
        test recalibration.
    polarity, dead_time_s
        Written to the properties.
    simulate_dead_time
        Let the detector lose ions: per pixel and shot, an ion arriving within
        ``dead_time_s`` after a detected ion of the same shot is not written (TOF channels of
        :data:`TIME_RESOLUTION_S`). ``window_counts`` stay the true counts, before the dead
        time; ``window_detected`` are the written ones.
    seconds_per_scan
        Sputter time per scan (s): written as ``Analysis.SputterTime`` = scans × this, as
        SurfaceLab does; ``None`` writes no sputter time.
    seed
        Random seed.

    Returns
    -------
    xarray.Dataset
        ``counts`` (the input, as planted), ``window_counts(window, scan, y, x)`` (every
        event inside each window, with true SF/K0, before any simulated dead time),
        ``events(scan)`` (records written) and coordinates ``mass_low``/``mass_high``
        (window), attrs ``sf``, ``k0``; with ``simulate_dead_time`` also
        ``window_detected(window, scan, y, x)``, the counts the detector registered.
    """
    if simulate_dead_time and dead_time_s is None:
        raise ValueError("simulate_dead_time needs dead_time_s")
    rng = np.random.default_rng(seed)
    data = np.asarray(counts.transpose("fragment", "scan", "y", "x").values)
    if data.dtype.kind not in "iu" or (data < 0).any():
        raise ValueError("counts must be non-negative integers")
    fragments = [str(f) for f in counts["fragment"].values]
    masses = np.array([ion_mass(f) for f in fragments])
    _, n_scans, ny, nx = data.shape
    window_list = list(windows or [])
    lows = np.array([w[0] for w in window_list], dtype="float64")
    highs = np.array([w[1] for w in window_list], dtype="float64")
    channels = window_channels(lows, highs, sf, k0)
    if calibration_ions is None:
        calibration_ions = CALIBRATION_IONS[polarity]
    if not isinstance(calibration_ions, Mapping):
        calibration_ions = dict.fromkeys(calibration_ions, calibration_per_pixel)
    calibration = [(ion_mass(ion), float(mean)) for ion, mean in calibration_ions.items()]
    background_channels = tuple(
        int(c) for c in np.rint(mass_to_tof(np.asarray(background_mass_range), sf, k0))
    )
    truth = np.zeros((len(window_list), n_scans, ny, nx), dtype=np.uint32)
    detected = np.zeros_like(truth) if simulate_dead_time else None
    events = np.zeros(n_scans, dtype=np.int64)
    path = Path(path)
    with open(path, "wb") as handle:
        for scan in range(n_scans):
            records = _scan_events(
                rng,
                data[:, scan],
                masses,
                sf,
                k0,
                resolution,
                pulse_fwhm_channels,
                calibration,
                background_per_pixel,
                background_channels,
                shots_per_pixel,
            )
            records[:, 0] = scan
            if window_list:
                truth[:, scan] = _window_truth(records, channels, ny, nx)
            if detected is not None:
                dead_channels = round(dead_time_s / TIME_RESOLUTION_S)
                records = records[_detected(records, nx, shots_per_pixel, dead_channels)]
                if window_list:
                    detected[:, scan] = _window_truth(records, channels, ny, nx)
            events[scan] = records.shape[0]
            records.tofile(handle)
    write_properties(
        path.with_name(path.name + ".properties.txt"),
        sf=sf if properties_sf is None else properties_sf,
        k0=k0 if properties_k0 is None else properties_k0,
        raster=(ny, nx),
        scans=n_scans,
        shots_per_pixel=shots_per_pixel,
        polarity=polarity,
        dead_time_s=dead_time_s,
        sputter_time_s=None if seconds_per_scan is None else seconds_per_scan * n_scans,
    )
    variables = {
        "counts": counts,
        "window_counts": (("window", "scan", "y", "x"), truth),
        "events": ("scan", events),
    }
    if detected is not None:
        variables["window_detected"] = (("window", "scan", "y", "x"), detected)
    return xr.Dataset(
        variables,
        coords={"mass_low": ("window", lows), "mass_high": ("window", highs)},
        attrs={
            "sf": sf,
            "k0": k0,
            "resolution": resolution,
            "pulse_fwhm_channels": pulse_fwhm_channels,
            "calibration_ions": list(calibration_ions),
        },
    )


def write_ascii3d(
    counts: xr.DataArray, folder: str | os.PathLike[str], measurement: str = "synthetic"
) -> list[Path]:
    """Write IONTOF 3D ASCII per-peak exports ``<measurement> (<n>) - <label>.txt``.

    Each file: ``#`` comment lines, then TAB-separated ``x y z intensity`` rows over the
    full grid with x varying fastest, then y, then z (= scan), as in
    ``docs/formats.md`` §3D ASCII. ``n`` counts from 1 in fragment order.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    data = counts.transpose("fragment", "scan", "y", "x")
    _, n_scans, ny, nx = data.shape
    z, y, x = np.meshgrid(np.arange(n_scans), np.arange(ny), np.arange(nx), indexing="ij")
    written = []
    for number, fragment in enumerate(data["fragment"].values, start=1):
        label = iontof_label(str(fragment))
        values = np.asarray(data.sel(fragment=fragment).values)
        path = folder / f"{measurement} ({number}) - {label}.txt"
        header = (
            f"# {measurement} - {label}\r\n# mass {ion_mass(str(fragment)):.4f} u\r\n"
            "# x\ty\tz\tintensity\r\n"
        )
        table = np.column_stack([x.ravel(), y.ravel(), z.ravel(), values.ravel()])
        with open(path, "wb") as handle:
            handle.write(header.encode("latin-1"))
            fmt = "%d\t%d\t%d\t%d" if values.dtype.kind in "iu" else "%d\t%d\t%d\t%.6g"
            np.savetxt(handle, table, fmt=fmt, delimiter="\t", newline="\r\n")
        written.append(path)
    return written


def write_surfacelab_profile(
    counts: xr.DataArray,
    path: str | os.PathLike[str],
    *,
    seconds_per_scan: float = 1.4666,
    primary_current_a: float = 1e-9,
    field_of_view_m: float = 4e-4,
    total: Sequence[float] | np.ndarray | None = None,
) -> Path:
    """Write the lateral sums of ``counts`` as a SurfaceLab 7.3 ASCII depth-profile export.

    Layout as ``docs/formats.md`` §SurfaceLab: four ``#`` header lines (smoothing note, IONTOF
    labels, centre masses with 4 decimals, column titles), TAB-separated rows with a trailing
    TAB, CRLF. Sputter time = scan × ``seconds_per_scan`` (first point 0 s), dose cumulative
    ``I·t/e`` at the end of each scan, fluence = dose / FOV² (ions/cm²). ``total`` defaults to
    the sum over fragments.
    """
    profile = np.asarray(counts.sum(("y", "x")).transpose("scan", "fragment").values)
    n_scans = profile.shape[0]
    labels = [iontof_label(str(f)) for f in counts["fragment"].values]
    masses = [f"{ion_mass(str(f)):.4f}" for f in counts["fragment"].values]
    totals = profile.sum(axis=1) if total is None else np.asarray(total, dtype="float64")
    time = np.arange(n_scans) * seconds_per_scan
    dose = primary_current_a * (time + seconds_per_scan) / ELEMENTARY_CHARGE_C
    fluence = dose / (field_of_view_m * 100.0) ** 2
    lines = [
        "# Profile Smoothing is Disabled",
        "#\t\t\t\ttotal\t" + "\t".join(labels) + "\t",
        "#\t\t\t\tN/A\t" + "\t".join(masses) + "\t",
        "#Data Point #\tSputter Time (s)\tDose (ions)\tFluence (ions/cm^2)\t"
        + "\t".join(["Intensity"] * (len(labels) + 1))
        + "\t",
    ]
    for k in range(n_scans):
        cells = [
            f"{k + 1}",
            f"{time[k]:g}",
            f"{dose[k]:g}",
            f"{fluence[k]:g}",
            f"{totals[k]:g}",
            *(f"{v:g}" for v in profile[k]),
        ]
        lines.append("\t".join(cells) + "\t")
    path = Path(path)
    with open(path, "wb") as handle:
        handle.write(("\r\n".join(lines) + "\r\n").encode("latin-1"))
    return path


def poisson_volume(
    fragments: Sequence[str],
    shape: tuple[int, int, int],
    mean: float | Sequence[float] = 1.0,
    seed: int = 0,
) -> xr.DataArray:
    """Random Poisson ``counts(fragment, scan, y, x)`` (uint32) for tests and benchmarks."""
    rng = np.random.default_rng(seed)
    means = np.broadcast_to(np.asarray(mean, dtype="float64"), (len(fragments),))
    data = np.stack([rng.poisson(m, shape) for m in means]).astype(np.uint32)
    n_scans, ny, nx = shape
    return xr.DataArray(
        data,
        dims=("fragment", "scan", "y", "x"),
        coords={
            "fragment": list(fragments),
            "scan": np.arange(n_scans),
            "y": np.arange(ny),
            "x": np.arange(nx),
        },
        name="counts",
    )
