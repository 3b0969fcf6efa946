"""imzML (``.imzML`` XML + ``.ibd`` binary), continuous and processed, 2D and 3D, lazily.

The XML is parsed once with :mod:`pyimzml` (offsets, lengths, positions, data types); the
``.ibd`` pairing is checked (its first 16 bytes are the UUID ``IMS:1000080``; the SHA-1
``IMS:1000091`` or MD5 ``IMS:1000090`` of the whole file must match). Spectra are then read
lazily: every dask task opens the ``.ibd`` by path and reads only its own pixels, so graphs hold
no open file handles.

Result (``docs/formats.md``, "imzML"):

* continuous mode: ``intensity(z, y, x, mz)`` with the shared ``mz`` axis;
* processed mode: ``mz(z, y, x, point)`` and ``intensity(z, y, x, point)``, each pixel's own
  spectrum padded with NaN to the longest one, and ``n_points(z, y, x)``;
* either mode with ``fragments={name: (low, high)}``: ``counts(fragment, scan, y, x)`` — the
  intensity summed over ``low <= m/z < high`` (u) per pixel, following the TOF-SIMS volume
  convention (``scan`` = z index).

Pixel indices ``x``, ``y``, ``z`` are 0-based: imzML positions minus 1 (or minus 0 for writers
that start at 0, recorded in ``position_origin``). Pixels without a spectrum are NaN.
"""

from __future__ import annotations

import hashlib
import os
import re
import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr
from xarray.backends import BackendEntrypoint

from tofsims.errors import TofsimsReadError
from tofsims.io.backend import header_json, provenance, sniff

__all__ = ["FORMAT", "ImzmlBackend", "can_open", "input_files", "read"]

FORMAT = "imzML"
ENGINE = "tofsims_imzml"
CHUNK_BYTES = 64 * 2**20
TIC_ACCESSION = "MS:1000285"
_HEX = re.compile(r"[0-9a-f]+")


@dataclass(frozen=True)
class SpectrumTable:
    """Where every spectrum lives in the ``.ibd`` (one row per spectrum, XML order).

    ``index`` maps (z, y, x) to the spectrum row, -1 where no spectrum was written.
    """

    ibd: str
    mode: str
    mz_dtype: np.dtype
    intensity_dtype: np.dtype
    mz_offset: np.ndarray
    mz_length: np.ndarray
    intensity_offset: np.ndarray
    intensity_length: np.ndarray
    index: np.ndarray


def can_open(path: str | os.PathLike[str], head: bytes) -> bool:
    """Tell whether the file is an imzML document (or the ``.ibd`` beside one)."""
    if Path(path).suffix.lower() == ".ibd":
        return _imzml_beside(path) is not None
    text = head.decode("latin-1")
    return text.lstrip().startswith("<?xml") and "<mzML" in text and "IMS:" in text


def _imzml_beside(ibd: str | os.PathLike[str]) -> Path | None:
    stem = Path(ibd)
    for candidate in stem.parent.glob(f"{stem.stem}.*"):
        if candidate.suffix.lower() == ".imzml":
            return candidate
    return None


def _ibd_beside(path: Path) -> Path:
    for candidate in path.parent.glob(f"{path.stem}.*"):
        if candidate.suffix.lower() == ".ibd":
            return candidate
    raise TofsimsReadError(path, f"no '{path.stem}.ibd' binary file beside the imzML file")


def input_files(path: str | os.PathLike[str]) -> list[Path]:
    """List the files a read of ``path`` opens: the imzML document and its ``.ibd``."""
    path = Path(path)
    imzml = _imzml_beside(path) if path.suffix.lower() == ".ibd" else path
    return [imzml, _ibd_beside(imzml)] if imzml is not None else [path]


def _parse(path: Path) -> Any:
    try:
        from pyimzml.ImzMLParser import ImzMLParser
    except ImportError as err:
        problem = "reading imzML needs pyimzml: pip install 'operando[imzml]'"
        raise TofsimsReadError(path, problem) from err

    try:
        return ImzMLParser(
            str(path),
            parse_lib="ElementTree",
            ibd_file=None,
            include_spectra_metadata=[TIC_ACCESSION],
        )
    except ET.ParseError as err:
        raise TofsimsReadError(path, f"malformed XML: {err}", line=err.position[0]) from None
    except (ValueError, KeyError, AttributeError, TypeError, IndexError, RuntimeError) as err:
        problem = f"not a readable imzML file ({type(err).__name__}: {err})"
        raise TofsimsReadError(path, problem) from None


