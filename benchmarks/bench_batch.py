"""Batch throughput on dask.distributed: speed-up of 2 workers over 1, scheduler overhead.

Generates the example study (pristine/modified × DEMS/TOF-SIMS), copies its experiments
under several names (``--copies``) and runs the whole batch on a process LocalCluster with one
worker, then with two (fresh output folders, cluster start-up excluded). The overhead per
experiment is measured with a runner that does nothing, on ``--tiny`` experiments.

    python benchmarks/bench_batch.py [--copies 2] [--tiny 200]

Targets (issue #7): speed-up ≥ 1.6× on 2 cores; overhead a few ms per experiment.
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from pathlib import Path

from distributed import Client, LocalCluster

from pipelines.batch import run_batch
from pipelines.example_study import StudySize, write_example_study
from pipelines.manifest import load_manifest


def copied_manifest(manifest: Path, copies: int) -> Path:
    """The study's manifest with every experiment repeated ``copies`` times under new names."""
    text = manifest.read_text()
    head, *blocks = text.split("[[experiment]]")
    out = [head]
    for copy in range(copies):
        for block in blocks:
            out.append(
                "[[experiment]]" + re.sub(r'name = "([^"]+)"', rf'name = "\1-{copy}"', block)
            )
    path = manifest.with_name(f"manifest-x{copies}.toml")
    path.write_text("".join(out))
    return path


def timed_batch(manifest: Path, outdir: Path, workers: int, runners=None) -> float:
    experiments = load_manifest(manifest)
    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            host="127.0.0.1",
        ) as cluster,
        Client(cluster) as client,
    ):
        client.run(lambda: None)  # workers up and connected
        start = time.perf_counter()
        outcome = run_batch(experiments, outdir, client, force=True, runners=runners)
        elapsed = time.perf_counter() - start
    if outcome.failed:
        raise SystemExit(f"failed experiments: {outcome.failed}")
    return elapsed


def nothing(experiment, workdir):
    return {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=2, help="copies of the 4-experiment study")
    parser.add_argument("--tiny", type=int, default=200, help="experiments for the overhead run")
    parser.add_argument("--pixels", type=int, default=32, help="TOF-SIMS field size")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        manifest = copied_manifest(
            write_example_study(folder / "study", size=StudySize(args.pixels)), args.copies
        )
        n = len(load_manifest(manifest))
        one = timed_batch(manifest, folder / "out1", workers=1)
        two = timed_batch(manifest, folder / "out2", workers=2)
        print(f"batch of {n} experiments (DEMS + TOF-SIMS, {args.pixels}² px)")
        print(f"  1 worker : {one:7.2f} s")
        print(f"  2 workers: {two:7.2f} s")
        print(f"  speed-up 2 workers / 1 worker: {one / two:.2f}x  (target >= 1.6x)")

        tiny = folder / "tiny.toml"
        lines = []
        ms = folder / "tiny.asc"
        ms.write_text("x")
        for i in range(args.tiny):
            lines += [
                "[[experiment]]",
                f'name = "t{i}"',
                'kind = "dems"',
                f'ms = "{ms.name}"',
                f'ec = "{ms.name}"',
                "",
            ]
        tiny.write_text("\n".join(lines))
        overhead = timed_batch(tiny, folder / "out3", workers=2, runners={"dems": nothing})
        print(
            f"scheduler + bookkeeping overhead: {overhead / args.tiny * 1e3:.1f} ms per experiment "
            f"({args.tiny} no-op experiments, 2 workers, incl. fingerprint and atomic publish)"
        )


if __name__ == "__main__":
    main()
