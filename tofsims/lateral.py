"""Lateral scale of TOF-SIMS images: pixel indices to micrometres from the field of view.

Volumes (``tofsims reconstruct``, the readers) keep ``x`` and ``y`` as pixel indices and the
instrument's field of view in the ``field_of_view_m`` attribute, with the raster size
(``raster_x``) and the binning (``lateral_bin``); a CEI map (``tofsims cei --map``) records
the width of one of its cells as ``pixel_size_um``. The views draw every image on µm axes
from these; without a field of view they say "pixel" rather than invent a scale.
"""

from __future__ import annotations

import math
from typing import TypeVar

import xarray as xr

__all__ = ["MICROMETRE", "PIXEL", "SCALE_ATTRS", "lateral_um", "pixel_size_um", "with_scale"]

T = TypeVar("T", xr.DataArray, xr.Dataset)
MICROMETRE = "µm"
PIXEL = "pixel"
#: The attributes that carry the lateral scale.
SCALE_ATTRS = ("pixel_size_um", "field_of_view_m", "raster_x", "raster_y", "lateral_bin")


def _number(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def pixel_size_um(data: xr.DataArray | xr.Dataset) -> float | None:
    """Width of one ``x`` step of ``data`` in µm, or ``None`` when the scale is unknown.

    Parameters
    ----------
    data
        An image, volume or map with the attributes ``pixel_size_um``, or ``field_of_view_m``
        (the raster's side, m) with ``raster_x`` (pixels across; default: the ``x`` size times
        the binning) and ``lateral_bin`` (raw pixels per ``x`` step; default 1).

    Returns
    -------
    float or None
        µm per ``x`` step.
    """
    attrs = data.attrs
    size = _number(attrs.get("pixel_size_um"))
    if size is not None:
        return size
    field = _number(attrs.get("field_of_view_m"))
    if field is None or "x" not in data.sizes:
        return None
    binning = _number(attrs.get("lateral_bin")) or 1.0
    raster = _number(attrs.get("raster_x")) or data.sizes["x"] * binning
    return field * 1e6 / raster * binning


def lateral_um(data: T) -> T:
    """Return ``data`` with ``x`` and ``y`` in µm (pixel centres), when the scale is known.

    Parameters
    ----------
    data
        Image, volume or map with integer ``x``/``y`` pixel indices (see
        :func:`pixel_size_um`); lazy data stay lazy (only the coordinates change).

    Returns
    -------
    xarray.DataArray or xarray.Dataset
        The same data; ``x``/``y`` are ``(index + 0.5) × pixel size`` in µm with
        ``units = "µm"``, or unchanged with ``units = "pixel"`` when the scale is unknown.
    """
    size = pixel_size_um(data)
    coords = {}
    for dim in ("x", "y"):
        if dim not in data.coords:
            continue
        values = data[dim].values
        if size is None:
            coords[dim] = (dim, values, {"units": PIXEL})
        else:
            coords[dim] = (dim, (values + 0.5) * size, {"units": MICROMETRE})
    return data.assign_coords(coords)


def with_scale(array: xr.DataArray, dataset: xr.Dataset) -> xr.DataArray:
    """Return a variable of ``dataset`` carrying the dataset's lateral-scale attributes."""
    scale = {key: dataset.attrs[key] for key in SCALE_ATTRS if key in dataset.attrs}
    return array.assign_attrs({**scale, **array.attrs})
