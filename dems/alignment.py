"""Put a mass-spectrometer and a potentiostat dataset on one time axis.

Both datasets carry an absolute ``start_time`` (ISO 8601 with UTC offset) and relative
times in seconds. :func:`align` re-references the EC times to the MS ``start_time``
(``docs/conventions.md``, "Alignment"); it only shifts a coordinate, so dask-backed data
stay lazy.
"""

from __future__ import annotations

import json
import math
import warnings
from typing import Any

import xarray as xr

from dems.errors import AlignmentError
from dems.io.timestamps import parse_iso

__all__ = ["align", "start_difference_s"]

#: Above this disagreement (s) between Zilien's recorded offset and the two files' start
#: times, a warning suggests a wrong time zone or mismatched files.
OFFSET_DISAGREEMENT_WARN_S = 5.0


def start_difference_s(ms: xr.Dataset, ec: xr.Dataset) -> float:
    """Return ``start_ec − start_ms`` in seconds.

    Raises
    ------
    AlignmentError
        If either dataset lacks a ``start_time`` with a UTC offset.
    """
    moments = []
    for role, ds in (("MS", ms), ("EC", ec)):
        text = ds.attrs.get("start_time") or ""
        try:
            moment = parse_iso(text)
        except ValueError:
            moment = None
        if moment is None or moment.tzinfo is None:
            source = ds.attrs.get("source_file", "dataset")
            raise AlignmentError(f"{source}: {role} dataset has no usable start_time ({text!r})")
        moments.append(moment)
    return (moments[1] - moments[0]).total_seconds()


def _choose_offset(
    ms: xr.Dataset, ec: xr.Dataset, difference: float, offset_s: float | None
) -> tuple[float, str]:
    """Return the clock correction added on top of the start-time difference, and why."""
    if offset_s is not None:
        return float(offset_s), "user"
    if ec.attrs.get("clock") == "Zilien" and ec.attrs.get("start_time") == ms.attrs.get(
        "start_time"
    ):
        return 0.0, "EC block embedded in the Zilien file: already on the Zilien clock"
    recorded = ms.attrs.get("ec_offset_s", math.nan)
    if isinstance(recorded, (int, float)) and math.isfinite(recorded):
        correction = float(recorded) - difference
        if abs(correction) > OFFSET_DISAGREEMENT_WARN_S:
            warnings.warn(
                f"Zilien recorded an EC-Lab offset of {recorded:g} s but the start times differ "
                f"by {difference:g} s (a {correction:+g} s disagreement): check the time zone "
                "given for the .mpt files, or whether they belong to this MS file. "
                "Using the recorded offset.",
                UserWarning,
                stacklevel=3,
            )
        return correction, f"recorded ec_offset_s = {recorded:g} s (Zilien time - EC-Lab time)"
    return 0.0, "none (no offset recorded)"


def align(
    ms: xr.Dataset, ec: xr.Dataset, offset_s: float | None = None
) -> tuple[xr.Dataset, xr.Dataset]:
    """Re-reference the EC time axis to the MS ``start_time``.

    ``t_ec' = t_ec + (start_ec − start_ms) + offset``.

    Parameters
    ----------
    ms
        Mass-spectrometer dataset (``docs/conventions.md``); its times are not changed.
    ec
        Potentiostat dataset with a ``time`` coordinate in s since its ``start_time``.
    offset_s
        Clock correction in s added on top of the start-time difference. ``None``: use the
        offset recorded by the instrument. Zilien records ``ec_offset_s`` = Zilien time −
        EC-Lab time, the *total* shift of EC-Lab times; the correction is then
        ``ec_offset_s − (start_ec − start_ms)`` so the net shift equals the recorded
        offset (0.25 s on the test-21 run, whose header times differ by 13.19 s and whose
        recorded offset is 13.44 s). An EC block embedded in the same Zilien file is
        already on the Zilien clock (correction 0). Without a recorded offset: 0.

    Returns
    -------
    tuple of xarray.Dataset
        ``(ms, ec)``: ``ec`` with shifted ``time`` and ``start_time`` = the MS start; both
        with a JSON attribute ``alignment`` (start difference, offset, its source and the
        net shift in s).

    Raises
    ------
    AlignmentError
        If a dataset has no usable ``start_time`` or ``ec`` has no ``time`` coordinate.
    """
    if "time" not in ec.coords:
        raise AlignmentError(f"{ec.attrs.get('source_file', 'EC dataset')}: no time coordinate")
    difference = start_difference_s(ms, ec)
    offset, source = _choose_offset(ms, ec, difference, offset_s)
    shift = difference + offset
    record: dict[str, Any] = {
        "reference": "ms start_time",
        "ms_start_time": ms.attrs["start_time"],
        "ec_start_time": ec.attrs["start_time"],
        "start_difference_s": difference,
        "offset_s": offset,
        "offset_source": source,
        "ec_time_shift_s": shift,
        "ms_source_file": ms.attrs.get("source_file", ""),
        "ec_source_file": ec.attrs.get("source_file", ""),
    }
    text = json.dumps(record)
    time = ec["time"]
    shifted = ec.assign_coords(time=(time.dims, time.data + shift, time.attrs))
    shifted.attrs = {**ec.attrs, "start_time": ms.attrs["start_time"], "alignment": text}
    aligned_ms = ms.copy()
    aligned_ms.attrs = {**ms.attrs, "alignment": text}
    return aligned_ms, shifted
