"""Write fragment volumes to Zarr, chunked for depth profiles and slice views.

Storage chunks of ``counts(fragment, scan, y, x)`` are ``(1, 16, 128, 128)`` (clipped to
the volume): one fragment, 16 scans, a 128 × 128 tile — 1 MB of uint32. A per-pixel depth
profile then reads ``n_scans/16`` chunks of one tile, and a one-scan slice reads the
``(ny/128)·(nx/128)`` tiles of its scan group; both stay far from reading the volume.
Compression: Blosc-zstd level 3 with bit-shuffle (best ratio and read speed on sparse
counts).
"""

from __future__ import annotations

import base64
import contextlib
import os
import uuid
import warnings
from collections.abc import Hashable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from operando_core.stores import record_chunks, store_damage
from tofsims.errors import TofsimsReadError
from tofsims.io.grd_records import MAX_SCANS
from tofsims.io.properties import MAX_RASTER_SIDE

if TYPE_CHECKING:
    import xarray as xr

    from tofsims.volume_layout import LayoutVariable, VolumeLayout

__all__ = [
    "STORE_SCANS",
    "STORE_TILE",
    "VolumeStore",
    "create_volume_store",
    "is_zarr_store",
    "open_volume",
    "record_dead_time_increase",
    "storage_chunks",
    "store_scans",
    "write_volume",
]

STORE_SCANS = 16
STORE_TILE = 128
#: Largest storage chunk along ``scan`` over the whole image (bytes at 8 per voxel): a task
#: writing a volume holds whole chunks along ``scan``, so a large raster gets fewer scans
#: per chunk and memory stays flat in raster area.
SCAN_CHUNK_BYTES = 256 * 2**20
#: Target size of one dask chunk written by one task (bytes).
TASK_BYTES = 64 * 2**20


def is_zarr_store(path: str | os.PathLike[str]) -> bool:
    """Tell a Zarr store (a folder with Zarr metadata) from anything else."""
    path = Path(path)
    return path.is_dir() and any(
        (path / name).exists() for name in ("zarr.json", ".zgroup", ".zattrs", ".zmetadata")
    )


def open_volume(path: str | os.PathLike[str], *, dask: bool = True) -> xr.Dataset:
    """Open a store written by :func:`write_volume` (or any Zarr dataset) lazily.

    Before anything is read the store is compared with the record its writer left
    (:func:`operando_core.stores.store_damage`: deleted chunk files, edited shapes) and the
    volume's sizes with the reader's limits; a chunk that cannot be decoded when it is read
    raises a :class:`TofsimsReadError` naming the store and the variable.

    Parameters
    ----------
    path
        The store.
    dask
        ``False``: variables read on indexing instead of dask arrays (a small part of a
        store read at once, without the cost of importing dask.array); a chunk that
        cannot be decoded then raises the codec's own error.

    Raises
    ------
    TofsimsReadError
        The store cannot be read, is damaged, or claims an implausible size.
    """
    import xarray as xr

    try:
        problem = store_damage(path)
    except Exception as err:  # zarr raises many types for broken stores
        raise TofsimsReadError(path, f"not a readable Zarr store ({err})") from err
    if problem:  # before xarray reads anything (it loads index coordinates at once)
        raise TofsimsReadError(path, f"unusable store: {problem}")
    try:
        ds = xr.open_zarr(path) if dask else xr.open_zarr(path, chunks=None)
    except Exception as err:
        raise TofsimsReadError(path, f"not a readable Zarr store ({err})") from err
    _check_sizes(ds, path)
    return _guarded(ds, path) if dask else ds


#: Largest sizes a volume store may claim, by dimension (see the GRD reader's limits).
SIZE_LIMITS = {"scan": MAX_SCANS, "y": MAX_RASTER_SIDE, "x": MAX_RASTER_SIDE, "fragment": 1024}


def _check_sizes(ds: xr.Dataset, path: str | os.PathLike[str]) -> None:
    for dim, limit in SIZE_LIMITS.items():
        if ds.sizes.get(dim, 0) > limit:
            raise TofsimsReadError(
                path, f"the store claims {ds.sizes[dim]} along '{dim}', more than {limit}"
            )


