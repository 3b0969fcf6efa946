"""``operando compare`` on the example batch, and the comparison functions on known data."""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

from dems.palette import gas_colour
from pipelines.atomic import MARKER
from pipelines.cli import cli
from pipelines.compare import FIGURE_WIDTHS_MM, CompareOptions, load_comparison
from pipelines.results import ResultsFolderError, find_results, group_results
from tests.example_results import example_batch
from tofsims.comparison import detected, normalised
from tofsims.palette import fragment_colour

pytestmark = pytest.mark.timeout(900)

FIGURES = (
    "dems_flux_vs_potential",
    "dems_gas_per_cycle",
    "tofsims_depth_profiles",
    "tofsims_cei_maps",
    "tofsims_3d_LiF2-",
)


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    run = example_batch(tmp_path_factory)
    assert run.exit_code == 0, run.output
    return run


@pytest.fixture(scope="module")
def compared(batch, tmp_path_factory):
    figdir = tmp_path_factory.mktemp("compare") / "figures"
    result = CliRunner().invoke(cli, ["compare", str(batch.outdir), "-o", str(figdir)])
    assert result.exit_code == 0, result.output
    return figdir, result.output


# --- file metadata --------------------------------------------------------------------------------


def png_metadata(path: Path) -> tuple[int, int, float]:
    """Width and height (pixels) and resolution (dots per inch) from the PNG chunks."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    at = data.index(b"pHYs")
    per_metre_x, _, unit = struct.unpack(">IIB", data[at + 4 : at + 13])
    assert unit == 1  # metres
    return width, height, per_metre_x * 0.0254


def svg_width_mm(path: Path) -> float:
    head = path.read_text(encoding="utf-8")[:2000]
    points = float(re.search(r'<svg[^>]*\swidth="([\d.]+)pt"', head, re.DOTALL)[1])
    return points * 25.4 / 72


def pdf_width_mm(path: Path) -> float:
    data = path.read_bytes()
    assert data.startswith(b"%PDF")
    box = re.search(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", data)
    return float(box[1]) * 25.4 / 72


def test_every_figure_in_png_svg_pdf_at_both_widths(compared):
    figdir, output = compared
    for name in FIGURES:
        for width in FIGURE_WIDTHS_MM:
            stem = figdir / f"{name}_{width}mm"
            pixels, _, dpi = png_metadata(stem.with_suffix(".png"))
            assert dpi == pytest.approx(600, abs=1)
            assert pixels / dpi * 25.4 == pytest.approx(width, abs=1.0)  # printed width
            assert pixels >= width / 25.4 * 300  # ≥ 300 dpi at the column width
            assert svg_width_mm(stem.with_suffix(".svg")) == pytest.approx(width, abs=0.5)
            assert pdf_width_mm(stem.with_suffix(".pdf")) == pytest.approx(width, abs=0.5)
            assert f"wrote {stem}.pdf" in output
    page = (figdir / "index.html").read_text(encoding="utf-8")
    assert not re.search(r"<script[^>]*\ssrc=", page)  # one self-contained, offline page
    assert "data:image/png;base64" in page or "image/png" in page  # the 3D render


def test_fonts_stay_text_in_vector_figures(compared):
    figdir, _ = compared
    svg = (figdir / "dems_flux_vs_potential_85mm.svg").read_text(encoding="utf-8")
    assert "<text" in svg and "font-size:" in svg
    sizes = {float(s) for s in re.findall(r"font-size:\s*([\d.]+)px", svg)}
    assert sizes and min(sizes) >= 6 * 0.99 * 1.0  # ≥ 6 pt at print size (1 px = 1 pt here)


# --- what is drawn --------------------------------------------------------------------------------


def test_each_gas_onset_line_has_the_gas_colour(batch):
    from matplotlib.colors import to_hex

    from dems.figures import flux_comparison_figure

    comparison = load_comparison(batch.outdir, CompareOptions())
    assert list(comparison.fluxes) == ["pristine", "modified"]
    figure = flux_comparison_figure(comparison.fluxes, comparison.onsets, width_mm=175)
    checked = 0
    for axes in figure.axes:
        gas = axes.get_ylabel().split()[0]
        onsets = {g: o[gas] for g, o in comparison.onsets.items() if o[gas]["potential_V"]}
        for line in axes.get_lines():
            x = np.unique(line.get_xdata())
            if x.size == 1 and any(x[0] == o["potential_V"] for o in onsets.values()):
                assert to_hex(line.get_color()) == gas_colour(gas).lower(), gas
                checked += 1
        legend = [t.get_text() for t in axes.get_legend().get_texts()]
        assert any(t.startswith("pristine") for t in legend)
        assert any(t.startswith("modified") for t in legend)
    # O2 (pristine only), CO2 (both samples)
    assert checked == 3


@pytest.mark.parametrize("width", FIGURE_WIDTHS_MM)
def test_legends_stay_on_the_figure_and_off_every_panel(batch, width):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from pipelines.compare import comparison_figures

    options = CompareOptions()
    comparison = load_comparison(batch.outdir, options)
    figures = comparison_figures(comparison, options, width)
    for name in ("dems_flux_vs_potential", "tofsims_depth_profiles"):
        figure = figures[name]()
        renderer = FigureCanvasAgg(figure).get_renderer()
        figure.draw_without_rendering()
        page = figure.bbox
        panels = [axes.get_window_extent(renderer) for axes in figure.axes]
        legends = [axes.get_legend() for axes in figure.axes if axes.get_legend()]
        assert len(legends) == len(figure.axes), name
        for legend in legends:
            box = legend.get_window_extent(renderer)
            inside = page.x0 - 1 <= box.x0 and box.x1 <= page.x1 + 1 and page.y0 - 1 <= box.y0
            assert inside and box.y1 <= page.y1 + 1, (name, box, page)  # nothing cut off
            assert not any(box.overlaps(panel) for panel in panels), (name, width)


def test_units_and_groups_are_shared(batch):
    comparison = load_comparison(batch.outdir, CompareOptions())
    units = {str(f.attrs["units"]) for f in comparison.fluxes.values()}
    assert units == {"mol/(s·g)"}  # both masses known: per gram, one unit
    assert comparison.amount_unit == "mol/g"
    assert set(comparison.profiles) == set(comparison.maps) == {"pristine", "modified"}
    for cei_map in comparison.maps.values():
        assert cei_map.attrs["pixel_size_um"] > 0


def test_absent_fragment_is_said_to_be_absent_on_the_page(batch):
    import holoviews as hv

    from tofsims.comparison import profile_comparison

    comparison = load_comparison(batch.outdir, CompareOptions())
    overlay = profile_comparison(comparison.profiles, comparison.summaries, "CeO2-")
    labels = [c.label for c in overlay if isinstance(c, hv.Curve)]
    assert "pristine: CeO2- not detected" in labels
    drawn = [c for c in overlay if isinstance(c, hv.Curve) and c.label.startswith("modified (")]
    assert len(drawn) == 1 and np.nanmax(drawn[0].dimension_values(1)) == pytest.approx(1, 0.1)
    colour = hv.Store.lookup_options("bokeh", drawn[0], "style").kwargs["color"]
    assert colour == fragment_colour("CeO2-")


def test_group_by_a_label_that_is_missing_is_a_clear_error(batch, tmp_path):
    result = CliRunner().invoke(
        cli, ["compare", str(batch.outdir), "--by", "coating", "-o", str(tmp_path / "f")]
    )
    assert result.exit_code == 1
    assert "label 'coating' missing" in result.output and "sample" in result.output
    assert len(result.output.strip().splitlines()) == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(cli, ["compare", str(empty), "-o", str(tmp_path / "g")])
    assert result.exit_code == 1 and "no finished experiment" in result.output


def test_results_are_found_in_table_order_and_grouped(batch):
    results = find_results(batch.outdir)
    assert [r.name for r in results] == [
        "pristine-dems",
        "modified-dems",
        "pristine-sims",
        "modified-sims",
    ]
    groups = group_results(results, "sample")
    assert {g: [r.kind for r in rs] for g, rs in groups.items()} == {
        "pristine": ["dems", "tofsims"],
        "modified": ["dems", "tofsims"],
    }
    with pytest.raises(ResultsFolderError, match="cycle"):
        group_results(results, "cycle")  # the TOF-SIMS experiments have no cycle label


# --- where compare may write ---------------------------------------------------------------------


def _compare(outdir: Path, figdir: Path, *extra: str):
    return CliRunner().invoke(cli, ["compare", str(outdir), "-o", str(figdir), *extra])


def test_figdir_is_marked_and_replaced_only_with_overwrite(batch, compared, monkeypatch):
    figdir, _ = compared
    assert (figdir / MARKER).is_file()  # a folder operando wrote
    before = {p.name: p.stat().st_mtime_ns for p in figdir.iterdir()}
    refused = _compare(batch.outdir, figdir)
    assert refused.exit_code == 2
    assert "exists (add --overwrite to replace it)" in refused.output
    # with --overwrite, a run that fails half-way publishes nothing: the old set stays whole
    import pipelines.report

    calls = []
    save_figure = pipelines.report.save_figure

    def failing(figure, path, **keywords):
        calls.append(path)
        if len(calls) == 4:
            raise OSError("disk full")
        return save_figure(figure, path, **keywords)

    monkeypatch.setattr(pipelines.report, "save_figure", failing)
    failed = _compare(batch.outdir, figdir, "--overwrite")
    assert failed.exit_code != 0 and len(calls) == 4
    assert {p.name: p.stat().st_mtime_ns for p in figdir.iterdir()} == before
    leftovers = [p.name for p in figdir.parent.iterdir() if p.name.startswith(".")]
    assert leftovers == [], leftovers


@pytest.mark.parametrize("where", ["results", "experiment", "inside-experiment"])
def test_figdir_never_points_at_the_results_it_reads(batch, where):
    figdir = {
        "results": batch.outdir,
        "experiment": batch.outdir / "pristine-dems",
        "inside-experiment": batch.outdir / "modified-sims" / "figures",
    }[where]
    before = sorted(p.relative_to(batch.outdir) for p in batch.outdir.rglob("*"))
    result = _compare(batch.outdir, figdir, "--overwrite")
    assert result.exit_code == 2
    assert "the input" in result.output and "inputs are never overwritten" in result.output
    assert sorted(p.relative_to(batch.outdir) for p in batch.outdir.rglob("*")) == before


def test_a_users_folder_is_never_replaced(batch, tmp_path):
    figdir = tmp_path / "mine"
    figdir.mkdir()
    (figdir / "notes.txt").write_text("keep me")
    result = _compare(batch.outdir, figdir, "--overwrite")
    assert result.exit_code == 2 and "operando did not write" in result.output
    assert [p.name for p in figdir.iterdir()] == ["notes.txt"]
    assert (figdir / "notes.txt").read_text() == "keep me"


# --- the comparison functions on known data -------------------------------------------------------


def _profiles(strength: dict[str, float]) -> dict[str, xr.DataArray]:
    """Two groups, one fragment: a Gaussian peak of the given height over a flat background."""
    scans = np.arange(100)
    peak = np.exp(-0.5 * ((scans - 40) / 5) ** 2)
    return {
        group: xr.DataArray(
            [height * peak + 0.2],
            dims=("fragment", "scan"),
            coords={"fragment": ["CeO2-"], "sputter_time": ("scan", scans * 2.0)},
        )
        for group, height in strength.items()
    }


@pytest.mark.parametrize(("weak", "found"), [(50.0, True), (1.0, False)])
def test_detection_is_relative_to_the_strongest_group(weak, found):
    verdict = detected(_profiles({"modified": 100.0, "pristine": weak}), absent_fraction=0.05)
    assert verdict == {"modified": {"CeO2-": True}, "pristine": {"CeO2-": found}}


def test_normalised_profiles_peak_at_one():
    profile = _profiles({"a": 30.0})["a"]
    values = normalised(profile).sel(fragment="CeO2-").values
    # divided by the peak of the 5-scan running mean (one noisy scan is not the maximum)
    assert np.convolve(values, np.ones(5) / 5, mode="valid").max() == pytest.approx(1.0)
    assert int(values.argmax()) == 40


def test_crc_of_a_name_gives_a_stable_fallback_colour():
    from operando_core.palette import NamedPalette

    palette = NamedPalette({"O2": "#0072B2"}, ("#111111", "#222222", "#333333"))
    assert palette.colour("O2") == "#0072B2"
    expected = ("#111111", "#222222", "#333333")[zlib.crc32(b"Xe") % 3]
    assert palette.colour("Xe") == expected == palette.colour("Xe")
