"""GRD -> fragment volume throughput and peak memory, as ratios against references.

Generates a GRD (``tofsims.synthetic_raw.write_grd``: 6 fragments, calibration peaks,
background) in a temporary folder, then bins it into ``counts(fragment, scan, y, x)``
with

* (a) a minimal single-pass NumPy reference: ``np.fromfile`` per block of whole scans,
  ``np.searchsorted`` of the TOF on the window edges, ``np.bincount`` of the voxel index;
* (b) a per-event Python loop like pySPM's (timed on a subset, extrapolated per event);
* ours: ``tofsims.reconstruct.reconstruct`` (fused numba kernel per dask block) with 1 and
  2 worker threads;

checks that all agree, and prints events/s and the ratios. Peak memory of a full
``operando``-style run (GRD -> Zarr) is measured in a child process (``ru_maxrss``) on
the full file and on a quarter of it, to show it is flat in file size. The page cache is
warmed before timing (every method reads the same cached file). Run:

    python benchmarks/bench_grd.py --events 50e6

``--end-to-end`` times what a user waits for instead: the whole command
``operando tofsims reconstruct RUN.grd -o v.zarr`` (start-up, mass recalibration on a
sample, one pass, Zarr store) as a subprocess, against a single-pass NumPy reference run
as a subprocess with one thread (``np.fromfile`` in 8 M-event chunks, time -> mass with the
true SF/K0, ``searchsorted`` into the windows operando chooses by default — ±1.5 FWHM of the
peak width measured on the recalibration sample, the six fragments plus ¹⁰BO₂⁻ and ⁶LiF₂⁻ —
``bincount`` into (fragment, scan,
y, x)), on a generated GRD of 128 x 128 pixels and 250 scans (2.95 GB by default) whose
properties hold a deliberately wrong SF/K0. Runs are interleaved and repeated (best of N);
it prints the ratio, wall times, MB/s, peak RSS (``wait4``) of every run, 1 vs 2 workers,
the per-fragment totals of both and the load average:

    python benchmarks/bench_grd.py --end-to-end
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

FRAGMENTS = ["C2HO-", "PO3-", "LiF2-", "BO2-", "CeO2-", "NiO2-"]
SF, K0 = 72000.0, -2100.0
RASTER = 256


def generate(path: Path, n_events: float, seed: int = 0) -> int:
    """Write a GRD of about ``n_events`` events; return the exact count."""
    from tofsims.synthetic_raw import poisson_volume, write_grd

    per_pixel_scan = 6 * 1.0 + 10 * 0.5 + 0.2  # fragments + calibration ions + background
    scans = max(2, round(n_events / (per_pixel_scan * RASTER * RASTER)))
    volume = poisson_volume(FRAGMENTS, (scans, RASTER, RASTER), mean=1.0, seed=seed)
    truth = write_grd(
        volume, path, sf=SF, k0=K0, calibration_per_pixel=0.5, background_per_pixel=0.2, seed=seed
    )
    return int(truth["events"].sum())


def numpy_reference(
    path: Path, starts: np.ndarray, bounds: list[int], first: np.ndarray, last: np.ndarray
) -> np.ndarray:
    """Single pass: fromfile + searchsorted + bincount per block of whole scans."""
    n_scans, n_fragments = len(starts) - 1, len(first)
    order = np.argsort(first)
    edges = np.column_stack([first[order], last[order] + 1]).ravel().astype(np.uint32)
    out = np.zeros((n_fragments, n_scans, RASTER, RASTER), dtype=np.uint32)
    for lo, hi in itertools.pairwise(bounds):
        first, stop = int(starts[lo]), int(starts[hi])
        rec = np.fromfile(path, dtype="<u4", count=(stop - first) * 5, offset=first * 20).reshape(
            -1, 5
        )
        slot = np.searchsorted(edges, rec[:, 4], side="right")  # odd slot = inside a window
        inside = (slot & 1).astype(bool)
        hits = rec[inside]  # one gather of the records that fall in a window
        fragment = order[slot[inside] >> 1]
        voxel = ((fragment * (hi - lo) + (hits[:, 0] - lo)) * RASTER + hits[:, 3]) * RASTER
        voxel += hits[:, 2]
        counts = np.bincount(voxel, minlength=n_fragments * (hi - lo) * RASTER * RASTER)
        out[:, lo:hi] = counts.reshape(n_fragments, hi - lo, RASTER, RASTER)
    return out


def python_loop(
    path: Path, n_events: int, mass_low: np.ndarray, mass_high: np.ndarray, n_scans: int
) -> float:
    """pySPM-style loop over the first ``n_events`` records; returns seconds.

    Like pySPM's raw-data readers: iterate over the uint32 records of a NumPy array, convert
    each TOF to a mass and test it against every mass interval.
    """
    rec = np.fromfile(path, dtype="<u4", count=n_events * 5).reshape(-1, 5)
    windows = list(zip(mass_low.tolist(), mass_high.tolist(), strict=True))
    out = np.zeros((len(windows), n_scans, RASTER, RASTER), dtype=np.uint32)
    start = time.perf_counter()
    for scan, _shot, x, y, tof in rec:
        mass = ((tof - K0) / SF) ** 2
        for f, (low, high) in enumerate(windows):
            if low <= mass <= high:
                out[f, scan, y, x] += 1
                break
    return time.perf_counter() - start


def ours(path: Path, workers: int) -> tuple[np.ndarray, float]:
    import dask
    import dask.array as da

    from tofsims.io import grd
    from tofsims.reconstruct import reconstruct

    start = time.perf_counter()
    volume = reconstruct(grd.read(path, validate=False), FRAGMENTS, window_u=0.05)
    # like the reference: every block is written into one preallocated in-memory volume
    counts = np.zeros(volume["counts"].shape, dtype=np.uint32)
    with dask.config.set(scheduler="threads", num_workers=workers):
        da.store(volume["counts"].data, counts, lock=False)
    return counts, time.perf_counter() - start


MEMORY_CHILD = textwrap.dedent("""
    import sys, dask
    from tofsims.io import grd
    from tofsims.io.volume_store import write_volume
    from tofsims.reconstruct import reconstruct
    path, out, workers = sys.argv[1], sys.argv[2], int(sys.argv[3])
    volume = reconstruct(grd.read(path, validate=False), {fragments!r}, window_u=0.05)
    with dask.config.set(scheduler="threads", num_workers=workers):
        write_volume(volume, out)
    # VmHWM: this process's own peak (ru_maxrss would include the parent's, kept over exec)
    status = open("/proc/self/status").read().split("VmHWM:")[1]
    print(int(status.split()[0]))
