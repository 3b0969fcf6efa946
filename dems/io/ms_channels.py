"""Building mass-spectrometer datasets (``signal(channel, sample)``) from parsed columns.

Shared by the MS readers of :mod:`dems.io` so every format produces the layout of
``docs/conventions.md``: one row per channel, each channel with its own clock, shorter
channels padded with NaN at the end.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from dems.errors import DemsReadError

__all__ = [
    "channel_identity",
    "check_channel_times",
    "ms_dataset",
    "trailing_valid_length",
    "unique_channel_ids",
]

_MASS_LABEL = re.compile(r"^\s*(?:M|m/z\s*|mz\s*)?(\d+(?:[.,]\d+)?)\s*(?:_?amu)?\s*$")
_NOT_NAME = re.compile(r"[^0-9A-Za-z]+")


def channel_identity(label: str) -> tuple[str, float]:
    """Channel id and m/z for a vendor channel label.

    Parameters
    ----------
    label
        Verbatim label: ``"14"``, ``"M32"``, ``"44_amu"``, ``"Water"``,
        ``"Nitrogen/Carbonmonoxide"``.

    Returns
    -------
    tuple of (str, float)
        ``("M14", 14.0)`` for a mass label (``"M28.5"`` for a fractional mass), else a
        sanitised name (non-alphanumerics become ``_``) and NaN.

    Examples
    --------
    >>> channel_identity("44_amu")
    ('M44', 44.0)
    >>> channel_identity("Nitrogen/Carbonmonoxide")
    ('Nitrogen_Carbonmonoxide', nan)
    """
    match = _MASS_LABEL.match(label)
    if match:
        mass = float(match.group(1).replace(",", "."))
        return f"M{mass:g}", mass
    name = _NOT_NAME.sub("_", label.strip()).strip("_")
    return (name or "channel"), float("nan")


def unique_channel_ids(ids: Sequence[str]) -> list[str]:
    """Make channel ids unique by appending ``_2``, ``_3`` … to repeats."""
    seen: dict[str, int] = {}
    unique = []
    for name in ids:
        count = seen.get(name, 0) + 1
        seen[name] = count
        unique.append(name if count == 1 else f"{name}_{count}")
    return unique


def trailing_valid_length(time: np.ndarray) -> int:
    """Count samples up to and including the last finite value along the last axis."""
    finite = np.isfinite(time)
    if finite.ndim > 1:
        finite = finite.any(axis=tuple(range(finite.ndim - 1)))
    where = np.flatnonzero(finite)
    return int(where[-1]) + 1 if where.size else 0


def check_channel_times(
    path: str | os.PathLike[str],
    time: np.ndarray,
    labels: Sequence[str],
    first_line: int,
    previous: np.ndarray | None = None,
    ended: np.ndarray | None = None,
    what: str = "channel",
) -> tuple[np.ndarray, np.ndarray]:
    """Check that each channel's relative time increases and has NaN only as end padding.

    Works block by block so a large file is checked while it is parsed.

    Parameters
    ----------
    path
        File being read (for the error message).
    time
        Relative times in s, shape ``(rows, channels)``, one row per file line.
    labels
        Channel labels (for the error message).
    first_line
        1-based file line number of ``time[0]``.
    previous
        Last finite time of each channel in earlier blocks (NaN if none).
    ended
        Per channel: whether a missing time was already seen (padding started).
    what
        What a label names in the message (``"channel"``, ``"column"``).

    Returns
    -------
    tuple of numpy.ndarray
        Updated ``previous`` and ``ended`` to pass with the next block.

    Raises
    ------
    DemsReadError
        At the first line where a time goes backwards or repeats, or where a time
        follows a missing one.
    """
    rows, channels = time.shape
    previous = np.full(channels, np.nan) if previous is None else previous.copy()
    ended = np.zeros(channels, dtype=bool) if ended is None else ended.copy()
    if rows == 0:
        return previous, ended
    finite = np.isfinite(time)
    if not ended.any() and finite.all():  # fast path: a complete block
        step = np.diff(time, axis=0)
        first_ok = ~(time[0] <= previous)  # True where previous is NaN
        if (step > 0).all() and first_ok.all():
            return time[-1].copy(), ended
    missing_before = np.maximum.accumulate(~finite, axis=0)
    missing_before = np.vstack([ended[None, :], missing_before[:-1]])
    resumed = finite & missing_before
    stacked = np.vstack([previous[None, :], time])
    filled = _forward_fill(stacked)
    step = time - filled[:-1]
    backwards = finite & (step <= 0)
    bad = resumed | backwards
    if bad.any():
        row, channel = np.argwhere(bad)[0]  # row-major: the earliest line
        line = first_line + int(row)
        label = labels[int(channel)]
        if resumed[row, channel]:
            value = float(time[row, channel])
            problem = f"{what} {label!r}: time {value:.10g} s follows a missing time"
        else:
            problem = (
                f"{what} {label!r}: time is not monotonic "
                f"({float(time[row, channel]):.10g} s after {float(filled[row, channel]):.10g} s)"
            )
        raise DemsReadError(path, problem, line=line)
    last = filled[-1]
    return np.where(np.isfinite(last), last, previous), ended | ~finite.all(axis=0)


def _forward_fill(values: np.ndarray) -> np.ndarray:
    """Replace NaN by the last finite value above it (column-wise)."""
    finite = np.isfinite(values)
    index = np.where(finite, np.arange(values.shape[0])[:, None], 0)
    np.maximum.accumulate(index, axis=0, out=index)
    filled = np.take_along_axis(values, index, axis=0)
    return filled


def ms_dataset(
    time: Any,
    signal: Any,
    labels: Sequence[str],
    *,
    units: str,
    quantity: str,
    attrs: dict[str, Any],
) -> xr.Dataset:
    """Assemble the MS dataset of ``docs/conventions.md``.

    Parameters
    ----------
    time
        Relative times in s since ``start_time``, shape ``(channel, sample)``
        (numpy or dask array).
    signal
        Values in ``units``, same shape.
    labels
        Verbatim vendor channel labels.
    units
        ``"A"`` for ion current, ``"mbar"`` for partial pressure.
    quantity
        ``"ion current"`` or ``"partial pressure"``.
    attrs
        Dataset attributes (start time, provenance, header ...).
    """
    identities = [channel_identity(label) for label in labels]
    ids = unique_channel_ids([name for name, _ in identities])
    masses = np.array([mass for _, mass in identities], dtype=float)
    ds = xr.Dataset(
        {"signal": (("channel", "sample"), signal, {"units": units, "long_name": quantity})},
        coords={
            "channel": ("channel", np.array(ids, dtype=object)),
            "mass": ("channel", masses, {"units": "u", "long_name": "m/z"}),
            "label": ("channel", np.array(list(labels), dtype=object)),
            "time": (
                ("channel", "sample"),
                time,
                {"units": "s", "long_name": "time since start_time"},
            ),
        },
        attrs={**attrs, "quantity": quantity},
    )
    return ds
