"""Small synthetic datasets following docs/conventions.md, shared by the view tests."""

from __future__ import annotations

import json
import threading

import dask.array as da
import numpy as np
import xarray as xr

FRAGMENTS = ["C2HO-", "LiF2-", "PO2-"]


def ms_and_ec(samples: int = 101) -> tuple[xr.Dataset, xr.Dataset]:
    """Two MS channels on their own clocks and a triangular potential."""
    t = np.linspace(0.0, 100.0, samples)
    ms = xr.Dataset(
        {
            "signal": (
                ("channel", "sample"),
                np.vstack([1e-10 + 1e-12 * t, 2e-10 + 0 * t]),
                {"units": "A"},
            )
        },
        coords={
            "channel": ["M32", "M44"],
            "mass": ("channel", [32.0, 44.0]),
            "time": (("channel", "sample"), np.vstack([t, t + 0.25])),
        },
        attrs={"quantity": "ion current"},
    )
    ec = xr.Dataset(
        {
            "potential": ("time", 3.0 + np.abs((t % 50) - 25) / 25, {"units": "V"}),
            "current": ("time", np.full(samples, 0.1), {"units": "mA"}),
        },
        coords={"time": t},
    )
    return ms, ec


def flux(constant: float = 1e-9) -> xr.DataArray:
    """O2 and CO2 fluxes over two 100 s cycles, potential rising 3→4.5 V then falling."""
    t = np.arange(0.0, 200.0, 1.0)
    phase = t % 100
    potential = np.where(phase < 50, 3.0 + phase * 0.03, 4.5 - (phase - 50) * 0.03)
    values = np.vstack([np.full(t.size, constant), np.full(t.size, 2 * constant)])
    return xr.DataArray(
        values,
        dims=("gas", "time"),
        coords={
            "gas": ["O2", "CO2"],
            "time": t,
            "potential": ("time", potential),
            "cycle": ("time", (t // 100).astype(int) + 1),
        },
        attrs={"units": "mol/s"},
    )


ONSETS = {
    "O2": {"potential_V": 4.39, "uncertainty_V": 0.01, "method": "3-sigma"},
    "CO2": {"potential_V": 4.05, "uncertainty_V": 0.0, "method": "3-sigma"},
}


def flux_dataset() -> xr.Dataset:
    ds = flux().to_dataset(name="flux")
    ds["flux"].attrs["onsets_json"] = json.dumps(ONSETS)
    return ds


def profile(scans: int = 40) -> xr.Dataset:
    """Depth profile with a total column, two single peaks and an interface at scan 20."""
    scan = np.arange(scans)
    top = np.where(scan < 20, 1000.0, 10.0)
    bottom = np.where(scan < 20, 10.0, 500.0)
    total = top + bottom + 90.0
    return xr.Dataset(
        {"intensity": (("scan", "peak"), np.column_stack([total, top, bottom]))},
        coords={
            "scan": scan,
            "sputter_time": ("scan", scan * 2.0, {"units": "s"}),
            "depth": ("scan", scan * 0.5, {"units": "nm"}),
            "peak": [0, 1, 2],
            "peak_label": ("peak", ["total", "C_2HO-", "LiF_2-"]),
            "fragment": ("peak", ["", "C2HO-", "LiF2-"]),
            "mass_center": ("peak", [np.nan, 41.0, 45.0]),
            "kind": ("peak", ["total", "single", "single"]),
        },
    )


def volume_values(scans: int = 12, ny: int = 8, nx: int = 10) -> np.ndarray:
    """Unique, decodable values: counts[f, s, y, x] = f·10⁶ + s·10⁴ + y·100 + x."""
    f, s, y, x = np.meshgrid(
        np.arange(len(FRAGMENTS)), np.arange(scans), np.arange(ny), np.arange(nx), indexing="ij"
    )
    return (f * 1_000_000 + s * 10_000 + y * 100 + x).astype(np.float64)


class BlockCounter:
    """Records which dask blocks of a volume were computed."""

    def __init__(self) -> None:
        self.blocks: list[tuple[int, ...]] = []
        self.lock = threading.Lock()

    def __call__(self, block: np.ndarray, block_info: dict | None = None) -> np.ndarray:
        if block_info is not None and None in block_info:
            with self.lock:
                self.blocks.append(tuple(block_info[None]["chunk-location"]))
        return block


def volume(
    scans: int = 12,
    ny: int = 8,
    nx: int = 10,
    scan_chunk: int = 4,
    counter: BlockCounter | None = None,
    field_of_view_m: float | None = 1e-4,
) -> xr.Dataset:
    """A dask-backed counts(fragment, scan, y, x) volume with known values.

    The field of view (100 µm over ``nx`` pixels: 10 µm pixels by default) gives the lateral
    scale; ``None`` leaves it unknown.
    """
    values = volume_values(scans, ny, nx)
    array = da.from_array(values, chunks=(1, scan_chunk, ny, nx))
    if counter is not None:
        array = array.map_blocks(counter, dtype=values.dtype)
    return xr.Dataset(
        {"counts": (("fragment", "scan", "y", "x"), array)},
        coords={
            "fragment": FRAGMENTS,
            "mass_low": ("fragment", [40.9, 44.9, 62.9]),
            "mass_high": ("fragment", [41.1, 45.1, 63.1]),
            "scan": np.arange(scans),
            "sputter_time": ("scan", (np.arange(scans) + 1) * 1.5, {"units": "s"}),
            "y": np.arange(ny),
            "x": np.arange(nx),
        },
        attrs={"polarity": "negative"}
        | ({} if field_of_view_m is None else {"field_of_view_m": field_of_view_m, "raster_x": nx}),
    )


def thickness(ny: int = 16, nx: int = 20) -> xr.DataArray:
    """Thickness ramp 1..(ny·nx) nm / 10 with two undetermined cells of 2 µm."""
    values = np.arange(ny * nx, dtype=float).reshape(ny, nx) / 10 + 1
    values[0, 0] = values[3, 4] = np.nan
    return xr.DataArray(
        values,
        dims=("y", "x"),
        coords={"y": np.arange(ny), "x": np.arange(nx)},
        attrs={"units": "nm", "pixel_size_um": 2.0},
    )


def particle_volume(scans: int = 30, ny: int = 48, nx: int = 64) -> xr.Dataset:
    """A picture-like volume: a CEI layer fading with depth over spherical NMC particles.

    ``C2HO-`` (CEI organics) is strong in the first scans; ``LiF2-`` (CEI fluorides) rims the
    particles; ``PO2-`` fills the particles. Deterministic, for browser tests and screenshots.
    """
    s, y, x = np.meshgrid(np.arange(scans), np.arange(ny), np.arange(nx), indexing="ij")
    centres = [(0.3, 0.3, 0.6, 0.22), (0.7, 0.6, 0.5, 0.28), (0.45, 0.8, 0.9, 0.18)]
    inside = np.zeros(s.shape)
    rim = np.zeros(s.shape)
    for cy, cx, cs, radius in centres:
        r = np.sqrt(((y / ny - cy) ** 2 + (x / nx - cx) ** 2) + ((s / scans - cs) * 0.8) ** 2)
        inside = np.maximum(inside, r < radius)
        rim = np.maximum(rim, np.exp(-(((r - radius) / 0.03) ** 2)))
    cei = np.exp(-s / (0.2 * scans))
    values = np.stack([200 * cei * (1 - inside) + 5, 120 * rim + 60 * cei, 150 * inside + 2])
    data = volume(scans, ny, nx, scan_chunk=10)
    return data.copy(data={"counts": da.from_array(values, chunks=(1, 10, ny, nx))})
