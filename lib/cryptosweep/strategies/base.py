"""The ask/tell protocol every search strategy implements.

The runner asks for evaluations until the strategy returns ``None`` (nothing more to propose
until it is told more results), runs them, and tells each result as it completes. The base class
hands results to the strategy in ``eval_id`` order, never in completion order, unless the strategy
declares that order does not matter to it (``ordered_tells = False``). A strategy whose proposals
depend only on what it has observed, and on generators seeded by
:func:`~cryptosweep.core.reproducibility.derive_seed`, is then deterministic whatever the number of
workers, and replaying its asks against the journal resumes it exactly.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from cryptosweep.records.evaluations import EvalRequest


@dataclass(frozen=True)
class EvalResult:
    """What the runner tells the strategy: ``score`` is ``None`` for a failed evaluation."""

    eval_id: int
    trial_id: int
    status: Literal["done", "failed"]
    score: float | None


@dataclass(frozen=True)
class Observation:
    """A told result as model-based samplers see it (``score`` ``None``: failed)."""

    trial_id: int
    params: dict[str, Any]
    budget: float
    score: float | None


class ConfigSampler(Protocol):
    """Where a strategy's new configurations come from (random draws, TPE, ...).

    ``sample`` must depend only on ``trial_id``, ``history`` and the sampler's own seed. A
    sampler with ``uses_history = False`` promises to ignore ``history``; one without the
    attribute is taken to read it.
    """

    def sample(self, trial_id: int, history: Sequence[Observation]) -> dict[str, Any]: ...


class Strategy(ABC):
    """Base of the search strategies: ask, tell, and say when everything is done.

    Results may be told in any order (the runner tells them as they complete). A strategy with
    ``ordered_tells`` (the default) observes them in ``eval_id`` order all the same: a result
    waits here until every smaller id has been told. A strategy whose state does not depend on
    the order of its observations sets ``ordered_tells = False`` and observes each at once.
    """

    #: short name used in the journal and reports
    name: str = "strategy"
    #: observe results in eval-id order (buffering early ones), or at once
    ordered_tells: bool = True

    def __init__(self) -> None:
        self._asked_ids: set[int] = set()
        self._told_ids: set[int] = set()
        self._waiting: dict[int, EvalResult] = {}  # told, not yet observed (ordered_tells)
        self._next_to_observe = 0

    @property
    def _asked(self) -> int:
        """How many evaluations were asked (also the next id when ids follow ask order)."""
        return len(self._asked_ids)

    @abstractmethod
    def _propose(self, eval_id: int) -> EvalRequest | None:
        """Next evaluation, or ``None`` if none can be proposed now.

        ``eval_id`` is the number of evaluations asked so far, the id to use when ids follow ask
        order. A strategy may instead give each evaluation a canonical id (Hyperband does, to ask
        ahead); with ``ordered_tells`` ids must then be dense: every id below one asked is asked
        sooner or later.
        """

    def _observe(self, result: EvalResult) -> None:  # noqa: B027 - optional hook
        """React to a result (model-based and adaptive strategies override this)."""

    @property
    @abstractmethod
    def exhausted(self) -> bool:
        """True once the strategy will never propose anything again."""

    @property
    def total_evaluations(self) -> int | None:
        """How many evaluations the whole sweep will run, when known in advance (for ETA)."""
        return None

    @property
    def total_budget(self) -> float | None:
        """The budget the whole sweep will spend, when known in advance."""
        return None

    def ask(self) -> EvalRequest | None:
        request = self._propose(self._asked)
        if request is not None:
            if request.eval_id in self._asked_ids:
                raise RuntimeError(f"{self.name}: evaluation {request.eval_id} asked twice")
            self._asked_ids.add(request.eval_id)
        return request

    def tell(self, result: EvalResult) -> None:
        if result.eval_id not in self._asked_ids:
            raise RuntimeError(f"evaluation {result.eval_id} was told but never asked")
        if result.eval_id in self._told_ids:
            raise RuntimeError(f"evaluation {result.eval_id} was told twice")
        self._told_ids.add(result.eval_id)
        if not self.ordered_tells:
            self._observe(result)
            return
        self._waiting[result.eval_id] = result
        while self._next_to_observe in self._waiting:
            self._observe(self._waiting.pop(self._next_to_observe))
            self._next_to_observe += 1

    @property
    def finished(self) -> bool:
        """Nothing more to ask and every asked evaluation told."""
        return self.exhausted and len(self._told_ids) == self._asked

    def summary(self) -> dict[str, Any]:
        """Strategy-specific facts for the results file (e.g. Hyperband's brackets)."""
        return {"name": self.name, "evaluations": self._asked}


class FullBudgetStrategy(Strategy):
    """Strategies that evaluate each of ``n_trials`` configurations once, at the full budget
    (random, grid, Bayesian): trial ``i`` is evaluation ``i`` with seed
    ``derive_seed(seed, "trial", i)``. Subclasses only choose the configurations."""

    def __init__(self, seed: int, n_trials: int, budget: float) -> None:
        super().__init__()
        self.seed, self.n_trials, self.budget = seed, n_trials, budget

    def _request(self, eval_id: int, params: dict[str, Any],
                 tags: dict[str, Any] | None = None) -> EvalRequest:
        from cryptosweep.core.reproducibility import derive_seed

        return EvalRequest(eval_id=eval_id, trial_id=eval_id, params=params, budget=self.budget,
                           seed=derive_seed(self.seed, "trial", eval_id), tags=tags or {})

    @property
    def exhausted(self) -> bool:
        return self._asked >= self.n_trials

    @property
    def total_evaluations(self) -> int:
        return self.n_trials

    @property
    def total_budget(self) -> float:
        return self.n_trials * self.budget
