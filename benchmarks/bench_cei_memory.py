"""Peak memory of ``operando tofsims cei`` against the size of the volume it processes.

Writes a synthetic pristine volume to a Zarr store (default 6 fragments x 150 scans x 512 x 512
uint32 = 0.94 GB in memory), runs the command in a child process and prints its peak resident
set size and the ratio to the volume size (< 1 means the volume was never held in memory).
The baseline RSS of the same child importing the stack without work is printed for reference.

    .venv/bin/python benchmarks/bench_cei_memory.py [--size 512] [--scans 150] [--keep]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

from tofsims.synthetic import layered_sample

MEASURE = """
import resource, runpy, sys
sys.argv = {argv!r}
try:
    {body}
except SystemExit:
    pass
sys.stdout.flush()
sys.stderr.write("MAXRSS %d\\n" % resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def peak_rss_of(body: str, argv: list[str]) -> float:
    """Run ``body`` in a fresh interpreter; return its own peak RSS in bytes (Linux, kB)."""
    code = MEASURE.format(argv=argv, body=body)
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    line = [x for x in done.stderr.splitlines() if x.startswith("MAXRSS")][-1]
    return float(line.split()[1]) * 1024.0


def _volume(size: int, scans: int):
    volume, _ = layered_sample(
        "pristine", ny=size, nx=size, n_scans=scans, chunks={"y": 64, "scan": 50}
    )
    return volume


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--scans", type=int, default=150)
    parser.add_argument("--keep", action="store_true", help="keep the temporary store")
    parser.add_argument("--write", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.write:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _volume(args.size, args.scans).to_zarr(args.write)
        return
    folder = Path(tempfile.mkdtemp(prefix="bench_cei_"))
    store = folder / "volume.zarr"
    # the store is written by a child so that this process stays small
    writer = [
        sys.executable,
        __file__,
        "--write",
        str(store),
        "--size",
        str(args.size),
        "--scans",
        str(args.scans),
    ]
    subprocess.run(writer, check=True)
    volume = _volume(args.size, args.scans)
    baseline = peak_rss_of("import xarray, dask.array, scipy, zarr", ["-"])
    cli_args = [
        "operando",
        "tofsims",
        "cei",
        str(store),
        "--sputter-rate",
        "0.05",
        "--map",
        str(folder / "map.nc"),
        "--summary",
        str(folder / "summary.json"),
    ]
    peak = peak_rss_of("runpy.run_module('pipelines.cli', run_name='__main__')", cli_args)
    if not (folder / "summary.json").exists():
        raise SystemExit("the command failed")
    size = volume.counts.nbytes
    print(f"volume in memory would be   : {size / 1e9:6.2f} GB")
    print(f"baseline RSS (imports only) : {baseline / 1e9:6.2f} GB")
    print(f"peak RSS of 'tofsims cei'   : {peak / 1e9:6.2f} GB  = {peak / size:.2f} x volume")
    if not args.keep:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
