"""IONTOF SurfaceLab ASCII depth-profile export (``*.txt``) -> ``intensity(scan, peak)``.

Layout (verified on three SurfaceLab 7.3 exports, ``docs/formats.md``): TAB-separated latin-1
text, every line but the first ends with a TAB. Line 1 is a comment
(``# Profile Smoothing is Disabled``); the header block ends with the column-title line
``#Data Point #<TAB>Sputter Time (s)<TAB>Dose (ions)<TAB>Fluence (ions/cm^2)<TAB>Intensity...``,
preceded by the peak labels and the interval-centre masses (``N/A`` for total, sums, ratios).
Data rows hold the data-point number (1-based), the sputter time (s), the primary-ion dose
(ions), the fluence (ions/cm²) and one Poisson-corrected intensity per peak.

Quirks handled: non-unique labels (peaks are keyed by column index), ``inf`` in ratio columns
(x/0 and 0/0) -> NaN, a final incomplete all-zero sputter cycle (dropped with a warning),
static acquisitions whose time axis does not start at 0.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np
import xarray as xr
from xarray.backends import BackendEntrypoint

from tofsims.errors import FragmentError, TofsimsReadError
from tofsims.io.backend import header_json, provenance, sniff
from tofsims.peaknames import PeakName, parse_peak_name

__all__ = ["FORMAT", "SurfaceLabBackend", "can_open", "read"]

FORMAT = "IONTOF SurfaceLab ASCII depth profile"
ENGINE = "tofsims_surfacelab"
TITLE_MARK = "#Data Point #"
AXIS_TITLES = ("#Data Point #", "Sputter Time (s)", "Dose (ions)", "Fluence (ions/cm^2)")
N_AXES = len(AXIS_TITLES)


def can_open(path: str | os.PathLike[str], head: bytes) -> bool:
    """Tell whether ``head`` (first bytes of the file) looks like a SurfaceLab profile export."""
    text = head.decode("latin-1")
    return text.startswith("#") and TITLE_MARK + "\t" in text and "Sputter Time (s)" in text


def _fields(line: str) -> list[str]:
    fields = line.rstrip("\r\n").split("\t")
    return fields[:-1] if fields and fields[-1] == "" else fields


def _header(path: str | os.PathLike[str], lines: list[str]) -> tuple[int, list[str], list[str]]:
    """Locate the column-title line; return its index, the peak labels and centre masses."""
    title_index = next(
        (i for i, line in enumerate(lines[:50]) if line.startswith(TITLE_MARK)), None
    )
    if title_index is None or title_index < 2:
        raise TofsimsReadError(path, f"no '{TITLE_MARK}' column-title line after two header lines")
    titles = _fields(lines[title_index])
    if tuple(titles[:N_AXES]) != AXIS_TITLES:
        raise TofsimsReadError(
            path,
            f"unexpected column titles {titles[:N_AXES]} (expected {list(AXIS_TITLES)})",
            line=title_index + 1,
        )
    n_peaks = len(titles) - N_AXES
    labels = _fields(lines[title_index - 2])[N_AXES:]
    masses = _fields(lines[title_index - 1])[N_AXES:]
    for offset, row in ((2, labels), (1, masses)):
        if len(row) != n_peaks:
            raise TofsimsReadError(
                path,
                f"{len(row)} header fields for {n_peaks} intensity columns",
                line=title_index + 1 - offset,
            )
    if n_peaks == 0:
        raise TofsimsReadError(path, "no intensity columns", line=title_index + 1)
    return title_index, labels, masses


def _centre_masses(path: str | os.PathLike[str], masses: list[str], line: int) -> np.ndarray:
    values = np.full(len(masses), np.nan)
    for index, text in enumerate(masses):
        if text.strip() in ("N/A", ""):
            continue
        try:
            values[index] = float(text)
        except ValueError:
            raise TofsimsReadError(
                path, f"peak {index}: mass {text!r} is not a number", line
            ) from None
    return values


def _table(
    path: str | os.PathLike[str], lines: list[str], first: int, n_columns: int
) -> np.ndarray:
    """Parse the data rows (``lines[first:]``) into a float array, naming the bad line."""
    rows = []
    for number, line in enumerate(lines[first:], start=first + 1):
        if not line.strip():
            continue
        fields = _fields(line)
        if len(fields) != n_columns:
            raise TofsimsReadError(
                path, f"{len(fields)} fields, expected {n_columns} (truncated row?)", number
            )
        try:
            rows.append(np.asarray(fields, dtype=np.float64))
        except ValueError:
            bad = next(f for f in fields if not _is_number(f))
            hint = " (decimal comma? SurfaceLab writes '.')" if "," in bad else ""
            raise TofsimsReadError(path, f"{bad!r} is not a number{hint}", number) from None
    if not rows:
        raise TofsimsReadError(path, "header only, no data rows", len(lines))
    return np.vstack(rows)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _classify(labels: list[str]) -> tuple[list[PeakName | None], list[str]]:
    names: list[PeakName | None] = []
    unparsed = []
    for label in labels:
        try:
            names.append(parse_peak_name(label))
        except FragmentError:
            names.append(None)
            unparsed.append(label)
    return names, unparsed


def _kind(name: PeakName | None, label: str) -> str:
    if name is not None:
        return name.kind
    return "ratio" if " / ( " in label else "single"


def _polarity(names: list[PeakName | None]) -> str:
    charges = {name.charge for name in names if name is not None and name.charge}
    if charges == {-1}:
        return "negative"
    if charges == {1}:
        return "positive"
    return "mixed" if charges else "unknown"


def _check_axes(path: str | os.PathLike[str], table: np.ndarray, first_line: int) -> None:
    for column, title in enumerate(AXIS_TITLES):
        bad = np.flatnonzero(~np.isfinite(table[:, column]))
        if bad.size:
            raise TofsimsReadError(path, f"{title!r} is not a finite number", first_line + bad[0])
    expected = np.arange(1, len(table) + 1)
    if not np.array_equal(table[:, 0], expected):
        row = int(np.flatnonzero(table[:, 0] != expected)[0])
        raise TofsimsReadError(
            path,
            f"data point #{table[row, 0]:g} out of sequence (expected {row + 1})",
            first_line + row,
        )
    for column in (1, 2, 3):
        steps = np.diff(table[:, column])
        if np.any(steps < 0):
            row = int(np.flatnonzero(steps < 0)[0]) + 1
            raise TofsimsReadError(
                path,
                f"{AXIS_TITLES[column]} is not monotonic "
                f"({table[row, column]:g} after {table[row - 1, column]:g})",
                first_line + row,
            )


def _incomplete_tail(total: np.ndarray) -> int:
    """Count the trailing rows whose total is 0 (incomplete final sputter cycles)."""
    nonzero = np.flatnonzero(total != 0)
    return len(total) - (int(nonzero[-1]) + 1 if nonzero.size else 0)


def read(path: str | os.PathLike[str], *, drop_incomplete: bool = True) -> xr.Dataset:
    """Read a SurfaceLab ASCII depth-profile export.

    Parameters
    ----------
    path
        The exported ``*.txt`` file.
    drop_incomplete
        Drop trailing rows whose ``total`` is 0 — the incomplete last sputter cycle SurfaceLab
        writes as zeros (a warning names how many); the count is kept in the attribute
        ``dropped_incomplete_rows``.

    Returns
    -------
    xarray.Dataset
        ``intensity(scan, peak)`` (counts per data point, float64, already Poisson corrected)
        with coordinates ``sputter_time`` (s), ``dose`` (ions), ``fluence`` (ions/cm²),
        ``peak_label``, ``fragment``, ``mass_center`` (u), ``kind``; see ``docs/conventions.md``.

    Raises
    ------
    TofsimsReadError
        Wrong header, truncated or non-numeric rows, non-monotonic time, non-finite values
        outside ratio columns; the message names the file and line.
    """
    with open(path, "rb") as handle:
        raw = handle.read()
    if not raw:
        raise TofsimsReadError(path, "file is empty")
    if b"\x00" in raw[:4096]:
        raise TofsimsReadError(path, "binary content, not a SurfaceLab ASCII export")
    lines = raw.decode("latin-1").splitlines()
    title_index, labels, mass_text = _header(path, lines)
    masses = _centre_masses(path, mass_text, title_index)
    first_line = title_index + 2
    table = _table(path, lines, title_index + 1, N_AXES + len(labels))
    _check_axes(path, table, first_line)
    names, unparsed = _classify(labels)
    kinds = np.array([_kind(name, label) for name, label in zip(names, labels, strict=True)])
    intensity = table[:, N_AXES:]
    is_ratio = kinds == "ratio"
    bad = ~np.isfinite(intensity) & ~is_ratio
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise TofsimsReadError(
            path, f"intensity of {labels[col]!r} is {intensity[row, col]:g}", first_line + row
        )
    intensity[:, is_ratio] = np.where(
        np.isinf(intensity[:, is_ratio]), np.nan, intensity[:, is_ratio]
    )
    dropped = 0
    total_columns = np.flatnonzero(kinds == "total")
    if drop_incomplete and total_columns.size:
        dropped = _incomplete_tail(intensity[:, total_columns[0]])
        if dropped == len(table):
            raise TofsimsReadError(path, "every data point has total 0 (no counts)")
        if dropped:
            warnings.warn(
                f"{os.fspath(path)}: dropped {dropped} final data point(s) with total 0 "
                "(incomplete sputter cycle)",
                UserWarning,
                stacklevel=2,
            )
    keep = slice(0, len(table) - dropped)
    return _dataset(
        path, lines, table[keep], intensity[keep], labels, names, kinds, masses, unparsed, dropped
    )


def _dataset(
    path: str | os.PathLike[str],
    lines: list[str],
    table: np.ndarray,
    intensity: np.ndarray,
    labels: list[str],
    names: list[PeakName | None],
    kinds: np.ndarray,
    masses: np.ndarray,
    unparsed: list[str],
    dropped: int,
) -> xr.Dataset:
    time = table[:, 1]
    steps = np.diff(time)
    comment = lines[0].lstrip("#").strip()
    coords = {
        "scan": ("scan", np.arange(len(table), dtype=np.int64)),
        "sputter_time": (
            "scan",
            time,
            {
                "units": "s",
                "long_name": "Sputter Time",
                # depth profiles start at 0 s (sputtering before each analysis); static
                # acquisitions put the first point at half a scan (1.6384 s of 3.2768 s)
                "time_reference": "start" if time[0] == 0 else "midpoint",
            },
        ),
        "dose": ("scan", table[:, 2], {"units": "ions", "long_name": "primary-ion dose"}),
        "fluence": ("scan", table[:, 3], {"units": "ions/cm2", "long_name": "fluence"}),
        "peak": ("peak", np.arange(len(labels), dtype=np.int64)),
        "peak_label": ("peak", np.array(labels, dtype=object)),
        "fragment": ("peak", np.array([n.fragment if n else "" for n in names], dtype=object)),
        "mass_center": ("peak", masses, {"units": "u", "long_name": "interval centre mass"}),
        "kind": ("peak", kinds.astype(object)),
    }
    attrs: dict[str, Any] = {
        **provenance(path, f"{__name__}.read", FORMAT),
        "polarity": _polarity(names),
        "poisson_corrected": 1,
        "seconds_per_scan": float(f"{np.median(steps):.12g}") if steps.size else float("nan"),
        "acquisition": "depth profile" if time[0] == 0 else "static",
        "profile_smoothing": comment.removeprefix("Profile Smoothing is ").lower(),
        "dropped_incomplete_rows": dropped,
        "unparsed_labels": header_json(unparsed),
        "header_json": header_json({"comment": comment}),
    }
    intensity_attrs = {
        "units": "counts",
        "long_name": "intensity per data point (ratios: dimensionless)",
        "poisson_corrected": 1,
    }
    return xr.Dataset(
        {"intensity": (("scan", "peak"), intensity, intensity_attrs)}, coords=coords, attrs=attrs
    )


class SurfaceLabBackend(BackendEntrypoint):
    """xarray engine ``tofsims_surfacelab``: SurfaceLab ASCII depth-profile exports."""

    sniff_order = 40

    description = "IONTOF SurfaceLab ASCII depth-profile export (*.txt) -> intensity(scan, peak)"
    open_dataset_parameters = ("filename_or_obj", "drop_variables", "drop_incomplete")

    def open_dataset(  # type: ignore[override]
        self,
        filename_or_obj: str | os.PathLike[str],
        *,
        drop_variables: Any = None,
        drop_incomplete: bool = True,
    ) -> xr.Dataset:
        """Open a SurfaceLab profile export; see :func:`read`."""
        dataset = read(filename_or_obj, drop_incomplete=drop_incomplete)
        return dataset.drop_vars(drop_variables or [], errors="ignore")

    def guess_can_open(self, filename_or_obj: Any) -> bool:
        """Sniff the content (``#Data Point #`` column titles)."""
        return sniff(can_open, filename_or_obj)
