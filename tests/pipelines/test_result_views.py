"""Views wired to the real results: adapters, --html/--png of the commands, batch reports."""

from __future__ import annotations

import json
import re
import shutil
import struct
import warnings
from pathlib import Path

import holoviews as hv
import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

from dems import plots as dems_plots
from dems import result_views as dems_result_views
from pipelines.cli import cli
from pipelines.progress import QUIET_KEY, progress_bar
from tests.example_results import example_batch
from tests.plot_data import flux
from tofsims import cei_views

pytestmark = pytest.mark.timeout(900)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SURFACELAB = (
    Path(__file__).parents[1]
    / "data/tofsims/uhasselt_surfacelab73_depth_profiles/I241213h_M_PCBM-ref_2D_neg-B1 - NF.txt"
)
PROGRESS_TEXT = re.compile(r"\d+% Completed")


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    run = example_batch(tmp_path_factory)
    assert run.exit_code == 0, run.output
    return run


@pytest.fixture(scope="module")
def dems_result(batch):
    folder = batch.outdir / "pristine-dems"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a consolidated store opens without a warning
        result = xr.open_zarr(folder / "result.zarr")
    return result, json.loads((folder / "summary.json").read_text())


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def assert_offline_html(path: Path, *, shared: bool = False) -> str:
    """Check a page needs no network; return its text with JSON escapes decoded.

    ``shared``: the libraries are loaded from the batch's ``_static`` folder by a relative
    path (each file exists), and the page itself is under 1 MB; else they are inlined.
    """
    text = path.read_text(encoding="utf-8")
    sources = re.findall(r"<script[^>]*\ssrc=\"([^\"]+)\"", text)
    assert not re.search(r"<link[^>]*href=\"https?:", text)
    assert "cdn.bokeh.org" not in text and "cdn.holoviz.org" not in text
    if shared:
        assert sources and all(s.startswith("../_static/") for s in sources)
        assert all((path.parent / s).is_file() for s in sources)
        assert len(text.encode("utf-8")) < 1_000_000
    else:
        assert not sources
        assert len(text) > 1_000_000  # BokehJS inlined
    return re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m[1], 16)), text)


def onset_positions(overlay) -> list[float]:
    """Potentials of the onset lines of one frame of flux against potential."""
    return sorted(
        round(float(c.dimension_values(0)[0]), 6)
        for c in overlay
        if isinstance(c, hv.Curve) and " onset " in c.label
    )


def holomap_of(layout) -> hv.HoloMap:
    return next(panel for panel in layout if isinstance(panel, hv.HoloMap))


# --- adapters ------------------------------------------------------------------------------------


def test_result_flux_carries_potential_cycle_and_charge(dems_result):
    result, _ = dems_result
    flux_view = dems_result_views.result_flux(result)
    assert flux_view.dims == ("gas", "time")
    assert flux_view.chunks is not None  # the flux itself is not read
    cycle = result["cycle"].values
    kept = np.isfinite(cycle)
    assert flux_view.sizes["time"] == kept.sum() > 0
    np.testing.assert_array_equal(flux_view["potential"], result["potential"].values[kept])
    charging = (result["direction"].values > 0) & (result["current"].values > 0)
    np.testing.assert_array_equal(flux_view["charge"], charging[kept])
    assert flux_view["cycle"].dtype.kind == "i"
    np.testing.assert_array_equal(flux_view.values, result["flux"].values[:, kept])


def test_result_flux_keeps_ec_times_and_marks_charge_only_while_charging():
    import xarray as xr

    nan = np.nan
    result = xr.Dataset(
        {
            "flux": (("gas", "time"), np.arange(12.0).reshape(2, 6)),
            "potential": ("time", [nan, 3.8, 4.2, 4.6, 4.5, 3.5]),
            "current": ("time", [nan, 0.2, 0.2, 0.05, 0.0, -0.2]),
            "cycle": ("time", [nan, 1.0, 1.0, 1.0, 1.0, 1.0]),
            "direction": ("time", [nan, 1.0, 1.0, 1.0, 1.0, -1.0]),
        },
        coords={"gas": ["O2", "CO2"], "time": np.arange(6.0) * 10},
    )
    flux = dems_result_views.result_flux(result)
    assert list(flux["time"].values) == [10.0, 20.0, 30.0, 40.0, 50.0]  # no EC before 10 s
    assert list(flux["charge"].values) == [True, True, True, False, False]  # rest, discharge
    assert flux["cycle"].dtype.kind == "i"
    assert list(flux["potential"].values) == [3.8, 4.2, 4.6, 4.5, 3.5]
    assert list(flux.sel(gas="CO2").values) == [7.0, 8.0, 9.0, 10.0, 11.0]


