"""Plotly figures for the analysis notebook: one function per chart, no logic in the notebook.

Every builder takes plain inputs — the results dict loaded from ``sweep_results_*.json``, the
resource-usage dict from ``resource_usage_*.json``, a
:class:`~cryptosweep.records.journal.Journal`, or
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

from cryptosweep.reporting.figures._overfitting import dsr_bars, overfitting_figure
from cryptosweep.reporting.figures._parameters import (
    DEFAULT_MIN_IMPORTANCE_TRIALS,
    importance_basis,
    importance_evaluator,
    optuna_study,
    parallel_coordinates,
    parameter_importances,
)
from cryptosweep.reporting.figures._resources import resource_timeline, worker_gantt
from cryptosweep.reporting.figures._returns import (
    equity_curves,
    equity_drawdown,
    fold_dates,
    out_of_sample_times,
    time_axis,
)
from cryptosweep.reporting.figures._search import optimisation_history, promotion_chart
from cryptosweep.reporting.figures._style import TEMPLATE

__all__ = [
    "DEFAULT_MIN_IMPORTANCE_TRIALS",
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
