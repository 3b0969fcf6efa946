"""IONTOF 3D ASCII per-peak exports (a set of files) -> lazy ``counts(fragment, scan, y, x)``.

SurfaceLab writes one text file per peak, ``<measurement> (<n>) - <peak label>.txt``: ``#``
comment lines, then one row per voxel with four numbers ``x y z intensity`` (x, y zero-based
pixel indices, z = scan index), the full grid with x varying fastest, then y, then z
(``docs/formats.md``, "IONTOF 3D ASCII"). No public sample exists; the layout follows two
independent user scripts.

Opening reads only the tail of every file (its last row gives the grid size); each file is
then parsed lazily in its own dask task with pandas' C parser, which also checks that the file
holds exactly nx·ny·nz rows in x-fastest order.
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr
from xarray.backends import BackendEntrypoint

from tofsims.errors import FragmentError, TofsimsReadError
from tofsims.io.backend import header_json, provenance, sniff
from tofsims.peaknames import parse_peak_name

__all__ = ["FORMAT", "Ascii3dBackend", "can_open", "export_files", "input_files", "read"]

FORMAT = "IONTOF 3D ASCII per-peak export"
ENGINE = "tofsims_ascii3d"
NAME_RE = re.compile(r"^(?P<measurement>.*) \((?P<number>\d+)\) - (?P<label>.+)\.txt$", re.I)
TAIL_BYTES = 4096
COLUMNS = ("x", "y", "z", "intensity")


@dataclass(frozen=True)
class PeakFile:
    """One per-peak export file."""

    path: Path
    measurement: str
    number: int
    label: str


def _peak_file(path: Path) -> PeakFile | None:
    match = NAME_RE.match(path.name)
    if match is None or not path.is_file():
        return None
    return PeakFile(path, match["measurement"], int(match["number"]), match["label"])


def _first_data_line(head: bytes) -> str | None:
    for line in head.decode("latin-1").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            return line
    return None


def _looks_like_row(line: str | None) -> bool:
    if line is None:
        return False
    fields = line.split()
    try:
        return len(fields) == 4 and all(float(f) == int(float(f)) for f in fields[:3])
    except ValueError:
        return False


def can_open(path: str | os.PathLike[str], head: bytes) -> bool:
    """Tell whether ``path`` is a per-peak 3D ASCII export or a folder of them."""
    path = Path(path)
    if path.is_dir():
        return any(_peak_file(p) for p in path.glob("* (*) - *.txt"))
    return _peak_file(path) is not None and _looks_like_row(_first_data_line(head))


def input_files(source: str | os.PathLike[str]) -> list[Path]:
    """List the files a read of ``source`` opens: every per-peak file of the measurement."""
    return [peak.path for peak in export_files(source)]


def export_files(source: str | os.PathLike[str]) -> list[PeakFile]:
    """Collect the per-peak files of one measurement, ordered by their number ``(n)``.

    Parameters
    ----------
    source
        A folder holding the export, a glob pattern (``"run (*) - *.txt"``), or one of the
        files (its siblings of the same measurement are collected).
    """
    text = os.fspath(source)
    path = Path(text)
    if path.is_dir():
        candidates = sorted(path.glob("* (*) - *.txt"))
    elif path.is_file():
        own = _peak_file(path)
        if own is None:
            raise TofsimsReadError(path, "file name is not '<measurement> (<n>) - <peak>.txt'")
        candidates = [p for p in path.parent.glob("* (*) - *.txt")]
        candidates = [
            p for p in candidates if (f := _peak_file(p)) and f.measurement == own.measurement
        ]
    else:
        candidates = [Path(p) for p in sorted(glob.glob(text))]
        if not candidates:
            raise TofsimsReadError(text, "no such file, folder or matching files")
    files = [f for f in map(_peak_file, candidates) if f is not None]
    if not files:
        raise TofsimsReadError(text, "no '<measurement> (<n>) - <peak>.txt' files")
    measurements = {f.measurement for f in files}
    if len(measurements) > 1:
        raise TofsimsReadError(
            text, f"files of several measurements {sorted(measurements)}; give one file or a glob"
        )
    return sorted(files, key=lambda f: f.number)


def _header(path: Path) -> tuple[list[str], int]:
    """Return the ``#`` comment lines and the 1-based number of the first data line."""
    lines = []
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            line = raw.decode("latin-1").rstrip("\r\n")
            if line.lstrip().startswith("#") or not line.strip():
                lines.append(line)
                continue
            return lines, number
    raise TofsimsReadError(path, "no data rows (header only or empty)")


