"""The depth-profile workflow: the whole-field profile of a volume or a raw export (lazy)."""

from __future__ import annotations

import os

import xarray as xr

from operando_core.stores import RECORD
from tofsims.profiles import depth_profile
from tofsims.workflows.fragment_purity import WINDOW_COUNTS, analysis_volume
from tofsims.workflows.inputs import is_profile, open_input
from tofsims.workflows.options import ProfileOptions

__all__ = ["profile"]

#: Why a depth profile read from a file is not fitted.
PROFILE_REASON = "a depth profile export: no spectra to fit"


def profile(
    data: xr.Dataset | str | os.PathLike[str], options: ProfileOptions | None = None
) -> xr.Dataset:
    """Whole-field depth profile ``intensity(scan, peak)`` of a volume or a profile (lazy).

    A volume (Zarr store, GRD, 3D ASCII …) is summed over all pixels, one column per fragment,
    from the counts every analysis uses
    (:func:`tofsims.workflows.fragment_purity.analysis_volume`): the fitted counts of a
    reconstructed GRD, the window counts of an export. A depth profile (SurfaceLab) is
    returned as it is, with ``sputter_time`` (s).

    Returns
    -------
    xarray.Dataset
        ``intensity(scan, peak)`` (counts) with attribute ``counts`` saying which counts
        (:data:`~tofsims.workflows.fragment_purity.FITTED_COUNTS` or ``"window"``, then
        ``counts_reason`` says why); with fitted counts also ``intensity_window(scan,
        peak)``, the same sums of the window counts.
    """
    options = options or ProfileOptions()
    if not isinstance(data, xr.Dataset):
        data = open_input(data, seconds_per_scan=options.seconds_per_scan)
    if is_profile(data):
        return data.assign_attrs(counts=WINDOW_COUNTS, counts_reason=PROFILE_REASON)
    volume = analysis_volume(data)
    out = depth_profile(volume)
    # the store's record of its own chunks describes the store (and is no netCDF attribute)
    out.attrs.pop(RECORD, None)
    if "counts_window" in volume:
        window = depth_profile(volume.assign(counts=volume["counts_window"]))["intensity"]
        out["intensity_window"] = window.assign_attrs(
            long_name="counts in the fragment's mass window (before the peak fits)"
        )
        out["intensity"].attrs["long_name"] = "counts assigned to the fragment by the peak fits"
    return out