def _normalised_hex(value: Any) -> str:
    return str(value).strip().strip("{}").replace("-", "").lower()


def _is_placeholder(identifier: str, n_digits: int) -> bool:
    """Whether an identifier is a writer's placeholder: not ``n_digits`` hex digits, or zeros."""
    return (
        len(identifier) != n_digits
        or _HEX.fullmatch(identifier) is None
        or set(identifier) == {"0"}
    )


def _warn_placeholder(imzml: Path, name: str, value: Any, consequence: str) -> None:
    warnings.warn(
        f"{imzml}: {name!r} is a placeholder ({str(value)!r}), not a real identifier; "
        f"{consequence}",
        UserWarning,
        stacklevel=4,
    )


def check_ibd_pairing(
    imzml: Path, ibd: Path, description: dict[str, Any], *, verify_checksum: bool = True
) -> dict[str, str]:
    """Check that ``ibd`` belongs to ``imzml``: UUID in its first 16 bytes, SHA-1/MD5 of it.

    Some writers emit placeholder identifiers (all zeros, too short or empty: pewlib's test
    files); those cannot be checked and give a warning. A real identifier that does not match
    the ``.ibd`` is an error. Returns the identifiers checked (for the attributes).

    Raises
    ------
    TofsimsReadError
        If a real UUID or checksum does not match the ``.ibd``.
    """
    raw_uuid = description.get("universally unique identifier", "")
    uuid = _normalised_hex(raw_uuid)
    ids = {"uuid": ""}
    if _is_placeholder(uuid, 32):
        _warn_placeholder(
            imzml, "universally unique identifier", raw_uuid, "the .ibd pairing is not checked"
        )
    else:
        with open(ibd, "rb") as handle:
            first = handle.read(16).hex()
        if first != uuid:
            raise TofsimsReadError(
                ibd,
                f"UUID {first or '(empty file)'} does not match {uuid} of {imzml.name} "
                "(wrong .ibd for this imzML?)",
            )
        ids["uuid"] = uuid
    for name, algorithm, n_digits in (("ibd SHA-1", "sha1", 40), ("ibd MD5", "md5", 32)):
        expected = description.get(name)
        if expected is None:
            continue
        if _is_placeholder(_normalised_hex(expected), n_digits):
            _warn_placeholder(imzml, name, expected, "the .ibd checksum is not verified")
            continue
        ids[algorithm] = _normalised_hex(expected)
        if verify_checksum:
            digest = hashlib.new(algorithm)
            with open(ibd, "rb") as handle:
                while block := handle.read(2**22):
                    digest.update(block)
            if digest.hexdigest() != ids[algorithm]:
                raise TofsimsReadError(
                    ibd,
                    f"{name} {digest.hexdigest()} does not match {ids[algorithm]} "
                    f"of {imzml.name} (modified or wrong .ibd)",
                )
    return ids


def _pixel_grid(path: Path, coordinates: list[tuple[int, int, int]]) -> tuple[np.ndarray, int]:
    if not coordinates:
        raise TofsimsReadError(path, "no spectra")
    positions = np.asarray(coordinates, dtype=np.int64)
    origin = 0 if positions.min() == 0 else 1
    if positions.min() < 0:
        raise TofsimsReadError(path, "negative pixel position")
    positions = positions - origin
    shape = tuple(int(n) + 1 for n in positions.max(axis=0)[::-1])  # (z, y, x)
    index = np.full(shape, -1, dtype=np.int64)
    z, y, x = positions[:, 2], positions[:, 1], positions[:, 0]
    if np.any(index[z, y, x] != -1) or len(np.unique(positions, axis=0)) != len(positions):
        raise TofsimsReadError(path, "two spectra at the same pixel position")
    index[z, y, x] = np.arange(len(positions))
    return index, origin


