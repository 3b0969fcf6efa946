import socket
import urllib.error
import urllib.request
from pathlib import Path

import holoviews as hv
import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

from pipelines.cli import cli
from pipelines.server import NothingToShowError, build_app, classify, open_entries, serve
from tests.plot_data import flux_dataset, ms_and_ec, profile, thickness, volume


@pytest.fixture
def stores(tmp_path):
    volume().to_zarr(tmp_path / "volume.zarr")
    profile().to_netcdf(tmp_path / "profile.nc")
    thickness().to_dataset(name="thickness").to_netcdf(tmp_path / "cei.nc")
    flux_dataset().to_netcdf(tmp_path / "flux.nc")
    return tmp_path


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_classify_every_kind():
    ms, ec = ms_and_ec()
    calibration = xr.Dataset(
        {
            "flux": (("gas", "point"), [[1.0]]),
            "signal": (("gas", "point"), [[1.0]]),
            "sensitivity": ("gas", [1.0]),
        }
    )
    kinds = [
        classify(x)
        for x in (
            ms,
            ec,
            flux_dataset(),
            calibration,
            volume(),
            profile(),
            thickness().to_dataset(name="thickness"),
            xr.Dataset({"a": ("q", [1])}),
        )
    ]
    assert kinds == ["ms", "ec", "flux", "calibration", "volume", "profile", "thickness", "unknown"]


def test_open_entries_opens_stores_lazily(stores):
    entries = open_entries(sorted(stores.iterdir()))
    assert [(e.name, e.kind) for e in entries] == [
        ("cei.nc — thickness", "thickness"),
        ("flux.nc — flux", "flux"),
        ("profile.nc — profile", "profile"),
        ("volume.zarr — volume", "volume"),
    ]
    counts = entries[3].dataset["counts"]
    assert counts.chunks is not None  # dask-backed, nothing read
    np.testing.assert_array_equal(
        counts.isel(fragment=1, scan=2).values, volume()["counts"].isel(fragment=1, scan=2).values
    )


def test_open_entries_rejects_unknown_files_with_the_file_name(tmp_path):
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(NothingToShowError, match=r"garbage\.bin: neither a result store"):
        open_entries([garbage])
    damaged = tmp_path / "damaged.nc"
    damaged.write_bytes(b"CDF\x01" + b"\x00" * 3)
    with pytest.raises(NothingToShowError, match=r"damaged\.nc: damaged result store"):
        open_entries([damaged])


def test_open_entries_needs_something_to_show(tmp_path):
    xr.Dataset({"a": ("q", [1, 2])}).to_netcdf(tmp_path / "other.nc")
    with pytest.raises(NothingToShowError, match="no dataset that operando serve can show"):
        open_entries([tmp_path / "other.nc"])
    with pytest.raises(FileNotFoundError):
        open_entries([tmp_path / "missing.nc"])


def test_build_app_has_a_picker_over_all_datasets(stores):
    import panel as pn

    entries = open_entries(sorted(stores.iterdir()))
    app = build_app(entries)
    picker = next(iter(app.select(pn.widgets.Select)))
    assert list(picker.options) == [e.name for e in entries]


def test_every_kind_has_a_view(stores):
    import panel as pn

    from pipelines.server import Entry, view_for

    ms, ec = ms_and_ec()
    for entry in [
        *open_entries(sorted(stores.iterdir())),
        Entry("ms", "ms", ms),
        Entry("ec", "ec", ec),
    ]:
        view = view_for(entry)
        assert isinstance(view, pn.viewable.Viewable)
        view.get_root()  # renders to Bokeh models without error


def test_served_app_answers_on_loopback_only_and_serves_only_the_app(stores):
    port = free_port()
    server = serve([stores / "flux.nc", stores / "volume.zarr"], port=port, threaded=True)
    try:
        page = _get(f"http://127.0.0.1:{port}/", retries=50)
        assert "<title>operando</title>" in page
        for path in ("/flux.nc", f"/{stores}/flux.nc", "/static/../flux.nc"):
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10)
            assert err.value.code in (403, 404)
        # Panel's component route would import any module a request names
        import sys

        sys.modules.pop("this", None)
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(
                f"http://127.0.0.1:{port}/components/this/x/__javascript__/a.js", timeout=10
            )
        assert err.value.code == 403 and "this" not in sys.modules
        outward = _outward_address()
        if outward:
            with pytest.raises(OSError):
                urllib.request.urlopen(f"http://{outward}:{port}/", timeout=5)
    finally:
        server.stop()


def test_file_derived_text_is_escaped(tmp_path):
    import panel as pn

    store = tmp_path / "<b>cei.nc"
    dataset = thickness().to_dataset(name="thickness")
    dataset.attrs["source_file"] = "<script>alert(1)</script> **bold** [link](http://x)"
    dataset.to_netcdf(store)
    app = build_app(open_entries([store]))
    app.get_root()  # renders the chosen dataset
    shown = [p for p in app.select(pn.pane.HTML) if "cei" in str(p.object)]
    assert len(shown) == 1, [p.object for p in app.select(pn.pane.HTML)]
    shown = shown[0]
    assert "<script>" not in shown.object and "&lt;script&gt;" in shown.object
    assert "<b>cei" not in shown.object and "&lt;b&gt;cei" in shown.object


