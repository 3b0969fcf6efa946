"""Regenerate the screenshots in docs/images/ (linked from docs/views.md).

Renders every view on the small synthetic datasets of ``tests/plot_data.py`` in Debian's
chromium (Playwright, headless): static views from their offline HTML export, the slice viewer
and the 3D view from a live ``operando serve`` app, plus one matplotlib PNG (paper figure).

The views of real results (``report_*.png``, ``compare_*.png``, ``serve_dems_result.png``,
``serve_cei_map.png``, ``serve_comparison.png``) come from ``operando batch`` on the generated
example study (16 x 16 pixels): the ``report.html`` pages and PNG figures the commands write,
``operando compare`` on the batch (its page and print figures) and ``operando serve`` on the
batch folder.

Run:  .venv/bin/python docs/make_screenshots.py            (everything)
      .venv/bin/python docs/make_screenshots.py --real-only  (views of real results only)
"""

from __future__ import annotations

import socket
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "docs" / "images"
sys.path.insert(0, str(ROOT / "tests"))

ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
    "--enable-unsafe-swiftshader",
]


def static_views() -> dict[str, object]:
    """Every view that can be saved as static HTML, on synthetic data."""
    import xarray as xr
    from plot_data import ONSETS, flux, ms_and_ec, particle_volume, profile, thickness

    from dems import plots as dems_plots
    from tofsims import plots as tofsims_plots

    ms, ec = ms_and_ec()
    calibration = xr.Dataset(
        {
            "flux": (("gas", "point"), [[0.0, 1e-9, 2e-9, 3e-9]] * 2, {"units": "mol/s"}),
            "signal": (
                ("gas", "point"),
                [[2e-12, 1.0e-10, 2.1e-10, 2.95e-10], [1e-12, 2.2e-10, 4.3e-10, 6.4e-10]],
                {"units": "A"},
            ),
            "sensitivity": ("gas", [0.099, 0.213]),
            "intercept": ("gas", [2e-12, 1e-12]),
        },
        coords={"gas": ["O2", "CO2"]},
    )
    volume = particle_volume()
    return {
        "dems_ion_currents": dems_plots.ion_currents(ms, ec, logy=False),
        "dems_flux_vs_time": dems_plots.flux_vs_time(_ramp_flux(flux())),
        "dems_flux_vs_potential": dems_plots.flux_vs_potential(_ramp_flux(flux()), ONSETS),
        "dems_calibration_fit": dems_plots.calibration_fit(calibration),
        "dems_gas_per_cycle": dems_plots.cumulative_gas(_ramp_flux(flux())),
        "tofsims_depth_profile": tofsims_plots.depth_profile(
            profile(), interfaces={"CEI/NMC": 40.0}
        ),
        "tofsims_rgb_overlay": tofsims_plots.rgb_overlay(
            volume, ["C2HO-", "LiF2-", "PO2-"], scans=12
        ),
        "tofsims_thickness_map": tofsims_plots.thickness_map(_thickness_field(thickness())),
    }


def _ramp_flux(flux):
    """Make the synthetic flux rise above the onsets so the figure looks like a measurement."""
    import numpy as np
    import xarray as xr

    onset = xr.DataArray([4.39, 4.05], dims="gas", coords={"gas": ["O2", "CO2"]})
    rising = np.maximum(flux["potential"] - onset, 0) * 5e-9 + 1e-11
    return (flux * 0 + rising).transpose("gas", "time").assign_attrs(flux.attrs)


def _thickness_field(template):
    import numpy as np

    y, x = np.meshgrid(template["y"], template["x"], indexing="ij")
    field = 8 + 3 * np.sin(x / 4.0) * np.cos(y / 5.0) + 0.05 * x
    field[template.isnull().values] = np.nan
    return template.copy(data=field)


def free_port() -> int:
    """Return a TCP port that is free on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def real_result_screenshots(browser, tmp: Path) -> None:
    """Screenshots of the reports, figures and served views of the example study's results."""
    from pipelines.cli import cli
    from pipelines.example_study import StudySize, write_example_study

    manifest = write_example_study(tmp / "study", size=StudySize(pixels=16), seed=3)
    out = tmp / "out"
    cli.main(["batch", str(manifest), "-o", str(out), "--workers", "2"], standalone_mode=False)
    raw = manifest.parent / "raw" / "pristine-dems"
    cli.main(
        [
            "dems", "process", str(raw / "operando.asc"),
            "--ec", str(raw / "operando_01_GCPL_C01.mpt"),
            "--calibration", str(out / "pristine-dems" / "calibration.json"),
            "-o", str(tmp / "run.zarr"), "--summary", str(tmp / "run.json"),
            "--png", str(IMAGES / "report_dems_process_figure.png"), "--overwrite",
        ],
        standalone_mode=False,
    )  # fmt: skip
    cli.main(
        [
            "tofsims", "cei", str(out / "modified-sims" / "volume.zarr"),
            "--sputter-rate", "0.05", "--marker", "LiF2-",
            "--summary", str(tmp / "cei.json"),
            "--png", str(IMAGES / "report_tofsims_cei_figure.png"), "--overwrite",
        ],
        standalone_mode=False,
    )  # fmt: skip
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    for experiment, name in (("pristine-dems", "dems_process"), ("modified-sims", "tofsims_cei")):
        page.goto((out / experiment / "report.html").as_uri())
        page.wait_for_selector("canvas")
        page.wait_for_timeout(1500)
        target = IMAGES / f"report_{name}.png"
        page.screenshot(path=target, full_page=True)
        print("wrote", target)
    compare_screenshots(page, out, tmp / "compare")
    served_batch_screenshots(page, out)
    page.close()