def test_result_flux_needs_a_calibrated_result(dems_result):
    result, _ = dems_result
    with pytest.raises(KeyError, match="without --calibration"):
        dems_result_views.result_flux(result.drop_vars("flux"))


def test_onsets_from_summary_match_the_summary(dems_result):
    _, summary = dems_result
    onsets, per_cycle = dems_result_views.onsets_from_summary(summary)
    for gas, entry in summary["onsets"].items():
        assert onsets[gas]["potential_V"] == entry["potential_V"]
        assert onsets[gas]["uncertainty_V"] == entry["uncertainty_V"]
    first = summary["cycles"][0]
    assert per_cycle[first["cycle"]]["O2"]["potential_V"] == first["onsets"]["O2"]["potential_V"]


def _interface_lines(overlay):
    """Positions of the interface markers: vertical grey curves named in the legend."""
    lines = [c for c in overlay if isinstance(c, hv.Curve) and c.label.startswith("CEI")]
    return sorted({round(float(x), 6) for c in lines for x in c.dimension_values(0)})


def test_each_cycle_frame_draws_its_own_onsets():
    one = {"O2": {"potential_V": 4.1, "uncertainty_V": 0.01}}
    two = {"O2": {"potential_V": 4.3, "uncertainty_V": 0.02}}
    view = dems_plots.flux_vs_potential(flux(), {}, cycle_onsets={1: one, 2: two})
    assert onset_positions(view[1]) == [4.1]
    assert onset_positions(view[2]) == [4.3]
    fallback = dems_plots.flux_vs_potential(flux(), one, cycle_onsets={2: two})
    assert onset_positions(fallback[1]) == [4.1]


def test_process_report_shows_onsets_of_the_summary(dems_result):
    result, summary = dems_result
    layout = dems_result_views.process_report(result, summary)
    against_potential = holomap_of(layout)
    found = {
        round(summary["onsets"][g]["potential_V"], 6)
        for g in summary["onsets"]
        if summary["onsets"][g]["potential_V"] is not None
    }
    assert found and found <= set(onset_positions(against_potential.last))
    # per gram (the mass is known) and on the recorded reference electrode
    curve = against_potential.last.Curve.O2
    assert curve.vdims[0].unit.endswith("mol/(s·g)")
    assert curve.kdims[0].unit == "V vs Li/Li⁺"
    # the charge view holds no rest: every drawn sample has an anodic current
    charge = dems_result_views.result_flux(result)["charge"]
    ec = result[["current", "direction"]].sel(time=charge["time"]).load()
    assert charge.any() and (ec["current"].values[charge.values] > 0).all()
    rests = (ec["current"].values == 0) & (ec["direction"].values > 0)
    assert rests.any() and not charge.values[rests].any()  # the rest after the hold is out
    # the bars show the summary's amounts with their ±
    bar_overlays = [p for p in layout if isinstance(p, hv.Overlay) and p.traverse(
        lambda x: x, [hv.ErrorBars])]  # fmt: skip
    (amounts,) = bar_overlays
    value = summary["cycles"][0]["evolved"]["O2"]["umol_per_g"]
    spread = summary["cycles"][0]["evolved"]["O2"]["umol_per_g_uncertainty"]
    table = dict(zip(amounts.Bars.I.dimension_values(0), amounts.Bars.I.dimension_values(1),
                     strict=True))  # fmt: skip
    assert table["O2"] == pytest.approx(value)  # µmol/g
    assert amounts.ErrorBars.I.dimension_values(2)[0] == pytest.approx(spread)


