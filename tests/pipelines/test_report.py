import os
import re
from pathlib import Path

import holoviews as hv
import numpy as np
import pytest

from dems.plots import flux_vs_potential
from pipelines.report import ViewExportError, save_html, save_png
from tests.plot_data import ONSETS, flux, volume
from tofsims.plots import slice_holomap, slice_viewer, volume_3d

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_html_is_self_contained_with_embedded_slider_states(tmp_path):
    out = save_html(flux_vs_potential(flux(), ONSETS), tmp_path / "flux.html", title="Run 12")
    text = out.read_text(encoding="utf-8")
    assert "<title>Run 12</title>" in text
    # BokehJS and Panel inlined: no script or stylesheet is fetched from anywhere
    assert not re.search(r"<script[^>]*\ssrc=", text)
    assert not re.search(r"<link[^>]*stylesheet[^>]*href=\"http", text)
    assert len(text) > 1_000_000  # the inlined BokehJS bundle
    assert text.count("O2 onset") >= 1
    assert os.stat(out).st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["flux.html"]  # no temporary left behind


def test_html_refuses_live_only_views_and_leaves_no_file(tmp_path):
    with pytest.raises(ViewExportError, match="live server"):
        save_html(slice_viewer(volume(), "C2HO-"), tmp_path / "slices.html")
    assert list(tmp_path.iterdir()) == []


def test_png_through_matplotlib(tmp_path):
    out = save_png(slice_holomap(volume(), "C2HO-", max_frames=3), tmp_path / "fig.png", dpi=50)
    assert out.read_bytes()[:8] == PNG_MAGIC
    assert [p.name for p in tmp_path.iterdir()] == ["fig.png"]


def test_png_refuses_panel_and_dynamic_views(tmp_path):
    with pytest.raises(ViewExportError, match="only static HoloViews"):
        save_png(volume_3d(volume(), "C2HO-"), tmp_path / "v.png")
    with pytest.raises(ViewExportError):
        save_png(hv.DynamicMap(lambda: hv.Curve([1, 2])), tmp_path / "d.png")
    assert list(tmp_path.iterdir()) == []


def test_failed_render_leaves_no_partial_file(tmp_path):
    broken = hv.Curve([1, 2]).opts(color="not-a-colour", backend="matplotlib")
    with pytest.raises(Exception):  # noqa: B017 - whatever matplotlib raises
        save_png(broken, tmp_path / "bad.png")
    assert list(tmp_path.iterdir()) == []


def test_existing_output_replaced_atomically(tmp_path):
    target = tmp_path / "fig.png"
    target.write_bytes(b"old")
    save_png(hv.Curve([1, 2, 3]), target, dpi=30)
    assert target.read_bytes()[:8] == PNG_MAGIC


def test_export_options_on_a_click_command(tmp_path):
    import click
    from click.testing import CliRunner

    from pipelines.report import export_options, write_exports

    @click.command()
    @export_options
    def process(html, png):
        view = flux_vs_potential(flux(), ONSETS)
        for path in write_exports(view, html=html, png=png, title="run"):
            click.echo(path.name)

    result = CliRunner().invoke(
        process, ["--html", str(tmp_path / "r.html"), "--png", str(tmp_path / "r.png")]
    )
    assert result.exit_code == 0, result.output
    assert result.output.split() == ["r.html", "r.png"]
    assert (tmp_path / "r.png").read_bytes()[:8] == PNG_MAGIC
    assert "--html FILE" in CliRunner().invoke(process, ["--help"]).output
    assert CliRunner().invoke(process, []).output == ""  # nothing asked, nothing written


def test_pages_of_a_batch_share_one_copy_of_the_libraries(tmp_path):
    shared = tmp_path / "_static"
    pages = []
    for index in range(5):
        page = tmp_path / f"experiment-{index}" / "report.html"
        page.parent.mkdir()
        curve = hv.Curve(np.random.default_rng(index).random(50), "time", "flux")
        pages.append(save_html(curve, page, title=f"run {index}", shared_scripts=shared))
    libraries = sorted(p.name for p in shared.glob("*.js"))
    assert any(name.startswith("bokeh-") for name in libraries)
    assert any(name.startswith("panel-") for name in libraries)
    library_bytes = sum(p.stat().st_size for p in shared.glob("*.js"))
    from pipelines.atomic import is_ours

    assert is_ours(shared)  # marked: a later batch may write into it, a user's never
    assert library_bytes > 2_000_000  # BokehJS and Panel, written once for all five pages
    for page in pages:
        text = page.read_text(encoding="utf-8")
        sources = re.findall(r'<script[^>]*\ssrc="([^"]+)"', text)
        assert sorted(Path(s).name for s in sources) == libraries
        assert all(s.startswith("../_static/") for s in sources)  # relative: works offline
        inline = sum(len(c) for c in re.findall(r"<script[^>]*>(.*?)</script>", text, re.DOTALL))
        assert inline < 50_000 and page.stat().st_size < 1_000_000
    # a hundred such pages: < 10 MB of JavaScript (libraries once + each page's own code)
    own = max(
        sum(len(c) for c in re.findall(r'<script type="text/javascript">(.*?)</script>',
                                       p.read_text(encoding="utf-8"), re.DOTALL))
        for p in pages
    )  # fmt: skip
    assert library_bytes + 100 * own < 10_000_000
