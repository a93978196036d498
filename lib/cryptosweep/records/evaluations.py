"""What an evaluation is to the journal: the request a strategy proposes (a configuration at a
budget, with its seed) and the row the journal keeps of it (the request and its outcome)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from cryptosweep.core.vocabulary import THRESHOLD_SEARCH


@dataclass(frozen=True)
class EvalRequest:
    """One evaluation to run: a configuration (trial) at a budget, with its seed. Strategies
    propose these; the journal records them (as :class:`EvaluationRow`, with their outcome)."""

    eval_id: int
    trial_id: int
    params: dict[str, Any]
    budget: float
    seed: int
    tags: dict[str, Any] = field(default_factory=dict)

    def request(self) -> EvalRequest:
        """The request alone (an :class:`EvaluationRow` without its outcome)."""
        return EvalRequest(self.eval_id, self.trial_id, self.params, self.budget, self.seed,
                           self.tags)


@dataclass(frozen=True, kw_only=True)
class EvaluationRow(EvalRequest):
    """A journaled evaluation: its request and what became of it."""

    status: str
    score: float | None
    metrics: dict[str, Any] | None
    error: str | None
    worker: str | None
    device: str | None
    started_at: float | None
    finished_at: float | None
    attempts: int


def configured(row: EvaluationRow) -> EvaluationRow:
    """``row`` as the configuration it scored: with ``objective.threshold_search`` the strategy's
    parameters have no threshold and the evaluation chose one (its metrics'
    :data:`~cryptosweep.core.vocabulary.THRESHOLD_SEARCH`), which is set in ``params`` here, so
    that everything after the search (holdout, re-scores, neighbourhood, best configs,
    production) evaluates that threshold, fixed. Other rows are returned as they are."""
    search = (row.metrics or {}).get(THRESHOLD_SEARCH)
    if not search:
        return row
    trading = {**row.params.get("trading", {}), "threshold": search["chosen"]}
    return replace(row, params={**row.params, "trading": trading})


def without_search(metrics: dict[str, Any] | None) -> dict[str, Any] | None:
    """An evaluation's metrics without its inner threshold search: what an evaluation of the
    chosen threshold, fixed, gives (the reproducibility check compares those)."""
    if metrics is None or THRESHOLD_SEARCH not in metrics:
        return metrics
    return {key: value for key, value in metrics.items() if key != THRESHOLD_SEARCH}
