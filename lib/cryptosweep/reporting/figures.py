"""Plotly figures for the analysis notebook: one function per chart, no logic in the notebook.

Every builder takes plain inputs — the results dict loaded from ``sweep_results_*.json``, the
resource-usage dict from ``resource_usage_*.json``, a :class:`~cryptosweep.records.journal.Journal`, or
arrays — and returns a :class:`plotly.graph_objects.Figure` with a title, axis labels and the
``plotly_white`` template, or ``None`` when the chart does not apply to the run (no Hyperband
brackets, fewer than two finished full-budget trials, no samples, ...), so that the notebook can
skip it with one ``if``.

Conventions:

* "Full budget" is the largest budget any finished evaluation reached, as in
  :func:`cryptosweep.records.ranking.ranked`; scores are maximised.
* Compute is counted in budget units, every finished evaluation (failed ones included), in
  ``eval_id`` order: the last point of the optimisation history is at ``results["budget_spent"]``.
* Times are shown as naive UTC datetimes (plotly.js ignores time-zone offsets).
* Nothing here is random: the fANOVA importances use a fixed seed, so the report of a run is the
  same every time it is rendered.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from cryptosweep.core.formatting import metric_name
from cryptosweep.records.journal import Journal
from cryptosweep.records.ranking import at_largest_budget

__all__ = [
    "TEMPLATE",
    "dsr_bars",
    "equity_curves",
    "equity_drawdown",
    "fold_dates",
    "importance_basis",
    "importance_evaluator",
    "optimisation_history",
    "optuna_study",
    "out_of_sample_times",
    "overfitting_figure",
    "parallel_coordinates",
    "parameter_importances",
    "promotion_chart",
    "resource_timeline",
    "time_axis",
    "worker_gantt",
]

TEMPLATE = "plotly_white"
_PALETTE = qualitative.Plotly
_STATUS_COLOURS = {"done": "#2ca02c", "failed": "#d62728", "running": "#ff7f0e",
                   "pending": "#7f7f7f"}


def _color(index: int) -> str:
    return _PALETTE[index % len(_PALETTE)]


def _utc(ts: float) -> dt.datetime:
    """A POSIX timestamp as a naive UTC datetime (what plotly.js date axes understand)."""
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).replace(tzinfo=None)


def _compact(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _fmt(value: Any, spec: str = ".3f") -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return format(value, spec)
    return str(value)


# --------------------------------------------------------------------------- search progress


def optimisation_history(results: Mapping[str, Any]) -> go.Figure | None:
    """Best validation score so far against the compute spent.

    x: cumulative budget units of every finished evaluation (done or failed) in ``eval_id``
    order; the step line is the best score among the done evaluations at the full budget up to
    that point (no value before the first one). Every evaluation with a score is a faint marker,
    one trace (colour) per budget. ``None`` when no evaluation finished.
    """
    evaluations = sorted(results.get("evaluations") or [], key=lambda e: e["eval_id"])
    finished = [e for e in evaluations if e["status"] in ("done", "failed")]
    if not finished:
        return None
    full, top_budget = at_largest_budget(finished)
    full_ids = {e["eval_id"] for e in full}

    compute: list[float] = []
    best: list[float | None] = []
    spent, best_so_far = 0.0, None
    for e in finished:
        spent += float(e["budget"])
        if e["eval_id"] in full_ids:
            score = float(e["score"])
            best_so_far = score if best_so_far is None else max(best_so_far, score)
        compute.append(spent)
        best.append(best_so_far)

    fig = go.Figure()
    budgets = sorted({float(e["budget"]) for e in finished})
    for i, budget in enumerate(budgets):
        points = [(x, e) for x, e in zip(compute, finished, strict=True)
                  if float(e["budget"]) == budget and e["status"] == "done"
                  and e["score"] is not None]
        if not points:
            continue
        fig.add_trace(go.Scatter(
            x=[x for x, _ in points], y=[float(e["score"]) for _, e in points],
            mode="markers", name=f"budget {budget:g}", legendgroup="evaluations",
            marker={"color": _color(i), "size": 7, "opacity": 0.4},
            customdata=[[e["eval_id"], e["trial_id"]] for _, e in points],
            hovertemplate="eval %{customdata[0]} (trial %{customdata[1]})<br>"
                          "compute %{x:g}<br>score %{y:.4f}<extra>budget " f"{budget:g}</extra>",
        ))
    if top_budget is not None:
        fig.add_trace(go.Scatter(
            x=compute, y=best, mode="lines", line={"shape": "hv", "color": "black", "width": 2},
            name=f"best at full budget ({top_budget:g})", connectgaps=False,
            hovertemplate="compute %{x:g}<br>best %{y:.4f}<extra></extra>",
        ))
    metric = metric_name(((results.get("config") or {}).get("objective") or {}).get("metric",
                                                                                  "score"))
    fig.update_layout(
        template=TEMPLATE,
        title=f"Optimisation history: best validation {metric} vs compute "
              f"({len(finished)} evaluations, {compute[-1]:g} budget units)",
        xaxis_title="cumulative compute (budget units, eval_id order)",
        yaxis_title=f"validation {metric} (mean over folds)",
        legend_title="evaluations",
    )
    return fig


def promotion_chart(results: Mapping[str, Any]) -> go.Figure | None:
    """Successive halving inside every (iteration, bracket): trial id against rung resource.

    One marker trace per (iteration, bracket), named so, colour per bracket ``s``: every
    evaluation at every rung (filled circle: promoted to the next rung, open circle: stopped
    there, diamond: ran at the bracket's last rung). One line trace per (iteration, bracket)
    links each promoted trial to its evaluation at the next rung (segments separated by gaps).
    Those traces stay out of the legend; it holds one entry per bracket (its colour; a click
    hides the bracket in every iteration) and one per marker shape. The x ticks are exactly the
    rung resources. ``None`` for strategies without brackets (random, grid, Bayesian).
    """
    brackets = (results.get("strategy") or {}).get("brackets")
    if not brackets:
        return None
    scores = {
        (e["tags"].get("iteration"), e["tags"].get("bracket"), e["tags"].get("rung"),
         e["trial_id"]): e["score"]
        for e in results.get("evaluations") or [] if isinstance(e.get("tags"), Mapping)
    }
    s_values = sorted({b["bracket"] for b in brackets}, reverse=True)
    fig = go.Figure()
    for s in s_values:
        fig.add_trace(go.Scatter(
            x=[None], y=[None], mode="lines", name=f"bracket {s}", legendgroup=f"bracket {s}",
            line={"color": _color(s_values.index(s)), "width": 3}, hoverinfo="skip",
        ))
    for symbol, meaning in (("circle", "promoted to the next rung"),
                            ("circle-open", "stopped at this rung"),
                            ("diamond", "at the bracket's last rung")):
        fig.add_trace(go.Scatter(
            x=[None], y=[None], mode="markers", name=meaning, legendgroup="shapes",
            marker={"color": "#555", "symbol": symbol, "size": 9,
                    "line": {"color": "#555", "width": 1.5}}, hoverinfo="skip",
        ))
    resources: set[float] = set()
    for run in brackets:
        iteration, s = run["iteration"], run["bracket"]
        colour = _color(s_values.index(s))
        name = f"iteration {iteration}, bracket {s}"
        rungs = run["rungs"]
        xs, ys, symbols, text = [], [], [], []
        for rung in rungs:
            last = rung["rung"] == len(rungs) - 1
            promoted = set(rung["promoted"])
            for trial_id in rung["trial_ids"]:
                xs.append(rung["resource"])
                ys.append(trial_id)
                symbols.append("diamond" if last else
                               "circle" if trial_id in promoted else "circle-open")
                score = scores.get((iteration, s, rung["rung"], trial_id))
                text.append(f"{name}, rung {rung['rung']}<br>trial {trial_id}<br>"
                            f"score {_fmt(score, '.4f')}"
                            + ("" if last else "<br>promoted" if trial_id in promoted
                               else "<br>stopped"))
        if not xs:
            continue
        resources.update(float(x) for x in xs)
        fig.add_trace(go.Scatter(
            x=xs, y=ys, mode="markers", name=name, legendgroup=f"bracket {s}",
            showlegend=False, marker={"color": colour, "symbol": symbols, "size": 9,
                                      "line": {"color": colour, "width": 1.5}},
            hovertext=text, hoverinfo="text",
        ))
        lx: list[float | None] = []
        ly: list[int | None] = []
        for rung, following in itertools.pairwise(rungs):
            for trial_id in rung["promoted"]:
                lx += [rung["resource"], following["resource"], None]
                ly += [trial_id, trial_id, None]
        if lx:
            fig.add_trace(go.Scatter(
                x=lx, y=ly, mode="lines", name=f"{name}: promoted", legendgroup=f"bracket {s}",
                showlegend=False, line={"color": colour, "width": 1.5}, hoverinfo="skip",
            ))
    strategy = results.get("strategy") or {}
    ticks = sorted(resources)
    fig.update_layout(
        template=TEMPLATE,
        title=f"Hyperband brackets (max_iter {strategy.get('max_iter', '?')}, eta "
              f"{strategy.get('eta', '?')}): who ran at each rung and who was promoted",
        xaxis={"title": "resource per evaluation (budget units, log scale)", "type": "log",
               "tickmode": "array", "tickvals": ticks, "ticktext": [f"{t:g}" for t in ticks]},
        yaxis_title="trial id",
        legend_title="bracket · marker",
    )
    return fig


# ------------------------------------------------------------------------ parameter analysis


def _main_family(results: Mapping[str, Any] | None, journal: Journal
                 ) -> tuple[list[Any], float | None, str | None, Counter[str]]:
    """The done full-budget journal rows, their budget, the most frequent model family among
    them (ties: the first in config order) and the count per family."""
    from cryptosweep.core.config import validate_config
    from cryptosweep.strategies.space import SearchSpace

    full, budget = at_largest_budget(journal.evaluations())
    counts = Counter(row.params["model"] for row in full)
    if not full:
        return full, budget, None, counts
    config = (results or {}).get("config") or journal.get_meta("config")
    order = list(SearchSpace.from_config(validate_config(config, "results config")).families)
    family = max(counts, key=lambda f: (counts[f], -order.index(f) if f in order else -len(order)))
    return full, budget, family, counts


def importance_basis(results: Mapping[str, Any] | None, journal: Journal) -> str:
    """What parameter analyses of this run rest on, in words: ``9 lightgbm trials at the full
    budget (9) of 15 there (lightgbm 9, xgboost 6)``."""
    full, budget, family, counts = _main_family(results, journal)
    if family is None:
        return "no trial finished at the full budget"
    others = ", ".join(f"{name} {n}" for name, n in sorted(counts.items()))
    return (f"{counts[family]} {family} trials at the full budget ({budget:g}) of {len(full)} "
            f"there ({others})")


def optuna_study(results: Mapping[str, Any] | None, journal: Journal) -> Any | None:
    """An in-memory Optuna study of the journal's done full-budget evaluations of one model
    family — the most frequent one among them (ties: the first in config order) — built by
    :func:`~cryptosweep.strategies.optuna_space.family_study`. ``None`` with fewer than 2 such
    evaluations. The study has the family and the budget in ``user_attrs``."""
    from cryptosweep.core.config import validate_config
    from cryptosweep.strategies.optuna_space import family_study, quiet_optuna
    from cryptosweep.strategies.space import SearchSpace

    full, budget, family, _ = _main_family(results, journal)
    rows = [row for row in full if row.params["model"] == family]
    if len(rows) < 2:
        return None
    config = (results or {}).get("config") or journal.get_meta("config")
    space = SearchSpace.from_config(validate_config(config, "results config"))
    with quiet_optuna():  # no "A new study created in memory" line on the page
        study = family_study(rows, space, family)
    study.set_user_attr("budget", budget)
    return study


def parallel_coordinates(results: Mapping[str, Any] | None, journal: Journal
                         ) -> go.Figure | None:
    """Optuna's parallel-coordinate plot of the full-budget trials of the most frequent model
    family (see :func:`optuna_study`); ``None`` with fewer than 2 of them."""
    import optuna

    from cryptosweep.strategies.optuna_space import quiet_optuna

    study = optuna_study(results, journal)
    if study is None:
        return None
    with quiet_optuna():
        fig = optuna.visualization.plot_parallel_coordinate(study)
    _untruncate_labels(fig, list(study.trials[0].distributions))
    family = study.user_attrs["family"]
    fig.update_layout(
        template=TEMPLATE,
        title={"text": f"Parallel coordinates: {family}, {len(study.trials)} trials at the full "
                       f"budget ({study.user_attrs['budget']:g}); colour = validation score",
               "y": 0.98, "yref": "container", "yanchor": "top"},
        margin={"t": 110},
        xaxis_title="objective and parameters (log-scale ones on a log axis)",
    )
    return fig


def importance_evaluator() -> tuple[Any, str]:
    """The evaluator for :func:`parameter_importances` and its name: fANOVA (Hutter, Hoos &
    Leyton-Brown, ICML 2014) over a random forest seeded with 0, so it is deterministic."""
    import optuna

    return optuna.importance.FanovaImportanceEvaluator(seed=0), "fANOVA, seed 0"


def _untruncate_labels(fig: go.Figure, names: list[str]) -> None:
    """Optuna cuts axis labels to 17 characters + "..." ("lightgbm.learning..."): put the full
    names back (``family.<br>name``) wherever the cut label is unambiguous."""
    cut: dict[str, list[str]] = {}
    for name in names:
        cut.setdefault(name if len(name) < 20 else f"{name[:17]}...", []).append(name)
    full = {short: longs[0].replace(".", ".<br>", 1)
            for short, longs in cut.items() if len(longs) == 1}
    ticktext = fig.layout.xaxis.ticktext
    if ticktext:
        fig.layout.xaxis.ticktext = [full.get(text, text) for text in ticktext]
    for trace in fig.data:
        if trace.customdata is not None and trace.mode == "lines":
            trace.customdata = [[full.get(label, label).replace("<br>", ""), value]
                                for label, value in trace.customdata]


#: ``reporting.min_importance_trials`` when a results file predates the setting.
DEFAULT_MIN_IMPORTANCE_TRIALS = 20


def parameter_importances(results: Mapping[str, Any] | None, journal: Journal,
                          min_trials: int | None = None) -> go.Figure | None:
    """Importances of the parameters of the most frequent model family for the validation
    score, from its full-budget trials (see :func:`optuna_study`), by
    :func:`importance_evaluator` (fANOVA, seeded); the title says how many trials of which
    family. ``None`` with fewer than ``min_trials`` such trials (default: the run's
    ``reporting.min_importance_trials``, else :data:`DEFAULT_MIN_IMPORTANCE_TRIALS`): a forest
    fitted on a handful of trials decomposes noise. ``None`` too when they all scored the
    same."""
    import optuna

    from cryptosweep.strategies.optuna_space import quiet_optuna

    if min_trials is None:
        reporting = ((results or {}).get("config") or {}).get("reporting") or {}
        min_trials = int(reporting.get("min_importance_trials", DEFAULT_MIN_IMPORTANCE_TRIALS))
    study = optuna_study(results, journal)
    if study is None or len(study.trials) < max(2, min_trials):
        return None
    if len({trial.value for trial in study.trials}) < 2:
        return None  # nothing to explain: every trial scored the same
    with quiet_optuna():
        evaluator, method = importance_evaluator()
        fig = optuna.visualization.plot_param_importances(study, evaluator=evaluator)
    fig.update_layout(
        template=TEMPLATE,
        title=f"Parameter importances ({method}) from {importance_basis(results, journal)}",
        xaxis_title="importance for the validation score (share of variance)",
        yaxis_title="parameter",
    )
    return fig


# -------------------------------------------------------------------------------- returns


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


# ---------------------------------------------------------------------------- overfitting


def overfitting_figure(pbo_result: Any) -> go.Figure | None:
    """Distribution of the CSCV logits ``λ`` of the probability of backtest overfitting, with a
    line at ``λ = 0`` (at or left of it: the in-sample winner is at or below the out-of-sample
    median); PBO in the title. A logit comes from a rank among N configurations, so it takes at
    most N values: one bar per distinct value with its count of combinations (exact, and a few
    hundred bytes instead of every logit). Takes a
    :class:`~cryptosweep.judging.overfitting.PBOResult` or its ``to_dict()`` form
    (``results["overfitting"]["pbo"]``); ``None`` for ``None``."""
    if pbo_result is None:
        return None
    if isinstance(pbo_result, Mapping):
        pbo, logits = pbo_result["pbo"], pbo_result["logits"]
        n_combinations = pbo_result.get("n_combinations", len(logits))
    else:
        pbo, logits, n_combinations = pbo_result.pbo, pbo_result.logits, pbo_result.n_combinations
    values, counts = np.unique(np.asarray(logits, dtype=float), return_counts=True)
    fig = go.Figure(go.Bar(x=values, y=counts, name="logits", marker={"color": _color(0)},
                           hovertemplate="λ %{x:.3f}<br>%{y} combinations<extra></extra>"))
    fig.add_vline(x=0.0, line={"color": "#d62728", "dash": "dash", "width": 2},
                  annotation_text="λ = 0", annotation_position="top right")
    fig.update_layout(
        template=TEMPLATE, bargap=0.05, showlegend=False,
        title=f"Probability of backtest overfitting: PBO = {pbo:.3f} "
              f"({n_combinations} CSCV combinations)",
        xaxis_title="logit λ of the in-sample winner's out-of-sample rank",
        yaxis_title="combinations",
    )
    return fig


def dsr_bars(dsr_info: Mapping[str, Any] | None) -> go.Figure | None:
    """Horizontal bars of the winner's deflated Sharpe ratio (PSR against the expected maximum
    Sharpe of the trials under no skill) and PSR against 0, on [0, 1], with the customary 0.95
    line. Takes the dict of :func:`~cryptosweep.judging.overfitting.deflated_sharpe_from_returns`
    (``results["overfitting"]["dsr"]`` or ``results["top_k"][i]["dsr"]``); ``None`` when it is
    missing or has no DSR."""
    if not dsr_info or dsr_info.get("dsr") is None:
        return None
    labels = ["DSR (vs SR0)", "PSR (vs 0)"]
    values = [float(dsr_info["dsr"]), float(dsr_info.get("psr", np.nan))]
    fig = go.Figure(go.Bar(
        x=values, y=labels, orientation="h", text=[f"{v:.3f}" for v in values],
        textposition="auto", marker={"color": [_color(0), _color(1)]},
        hovertemplate="%{y}: %{x:.4f}<extra></extra>",
    ))
    fig.add_vline(x=0.95, line={"color": "#7f7f7f", "dash": "dot"},
                  annotation_text="0.95", annotation_position="top")
    details = ", ".join(
        f"{name} {_fmt(dsr_info.get(key), spec)}"
        for name, key, spec in (("N", "n_trials", "d"), ("T", "n_obs", "d"),
                                ("SR", "sr", ".4f"), ("SR0", "sr0", ".4f"))
        if dsr_info.get(key) is not None
    )
    fig.update_layout(
        template=TEMPLATE, showlegend=False, height=300,
        title=f"Deflated Sharpe ratio of the winner: {values[0]:.3f}"
              + (f" ({details}; Sharpe per bar)" if details else ""),
        xaxis={"title": "probability that the true Sharpe ratio exceeds the benchmark",
               "range": [0, 1]},
        yaxis_title="",
    )
    return fig


# ------------------------------------------------------------------------------- resources


def resource_timeline(resource_usage: Mapping[str, Any]) -> go.Figure | None:
    """Host CPU % and memory used over time, plus, when there are ``gpuN`` samples, each GPU's
    utilisation % and memory used (one trace per GPU): 2 or 4 stacked panels with a shared
    time axis (UTC). ``None`` without samples."""
    samples = sorted(resource_usage.get("samples") or [], key=lambda s: s["ts"])
    if not samples:
        return None
    host = [s for s in samples if s["source"] == "host"]
    gpus: dict[str, list[Mapping[str, Any]]] = {}
    for s in samples:
        if str(s["source"]).startswith("gpu"):
            gpus.setdefault(s["source"], []).append(s)
    gpu_names = sorted(gpus, key=lambda n: (len(n), n))
    titles = ["host CPU", "host memory"] + (["GPU utilisation", "GPU memory"] if gpus else [])
    fig = make_subplots(rows=len(titles), cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        subplot_titles=titles)
    if host:
        times = [_utc(s["ts"]) for s in host]
        fig.add_trace(go.Scatter(x=times, y=[s.get("cpu_percent") for s in host],
                                 mode="lines+markers", name="CPU %",
                                 line={"color": _color(0)}), row=1, col=1)
        fig.add_trace(go.Scatter(x=times, y=[_gib(s.get("memory_used_mib")) for s in host],
                                 mode="lines+markers", name="memory used",
                                 line={"color": _color(1)}), row=2, col=1)
        totals = [_gib(s.get("memory_total_mib")) for s in host]
        if any(t is not None for t in totals):
            fig.add_trace(go.Scatter(x=times, y=totals, mode="lines", name="memory total",
                                     line={"color": _color(1), "dash": "dot"}), row=2, col=1)
    for i, name in enumerate(gpu_names):
        items = gpus[name]
        times = [_utc(s["ts"]) for s in items]
        colour = _color(i + 2)
        fig.add_trace(go.Scatter(x=times, y=[s.get("gpu_percent") for s in items],
                                 mode="lines+markers", name=f"{name} utilisation %",
                                 legendgroup=name, line={"color": colour}), row=3, col=1)
        fig.add_trace(go.Scatter(x=times, y=[_gib(s.get("memory_used_mib")) for s in items],
                                 mode="lines+markers", name=f"{name} memory used",
                                 legendgroup=name, line={"color": colour}), row=4, col=1)
    fig.update_yaxes(title_text="CPU %", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(title_text="GiB", rangemode="tozero", row=2, col=1)
    if gpus:
        fig.update_yaxes(title_text="GPU %", range=[0, 100], row=3, col=1)
        fig.update_yaxes(title_text="GiB", rangemode="tozero", row=4, col=1)
    fig.update_xaxes(title_text="time (UTC)", row=len(titles), col=1)
    fig.update_layout(
        template=TEMPLATE, height=260 * len(titles),
        title=f"Resource usage ({len(host)} host samples"
              + (f", {len(gpu_names)} GPU(s))" if gpus else ", no GPU samples)"),
    )
    return fig


def _gib(mib: Any) -> float | None:
    return None if mib is None else float(mib) / 1024.0


def worker_gantt(resource_usage: Mapping[str, Any],
                 results: Mapping[str, Any] | None = None) -> go.Figure | None:
    """One row per worker and one horizontal bar per evaluation, from its start to its end
    (UTC), from ``resource_usage["timeline"]``. Bars are coloured by status (one trace per
    status) when the timeline items carry one or ``results`` is given, else all alike.
    Each bar's ``customdata`` is ``[eval_id, start_ts, end_ts, status]``. ``None`` without
    timed evaluations."""
    timeline = [t for t in resource_usage.get("timeline") or []
                if t.get("start") is not None and t.get("end") is not None]
    if not timeline:
        return None
    status_of = {e["eval_id"]: e["status"] for e in (results or {}).get("evaluations") or []}
    workers: dict[str, float] = {}
    for item in timeline:
        worker = str(item.get("worker"))
        workers[worker] = min(workers.get(worker, item["start"]), item["start"])
    order = sorted(workers, key=lambda w: (workers[w], w))
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for item in sorted(timeline, key=lambda t: t["eval_id"]):
        status = item.get("status") or status_of.get(item["eval_id"]) or "evaluation"
        groups.setdefault(status, []).append(item)
    fig = go.Figure()
    for i, (status, items) in enumerate(sorted(groups.items())):
        fig.add_trace(go.Bar(
            orientation="h", name=status,
            y=[str(t.get("worker")) for t in items],
            base=[_utc(t["start"]) for t in items],
            x=[(t["end"] - t["start"]) * 1000.0 for t in items],  # ms: a date axis's unit
            marker={"color": _STATUS_COLOURS.get(status, _color(i)),
                    "line": {"color": "white", "width": 0.5}},
            customdata=[[t["eval_id"], t["start"], t["end"], status] for t in items],
            text=[str(t["eval_id"]) for t in items], textposition="inside",
            insidetextanchor="middle",
            hovertemplate="eval %{customdata[0]}<br>%{base|%H:%M:%S.%L} + %{x:.0f} ms"
                          "<br>%{y}<extra>%{customdata[3]}</extra>",
        ))
    utilisation = {
        w: (resource_usage.get("workers") or {}).get(w, {}).get("utilisation") for w in order
    }
    fig.update_layout(
        template=TEMPLATE, barmode="overlay", height=max(300, 60 * len(order) + 160),
        title=f"Worker timeline: {len(timeline)} evaluations on {len(order)} worker(s)",
        xaxis={"title": "time (UTC)", "type": "date"},
        yaxis={"title": "worker", "categoryorder": "array", "categoryarray": order[::-1],
               "tickmode": "array", "tickvals": order,
               "ticktext": [w if utilisation[w] is None else f"{w} ({utilisation[w]:.0%} busy)"
                            for w in order]},
        legend_title="status",
    )
    return fig
