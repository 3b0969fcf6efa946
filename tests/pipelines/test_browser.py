"""Views in a real browser: Debian's chromium driven by Playwright (marker ``browser``)."""

import hashlib
import re
import socket
import time
from pathlib import Path

import pytest
from playwright import sync_api

from tests.plot_data import (
    ONSETS,
    flux,
    flux_dataset,
    ms_and_ec,
    particle_volume,
    profile,
    thickness,
)

pytestmark = pytest.mark.browser
CHROMIUM = Path("/usr/bin/chromium")

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
# Console messages that are not about our pages (software GL without a GPU).
IGNORED_CONSOLE = re.compile(r"GL Driver Message|GPU stall")


@pytest.fixture(scope="module")
def playwright():
    # a missing browser fails loudly: these tests are the only check of what users see
    assert CHROMIUM.exists(), (
        f"{CHROMIUM} is missing: `apt-get install chromium`, or deselect with -m 'not browser'"
    )
    with sync_api.sync_playwright() as running:
        yield running


@pytest.fixture(scope="module")
def browser(playwright):
    chromium = playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
    )
    yield chromium
    chromium.close()


class Page:
    """A page that records errors and, when offline, every request leaving file://."""

    def __init__(self, browser, offline):
        self.page = browser.new_page(viewport={"width": 1300, "height": 1000})
        self.errors = []
        self.requests = []
        self.page.on("pageerror", lambda err: self.errors.append(f"pageerror: {err}"))
        self.page.on("console", self._console)
        if offline:
            self.page.route("**/*", self._only_files)

    def _console(self, message):
        if message.type == "error" and not IGNORED_CONSOLE.search(message.text):
            self.errors.append(f"console: {message.text}")

    def _only_files(self, route):
        if route.request.url.startswith("file:"):
            route.continue_()
        else:
            self.requests.append(route.request.url)
            route.abort()

    def open(self, url):
        self.page.goto(url)
        self.page.wait_for_selector("canvas", timeout=60_000)
        self.page.wait_for_timeout(500)
        return self.page


@pytest.fixture
def page(browser):
    pages = []

    def make(offline=True):
        pages.append(Page(browser, offline))
        return pages[-1]

    yield make
    for made in pages:
        made.page.close()


def canvas_hash(page, index=0):
    box = page.locator("canvas").nth(index).bounding_box()
    return hashlib.sha1(page.screenshot(clip=box)).hexdigest()


