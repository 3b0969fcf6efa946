"""Lateral drift between scans: estimate by FFT cross-correlation, correct by integer shifts.

Convention: a shift ``(dy, dx)`` of scan s means its image is the reference image moved by
``(dy, dx)`` pixels, ``image_s(y, x) = ref(y − dy, x − dx)``. Correction reads
``corrected_s(y, x) = image_s(y + dy, x + dx)`` and crops every scan to the field of view common
to all scans, so counts are moved, never interpolated (Poisson statistics kept). See
``docs/methods.md`` ("Lateral drift"; reference methods.md §B7).
"""

from __future__ import annotations

import json

import numpy as np
import xarray as xr

from tofsims.errors import AnalysisError
from tofsims.profiles import rechunk_data, select_fragment

__all__ = ["apply_drift", "estimate_drift"]


def _cross_correlation_shift(
    images: np.ndarray, reference: np.ndarray, max_shift: int
) -> np.ndarray:
    """Integer (dy, dx) of each image relative to ``reference``: ``(..., 2)``.

    Peak of the circular cross-correlation ``IFFT(F(image)·conj(F(ref)))`` of mean-subtracted
    images, searched within ``±max_shift`` pixels.
    """
    ny, nx = images.shape[-2:]
    img = images - images.mean(axis=(-2, -1), keepdims=True)
    ref = reference - reference.mean(axis=(-2, -1), keepdims=True)
    corr = np.fft.ifft2(np.fft.fft2(img) * np.conj(np.fft.fft2(ref))).real
    dy = np.fft.fftfreq(ny, 1 / ny).astype(int)
    dx = np.fft.fftfreq(nx, 1 / nx).astype(int)
    outside = (np.abs(dy)[:, None] > max_shift) | (np.abs(dx)[None, :] > max_shift)
    corr = np.where(outside, -np.inf, corr)
    flat = corr.reshape(*corr.shape[:-2], -1).argmax(axis=-1)
    iy, ix = np.unravel_index(flat, (ny, nx))
    return np.stack([dy[iy], dx[ix]], axis=-1).astype(np.int64)


def estimate_drift(
    volume: xr.Dataset,
    *,
    fragment: str | None = None,
    reference_scans: int = 5,
    window_scans: int = 5,
    max_shift: int = 10,
    median_scans: int = 9,
) -> xr.DataArray:
    """Estimate the lateral shift of every scan by FFT cross-correlation (lazy).

    Parameters
    ----------
    volume
        ``counts(fragment, scan, y, x)``.
    fragment
        Fragment whose images are registered (a strong, laterally structured signal); ``None``
        uses the sum of all fragments.
    reference_scans
        The reference image is the sum of the first this many scans.
    window_scans
        Each scan's image is summed over a centred running window of this many scans (counts per
        scan are too few to register single scans).
    max_shift
        Largest shift searched (pixels).
    median_scans
        Running median over this many scans applied to the shifts (drift is slow; removes
        single-scan outliers); 1 = none.

    Returns
    -------
    xarray.DataArray
        ``shift(scan, axis)`` int64, ``axis = ["y", "x"]`` in pixels; attrs record the method.
    """
    counts = volume["counts"]
    images = select_fragment(counts, fragment) if fragment else counts.sum("fragment")
    images = images.astype(float)
    if window_scans > 1:
        images = images.rolling(scan=window_scans, center=True, min_periods=1).sum()
    images = rechunk_data(images, {"y": -1, "x": -1})  # rolling may rechunk: whole images
    reference = images.isel(scan=slice(0, max(1, reference_scans))).sum("scan")
    shifts = xr.apply_ufunc(
        _cross_correlation_shift,
        images,
        reference,
        kwargs={"max_shift": int(max_shift)},
        input_core_dims=[["y", "x"], ["y", "x"]],
        output_core_dims=[["axis"]],
        dask="parallelized",
        output_dtypes=[np.int64],
        dask_gufunc_kwargs={"output_sizes": {"axis": 2}},
    )
    if median_scans > 1:
        shifts = shifts.rolling(scan=median_scans, center=True, min_periods=1).median()
        shifts = np.rint(shifts).astype(np.int64)
    shifts = shifts.assign_coords(axis=["y", "x"]).transpose("scan", "axis")
    for name in ("fragment", "mass_low", "mass_high"):
        shifts = shifts.drop_vars(name, errors="ignore")
    method = {
        "method": "FFT cross-correlation",
        "fragment": fragment or "sum of fragments",
        "reference_scans": reference_scans,
        "window_scans": window_scans,
        "max_shift_px": max_shift,
    }
    return shifts.rename("shift").assign_attrs(units="px", method=json.dumps(method))


