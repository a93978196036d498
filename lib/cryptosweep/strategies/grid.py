"""Exhaustive grid search: every combination of ``grid.points`` values per numeric dimension
(all choices of a categorical one), each exactly once, at the full budget, in a fixed order."""

from __future__ import annotations

from cryptosweep.reproducibility import derive_seed
from cryptosweep.space import SearchSpace
from cryptosweep.strategies.base import EvalRequest, Strategy


class GridSearch(Strategy):
    name = "grid"

    def __init__(
        self, space: SearchSpace, seed: int, points: int, budget: float, max_trials: int
    ) -> None:
        super().__init__()
        self.points_list = space.grid(points, max_trials)
        self.seed, self.budget = seed, budget

    def _propose(self, eval_id: int) -> EvalRequest | None:
        if eval_id >= len(self.points_list):
            return None
        return EvalRequest(
            eval_id=eval_id,
            trial_id=eval_id,
            params=self.points_list[eval_id],
            budget=self.budget,
            seed=derive_seed(self.seed, "trial", eval_id),
        )

    @property
    def exhausted(self) -> bool:
        return self._next_eval_id >= len(self.points_list)

    @property
    def total_evaluations(self) -> int:
        return len(self.points_list)

    @property
    def total_budget(self) -> float:
        return len(self.points_list) * self.budget