def _get(url, retries):
    import time

    for _ in range(retries):
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                return response.read().decode()
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer")


def _outward_address():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("10.255.255.255", 1))  # no packet is sent for UDP connect
            address = sock.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_cli_serve_reports_unreadable_paths_in_one_line(tmp_path):
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"\x00\x01\x02" * 100)
    result = CliRunner().invoke(cli, ["serve", str(garbage)])
    assert result.exit_code == 1
    assert "garbage.bin: neither a result store" in result.output
    assert "Traceback" not in result.output


def test_cli_serve_usage_errors():
    assert CliRunner().invoke(cli, ["serve"]).exit_code == 2
    assert CliRunner().invoke(cli, ["serve", "/no/such/path"]).exit_code == 2
    result = CliRunner().invoke(cli, ["serve", "--help"])
    assert result.exit_code == 0 and "127.0.0.1" in result.output and "Examples" in result.output


def test_raw_files_open_every_stream_they_hold(tmp_path, monkeypatch):
    """A raw DEMS file is opened with the reader its content selects; absent streams skipped."""
    import types

    import dems.io
    from dems.errors import MissingStreamError

    ms, ec = ms_and_ec()
    raw = tmp_path / "run.tsv"
    raw.write_text("fake\n")

    def read_ec_missing(path):
        raise MissingStreamError(path, "no EC block")

    both = types.SimpleNamespace(read_ms=lambda path: ms, read_ec=lambda path: ec)
    monkeypatch.setattr(dems.io, "detect_format", lambda path: both)
    assert [(e.name, e.kind) for e in open_entries([raw])] == [
        ("run.tsv [MS] — ms", "ms"),
        ("run.tsv [EC] — ec", "ec"),
    ]
    only_ms = types.SimpleNamespace(read_ms=lambda path: ms, read_ec=read_ec_missing)
    monkeypatch.setattr(dems.io, "detect_format", lambda path: only_ms)
    assert [e.kind for e in open_entries([raw])] == ["ms"]


def test_raw_tofsims_file_is_tried_after_dems(tmp_path, monkeypatch):
    import types

    import tofsims.io

    raw = tmp_path / "profile.txt"
    raw.write_text("fake\n")
    reader = types.SimpleNamespace(read=lambda path: profile())
    monkeypatch.setattr(tofsims.io, "detect_format", lambda path: reader)
    assert [(e.name, e.kind) for e in open_entries([raw])] == [("profile.txt — profile", "profile")]


def test_websocket_origins_follow_the_bound_address():
    from pipelines.server import websocket_origins

    assert websocket_origins("127.0.0.1", 5006) == ["127.0.0.1:5006", "localhost:5006"]
    everywhere = websocket_origins("0.0.0.0", 5007)
    assert f"{socket.gethostname()}:5007" in everywhere and "localhost:5007" in everywhere
    assert "0.0.0.0:5007" not in everywhere
    assert "10.1.2.3:80" in websocket_origins("10.1.2.3", 80)


def test_cli_serve_passes_paths_port_and_address(tmp_path, monkeypatch):
    import pipelines.server

    calls = []
    monkeypatch.setattr(pipelines.server, "serve", lambda paths, **kw: calls.append((paths, kw)))
    store = tmp_path / "cei.nc"
    thickness().to_dataset(name="thickness").to_netcdf(store)
    result = CliRunner().invoke(cli, ["serve", str(store), "--port", "5123"])
    assert result.exit_code == 0, result.output
    assert calls == [([store], {"port": 5123, "address": "127.0.0.1", "show": False})]
    remote = ["serve", str(store), "--address", "0.0.0.0", "--show"]
    refused = CliRunner().invoke(cli, remote)
    assert refused.exit_code == 2 and "--allow-remote" in refused.output
    assert len(calls) == 1
    allowed = CliRunner().invoke(cli, [*remote, "--allow-remote"])
    assert allowed.exit_code == 0, allowed.output
    assert "WARNING" in allowed.output and "no authentication" in allowed.output
    assert calls[-1][1] == {"port": 5006, "address": "0.0.0.0", "show": True}


# --- real result stores and raw files (generated example study) ---------------------------------


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    from tests.example_results import example_batch

    run = example_batch(tmp_path_factory)
    assert run.exit_code == 0, run.output
    return run


def _onsets(overlay):
    return sorted(
        round(float(c.dimension_values(0)[0]), 6)
        for c in overlay
        if isinstance(c, hv.Curve) and " onset " in c.label
    )


