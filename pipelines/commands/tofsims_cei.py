"""``operando tofsims cei``: CEI thickness (map and statistics), coating and fragment timings."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import click

from pipelines.report import export_options, rendering, write_exports

EPILOG = """\b
Examples:
  operando tofsims cei volume.zarr --sputter-rate 0.05 --summary summary.json
  operando tofsims cei volume.zarr --sputter-rate 0.05 --map map.nc --summary summary.json
  operando tofsims cei volume.zarr --sputter-rate 0.03 --seconds-per-scan 2 \\
      --marker LiF2- --bulk NiO2- --summary summary.json
  operando tofsims cei profile.txt --sputter-rate 0.05 --summary summary.json

\b
Volumes give a per-pixel map (4x4 lateral bins, Gaussian smoothing sigma = 2 scans,
bins with < 20 marker counts at the maximum are masked) and its statistics;
a depth profile gives the whole-field value only (no map). Every number that
cannot be determined is null in summary.json, with the reason under "null_reasons".
See docs/cli.md for every key and docs/methods.md for the methods.
"""

#: Fixed processing parameters of the command (documented in docs/cli.md).
BIN_SIZE = 4
MAP_SMOOTH_SCANS = 2.0
MAP_MIN_COUNTS = 20.0
N_BOOT = 20


def _number(value: Any) -> float | None:
    """Return a JSON number, or None for NaN/inf."""
    value = float(value)
    return value if math.isfinite(value) else None


class Summary:
    """Builds ``summary.json``; ``None`` values carry a reason in ``null_reasons``."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.reasons: dict[str, str] = {}

    def put(self, where: list[str], value: Any, reason: str) -> None:
        """Set ``data[where...]`` to a number (or None with ``reason``)."""
        node = self.data
        for key in where[:-1]:
            node = node.setdefault(key, {})
        number = None if value is None else _number(value)
        node[where[-1]] = number
        if number is None:
            self.reasons[".".join(where)] = reason

    def as_json(self) -> str:
        """Serialise the summary (strict JSON: no NaN)."""
        return json.dumps({**self.data, "null_reasons": self.reasons}, indent=2, allow_nan=False)


def _fragment_entries(profile: Any, summary: Summary) -> None:
    """Time to max, depth at max, 50 % depth and 16–84 % width of every single fragment."""
    from tofsims.interfaces import layer_marker

    names = [str(v) for v in profile["fragment"].values]
    kinds = [str(v) for v in profile["kind"].values] if "kind" in profile.coords else None
    columns: dict[str, int] = {}
    for index, name in enumerate(names):  # first column of each fragment, single peaks only
        if name and name not in columns and (kinds is None or kinds[index] == "single"):
            columns[name] = index
    summary.data["fragments"] = {}
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


def _marker_counts(profile: Any, fragment: str, role: str) -> Any:
    from tofsims.errors import AnalysisError
    from tofsims.profiles import select_fragment

    try:
        return select_fragment(profile["intensity"], fragment)
    except AnalysisError as err:
        raise click.BadParameter(str(err), param_hint=f"--{role}") from err


def _cei_from_map(thickness_map: Any, marker: str, summary: Summary, rate_rel: float) -> None:
    from tofsims.thickness import thickness_statistics

    stats = thickness_statistics(thickness_map, rate_relative_uncertainty=rate_rel).compute()
    reason = f"no binned pixel has a {marker} layer (too few counts or no 50 % fall)"
    for key in ("mean", "median", "std", "uncertainty"):
        summary.put(["cei_thickness_nm", key], stats[key], reason)
    summary.data["cei_thickness_nm"]["method"] = (
        f"per-pixel depth where {marker} falls to 50 % of its maximum after the peak; "
        f"{BIN_SIZE}x{BIN_SIZE} lateral bins, Gaussian smoothing sigma {MAP_SMOOTH_SCANS:g} "
        f"scans, bins below {MAP_MIN_COUNTS:g} counts masked; uncertainty of the mean from a "
        f"Poisson bootstrap ({N_BOOT} resamples) per bin"
    )
    for key in ("p05", "p16", "p84", "p95", "valid_fraction"):
        summary.put(["cei_thickness_nm", key], stats[key], reason)