def _table(path: Path, parser: Any, ibd: Path, mode: str) -> tuple[SpectrumTable, int]:
    index, origin = _pixel_grid(path, parser.coordinates)
    table = SpectrumTable(
        ibd=str(ibd),
        mode=mode,
        mz_dtype=np.dtype("<" + parser.mzPrecision),
        intensity_dtype=np.dtype("<" + parser.intensityPrecision),
        mz_offset=np.asarray(parser.mzOffsets, dtype=np.int64),
        mz_length=np.asarray(parser.mzLengths, dtype=np.int64),
        intensity_offset=np.asarray(parser.intensityOffsets, dtype=np.int64),
        intensity_length=np.asarray(parser.intensityLengths, dtype=np.int64),
        index=index,
    )
    size = os.path.getsize(ibd)
    ends = np.concatenate(
        [
            table.mz_offset + table.mz_length * table.mz_dtype.itemsize,
            table.intensity_offset + table.intensity_length * table.intensity_dtype.itemsize,
        ]
    )
    if ends.max() > size:
        raise TofsimsReadError(
            ibd, f"truncated: spectra extend to byte {ends.max()}, file has {size}"
        )
    if np.any(table.mz_length != table.intensity_length):
        raise TofsimsReadError(path, "an m/z array and its intensity array differ in length")
    return table, origin


@dataclass(frozen=True)
class IbdSource:
    """What a dask task needs to read spectra: the ``.ibd`` path and the array types."""

    ibd: str
    mz_dtype: np.dtype
    intensity_dtype: np.dtype


def _read_array(handle: Any, offset: int, length: int, dtype: np.dtype) -> np.ndarray:
    handle.seek(offset)
    return np.frombuffer(handle.read(length * dtype.itemsize), dtype=dtype)


def _locations(table: SpectrumTable) -> np.ndarray:
    """Per pixel ``(mz offset, intensity offset, length)``; length -1 where no spectrum."""
    rows = table.index
    found = rows >= 0
    grid = np.full((*rows.shape, 3), -1, dtype=np.int64)
    grid[found] = np.column_stack(
        [
            table.mz_offset[rows[found]],
            table.intensity_offset[rows[found]],
            table.intensity_length[rows[found]],
        ]
    )
    return grid


def _spectra_block(
    locations: np.ndarray, source: IbdSource, width: int, what: str, out_dtype: np.dtype
) -> np.ndarray:
    """Read the m/z or intensity arrays of a ``(z, y, x, 3)`` block into ``(z, y, x, width)``."""
    out = np.full((*locations.shape[:3], width), np.nan, dtype=out_dtype)
    column, dtype = (0, source.mz_dtype) if what == "mz" else (1, source.intensity_dtype)
    with open(source.ibd, "rb") as handle:
        for position in np.ndindex(*locations.shape[:3]):
            offset, length = locations[position][column], locations[position][2]
            if length >= 0:
                out[position][:length] = _read_array(handle, offset, length, dtype)
    return out


def _window_block(
    locations: np.ndarray, source: IbdSource, lows: np.ndarray, highs: np.ndarray
) -> np.ndarray:
    """Sum each pixel's intensity over ``lows <= m/z < highs``: block ``(fragment, z, y, x)``."""
    out = np.full((lows.size, *locations.shape[:3]), np.nan)
    with open(source.ibd, "rb") as handle:
        for position in np.ndindex(*locations.shape[:3]):
            mz_offset, intensity_offset, length = locations[position]
            if length < 0:
                continue
            mz = _read_array(handle, mz_offset, length, source.mz_dtype)
            intensity = _read_array(handle, intensity_offset, length, source.intensity_dtype)
            order = np.argsort(mz, kind="stable")
            cumulative = np.concatenate([[0.0], np.cumsum(intensity[order], dtype=np.float64)])
            sorted_mz = mz[order]
            upper = np.searchsorted(sorted_mz, highs, side="left")
            lower = np.searchsorted(sorted_mz, lows, side="left")
            out[(slice(None), *position)] = cumulative[upper] - cumulative[lower]
    return out


