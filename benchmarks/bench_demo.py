"""Wall time of ``operando demo``: a fresh run, a rerun into the same folder, and a reference.

The reference is ``operando --version`` (interpreter start-up and the CLI import) measured in the
same session, so the figures can be compared between machines as ratios. The issue asks for the
demo to finish "in seconds" on a laptop.

    python benchmarks/bench_demo.py [--repeats 2] [--workers 2]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OPERANDO = [sys.executable, "-c", "from pipelines.cli import main; main()"]


def timed(args: list[str]) -> float:
    """Run a command (output discarded) and return its wall time in seconds."""
    started = time.perf_counter()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    """Measure and print the wall times and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    options = parser.parse_args()
    reference = min(timed([*OPERANDO, "--version"]) for _ in range(3))
    fresh, rerun = [], []
    for _ in range(options.repeats):
        folder = Path(tempfile.mkdtemp(prefix="bench-demo-"))
        try:
            demo = [*OPERANDO, "demo", "-o", str(folder / "out"), "--workers", str(options.workers)]
            fresh.append(timed(demo))
            rerun.append(timed(demo))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    print(f"reference 'operando --version': {reference:.2f} s")
    print(f"demo, fresh folder : {min(fresh):.1f} s  ({min(fresh) / reference:.0f}x reference)")
    print(f"demo, rerun        : {min(rerun):.1f} s  ({min(rerun) / reference:.0f}x reference)")
    print(f"rerun / fresh      : {min(rerun) / min(fresh):.2f}")


if __name__ == "__main__":
    main()