def _cei_from_profile(profile: Any, marker: str, summary: Summary) -> None:
    from tofsims.interfaces import layer_marker

    estimate = layer_marker(_marker_counts(profile, marker, "marker"), n_boot=N_BOOT)
    reason = f"{marker} never falls to 50 % of its maximum after the peak"
    summary.put(["cei_thickness_nm", "mean"], estimate["position_50"], reason)
    summary.put(["cei_thickness_nm", "median"], estimate["position_50"], reason)
    summary.put(["cei_thickness_nm", "std"], None, "depth-profile input: no lateral map")
    summary.put(["cei_thickness_nm", "uncertainty"], estimate["position_50_std"], reason)
    summary.data["cei_thickness_nm"]["method"] = (
        f"whole-field depth where {marker} falls to 50 % of its maximum after the peak; "
        f"uncertainty from a Poisson bootstrap ({N_BOOT} resamples)"
    )


def _estimator_spread(profile: Any, marker: str, summary: Summary) -> None:
    """Whole-field thickness by every criterion and their spread (a systematic indication)."""
    from tofsims.interfaces import fit_layer, layer_marker

    counts = _marker_counts(profile, marker, "marker")
    values = {
        "50 % after the maximum": layer_marker(counts, n_boot=0)["position_50"],
        "erf fit": fit_layer(counts, model="erf", n_boot=0)["position"],
        "emg fit": fit_layer(counts, model="emg", n_boot=0)["position"],
    }
    if summary.data["cei_thickness_nm"].get("mean") is not None:
        values["map mean"] = summary.data["cei_thickness_nm"]["mean"]
    for name, value in values.items():
        summary.put(
            ["cei_thickness_nm", "estimators", name],
            value,
            f"the {name} criterion found no {marker} layer",
        )
    found = [v for v in summary.data["cei_thickness_nm"]["estimators"].values() if v is not None]
    summary.put(
        ["cei_thickness_nm", "method_spread"],
        max(found) - min(found) if found else None,
        "no criterion found a layer",
    )


def _coating(profile: Any, summary: Summary) -> None:
    from tofsims.errors import AnalysisError
    from tofsims.profiles import select_fragment
    from tofsims.thickness import coating_thickness

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
    summary.data["coating_method"] = json.loads(coating.attrs["method"])["criterion"]


def _has_fragment(profile: Any, fragment: str) -> bool:
    return fragment in {str(v) for v in profile["fragment"].values}


def _given(ctx: click.Context, name: str) -> bool:
    """Tell an option given on the command line from its default."""
    return ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT


def _crossing(profile: Any, marker: str, bulk: str, summary: Summary) -> None:
    from tofsims.interfaces import two_marker_crossing

    crossing = two_marker_crossing(
        _marker_counts(profile, marker, "marker"),
        _marker_counts(profile, bulk, "bulk"),
        n_boot=N_BOOT,
    )
    reason = f"{marker} never falls below {bulk} (max-normalised)"
    summary.put(["two_marker_crossing_nm", "value"], crossing["position"], reason)
    summary.put(["two_marker_crossing_nm", "uncertainty"], crossing["position_std"], reason)
    summary.data["two_marker_crossing_nm"]["method"] = f"max-normalised {marker} vs {bulk}"