""").format(fragments=FRAGMENTS)


def peak_rss_mb(path: Path, workers: int = 2) -> float:
    """Peak RSS (MB, VmHWM) of a child process: GRD -> reconstruct -> Zarr store."""
    out = path.with_suffix(".zarr")
    result = subprocess.run(
        [sys.executable, "-c", MEMORY_CHILD, str(path), str(out), str(workers)],
        capture_output=True,
        text=True,
        check=True,
    )
    shutil.rmtree(out)
    return int(result.stdout.split()[-1]) / 1024


# --- end to end ---------------------------------------------------------------------------

E2E_RASTER, E2E_SCANS = 128, 250
#: Deliberately wrong calibration in the properties: ours must recalibrate to match.
E2E_SF_ERROR, E2E_K0_ERROR = 1e-4, 5.0
REFERENCE_CHUNK = 8 * 2**20


def generate_end_to_end(path: Path, scans: int, background: float, seed: int = 0) -> None:
    """GRD of 128 x 128 pixels: 6 fragments (2 counts/pixel/scan), 10 calibration ions
    (1.2 each), flat background (``background`` per pixel and scan); wrong SF/K0 written."""
    from tofsims.synthetic_raw import poisson_volume, write_grd

    volume = poisson_volume(FRAGMENTS, (scans, E2E_RASTER, E2E_RASTER), mean=2.0, seed=seed)
    write_grd(
        volume,
        path,
        sf=SF,
        k0=K0,
        calibration_per_pixel=1.2,
        background_per_pixel=background,
        properties_sf=SF * (1 + E2E_SF_ERROR),
        properties_k0=K0 + E2E_K0_ERROR,
        seed=seed,
    )


def reference_child(path: str, n_scans: int, edges_json: str, totals: str) -> None:
    """The single-pass NumPy reference (run as a subprocess with one thread)."""
    lows, highs = (np.array(v) for v in json.loads(edges_json))
    order = np.argsort(lows)
    edges = np.column_stack([lows[order], highs[order]]).ravel()
    shape = (len(lows), n_scans, E2E_RASTER, E2E_RASTER)
    size = int(np.prod(shape))
    counts = np.zeros(size, dtype=np.int64)
    n = os.path.getsize(path) // 20
    for first in range(0, n, REFERENCE_CHUNK):
        count = min(REFERENCE_CHUNK, n - first)
        rec = np.fromfile(path, dtype="<u4", count=count * 5, offset=first * 20).reshape(-1, 5)
        mass = ((rec[:, 4] - K0) / SF) ** 2
        slot = np.searchsorted(edges, mass, side="right")  # odd slot = inside a window
        inside = (slot & 1).astype(bool)
        hits = rec[inside]
        fragment = order[slot[inside] >> 1]
        voxel = ((fragment * n_scans + hits[:, 0]) * E2E_RASTER + hits[:, 3]) * E2E_RASTER
        counts += np.bincount(voxel + hits[:, 2], minlength=size)
    volume = counts.reshape(shape)
    Path(totals).write_text(json.dumps(volume.sum(axis=(1, 2, 3)).tolist()))


def run_measured(command: list[str]) -> tuple[float, float, str]:
    """Run a command; return wall time (s), its peak RSS (MB, from wait4) and its stdout."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(child.pid, 0)
        elapsed = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read()
    if child.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{text}")
    return elapsed, usage.ru_maxrss / 1024, text


