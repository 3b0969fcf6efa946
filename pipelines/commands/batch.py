"""``operando batch``: every experiment of a manifest on a dask.distributed cluster."""

from __future__ import annotations

from pathlib import Path

import click

EPILOG = """\b
Examples:
  operando batch study.toml -o results/                 # LocalCluster, one worker per core
  operando batch study.toml -o results/ --workers 2
  operando batch study.toml -o results/ --scheduler tcp://lab-ws1:8786
  operando batch study.toml -o results/ --scheduler-file /shared/scheduler.json

\b
Outputs: results/<experiment>/ (data store, summary.json, report), results/summary.csv,
results/summary.parquet and results/index.html. Re-running skips experiments whose inputs and
parameters are unchanged (content hash); --force recomputes everything.
"""


@click.command(epilog=EPILOG)
@click.argument("manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    "outdir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder (created if needed).",
)
@click.option(
    "--scheduler", metavar="ADDRESS", help="Connect to a running scheduler, e.g. tcp://host:8786."
)
@click.option(
    "--scheduler-file",
    type=click.Path(exists=True, dir_okay=False),
    help="Scheduler file written by 'dask scheduler --scheduler-file'.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="Worker processes of the local cluster [default: one per core].",
)
@click.option(
    "--threads-per-worker", type=click.IntRange(min=1), default=1, help="Threads per local worker."
)
@click.option("--memory-limit", default="auto", help="Memory limit per local worker, e.g. 4GB.")
@click.option(
    "--force", is_flag=True, help="Recompute experiments even when their results are up to date."
)
def batch(
    manifest: Path,
    outdir: Path,
    scheduler: str | None,
    scheduler_file: str | None,
    workers: int | None,
    threads_per_worker: int,
    memory_limit: str,
    force: bool,
) -> None:
    """Process every experiment listed in MANIFEST (TOML) and write one comparison table."""
    from pipelines.batch import BATCH_ENTRIES
    from pipelines.manifest import ManifestError, load_manifest
    from pipelines.outputs import FolderLock, claim_folder

    if (scheduler or scheduler_file) and workers:
        raise click.UsageError(
            "--workers starts a local cluster; it cannot be combined with --scheduler"
        )
    if scheduler and scheduler_file:
        raise click.UsageError("give either --scheduler or --scheduler-file")
    try:
        experiments = load_manifest(manifest)
    except ManifestError as err:
        raise click.ClickException(str(err)) from err
    inputs = [manifest, *(path for e in experiments for path in e.inputs.values())]
    with FolderLock(outdir):
        claim_folder(
            outdir,
            files=BATCH_ENTRIES,
            folders=[e.name for e in experiments],
            inputs=inputs,
            written_by="operando batch",
        )
        cluster = (scheduler, scheduler_file, workers, threads_per_worker, memory_limit)
        _run(experiments, manifest, outdir, force, cluster)


def _run(experiments: list, manifest: Path, outdir: Path, force: bool, cluster: tuple) -> None:
    """Run the experiments on a cluster, then write the table and the index.

    ``cluster`` holds the arguments of :func:`pipelines.cluster.dask_client`.
    """
    from pipelines.batch import run_batch
    from pipelines.cluster import dask_client
    from pipelines.table import table_rows, write_index, write_table

    with dask_client(*cluster) as client:
        click.echo(f"dashboard: {client.dashboard_link}", err=True)
        with click.progressbar(
            length=len(experiments), label="experiments", file=click.get_text_stream("stderr")
        ) as bar:

            def progress(name: str, status: str) -> None:
                bar.update(1)
                if status == "failed":
                    click.echo(f"\nfailed: {name}", err=True)

            outcome = run_batch(experiments, outdir, client, force=force, on_progress=progress)
    statuses = {
        **{n: "computed" for n in outcome.computed},
        **{n: "cached" for n in outcome.skipped},
        **{n: "failed" for n in outcome.failed},
    }
    rows = table_rows(experiments, outdir, statuses, outcome.failed)
    paths = write_table(rows, outdir)
    labels = list(dict.fromkeys(key for e in experiments for key in e.labels))
    index = write_index(rows, outdir, title=f"operando batch — {manifest.name}", labels=labels)
    click.echo(
        f"{len(outcome.computed)} computed, {len(outcome.skipped)} up to date, "
        f"{len(outcome.failed)} failed"
    )
    for name, error in outcome.failed.items():
        click.echo(f"  {name}: {error}")
    if outcome.failed:
        click.echo(f"logs and tracebacks of the failed experiments: {outdir / '.operando'}")
    click.echo(f"table: {paths[0]} and {paths[1].name}; report: {index}")
    if outcome.failed:
        raise click.ClickException(
            f"{len(outcome.failed)} of {len(experiments)} experiments failed"
        )
