"""Figures for print: sizes in millimetres, fonts and lines readable at the printed size.

The paper figures of both domains (:mod:`dems.figures`, :mod:`tofsims.figures`) are
matplotlib figures built under :func:`print_style` at a journal column width —
:data:`SINGLE_COLUMN_MM` (85 mm) or :data:`DOUBLE_COLUMN_MM` (175 mm) — so 7 pt text stays
7 pt on paper. They are plain :class:`matplotlib.figure.Figure` objects (no pyplot, no GUI
backend), safe to build off the main thread. matplotlib is imported when a figure is made.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DOUBLE_COLUMN_MM",
    "GROUP_STYLES",
    "SINGLE_COLUMN_MM",
    "GroupStyle",
    "group_style",
    "legend_below",
    "panel_grid",
    "panel_title",
    "print_figure",
    "print_style",
]

MM_PER_INCH = 25.4
SINGLE_COLUMN_MM = 85.0
DOUBLE_COLUMN_MM = 175.0
#: matplotlib settings for print: 7 pt text, thin lines, fonts kept as text in SVG/PDF.
STYLE: dict[str, Any] = {
    "font.size": 7,
    "axes.titlesize": 7,
    "axes.labelsize": 7,
    "xtick.labelsize": 6,
    "ytick.labelsize": 6,
    "legend.fontsize": 6,
    "lines.linewidth": 1.0,
    "axes.linewidth": 0.6,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "xtick.major.size": 2.5,
    "ytick.major.size": 2.5,
    "legend.frameon": False,
    "axes.spines.top": False,
    "svg.fonttype": "none",
    "pdf.fonttype": 42,
}


@dataclass(frozen=True)
class GroupStyle:
    """How one compared group (sample) is told apart when the colour means gas or fragment.

    Attributes
    ----------
    dash
        Bokeh ``line_dash``.
    linestyle
        matplotlib line style.
    hatch
        matplotlib bar hatch.
    alpha
        Fill opacity of bars.
    """

    dash: str
    linestyle: str
    hatch: str
    alpha: float


GROUP_STYLES = (
    GroupStyle("solid", "-", "", 0.9),
    GroupStyle("dashed", "--", "////", 0.55),
    GroupStyle("dotted", ":", "....", 0.35),
    GroupStyle("dashdot", "-.", "xxxx", 0.2),
)


def group_style(index: int) -> GroupStyle:
    """Return the style of the ``index``-th group (cycling after four)."""
    return GROUP_STYLES[index % len(GROUP_STYLES)]


@contextlib.contextmanager
def print_style() -> Iterator[None]:
    """Build (and save) a figure with the print settings of :data:`STYLE`."""
    import matplotlib

    with matplotlib.rc_context(STYLE):
        yield


def print_figure(width_mm: float, height_mm: float) -> Any:
    """Return an empty figure of the given printed size, laid out with constrained layout."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width_mm / MM_PER_INCH, height_mm / MM_PER_INCH), layout="constrained")


def panel_title(axes: Any, letter: str, title: str) -> None:
    """Title a panel ``(a) Gas flux`` at its left edge, above the axes (never on tick labels)."""
    axes.set_title(f"({letter}) {title}", loc="left")


def panel_grid(figure: Any, count: int, columns: int, **keywords: Any) -> list[Any]:
    """Add ``count`` axes on a grid of ``columns`` columns (``keywords``: e.g. a projection)."""
    rows = -(-count // columns)
    grid = figure.add_gridspec(rows, columns)
    return [figure.add_subplot(grid[i // columns, i % columns], **keywords) for i in range(count)]


#: Distance (points) from the bottom of the axes to the top of a legend below it: room for the
#: tick labels and the axis label at print size.
LEGEND_GAP_PT = 26


def legend_below(axes: Any, **keywords: Any) -> Any:
    """Put the legend of ``axes`` under its x-axis label, centred, at a fixed distance.

    The distance is in points, not a fraction of the axes: constrained layout then makes room
    for the legend without moving it (a fraction would move it as the axes shrink).
    """
    from matplotlib.transforms import offset_copy

    below = offset_copy(axes.transAxes, fig=axes.figure, y=-LEGEND_GAP_PT, units="points")
    return axes.legend(
        loc="upper center", bbox_to_anchor=(0.5, 0.0), bbox_transform=below, **keywords
    )