def wait_for_change(page, before, index=0, timeout_s=30.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if canvas_hash(page, index) != before:
            return True
        page.wait_for_timeout(100)
    return False


def page_text(page):
    """All text of the page, including inside the shadow roots Panel and Bokeh render into."""
    return page.evaluate(
        """() => { const parts = []; const walk = (root) => {
             for (const el of root.querySelectorAll('*')) {
               for (const node of el.childNodes) {
                 if (node.nodeType === Node.TEXT_NODE) parts.push(node.textContent);
               }
               if (el.shadowRoot) walk(el.shadowRoot);
             } }; walk(document); return parts.join(''); }"""
    )


def slider_label(page):
    """Text of the scan slider's label, e.g. ``"Scan: 29"``."""
    match = re.search(r"Scan:\s*\d+", page_text(page))
    return match[0] if match else ""


def tooltip_text(page):
    return page.evaluate(
        """() => { const found = []; const walk = (root) => {
             for (const el of root.querySelectorAll('*')) {
               if (el.classList && el.classList.contains('bk-tooltip-content')) {
                 found.push(el.textContent);
               }
               if (el.shadowRoot) walk(el.shadowRoot);
             } }; walk(document); return found.join(' | '); }"""
    )


# --- exported HTML (offline) ---------------------------------------------------------------------


def exported_views():
    from dems.plots import cumulative_gas, flux_vs_potential, flux_vs_time, ion_currents
    from tofsims.plots import depth_profile, rgb_overlay, slice_holomap, thickness_map

    volume = particle_volume()
    ms, ec = ms_and_ec()
    return {
        "ion_currents": ion_currents(ms, ec),
        "flux_vs_time": flux_vs_time(flux()),
        "flux_vs_potential": flux_vs_potential(flux(), ONSETS),
        "cumulative_gas": cumulative_gas(flux()),
        "depth_profile": depth_profile(profile(), interfaces={"CEI/NMC": 40.0}),
        "slices": slice_holomap(volume, "PO2-", max_frames=10),
        "rgb": rgb_overlay(volume, ["C2HO-", "LiF2-", "PO2-"], scans=8),
        "thickness": thickness_map(thickness()),
    }


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from pipelines.report import save_html

    folder = tmp_path_factory.mktemp("html")
    return {
        name: save_html(view, folder / f"{name}.html") for name, view in exported_views().items()
    }


@pytest.mark.parametrize(
    "name",
    [
        "ion_currents",
        "flux_vs_time",
        "flux_vs_potential",
        "cumulative_gas",
        "depth_profile",
        "slices",
        "rgb",
        "thickness",
    ],
)
def test_exported_html_renders_offline_without_console_errors(page, exported, name):
    browser_page = page(offline=True)
    shown = browser_page.open(exported[name].as_uri())
    assert shown.locator("canvas").count() >= 1
    assert browser_page.errors == []
    assert browser_page.requests == []  # nothing fetched from the network


def test_exported_scan_slider_changes_the_slice(page, exported):
    shown = page().open(exported["slices"].as_uri())
    before = canvas_hash(shown)
    shown.locator(".noUi-handle").first.focus()
    shown.keyboard.press("End")
    assert wait_for_change(shown, before)
    assert slider_label(shown) == "Scan: 29"  # the last of the 10 embedded scans 0 … 29


def test_exported_cycle_slider_changes_the_frame(page, exported):
    shown = page().open(exported["flux_vs_potential"].as_uri())
    before = canvas_hash(shown)
    shown.locator(".noUi-handle").first.focus()
    shown.keyboard.press("ArrowRight")
    assert wait_for_change(shown, before)


def test_hovering_the_thickness_map_shows_the_pixel_value(page, exported):
    shown = page().open(exported["thickness"].as_uri())
    box = shown.locator("canvas").first.bounding_box()
    shown.mouse.move(box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.5)
    shown.wait_for_timeout(300)
    text = tooltip_text(shown)
    match = re.search(
        r"x \(µm\): ([\d.]+)\s*y \(µm\): ([\d.]+)\s*CEI thickness \(nm\): ([\d.]+)", text
    )
    assert match, text
    x, y, value = (float(v) for v in match.groups())
    cells = thickness()
    size = cells.attrs["pixel_size_um"]  # µm per map cell: x = (index + 0.5) · size
    expected = cells.sel(x=round(x / size - 0.5), y=round(y / size - 0.5)).item()
    assert value == pytest.approx(expected, abs=1e-3)


def test_hovering_a_depth_profile_shows_the_intensity_at_that_sputter_time(page, exported):
    shown = page().open(exported["depth_profile"].as_uri())
    box = shown.locator("canvas").first.bounding_box()
    shown.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.5)
    shown.wait_for_timeout(300)
    text = tooltip_text(shown)
    pairs = re.findall(r"Sputter time \(s\): ([\d.]+)\s*Intensity \(counts\): ([\d.]+)", text)
    assert pairs, text
    data = profile()
    for time_s, value in pairs:
        at_scan = data["intensity"].sel(scan=round(float(time_s) / 2.0)).values
        assert any(float(value) == pytest.approx(v) for v in at_scan)


# --- the served app ------------------------------------------------------------------------------


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from pipelines.server import serve

    folder = tmp_path_factory.mktemp("stores")
    particle_volume().to_zarr(folder / "particles.zarr")
    flux_dataset().to_netcdf(folder / "flux.nc")
    thickness().to_dataset(name="thickness").to_netcdf(folder / "cei.nc")
    port = free_port()
    server = serve(
        [folder / "particles.zarr", folder / "flux.nc", folder / "cei.nc"], port=port, threaded=True
    )
    yield f"http://127.0.0.1:{port}/"
    server.stop()