def test_process_figure_colours_each_gas_and_its_onset_alike(dems_result):
    from matplotlib.colors import to_hex

    from dems.palette import gas_colour

    result, summary = dems_result
    figure = dems_result_views.process_report(result, summary, static=True)
    axes_a, axes_b, axes_c, axes_d = figure.axes[:4]
    lines = {line.get_label(): to_hex(line.get_color()) for line in axes_c.get_lines()}
    for gas in ("O2", "CO2"):
        onset = summary["onsets"][gas]
        label = next(name for name in lines if name.startswith(f"{gas} onset"))
        assert f"{onset['potential_V']:.3f} ± {onset['uncertainty_V']:.3f} V vs Li/Li⁺" in label
        assert lines[label] == lines[gas] == gas_colour(gas).lower()
    bars = {p.get_x(): to_hex(p.get_facecolor()) for p in axes_d.patches}
    assert sorted(bars.values()) == sorted(gas_colour(g).lower() for g in ("O2", "CO2", "CO"))
    assert axes_b.get_ylabel() == "Potential (V vs Li/Li⁺)"
    # the two time panels share their x axis: the EC-MS figure's panels line up
    assert axes_a.get_shared_x_axes().joined(axes_a, axes_b)
    assert axes_a.get_position().x0 == pytest.approx(axes_b.get_position().x0)


def test_process_report_without_calibration_shows_the_corrected_currents(dems_result):
    result, _ = dems_result
    layout = dems_result_views.process_report(result.drop_vars("flux"), None)
    curves = layout[0].traverse(lambda c: c, [hv.Curve])
    labels = {c.label for c in curves}
    assert {f"M{m:g}" for m in result["mass"].values} <= labels


def test_cei_interfaces_from_a_real_summary(batch):
    summary = json.loads((batch.outdir / "pristine-sims" / "summary.json").read_text())
    interfaces = cei_views.cei_interfaces(summary)
    mean = summary["cei_thickness_nm"]["mean"]
    crossing = summary["two_marker_crossing_nm"]["value"]
    assert sorted(interfaces.values()) == sorted([mean, crossing])
    assert any(label.startswith("CEI (LiF2-)") for label in interfaces)
    assert summary["coating_thickness_nm"] is None
    assert not any("coating" in label for label in interfaces)


def test_cei_report_of_a_volume_has_the_map_and_histogram(batch):
    from tofsims.depth import depth_constant_rate
    from tofsims.profiles import depth_profile

    folder = batch.outdir / "pristine-sims"
    volume = depth_constant_rate(xr.open_zarr(folder / "volume.zarr"), 0.05)
    summary = json.loads((folder / "summary.json").read_text())
    thickness = xr.open_dataset(folder / "cei_map.nc")["thickness"]
    layout = cei_views.cei_report(depth_profile(volume).compute(), summary, thickness)
    assert [type(p).__name__ for p in layout] == ["Overlay", "Overlay", "Image", "Histogram"]
    assert int(layout[3].data["cells"].sum()) == int(np.isfinite(thickness.values).sum())
    title = layout[2].opts.get().kwargs["title"]
    block = summary["cei_thickness_nm"]
    assert f"mean {block['mean']:.2f} ± {block['uncertainty']:.2f} nm" in title


def test_cei_report_of_a_surfacelab_profile_limits_the_curves():
    from tofsims.depth import depth_constant_rate
    from tofsims.io import open_tofsims

    profile = depth_constant_rate(open_tofsims(SURFACELAB), 0.05)
    summary = {"input": {"marker": "O2-", "bulk": "Au-"}, "cei_thickness_nm": {"mean": 0.3}}
    layout = cei_views.cei_report(profile, summary, max_peaks=5)
    assert len(layout) == 2  # log and normalised profiles, no map
    labels = [
        c.label for c in layout[0] if isinstance(c, hv.Curve) and c.label != "CEI (O2-) 0.3 nm"
    ]
    assert len(labels) == 5
    fragments = dict(zip(profile["peak_label"].values, profile["fragment"].values, strict=True))
    assert {"O2-", "Au-"} <= {fragments[label] for label in labels}
    assert _interface_lines(layout[0]) == [0.3]


# --- commands ------------------------------------------------------------------------------------


