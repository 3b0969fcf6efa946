"""Save views: offline HTML with inline resources, PNG figures through matplotlib.

Shared by every command with ``--html``/``--png`` options (``operando dems process``,
``operando tofsims cei`` …) and by ``operando serve``. Files are written atomically
(temporary name in the same folder, then :func:`os.replace`).

Example
-------
>>> from dems.plots import flux_vs_potential
>>> from pipelines.report import save_html, save_png
>>> view = flux_vs_potential(flux, onsets)              # doctest: +SKIP
>>> save_html(view, "run.html", title="Run 12")         # doctest: +SKIP
>>> save_png(view, "run.png")                           # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from pipelines.atomic import atomic_file

F = TypeVar("F", bound=Callable[..., Any])

__all__ = [
    "ReportFiles",
    "ViewExportError",
    "export_options",
    "inline_panel_stylesheets",
    "rendering",
    "save_figure",
    "save_html",
    "save_png",
    "share_scripts",
    "write_exports",
]


class ViewExportError(ValueError):
    """A view cannot be exported in the requested form (e.g. a live-only DynamicMap)."""


#: HoloViews, Bokeh and Panel keep global state (current backend, option trees, documents):
#: views must be built and saved by one thread at a time. In a batch, several experiments run
#: as threads of one worker process, and concurrent reports broke each other's plots.
_RENDER_LOCK = threading.RLock()


@contextlib.contextmanager
def rendering() -> Iterator[None]:
    """Hold the process-wide lock for building and saving views."""
    with _RENDER_LOCK:
        yield


def _has_dynamic_map(view: Any) -> bool:
    import holoviews as hv

    if isinstance(view, hv.DynamicMap):
        return True
    if isinstance(view, hv.core.dimension.Dimensioned):
        return bool(view.traverse(lambda obj: obj, [hv.DynamicMap]))
    return False


def save_html(
    view: Any,
    path: str | os.PathLike[str],
    *,
    title: str = "operando",
    shared_scripts: str | os.PathLike[str] | None = None,
) -> Path:
    """Write an HTML page that works offline.

    BokehJS and the Panel extensions are inlined (no CDN) — or, with ``shared_scripts``,
    written once into that folder and loaded from it by a relative path — and the widgets of
    HoloMaps (cycle or scan sliders) are embedded with all their states.

    Parameters
    ----------
    view
        A HoloViews object or Panel component without DynamicMaps (those need a live server:
        use ``operando serve``, or :func:`tofsims.plots.slice_holomap` for a static slider).
    path
        Output file (``.html``).
    title
        Page title.
    shared_scripts
        Folder for the JavaScript libraries shared by several pages (``operando batch``:
        ``OUTDIR/_static``); ``None`` inlines them (a single self-contained file, ~3 MB).

    Returns
    -------
    pathlib.Path
        The written file.
    """
    import panel as pn
    from bokeh.resources import INLINE

    if _has_dynamic_map(view):
        raise ViewExportError(
            f"{os.fspath(path)}: this view needs a live server (DynamicMap); "
            "use 'operando serve' or a HoloMap-based view for static HTML"
        )
    with atomic_file(path, suffix=".html") as temporary:
        pn.panel(view).save(
            temporary, resources=INLINE, embed=True, title=title, max_states=2000, progress=False
        )
        html = inline_panel_stylesheets(temporary.read_text(encoding="utf-8"))
        if shared_scripts is not None:
            html = share_scripts(html, Path(shared_scripts), Path(path).parent)
        temporary.write_text(html, encoding="utf-8")
    return Path(path)


#: Inline scripts at least this long are libraries (BokehJS, Panel), not a page's own code.
LIBRARY_SCRIPT_CHARS = 8_000
_INLINE_SCRIPT = re.compile(r'<script type="text/javascript">(?P<code>.*?)</script>', re.DOTALL)
_LIBRARY_NAME = re.compile(
    r"/\* BEGIN (?P<name>[\w.-]+?)(?:\.min)?\.js \*/|Original file: /npm/(?P<npm>[\w.-]+?)@"
)


def share_scripts(html: str, folder: Path, page_folder: Path) -> str:
    """Move a page's inline JavaScript libraries into ``folder``, loaded by relative path.

    Each library script (BokehJS, its widgets/tables/GL parts, Panel, the module shim) is
    written once as ``folder/<name>-<sha256 prefix>.js`` — the same file for every page made
    by the same versions, so a batch of a hundred reports holds one copy — and replaced by
    ``<script src="../_static/....js">``. Classic scripts load from ``file://`` by relative
    path, so the pages still work offline.

    Parameters
    ----------
    html
        A page saved with inline resources.
    folder
        Where the shared scripts go (created if needed).
    page_folder
        The folder of the page (the ``src`` paths are relative to it).

    Returns
    -------
    str
        The page without its inline libraries.
    """
    import hashlib

    from pipelines.atomic import is_ours, write_marker, write_text_atomic

    folder.mkdir(parents=True, exist_ok=True)
    if not is_ours(folder):  # a folder of ours: a later batch may write into it again
        write_marker(folder, "operando batch")

    def external(match: re.Match[str]) -> str:
        code = match["code"]
        if len(code) < LIBRARY_SCRIPT_CHARS:
            return match[0]
        named = _LIBRARY_NAME.search(code[:500])
        digest = hashlib.sha256(code.encode("utf-8")).hexdigest()[:16]
        name = (named["name"] or named["npm"]) if named else "script"
        target = folder / f"{name}-{digest}.js"
        if not target.is_file():
            write_text_atomic(target, code)
        relative = Path(os.path.relpath(target, page_folder)).as_posix()
        return f'<script type="text/javascript" src="{relative}"></script>'

    return _INLINE_SCRIPT.sub(external, html)


_IMPORTED_STYLESHEET = re.compile(
    r'\{"type":"object","name":"ImportedStyleSheet","id":"(?P<id>[^"]+)",'
    r'"attributes":\{"url":"https://cdn\.holoviz\.org/panel/[^/"]+/dist/(?P<file>[^"?]+)'
    r'(?:\?[^"]*)?"\}\}'
)
_CDN_ICON = re.compile(
    r'<link rel="(?:icon|apple-touch-icon)"[^>]*href="https://cdn\.holoviz[^>]*>'
)


def inline_panel_stylesheets(html: str) -> str:
    """Replace Panel's CDN stylesheet references in a saved page by the CSS itself.

    Panel 1.9 saves component stylesheets (theme, loading spinner, widget box …) as
    ``ImportedStyleSheet`` URLs on ``cdn.holoviz.org`` even with ``resources=INLINE``; offline
    they fail to load (console errors, unstyled widgets). Each one whose file ships inside the
    installed Panel package becomes an ``InlineStyleSheet``; CDN favicon links are dropped.

    Parameters
    ----------
    html
        A page written by ``panel.viewable.Viewable.save``.

    Returns
    -------
    str
        The page with no request to ``cdn.holoviz.org`` left for the files Panel ships.
    """
    import panel

    dist = Path(panel.__file__).parent / "dist"

    def inline(match: re.Match[str]) -> str:
        css_file = dist / match["file"]
        if not css_file.is_file():
            return match[0]
        css = json.dumps(css_file.read_text(encoding="utf-8")).replace("</", "<\\/")
        return (
            f'{{"type":"object","name":"InlineStyleSheet","id":"{match["id"]}",'
            f'"attributes":{{"css":{css}}}}}'
        )

    return _CDN_ICON.sub("", _IMPORTED_STYLESHEET.sub(inline, html))


def save_png(view: Any, path: str | os.PathLike[str], *, dpi: int | None = None) -> Path:
    """Render a view to PNG with matplotlib (no browser needed).

    Parameters
    ----------
    view
        A HoloViews element, overlay or layout (HoloMaps are rendered at their last key), or a
        matplotlib figure (the paper figures of :mod:`dems.figures` / :mod:`tofsims.figures`).
    path
        Output file (``.png``).
    dpi
        Resolution in dots per inch; default 300 for a figure sized for print (its printed
        width then has 300 dots per inch), 200 for a HoloViews view.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    import holoviews as hv
    from matplotlib.figure import Figure

    if isinstance(view, Figure):
        return save_figure(view, path, dpi=dpi or 300)
    if _has_dynamic_map(view) or not isinstance(view, hv.core.dimension.Dimensioned):
        raise ViewExportError(f"{os.fspath(path)}: only static HoloViews views can be saved as PNG")
    if isinstance(view, hv.HoloMap):
        view = view.last
    import holoviews.plotting.mpl  # registers the matplotlib renderer

    renderer = hv.renderer("matplotlib").instance(dpi=dpi or 200)
    with atomic_file(path, suffix=".png") as temporary:
        renderer.save(view, os.fspath(temporary.with_suffix("")), fmt="png")
    return Path(path)