def warm_page_cache(path: Path) -> None:
    buffer = bytearray(64 * 2**20)
    with open(path, "rb", buffering=0) as handle:
        while handle.readinto(buffer):
            pass


def default_windows(path: Path) -> tuple[list[str], list[float], list[float]]:
    """Fragments and windows ``operando tofsims reconstruct`` chooses by default for ``FRAGMENTS``.

    ±1.5 FWHM of the peak width measured on the recalibration sample, ¹⁰BO₂⁻/⁶LiF₂⁻ added: the
    reference bins into the same windows (computed once here, outside the timed runs).
    """
    from tofsims.binning import window_masses
    from tofsims.workflows.options import ReconstructOptions
    from tofsims.workflows.reconstruction import RunWindows, mass_recalibration, open_records

    records = open_records(path)
    options = ReconstructOptions(fragments=tuple(FRAGMENTS))
    windows = RunWindows(records, options, mass_recalibration(records, options))
    _, lows, highs = window_masses(windows.fragments, **windows.binning)
    print(f"windows: {windows.source}")
    return list(windows.fragments), lows.tolist(), highs.tolist()


def end_to_end(args: argparse.Namespace) -> None:
    folder = Path(tempfile.mkdtemp(prefix="bench_grd_e2e_", dir=args.folder))
    try:
        if args.grd:
            path = Path(args.grd)
            print(f"using {path} (generated by an earlier --keep run)")
        else:
            path = folder / "RUN.itm.grd"
            t0 = time.perf_counter()
            generator = f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
            generator += "import bench_grd as b; from pathlib import Path; "
            generator += f"b.generate_end_to_end(Path({str(path)!r}), {args.scans}, "
            generator += f"{args.background})"
            subprocess.run([sys.executable, "-c", generator], check=True)
            print(f"generated in {time.perf_counter() - t0:.0f} s")
        size = path.stat().st_size
        print(
            f"{size / 20:,.0f} events ({size / 1e9:.2f} GB, {E2E_RASTER} x {E2E_RASTER} px, "
            f"{args.scans} scans)"
        )
        fragments, lows, highs = default_windows(path)
        totals = folder / "reference_totals.json"
        reference = [
            sys.executable,
            __file__,
            "--reference-child",
            str(path),
            str(args.scans),
            json.dumps([lows, highs]),
            str(totals),
        ]
        operando = str(Path(sys.executable).with_name("operando"))
        store = folder / "v.zarr"
        ours_cmd = [operando, "tofsims", "reconstruct", str(path), "-o", str(store)]
        ours_cmd += ["--fragments", ",".join(FRAGMENTS), "--overwrite"]
        runs = {
            "numpy reference (1 thread)": reference,
            "operando (default: all cores)": ours_cmd,
            "operando --workers 1": [*ours_cmd, "--workers", "1"],
            "operando --workers 2": [*ours_cmd, "--workers", "2"],
        }
        print("load average before:", " ".join(f"{v:.2f}" for v in os.getloadavg()))
        warm_page_cache(path)
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
        for _ in range(args.repeats):
            for name, command in runs.items():
                elapsed, rss, _ = run_measured(command)
                results[name].append((elapsed, rss))
        print("load average after: ", " ".join(f"{v:.2f}" for v in os.getloadavg()))
        for name, command in runs.items():
            shown = " ".join(command if "operando" in name else ["python", *command[1:4], "..."])
            print(f"  {name}: {shown}")
        best = {name: min(values) for name, values in results.items()}
        print(f"{'run':<31} {'best s':>7} {'all runs s':>22} {'MB/s':>7} {'peak RSS MB':>11}")
        for name, values in results.items():
            elapsed, _ = best[name]
            every = " ".join(f"{t:.2f}" for t, _ in values)
            rss = max(r for _, r in values)
            print(f"{name:<31} {elapsed:7.2f} {every:>22} {size / 1e6 / elapsed:7.0f} {rss:11.0f}")
        t_reference = best["numpy reference (1 thread)"][0]
        for name in list(runs)[1:]:
            print(f"ratio reference / {name}: {t_reference / best[name][0]:.2f}")
        print(
            "1 vs 2 workers: "
            f"{best['operando --workers 1'][0] / best['operando --workers 2'][0]:.2f}x faster"
        )
        _compare_totals(store, totals, fragments)
    finally:
        if args.keep and not args.grd:
            kept = Path(args.keep)
            for name in ("RUN.itm.grd", "RUN.itm.grd.properties.txt"):
                os.replace(folder / name, kept.with_name(kept.name + name[len("RUN.itm.grd") :]))
            print(f"kept the GRD as {kept}")
        shutil.rmtree(folder)