class _GuardedArray:
    """A Zarr array whose read errors name the store and the variable."""

    def __init__(self, array: Any, path: str, name: str):
        self.array, self.path, self.name = array, path, name
        self.shape, self.dtype, self.ndim = array.shape, array.dtype, array.ndim

    def __getitem__(self, key: Any) -> Any:
        try:
            return self.array[key]
        except Exception as err:  # a damaged chunk: blosc, zstd, json errors ...
            raise TofsimsReadError(
                self.path, f"{self.name}: a chunk cannot be decoded ({type(err).__name__}: {err})"
            ) from None


def _guarded(ds: xr.Dataset, path: str | os.PathLike[str]) -> xr.Dataset:
    """Read the dask-backed data variables through :class:`_GuardedArray`."""
    import dask.array as da
    import zarr

    group = zarr.open_group(path, mode="r")
    for name, variable in ds.data_vars.items():
        chunks = getattr(variable.data, "chunks", None)
        raw = variable.encoding.get("dtype")
        if chunks is None or raw != variable.dtype or "scale_factor" in variable.encoding:
            continue
        guarded = _GuardedArray(group[name], os.fspath(path), name)
        data = da.from_array(guarded, chunks=chunks, name=f"read-{name}-{uuid.uuid4().hex}")
        ds[name] = variable.copy(data=data)
    return ds


