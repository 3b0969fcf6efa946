"""Cost of the --html/--png reports against the processing they document.

Generates the example study (16 x 16 pixels), then times in this process:
``operando dems process`` without exports (reference), the HTML and PNG reports of its
result (``process_report`` + ``save_html`` / ``save_png``), ``operando tofsims cei`` on a
reconstructed volume (reference) and its reports. Prints each export as a ratio of its
reference, measured in the same run.

Run: ``.venv/bin/python benchmarks/bench_report_export.py``
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import dask
import xarray as xr

from pipelines.cli import cli
from pipelines.example_study import StudySize, write_example_study
from pipelines.progress import QUIET_KEY
from pipelines.report import save_html, save_png


def timed(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def run(args: list[str]) -> None:
    cli.main([str(a) for a in args], standalone_mode=False)


def main() -> None:
    from dems.result_views import process_report
    from tofsims.cei_views import cei_report
    from tofsims.depth import depth_constant_rate
    from tofsims.profiles import depth_profile

    with tempfile.TemporaryDirectory() as folder, dask.config.set({QUIET_KEY: True}):
        tmp = Path(folder)
        manifest = write_example_study(tmp / "study", size=StudySize(pixels=16), seed=3)
        raw = manifest.parent / "raw" / "pristine-dems"
        run(["dems", "calibrate", raw / "calibration.asc", "--steps", raw / "steps.toml",
             "-o", tmp / "cal.json"])  # fmt: skip
        ec = raw / "operando_01_GCPL_C01.mpt"
        process = ["dems", "process", raw / "operando.asc", "--ec", ec, "--calibration",
                   tmp / "cal.json", "-o", tmp / "r.zarr", "--summary", tmp / "s.json"]  # fmt: skip
        reference = timed(lambda: run(process))
        result = xr.open_zarr(tmp / "r.zarr").compute()
        summary = json.loads((tmp / "s.json").read_text())
        html = timed(lambda: save_html(process_report(result, summary), tmp / "r.html"))
        png = timed(lambda: save_png(process_report(result, summary, static=True), tmp / "r.png"))

        grd = manifest.parent / "raw" / "pristine-sims" / "pristine.itm.grd"
        run(["tofsims", "reconstruct", grd, "-o", tmp / "v.zarr", "--seconds-per-scan", 2])
        cei = ["tofsims", "cei", tmp / "v.zarr", "--sputter-rate", 0.05, "--marker", "LiF2-",
               "--map", tmp / "m.nc", "--summary", tmp / "c.json"]  # fmt: skip
        cei_reference = timed(lambda: run(cei))
        volume = depth_constant_rate(xr.open_zarr(tmp / "v.zarr"), 0.05)
        profile = depth_profile(volume).compute()
        cei_summary = json.loads((tmp / "c.json").read_text())
        thickness = xr.open_dataset(tmp / "m.nc")["thickness"]
        cei_html = timed(
            lambda: save_html(cei_report(profile, cei_summary, thickness), tmp / "c.html")
        )
        cei_png = timed(
            lambda: save_png(
                cei_report(profile, cei_summary, thickness, static=True), tmp / "c.png"
            )
        )
    print(f"reference: dems process (no exports): {reference:.2f} s")
    print(f"  --html report: {html:.2f} s ({html / reference:.2f} x reference)")
    print(f"  --png figure:  {png:.2f} s ({png / reference:.2f} x reference)")
    print(f"reference: tofsims cei on a 16x16 volume (no exports): {cei_reference:.2f} s")
    print(f"  --html report: {cei_html:.2f} s ({cei_html / cei_reference:.2f} x reference)")
    print(f"  --png figure:  {cei_png:.2f} s ({cei_png / cei_reference:.2f} x reference)")


if __name__ == "__main__":
    main()
