"""Plotly figures of the explorer that the report does not have (the report's builders in
:mod:`cryptosweep.reporting.figures` are reused as they are): parameters against score for a
filtered
trials table, two runs' best score against compute, and the Hyperband rungs filled so far.

Same conventions as :mod:`cryptosweep.reporting.figures`: a title, axis labels, the ``plotly_white``
template, and ``None`` when there is nothing to draw.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from cryptosweep.reporting.figures import TEMPLATE

__all__ = ["best_score_curves", "parameter_scores", "rung_fill"]

_PALETTE = qualitative.Plotly
_PANELS_PER_ROW = 4


def _colour(index: int) -> str:
    return _PALETTE[index % len(_PALETTE)]


def parameter_scores(trials: pd.DataFrame, columns: Sequence[str] | None = None,
                     metric: str = "score") -> go.Figure | None:
    """One panel per parameter column of ``trials`` (a filtered trials table): score against
    the parameter's value, one trace per budget and panel (``meta``: the column,
    ``customdata``: the eval ids, in the table's order), evaluations without a score left
    out. ``None`` when no row has a score or there is no parameter column."""
    scored = trials[trials["score"].notna()] if "score" in trials else trials.iloc[0:0]
    columns = [c for c in (columns if columns is not None else
                           [c for c in trials.columns if "." in c])
               if c in scored.columns and scored[c].notna().any()]
    if scored.empty or not columns:
        return None
    n_rows = math.ceil(len(columns) / _PANELS_PER_ROW)
    n_cols = min(len(columns), _PANELS_PER_ROW)
    fig = make_subplots(rows=n_rows, cols=n_cols, subplot_titles=columns,
                        horizontal_spacing=0.06, vertical_spacing=0.5 / max(n_rows, 1) / 1.5,
                        shared_yaxes=True)
    budgets = sorted(scored["budget"].unique())
    for index, column in enumerate(columns):
        row, col = index // n_cols + 1, index % n_cols + 1
        for b, budget in enumerate(budgets):
            part = scored[(scored["budget"] == budget) & scored[column].notna()]
            if part.empty:
                continue
            fig.add_trace(go.Scatter(
                x=part[column].tolist(), y=part["score"].tolist(), mode="markers",
                name=f"budget {budget:g}", legendgroup=f"budget {budget:g}",
                showlegend=index == 0, marker={"color": _colour(b), "size": 7, "opacity": 0.75},
                customdata=[int(i) for i in part.index], meta=column,
                hovertemplate=f"eval %{{customdata}}<br>{column} %{{x}}<br>score %{{y:.4f}}"
                              f"<extra>budget {budget:g}</extra>",
            ), row=row, col=col)
    fig.update_yaxes(title_text=metric, col=1)
    fig.update_layout(
        template=TEMPLATE, height=260 * n_rows + 120, legend_title="evaluations",
        title=f"Parameters against validation {metric}: {len(scored)} evaluations "
              "(the current filter)",
        margin={"t": 90},
    )
    return fig


def best_score_curves(curves: Mapping[str, tuple[Sequence[float], Sequence[float | None]]],
                      metric: str = "score") -> go.Figure | None:
    """Best validation score so far against compute, one step line per run (from
    :func:`cryptosweep.explore.runs.best_score_curve`). ``None`` when no run has a point."""
    if not any(compute for compute, _ in curves.values()):
        return None
    fig = go.Figure()
    for i, (name, (compute, best)) in enumerate(curves.items()):
        fig.add_trace(go.Scatter(
            x=list(compute), y=list(best), mode="lines", name=name, connectgaps=False,
            line={"shape": "hv", "color": _colour(i), "width": 2},
            hovertemplate="compute %{x:g}<br>best %{y:.4f}<extra>" + name + "</extra>",
        ))
    fig.update_layout(
        template=TEMPLATE, title=f"Best validation {metric} at the full budget against compute",
        xaxis_title="cumulative compute (budget units, eval_id order)",
        yaxis_title=f"best validation {metric} so far", legend_title="run",
    )
    return fig


def rung_fill(rungs: Sequence[Mapping[str, Any]]) -> go.Figure | None:
    """Hyperband rungs filled so far: per (iteration, bracket, rung), stacked bars of its done,
    failed, running and not yet started evaluations, which add up to the planned count.
    ``rungs``: dicts with ``iteration``, ``bracket``, ``rung``, ``resource``, ``planned``,
    ``done``, ``failed``, ``running``. ``None`` without rungs."""
    if not rungs:
        return None
    labels = [f"it {r['iteration']} · s={r['bracket']} · rung {r['rung']} "
              f"(r={r['resource']:g})" for r in rungs]
    waiting = [max(0, r["planned"] - r["done"] - r["failed"] - r["running"]) for r in rungs]
    fig = go.Figure()
    for values, colour, name in (([r["done"] for r in rungs], "#2ca02c", "done"),
                                 ([r["failed"] for r in rungs], "#d62728", "failed"),
                                 ([r["running"] for r in rungs], "#ff7f0e", "running"),
                                 (waiting, "#d9d9d9", "not started")):
        fig.add_trace(go.Bar(x=labels, y=values, name=name, marker={"color": colour}))
    filled = sum(r["done"] + r["failed"] for r in rungs)
    planned = sum(r["planned"] for r in rungs)
    fig.update_layout(
        template=TEMPLATE, barmode="stack",
        title=f"Hyperband rungs filled: {filled} of {planned} evaluations",
        xaxis_title="iteration · bracket · rung (resource per evaluation)",
        yaxis_title="evaluations", legend_title="status",
    )
    return fig
