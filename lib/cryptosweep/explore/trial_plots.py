"""Figures of one trial in depth: equity and drawdown of its validation folds and holdout (as
the sweep journaled them, and the what-if), and its trades on a candlestick chart.

The equity figure is built once per trial (:func:`equity_figure`, a plotly figure dict with
empty what-if traces) and then only its what-if traces are refilled (:func:`fill_equity`) as
the trading sliders move: building a plotly figure with subplots takes ~100 ms, refilling
arrays of a dict none. Time axes are the report's
(:func:`cryptosweep.reporting.figures.out_of_sample_times`
and :func:`cryptosweep.reporting.figures.time_axis`: UTC dates, fold and holdout starts marked),
equity and
drawdown its :func:`cryptosweep.reporting.figures.equity_drawdown`; curves are float32 as in the
report.
Trace ``meta`` names what a trace holds (``what-if validation equity``, ``long entries``, ...).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

from cryptosweep.explore.render import json_figure, typed_array
from cryptosweep.explore.trial import HOLDOUT
from cryptosweep.explore.whatif import BlockBacktest, WhatIf
from cryptosweep.reporting.figures import TEMPLATE, equity_drawdown, out_of_sample_times, time_axis
from cryptosweep.trading.backtest import barrier_levels
from cryptosweep.trading.steps import Market, TradingParams

__all__ = [
    "CANDLES_PER_WINDOW",
    "KINDS",
    "equity_figure",
    "fill_equity",
    "trade_windows",
    "trades_figure",
]

#: The out-of-sample sequences of a trial: the walk-forward test blocks, and the holdout.
KINDS = ("validation", HOLDOUT)
#: How many candles the trades chart draws at a time (two weeks of hourly bars).
CANDLES_PER_WINDOW = 336
SWEPT, WHAT_IF = "as swept", "what-if"
_STYLE = {(SWEPT, "validation"): {"color": "#1f77b4", "width": 1.5},
          (SWEPT, HOLDOUT): {"color": "#2ca02c", "width": 1.5},
          (WHAT_IF, "validation"): {"color": "#ff7f0e", "width": 1.5, "dash": "dash"},
          (WHAT_IF, HOLDOUT): {"color": "#d62728", "width": 1.5, "dash": "dash"}}
_EXIT_COLOURS = {"stop": "#d62728", "take_profit": "#2ca02c", "time": "#444444",
                 "end": "#444444"}


def _axes(data: Mapping[str, Any] | None, lengths: Mapping[str, int]
          ) -> tuple[dict[str, dict[str, Any]], list[tuple[str, str]]]:
    """The x arguments of each sequence (UTC dates from the run's dated blocks, else the bar
    position, the holdout after the validation bars) and the fold/holdout start markers."""
    results = {"data": dict(data or {})}
    axes, markers = {}, []
    for kind in KINDS:
        n = lengths.get(kind, 0)
        times, marks = out_of_sample_times(results, kind)
        if times is not None and len(times) == n:
            axes[kind] = time_axis(n, times)
            if kind == "validation":
                markers = marks
        else:
            axes[kind] = {"x0": 0 if kind == "validation" else lengths.get("validation", 0),
                          "dx": 1}
    if not lengths.get(HOLDOUT):  # not drawn (locked, or none): its start is not marked
        holdout_marks = out_of_sample_times(results, HOLDOUT)[1]
        markers = [mark for mark in markers if mark not in holdout_marks]
    return axes, markers


def equity_figure(swept: Mapping[str, np.ndarray], data: Mapping[str, Any] | None,
                  lengths: Mapping[str, int], title: str) -> dict[str, Any]:
    """Equity (top) and drawdown (bottom) of a trial's out-of-sample sequences on one time
    axis: the sweep's journaled per-bar returns (``swept``: ``validation`` and ``holdout``,
    either may be missing) as solid lines, and empty what-if traces (dashed) for
    :func:`fill_equity`; ``lengths``: the bars of each sequence, the holdout drawn (and its
    start marked) only where it has some. Each fold's start is marked. A plotly figure dict
    in JSON form (:func:`~cryptosweep.explore.render.json_figure`)."""
    axes, markers = _axes(data, lengths)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        row_heights=[0.6, 0.4])
    for source in (SWEPT, WHAT_IF):
        for kind in KINDS:
            if not lengths.get(kind):
                continue
            returns = swept.get(kind) if source == SWEPT else None
            if source == SWEPT and returns is None:
                continue
            name = f"{source}: {'validation folds' if kind == 'validation' else 'holdout'}"
            equity, drawdown = (equity_drawdown(returns) if returns is not None
                                else (np.empty(0), np.empty(0)))
            for row, values, what in ((1, equity, "equity"), (2, drawdown, "drawdown")):
                fig.add_trace(go.Scatter(
                    y=values.astype("float32"), mode="lines", name=name, legendgroup=name,
                    showlegend=row == 1, line=_STYLE[(source, kind)],
                    meta=f"{source} {kind} {what}", **axes[kind]), row=row, col=1)
    for x, label in markers:
        fig.add_shape(type="line", xref="x", yref="paper", x0=x, x1=x, y0=0, y1=1,
                      line={"color": "#999", "width": 1, "dash": "dot"})
        fig.add_annotation(x=x, xref="x", y=1.0, yref="paper", text=label, showarrow=False,
                           xanchor="left", yanchor="bottom", font={"size": 11})
    fig.update_yaxes(title_text="equity (start = 1)", row=1, col=1)
    fig.update_yaxes(title_text="drawdown", tickformat=".0%", row=2, col=1)
    dated = "x" in axes["validation"] or isinstance(axes["validation"].get("x0"), str)
    fig.update_xaxes(title_text="time (UTC)" if dated else "bar", row=2, col=1)
    if dated:
        fig.update_xaxes(type="date")
    fig.update_layout(template=TEMPLATE, height=520, title=title, hovermode="x unified",
                      margin={"t": 90}, legend={"orientation": "h", "y": -0.18})
    return json_figure(fig)


def fill_equity(figure: dict[str, Any], whatif: WhatIf | None, title: str) -> dict[str, Any]:
    """``figure`` (from :func:`equity_figure`) with its what-if traces holding ``whatif``'s
    equity and drawdown (empty for ``None``) and ``title``; changed in place and returned."""
    series: dict[str, np.ndarray] = {}
    if whatif is not None:
        series["validation"] = whatif.validation_returns
        if whatif.holdout is not None:
            series[HOLDOUT] = whatif.holdout.result.returns
    curves = {kind: equity_drawdown(returns) for kind, returns in series.items()}
    for trace in figure["data"]:
        meta = str(trace.get("meta", ""))
        if not meta.startswith(WHAT_IF):
            continue
        _, kind, what = meta.rsplit(" ", 2)
        values = curves[kind][0 if what == "equity" else 1] if kind in curves else np.empty(0)
        trace["y"] = typed_array(values.astype("float32"))
    figure["layout"]["title"] = {"text": title}
    return figure


def trade_windows(times: pd.DatetimeIndex, size: int = CANDLES_PER_WINDOW
                  ) -> list[tuple[str, int]]:
    """The windows of ``size`` candles a block is drawn in: ``(label, first position)``, the
    label the UTC date of its first candle."""
    return [(f"{times[start]:%Y-%m-%d %H:%M}", start) for start in range(0, len(times), size)]


def _naive(times: pd.DatetimeIndex) -> np.ndarray:
    """Times as naive UTC ``datetime64[ms]`` (plotly.js ignores time-zone offsets)."""
    index = pd.DatetimeIndex(times)
    if index.tz is not None:
        index = index.tz_convert("UTC").tz_localize(None)
    return index.to_numpy(dtype="datetime64[ms]")


def _text(times: np.ndarray) -> list[str]:
    return [str(t) for t in np.datetime_as_string(times, unit="s")]


@functools.cache
def _template() -> dict[str, Any]:
    return pio.templates[TEMPLATE].to_plotly_json()


def trades_figure(market: Market, block: BlockBacktest, start: int, trading: TradingParams,
                  size: int = CANDLES_PER_WINDOW, title: str = "") -> dict[str, Any]:
    """The candles of ``block`` from position ``start`` (``size`` of them) with the trades of
    its backtest that are open in that window: entries (triangles up for longs, down for
    shorts) and exits (crosses coloured by their reason) at their fill prices, and each
    trade's stop-loss (red) and take-profit (green) levels
    (:func:`~cryptosweep.trading.backtest.barrier_levels` of ``trading``) from its entry bar
    to its exit bar. ``customdata`` of the entries: each trade's position in
    ``block.result.trades``; of the exits: that position and the trade's net return.

    A plotly figure dict in JSON form, built without plotly's validation (~50 ms less per
    redraw; ``plotly.graph_objects.Figure(figure)`` accepts it)."""
    stop = min(start + size, len(block.bars))
    bars = block.bars[start:stop]
    times = _naive(block.times)
    data: list[dict[str, Any]] = [{
        "type": "candlestick", "name": "candles", "meta": "candles",
        "x": _text(times[start:stop]), "open": typed_array(market.open_[bars]),
        "high": typed_array(market.high[bars]), "low": typed_array(market.low[bars]),
        "close": typed_array(market.close[bars]),
        "increasing": {"line": {"color": "#26a69a"}},
        "decreasing": {"line": {"color": "#ef5350"}}, "opacity": 0.55,
    }]
    shown = [(i, t) for i, t in enumerate(block.result.trades)
             if t.entry_bar < stop and t.exit_bar >= start]
    index = np.array([i for i, _ in shown], dtype="int64")
    entry = np.array([t.entry_bar for _, t in shown], dtype="int64")
    exit_ = np.array([t.exit_bar for _, t in shown], dtype="int64")
    side = np.array([t.side for _, t in shown], dtype="int64")
    entry_price = np.array([t.entry_price for _, t in shown], dtype="float64")
    exit_price = np.array([t.exit_price for _, t in shown], dtype="float64")
    reasons = [t.exit_reason for _, t in shown]
    net = [t.net_return for _, t in shown]
    stops, targets = barrier_levels(entry_price, side, trading.stop_loss, trading.take_profit)
    entry_times, exit_times = _text(times[entry]), _text(times[exit_])
    for name, levels, colour in (("stop-loss levels", stops, "#d62728"),
                                 ("take-profit levels", targets, "#2ca02c")):
        x: list[str | None] = []
        y: list[float | None] = []
        for begin, end, level in zip(entry_times, exit_times, levels.tolist(), strict=True):
            x += [begin, end, None]
            y += [level, level, None]
        data.append({"type": "scatter", "mode": "lines", "name": name, "meta": name, "x": x,
                     "y": y, "line": {"color": colour, "width": 1, "dash": "dash"},
                     "hoverinfo": "skip"})
    for name, chosen, symbol, colour in (("long entries", side > 0, "triangle-up", "#2ca02c"),
                                         ("short entries", side < 0, "triangle-down",
                                          "#d62728")):
        picked = np.flatnonzero(chosen)
        data.append({
            "type": "scatter", "mode": "markers", "name": name, "meta": name,
            "x": [entry_times[i] for i in picked], "y": typed_array(entry_price[picked]),
            "customdata": index[picked].tolist(),
            "marker": {"symbol": symbol, "size": 11, "color": colour,
                       "line": {"color": "#333", "width": 1}},
            "hovertemplate": "entry %{y:,.2f}<br>%{x}<extra>trade %{customdata}</extra>"})
    data.append({
        "type": "scatter", "mode": "markers", "meta": "exits",
        "name": "exits: stop (red), take profit (green), time (dark)",
        "x": exit_times, "y": typed_array(exit_price),
        "customdata": [[int(i), float(r)] for i, r in zip(index.tolist(), net, strict=True)],
        "text": [reason.replace("_", " ") for reason in reasons],
        "marker": {"symbol": "x", "size": 11, "line": {"color": "#222", "width": 1},
                   "color": [_EXIT_COLOURS.get(reason, "#333") for reason in reasons]},
        "hovertemplate": "exit %{y:,.2f} (%{text})<br>%{x}<br>net %{customdata[1]:+.2%}"
                         "<extra>trade %{customdata[0]}</extra>"})
    half = np.timedelta64(int(market.bar_interval.total_seconds() * 500), "ms")
    first, last = _text(np.array([times[start] - half, times[stop - 1] + half]))
    layout = {
        "template": _template(), "height": 460, "title": {"text": title},
        "hovermode": "closest", "margin": {"t": 70},
        "xaxis": {"rangeslider": {"visible": False}, "type": "date",
                  "title": {"text": "time (UTC)"}, "range": [first, last]},
        "yaxis": {"title": {"text": "price"}}, "legend": {"orientation": "h", "y": -0.2},
    }
    return {"data": data, "layout": layout}