def dataset_title(shown):
    return shown.locator("h3").first.text_content()


def test_served_app_loads_a_result_and_switches_datasets(page, served):
    browser_page = page(offline=False)
    shown = browser_page.open(served)
    assert dataset_title(shown) == "particles.zarr — volume"
    shown.locator("select").first.select_option(label="cei.nc — thickness")
    shown.locator("h3", has_text="cei.nc — thickness").wait_for(timeout=30_000)
    shown.wait_for_selector("canvas", timeout=30_000)
    shown.locator("select").first.select_option(label="flux.nc — flux")
    shown.locator("h3", has_text="flux.nc — flux").wait_for(timeout=30_000)
    shown.wait_for_selector("canvas", timeout=30_000)
    assert dataset_title(shown) == "flux.nc — flux"
    assert browser_page.errors == []


def test_served_scan_slider_changes_the_slice(page, served):
    shown = page(offline=False).open(served)
    shown.wait_for_selector(".noUi-handle", timeout=30_000)
    shown.wait_for_timeout(1000)  # let the first slice settle before taking the reference
    before = canvas_hash(shown)
    shown.locator(".noUi-handle").first.focus()
    for _ in range(5):
        shown.keyboard.press("ArrowRight")
    deadline = time.monotonic() + 30
    while slider_label(shown) != "Scan: 5" and time.monotonic() < deadline:
        shown.wait_for_timeout(100)
    assert slider_label(shown) == "Scan: 5"
    assert wait_for_change(shown, before)


def test_served_slice_hover_and_fragment_picker(page, served):
    shown = page(offline=False).open(served)
    shown.wait_for_selector(".noUi-handle", timeout=30_000)
    shown.wait_for_timeout(1000)
    box = shown.locator("canvas").first.bounding_box()
    shown.mouse.move(box["x"] + box["width"] * 0.35, box["y"] + box["height"] * 0.45)
    shown.wait_for_timeout(300)
    text = tooltip_text(shown)
    match = re.search(
        r"x \(µm\): ([\d.]+)\s*y \(µm\): ([\d.]+)\s*Counts \(counts per pixel\): ([\d.]+)",
        text,
    )
    assert match, text
    x, y, value = (float(v) for v in match.groups())
    volume = particle_volume()
    size = 1e6 * volume.attrs["field_of_view_m"] / volume.attrs["raster_x"]  # µm per pixel
    expected = volume["counts"].sel(
        fragment="C2HO-", scan=0, x=round(x / size - 0.5), y=round(y / size - 0.5)
    )
    assert value == pytest.approx(float(expected), rel=1e-5)

    before = canvas_hash(shown)
    shown.locator("select").nth(1).select_option(label="PO2-")
    assert wait_for_change(shown, before)


def test_served_3d_view_draws_the_volume(playwright, served):
    """The VTK volume needs WebGL: a separate browser with software GL (SwiftShader)."""
    args = [a for a in CHROMIUM_ARGS if a != "--disable-gpu"] + ["--enable-unsafe-swiftshader"]
    chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=args)
    try:
        shown = chromium.new_page(viewport={"width": 1300, "height": 1000})
        shown.goto(served)
        shown.wait_for_selector(".noUi-handle", timeout=60_000)
        shown.get_by_text("3D", exact=True).click()
        # the slice tab (slider + Bokeh canvases) is gone: any canvas left is the 3D view's
        shown.wait_for_selector(".noUi-handle", state="detached", timeout=30_000)
        deadline = time.monotonic() + 60
        colours = 0
        while colours < 20 and time.monotonic() < deadline:
            shown.wait_for_timeout(500)
            colours = _colours_in_largest_canvas(shown)
        assert colours >= 20  # a rendered volume, not an empty or uniform canvas
    finally:
        chromium.close()


