"""``operando demo``: the whole tool on a generated pristine vs modified study."""

from __future__ import annotations

import os
from pathlib import Path

import click

EPILOG = """\b
Examples:
  operando demo                          # into ./operando-demo
  operando demo -o /tmp/demo --serve     # then browse the results at http://127.0.0.1:5006

\b
Writes, in DIR:
  study/raw/       generated raw files in real formats (QUADERA .asc, EC-Lab .mpt, IONTOF .grd)
  study/manifest.toml, study/truth.json   the batch manifest and the numbers it must give
  <experiment>/    each experiment's outputs (result.zarr, calibration.json, volume.zarr,
                   cei_map.nc, summary.json, log.txt)
  summary.csv      the batch table, one row per experiment (columns experiment, kind, sample …)
  index.html       the batch index;  report.html  comparison table and figures (works offline;
                   BokehJS shared with the experiments' reports in _static/)
Running it again into the same DIR reuses the experiments that are up to date.
"""


def _default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))


@click.command(epilog=EPILOG)
@click.option(
    "-o",
    "--output",
    "outdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("operando-demo"),
    help="Output folder (created; an earlier demo output is updated).",
)
@click.option(
    "--serve", "serve_app", is_flag=True, help="Then serve the interactive app on 127.0.0.1."
)
@click.option("--port", type=click.IntRange(1, 65535), default=5006, help="Port for --serve.")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=_default_workers,
    show_default="min(2, cores)",
    help="Worker processes of the local dask cluster.",
)
@click.option(
    "--pixels",
    type=click.IntRange(min=8),
    default=32,
    help="Side of the generated TOF-SIMS fields, in pixels.",
)
@click.option("--seed", type=int, default=0, help="Random seed of the generated data.")
@click.option(
    "--force",
    is_flag=True,
    help="Write into a non-empty DIR that is not an earlier demo output, beside its files "
    "(deletes and overwrites nothing; refused if DIR holds a name the demo writes).",
)
@click.pass_context
def demo(
    ctx: click.Context,
    outdir: Path,
    serve_app: bool,
    port: int,
    workers: int,
    pixels: int,
    seed: int,
    force: bool,
) -> None:
    """Generate a small pristine and modified study, process it like real data, compare.

    DEMS runs (O2/CO2 evolution during charge) and TOF-SIMS depth profiles (CEI layer) of a
    pristine and a B/Ce-modified cathode are generated, written as real instrument files and
    processed by 'operando batch' on a local dask cluster — calibration, quantification,
    onset detection, reconstruction and CEI thickness, exactly as for your own data. The
    comparison table shows each measured number beside the truth it was generated from.
    """
    import json

    import pandas as pd

    from pipelines.commands.batch import batch
    from pipelines.demo import (
        DemoOutputError,
        build_report,
        comparison_rows,
        format_comparison,
        prepare_output,
    )
    from pipelines.example_study import StudySize, write_example_study
    from pipelines.outputs import FolderLock

    with FolderLock(outdir):  # the batch run below takes the same lock (re-entrant)
        try:
            rerun = prepare_output(outdir, force=force)
        except DemoOutputError as err:
            raise click.ClickException(str(err)) from err
        if rerun:
            click.echo(f"{outdir}: earlier demo output found; up-to-date experiments are reused")
        click.echo(f"generating the example study in {outdir / 'study'} …")
        study = write_example_study(outdir / "study", size=StudySize(pixels=pixels), seed=seed)
        ctx.invoke(batch, manifest=study, outdir=outdir, workers=workers)

        table = pd.read_csv(outdir / "summary.csv").to_dict("records")
        truth = json.loads((outdir / "study" / "truth.json").read_text())
        rows = comparison_rows(table, truth)
        click.echo("")
        click.echo(format_comparison(rows))
        click.echo("")
        report = build_report(outdir, rows, table)
    click.echo(f"raw files:   {outdir / 'study' / 'raw'}")
    click.echo(f"table:       {outdir / 'summary.csv'}")
    click.echo(f"report:      {report}  (open in a browser; works offline)")
    click.echo(f"batch index: {outdir / 'index.html'}")
    if not serve_app:
        click.echo(f"interactive: operando demo -o {outdir} --serve")
        return
    from pipelines.server import serve

    click.echo(f"serving on http://127.0.0.1:{port} (Ctrl-C to stop)")
    serve([outdir], port=port, address="127.0.0.1")