def store_scans(sizes: Mapping[Hashable, int]) -> int:
    """Return the scans per storage chunk: :data:`STORE_SCANS`, fewer for very large rasters."""
    per_scan = sizes.get("fragment", 1) * sizes.get("y", 1) * sizes.get("x", 1) * 8
    return int(max(1, min(STORE_SCANS, SCAN_CHUNK_BYTES // per_scan)))


def storage_chunks(
    sizes: Mapping[Hashable, int], scan_chunk: int | None = None
) -> tuple[int, int, int, int]:
    """Zarr chunk shape of ``counts`` for a volume of the given ``sizes``.

    ``scan_chunk`` defaults to :func:`store_scans`.
    """
    if scan_chunk is None:
        scan_chunk = store_scans(sizes)
    return (
        1,
        min(scan_chunk, sizes["scan"]),
        min(STORE_TILE, sizes["y"]),
        min(STORE_TILE, sizes["x"]),
    )


def _data_codec() -> Any:
    from zarr.codecs import BloscCodec

    return BloscCodec(cname="zstd", clevel=3, shuffle="bitshuffle")


def _data_chunks(
    dims: tuple[Hashable, ...], sizes: Mapping[Hashable, int], scan_chunk: int | None
) -> tuple[int, ...] | None:
    """Storage chunks of a data variable (None: Zarr's choice)."""
    if dims == ("fragment", "scan", "y", "x"):
        return storage_chunks(sizes, scan_chunk)
    if dims == ("block", "tof_channel"):
        return (1, sizes["tof_channel"])  # one block's spectrum per chunk
    if dims == ("tof_channel",):
        return (sizes["tof_channel"],)
    return None


def _encoding(ds: xr.Dataset, scan_chunk: int | None = None) -> dict[str, dict[str, Any]]:
    codec = _data_codec()
    encoding: dict[str, dict[str, Any]] = {}
    for name, var in ds.data_vars.items():
        encoding[name] = {"compressors": [codec]}
        chunks = _data_chunks(var.dims, ds.sizes, scan_chunk)
        if chunks is not None:
            encoding[name]["chunks"] = chunks
    return encoding


def _rechunk_for_store(ds: xr.Dataset) -> xr.Dataset:
    """Dask chunks = whole storage chunks: full fragment/y/x, a multiple of their scans."""
    sizes = ds.sizes
    if "scan" not in sizes:
        return ds
    per_scan = sizes.get("fragment", 1) * sizes.get("y", 1) * sizes.get("x", 1) * 8
    chunk = store_scans(sizes)
    groups = max(1, TASK_BYTES // (per_scan * chunk))
    scans = min(sizes["scan"], groups * chunk)
    chunks = {"scan": scans, "fragment": -1, "y": -1, "x": -1}
    return ds.chunk({k: v for k, v in chunks.items() if k in sizes})


def _storable(ds: xr.Dataset) -> xr.Dataset:
    """Store fixed-width unicode coordinates as variable-length strings.

    Zarr v3 has no specification for fixed-width unicode (zarr warns).
    """
    strings = {name: ds[name].astype(object) for name in ds.coords if ds[name].dtype.kind == "U"}
    return ds.assign_coords(strings)


def _write_zarr(ds: xr.Dataset, tmp: Path, *, warn_dead_time: bool = True) -> None:
    """Write ``ds``; a ``spectrum`` summed from ``spectrum_part`` is added afterwards.

    Summing the per-block spectra inside the graph that writes the counts would make the
    scheduler hold the counts of many blocks (memory growing with the file); writing the
    parts first and summing them from the store keeps the peak flat.
    """
    deferred = "spectrum" in ds and "spectrum_part" in ds
    first = ds.drop_vars("spectrum") if deferred else ds
    _storable(_rechunk_for_store(first)).to_zarr(
        tmp, mode="w", encoding=_encoding(first), consolidated=True
    )
    if deferred:
        import xarray as xr

        parts = xr.open_zarr(tmp)["spectrum_part"]
        spectrum = parts.sum("block", dtype="uint64").rename("spectrum")
        spectrum.attrs = ds["spectrum"].attrs
        appended = spectrum.to_dataset().drop_vars(list(spectrum.coords))
        appended.attrs = first.attrs  # mode="a" rewrites the group attributes
        appended.to_zarr(tmp, mode="a", consolidated=True)
    if "dead_time_increase" in ds:
        record_dead_time_increase(tmp, warn=warn_dead_time)
    record_chunks(tmp)


def record_dead_time_increase(path: str | os.PathLike[str], *, warn: bool = True) -> list[float]:
    """Copy a written store's ``dead_time_increase`` into its attributes; warn when large.

    The attribute ``dead_time_increase`` lists, in fragment order, the fraction by which the
    dead-time correction raised each fragment's total; fragments above
    :data:`tofsims.dead_time.INCREASE_WARNING` are named in a
    :class:`tofsims.dead_time.DeadTimeWarning` naming the source file (``warn=False``: the
    caller reports it, :func:`tofsims.dead_time.large_increase_message`). Call it before
    :func:`operando_core.stores.record_chunks`, which consolidates the metadata.

    Returns
    -------
    list of float
        The fractions, one per fragment.
    """
    import zarr

    from tofsims.dead_time import warn_large_increase

    group = zarr.open_group(path, mode="r+")
    increase = [float(v) for v in group["dead_time_increase"][...]]
    fragments = [str(f) for f in group["fragment"][...]]
    group.attrs["dead_time_increase"] = increase
    if warn:
        warn_large_increase(increase, fragments, str(group.attrs.get("source_file", path)))
    return increase


def write_volume(
    ds: xr.Dataset, path: str | os.PathLike[str], *, warn_dead_time: bool = True
) -> Path:
    """Compute and write a reconstructed volume to a Zarr store at ``path``.

    ``path`` is a new or empty folder (a store already there is replaced). The store is written
    in place: to publish it atomically, write into a temporary folder and rename it, as
    ``operando tofsims reconstruct`` does (:func:`pipelines.atomic.atomic_directory`). Run it
    under ``dask.diagnostics.ProgressBar()`` for a progress bar.

    Parameters
    ----------
    ds
        Result of :func:`tofsims.reconstruct.reconstruct` (lazy).
    path
        Output ``.zarr`` folder.
    warn_dead_time
        ``False``: no :class:`~tofsims.dead_time.DeadTimeWarning` (the caller reports the
        store's ``dead_time_increase`` attribute itself, as the command line does).

    Returns
    -------
    pathlib.Path
        ``path``.

    Warns
    -----
    DeadTimeWarning
        A dead-time corrected fragment whose total the correction raised by more than
        10 % (:func:`record_dead_time_increase`).
    """
    target = Path(path)
    with _quiet_consolidation():
        _write_zarr(ds, target, warn_dead_time=warn_dead_time)
    return target


@contextlib.contextmanager
def _quiet_consolidation() -> Iterator[None]:
    with warnings.catch_warnings():
        # consolidated metadata is what xr.open_zarr looks for first; zarr 3 warns that it
        # is not (yet) in the v3 specification
        warnings.filterwarnings("ignore", message="Consolidated metadata", module="zarr")
        yield


class VolumeStore:
    """A volume store whose metadata is written, filled region by region.

    Made by :func:`create_volume_store`. Writes go straight to the Zarr arrays, which is
    what xarray stores for the variables of a volume: integer and boolean arrays as they
    are, float arrays with NaN where values are missing.
    """

    def __init__(self, path: Path):
        import zarr

        self.path = path
        self._group = zarr.open_group(path, mode="r+")

    def write(self, name: str, region: tuple[slice | int, ...], values: np.ndarray) -> None:
        """Write ``values`` into ``region`` of variable ``name`` (whole storage chunks, ideally)."""
        array = self._group[name]
        array[region] = np.asarray(values, dtype=array.dtype)


#: ``_FillValue`` attribute xarray gives float variables in Zarr v3 (base64 of NaN, float64).
_NAN_FILL = base64.standard_b64encode(np.array(np.nan, dtype="<f8").tobytes()).decode()


def create_volume_store(
    layout: VolumeLayout, path: str | os.PathLike[str], *, scan_chunk: int = STORE_SCANS
) -> VolumeStore:
    """Create a volume store from a layout, as xarray would write it, without xarray.

    Coordinates are written at once; data variables whose values are placeholders
    (:func:`tofsims.volume_layout.placeholder`) are left to :meth:`VolumeStore.write`.
    The store follows xarray's Zarr v3 conventions (``dimension_names``, a ``coordinates``
    attribute naming the non-index coordinates of each data variable, ``_FillValue`` of
    floats, consolidated metadata), so ``xr.open_zarr`` gives the Dataset of
    :func:`tofsims.volume_layout.to_dataset` (``tests``: both stores compare identical).

    Parameters
    ----------
    layout
        Variables, coordinates and attributes of the volume.
    path
        An empty or new folder (e.g. the temporary one of
        :func:`pipelines.atomic.atomic_directory`).
    scan_chunk
        Storage chunk along ``scan``: writes of whole groups of that many scans never share
        a chunk.
    """
    import zarr

    target = Path(path)
    sizes: dict[Hashable, int] = {}
    for var in [*layout.coords.values(), *layout.data_vars.values()]:
        sizes.update(zip(var.dims, np.shape(var.data), strict=True))
    root = zarr.open_group(target, mode="w", zarr_format=3, attributes=_plain(layout.attrs))
    attached: set[str] = set()
    for name, var in layout.data_vars.items():
        coordinates = sorted(
            c
            for c, coord in layout.coords.items()
            if c not in coord.dims and set(coord.dims) <= set(var.dims)
        )
        attached.update(coordinates)
        attrs = {**var.attrs, **({"coordinates": " ".join(coordinates)} if coordinates else {})}
        chunks = _data_chunks(var.dims, sizes, scan_chunk)
        _create_array(root, name, var, attrs, chunks, [_data_codec()])
    for name, var in layout.coords.items():
        _create_array(root, name, var, dict(var.attrs), None, "auto")
    loose = sorted(c for c, v in layout.coords.items() if c not in v.dims and c not in attached)
    if loose:
        root.attrs["coordinates"] = " ".join(loose)
    with _quiet_consolidation():
        zarr.consolidate_metadata(target)
    return VolumeStore(target)


def _create_array(
    root: Any,
    name: str,
    var: LayoutVariable,
    attrs: dict[str, Any],
    chunks: tuple[int, ...] | None,
    compressors: Any,
) -> None:
    data = np.asarray(var.data)
    dtype: Any = data.dtype
    fill: Any = None
    if dtype.kind in "UO":
        dtype = str
    elif dtype.kind == "f":
        fill, attrs = np.nan, {**attrs, "_FillValue": _NAN_FILL}
    array = root.create_array(
        name,
        shape=data.shape,
        dtype=dtype,
        chunks=chunks or data.shape or "auto",
        compressors=compressors,
        fill_value=fill,
        dimension_names=var.dims,
        attributes=_plain(attrs),
    )
    if not (data.ndim and not any(data.strides)):  # a placeholder holds only the fill value
        array[...] = data


def _plain(attrs: dict[str, Any]) -> dict[str, Any]:
    """Attributes as plain Python values (NumPy scalars are not JSON)."""
    return {k: v.item() if isinstance(v, np.generic) else v for k, v in attrs.items()}
