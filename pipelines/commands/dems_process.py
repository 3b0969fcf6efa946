"""``operando dems process``: calibrated gas fluxes, amounts and onset potentials."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from dems.workflows.options import ProcessOptions
from pipelines.options import build_options, option_flags, overwrite_option
from pipelines.progress import Echo, Relocate, computing, unchanged
from pipelines.report import ReportFiles, export_options

if TYPE_CHECKING:  # typing only: the command imports xarray when it runs
    from dems.workflows import ProcessRun
    from pipelines.outputs import Staging

EPILOG = """\b
Examples:
  operando dems process run.asc --ec cell_C01.mpt --calibration cal.json -o run.zarr \\
      --summary summary.json
  operando dems process run.asc --ec cell_C01.mpt --calibration cal.json --mass 12.5 \\
      --carrier-flow 2.5 --flow-reference 20 --cylinder-tolerance 0.05 \\
      --knot-spacing 7200 --onset-rate 0.5 -o run.nc --summary summary.json
  operando dems process run.asc --ec cell_C01.mpt --bg-window 0:600 --bg-window 9000:9600 \\
      -o run.zarr --summary summary.json        # no calibration: onsets on signals only

\b
Background (default auto = anchored): a smooth drift (cubic P-spline, knots every
--knot-spacing s, steps found on the carrier's channel or --step-reference) through
anchors found from the data: the EC record proposes rests, MS time before the EC
starts, discharges and the low-potential part of every charge; samples with gas
evolution are flagged and left out, and the drift is refitted. summary.json lists
the anchors and warns when they do not span the run. --bg-window windows are used as
given (auto then picks constant/linear/polynomial by their number).
"""


def result_lines(summary: dict[str, Any]) -> list[str]:
    """Console lines of a DEMS summary: each gas's onset and amount evolved, with ±1σ.

    ``O2    onset 4.391 ± 0.002 V   evolved 35.4 ± 0.5 µmol/g`` (per gram when the mass is
    known, else µmol); undetermined values say so instead of showing a number.
    """
    from operando_core.formatting import format_uncertain

    lines = []
    evolved = summary.get("evolved") or {}
    for gas, onset in (summary.get("onsets") or {}).items():
        value = onset.get("potential_V")
        text = format_uncertain(value, onset.get("uncertainty_V"), 3, "V", missing="no onset")
        amount = evolved.get(gas) or {}
        key, unit = (
            ("umol_per_g", "µmol/g") if amount.get("umol_per_g") is not None else ("umol", "µmol")
        )
        shown = format_uncertain(
            amount.get(key), amount.get(f"{key}_uncertainty"), 1, unit, missing="n/a"
        )
        lines.append(f"{gas:<5} onset {text:<18}  evolved {shown}")
    return lines


def publish_process(
    run: ProcessRun,
    *,
    output: Path,
    summary_path: Path,
    report: ReportFiles | None = None,
    staging: Staging,
    echo: Echo = click.echo,
    progress: bool = True,
    relocate: Relocate = unchanged,
) -> dict[str, Any]:
    """Compute a :func:`dems.workflows.process` run and write its outputs; return the summary.

    Writes the result dataset (``output``, ``.zarr`` or ``.nc``), ``summary.json`` and the
    report views (``report``) under the names ``staging`` gives (they are published together
    when the caller's :func:`pipelines.outputs.publishing` block ends); used by the command and
    by ``operando batch`` (whose ``relocate`` names, in the summary, the published folder
    instead of its work folder). Prints each onset and each evolved amount with its
    uncertainty.
    """
    from pipelines.atomic import write_dataset_atomic, write_json_atomic

    echo(f"transit delay {run.delay_s:.2f} s, {len(run.windows)} background window(s)", err=True)
    with computing(progress=progress):
        result = run.compute()
    summary = relocate(result.summary.to_dict())
    write_dataset_atomic(result.dataset, staging.path(output))
    write_json_atomic(staging.path(summary_path), summary)
    for line in result_lines(summary):
        echo(line)
    for warning in result.summary.warnings:
        echo(f"warning: {warning}", err=True)
    if report is not None:

        def views(static: bool) -> Any:
            from dems.result_views import process_report

            return process_report(result.dataset, summary, static=static)

        report.save(views, echo, where=staging.path)
    echo(f"wrote {output} and {summary_path}")
    return summary


@click.command(epilog=EPILOG)
@export_options
@click.argument("ms_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--ec",
    "ec_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Potentiostat file (EC-Lab .mpt, ...).",
)
@click.option(
    "--calibration",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Calibration JSON from 'operando dems calibrate'.",
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(path_type=Path),
    help="Result dataset, .zarr or .nc.",
)
@click.option(
    "--summary",
    "summary_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Summary JSON to write.",
)
@overwrite_option
@option_flags(ProcessOptions)
def process(
    ms_file: Path,
    ec_file: Path,
    calibration: Path | None,
    output: Path,
    summary_path: Path,
    html: Path | None,
    png: Path | None,
    overwrite: bool,
    **values: Any,
) -> None:
    """Turn an MS run and its EC file into gas fluxes, amounts and onset potentials.

    Pipeline: align the two clocks, fit the background, deconvolve all m/z into gas
    fluxes (mol/s) with the calibration's sensitivity matrix, apply the transit
    delay, match the potential, integrate per cycle and half-cycle, and detect the
    onset potential of every gas in every charge.
    """
    if output.suffix not in (".zarr", ".nc"):
        raise click.BadParameter("output must end in .zarr or .nc", param_hint="-o")
    from dems.workflows import process
    from pipelines.outputs import publishing

    options = build_options(ProcessOptions, values)
    outputs = {"-o": output, "--summary": summary_path, "--html": html, "--png": png}
    inputs = [ms_file, ec_file, calibration]
    with publishing(outputs, inputs, overwrite=overwrite) as staging:
        publish_process(
            process(ms_file, ec_file, calibration, options),
            output=output,
            summary_path=summary_path,
            report=ReportFiles(html, png, title=ms_file.stem),
            staging=staging,
        )
