"""Exhaustive grid search: every combination of ``grid.points`` values per numeric dimension
(all choices of a categorical one), each exactly once, at the full budget, in a fixed order."""

from __future__ import annotations

from cryptosweep.strategies.base import EvalRequest, FullBudgetStrategy
from cryptosweep.strategies.space import SearchSpace


class GridSearch(FullBudgetStrategy):
    name = "grid"

    def __init__(
        self, space: SearchSpace, seed: int, points: int, budget: float, max_trials: int
    ) -> None:
        self.points_list = space.grid(points, max_trials)
        super().__init__(seed, len(self.points_list), budget)

    def _propose(self, eval_id: int) -> EvalRequest | None:
        if eval_id >= self.n_trials:
            return None
        return self._request(eval_id, self.points_list[eval_id])