def _last_row(path: Path) -> tuple[int, int, int]:
    size = os.path.getsize(path)
    with open(path, "rb") as handle:
        handle.seek(max(0, size - TAIL_BYTES))
        tail = handle.read()
    if b"\x00" in tail:
        raise TofsimsReadError(path, "binary content, not a 3D ASCII export")
    rows = [ln for ln in tail.decode("latin-1").splitlines() if ln.strip() and ln[0] != "#"]
    if not rows:
        raise TofsimsReadError(path, "no data rows at the end of the file")
    fields = rows[-1].split()
    try:
        if len(fields) != 4:
            raise ValueError
        x, y, z = (int(f) for f in fields[:3])
        float(fields[3])
    except ValueError:
        hint = " (decimal comma?)" if "," in rows[-1] else ""
        problem = f"last row {rows[-1]!r} is not 'x y z intensity'{hint}"
        raise TofsimsReadError(path, problem) from None
    return x, y, z


def _bad_line(path: Path, first_line: int) -> tuple[int, str]:
    """Locate the first data line that is not four numbers (error path only)."""
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            line = raw.decode("latin-1").strip()
            if number < first_line or not line or line.startswith("#"):
                continue
            fields = line.split()
            try:
                if len(fields) != 4:
                    raise ValueError
                [float(f) for f in fields]
            except ValueError:
                hint = " (decimal comma?)" if "," in line else ""
                return number, f"{line[:80]!r} is not four numbers 'x y z intensity'{hint}"
    return first_line, "unreadable data"