def _colours_in_largest_canvas(shown):
    from io import BytesIO

    import matplotlib.image

    boxes = [c.bounding_box() for c in shown.locator("canvas").all()]
    boxes = [b for b in boxes if b and b["width"] > 100]
    if not boxes:
        return 0
    box = max(boxes, key=lambda b: b["width"] * b["height"])
    pixels = matplotlib.image.imread(BytesIO(shown.screenshot(clip=box)), format="png")
    return len({tuple(p) for p in (pixels[::7, ::7, :3] * 255).astype(int).reshape(-1, 3)})


# --- the served app on real results (generated example study) ----------------------------------


@pytest.fixture(scope="module")
def served_real(tmp_path_factory):
    from pipelines.server import serve
    from tests.example_results import example_batch

    run = example_batch(tmp_path_factory)
    assert run.exit_code == 0, run.output
    port = free_port()
    server = serve(
        [
            run.outdir / "pristine-dems" / "result.zarr",
            run.outdir / "pristine-sims" / "cei_map.nc",
        ],
        port=port,
        threaded=True,
    )
    yield f"http://127.0.0.1:{port}/", run
    server.stop()


def test_served_real_dems_result_and_cei_map_switch(page, served_real):
    import xarray as xr

    url, run = served_real
    browser_page = page(offline=False)
    shown = browser_page.open(url)
    assert dataset_title(shown) == "result.zarr — result"
    text = page_text(shown)
    for tab in ("EC-MS", "Flux vs potential", "Gas per cycle", "Ion currents"):
        assert tab in text
    shown.locator("select").first.select_option(label="cei_map.nc — thickness")
    shown.locator("h3", has_text="cei_map.nc — thickness").wait_for(timeout=30_000)
    shown.wait_for_selector("canvas", timeout=30_000)
    shown.wait_for_timeout(1000)
    box = shown.locator("canvas").first.bounding_box()
    shown.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.5)
    shown.wait_for_timeout(300)
    match = re.search(
        r"x \(µm\): ([\d.]+)\s*y \(µm\): ([\d.]+)\s*CEI thickness \(nm\): ([\d.]+)",
        tooltip_text(shown),
    )
    assert match, tooltip_text(shown)
    x, y, value = (float(v) for v in match.groups())
    with xr.open_dataset(run.outdir / "pristine-sims" / "cei_map.nc") as stored:
        size = stored.attrs["pixel_size_um"]  # the lateral scale, from the field of view
        cell = stored["thickness"].sel(x=round(x / size - 0.5), y=round(y / size - 0.5))
        assert value == pytest.approx(float(cell), rel=1e-3)
    shown.locator("select").first.select_option(label="result.zarr — result")
    shown.locator("h3", has_text="result.zarr — result").wait_for(timeout=30_000)
    shown.wait_for_selector("canvas", timeout=30_000)
    assert browser_page.errors == []


# --- the comparison of a batch, and serve on a batch folder --------------------------------------


def axis_labels(shown):
    """Labels of every visible continuous axis of every Bokeh plot on the page."""
    return shown.evaluate(
        """() => { const labels = [];
             for (const doc of Bokeh.documents) for (const model of doc.all_models) {
               const name = model.constructor.__name__ || "";
               if (name.endsWith("Axis") && !name.startsWith("Categorical")
                   && model.visible !== false && model.axis_label) labels.push(model.axis_label);
             } return labels; }"""
    )


def legend_labels(shown):
    return shown.evaluate(
        """() => { const labels = [];
             for (const doc of Bokeh.documents) for (const model of doc.all_models) {
               if ((model.constructor.__name__ || "") === "LegendItem") {
                 const label = model.label; labels.push(label.value ?? label);
               }
             } return labels; }"""
    )


@pytest.fixture(scope="module")
def comparison(tmp_path_factory):
    from pipelines.compare import CompareOptions, load_comparison, write_comparison
    from tests.example_results import example_batch

    run = example_batch(tmp_path_factory)
    assert run.exit_code == 0, run.output
    options = CompareOptions(dpi=300)
    loaded = load_comparison(run.outdir, options)
    folder = tmp_path_factory.mktemp("comparison")
    write_comparison(loaded, options, folder)
    return folder / "index.html", loaded, run


