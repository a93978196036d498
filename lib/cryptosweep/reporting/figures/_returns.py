"""Returns figures: out-of-sample equity and drawdown on dates, and the time axis every return
chart shares."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from cryptosweep.records.journal import Journal
from cryptosweep.reporting.figures._style import TEMPLATE, _color


def time_axis(n: int, bar_times: Sequence[Any] | None) -> dict[str, Any]:
    """Scatter x arguments for ``n`` bars: ``x0``/``dx`` (no array) for bar indices or evenly
    spaced UTC times, else the times themselves."""
    if bar_times is None:
        return {"x0": 0, "dx": 1}
    times = np.asarray(bar_times, dtype="datetime64[ms]")
    if len(times) != n:
        raise ValueError(f"{len(times)} bar times for {n} bars")
    steps = np.diff(times).astype("int64")
    if n > 1 and (steps == steps[0]).all():
        return {"x0": _iso(times[0]), "dx": int(steps[0])}
    return {"x": [_iso(t) for t in times]} if n else {"x": []}


def _iso(time: np.datetime64) -> str:
    return str(np.datetime_as_string(time, unit="s")).replace("T", " ")


def _block_times(block: Mapping[str, Any], interval: np.timedelta64 | None) -> np.ndarray:
    """The UTC time of each bar of a dated block ``{start, stop, first_bar, last_bar}``: exact
    when the block has no gap (``last - first == (n - 1) * interval``), else spread evenly from
    its first to its last bar (the results do not say where the gaps are)."""
    n = int(block["stop"]) - int(block["start"])
    first = np.datetime64(_naive(block["first_bar"]), "ms")
    last = np.datetime64(_naive(block["last_bar"]), "ms")
    if n <= 1:
        return np.array([first] * max(n, 0), dtype="datetime64[ms]")
    if interval is not None and last - first == interval * (n - 1):
        return first + interval * np.arange(n)
    span = (last - first).astype("int64")
    return first + np.round(np.linspace(0, span, n)).astype("int64").astype("timedelta64[ms]")


def _naive(stamp: str) -> str:
    """An ISO time with an offset (``+00:00``, all UTC here) as naive UTC for numpy."""
    return str(np.datetime64(dt.datetime.fromisoformat(stamp).astimezone(dt.UTC)
                             .replace(tzinfo=None), "ms"))


def _interval(data: Mapping[str, Any]) -> np.timedelta64 | None:
    from cryptosweep.core.intervals import parse_interval

    try:
        return np.timedelta64(int(parse_interval(data["bar_interval"]).total_seconds() * 1000),
                              "ms")
    except (KeyError, TypeError, ValueError):
        return None


def out_of_sample_times(results: Mapping[str, Any], kind: str = "validation"
                        ) -> tuple[np.ndarray | None, list[tuple[str, str]]]:
    """The UTC time of each bar of the ``validation`` (the walk-forward test blocks, one after
    the other) or ``holdout`` returns, from the results' dated blocks (``data.folds``,
    ``data.holdout``), and the vertical markers for :func:`equity_curves`: each fold's start
    and the holdout's start. ``(None, [])`` for results without dated blocks."""
    data = results.get("data") or {}
    interval = _interval(data)
    folds, holdout = data.get("folds"), data.get("holdout")
    holdout_mark = ([(_iso(np.datetime64(_naive(holdout["first_bar"]), "ms")),
                      "holdout starts")] if holdout else [])
    if kind == "validation":
        if not folds:
            return None, []
        times = np.concatenate([_block_times(block, interval) for block in folds])
        marks = [(_iso(np.datetime64(_naive(block["first_bar"]), "ms")), f"fold {k + 1}")
                 for k, block in enumerate(folds)]
        return times, marks + holdout_mark
    if kind == "holdout":
        if not holdout:
            return None, []
        return _block_times(holdout, interval), holdout_mark
    raise ValueError(f"kind must be 'validation' or 'holdout', got {kind!r}")


def fold_dates(results: Mapping[str, Any]) -> list[str]:
    """``2021-12-03 – 2022-02-10`` for each walk-forward test block (UTC dates); empty for
    results without dated blocks."""
    return [f"{_naive(block['first_bar'])[:10]} – {_naive(block['last_bar'])[:10]}"
            for block in (results.get("data") or {}).get("folds") or []]