def _row_chunks(locations: np.ndarray, bytes_per_pixel: int, chunk_bytes: int) -> da.Array:
    """Dask array of pixel locations, chunked by image rows (each task gets only its own)."""
    _, ny, nx, _ = locations.shape
    rows = max(1, min(ny, chunk_bytes // max(1, bytes_per_pixel * nx)))
    return da.from_array(locations, chunks=(1, rows, nx, 3), name=False)


def _spectra_variable(
    locations: da.Array, source: IbdSource, width: int, what: str, out_dtype: np.dtype
) -> da.Array:
    return da.map_blocks(
        _spectra_block,
        locations,
        source=source,
        width=width,
        what=what,
        out_dtype=out_dtype,
        chunks=(*locations.chunks[:3], (width,)),
        dtype=out_dtype,
        meta=np.empty((0, 0, 0, 0), dtype=out_dtype),
    )


def _float_dtype(dtype: np.dtype) -> np.dtype:
    return dtype if dtype.kind == "f" else np.dtype(np.float64)


def _window_variables(
    locations: np.ndarray,
    source: IbdSource,
    fragments: dict[str, tuple[float, float]],
    chunk_bytes: int,
) -> tuple[dict[str, Any], dict[str, Any]]:
    names = list(fragments)
    lows = np.array([float(fragments[n][0]) for n in names])
    highs = np.array([float(fragments[n][1]) for n in names])
    if not names or np.any(~(lows < highs)):
        raise ValueError("fragments must map names to (low, high) m/z windows with low < high")
    width = int(locations[..., 2].max())
    chunks = _row_chunks(locations, 16 * width, chunk_bytes)
    counts = da.map_blocks(
        _window_block,
        chunks,
        source=source,
        lows=lows,
        highs=highs,
        drop_axis=3,
        new_axis=0,
        chunks=((len(names),), *chunks.chunks[:3]),
        dtype=np.float64,
        meta=np.empty((0, 0, 0, 0)),
    )
    counts_attrs = {"units": "counts", "long_name": "intensity summed over the m/z window"}
    coords = {
        "fragment": ("fragment", np.array(names, dtype=object)),
        "mass_low": ("fragment", lows, {"units": "u"}),
        "mass_high": ("fragment", highs, {"units": "u"}),
    }
    return {"counts": (("fragment", "scan", "y", "x"), counts, counts_attrs)}, coords


def _data_variables(
    table: SpectrumTable,
    fragments: dict[str, tuple[float, float]] | None,
    chunk_bytes: int,
) -> tuple[dict[str, Any], dict[str, Any]]:
    source = IbdSource(table.ibd, table.mz_dtype, table.intensity_dtype)
    locations = _locations(table)
    if fragments is not None:
        return _window_variables(locations, source, fragments, chunk_bytes)
    width = int(table.intensity_length.max())
    value_dtype = _float_dtype(table.intensity_dtype)
    chunks = _row_chunks(locations, value_dtype.itemsize * width, chunk_bytes)
    intensity = _spectra_variable(chunks, source, width, "intensity", value_dtype)
    intensity_attrs = {"units": "counts", "long_name": "intensity (as stored in the .ibd)"}
    if table.mode == "continuous":
        with open(table.ibd, "rb") as handle:
            mz = _read_array(handle, table.mz_offset[0], table.mz_length[0], table.mz_dtype)
        variables = {"intensity": (("z", "y", "x", "mz"), intensity, intensity_attrs)}
        return variables, {"mz": ("mz", mz.astype(np.float64), {"units": "u", "long_name": "m/z"})}
    mz_values = _spectra_variable(chunks, source, width, "mz", _float_dtype(table.mz_dtype))
    n_points = np.maximum(locations[..., 2], 0)
    return {
        "mz": (("z", "y", "x", "point"), mz_values, {"units": "u", "long_name": "m/z (NaN pad)"}),
        "intensity": (("z", "y", "x", "point"), intensity, intensity_attrs),
        "n_points": (("z", "y", "x"), n_points, {"long_name": "valid points per spectrum"}),
    }, {}


def read(
    path: str | os.PathLike[str],
    *,
    fragments: dict[str, tuple[float, float]] | None = None,
    verify_checksum: bool = True,
    chunk_bytes: int = CHUNK_BYTES,
) -> xr.Dataset:
    """Open an imzML/ibd pair lazily.

    Parameters
    ----------
    path
        The ``.imzML`` file (or the ``.ibd`` beside it).
    fragments
        Optional ``{name: (low, high)}`` m/z windows in u: return ``counts(fragment, scan,
        y, x)``, the intensity summed over ``low <= m/z < high`` per pixel.
    verify_checksum
        Hash the whole ``.ibd`` and compare with ``IMS:1000091``/``IMS:1000090`` (the UUID is
        always checked).
    chunk_bytes
        Approximate size of one dask chunk (whole spectra, several image rows).

    Returns
    -------
    xarray.Dataset
        Dask-backed; see the module docstring for the layout of each mode.
    """
    path = Path(path)
    if path.suffix.lower() == ".ibd":
        path = _imzml_beside(path) or path
    if not path.is_file() or path.stat().st_size == 0:
        raise TofsimsReadError(path, "file is missing or empty")
    parser = _parse(path)
    description = parser.metadata.file_description.param_by_name
    mode = "continuous" if description.get("continuous") else "processed"
    if not description.get("continuous") and not description.get("processed"):
        raise TofsimsReadError(path, "neither 'continuous' nor 'processed' (IMS:1000030/31)")
    ibd = _ibd_beside(path)
    ids = check_ibd_pairing(path, ibd, description, verify_checksum=verify_checksum)
    table, origin = _table(path, parser, ibd, mode)
    variables, extra_coords = _data_variables(table, fragments, chunk_bytes)
    tic_values = parser.spectrum_metadata_fields[TIC_ACCESSION]
    tic = np.array([np.nan if v is None else v for v in tic_values], dtype=np.float64)
    tic_grid = np.where(table.index >= 0, np.append(tic, np.nan)[table.index], np.nan)
    spatial = ("scan", "y", "x") if fragments is not None else ("z", "y", "x")
    variables["total_ion_current"] = (
        spatial,
        tic_grid,
        {"units": "counts", "long_name": "TIC (MS:1000285)"},
    )
    nz, ny, nx = table.index.shape
    coords = {
        spatial[0]: (spatial[0], np.arange(nz, dtype=np.int64)),
        "y": ("y", np.arange(ny, dtype=np.int64)),
        "x": ("x", np.arange(nx, dtype=np.int64)),
        **extra_coords,
    }
    meta = parser.imzmldict
    attrs = {
        **provenance(path, f"{__name__}.read", FORMAT),
        "mode": mode,
        "polarity": parser.polarity or "unknown",
        "spectrum_type": parser.spectrum_mode or "unknown",
        "ibd_file": str(ibd.resolve()),
        "uuid": ids["uuid"],
        "checksum_verified": int(verify_checksum and len(ids) > 1),
        "position_origin": origin,
        "pixel_size_x_um": float(meta.get("pixel size x", np.nan)),
        "pixel_size_y_um": float(meta.get("pixel size y", np.nan)),
        "origin": "upper-left",
        "header_json": header_json({k: v for k, v in meta.items()}),
    }
    return xr.Dataset(variables, coords=coords, attrs=attrs)


class ImzmlBackend(BackendEntrypoint):
    """xarray engine ``tofsims_imzml``: imzML continuous/processed, 2D and 3D."""

    sniff_order = 10

    description = "imzML + ibd (continuous or processed, with z) -> lazy dask Dataset"
    open_dataset_parameters = (
        "filename_or_obj",
        "drop_variables",
        "fragments",
        "verify_checksum",
        "chunk_bytes",
    )

    def open_dataset(  # type: ignore[override]
        self,
        filename_or_obj: str | os.PathLike[str],
        *,
        drop_variables: Any = None,
        fragments: dict[str, tuple[float, float]] | None = None,
        verify_checksum: bool = True,
        chunk_bytes: int = CHUNK_BYTES,
    ) -> xr.Dataset:
        """Open an imzML file; see :func:`read`."""
        dataset = read(
            filename_or_obj,
            fragments=fragments,
            verify_checksum=verify_checksum,
            chunk_bytes=chunk_bytes,
        )
        return dataset.drop_vars(drop_variables or [], errors="ignore")

    def guess_can_open(self, filename_or_obj: Any) -> bool:
        """Sniff the content (``<?xml`` + ``<mzML`` + IMS accessions)."""
        return sniff(can_open, filename_or_obj)
