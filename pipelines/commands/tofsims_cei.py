"""``operando tofsims cei``: CEI thickness (map and statistics), coating and fragment timings."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from pipelines.options import build_options, option_flags, usage_errors
from pipelines.progress import Echo, computing
from pipelines.report import ReportFiles, export_options
from tofsims.workflows.options import CeiOptions

if TYPE_CHECKING:  # typing only: the command imports xarray when it runs
    from tofsims.workflows import CeiRun

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


def publish_cei(
    run: CeiRun,
    *,
    summary_path: Path,
    map_path: Path | None = None,
    report: ReportFiles | None = None,
    echo: Echo = click.echo,
    progress: bool = True,
) -> dict[str, Any]:
    """Compute a :func:`tofsims.workflows.cei` run and write its outputs; return the summary.

    Writes ``summary.json``, the thickness map (``map_path``, netCDF; a volume's run only) and
    the report views (``report``: profiles, and the map of a volume), each atomically; used by
    the command and by ``operando batch``.
    """
    from pipelines.atomic import write_json_atomic, write_netcdf_atomic

    with computing(progress=progress, minimum=1.0):
        result = run.compute()
    if map_path is not None:
        write_netcdf_atomic(result.map, map_path)
    summary = result.summary.to_dict()
    write_json_atomic(summary_path, summary)
    mean = result.summary.cei_thickness_nm
    echo(
        f"CEI thickness ({run.options.marker}): "
        f"{'n/a' if mean is None else f'{mean:.2f} nm'}; wrote {summary_path}"
    )
    if report is not None:
        thickness = result.map["thickness"] if result.map is not None else None

        def views(static: bool) -> Any:
            from tofsims.cei_views import cei_report

            return cei_report(result.profile, summary, thickness, static=static)

        report.save(views, echo)
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
def cei(
    input_path: Path,
    map_path: Path | None,
    summary_path: Path,
    html: Path | None,
    png: Path | None,
    **values: Any,
) -> None:
    """CEI thickness of INPUT: per-pixel map, statistics, coating and fragment timings."""
    from tofsims.workflows import cei

    options = build_options(CeiOptions, values)
    with usage_errors(CeiOptions):
        run = cei(input_path, options)
    if map_path is not None and not run.is_volume:
        raise click.UsageError("--map needs a volume; INPUT is a depth profile")
    publish_cei(
        run,
        summary_path=summary_path,
        map_path=map_path,
        report=ReportFiles(html, png, title=input_path.name),
    )
