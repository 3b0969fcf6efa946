"""The ``operando serve`` Panel app: browse result stores and raw files in the browser.

Each path given on the command line is opened once, lazily, when the server starts:

- Zarr stores (directories) with :func:`xarray.open_zarr`, netCDF files with
  :func:`xarray.open_dataset` (``chunks={}``, so nothing is read until shown);
- raw DEMS files with :func:`dems.open_ms` / :func:`dems.open_ec` (every stream they hold);
- raw TOF-SIMS files with :func:`tofsims.io.open_tofsims`.

Every dataset is recognised by its structure (``docs/conventions.md``) and shown with the
matching views of :mod:`dems.plots` / :mod:`tofsims.plots` (kind: recognised by → views):

- ``result``: a DEMS result store of ``operando dems process`` (``signal_grid(mass, time)``
  and ``potential(time)``) → flux against potential per charge with the onsets of the
  ``summary.json`` beside the store (else of its ``onsets_json`` attribute), flux against time,
  gas per cycle, corrected ion currents;
- ``ms``: ``signal(channel, sample)`` → ion currents;
- ``ec``: ``potential(time)`` → potential and current;
- ``flux``: ``flux(gas, time)`` with a ``potential`` coordinate → flux against time and
  potential, gas per cycle; onsets from the JSON attribute ``onsets_json`` (of ``flux`` or of
  the dataset), ``{gas: {"potential_V", "uncertainty_V", "method"}}``;
- ``calibration``: ``flux(gas, point)``, ``signal(gas, point)``, ``sensitivity(gas)`` →
  calibration fit;
- ``volume``: ``counts(fragment, scan, y, x)`` → slice viewer, RGB overlay, 3D, depth profile
  (summed over pixels when the tab is opened; on a depth axis with the interfaces when a CEI
  ``summary.json`` lies beside the store);
- ``profile``: ``intensity(scan, peak)`` → depth profile (axis, normalisation, log scale);
- ``thickness``: ``thickness(y, x)`` in nm → CEI thickness map and histogram.

A ``summary.json`` in the folder of a store (as ``operando batch`` writes them) is read with
it. A batch or demo output folder opens every experiment's outputs (result store, volume, CEI
map), each named by the experiment and its labels, and adds a "Comparison" tab (the views of
``operando compare``, grouped by ``sample``). The app serves only these datasets: it has no
file browser and no static routes. Panel's ``/components/<module>/…`` route, which imports the
named module on an unauthenticated request, is restricted to Panel's own modules
(:class:`PanelComponentsOnly`). Text taken from the files (names, ``source_file`` attributes)
is escaped before it is shown.
"""

from __future__ import annotations

import dataclasses
import html
import ipaddress
import json
import os
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import holoviews as hv
import panel as pn
import xarray as xr

__all__ = [
    "Entry",
    "NothingToShowError",
    "PanelComponentsOnly",
    "build_app",
    "classify",
    "is_loopback",
    "open_entries",
    "serve",
    "websocket_origins",
]

NETCDF_MAGIC = (b"CDF\x01", b"CDF\x02", b"\x89HDF\r\n\x1a\n")


class NothingToShowError(ValueError):
    """None of the given paths holds a dataset the app knows how to show."""


@dataclass(frozen=True)
class Entry:
    """One dataset offered by the app."""

    name: str
    kind: str
    dataset: xr.Dataset
    #: the ``summary.json`` found beside a result store, if any
    summary: Mapping[str, Any] | None = None
    #: the file or store it was opened from
    path: Path | None = None


def classify(dataset: xr.Dataset) -> str:
    """Say which kind of data a Dataset holds (see the module docstring); ``"unknown"`` else."""
    dims = {name: dataset[name].dims for name in dataset.data_vars}
    if dims.get("signal_grid") == ("mass", "time") and dims.get("potential") == ("time",):
        return "result"
    if dims.get("counts") == ("fragment", "scan", "y", "x"):
        return "volume"
    if dims.get("intensity") == ("scan", "peak"):
        return "profile"
    if "thickness" in dims and set(dims["thickness"]) == {"y", "x"}:
        return "thickness"
    if set(dims.get("flux", ())) == {"gas", "point"} and "sensitivity" in dims:
        return "calibration"
    if set(dims.get("flux", ())) == {"gas", "time"} and "potential" in dataset.coords:
        return "flux"
    if dims.get("signal") == ("channel", "sample"):
        return "ms"
    if dims.get("potential") == ("time",):
        return "ec"
    return "unknown"


