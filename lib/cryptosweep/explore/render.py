"""Putting a plotly figure into an :class:`ipywidgets.Output`, offline.

plotly's ``FigureWidget`` needs ``anywidget``, which the environment does not pin; instead a
figure goes into an ``Output`` widget as plotly's mime bundle
(``application/vnd.plotly.v1+json``), which the ``jupyterlab-plotly`` extension shipped inside
the plotly wheel draws with its own copy of plotly.js: nothing is loaded from a CDN. The
bundle is set through ``Output.outputs`` rather than ``with output: fig.show()``, so that a
callback and a background thread (the live watcher) can redraw alike.
"""

from __future__ import annotations

import html
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio

__all__ = ["PLOTLY_MIME", "figure_bundle", "show_figure", "show_message"]

PLOTLY_MIME = "application/vnd.plotly.v1+json"


def figure_bundle(figure: go.Figure) -> dict[str, Any]:
    """The figure as a ``display_data`` output: plotly's mime bundle (JSON-safe) plus a text
    line for front ends without the extension."""
    bundle = pio.renderers["plotly_mimetype"].to_mimebundle(figure.to_dict())
    title = figure.layout.title.text or "plotly figure"
    return {"output_type": "display_data", "metadata": {},
            "data": {**bundle, "text/plain": f"<{title}>"}}


def show_message(output: Any, message: str) -> None:
    """Replace what ``output`` shows with one line of text."""
    output.outputs = ({"output_type": "display_data", "metadata": {},
                       "data": {"text/html": f"<i>{html.escape(message)}</i>",
                                "text/plain": message}},)


def show_figure(output: Any, figure: go.Figure | None, empty: str = "nothing to draw") -> None:
    """Replace what ``output`` shows with ``figure``, or with the line ``empty`` for None."""
    if figure is None:
        show_message(output, empty)
    else:
        output.outputs = (figure_bundle(figure),)