def test_dems_process_writes_html_png_and_a_consolidated_store(batch, tmp_path):
    raw = batch.manifest.parent / "raw" / "pristine-dems"
    out = tmp_path / "run"
    args = [
        "dems",
        "process",
        raw / "operando.asc",
        "--ec",
        raw / "operando_01_GCPL_C01.mpt",
        "--calibration",
        batch.outdir / "pristine-dems" / "calibration.json",
        "-o",
        out / "r.zarr",
        "--summary",
        out / "s.json",
        "--html",
        out / "r.html",
        "--png",
        out / "r.png",
    ]
    out.mkdir()
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    assert PROGRESS_TEXT.search(result.output)  # outside a batch the progress bar is drawn
    text = assert_offline_html(out / "r.html")
    summary = json.loads((out / "s.json").read_text())
    onset, spread = (summary["onsets"]["O2"][k] for k in ("potential_V", "uncertainty_V"))
    assert f"O2 onset {onset:.3f} ± {spread:.3f} V vs Li/Li⁺" in text
    evolved = summary["evolved"]["O2"]
    shown = f"{evolved['umol_per_g']:.1f} ± {evolved['umol_per_g_uncertainty']:.1f} µmol/g"
    assert re.search(rf"O2\s+onset {onset:.3f} ± {spread:.3f} V\s+evolved {shown}", result.output)
    width, height = png_size(out / "r.png")
    assert width > 1000 and height > 1000
    zarr_json = json.loads((out / "r.zarr" / "zarr.json").read_text())
    assert zarr_json.get("consolidated_metadata")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        stored = xr.open_zarr(out / "r.zarr")
    assert json.loads(stored.attrs["onsets_json"]) == summary["onsets"]
    assert sorted(p.name for p in out.iterdir()) == ["r.html", "r.png", "r.zarr", "s.json"]


def test_tofsims_cei_of_a_volume_writes_map_views(batch, tmp_path):
    volume = batch.outdir / "pristine-sims" / "volume.zarr"
    args = ["tofsims", "cei", volume, "--sputter-rate", 0.05, "--marker", "LiF2-"]
    args += ["--summary", tmp_path / "s.json", "--html", tmp_path / "c.html"]
    result = CliRunner().invoke(cli, [*map(str, args), "--png", str(tmp_path / "c.png")])
    assert result.exit_code == 0, result.output
    text = assert_offline_html(tmp_path / "c.html")
    assert "Thickness distribution" in text and "CEI thickness" in text
    assert "CEI (LiF2-)" in text
    width, height = png_size(tmp_path / "c.png")
    assert width > 1000 and height > 1500  # profile above map and histogram


def test_tofsims_cei_of_a_surfacelab_profile_shows_only_the_profile(tmp_path):
    args = ["tofsims", "cei", SURFACELAB, "--sputter-rate", 0.05, "--marker", "O2-"]
    args += ["--bulk", "Au-", "--summary", tmp_path / "s.json", "--html", tmp_path / "p.html"]
    args += ["--force"]  # a static acquisition: analysed anyway, with a warning
    result = CliRunner().invoke(cli, [*map(str, args), "--png", str(tmp_path / "p.png")])
    assert result.exit_code == 0, result.output
    text = assert_offline_html(tmp_path / "p.html")
    assert "Depth profile" in text and "Thickness distribution" not in text
    width, height = png_size(tmp_path / "p.png")
    assert width > 1000 and 400 < height < width


def test_html_output_folder_is_created_and_no_temporary_is_left(tmp_path):
    args = ["tofsims", "cei", SURFACELAB, "--sputter-rate", 0.05, "--marker", "O2-"]
    args += ["--bulk", "Au-", "--summary", tmp_path / "s.json", "--force"]
    args += ["--html", tmp_path / "missing" / "dir" / "p.html"]
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == 0, result.output  # folders of the outputs are created
    assert (tmp_path / "missing" / "dir" / "p.html").is_file()
    assert not list((tmp_path / "missing" / "dir").glob(".*"))


# --- batch ---------------------------------------------------------------------------------------


def test_batch_writes_a_report_per_experiment_linked_from_the_index(batch):
    index = (batch.outdir / "index.html").read_text()
    for name in ("pristine-dems", "modified-dems", "pristine-sims", "modified-sims"):
        report = batch.outdir / name / "report.html"
        text = assert_offline_html(report, shared=True)
        assert f'href="{name}/report.html"' in index
        assert f"<title>{name} (sample " in text  # named by experiment and labels
    assert "O2 onset" in assert_offline_html(batch.outdir / "pristine-dems" / "report.html",
                                             shared=True)  # fmt: skip
    sims = (batch.outdir / "pristine-sims" / "report.html").read_text()
    assert "Thickness distribution" in sims
    # one copy of the libraries for every report
    assert len(list((batch.outdir / "_static").glob("bokeh-*.js"))) == 4