def _compare_totals(store: Path, totals: Path, fragments: list[str]) -> None:
    import xarray as xr

    reference = np.array(json.loads(totals.read_text()), dtype=np.float64)
    with xr.open_zarr(store) as volume:
        counts = volume["counts"].sel(fragment=fragments)
        ours_totals = counts.sum(dim=("scan", "y", "x")).values.astype(np.float64)
        sf, k0 = volume.attrs["sf"], volume.attrs["k0"]
    difference = (ours_totals - reference) / np.maximum(reference, 1.0)
    print(f"recalibrated SF {sf:.3f} (true {SF}), K0 {k0:.3f} (true {K0})")
    for fragment, a, b, d in zip(fragments, reference, ours_totals, difference, strict=True):
        print(f"  {fragment:<6} reference {a:>12,.0f}  operando {b:>12,.0f}  {100 * d:+.4f} %")
    worst = float(np.abs(difference).max())
    total = (ours_totals.sum() - reference.sum()) / reference.sum()
    print(f"totals: worst fragment {100 * worst:.4f} %, all {100 * total:+.4f} % (limit 0.1 %)")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--reference-child":
        reference_child(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--end-to-end",
        action="store_true",
        help="time the whole command against the NumPy reference, as subprocesses",
    )
    parser.add_argument("--scans", type=int, default=E2E_SCANS, help="(end to end) scans")
    parser.add_argument(
        "--background",
        type=float,
        default=12.0,
        help="(end to end) background ions per pixel and scan (12: 36 ions per pixel-scan)",
    )
    parser.add_argument("--folder", default=None, help="(end to end) where to generate")
    parser.add_argument("--keep", default=None, help="(end to end) keep the GRD as this path")
    parser.add_argument(
        "--grd", default=None, help="(end to end) reuse a GRD kept by an earlier --keep run"
    )
    parser.add_argument("--events", type=float, default=50e6, help="events to generate")
    parser.add_argument(
        "--loop-events",
        type=int,
        default=200_000,
        help="events timed with the per-event Python loop",
    )
    parser.add_argument("--repeats", type=int, default=3, help="best of N timings")
    args = parser.parse_args()
    if args.end_to_end:
        end_to_end(args)
        return

    from tofsims.io import grd
    from tofsims.masscal import window_channels
    from tofsims.reconstruct import mass_windows

    folder = Path(tempfile.mkdtemp(prefix="bench_grd_"))
    try:
        path = folder / "bench.grd"
        t0 = time.perf_counter()
        n = generate(path, args.events)
        size_gb = path.stat().st_size / 1e9
        print(
            f"generated {n:,} events ({size_gb:.2f} GB, {RASTER}x{RASTER} px) "
            f"in {time.perf_counter() - t0:.0f} s"
        )
        windows = mass_windows(FRAGMENTS, window_u=0.05)
        first, last = window_channels(windows.mass_low.values, windows.mass_high.values, SF, K0)
        events = grd.read(path)
        starts = np.append(events["first_event"].values, n)
        bounds = events.encoding["block_scans"]
        n_scans = len(starts) - 1

        path.read_bytes()  # warm the page cache for every method alike
        ours(folder / "bench.grd", 1)  # numba compilation, excluded from timings

        # interleaved repeats (best of each): load from other processes on a shared machine
        # then hits every method alike
        timings: dict[str, list[float]] = {"numpy": [], "ours1": [], "ours2": []}
        reference = one = two = None
        for _ in range(args.repeats):
            t = time.perf_counter()
            reference = numpy_reference(path, starts, bounds, first, last)
            timings["numpy"].append(time.perf_counter() - t)
            one, elapsed = ours(path, 1)
            timings["ours1"].append(elapsed)
            two, elapsed = ours(path, 2)
            timings["ours2"].append(elapsed)
        assert np.array_equal(one, reference) and np.array_equal(two, reference), "mismatch"
        t_numpy, t_one, t_two = (min(timings[k]) for k in ("numpy", "ours1", "ours2"))
        t_loop = python_loop(
            path, args.loop_events, windows.mass_low.values, windows.mass_high.values, n_scans
        )
        t_loop_full = t_loop / args.loop_events * n

        rate = {
            name: n / t
            for name, t in [
                ("numpy", t_numpy),
                ("loop", t_loop_full),
                ("ours1", t_one),
                ("ours2", t_two),
            ]
        }
        print(
            "numpy reference (fromfile+searchsorted+bincount): "
            f"{rate['numpy'] / 1e6:8.1f} M events/s"
        )
        print(
            f"per-event Python loop (extrapolated from {args.loop_events:,}): "
            f"{rate['loop'] / 1e6:8.3f} M events/s"
        )
        print(
            f"ours, 1 worker : {rate['ours1'] / 1e6:8.1f} M events/s = "
            f"{rate['ours1'] / rate['numpy']:.2f}x numpy, {rate['ours1'] / rate['loop']:.0f}x loop"
        )
        print(
            f"ours, 2 workers: {rate['ours2'] / 1e6:8.1f} M events/s = "
            f"{rate['ours2'] / rate['numpy']:.2f}x numpy, {rate['ours2'] / rate['loop']:.0f}x loop"
        )
        print("volumes identical to the numpy reference: yes")

        quarter = folder / "quarter.grd"
        generate(quarter, args.events / 4, seed=1)
        rss_full = peak_rss_mb(path)
        rss_quarter = peak_rss_mb(quarter)
        print(
            f"peak RSS GRD -> Zarr (2 workers): {rss_full:.0f} MB for {size_gb:.2f} GB, "
            f"{rss_quarter:.0f} MB for {quarter.stat().st_size / 1e9:.2f} GB"
        )
    finally:
        shutil.rmtree(folder)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main()
