"""QUADERA reader speed against pandas.read_csv on the same 48 h, 16-channel, 1 Hz file.

Run:  .venv/bin/python benchmarks/bench_quadera.py [--hours 48] [--channels 16] [--repeats 3]

Prints the best-of-N wall time of
  * ``dems.io.quadera.read_ms`` (header, dates, validation, dataset assembly),
  * ``pandas.read_csv(path, sep="\\t", skiprows=8, header=None)`` — the plain reference,
  * ``pandas.read_csv`` with the same numeric-only ``usecols``/``dtype`` — the floor,
and the ratios of the first to the other two (target: ≤ 1.5 against the reference).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from dems.io import quadera


def write_file(path: Path, hours: float, channels: int) -> int:
    """Write a QUADERA-layout export: 1 row per second, channels 1/channels s apart."""
    rows = int(hours * 3600)
    start = datetime(2026, 11, 28, 13, 51, 12)
    rng = np.random.default_rng(0)
    labels = "".join(f"\t\t{m}\t" for m in range(2, 2 + channels))
    titles = "Time\tTime Relative [s]\tIon Current [A]\t" * channels
    stamps = [(start + timedelta(seconds=s)).strftime("%d/%m/%Y %H:%M:%S") for s in range(rows)]
    with open(path, "w", newline="") as out:
        out.write(
            "Sourcefile\tbench.qmp\r\nExporttime\t30/11/2026 10:00:00\r\n\r\n"
            f"Start Time\t28/11/2026 13:51:12\r\nEnd Time\t30/11/2026 13:51:12\r\n\r\n"
            f"{labels}\r\n{titles}\r\n"
        )
        offsets = np.arange(channels) / channels
        for first in range(0, rows, 20_000):
            block = np.arange(first, min(rows, first + 20_000))
            rel = block[:, None] + offsets[None, :]
            val = rng.lognormal(-25, 1, size=rel.shape)
            lines = []
            for i, row in enumerate(block):
                stamp = stamps[row]
                lines.append(
                    "\t".join(f"{stamp}\t{rel[i, c]:.3f}\t{val[i, c]:.6e}" for c in range(channels))
                )
            out.write("\r\n".join(lines) + "\r\n")
    return rows


def best_of(repeats: int, func) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        func()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=48.0)
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.asc"
        t0 = time.perf_counter()
        rows = write_file(path, args.hours, args.channels)
        print(
            f"wrote {rows} rows x {args.channels} channels, "
            f"{path.stat().st_size / 2**20:.1f} MiB in {time.perf_counter() - t0:.1f} s"
        )
        usecols = [3 * i + k for i in range(args.channels) for k in (1, 2)]

        def ours():
            ds = quadera.read_ms(path, timezone="UTC")
            assert ds.sizes == {"channel": args.channels, "sample": rows}

        def reference():
            pd.read_csv(path, sep="\t", skiprows=8, header=None)

        def floor():
            pd.read_csv(
                path,
                sep="\t",
                skiprows=8,
                header=None,
                usecols=usecols,
                dtype=np.float64,
                engine="c",
            )

        t_ours = best_of(args.repeats, ours)
        t_ref = best_of(args.repeats, reference)
        t_floor = best_of(args.repeats, floor)
        print(f"read_ms                          : {t_ours:7.2f} s (best of {args.repeats})")
        print(f"pandas.read_csv (all columns)    : {t_ref:7.2f} s")
        print(f"pandas.read_csv (numeric usecols): {t_floor:7.2f} s")
        print(f"ratio read_ms / read_csv         : {t_ours / t_ref:.2f}  (target <= 1.5)")
        print(f"ratio read_ms / numeric read_csv : {t_ours / t_floor:.2f}")


if __name__ == "__main__":
    main()