def test_batch_records_the_published_folder_not_the_work_folder(batch):
    for name in ("pristine-dems", "pristine-sims"):
        folder = batch.outdir / name
        for path in (folder / "summary.json", folder / "log.txt"):
            text = path.read_text(encoding="utf-8")
            assert ".tmp-" not in text, path
        assert str(folder.resolve()) in (folder / "log.txt").read_text(encoding="utf-8")
    with xr.open_dataset(batch.outdir / "pristine-sims" / "cei_map.nc") as cei_map:
        assert ".tmp-" not in cei_map.attrs["source_file"]
        assert cei_map.attrs["pixel_size_um"] > 0  # the map's lateral scale
    summary = json.loads((batch.outdir / "pristine-dems" / "summary.json").read_text())
    assert summary["inputs"]["calibration"].endswith("pristine-dems/calibration.json")


def test_batch_index_is_readable_with_uncertainties(batch):
    index = (batch.outdir / "index.html").read_text(encoding="utf-8")
    summary = json.loads((batch.outdir / "pristine-dems" / "summary.json").read_text())
    onset = summary["onsets"]["O2"]
    assert f"{onset['potential_V']:.3f} ± {onset['uncertainty_V']:.3f}" in index
    evolved = summary["evolved"]["CO2"]
    assert f"{evolved['umol_per_g']:.1f} ± {evolved['umol_per_g_uncertainty']:.1f} µmol/g" in index
    cei = json.loads((batch.outdir / "pristine-sims" / "summary.json").read_text())
    block = cei["cei_thickness_nm"]
    assert f"{block['mean']:.2f} ± {block['uncertainty']:.2f}" in index
    assert "O2_onset_uncertainty_V" not in index  # no raw column names
    assert "<details><summary>files</summary>" in index


def test_batch_console_has_no_progress_bars(batch):
    assert "4 computed" in batch.output
    assert not PROGRESS_TEXT.search(batch.output)
    assert not PROGRESS_TEXT.search(batch.worker_output)
    assert "Completed" not in batch.output + batch.worker_output


# --- progress switch -----------------------------------------------------------------------------


def test_progress_bar_is_silenced_when_disabled_and_by_the_dask_key():
    import dask
    from dask.diagnostics import ProgressBar

    assert isinstance(progress_bar(), ProgressBar)
    assert not isinstance(progress_bar(enabled=False), ProgressBar)
    assert isinstance(progress_bar(minimum=1.0), ProgressBar)
    with dask.config.set({QUIET_KEY: True}):
        assert not isinstance(progress_bar(), ProgressBar)


def test_served_result_store_without_summary_uses_its_onsets_attribute(batch, tmp_path):
    from pipelines.server import open_entries, view_for

    copy = tmp_path / "alone" / "result.zarr"
    shutil.copytree(batch.outdir / "pristine-dems" / "result.zarr", copy)
    (entry,) = open_entries([copy])
    assert entry.kind == "result" and entry.summary is None
    tabs = view_for(entry)
    against_potential = tabs.objects[1].object
    onsets = json.loads(entry.dataset.attrs["onsets_json"])
    expected = {round(v["potential_V"], 6) for v in onsets.values() if v["potential_V"]}
    assert expected and expected <= set(onset_positions(against_potential.last))


def test_result_without_cycle_numbers_keeps_every_sample(dems_result):
    result, summary = dems_result
    no_cycles = result.assign(cycle=result["cycle"] * np.nan)
    flux_view = dems_result_views.result_flux(no_cycles)
    assert "cycle" not in flux_view.coords
    assert flux_view.sizes["time"] == result.sizes["time"]
    layout = dems_result_views.process_report(no_cycles, summary)
    assert list(holomap_of(layout).keys()) == [0]  # one frame, still with the onsets
    assert set(onset_positions(holomap_of(layout).last))


def test_coating_is_marked_at_its_lower_boundary():
    summary = {
        "input": {"marker": "LiF2-", "bulk": "NiO2-"},
        "cei_thickness_nm": {"mean": 4.0},
        "two_marker_crossing_nm": {"value": None},
        "coating_thickness_nm": 3.0,
    }
    interfaces = cei_views.cei_interfaces(summary)
    assert interfaces == {"CEI (LiF2-) 4 nm": 4.0, "coating end (3 nm thick)": 7.0}
    # with their uncertainties (summary.json of tofsims cei): shown as ±
    summary["cei_thickness_nm"]["uncertainty"] = 0.154
    summary["coating_thickness_uncertainty_nm"] = 0.05
    interfaces = cei_views.cei_interfaces(summary)
    assert interfaces == {
        "CEI (LiF2-) 4.00 ± 0.15 nm": 4.0,
        "coating end (3.00 ± 0.05 nm thick)": 7.0,
    }