#: File formats of :func:`save_figure` (by suffix).
FIGURE_FORMATS = ("png", "svg", "pdf")


def save_figure(figure: Any, path: str | os.PathLike[str], *, dpi: int = 600) -> Path:
    """Write a matplotlib figure as PNG, SVG or PDF (by the suffix of ``path``), atomically.

    Parameters
    ----------
    figure
        A :class:`matplotlib.figure.Figure`, sized for print
        (:func:`operando_core.print_style.print_figure`).
    path
        Output file, ``.png``, ``.svg`` or ``.pdf``.
    dpi
        Resolution of a PNG (recorded in the file); SVG and PDF are vector graphics.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from operando_core.print_style import print_style

    fmt = Path(path).suffix.lower().lstrip(".")
    if fmt not in FIGURE_FORMATS:
        raise ViewExportError(f"{os.fspath(path)}: figures are saved as .png, .svg or .pdf")
    if figure.canvas is None or not hasattr(figure.canvas, "print_figure"):
        FigureCanvasAgg(figure)
    with print_style(), atomic_file(path, suffix=f".{fmt}") as temporary:
        figure.savefig(temporary, format=fmt, dpi=dpi, metadata=_FIGURE_METADATA.get(fmt))
    return Path(path)


#: No creation date in vector files, so a figure saved twice is the same file.
_FIGURE_METADATA: dict[str, dict[str, Any] | None] = {
    "png": None,
    "svg": {"Date": None},
    "pdf": {"CreationDate": None},
}


def export_options(command: F) -> F:
    """Add ``--html FILE`` and ``--png FILE`` to a click command.

    The command receives ``html`` and ``png`` (``pathlib.Path`` or ``None``) and passes them,
    with its view, to :func:`write_exports` once its results are computed::

        @click.command()
        @export_options
        def process(..., html, png):
            ...
            write_exports(flux_vs_potential(flux, onsets), html=html, png=png, title=run)
    """
    path = click.Path(dir_okay=False, writable=True, path_type=Path)
    command = click.option(
        "--png",
        type=path,
        default=None,
        metavar="FILE",
        help="Also save the figure as PNG (matplotlib, no browser needed).",
    )(command)
    return click.option(
        "--html",
        type=path,
        default=None,
        metavar="FILE",
        help="Also save an interactive page that works offline (inline resources).",
    )(command)


def write_exports(
    view: Any,
    *,
    html: str | os.PathLike[str] | None = None,
    png: str | os.PathLike[str] | None = None,
    title: str = "operando",
    png_view: Any = None,
    shared_scripts: str | os.PathLike[str] | None = None,
) -> list[Path]:
    """Save ``view`` as HTML and/or PNG, as asked on the command line.

    Parameters
    ----------
    view
        The interactive view (HoloViews/Panel) for ``html``.
    html, png
        Output files, or ``None`` to skip.
    title
        Page title of the HTML file.
    png_view
        A view better suited to matplotlib (e.g. ``stacked=True``, or a matplotlib figure);
        defaults to ``view``.
    shared_scripts
        Folder of the JavaScript libraries shared by several pages (see :func:`save_html`).

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    written = []
    with rendering():
        if html is not None:
            written.append(save_html(view, html, title=title, shared_scripts=shared_scripts))
        if png is not None:
            written.append(save_png(view if png_view is None else png_view, png))
    return written


