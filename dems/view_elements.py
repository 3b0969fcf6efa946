"""HoloViews building blocks shared by the DEMS views: panel size, time axis, series styling."""

from __future__ import annotations

from typing import Any

import holoviews as hv
import xarray as xr

import holoviews.plotting.bokeh  # isort: skip - registers the bokeh options
import holoviews.plotting.mpl  # isort: skip - registers the matplotlib options

__all__ = ["HEIGHT", "TIME", "WIDTH", "styled_series", "units"]

#: Panel size of the browser views (px).
WIDTH = 800
HEIGHT = 380
TIME = hv.Dimension("time", label="Time", unit="s")


def units(obj: xr.DataArray | xr.Dataset, default: str = "") -> str:
    """Return the ``units`` attribute of ``obj`` (``default`` when it has none)."""
    return str(obj.attrs.get("units", default))


def styled_series(
    element: hv.Element, series: str, name: str, colour: str | None, dash: str = "solid"
) -> hv.Element:
    """Colour an element and make its hover tooltip name the series (``gas: O2``)."""
    dims = [*element.kdims, *element.vdims]
    tooltips = [(series, name), *((d.pprint_label, f"@{{{d.name}}}") for d in dims)]
    bokeh: dict[str, Any] = {"tools": ["hover"], "hover_tooltips": tooltips, "line_dash": dash}
    mpl: dict[str, Any] = {"linestyle": {"solid": "-", "dashed": "--", "dotted": ":"}[dash]}
    if colour is not None:
        bokeh["color"] = mpl["color"] = colour
    return element.opts(backend="bokeh", **bokeh).opts(backend="matplotlib", **mpl)