def compare_screenshots(page, out: Path, figdir: Path) -> None:
    """``operando compare`` on the batch: its page and three of its print figures."""
    import shutil

    from pipelines.cli import cli

    cli.main(["compare", str(out), "-o", str(figdir), "--dpi", "300"], standalone_mode=False)
    page.goto((figdir / "index.html").as_uri())
    page.wait_for_selector("canvas")
    page.wait_for_timeout(2500)
    page.screenshot(path=IMAGES / "compare_page.png", full_page=True)
    print("wrote", IMAGES / "compare_page.png")
    for name in ("dems_flux_vs_potential", "tofsims_depth_profiles", "tofsims_cei_maps",
                 "tofsims_3d_LiF2-"):  # fmt: skip
        target = IMAGES / f"compare_{name.replace('-', '')}.png"
        shutil.copy(figdir / f"{name}_175mm.png", target)
        print("wrote", target)


def served_batch_screenshots(page, out: Path) -> None:
    """``operando serve`` on the batch folder: a DEMS result, a CEI map, the comparison tab."""
    from pipelines.server import serve

    port = free_port()
    server = serve([out], port=port, threaded=True)
    try:
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_selector("canvas", timeout=60_000)
        page.wait_for_timeout(2000)
        page.screenshot(path=IMAGES / "serve_dems_result.png")
        print("wrote", IMAGES / "serve_dems_result.png")
        name = "modified-sims (sample modified) — cei_map.nc — thickness"
        page.locator("select").first.select_option(label=name)
        page.locator("h3", has_text=name).wait_for(timeout=30_000)
        page.wait_for_timeout(2000)
        page.screenshot(path=IMAGES / "serve_cei_map.png")
        print("wrote", IMAGES / "serve_cei_map.png")
        page.get_by_text("Comparison", exact=True).click()
        page.get_by_text("Comparison by sample").wait_for(timeout=60_000)
        page.wait_for_timeout(3000)
        page.screenshot(path=IMAGES / "serve_comparison.png")
        print("wrote", IMAGES / "serve_comparison.png")
    finally:
        server.stop()


def main() -> None:
    """Write every screenshot into docs/images/."""
    real_only = "--real-only" in sys.argv[1:]
    from playwright.sync_api import sync_playwright
    from plot_data import flux_dataset, particle_volume

    from dems.plots import flux_vs_potential
    from pipelines.report import save_html, save_png
    from pipelines.server import serve

    IMAGES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=ARGS
        )
        real_result_screenshots(browser, Path(tmp))
        if real_only:
            browser.close()
            return
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        for name, view in static_views().items():
            html = save_html(view, Path(tmp) / f"{name}.html")
            page.goto(html.as_uri())
            page.wait_for_selector("canvas")
            page.wait_for_timeout(800)
            page.screenshot(path=IMAGES / f"{name}.png", full_page=False, clip=_content_box(page))
            print("wrote", IMAGES / f"{name}.png")

        store = Path(tmp) / "particles.zarr"
        particle_volume().to_zarr(store)
        flux_dataset().to_netcdf(Path(tmp) / "flux.nc")
        port = free_port()
        server = serve([store, Path(tmp) / "flux.nc"], port=port, threaded=True)
        try:
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_selector(".noUi-handle", timeout=60_000)
            page.wait_for_timeout(1500)
            page.locator(".noUi-handle").first.focus()
            for _ in range(12):
                page.keyboard.press("ArrowRight")
            page.wait_for_timeout(2500)
            page.screenshot(path=IMAGES / "serve_slice_viewer.png")
            print("wrote", IMAGES / "serve_slice_viewer.png")
            page.get_by_text("3D", exact=True).click()
            page.wait_for_timeout(8000)
            page.screenshot(path=IMAGES / "serve_volume_3d.png")
            print("wrote", IMAGES / "serve_volume_3d.png")
        finally:
            server.stop()
        browser.close()
    from plot_data import ONSETS, flux

    save_png(flux_vs_potential(_ramp_flux(flux()), ONSETS), IMAGES / "paper_flux_vs_potential.png")
    print("wrote", IMAGES / "paper_flux_vs_potential.png")


def _content_box(page) -> dict[str, float]:
    """Bounding box around everything drawn (plots and widgets), with a small margin."""
    box = page.evaluate(
        """() => { let r = {x0: 1e9, y0: 1e9, x1: 0, y1: 0}; const walk = (root) => {
             for (const el of root.querySelectorAll('canvas, .noUi-target')) {
               const b = el.getBoundingClientRect();
               if (b.width > 0) { r.x0 = Math.min(r.x0, b.left); r.y0 = Math.min(r.y0, b.top);
                                  r.x1 = Math.max(r.x1, b.right); r.y1 = Math.max(r.y1, b.bottom); }
             }
             for (const el of root.querySelectorAll('*')) if (el.shadowRoot) walk(el.shadowRoot);
           }; walk(document); return r; }"""
    )
    return {
        "x": max(box["x0"] - 10, 0),
        "y": max(box["y0"] - 30, 0),
        "width": box["x1"] - box["x0"] + 60,
        "height": box["y1"] - box["y0"] + 40,
    }


if __name__ == "__main__":
    main()