def _is_zarr(path: Path) -> bool:
    return path.is_dir() and any((path / name).exists() for name in ("zarr.json", ".zgroup"))


def _is_netcdf(path: Path) -> bool:
    if not path.is_file():
        return False
    with open(path, "rb") as handle:
        return handle.read(8).startswith(NETCDF_MAGIC)


def _open_store(path: Path) -> list[tuple[str, xr.Dataset]]:
    """Open a Zarr store or netCDF file lazily (dask-backed, nothing read yet)."""
    from operando_core.stores import store_damage
    from tofsims.errors import TofsimsReadError
    from tofsims.io.volume_store import open_volume

    try:
        if path.is_dir():
            if problem := store_damage(path):
                raise NothingToShowError(f"{os.fspath(path)}: unusable store: {problem}")
            dataset = xr.open_zarr(path)
            if "counts" in dataset:  # a fragment volume: sizes checked, reads guarded
                dataset = open_volume(path)
            return [("", dataset)]
        return [("", xr.open_dataset(path, chunks={}))]
    except (OSError, ValueError, KeyError, TypeError, TofsimsReadError) as err:
        if isinstance(err, NothingToShowError):
            raise
        raise NothingToShowError(f"{os.fspath(path)}: damaged result store ({err})") from err


def _open_raw(path: Path) -> list[tuple[str, xr.Dataset]]:
    """Open a raw instrument file with the DEMS readers, else the TOF-SIMS readers."""
    from dems.errors import DemsReadError, MissingStreamError
    from dems.io import detect_format
    from tofsims.errors import TofsimsReadError
    from tofsims.io import detect_format as detect_tofsims_format

    try:
        module = detect_format(path)
    except DemsReadError as dems_error:
        try:
            reader = detect_tofsims_format(path)
        except TofsimsReadError as tofsims_error:
            raise NothingToShowError(
                f"{os.fspath(path)}: neither a result store (Zarr, netCDF) nor a known raw file "
                f"(DEMS: {dems_error.problem}; TOF-SIMS: {tofsims_error.problem})"
            ) from tofsims_error
        return [("", reader.read(path))]
    streams = []
    for kind, reader_name in (("MS", "read_ms"), ("EC", "read_ec")):
        if not hasattr(module, reader_name):
            continue
        try:
            streams.append((kind, getattr(module, reader_name)(path)))
        except MissingStreamError:
            continue
    return streams


def open_entries(paths: list[str | os.PathLike[str]]) -> list[Entry]:
    """Open every path lazily and name each dataset it holds.

    A batch or demo output folder (:func:`pipelines.results.is_results_folder`) gives one
    entry per output of every experiment (result store, volume, CEI map), named by the
    experiment and its labels. Names are unique: a repeated file name (every experiment
    writes ``result.zarr``) is told apart by its folder, never dropped.

    Raises
    ------
    FileNotFoundError
        A path does not exist.
    dems.errors.DemsReadError, tofsims.errors.TofsimsReadError
        A raw file of a known format is malformed.
    NothingToShowError
        A path is of no known kind, or no path holds a dataset the app can show.
    """
    from pipelines.results import find_results, is_results_folder

    entries: list[Entry] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise FileNotFoundError(2, "no such file or directory", os.fspath(path))
        if is_results_folder(path) and not _is_zarr(path):
            for result in find_results(path):
                entries += _result_entries(result)
            continue
        store = _is_zarr(path) or _is_netcdf(path)
        opened = _open_store(path) if store else _open_raw(path)
        summary = _summary_beside(path) if store else None
        for stream, dataset in opened:
            kind = classify(dataset)
            name = path.name + (f" [{stream}]" if stream else "")
            entries.append(Entry(f"{name} — {kind}", kind, dataset, summary, path))
    if not any(entry.kind != "unknown" for entry in entries):
        names = ", ".join(os.fspath(p) for p in paths)
        raise NothingToShowError(f"{names}: no dataset that operando serve can show")
    return _unique(entries)


#: Outputs of a batch experiment that the app shows, in the order they are listed.
EXPERIMENT_OUTPUTS = ("result.zarr", "result.nc", "volume.zarr", "cei_map.nc")