def test_comparison_page_has_both_samples_in_one_legend_and_units_on_every_axis(page, comparison):
    index, _, _ = comparison
    browser_page = page(offline=True)
    shown = browser_page.open(index.as_uri())
    shown.wait_for_timeout(1500)
    assert browser_page.errors == [] and browser_page.requests == []
    legends = legend_labels(shown)
    o2 = [label for label in legends if label.startswith(("pristine: onset", "modified: no"))]
    assert {label.split(":")[0] for label in o2} == {"pristine", "modified"}
    assert "pristine: CeO2- not detected" in legends
    labels = axis_labels(shown)
    assert len(labels) > 20
    assert [label for label in labels if not re.search(r"\(.+\)$", label)] == []
    assert "Potential (V vs Li/Li⁺)" in labels and "Depth (nm)" in labels
    assert "Sputter time (s)" in labels  # the second axis of the depth profiles
    assert "x (µm)" in labels and "CEI thickness (nm)" in labels


def test_hovering_the_comparison_shows_the_data(page, comparison):
    index, loaded, _ = comparison
    shown = page(offline=True).open(index.as_uri())
    shown.wait_for_timeout(1500)
    box = shown.locator("canvas").first.bounding_box()  # O2 flux against potential
    shown.mouse.move(box["x"] + box["width"] * 0.55, box["y"] + box["height"] * 0.5)
    shown.wait_for_timeout(500)
    text = tooltip_text(shown)
    rows = re.findall(
        r"group: (\w+)\s*Potential \(V vs Li/Li⁺\): ([\d.]+)\s*O2 flux \((\S+)\): (-?[\d.e-]+)",
        text,
    )
    assert {group for group, *_ in rows} == {"pristine", "modified"}, text
    for group, potential, unit, value in rows:
        flux = loaded.fluxes[group].sel(gas="O2")
        assert unit == "nmol/(s·g)"
        at = abs(flux["potential"].values - float(potential)) < 5e-4
        shown_values = flux.values[at] * 1e9
        assert shown_values.size and min(abs(shown_values - float(value))) < 1e-3 * max(
            1.0, abs(float(value))
        )


@pytest.fixture(scope="module")
def served_batch(tmp_path_factory):
    from pipelines.server import serve
    from tests.example_results import example_batch

    run = example_batch(tmp_path_factory)
    assert run.exit_code == 0, run.output
    port = free_port()
    server = serve([run.outdir], port=port, threaded=True)
    yield f"http://127.0.0.1:{port}/", run
    server.stop()


def test_serve_on_a_batch_folder_lists_and_switches_every_experiment(page, served_batch):
    url, _ = served_batch
    browser_page = page(offline=False)
    shown = browser_page.open(url)
    options = shown.locator("select").first.locator("option").all_text_contents()
    assert options == [
        "pristine-dems (sample pristine, cycle 1) — result.zarr — result",
        "modified-dems (sample modified, cycle 1) — result.zarr — result",
        "pristine-sims (sample pristine) — volume.zarr — volume",
        "pristine-sims (sample pristine) — cei_map.nc — thickness",
        "modified-sims (sample modified) — volume.zarr — volume",
        "modified-sims (sample modified) — cei_map.nc — thickness",
    ]
    for name in (options[1], options[5], options[0]):
        shown.locator("select").first.select_option(label=name)
        shown.locator("h3", has_text=name).wait_for(timeout=30_000)
        shown.wait_for_selector("canvas", timeout=30_000)
    shown.get_by_text("Comparison", exact=True).click()
    shown.get_by_text("Comparison by sample: pristine, modified").wait_for(timeout=60_000)
    shown.wait_for_timeout(2000)
    assert "pristine: CeO2- not detected" in legend_labels(shown)
    assert browser_page.errors == []
