"""Slider response of ``operando serve`` on a 256×256×500-scan fragment volume.

Writes a synthetic Poisson volume (2 fragments × 500 scans × 256 × 256, uint32, Zarr chunks of
50 scans) to a temporary folder, serves it with :func:`pipelines.server.serve`, drives Debian's
chromium with Playwright and measures, per step, the time from a key press on the scan slider
to the moment the x–y slice canvas shows new pixels (polled every animation frame).

Reference measured in the same run: reading one whole fragment volume into memory
(``counts.sel(fragment=...).values``, 131 MB), which a viewer without lazy slicing would do.

Run:  .venv/bin/python benchmarks/bench_slider.py [--steps 20]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import tempfile
import time
from pathlib import Path

import dask.array as da
import numpy as np
import xarray as xr

SCANS, NY, NX = 500, 256, 256
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
FIRST_CANVAS = """() => { const walk = (root) => {
    for (const el of root.querySelectorAll('*')) {
      if (el.tagName === 'CANVAS') return el;
      if (el.shadowRoot) { const found = walk(el.shadowRoot); if (found) return found; }
    } return null; }; return walk(document); }"""


def write_volume(folder: Path) -> Path:
    counts = (
        da.random.default_rng(0)
        .poisson(3.0, size=(2, SCANS, NY, NX), chunks=(1, 50, NY, NX))
        .astype("uint32")
    )
    volume = xr.Dataset(
        {"counts": (("fragment", "scan", "y", "x"), counts)},
        coords={
            "fragment": ["C2HO-", "LiF2-"],
            "scan": np.arange(SCANS),
            "sputter_time": ("scan", np.arange(1, SCANS + 1) * 2.0),
            "y": np.arange(NY),
            "x": np.arange(NX),
        },
    )
    path = folder / "volume.zarr"
    volume.to_zarr(path)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def slider_steps(url: str, steps: int) -> tuple[float, list[float]]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        start = time.perf_counter()
        page.goto(url)
        page.wait_for_selector(".noUi-handle", timeout=120_000)
        page.wait_for_selector("canvas", timeout=120_000)
        page.wait_for_timeout(1000)
        first_view = time.perf_counter() - start
        page.locator(".noUi-handle").first.focus()
        times = []
        for _ in range(steps):
            page.evaluate(f"() => {{ window.__before = ({FIRST_CANVAS})().toDataURL(); }}")
            start = time.perf_counter()
            page.keyboard.press("ArrowRight")
            page.wait_for_function(
                f"() => ({FIRST_CANVAS})().toDataURL() !== window.__before",
                polling="raf",
                timeout=60_000,
            )
            times.append(time.perf_counter() - start)
        browser.close()
    return first_view, times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    from pipelines.server import serve

    with tempfile.TemporaryDirectory() as tmp:
        path = write_volume(Path(tmp))
        counts = xr.open_zarr(path)["counts"]
        start = time.perf_counter()
        whole = counts.sel(fragment="C2HO-").values
        reference = time.perf_counter() - start
        start = time.perf_counter()
        plane = counts.sel(fragment="C2HO-", scan=250).values
        one_slice = time.perf_counter() - start

        port = free_port()
        server = serve([path], port=port, threaded=True)
        try:
            first_view, times = slider_steps(f"http://127.0.0.1:{port}/", args.steps)
        finally:
            server.stop()

    median = statistics.median(times)
    print(f"volume: 2 fragments x {SCANS} scans x {NY} x {NX} (uint32, Zarr chunks of 50 scans)")
    print(
        f"reference: read one whole fragment volume ({whole.nbytes / 1e6:.0f} MB): "
        f"{reference:.3f} s"
    )
    print(
        f"read one x-y slice ({plane.nbytes / 1e3:.0f} kB) from the store: {one_slice:.3f} s "
        f"({one_slice / reference:.2f} x reference)"
    )
    print(f"first view in the browser (incl. x-z, y-z sections): {first_view:.2f} s")
    print(
        f"slider step -> new slice drawn, median of {len(times)}: {median:.3f} s "
        f"(min {min(times):.3f}, max {max(times):.3f}; {median / reference:.2f} x reference)"
    )


if __name__ == "__main__":
    main()