def _result_entries(result: Any) -> list[Entry]:
    """One entry per output of a batch experiment, named by the experiment and its labels."""
    entries = []
    for output in EXPERIMENT_OUTPUTS:
        path = result.output(output)
        if path is None:
            continue
        for _, dataset in _open_store(path):
            kind = classify(dataset)
            name = f"{result.title} — {output} — {kind}"
            entries.append(Entry(name, kind, dataset, dict(result.summary) or None, path))
    return entries


def _unique(entries: list[Entry]) -> list[Entry]:
    """Tell repeated names apart by the folder of their file, then by a number."""
    counts: dict[str, int] = {}
    for entry in entries:
        counts[entry.name] = counts.get(entry.name, 0) + 1
    unique, seen = [], set()
    for entry in entries:
        name = entry.name
        if counts[name] > 1 and entry.path is not None:
            name = f"{entry.path.parent.name}/{name}"
        number = 2
        while name in seen:
            name, number = f"{entry.name} ({number})", number + 1
        seen.add(name)
        unique.append(dataclasses.replace(entry, name=name))
    return unique


def _summary_beside(path: Path) -> dict[str, Any] | None:
    """Read the ``summary.json`` in the folder of a store; ``None`` if absent or not JSON."""
    candidate = path.resolve().parent / "summary.json"
    try:
        summary = json.loads(candidate.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return summary if isinstance(summary, dict) else None


def _onsets(dataset: xr.Dataset) -> dict[str, Any]:
    flux_attrs = dataset["flux"].attrs if "flux" in dataset else {}
    text = flux_attrs.get("onsets_json") or dataset.attrs.get("onsets_json")
    return json.loads(text) if text else {}


def _result_view(entry: Entry) -> pn.viewable.Viewable:
    """Build the views of a DEMS result store (onsets per charge from its summary)."""
    from dems import plots, result_views

    dataset, summary = entry.dataset, entry.summary
    if not (summary and "onsets" in summary):
        summary = {"onsets": _onsets(dataset)}
    onsets, cycle_onsets = result_views.onsets_from_summary(summary)
    tabs: list[tuple[str, Any]] = []
    if "flux" in dataset:
        specific = result_views.per_gram(dataset)
        flux = result_views.result_flux(dataset, specific=specific)
        amounts = result_views.amounts_from_summary(summary, specific=specific) or None
        tabs += [
            ("EC-MS", plots.ec_ms(flux, result_views.result_ec(dataset))),
            ("Flux vs potential", plots.flux_vs_potential(flux, onsets, cycle_onsets=cycle_onsets)),
            ("Gas per cycle", plots.cumulative_gas(flux, amounts)),
        ]
    tabs.append(("Ion currents", result_views.grid_currents(dataset)))
    return pn.Tabs(*tabs, dynamic=True)


def _volume_profile(dataset: xr.Dataset, summary: Mapping[str, Any] | None) -> xr.Dataset:
    """Depth profile of a volume (reads every block once), on a depth axis when known."""
    from tofsims.depth import depth_constant_rate
    from tofsims.profiles import depth_profile

    profile = depth_profile(dataset).compute()
    rate = ((summary or {}).get("input") or {}).get("sputter_rate_nm_per_s")
    if "depth" not in profile.coords and isinstance(rate, int | float) and rate > 0:
        profile = depth_constant_rate(profile, float(rate))
    return profile


def _volume_view(dataset: xr.Dataset, summary: Mapping[str, Any] | None) -> pn.viewable.Viewable:
    from tofsims import plots

    fragments = [str(f) for f in dataset["fragment"].values]
    fragment = pn.widgets.Select(label="Fragment", options=fragments, value=fragments[0])
    slices = pn.bind(
        lambda f: pn.panel(plots.slice_viewer(dataset, f), widget_location="top_left"), fragment
    )
    rgb_choice = [fragments[i % len(fragments)] for i in range(3)]
    colours = [
        pn.widgets.Select(label=colour, options=fragments, value=value)
        for colour, value in zip(("Red", "Green", "Blue"), rgb_choice, strict=True)
    ]
    rgb = pn.bind(lambda r, g, b: plots.rgb_overlay(dataset, [r, g, b]), *colours)
    volume = pn.bind(lambda f: plots.volume_3d(dataset, f), fragment)
    return pn.Column(
        fragment,
        pn.Tabs(
            ("Slices", pn.panel(slices)),
            ("RGB overlay", pn.Column(pn.Row(*colours), pn.panel(rgb))),
            ("3D", pn.panel(volume)),
            (
                "Depth profile",
                pn.param.ParamFunction(
                    lambda: _profile_view(_volume_profile(dataset, summary), summary), lazy=True
                ),
            ),
            dynamic=True,
        ),
    )


def _profile_view(
    dataset: xr.Dataset, summary: Mapping[str, Any] | None = None
) -> pn.viewable.Viewable:
    from tofsims import cei_views, plots

    interfaces = cei_views.cei_interfaces(summary or {})
    axes = [a for a in ("depth", "sputter_time", "scan") if a in dataset.coords or a == "scan"]
    log = pn.widgets.Checkbox(label="Logarithmic intensity", value=True)
    # text values: a None value would leave the menu blank until something is picked
    choices = {"raw counts": "none", "to total": "total", "to maximum": "max"}
    normalise = pn.widgets.Select(label="Normalise", options=choices, value="none")
    axis = pn.widgets.Select(label="Axis", options=axes, value=axes[0])
    view = pn.bind(
        lambda logy, norm, ax: plots.depth_profile(
            dataset,
            logy=logy,
            normalise=None if norm == "none" else norm,
            axis=ax,
            interfaces=cei_views.interfaces_on(dataset, interfaces, ax),
        ),
        log,
        normalise,
        axis,
    )
    return pn.Column(pn.Row(axis, normalise, log), pn.panel(view))


def _flux_view(dataset: xr.Dataset) -> pn.viewable.Viewable:
    from dems import plots

    flux = dataset["flux"]
    tabs = [
        ("Flux vs time", plots.flux_vs_time(flux)),
        ("Flux vs potential", plots.flux_vs_potential(flux, _onsets(dataset))),
    ]
    if "cycle" in flux.coords:
        tabs.append(("Gas per cycle", plots.cumulative_gas(flux)))
    return pn.Tabs(*tabs, dynamic=True)


def view_for(entry: Entry) -> pn.viewable.Viewable:
    """Build the interactive view of one dataset (widgets + HoloViews panes)."""
    from dems import plots as dems_plots
    from tofsims import plots as tofsims_plots

    dataset = entry.dataset
    if entry.kind == "result":
        return _result_view(entry)
    if entry.kind == "volume":
        return _volume_view(dataset, entry.summary)
    if entry.kind == "profile":
        return _profile_view(dataset, entry.summary)
    if entry.kind == "flux":
        return _flux_view(dataset)
    if entry.kind == "ms":
        return pn.panel(dems_plots.ion_currents(dataset))
    if entry.kind == "ec":
        return pn.panel(dems_plots.potentiostat(dataset))
    if entry.kind == "calibration":
        return pn.panel(dems_plots.calibration_fit(dataset))
    if entry.kind == "thickness":
        from tofsims.cei_views import cei_headline
        from tofsims.lateral import with_scale

        thickness = with_scale(dataset["thickness"], dataset)
        headline = cei_headline(entry.summary or {})
        return pn.panel(tofsims_plots.thickness_map(thickness, headline=headline))
    return pn.pane.Str(repr(dataset))


def _header(entry: Entry) -> pn.viewable.Viewable:
    """Name the dataset and its file as escaped text (not Markdown: no links from names)."""
    attrs = entry.dataset.attrs
    source = attrs.get("source_file") or attrs.get("ms_source_file", "")
    shown = source or (os.fspath(entry.path) if entry.path is not None else "")
    return pn.pane.HTML(
        f"<h3>{html.escape(entry.name)}</h3><p><code>{html.escape(str(shown))}</code></p>"
    )


def build_app(entries: list[Entry], folders: list[Path] | None = None) -> pn.viewable.Viewable:
    """Build the page: a dataset picker and the views of the chosen dataset.

    With batch output ``folders``, a "Comparison" tab holds the comparison views of
    ``operando compare`` (grouped by ``sample``), built when the tab is first opened.
    """
    pn.extension("vtk")
    hv.extension("bokeh", logo=False)
    picker = pn.widgets.Select(
        label="Dataset",
        options={entry.name: index for index, entry in enumerate(entries)},
        width=640,
    )

    def shown(index: int) -> pn.viewable.Viewable:
        entry = entries[index]
        return pn.Column(_header(entry), view_for(entry))

    datasets = pn.Column(picker, pn.panel(pn.bind(shown, picker)))
    if not folders:
        return pn.Column(pn.pane.Markdown("## operando"), datasets, sizing_mode="fixed")
    tabs = [("Datasets", datasets)]
    for folder in folders:
        title = "Comparison" if len(folders) == 1 else f"Comparison: {folder.name}"
        tabs.append((title, pn.param.ParamFunction(lambda f=folder: _comparison(f), lazy=True)))
    return pn.Column(
        pn.pane.Markdown("## operando"), pn.Tabs(*tabs, dynamic=True), sizing_mode="fixed"
    )


def _comparison(folder: Path) -> pn.viewable.Viewable:
    """Build the comparison views of a batch output folder, grouped by ``sample``."""
    from pipelines.compare import CompareOptions, comparison_page, load_comparison
    from pipelines.results import ResultsFolderError

    options = CompareOptions()
    try:
        return comparison_page(load_comparison(folder, options), options)
    except ResultsFolderError as err:
        return pn.pane.HTML(f"<p>No comparison: {html.escape(str(err))}</p>")


def serve(
    paths: list[str | os.PathLike[str]],
    *,
    port: int = 5006,
    address: str = "127.0.0.1",
    show: bool = False,
    threaded: bool = False,
) -> Any:
    """Open ``paths`` and serve the app on ``address:port``.

    Parameters
    ----------
    paths
        Result stores (Zarr directories, netCDF files), raw instrument files and batch (or
        demo) output folders — every experiment's outputs, and a comparison tab.
    port
        TCP port.
    address
        Interface to bind; ``127.0.0.1`` keeps the app private to this machine.
    show
        Open a web browser on the app.
    threaded
        Run the server in a background thread and return it (call ``.stop()``); otherwise block
        until interrupted.

    Returns
    -------
    bokeh.server.server.Server or panel.io.threads.StoppableThread
    """
    from pipelines.results import is_results_folder

    entries = open_entries(paths)
    folders = [Path(p) for p in paths if is_results_folder(p)]
    server = pn.serve(
        {"/": lambda: build_app(entries, folders)},
        port=port,
        address=address,
        websocket_origin=websocket_origins(address, port),
        show=show,
        threaded=threaded,
        title="operando",
        print_url=not threaded,
        # matched before Panel's own /components/ route, which imports any module named in
        # the URL
        extra_patterns=[(r"/components/(.*)", PanelComponentsOnly, {})],
    )
    if threaded:
        _wait_until_listening(address, port)
    return server


def is_loopback(address: str) -> bool:
    """Tell an address that only this machine can reach (127.0.0.0/8, ``::1``, localhost)."""
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:  # a host name, or "" (every interface)
        return False


def _components_handler() -> type:
    from panel.io.server import ComponentResourceHandler
    from tornado.web import HTTPError

    class Restricted(ComponentResourceHandler):
        def parse_url_path(self, path: str) -> str:
            module = path.split("/", 1)[0]
            if module != "panel" and not module.startswith("panel."):
                raise HTTPError(403, "operando serves the resources of Panel's modules only")
            return super().parse_url_path(path)

    return Restricted


#: Panel's resource handler for ``/components/<module>/<class>/<attribute>/<path>``, limited to
#: modules of Panel itself: the original imports whatever module a request names.
PanelComponentsOnly = _components_handler()


def websocket_origins(address: str, port: int) -> list[str]:
    """Browser origins allowed to open the app's websocket.

    Loopback names always; the bound address; and, when bound to every interface
    (``0.0.0.0``), this machine's host names and addresses, so colleagues can open
    ``http://<this-host>:<port>/``.
    """
    hosts = {"localhost", "127.0.0.1", address}
    if address in ("0.0.0.0", ""):
        hosts.discard(address)
        name = socket.gethostname()
        hosts.update({name, socket.getfqdn()})
        try:
            hosts.update(socket.gethostbyname_ex(name)[2])
        except OSError:
            pass
    return [f"{host}:{port}" for host in sorted(hosts)]


def _wait_until_listening(address: str, port: int, timeout_s: float = 30.0) -> None:
    """Return once the threaded server accepts connections (it starts asynchronously)."""
    host = "127.0.0.1" if address in ("0.0.0.0", "") else address
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"operando serve did not start listening on {host}:{port}")