@click.command(epilog=EPILOG)
@export_options
@click.argument("input_path", metavar="INPUT", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--sputter-rate",
    "sputter_rate",
    metavar="NM_PER_S",
    type=float,
    required=True,
    help="Sputter rate in nm/s (constant) for the depth scale.",
)
@click.option(
    "--seconds-per-scan",
    "seconds_per_scan",
    metavar="S",
    type=float,
    default=None,
    help="Sputter time per scan in s  [default: what the file says]",
)
@click.option(
    "--marker",
    default="C2HO-",
    show_default=True,
    help="CEI marker fragment (our notation), e.g. C2HO-, LiF2-, PO3-.",
)
@click.option(
    "--bulk",
    default="NiO2-",
    show_default=True,
    help="Bulk marker fragment for the two-marker crossing.",
)
@click.option(
    "--map",
    "map_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the per-pixel thickness map (netCDF) here (volumes only).",
)
@click.option(
    "--summary",
    "summary_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write summary.json here.",
)
def cei(
    input_path: Path,
    sputter_rate: float,
    seconds_per_scan: float | None,
    marker: str,
    bulk: str,
    map_path: Path | None,
    summary_path: Path,
    html: Path | None,
    png: Path | None,
) -> None:
    """CEI thickness of INPUT: per-pixel map, statistics, coating and fragment timings."""
    if not (math.isfinite(sputter_rate) and sputter_rate > 0):
        raise click.BadParameter("must be a positive number of nm/s", param_hint="--sputter-rate")
    import dask

    from pipelines.atomic import write_atomically, write_netcdf_atomic
    from pipelines.progress import progress_bar
    from pipelines.tofsims_input import is_profile, open_tofsims_input
    from tofsims.depth import depth_constant_rate
    from tofsims.profiles import depth_profile, select_fragment
    from tofsims.thickness import cei_thickness_map

    data = depth_constant_rate(
        open_tofsims_input(input_path, seconds_per_scan=seconds_per_scan, fragments=(marker, bulk)),
        sputter_rate,
    )
    volume_input = not is_profile(data)
    if map_path is not None and not volume_input:
        raise click.UsageError("--map needs a volume; INPUT is a depth profile")
    profile = depth_profile(data) if volume_input else data
    _marker_counts(profile, marker, "marker")  # fail fast, before any computation
    bulk_present = _has_fragment(profile, bulk)
    if not bulk_present and _given(click.get_current_context(), "bulk"):
        _marker_counts(profile, bulk, "bulk")  # an explicit --bulk must exist: usage error
    if volume_input:
        select_fragment(data["counts"], marker)
        thickness_map = cei_thickness_map(
            data,
            marker,
            bin_size=BIN_SIZE,
            smooth_scans=MAP_SMOOTH_SCANS,
            min_counts=MAP_MIN_COUNTS,
            n_boot=N_BOOT,
        )
        with progress_bar(minimum=1.0):
            profile, thickness_map = dask.compute(profile, thickness_map)
    else:
        profile = profile.compute()

    summary = Summary()
    if volume_input:
        _cei_from_map(thickness_map, marker, summary, rate_rel=0.0)
    else:
        _cei_from_profile(profile, marker, summary)
    _estimator_spread(profile, marker, summary)
    _coating(profile, summary)
    _fragment_entries(profile, summary)
    if bulk_present:
        _crossing(profile, marker, bulk, summary)
    else:
        summary.put(["two_marker_crossing_nm", "value"], None, f"no {bulk} signal in the data")
    summary.data["input"] = {
        "path": str(input_path.resolve()),
        "kind": "volume" if volume_input else "depth profile",
        "sputter_rate_nm_per_s": sputter_rate,
        "sputter_time_source": data.attrs.get("sputter_time_source", "file"),
        "marker": marker,
        "bulk": bulk,
    }
    if map_path is not None:
        from pipelines import __version__

        thickness_map.attrs |= {
            "source_file": str(input_path.resolve()),
            "sputter_rate_nm_per_s": sputter_rate,
            "producer": f"operando {__version__} tofsims cei",
        }
        write_netcdf_atomic(thickness_map, map_path)
    text = summary.as_json()
    write_atomically(summary_path, lambda tmp: tmp.write_text(text + "\n", encoding="utf-8"))
    mean = summary.data["cei_thickness_nm"]["mean"]
    click.echo(
        f"CEI thickness ({marker}): "
        f"{'n/a' if mean is None else f'{mean:.2f} nm'}; wrote {summary_path}"
    )
    thickness = thickness_map["thickness"] if volume_input else None
    _export_views(profile, summary.data, thickness, html=html, png=png, title=input_path.name)


def _export_views(
    profile: Any,
    summary: dict[str, Any],
    thickness: Any,
    *,
    html: Path | None,
    png: Path | None,
    title: str,
) -> None:
    """Save the report views (``--html``/``--png``): profiles, and the map of a volume."""
    if html is None and png is None:
        return
    from tofsims.cei_views import cei_report

    with rendering():  # views are built and saved by one thread at a time
        write_exports(
            cei_report(profile, summary, thickness),
            html=html,
            png=png,
            title=title,
            png_view=cei_report(profile, summary, thickness, static=True),
        )
    click.echo(f"wrote {', '.join(str(p) for p in (html, png) if p is not None)}")
