"""``operando tofsims cei``: CEI thickness (map and statistics), coating and fragment timings."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from pipelines.options import build_options, option_flags, overwrite_option, usage_errors
from pipelines.progress import Echo, Relocate, computing, unchanged
from pipelines.report import ReportFiles, export_options
from tofsims.workflows.options import CeiOptions

if TYPE_CHECKING:  # typing only: the command imports xarray when it runs
    from pipelines.outputs import Staging
    from tofsims.workflows import CeiRun

EPILOG = """\b
Examples:
  operando tofsims cei volume.zarr --sputter-rate 0.05 --summary summary.json
  operando tofsims cei volume.zarr --sputter-rate 0.05 --map map.nc --summary summary.json
  operando tofsims cei volume.zarr --sputter-rate 0.03 --seconds-per-scan 2 \\
      --marker LiF2- --bulk NiO2- --summary summary.json
  operando tofsims cei profile.txt --sputter-rate 0.05 --summary summary.json

\b
The layer stack (CEI, optional coating, bulk; MRI depth resolution) is fitted
jointly to the stack fragments by Poisson likelihood; volumes also give a
per-bin CEI map (4x4-pixel bins, invalid bins filled from their 8x8 and 16x16
parents) whose mean is the headline thickness; a depth profile gives the
whole-field fit. The ± combines every term of the uncertainty budget. A static
acquisition or a buried marker is an error unless --force. Every number that
cannot be determined is null in summary.json, with the reason under "null_reasons".
See docs/cli.md for every key and docs/methods.md for the methods.
"""


def cei_line(summary: dict[str, Any], marker: str) -> str:
    """One line: the headline thickness ± its uncertainty, its method and the coating."""
    cei = summary["cei_thickness_nm"]
    if cei["mean"] is None:
        thickness = "n/a"
    else:
        spread = "" if cei["uncertainty"] is None else f" ± {cei['uncertainty']:.2f}"
        thickness = f"{cei['mean']:.2f}{spread} nm ({cei['method']})"
    coating = summary["coating_thickness_nm"]
    if coating is None:
        coated = "none"
    else:
        spread = summary["coating_thickness_uncertainty_nm"]
        coated = f"{coating:.2f}{'' if spread is None else f' ± {spread:.2f}'} nm"
    return f"CEI thickness ({marker}): {thickness}; coating {coated}"


def publish_cei(
    run: CeiRun,
    *,
    summary_path: Path,
    map_path: Path | None = None,
    report: ReportFiles | None = None,
    staging: Staging,
    echo: Echo = click.echo,
    progress: bool = True,
    relocate: Relocate = unchanged,
) -> dict[str, Any]:
    """Compute a :func:`tofsims.workflows.cei` run and write its outputs; return the summary.

    Writes ``summary.json``, the thickness map (``map_path``, netCDF; a volume's run only) and
    the report views (``report``: profiles, and the map of a volume) under the names
    ``staging`` gives (published together when the caller's
    :func:`pipelines.outputs.publishing` block ends); used by the command and by
    ``operando batch`` (whose ``relocate`` names, in the summary and the map's attributes, the
    published folder instead of its work folder).
    """
    from pipelines.atomic import write_json_atomic, write_netcdf_atomic

    with computing(progress=progress, minimum=1.0):
        result = run.compute()
    if map_path is not None:
        published = result.map.copy()
        published.attrs = relocate(dict(published.attrs))
        write_netcdf_atomic(published, staging.path(map_path))
    summary = relocate(result.summary.to_dict())
    write_json_atomic(staging.path(summary_path), summary)
    for warning in result.summary.warnings:
        echo(f"warning: {warning}")
    echo(f"{cei_line(summary, run.options.marker)}; wrote {summary_path}")
    if report is not None:
        from tofsims.lateral import with_scale

        thickness = None if result.map is None else with_scale(result.map["thickness"], result.map)

        def views(static: bool) -> Any:
            from tofsims.cei_views import cei_report

            return cei_report(result.profile, summary, thickness, static=static)

        report.save(views, echo, where=staging.path)
    return summary


@click.command(epilog=EPILOG)
@export_options
@click.argument("input_path", metavar="INPUT", type=click.Path(exists=True, path_type=Path))
@option_flags(CeiOptions)
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
@overwrite_option
def cei(
    input_path: Path,
    map_path: Path | None,
    summary_path: Path,
    html: Path | None,
    png: Path | None,
    overwrite: bool,
    **values: Any,
) -> None:
    """CEI thickness of INPUT: per-pixel map, statistics, coating and fragment timings."""
    from pipelines.outputs import check_outputs, publishing
    from tofsims.workflows import cei, input_files

    options = build_options(CeiOptions, values)
    outputs = {"--summary": summary_path, "--map": map_path, "--html": html, "--png": png}
    inputs = [input_path, *input_files(input_path)]
    check_outputs(outputs, inputs, overwrite=overwrite)
    with usage_errors(CeiOptions):
        run = cei(input_path, options)
    if map_path is not None and not run.is_volume:
        raise click.UsageError("--map needs a volume; INPUT is a depth profile")
    with publishing(outputs, inputs, overwrite=overwrite) as staging:
        publish_cei(
            run,
            summary_path=summary_path,
            map_path=map_path,
            report=ReportFiles(html, png, title=input_path.name),
            staging=staging,
        )
