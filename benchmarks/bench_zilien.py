"""Parse speed of the Zilien .tsv reader against ixdat's Zilien reader on the same file.

Writes a synthetic Zilien v2 file (16 MID channels, 10 gauge/flow series, Zilien's ``pot``
log and an embedded EC-lab block, several hours long) into a temporary folder, then times

* ``dems.io.zilien.read_ms``                      (MS stream: parses the whole table once)
* ``read_ms`` + ``read_ec``                       (both streams: parses it twice)
* ``ixdat.Measurement.read(path, reader="zilien")`` (all streams, ``np.genfromtxt``)

and prints the ratios (ixdat time / our time; > 1 means we are faster). Usage::

    .venv/bin/python benchmarks/bench_zilien.py [--hours 3] [--repeat 2]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

MASSES = [2, 4, 15, 18, 26, 28, 29, 32, 40, 43, 44, 45, 59, 88, 19, 56]
GAUGES = [
    "Iongauge value",
    "Pirani1 value",
    "Pirani2 value",
    "Pirani3 value",
    "MFC1 value",
    "MFC1 setpoint",
    "MFC2 value",
    "MFC2 setpoint",
    "PC value",
    "PC setpoint",
]
EC_TITLES = [
    "time/s",
    "experiment_number",
    "technique_number",
    "Ewe/V",
    "<I>/mA",
    "cycle number",
    "control/V",
    "(Q-Qo)/C",
    "ox/red",
    "P/W",
]


def _meta(name: str, series: str, kind: str, value: str) -> str:
    return "\t".join([name, name, series, kind, value])


def build_blocks(hours: float, rng: np.random.Generator) -> list[tuple[str, list[str], np.ndarray]]:
    """(series, column titles, values) of every block, each with its own time column."""
    duration = hours * 3600.0
    blocks = []
    n_ms = int(duration / 2.126)
    for i, mass in enumerate(MASSES):
        t = 0.5 + 0.074 * i + 2.126 * np.arange(n_ms)
        signal = 1e-12 * (1 + mass / 10) * (1 + 0.05 * rng.standard_normal(n_ms))
        blocks.append(
            (f"C{i}M{mass}", ["Time [s]", f"M{mass}-x [A]"], np.column_stack([t, signal]))
        )
    n_gauge = int(duration)
    for i, gauge in enumerate(GAUGES):
        t = 0.4 + 0.05 * i + np.arange(n_gauge, dtype=float)
        blocks.append(
            (
                gauge,
                ["Time [s]", "Pressure [mbar]"],
                np.column_stack([t, 1e-9 * (1 + 0.01 * rng.standard_normal(n_gauge))]),
            )
        )
    n_pot = int(duration / 0.5)
    t = 14.0 + 0.5 * np.arange(n_pot)
    potential = 3.7 + 0.5 * np.sin(t / 600.0)
    blocks.append(
        (
            "pot",
            ["Time [s]", "Voltage [V]", "Current [mA]", "Cycle [n]"],
            np.column_stack([t, potential, np.full(n_pot, 0.1), np.ones(n_pot)]),
        )
    )
    n_ec = int(duration / 0.25)
    t = 13.44 + 0.25 * np.arange(n_ec)
    ec = np.column_stack(
        [
            t,
            np.ones(n_ec),
            np.ones(n_ec),
            3.7 + 0.5 * np.sin(t / 600.0),
            np.full(n_ec, 0.1),
            np.ones(n_ec),
            np.full(n_ec, 3.7),
            1e-4 * t,
            np.ones(n_ec),
            3.7e-4 * np.ones(n_ec),
        ]
    )
    blocks.append(("EC-lab", EC_TITLES, ec))
    return blocks


def write_zilien(path: Path, hours: float, seed: int = 1) -> None:
    """Write a Zilien v2 .tsv with NaN-padded blocks of different lengths."""
    blocks = build_blocks(hours, np.random.default_rng(seed))
    meta = [
        _meta("file_format_version", "", "int", "2"),
        _meta("start_time_unix", "", "double", "1663579682.704037"),
        _meta("start_timestamp", "", "string", "2022-09-19 11:28:02.704037"),
        _meta("offset", "pot_01", "double", "1.344293e+01"),
    ]
    for series, _, values in blocks:
        meta.append(_meta(f"{series}_count", series, "int", str(len(values))))
        if series.startswith("C"):
            mass = series.split("M", 1)[1]
            meta += [
                _meta("mass", series, "double", f"{mass}.0"),
                _meta("plotname", series, "string", f"M{mass}-x [A]"),
            ]
    n_header = len(meta) + 3
    head = [
        _meta("num_header_lines", "", "int", str(n_header)),
        _meta("num_data_header_lines", "", "int", "2"),
        _meta("data_start", "", "int", str(n_header + 2)),
        *meta,
    ]
    series_line, title_line, columns = [], [], []
    n_rows = max(len(values) for _, _, values in blocks)
    for series, titles, values in blocks:
        series_line += [series] + [""] * (len(titles) - 1)
        title_line += titles
        padded = np.full((n_rows, values.shape[1]), np.nan)
        padded[: len(values)] = values
        columns.append(padded)
    table = pd.DataFrame(np.hstack(columns))
    with open(path, "w", encoding="latin-1", newline="\n") as handle:
        handle.write("\n".join([*head, "\t".join(series_line), "\t".join(title_line)]) + "\n")
        table.to_csv(
            handle,
            sep="\t",
            header=False,
            index=False,
            na_rep="NaN",
            float_format="%.7g",
            lineterminator="\n",
        )


def best_time(function, repeat: int) -> float:
    """Shortest wall time of ``repeat`` calls, in s."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=3.0, help="run length [h]")
    parser.add_argument("--repeat", type=int, default=2, help="repetitions (best is kept)")
    args = parser.parse_args()

    from dems.io.zilien import read_ec, read_ms

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "2022-09-19 11_27_59 bench.tsv"
        write_zilien(path, args.hours)
        size_mb = os.path.getsize(path) / 1e6
        ms = read_ms(path)
        print(
            f"file: {size_mb:.1f} MB, {args.hours:g} h, {ms.sizes['channel']} MS channels x "
            f"{ms.sizes['sample']} samples, {sum(1 for _ in open(path))} lines"
        )

        def ours_both() -> None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                read_ms(path)
                read_ec(path)

        ours_ms = best_time(lambda: read_ms(path), args.repeat)
        ours_all = best_time(ours_both, args.repeat)
        try:
            import ixdat
        except ImportError:
            print(f"operando read_ms: {ours_ms:.2f} s; ixdat not installed, no reference")
            return

        def theirs() -> None:
            with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ixdat.Measurement.read(path, reader="zilien")

        reference = best_time(theirs, 1)
        print(f"ixdat {ixdat.__version__} Zilien reader (reference): {reference:.2f} s")
        print(f"operando read_ms          : {ours_ms:.2f} s  -> {reference / ours_ms:.1f}x faster")
        print(
            f"operando read_ms + read_ec: {ours_all:.2f} s  -> {reference / ours_all:.1f}x faster"
        )


if __name__ == "__main__":
    main()
