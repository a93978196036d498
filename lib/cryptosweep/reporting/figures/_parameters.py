"""Parameter analysis: parallel coordinates and parameter importances (Optuna's evaluators over a
study rebuilt from the journal)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

import plotly.graph_objects as go

from cryptosweep.core.settings import DEFAULT_MIN_IMPORTANCE_TRIALS
from cryptosweep.records.journal import Journal
from cryptosweep.records.ranking import at_largest_budget
from cryptosweep.reporting.figures._style import TEMPLATE


def _main_family(results: Mapping[str, Any] | None, journal: Journal
                 ) -> tuple[list[Any], float | None, str | None, Counter[str]]:
    """The done full-budget journal rows, their budget, the most frequent model family among
    them (ties: the first in config order) and the count per family."""
    from cryptosweep.core.config_files import validate_config
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
    from cryptosweep.core.config_files import validate_config
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
