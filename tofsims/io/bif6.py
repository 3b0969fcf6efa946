"""IONTOF BIF6 image export -> ``counts(fragment, y, x)`` with the mass interval of each image.

Two byte layouts are described by third-party readers and disagree by 4 bytes; no real file
was available to decide (``docs/formats.md``, "BIF6"). Both start with ``BIF6`` at byte 2 and
``uint16`` nIntervals, nX, nY at bytes 6, 8, 10 (little-endian). Then, per interval, a 16-byte
descriptor and nX·nY ``uint32`` pixel counts:

* ``"12-byte header"`` (Bioconductor tofsims, pybif6): intervals from byte 12; descriptor
  ``uint32 id, float32 lower, middle, upper``.
* ``"16-byte header"`` (pySPM): two more ``uint16`` in the header, intervals from byte 16;
  descriptor four ``float32`` of which the first two are lower and upper mass (middle unknown).

The layout is chosen from the file size (the two differ by exactly 4 bytes) and then
verified: descriptor masses must be plausible (0.5 ≤ lower ≤ middle ≤ upper < 5000 u for the
peak intervals) and the total-ion image (interval 0) must equal the sum of the others.
Anything else is a :class:`~tofsims.errors.TofsimsReadError`. Written from the layout
description only (no code of the GPL readers).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import xarray as xr
from xarray.backends import BackendEntrypoint

from tofsims.errors import TofsimsReadError
from tofsims.io.backend import provenance, sniff

__all__ = ["FORMAT", "LAYOUTS", "Bif6Backend", "can_open", "read"]

FORMAT = "IONTOF BIF6 image export"
ENGINE = "tofsims_bif6"
MAGIC = b"BIF6"
HEADER_FIELDS = np.dtype([("n_intervals", "<u2"), ("nx", "<u2"), ("ny", "<u2")])
#: header size in bytes -> descriptor fields (each 4 bytes, 16 in total)
LAYOUTS: dict[int, tuple[tuple[str, str], ...]] = {
    12: (("id", "<u4"), ("lower", "<f4"), ("middle", "<f4"), ("upper", "<f4")),
    16: (("lower", "<f4"), ("upper", "<f4"), ("unknown_1", "<f4"), ("unknown_2", "<f4")),
}
MIN_MASS, MAX_MASS = 0.5, 5000.0


def can_open(path: str | os.PathLike[str], head: bytes) -> bool:
    """Tell whether ``head`` starts like a BIF6 file (``BIF6`` at byte 2)."""
    return len(head) >= 12 and head[2:6] == MAGIC


def _interval_dtype(header_bytes: int, n_pixels: int) -> np.dtype:
    return np.dtype([*LAYOUTS[header_bytes], ("image", "<u4", (n_pixels,))])


def _plausible(records: np.ndarray) -> str | None:
    """Return why the descriptor masses are implausible, or ``None`` if they are fine."""
    lower, upper = records["lower"].astype(float), records["upper"].astype(float)
    middle = records["middle"].astype(float) if "middle" in records.dtype.names else lower
    peaks = slice(1, None)  # interval 0 is the total-ion image, its range may start at 0
    if not np.all(np.isfinite([lower, middle, upper])):
        return "non-finite descriptor masses"
    if np.any(lower[peaks] < MIN_MASS) or np.any(upper >= MAX_MASS) or np.any(lower < 0):
        return f"descriptor masses outside {MIN_MASS}-{MAX_MASS} u"
    if np.any(lower > middle) or np.any(middle > upper):
        return "descriptor masses not ordered lower <= middle <= upper"
    return None


def _total_mismatch(records: np.ndarray) -> str | None:
    images = records["image"].astype(np.uint64)
    if len(images) < 2:
        return None
    if not np.array_equal(images[0], images[1:].sum(axis=0)):
        return "the total image (interval 0) is not the sum of the other images"
    return None


def _candidates(path: str | os.PathLike[str], raw: np.ndarray) -> dict[int, np.ndarray]:
    header = raw[6:12].view(HEADER_FIELDS)[0]
    n, nx, ny = (int(header[k]) for k in ("n_intervals", "nx", "ny"))
    if n == 0 or nx == 0 or ny == 0:
        raise TofsimsReadError(path, f"empty BIF6 header (intervals {n}, nx {nx}, ny {ny})")
    found = {}
    for header_bytes in LAYOUTS:
        dtype = _interval_dtype(header_bytes, nx * ny)
        if raw.size == header_bytes + n * dtype.itemsize:
            found[header_bytes] = raw[header_bytes:].view(dtype)
    if not found:
        expected = " or ".join(str(h + n * (16 + 4 * nx * ny)) for h in LAYOUTS)
        raise TofsimsReadError(
            path,
            f"{raw.size} bytes, but {n} intervals of {nx}x{ny} pixels need {expected} "
            "(truncated, or another BIF variant)",
        )
    return found


def choose_layout(
    path: str | os.PathLike[str], raw: np.ndarray, *, check_total: bool = True
) -> tuple[int, np.ndarray]:
    """Pick the byte layout that explains ``raw`` (the whole file as ``uint8``).

    Returns ``(header_bytes, records)``; raises :class:`TofsimsReadError` naming every
    rejected layout and why.
    """
    problems = []
    for header_bytes, records in _candidates(path, raw).items():
        problem = _plausible(records) or (_total_mismatch(records) if check_total else None)
        if problem is None:
            return header_bytes, records
        problems.append(f"{header_bytes}-byte header layout: {problem}")
    hint = " (check_total=False skips the total-image check)" if check_total else ""
    raise TofsimsReadError(path, "no BIF6 layout fits: " + "; ".join(problems) + hint)


def _fragment_names(ids: np.ndarray, centres: np.ndarray) -> list[str]:
    names = []
    for interval, (identifier, centre) in enumerate(zip(ids, centres, strict=True)):
        if identifier == 0:
            names.append("total")
        elif np.isfinite(centre):
            names.append(f"m/z {centre:.4f}")
        else:
            names.append(f"interval {interval}")
    if len(set(names)) != len(names):
        names = [f"{name} #{i}" for i, name in enumerate(names)]
    return names


def read(path: str | os.PathLike[str], *, check_total: bool = True) -> xr.Dataset:
    """Read a BIF6 image export.

    Parameters
    ----------
    path
        The ``*.bif6`` file.
    check_total
        Require the total-ion image (interval 0) to equal the sum of the other images when
        choosing the layout. Turn off for exports whose total includes unassigned ions.

    Returns
    -------
    xarray.Dataset
        ``counts(fragment, y, x)`` (uint32) with coordinates ``interval_id``, ``mass_low``,
        ``mass_center`` (NaN in the 16-byte layout), ``mass_high`` (u); ``fragment`` is
        ``"total"`` for interval 0 and ``"m/z <centre>"`` otherwise (BIF6 holds no labels).
        Attribute ``layout`` records the layout used.
    """
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0:
        raise TofsimsReadError(path, "file is empty")
    if raw.size < 12 or raw[2:6].tobytes() != MAGIC:
        raise TofsimsReadError(path, "no 'BIF6' signature at byte 2: not a BIF6 file")
    header_bytes, records = choose_layout(path, raw, check_total=check_total)
    header = raw[6:12].view(HEADER_FIELDS)[0]
    nx, ny = int(header["nx"]), int(header["ny"])
    has_id = "id" in records.dtype.names
    ids = records["id"].astype(np.int64) if has_id else np.arange(len(records), dtype=np.int64)
    centres = records["middle"].astype(float) if has_id else np.full(len(records), np.nan)
    images = records["image"].reshape(len(records), ny, nx).copy()
    coords = {
        "fragment": ("fragment", np.array(_fragment_names(ids, centres), dtype=object)),
        "interval_id": ("fragment", ids),
        "mass_low": ("fragment", records["lower"].astype(float), {"units": "u"}),
        "mass_center": ("fragment", centres, {"units": "u"}),
        "mass_high": ("fragment", records["upper"].astype(float), {"units": "u"}),
        "y": ("y", np.arange(ny, dtype=np.int64)),
        "x": ("x", np.arange(nx, dtype=np.int64)),
    }
    attrs: dict[str, Any] = {
        **provenance(path, f"{__name__}.read", FORMAT),
        "layout": f"{header_bytes}-byte header",
        "total_checked": int(check_total),
        "origin": "as stored, x fastest (orientation unverified)",
    }
    if header_bytes == 16:
        attrs["header_unknown_uint16"] = " ".join(str(v) for v in raw[12:16].view("<u2"))
    return xr.Dataset(
        {"counts": (("fragment", "y", "x"), images, {"units": "counts"})},
        coords=coords,
        attrs=attrs,
    )


class Bif6Backend(BackendEntrypoint):
    """xarray engine ``tofsims_bif6``: IONTOF BIF6 image exports (both byte layouts)."""

    sniff_order = 20

    description = "IONTOF BIF6 image export -> counts(fragment, y, x)"
    open_dataset_parameters = ("filename_or_obj", "drop_variables", "check_total")

    def open_dataset(  # type: ignore[override]
        self,
        filename_or_obj: str | os.PathLike[str],
        *,
        drop_variables: Any = None,
        check_total: bool = True,
    ) -> xr.Dataset:
        """Open a BIF6 file; see :func:`read`."""
        dataset = read(filename_or_obj, check_total=check_total)
        return dataset.drop_vars(drop_variables or [], errors="ignore")

    def guess_can_open(self, filename_or_obj: Any) -> bool:
        """Sniff the ``BIF6`` signature."""
        return sniff(can_open, filename_or_obj)
