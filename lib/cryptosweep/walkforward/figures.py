"""Plotly figures of a walk-forward's combined results (``walkforward_results_*.json``), for
``notebooks/walkforward_analysis.ipynb``: the out-of-sample equity with the window
boundaries, in-sample against out-of-sample score per window, and the winners' parameter
paths. Same conventions as :mod:`cryptosweep.reporting.figures` (title, axis labels, its template,
naive UTC times, ``None`` when a chart does not apply)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from cryptosweep.core.formatting import metric_name
from cryptosweep.reporting.figures import TEMPLATE
from cryptosweep.walkforward.analysis import search_ranges


def segment_times(results: Mapping[str, Any]) -> pd.DatetimeIndex:
    """The open time of every out-of-sample bar, segment after segment (naive UTC)."""
    parts = []
    for row in results["windows"]:
        bars = row["oos_stop"] - row["oos_start"]
        first = pd.Timestamp(row["oos_first_bar"]).tz_convert(None)
        last = pd.Timestamp(row["oos_last_bar"]).tz_convert(None)
        parts.append(pd.date_range(first, last, periods=bars))
    return parts[0].append(parts[1:]) if len(parts) > 1 else parts[0]


def oos_equity(results: Mapping[str, Any]) -> go.Figure:
    """The process's out-of-sample equity (segments concatenated) against buy-and-hold over
    the same segments, a dotted line where each window's segment starts."""
    times = segment_times(results)
    oos = results["out_of_sample"]
    figure = go.Figure()
    curves = [("walk-forward process", oos["returns"], "#1f77b4")] + [
        (name.replace("_", "-"), block["returns"], "#7f7f7f")
        for name, block in oos["baselines"].items() if name != "flat"]
    for name, returns, colour in curves:
        equity = np.cumprod(1.0 + np.asarray(returns, dtype="float64"))
        figure.add_trace(go.Scatter(x=times, y=equity, name=name, mode="lines",
                                    line={"color": colour}))
    for row in results["windows"]:
        start = pd.Timestamp(row["oos_first_bar"]).tz_convert(None)
        figure.add_vline(x=start, line={"dash": "dot", "color": "#bbbbbb"})
        figure.add_annotation(x=start, y=1.0, yref="paper", text=f"w{row['window']}",
                              showarrow=False, xanchor="left", yanchor="top")
    figure.update_layout(title="Out-of-sample equity, window by window (what the process "
                         "traded on each segment)", xaxis_title="time (UTC)",
                         yaxis_title="equity (start = 1)", template=TEMPLATE)
    return figure


def in_vs_out_of_sample(results: Mapping[str, Any]) -> go.Figure:
    """Per window: the winner's in-sample (validation) score, the same winner's score on the
    segment, what the process traded there (the winner, a kept champion, or flat: 0), and
    buy-and-hold on the same segment. (The winner's in-sample score beside the process's
    segment alone compared two models, or a model with flat: a rejected winner's loss on its
    segment showed as 0.)"""
    rows = results["windows"]
    labels = [f"w{row['window']}" for row in rows]
    name = metric_name(results["metric"])
    figure = go.Figure()
    for key, label, colour in (("is_score", "winner, in-sample (validation)", "#1f77b4"),
                               ("winner_oos_score", "winner, out-of-sample", "#ff7f0e"),
                               ("oos_score", "what the process traded, out-of-sample",
                                "#2ca02c"),
                               ("buy_and_hold_score", "buy-and-hold, same segment", "#7f7f7f")):
        figure.add_trace(go.Bar(x=labels, y=[row[key] for row in rows], name=label,
                                marker_color=colour))
    figure.update_layout(title=f"{name}: in sample vs out of sample, per window",
                         barmode="group", xaxis_title="window", yaxis_title=name,
                         template=TEMPLATE)
    return figure


def parameter_paths(results: Mapping[str, Any]) -> go.Figure | None:
    """Each numeric parameter of the windows' winners as a share of its search range (0: its
    low end, 1: its high end), window by window: a stable process draws flat lines."""
    ranges = search_ranges(results["config"])
    paths = results["parameters"]["paths"]
    figure = go.Figure()
    for key, values in paths.items():
        if key not in ranges:
            continue
        low, high = ranges[key]
        shares = [(float(v) - low) / (high - low) if isinstance(v, int | float)
                  and not isinstance(v, bool) and high > low else None for v in values]
        figure.add_trace(go.Scatter(x=[f"w{k}" for k in range(len(values))], y=shares,
                                    name=key, mode="lines+markers"))
    if not figure.data:
        return None
    figure.update_layout(title="Winners' parameters by window (share of the search range)",
                         xaxis_title="window", yaxis_title="position in range",
                         yaxis_range=[-0.05, 1.05], template=TEMPLATE)
    return figure
