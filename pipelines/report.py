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
    "save_html",
    "save_png",
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


def save_html(view: Any, path: str | os.PathLike[str], *, title: str = "operando") -> Path:
    """Write a self-contained HTML page that works offline.

    BokehJS and the Panel extensions are inlined (no CDN), and the widgets of HoloMaps
    (cycle or scan sliders) are embedded with all their states.

    Parameters
    ----------
    view
        A HoloViews object or Panel component without DynamicMaps (those need a live server:
        use ``operando serve``, or :func:`tofsims.plots.slice_holomap` for a static slider).
    path
        Output file (``.html``).
    title
        Page title.

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
        html = temporary.read_text(encoding="utf-8")
        temporary.write_text(inline_panel_stylesheets(html), encoding="utf-8")
    return Path(path)


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


def save_png(view: Any, path: str | os.PathLike[str], *, dpi: int = 200) -> Path:
    """Render a HoloViews view to PNG with matplotlib (no browser needed).

    Parameters
    ----------
    view
        A HoloViews element, overlay or layout. HoloMaps are rendered at their last key.
    path
        Output file (``.png``).
    dpi
        Resolution in dots per inch (200 suits journal figures).

    Returns
    -------
    pathlib.Path
        The written file.
    """
    import holoviews as hv

    if _has_dynamic_map(view) or not isinstance(view, hv.core.dimension.Dimensioned):
        raise ViewExportError(f"{os.fspath(path)}: only static HoloViews views can be saved as PNG")
    if isinstance(view, hv.HoloMap):
        view = view.last
    import holoviews.plotting.mpl  # registers the matplotlib renderer

    renderer = hv.renderer("matplotlib").instance(dpi=dpi)
    with atomic_file(path, suffix=".png") as temporary:
        renderer.save(view, os.fspath(temporary.with_suffix("")), fmt="png")
    return Path(path)


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
        A view better suited to matplotlib (e.g. ``stacked=True``); defaults to ``view``.

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    written = []
    with rendering():
        if html is not None:
            written.append(save_html(view, html, title=title))
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
    """

    html: Path | None = None
    png: Path | None = None
    title: str = "operando"

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
                png_view=report(static=True),
            )
        echo(f"wrote {', '.join(str(p) for p in (self.html, self.png) if p is not None)}")