@dataclass(frozen=True)
class ReportFiles:
    """Where to save a result's report views (``--html``/``--png``; ``None``: not asked).

    Attributes
    ----------
    html, png
        Output files of the interactive page and the static figure.
    title
        Page title of the HTML file.
    shared_scripts
        Folder of the JavaScript libraries shared by the pages of a batch (loaded by relative
        path); ``None`` inlines them into the page.
    """

    html: Path | None = None
    png: Path | None = None
    title: str = "operando"
    shared_scripts: Path | None = None

    def save(
        self,
        report: Callable[..., Any],
        echo: Callable[..., None] = click.echo,
        where: Callable[[Path | None], Path | None] | None = None,
    ) -> None:
        """Build the report views and save them; nothing when no file is asked for.

        ``report(static=False)`` is the interactive page, ``report(static=True)`` the figure
        for the PNG; both are built under the :func:`rendering` lock. ``where(path)`` gives
        the name each file is written under (e.g. :meth:`pipelines.outputs.Staging.path`,
        renamed onto ``path`` with the run's other outputs); default: ``path`` itself.
        """
        if self.html is None and self.png is None:
            return
        where = where or (lambda path: path)
        with rendering():  # views are built and saved by one thread at a time
            write_exports(
                report(static=False),
                html=where(self.html),
                png=where(self.png),
                title=self.title,
                png_view=report(static=True) if self.png is not None else None,
                shared_scripts=self.shared_scripts,
            )
        echo(f"wrote {', '.join(str(p) for p in (self.html, self.png) if p is not None)}")
