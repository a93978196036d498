"""Putting a plotly figure into an :class:`ipywidgets.Output`, offline, and a table into an
:class:`ipywidgets.HTML` (:func:`frame_html`).

plotly's ``FigureWidget`` needs ``anywidget``, which the environment does not pin; instead a
figure goes into an ``Output`` widget as plotly's mime bundle
(``application/vnd.plotly.v1+json``), which the ``jupyterlab-plotly`` extension shipped inside
the plotly wheel draws with its own copy of plotly.js: nothing is loaded from a CDN. The
bundle is set through ``Output.outputs`` rather than ``with output: fig.show()``, so that a
callback and a background thread (the live watcher) can redraw alike.
"""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

from cryptosweep.reporting.offline import PLOTLY_MIME

__all__ = [
    "PLOTLY_MIME",
    "figure_bundle",
    "frame_html",
    "json_figure",
    "show_figure",
    "show_message",
    "table_html",
    "typed_array",
]


def figure_bundle(figure: go.Figure | Mapping[str, Any]) -> dict[str, Any]:
    """The figure (a plotly figure, or its dict, which is not validated again) as a
    ``display_data`` output: plotly's mime bundle (JSON-safe) plus a text line for front ends
    without the extension."""
    fig_dict = figure.to_dict() if isinstance(figure, go.Figure) else dict(figure)
    bundle = pio.renderers["plotly_mimetype"].to_mimebundle(fig_dict)
    title = ((fig_dict.get("layout") or {}).get("title") or {}).get("text") or "plotly figure"
    return {"output_type": "display_data", "metadata": {},
            "data": {**bundle, "text/plain": f"<{title}>"}}


def json_figure(figure: go.Figure) -> dict[str, Any]:
    """The figure as its JSON-compatible dict (numeric arrays as plotly's typed arrays,
    :func:`typed_array`), as it is sent to the page: built and validated once, then patched
    (a trace's ``y`` replaced) and sent again without plotly validating it anew."""
    return json.loads(pio.to_json(figure.to_dict(), validate=False))


def typed_array(values: Any) -> dict[str, str]:
    """A numeric array in plotly.js's typed-array form (``{"dtype", "bdata"}``: base64 of the
    little-endian values), the form plotly.py writes numpy arrays in: float32 stays ``f4``,
    other floats are ``f8``, integers ``i4``."""
    array = np.asarray(values)
    if array.dtype == np.float32:
        dtype, code = "<f4", "f4"
    elif np.issubdtype(array.dtype, np.integer):
        dtype, code = "<i4", "i4"
    else:
        dtype, code = "<f8", "f8"
    data = np.ascontiguousarray(array, dtype=dtype).tobytes()
    return {"dtype": code, "bdata": base64.b64encode(data).decode("ascii")}


def show_message(output: Any, message: str) -> None:
    """Replace what ``output`` shows with one line of text."""
    output.outputs = ({"output_type": "display_data", "metadata": {},
                       "data": {"text/html": f"<i>{html.escape(message)}</i>",
                                "text/plain": message}},)


def show_figure(output: Any, figure: go.Figure | Mapping[str, Any] | None,
                empty: str = "nothing to draw") -> None:
    """Replace what ``output`` shows with ``figure``, or with the line ``empty`` for None."""
    if figure is None:
        show_message(output, empty)
    else:
        output.outputs = (figure_bundle(figure),)


_TABLE_STYLE = """<style>
.cs-table{border-collapse:collapse;font-size:12px}
.cs-table td,.cs-table th{border:1px solid #ddd;padding:2px 6px;text-align:right;white-space:nowrap}
.cs-table th{background:#e8eef7;position:sticky;top:0}
.cs-wrap-last td:last-child{white-space:normal;min-width:280px;text-align:left}
.cs-scroll{max-height:420px;overflow:auto}
</style>"""


def _cell(value: Any) -> str:
    """A table cell: missing as "–", a float to 4 significant digits, the rest as text."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def frame_html(frame: pd.DataFrame, max_rows: int | None = None, index: bool = True) -> str:
    """A table as HTML for an :class:`ipywidgets.HTML`: values escaped, numbers to 4
    significant digits, missing values as "–", scrollable, at most ``max_rows`` rows; a last
    column named ``note`` wraps."""
    classes = "cs-table cs-wrap-last" if len(frame.columns) and frame.columns[-1] == "note" \
        else "cs-table"
    shown = frame if max_rows is None else frame.head(max_rows)
    cells = pd.DataFrame({column: [_cell(v) for v in shown[column]] for column in shown.columns},
                         index=shown.index, columns=shown.columns)
    body = cells.to_html(index=index, escape=True, border=0, classes=classes)
    return f"{_TABLE_STYLE}<div class='cs-scroll'>{body}</div>"


def table_html(frame: pd.DataFrame) -> str:
    """A small table as HTML, fast (a slider redraws it): as :func:`frame_html` draws it, the
    first level of a two-level index written once per group; no row limit."""
    index = frame.index
    levels = index.nlevels
    names = [name or "" for name in index.names]
    head = "".join(f"<th>{html.escape(str(name))}</th>" for name in names)
    head += "".join(f"<th>{html.escape(str(column))}</th>" for column in frame.columns)
    keys = list(index)
    values = frame.to_numpy(dtype=object)
    body = []
    for i, key in enumerate(keys):
        key = key if levels > 1 else (key,)
        cells = []
        if levels > 1 and (i == 0 or keys[i - 1][0] != key[0]):
            span = sum(1 for other in keys[i:] if other[0] == key[0])  # groups are adjacent
            cells.append(f"<th rowspan='{span}' valign='top'>{html.escape(str(key[0]))}</th>")
        cells += [f"<th>{html.escape(str(part))}</th>" for part in key[1 if levels > 1 else 0:]]
        cells += [f"<td>{html.escape(_cell(value))}</td>" for value in values[i]]
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f"{_TABLE_STYLE}<div class='cs-scroll'><table class='cs-table'><thead><tr>{head}"
            f"</tr></thead><tbody>{''.join(body)}</tbody></table></div>")