def _shift_crop(
    image: np.ndarray, shift: np.ndarray, y0: int, y1: int, x0: int, x1: int
) -> np.ndarray:
    """Crop each image ``(..., y, x)`` at its own offset ``shift (..., 2)`` (broadcast)."""
    lead = np.broadcast_shapes(image.shape[:-2], shift.shape[:-1])
    image = np.broadcast_to(image, (*lead, *image.shape[-2:]))
    shift = np.broadcast_to(shift, (*lead, 2))
    out = np.empty((*lead, y1 - y0, x1 - x0), dtype=image.dtype)
    for index in np.ndindex(*lead):  # one image per (fragment, scan), never per pixel
        dy, dx = (int(v) for v in shift[index])
        out[index] = image[index][y0 + dy : y1 + dy, x0 + dx : x1 + dx]
    return out


def apply_drift(volume: xr.Dataset, shifts: xr.DataArray) -> xr.Dataset:
    """Move each scan back by its integer shift and crop to the common field of view.

    Parameters
    ----------
    volume
        ``counts(fragment, scan, y, x)``.
    shifts
        ``shift(scan, axis)`` from :func:`estimate_drift`, **already computed** (a small
        in-memory array): the size of the common field of view depends on its values.

    Returns
    -------
    xarray.Dataset
        Volume with ``counts`` cropped to the common field of view (``y``/``x`` keep the pixel
        indices of the reference scan); attrs ``drift_correction`` (JSON) and ``drift_shifts``.
        Lazy on dask input.
    """
    if shifts.chunks is not None:
        raise AnalysisError("compute the drift shifts first (they set the output size)")
    values = np.asarray(shifts.transpose("scan", "axis").values, dtype=np.int64)
    if values.shape != (volume.sizes["scan"], 2):
        raise AnalysisError(
            f"shifts must have shape (scan={volume.sizes['scan']}, axis=2), got {values.shape}"
        )
    ny, nx = volume.sizes["y"], volume.sizes["x"]
    y0, y1 = max(0, -values[:, 0].min()), ny - max(0, values[:, 0].max())
    x0, x1 = max(0, -values[:, 1].min()), nx - max(0, values[:, 1].max())
    if y1 - y0 < 1 or x1 - x0 < 1:
        raise AnalysisError("the drift leaves no common field of view")
    counts = volume["counts"]
    counts = rechunk_data(counts, {"y": -1, "x": -1})
    shift_da = xr.DataArray(values, dims=("scan", "axis"), coords={"scan": volume["scan"]})
    corrected = xr.apply_ufunc(
        _shift_crop,
        counts,
        shift_da,
        kwargs={"y0": int(y0), "y1": int(y1), "x0": int(x0), "x1": int(x1)},
        input_core_dims=[["y", "x"], ["axis"]],
        output_core_dims=[["y_crop", "x_crop"]],
        dask="parallelized",
        output_dtypes=[counts.dtype],
        dask_gufunc_kwargs={"output_sizes": {"y_crop": int(y1 - y0), "x_crop": int(x1 - x0)}},
    )
    corrected = corrected.rename(y_crop="y", x_crop="x").assign_coords(
        y=volume["y"].values[y0:y1], x=volume["x"].values[x0:x1]
    )
    out = volume.drop_dims(["y", "x"]).assign(
        counts=corrected.transpose(*volume["counts"].dims).assign_attrs(volume["counts"].attrs)
    )
    out.attrs["drift_correction"] = json.dumps(
        {
            "method": shifts.attrs.get("method", "given shifts"),
            "crop_y": [int(y0), int(y1)],
            "crop_x": [int(x0), int(x1)],
        }
    )
    out.attrs["drift_shifts"] = json.dumps(values.tolist())
    return out