def test_real_result_stores_are_recognised_with_their_summaries(real):
    out = real.outdir
    entries = open_entries(
        [
            out / "pristine-dems" / "result.zarr",
            out / "pristine-sims" / "volume.zarr",
            out / "pristine-sims" / "cei_map.nc",
        ]
    )
    assert [(e.name, e.kind) for e in entries] == [
        ("result.zarr — result", "result"),
        ("volume.zarr — volume", "volume"),
        ("cei_map.nc — thickness", "thickness"),
    ]
    assert "onsets" in entries[0].summary  # the DEMS summary.json beside the store
    assert "cei_thickness_nm" in entries[1].summary
    assert all(e.dataset["counts"].chunks for e in entries[1:2])  # lazy


def test_real_dems_result_view_draws_the_summary_onsets(real):
    import json

    import panel as pn

    from pipelines.server import view_for

    (entry,) = open_entries([real.outdir / "pristine-dems" / "result.zarr"])
    tabs = view_for(entry)
    assert isinstance(tabs, pn.Tabs)
    names = ["EC-MS", "Flux vs potential", "Gas per cycle", "Ion currents"]
    assert list(tabs._names) == names
    summary = json.loads((real.outdir / "pristine-dems" / "summary.json").read_text())
    frames = tabs.objects[1].object
    for item in summary["cycles"]:
        expected = {round(v["potential_V"], 6) for v in item["onsets"].values() if v["potential_V"]}
        assert expected and expected <= set(_onsets(frames[item["cycle"]]))
    tabs.get_root()


def test_real_volume_depth_profile_tab_uses_depth_and_interfaces(real):
    import json

    from pipelines.server import _volume_profile, view_for

    folder = real.outdir / "pristine-sims"
    (entry,) = open_entries([folder / "volume.zarr"])
    view = view_for(entry)
    tabs = view.objects[1]
    assert list(tabs._names) == ["Slices", "RGB overlay", "3D", "Depth profile"]
    profile_data = _volume_profile(entry.dataset, entry.summary)
    summary = json.loads((folder / "summary.json").read_text())
    rate = summary["input"]["sputter_rate_nm_per_s"]
    np.testing.assert_allclose(profile_data["depth"], rate * profile_data["sputter_time"])
    summed = entry.dataset["counts"].sel(fragment="LiF2-").sum(("y", "x")).values
    column = list(profile_data["fragment"].values).index("LiF2-")
    np.testing.assert_array_equal(profile_data["intensity"].isel(peak=column), summed)
    tabs.active = 3
    tabs.get_root()  # the lazy tab renders (profile computed once)


def test_a_batch_folder_opens_every_experiment_named_by_its_labels(real, tmp_path):
    import panel as pn

    entries = open_entries([real.outdir])
    names = [e.name for e in entries]
    assert names == [
        "pristine-dems (sample pristine, cycle 1) — result.zarr — result",
        "modified-dems (sample modified, cycle 1) — result.zarr — result",
        "pristine-sims (sample pristine) — volume.zarr — volume",
        "pristine-sims (sample pristine) — cei_map.nc — thickness",
        "modified-sims (sample modified) — volume.zarr — volume",
        "modified-sims (sample modified) — cei_map.nc — thickness",
    ]
    assert entries[0].summary["onsets"]  # each with its experiment's summary
    # two stores of the same file name given directly stay two entries, told apart by folder
    twice = open_entries(
        [real.outdir / n / "result.zarr" for n in ("pristine-dems", "modified-dems")]
    )
    assert [e.name for e in twice] == [
        "pristine-dems/result.zarr — result",
        "modified-dems/result.zarr — result",
    ]
    app = build_app(entries, [real.outdir])
    tabs = next(iter(app.select(pn.Tabs)))
    assert list(tabs._names) == ["Datasets", "Comparison"]


def test_header_names_the_dataset_as_text_never_as_a_link(real):
    from pipelines.server import _header

    (entry,) = open_entries([real.outdir / "pristine-sims" / "cei_map.nc"])
    header = _header(entry).object
    assert "<a " not in header and "cei_map.nc" in header


def test_real_raw_files_open_with_the_readers(real):
    raw = real.manifest.parent / "raw" / "pristine-dems"
    surfacelab = (
        Path(__file__).parents[1] / "data/tofsims/uhasselt_surfacelab73_depth_profiles"
        "/I241213h_M_PCBM-ref_2D_neg-B1 - NF.txt"
    )
    entries = open_entries([raw / "operando.asc", raw / "operando_01_GCPL_C01.mpt", surfacelab])
    assert [e.kind for e in entries] == ["ms", "ec", "profile"]
    assert entries[0].name == "operando.asc [MS] — ms"
    assert entries[1].name == "operando_01_GCPL_C01.mpt [EC] — ec"
    assert entries[2].dataset.sizes == {"scan": 47, "peak": 132}
    from pipelines.server import view_for

    for entry in entries:
        view_for(entry).get_root()
