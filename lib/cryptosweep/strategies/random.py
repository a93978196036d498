"""Random search (Bergstra & Bengio, "Random Search for Hyper-Parameter Optimization",
JMLR 13, 2012): ``n_trials`` independent draws from the search space, each at the full budget.

Trial ``i`` draws from its own generator, ``derive_seed(seed, "random", i)``, so its
configuration depends on nothing but the master seed and ``i``.
"""

from __future__ import annotations

from cryptosweep.reproducibility import derive_seed, seeded_rng
from cryptosweep.space import SearchSpace
from cryptosweep.strategies.base import EvalRequest, Strategy


class RandomSearch(Strategy):
    name = "random"

    def __init__(self, space: SearchSpace, seed: int, n_trials: int, budget: float) -> None:
        super().__init__()
        self.space, self.seed, self.n_trials, self.budget = space, seed, n_trials, budget

    def _propose(self, eval_id: int) -> EvalRequest | None:
        if eval_id >= self.n_trials:
            return None
        return EvalRequest(
            eval_id=eval_id,
            trial_id=eval_id,
            params=self.space.sample(seeded_rng(self.seed, "random", eval_id)),
            budget=self.budget,
            seed=derive_seed(self.seed, "trial", eval_id),
        )

    @property
    def exhausted(self) -> bool:
        return self._next_eval_id >= self.n_trials

    @property
    def total_evaluations(self) -> int:
        return self.n_trials

    @property
    def total_budget(self) -> float:
        return self.n_trials * self.budget


class RandomConfigSampler:
    """Configurations drawn at random: trial ``i`` from ``derive_seed(seed, "config", i)``."""

    def __init__(self, space: SearchSpace, seed: int) -> None:
        self.space, self.seed = space, seed

    def sample(self, trial_id: int, history: object = ()) -> dict:
        return self.space.sample(seeded_rng(self.seed, "config", trial_id))