def equity_drawdown(returns: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Compounded equity ``cumprod(1 + r)`` and drawdown ``equity / running peak - 1`` (the peak
    includes the starting 1, as in :mod:`cryptosweep.trading.metrics`) of per-bar returns."""
    equity = np.cumprod(1.0 + np.asarray(returns, dtype=float))
    peak = np.maximum.accumulate(np.concatenate([[1.0], equity]))[1:]  # start counts
    return equity, equity / peak - 1.0


def equity_curves(journal: Journal, eval_ids: Sequence[int], kind: str = "validation", *,
                  bar_times: Sequence[Any] | None = None,
                  markers: Sequence[tuple[Any, str]] = ()) -> go.Figure | None:
    """Compounded equity ``cumprod(1 + r)`` (top) and drawdown ``equity / running peak − 1``
    (bottom; the peak includes the starting 1, as in :mod:`cryptosweep.trading.metrics`) of the
    given evaluations' per-bar returns of ``kind`` (``validation``: the walk-forward test bars,
    folds one after the other; ``holdout``), as lines (no fills, so that curves stay apart),
    beside buy-and-hold on the same bars (when the journal holds its returns: one round trip
    per block, :mod:`cryptosweep.trading.baselines`) and flat (no position: equity 1, no
    drawdown).

    x: ``bar_times`` (the UTC time of each bar of that sequence) on a date axis, else the bar
    index within it. ``markers``: ``(x, label)`` vertical lines, e.g. fold starts. The curves
    are stored as float32 (7 significant digits, far below what a chart shows). ``None`` when
    none of them has returns of that kind (e.g. no holdout); a ValueError when only some have.
    """
    if kind not in ("validation", "holdout"):
        raise ValueError(f"kind must be 'validation' or 'holdout', got {kind!r}")
    stored = journal.get_returns(kind)
    ids = [int(i) for i in eval_ids]
    missing = [i for i in ids if i not in stored]
    if len(missing) == len(ids):
        return None
    if missing:
        raise ValueError(f"no {kind} returns journaled for eval(s) {missing}")
    n_bars = len(stored[ids[0]])
    axis = time_axis(n_bars, bar_times)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        row_heights=[0.6, 0.4])
    for i, eval_id in enumerate(ids):
        returns = np.asarray(stored[eval_id], dtype=float)
        equity, drawdown = equity_drawdown(returns)
        style = {"color": _color(i), "width": 1.5 if i == 0 else 1.0}
        x = axis if len(returns) == n_bars else time_axis(len(returns), None)
        fig.add_trace(go.Scatter(y=equity.astype("float32"), mode="lines",
                                 name=f"eval {eval_id}" + (" (winner)" if i == 0 else ""),
                                 legendgroup=f"eval {eval_id}", line=style, **x), row=1, col=1)
        fig.add_trace(go.Scatter(y=drawdown.astype("float32"), mode="lines",
                                 name=f"eval {eval_id}", legendgroup=f"eval {eval_id}",
                                 showlegend=False, line=style, **x), row=2, col=1)
    hold = journal.get_baseline_returns(kind).get("buy_and_hold")
    if hold is not None and len(hold) == n_bars:
        equity = np.cumprod(1.0 + np.asarray(hold, dtype=float))
        peak = np.maximum.accumulate(np.concatenate([[1.0], equity]))[1:]
        style = {"color": "#8c564b", "width": 1.2, "dash": "dot"}
        for row, values, legend in ((1, equity, True), (2, equity / peak - 1.0, False)):
            fig.add_trace(go.Scatter(y=values.astype("float32"), mode="lines",
                                     name="buy-and-hold", legendgroup="buy-and-hold",
                                     showlegend=legend, line=style, **axis), row=row, col=1)
    ends = _ends(axis, n_bars)
    flat = {"color": "#555", "width": 1.5, "dash": "dash"}
    fig.add_trace(go.Scatter(x=ends, y=[1.0, 1.0], mode="lines", name="flat (no position)",
                             legendgroup="flat", line=flat, hoverinfo="skip"), row=1, col=1)
    fig.add_trace(go.Scatter(x=ends, y=[0.0, 0.0], mode="lines", name="flat (no position)",
                             legendgroup="flat", showlegend=False, line=flat, hoverinfo="skip"),
                  row=2, col=1)
    for x, label in markers:
        line = {"color": "#999", "width": 1, "dash": "dot"}
        fig.add_vline(x=x, line=line, annotation_text=label, annotation_position="top left",
                      row=1, col=1)
        fig.add_vline(x=x, line=line, row=2, col=1)
    fig.update_yaxes(title_text="equity (start = 1)", row=1, col=1)
    fig.update_yaxes(title_text="drawdown", tickformat=".0%", row=2, col=1)
    fig.update_xaxes(title_text="time (UTC)" if bar_times is not None else
                     f"bar index within the {kind} out-of-sample sequence", row=2, col=1)
    if bar_times is not None:
        fig.update_xaxes(type="date")
    fig.update_layout(template=TEMPLATE, height=600,
                      title=f"Equity and drawdown, {kind} returns", hovermode="x unified")
    return fig


def _ends(axis: dict[str, Any], n: int) -> list[Any]:
    """The first and last x of a time axis made by :func:`time_axis`."""
    if "x" in axis:
        return [axis["x"][0], axis["x"][-1]] if axis["x"] else [0, 0]
    if isinstance(axis["x0"], str):
        first = np.datetime64(axis["x0"].replace(" ", "T"), "ms")
        return [axis["x0"], _iso(first + np.timedelta64(axis["dx"] * (n - 1), "ms"))]
    return [axis["x0"], axis["x0"] + axis["dx"] * (n - 1)]
