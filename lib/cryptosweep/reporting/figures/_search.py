"""Search progress: the optimisation history and the champion-versus-challenger chart."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import plotly.graph_objects as go

from cryptosweep.core.formatting import metric_name
from cryptosweep.records.ranking import at_largest_budget
from cryptosweep.reporting.figures._style import TEMPLATE, _color, _fmt

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


# -------------------------------------------------------------------------------- returns


# ---------------------------------------------------------------------------- overfitting


# ------------------------------------------------------------------------------- resources
