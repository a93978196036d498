"""What an evaluation is to the journal: the request a strategy proposes (a configuration at a
budget, with its seed) and the row the journal keeps of it (the request and its outcome)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
