"""Weight of the reports of a 100-experiment batch: JavaScript written and largest page.

Runs ``operando batch`` on the example study (16 x 16 pixels) for real DEMS and TOF-SIMS
results, then writes the report of each of them for N experiments (default 100: alternating
the DEMS and the CEI report) exactly as a batch experiment does — ``ReportFiles`` with the
batch's shared ``_static`` folder (:func:`pipelines.runners._report`) — and prints:

* JavaScript written in total: the shared library files plus every page's own inline scripts
  (the plot data, ``application/json``, is counted apart);
* the largest ``report.html``; the same for one page saved standalone (inline BokehJS), the
  reference, and the ratio.

Goal (issue 15): < 10 MB of JavaScript for 100 experiments and no report over 1 MB.

Run: ``.venv/bin/python benchmarks/bench_batch_reports.py [--experiments 100]``
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
from pathlib import Path

import dask
import xarray as xr
from click.testing import CliRunner

from pipelines.cli import cli
from pipelines.example_study import StudySize, write_example_study
from pipelines.progress import QUIET_KEY
from pipelines.report import ReportFiles

SCRIPT = re.compile(r"<script(?P<attributes>[^>]*)>(?P<code>.*?)</script>", re.DOTALL)


def page_weight(folder: Path) -> dict[str, int]:
    """Bytes of JavaScript (shared files + inline code) and of plot data under ``folder``."""
    weight = {"shared_js": 0, "inline_js": 0, "data_json": 0, "largest_page": 0}
    for shared in folder.glob("_static/*.js"):
        weight["shared_js"] += shared.stat().st_size
    for page in folder.glob("*/report.html"):
        text = page.read_text(encoding="utf-8")
        weight["largest_page"] = max(weight["largest_page"], len(text.encode("utf-8")))
        for match in SCRIPT.finditer(text):
            size = len(match["code"].encode("utf-8"))
            kind = "data_json" if "application/json" in match["attributes"] else "inline_js"
            weight[kind] += size
    return weight


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=100)
    args = parser.parse_args()
    from dems.result_views import process_report
    from tofsims.cei_views import cei_report
    from tofsims.depth import depth_constant_rate
    from tofsims.profiles import depth_profile

    with tempfile.TemporaryDirectory() as folder, dask.config.set({QUIET_KEY: True}):
        tmp = Path(folder)
        manifest = write_example_study(tmp / "study", size=StudySize(pixels=16), seed=3)
        done = CliRunner().invoke(cli, ["batch", str(manifest), "-o", str(tmp / "real"),
                                        "--workers", "1"])  # fmt: skip
        assert done.exit_code == 0, done.output
        real = tmp / "real"
        result = xr.open_zarr(real / "pristine-dems" / "result.zarr").compute()
        dems_summary = json.loads((real / "pristine-dems" / "summary.json").read_text())
        sims_summary = json.loads((real / "pristine-sims" / "summary.json").read_text())
        volume = depth_constant_rate(xr.open_zarr(real / "pristine-sims" / "volume.zarr"), 0.05)
        profile = depth_profile(volume).compute()
        thickness = xr.open_dataset(real / "pristine-sims" / "cei_map.nc")["thickness"].load()
        views = [
            lambda static: process_report(result, dems_summary, static=static),
            lambda static: cei_report(profile, sims_summary, thickness, static=static),
        ]
        out = tmp / "batch"
        started = time.perf_counter()
        for index in range(args.experiments):
            work = out / f"experiment-{index:03d}"
            work.mkdir(parents=True)
            files = ReportFiles(work / "report.html", title=work.name,
                                shared_scripts=out / "_static")  # fmt: skip
            files.save(views[index % 2], echo=lambda *a, **k: None)
        elapsed = time.perf_counter() - started
        standalone = tmp / "standalone" / "report.html"
        standalone.parent.mkdir()
        ReportFiles(standalone, title="standalone").save(views[0], echo=lambda *a, **k: None)
        weight = page_weight(out)
        javascript = weight["shared_js"] + weight["inline_js"]
        reference = standalone.stat().st_size
        mb = 1e6
        print(f"{args.experiments} experiments, reports written in {elapsed:.1f} s")
        print(f"JavaScript written: {javascript / mb:.2f} MB (shared {weight['shared_js'] / mb:.2f}"
              f" MB once + inline {weight['inline_js'] / mb:.3f} MB); plot data "
              f"{weight['data_json'] / mb:.1f} MB")  # fmt: skip
        print(f"largest report.html: {weight['largest_page'] / mb:.2f} MB; standalone "
              f"(inline BokehJS): {reference / mb:.2f} MB; ratio "
              f"{weight['largest_page'] / reference:.2f}")  # fmt: skip
        print(f"JavaScript if every page inlined BokehJS: "
              f"{args.experiments * weight['shared_js'] / mb:.0f} MB")  # fmt: skip


if __name__ == "__main__":
    main()
