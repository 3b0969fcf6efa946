"""Integrity of the Zarr stores operando writes: what was written is recorded, then verified.

Zarr writes no chunk that holds only the fill value, and reads a missing chunk as that value:
a store whose chunk files were deleted reads as zeros, without an error. So every store
operando writes records, in the root attribute :data:`RECORD`, the shape of each array and how
many chunk files it wrote (:func:`record_chunks`); :func:`store_damage` compares the store with
that record before it is read. A store without the record (written by another tool) cannot be
checked this way.

``zarr`` is imported inside the functions: this package stays light to import.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

__all__ = ["MAX_CHUNKS", "RECORD", "record_chunks", "store_damage"]

#: Root attribute: ``{array name: {"shape": [...], "chunks": number of chunk files}}``.
RECORD = "stored_chunks"
#: Most chunks one array may claim: its lazy (dask) form holds one task per chunk, so a
#: metadata file claiming 10⁹ scans would exhaust the memory before anything is read.
MAX_CHUNKS = 1 << 22


def _arrays(group: Any) -> dict[str, Any]:
    return dict(group.arrays())


def record_chunks(path: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """Record the shape and the number of chunk files of every array of a written store.

    Call it once the store is complete; the record goes into the root attributes (and the
    consolidated metadata, when the store has it).

    Returns
    -------
    dict
        The record.
    """
    import zarr

    group = zarr.open_group(path, mode="r+")
    record = {
        name: {"shape": list(array.shape), "chunks": int(array.nchunks_initialized)}
        for name, array in _arrays(group).items()
    }
    group.attrs[RECORD] = record
    if group.metadata.consolidated_metadata is not None:
        with warnings.catch_warnings():  # zarr 3: consolidated metadata is not in the v3 spec
            warnings.filterwarnings("ignore", message="Consolidated metadata", module="zarr")
            zarr.consolidate_metadata(path)
    return record


def store_damage(path: str | os.PathLike[str]) -> str | None:
    """Describe what is wrong with a store, naming the array; ``None``: nothing found.

    Any store: an array claiming more than :data:`MAX_CHUNKS` chunks. A store with a record
    (:func:`record_chunks`): an array that is gone, a shape that differs from the one written
    (a damaged or edited metadata file), fewer chunk files than were written. Only metadata
    and file names are read.
    """
    import zarr

    group = zarr.open_group(path, mode="r")
    arrays = _arrays(group)
    for name, array in arrays.items():
        if array.nchunks > MAX_CHUNKS:
            return (
                f"{name}: the metadata claims shape {list(array.shape)}, {array.nchunks} chunks "
                f"(more than {MAX_CHUNKS})"
            )
    record = group.attrs.get(RECORD)
    if not isinstance(record, dict):
        return None
    for name, written in record.items():
        if name not in arrays:
            return f"array {name} is missing"
        array = arrays[name]
        if list(array.shape) != list(written.get("shape", [])):
            return (
                f"{name}: the metadata gives shape {list(array.shape)} but the store was "
                f"written with shape {written.get('shape')}"
            )
        present = int(array.nchunks_initialized)
        expected = int(written.get("chunks", 0))
        if present < expected:
            return (
                f"{name}: {expected - present} of its {expected} chunk files are missing "
                "(they would read as zeros)"
            )
    return None