def read_volume(path: Path, first_line: int, shape: tuple[int, int, int]) -> np.ndarray:
    """Parse one per-peak file into a ``(1, nz, ny, nx)`` float64 block, checking the grid.

    Parameters
    ----------
    path
        The per-peak export.
    first_line
        1-based number of its first data line.
    shape
        Expected ``(nz, ny, nx)``.
    """
    import pandas as pd

    index_dtype = {name: np.int32 for name in COLUMNS[:3]}
    try:
        table = pd.read_csv(
            path,
            sep=r"\s+",
            comment="#",
            header=None,
            names=list(COLUMNS),
            dtype={**index_dtype, "intensity": np.float64},
            engine="c",
            skip_blank_lines=True,
            encoding="latin-1",
        )
    except (ValueError, OverflowError, pd.errors.ParserError):
        line, problem = _bad_line(path, first_line)
        raise TofsimsReadError(path, problem, line) from None
    nz, ny, nx = shape
    n = nz * ny * nx
    if len(table) != n:
        raise TofsimsReadError(
            path, f"incomplete grid: {len(table)} rows, expected nx·ny·nz = {nx}·{ny}·{nz} = {n}"
        )
    columns = [table[name].to_numpy() for name in COLUMNS]
    grid = (1, 1, nx), (1, ny, 1), (nz, 1, 1)
    wrong = np.zeros((nz, ny, nx), dtype=bool)
    for column, axis_shape in zip(columns[:3], grid, strict=True):
        size = max(axis_shape)
        wrong |= column.reshape(nz, ny, nx) != np.arange(size).reshape(axis_shape)
    if wrong.any():
        row = int(np.argmax(wrong.ravel()))
        wanted = (row % nx, (row // nx) % ny, row // (nx * ny))
        raise TofsimsReadError(
            path,
            f"voxel {tuple(int(c[row]) for c in columns[:3])} out of order (expected x "
            f"fastest: {wanted})",
            first_line + row,
        )
    intensity = columns[3]
    if np.any(~np.isfinite(intensity)):
        row = int(np.flatnonzero(~np.isfinite(intensity))[0])
        raise TofsimsReadError(path, "intensity is not a finite number", first_line + row)
    return intensity.reshape(1, nz, ny, nx)


def _fragment_names(files: list[PeakFile]) -> tuple[list[str], list[str], list[int]]:
    fragments, kinds, charges = [], [], []
    for peak in files:
        try:
            name = parse_peak_name(peak.label)
        except FragmentError as err:
            raise TofsimsReadError(peak.path, f"peak label in the file name: {err}") from None
        fragments.append(name.fragment or peak.label)
        kinds.append(name.kind)
        charges.append(name.charge)
    seen: dict[str, Path] = {}
    for fragment, peak in zip(fragments, files, strict=True):
        if fragment in seen:
            raise TofsimsReadError(peak.path, f"fragment {fragment} also in {seen[fragment].name}")
        seen[fragment] = peak.path
    return fragments, kinds, charges


def read(source: str | os.PathLike[str]) -> xr.Dataset:
    """Open a set of per-peak 3D ASCII exports lazily.

    Parameters
    ----------
    source
        A folder, a glob pattern, or one of the files (its siblings are collected).

    Returns
    -------
    xarray.Dataset
        ``counts(fragment, scan, y, x)`` (float64, dask, one chunk per file) with coordinates
        ``fragment`` (our notation, or the verbatim label for sums), ``peak_label``, ``kind``,
        ``file_number``, ``mass_low``/``mass_high`` and ``sputter_time`` (NaN: not in the export).

    Raises
    ------
    TofsimsReadError
        No matching files, files of different grid sizes, unreadable tails or labels; while
        computing: incomplete grids, out-of-order or non-numeric rows (naming file and line).
    """
    files = export_files(source)
    fragments, kinds, charges = _fragment_names(files)
    headers, first_lines, last_rows = [], [], []
    for peak in files:
        header, first_line = _header(peak.path)
        headers.append(header)
        first_lines.append(first_line)
        last_rows.append(_last_row(peak.path))
    nx, ny, nz = (max(values) + 1 for values in zip(*last_rows, strict=True))
    for peak, last in zip(files, last_rows, strict=True):
        if last != (nx - 1, ny - 1, nz - 1):
            raise TofsimsReadError(
                peak.path,
                f"incomplete grid: last voxel (x, y, z) = {last}, other files end at "
                f"{(nx - 1, ny - 1, nz - 1)}",
            )
    shape = (nz, ny, nx)
    blocks = [
        da.from_delayed(
            _delayed_volume(peak.path, first_line, shape), shape=(1, *shape), dtype=np.float64
        )
        for peak, first_line in zip(files, first_lines, strict=True)
    ]
    counts = da.concatenate(blocks, axis=0)
    nan = np.full(len(files), np.nan)
    polarity = {-1: "negative", 1: "positive"}
    signs = {c for c in charges if c}
    coords = {
        "fragment": ("fragment", np.array(fragments, dtype=object)),
        "peak_label": ("fragment", np.array([f.label for f in files], dtype=object)),
        "kind": ("fragment", np.array(kinds, dtype=object)),
        "file_number": ("fragment", np.array([f.number for f in files], dtype=np.int64)),
        "mass_low": ("fragment", nan, {"units": "u", "note": "not in the export"}),
        "mass_high": ("fragment", nan.copy(), {"units": "u", "note": "not in the export"}),
        "scan": ("scan", np.arange(nz, dtype=np.int64)),
        "sputter_time": ("scan", np.full(nz, np.nan), {"units": "s", "note": "not in the export"}),
        "y": ("y", np.arange(ny, dtype=np.int64)),
        "x": ("x", np.arange(nx, dtype=np.int64)),
    }
    folder = files[0].path.parent
    attrs = {
        **provenance(folder, f"{__name__}.read", FORMAT),
        "measurement": files[0].measurement,
        "source_files": header_json([f.path.name for f in files]),
        "polarity": polarity[signs.pop()] if len(signs) == 1 else "unknown",
        "poisson_corrected": float("nan"),
        "poisson_corrected_note": "not recorded in the export",
        "origin": "as exported (x, y columns; orientation unverified)",
        "header_json": header_json({f.path.name: h for f, h in zip(files, headers, strict=True)}),
    }
    return xr.Dataset(
        {"counts": (("fragment", "scan", "y", "x"), counts, {"units": "counts"})},
        coords=coords,
        attrs=attrs,
    )


def _delayed_volume(path: Path, first_line: int, shape: tuple[int, int, int]) -> Any:
    import dask

    return dask.delayed(read_volume, pure=True)(path, first_line, shape)


class Ascii3dBackend(BackendEntrypoint):
    """xarray engine ``tofsims_ascii3d``: IONTOF 3D ASCII per-peak exports."""

    sniff_order = 50

    description = (
        "IONTOF 3D ASCII per-peak exports (folder/glob/file) -> counts(fragment, scan, y, x)"
    )
    open_dataset_parameters = ("filename_or_obj", "drop_variables")

    def open_dataset(  # type: ignore[override]
        self, filename_or_obj: str | os.PathLike[str], *, drop_variables: Any = None
    ) -> xr.Dataset:
        """Open a 3D ASCII export; see :func:`read`."""
        return read(filename_or_obj).drop_vars(drop_variables or [], errors="ignore")

    def guess_can_open(self, filename_or_obj: Any) -> bool:
        """Sniff the file name pattern and the first data row."""
        return sniff(can_open, filename_or_obj)
