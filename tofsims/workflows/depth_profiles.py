"""The depth-profile workflow: the whole-field profile of a volume or a raw export (lazy)."""

from __future__ import annotations

import os

import xarray as xr

from tofsims.profiles import depth_profile
from tofsims.workflows.inputs import is_profile, open_input
from tofsims.workflows.options import ProfileOptions

__all__ = ["profile"]


def profile(
    data: xr.Dataset | str | os.PathLike[str], options: ProfileOptions | None = None
) -> xr.Dataset:
    """Whole-field depth profile ``intensity(scan, peak)`` of a volume or a profile (lazy).

    A volume (Zarr store, GRD, 3D ASCII …) is summed over all pixels, one column per fragment;
    a depth profile (SurfaceLab) is returned as it is, with ``sputter_time`` (s).
    """
    options = options or ProfileOptions()
    if not isinstance(data, xr.Dataset):
        data = open_input(data, seconds_per_scan=options.seconds_per_scan)
    return data if is_profile(data) else depth_profile(data)
