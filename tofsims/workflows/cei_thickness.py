"""The CEI workflow: thickness of the cathode-electrolyte interphase (map, statistics), coating.

:func:`cei` opens a volume (Zarr store, GRD, 3D ASCII …) or a depth profile, puts it on the
depth scale of a constant sputter rate and builds the lazy whole-field profile and, for a
volume, the per-pixel thickness map; :meth:`CeiRun.compute` computes both and derives every
number of :class:`CeiSummary` (``summary.json`` of ``operando tofsims cei``): the CEI thickness
(map statistics or whole-field value, bootstrap uncertainties), its spread over estimators, the
coating, every fragment's timings and the two-marker crossing. A number that cannot be
determined is ``None`` with its reason in ``null_reasons``. Nothing is written.

Fixed processing parameters (documented in ``docs/cli.md``): :data:`BIN_SIZE`,
:data:`MAP_SMOOTH_SCANS`, :data:`MAP_MIN_COUNTS`, :data:`N_BOOT`.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask
import xarray as xr

from operando_core.options import OptionError
from operando_core.readers import package_version
from tofsims.depth import depth_constant_rate
from tofsims.errors import AnalysisError
from tofsims.interfaces import fit_layer, layer_marker, two_marker_crossing
from tofsims.profiles import depth_profile, select_fragment
from tofsims.thickness import cei_thickness_map, coating_thickness, thickness_statistics
from tofsims.workflows.inputs import is_profile, open_input
from tofsims.workflows.options import DEFAULT_BULK, CeiOptions

__all__ = ["BIN_SIZE", "MAP_MIN_COUNTS", "MAP_SMOOTH_SCANS", "N_BOOT", "CeiResult", "CeiRun",
           "CeiSummary", "cei"]  # fmt: skip

#: Lateral binning of the thickness map (pixels per side).
BIN_SIZE = 4
#: Gaussian smoothing of each binned depth profile (sigma, scans).
MAP_SMOOTH_SCANS = 2.0
#: Bins whose marker maximum has fewer counts are masked.
MAP_MIN_COUNTS = 20.0
#: Poisson bootstrap resamples of every uncertainty.
N_BOOT = 20


def _number(value: Any) -> float | None:
    """Return a JSON number, or None for NaN/inf."""
    value = float(value)
    return value if math.isfinite(value) else None


@dataclass
class CeiSummary:
    """The numbers of a CEI analysis; ``None`` values carry a reason in ``null_reasons``.

    Attributes
    ----------
    values
        ``cei_thickness_nm`` (``mean``, ``median``, ``std``, ``uncertainty``, ``method``,
        percentiles, ``valid_fraction``, ``estimators``, ``method_spread``),
        ``coating_thickness_nm`` (and its uncertainty and method), ``fragments``,
        ``two_marker_crossing_nm``, ``input`` (``docs/cli.md`` lists every key).
    null_reasons
        Dotted key -> why that number is ``None``.
    """

    values: dict[str, Any] = field(default_factory=dict)
    null_reasons: dict[str, str] = field(default_factory=dict)

    def put(self, where: list[str], value: Any, reason: str) -> None:
        """Set ``values[where...]`` to a number (or None with ``reason``)."""
        node = self.values
        for key in where[:-1]:
            node = node.setdefault(key, {})
        number = None if value is None else _number(value)
        node[where[-1]] = number
        if number is None:
            self.null_reasons[".".join(where)] = reason

    @property
    def cei_thickness_nm(self) -> float | None:
        """Mean CEI thickness (nm; whole-field value of a profile), ``None``: no layer."""
        return self.values["cei_thickness_nm"]["mean"]

    def to_dict(self) -> dict[str, Any]:
        """Return the ``summary.json`` document."""
        return {**self.values, "null_reasons": self.null_reasons}


@dataclass(frozen=True)
class CeiResult:
    """A computed CEI analysis.

    Attributes
    ----------
    map
        Per-pixel thickness map (``thickness(y, x)`` nm, its bootstrap ``thickness_std``,
        ``mask`` …) of a volume; ``None`` for a depth profile.
    profile
        The whole-field depth profile ``intensity(scan, peak)`` with ``depth``.
    summary
        Every number, :class:`CeiSummary`.
    """

    map: xr.Dataset | None
    profile: xr.Dataset
    summary: CeiSummary


@dataclass(frozen=True)
class CeiRun:
    """A CEI analysis ready to compute: the lazy profile and map, and the options."""

    data: xr.Dataset
    profile: xr.Dataset
    thickness_map: xr.Dataset | None
    options: CeiOptions
    source: str | None

    @property
    def is_volume(self) -> bool:
        """Whether the input is a volume (a map is made) rather than a depth profile."""
        return self.thickness_map is not None

    @property
    def bulk(self) -> str:
        """The bulk marker of the two-marker crossing."""
        return self.options.bulk or DEFAULT_BULK

    def compute(self, **compute_options: Any) -> CeiResult:
        """Compute the profile (and map) and every number of the summary.

        ``compute_options`` go to :func:`dask.compute`.
        """
        if self.thickness_map is not None:
            profile, thickness_map = dask.compute(
                self.profile, self.thickness_map, **compute_options
            )
        else:
            profile, thickness_map = self.profile.compute(**compute_options), None
        summary = CeiSummary()
        marker = self.options.marker
        if thickness_map is not None:
            _cei_from_map(thickness_map, marker, summary, rate_rel=0.0)
        else:
            _cei_from_profile(profile, marker, summary)
        _estimator_spread(profile, marker, summary)
        _coating(profile, summary)
        _fragment_entries(profile, summary)
        if _has_fragment(profile, self.bulk):
            _crossing(profile, marker, self.bulk, summary)
        else:
            summary.put(
                ["two_marker_crossing_nm", "value"], None, f"no {self.bulk} signal in the data"
            )
        summary.values["input"] = {
            "path": self.source,
            "kind": "volume" if thickness_map is not None else "depth profile",
            "sputter_rate_nm_per_s": self.options.sputter_rate_nm_per_s,
            "sputter_time_source": self.data.attrs.get("sputter_time_source", "file"),
            "marker": marker,
            "bulk": self.bulk,
        }
        if thickness_map is not None:
            thickness_map.attrs |= {
                "source_file": self.source,
                "sputter_rate_nm_per_s": self.options.sputter_rate_nm_per_s,
                "producer": f"operando {package_version()} tofsims cei",
            }
        return CeiResult(thickness_map, profile, summary)


def cei(data: xr.Dataset | str | os.PathLike[str], options: CeiOptions) -> CeiRun:
    """CEI thickness of a volume or depth profile: per-pixel map, statistics, coating (lazy).

    Volumes give a per-pixel map (:data:`BIN_SIZE` × :data:`BIN_SIZE` lateral bins, Gaussian
    smoothing over :data:`MAP_SMOOTH_SCANS` scans, bins with < :data:`MAP_MIN_COUNTS` marker
    counts at the maximum masked) and its statistics; a depth profile gives the whole-field
    value only.

    Parameters
    ----------
    data
        A volume ``counts(fragment, scan, y, x)`` or profile ``intensity(scan, peak)`` with a
        ``sputter_time`` (s), or a file/store (:func:`tofsims.workflows.open_input`; a GRD is
        binned with the battery fragments and the markers).
    options
        Sputter rate, seconds per scan, CEI and bulk markers.

    Returns
    -------
    CeiRun
        The lazy profile (and map); nothing is computed.

    Raises
    ------
    OptionError
        The marker, or a bulk marker given explicitly, is not in the data.
    """
    if isinstance(data, xr.Dataset):
        source = data.attrs.get("source_file")
    else:
        source = str(Path(data).resolve())
        wanted = (options.marker, options.bulk or DEFAULT_BULK)
        data = open_input(data, seconds_per_scan=options.seconds_per_scan, fragments=wanted)
    data = depth_constant_rate(data, options.sputter_rate_nm_per_s)
    volume = not is_profile(data)
    profile = depth_profile(data) if volume else data
    _marker_counts(profile, options.marker, "marker")  # fail fast, before any computation
    if options.bulk is not None:
        _marker_counts(profile, options.bulk, "bulk")  # an explicit bulk marker must exist
    thickness_map = None
    if volume:
        thickness_map = cei_thickness_map(
            data,
            options.marker,
            bin_size=BIN_SIZE,
            smooth_scans=MAP_SMOOTH_SCANS,
            min_counts=MAP_MIN_COUNTS,
            n_boot=N_BOOT,
        )
    return CeiRun(data, profile, thickness_map, options, source)


def _marker_counts(profile: Any, fragment: str, role: str) -> Any:
    try:
        return select_fragment(profile["intensity"], fragment)
    except AnalysisError as err:
        raise OptionError(role, str(err)) from err


def _has_fragment(profile: Any, fragment: str) -> bool:
    return fragment in {str(v) for v in profile["fragment"].values}


def _fragment_entries(profile: Any, summary: CeiSummary) -> None:
    """Time to max, depth at max, 50 % depth and 16–84 % width of every single fragment."""
    names = [str(v) for v in profile["fragment"].values]
    kinds = [str(v) for v in profile["kind"].values] if "kind" in profile.coords else None
    columns: dict[str, int] = {}
    for index, name in enumerate(names):  # first column of each fragment, single peaks only
        if name and name not in columns and (kinds is None or kinds[index] == "single"):
            columns[name] = index
    summary.values["fragments"] = {}
    if not columns:
        return
    counts = profile["intensity"].isel(peak=list(columns.values()))
    on_time = layer_marker(counts, coord="sputter_time", n_boot=N_BOOT)
    on_depth = layer_marker(counts, coord="depth", n_boot=N_BOOT)
    for position, name in enumerate(columns):
        where = ["fragments", name]
        at_time, at_depth = on_time.isel(peak=position), on_depth.isel(peak=position)
        summary.put([*where, "time_to_max_s"], at_time["position_max"], "no counts")
        summary.put([*where, "depth_at_max_nm"], at_depth["position_max"], "no counts")
        summary.put(
            [*where, "depth_50_nm"],
            at_depth["position_50"],
            "the signal never falls to 50 % of its maximum after the peak",
        )
        summary.put(
            [*where, "width_16_84_nm"],
            at_depth["width_16_84"],
            "the signal never falls to 16 % of its maximum after the peak",
        )


def _cei_from_map(thickness_map: Any, marker: str, summary: CeiSummary, rate_rel: float) -> None:
    stats = thickness_statistics(thickness_map, rate_relative_uncertainty=rate_rel).compute()
    reason = f"no binned pixel has a {marker} layer (too few counts or no 50 % fall)"
    for key in ("mean", "median", "std", "uncertainty"):
        summary.put(["cei_thickness_nm", key], stats[key], reason)
    summary.values["cei_thickness_nm"]["method"] = (
        f"per-pixel depth where {marker} falls to 50 % of its maximum after the peak; "
        f"{BIN_SIZE}x{BIN_SIZE} lateral bins, Gaussian smoothing sigma {MAP_SMOOTH_SCANS:g} "
        f"scans, bins below {MAP_MIN_COUNTS:g} counts masked; uncertainty of the mean from a "
        f"Poisson bootstrap ({N_BOOT} resamples) per bin"
    )
    for key in ("p05", "p16", "p84", "p95", "valid_fraction"):
        summary.put(["cei_thickness_nm", key], stats[key], reason)


def _cei_from_profile(profile: Any, marker: str, summary: CeiSummary) -> None:
    estimate = layer_marker(_marker_counts(profile, marker, "marker"), n_boot=N_BOOT)
    reason = f"{marker} never falls to 50 % of its maximum after the peak"
    summary.put(["cei_thickness_nm", "mean"], estimate["position_50"], reason)
    summary.put(["cei_thickness_nm", "median"], estimate["position_50"], reason)
    summary.put(["cei_thickness_nm", "std"], None, "depth-profile input: no lateral map")
    summary.put(["cei_thickness_nm", "uncertainty"], estimate["position_50_std"], reason)
    summary.values["cei_thickness_nm"]["method"] = (
        f"whole-field depth where {marker} falls to 50 % of its maximum after the peak; "
        f"uncertainty from a Poisson bootstrap ({N_BOOT} resamples)"
    )


def _estimator_spread(profile: Any, marker: str, summary: CeiSummary) -> None:
    """Whole-field thickness by every criterion and their spread (a systematic indication)."""
    counts = _marker_counts(profile, marker, "marker")
    values = {
        "50 % after the maximum": layer_marker(counts, n_boot=0)["position_50"],
        "erf fit": fit_layer(counts, model="erf", n_boot=0)["position"],
        "emg fit": fit_layer(counts, model="emg", n_boot=0)["position"],
    }
    if summary.values["cei_thickness_nm"].get("mean") is not None:
        values["map mean"] = summary.values["cei_thickness_nm"]["mean"]
    for name, value in values.items():
        summary.put(
            ["cei_thickness_nm", "estimators", name],
            value,
            f"the {name} criterion found no {marker} layer",
        )
    found = [v for v in summary.values["cei_thickness_nm"]["estimators"].values() if v is not None]
    summary.put(
        ["cei_thickness_nm", "method_spread"],
        max(found) - min(found) if found else None,
        "no criterion found a layer",
    )


def _coating(profile: Any, summary: CeiSummary) -> None:
    try:
        counts = select_fragment(profile["intensity"], "CeO2-")
    except AnalysisError:
        summary.put(["coating_thickness_nm"], None, "no CeO2- signal in the data")
        return
    coating = coating_thickness(counts, n_boot=N_BOOT)
    if not bool(coating["present"]):
        summary.put(
            ["coating_thickness_nm"],
            None,
            "no CeO2- layer: its peak is not above 5x the bulk level",
        )
        return
    summary.put(["coating_thickness_nm"], coating["thickness"], "the erf-box fit failed")
    summary.put(
        ["coating_thickness_uncertainty_nm"], coating["thickness_std"], "the bootstrap fits failed"
    )
    summary.values["coating_method"] = json.loads(coating.attrs["method"])["criterion"]


def _crossing(profile: Any, marker: str, bulk: str, summary: CeiSummary) -> None:
    crossing = two_marker_crossing(
        _marker_counts(profile, marker, "marker"),
        _marker_counts(profile, bulk, "bulk"),
        n_boot=N_BOOT,
    )
    reason = f"{marker} never falls below {bulk} (max-normalised)"
    summary.put(["two_marker_crossing_nm", "value"], crossing["position"], reason)
    summary.put(["two_marker_crossing_nm", "uncertainty"], crossing["position_std"], reason)
    summary.values["two_marker_crossing_nm"]["method"] = f"max-normalised {marker} vs {bulk}"
