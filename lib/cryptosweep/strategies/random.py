"""Random search (Bergstra & Bengio, "Random Search for Hyper-Parameter Optimization",
JMLR 13, 2012): ``n_trials`` independent draws from the search space, each at the full budget.

Trial ``i`` draws from its own generator, ``derive_seed(seed, "random", i)``, so its
configuration depends on nothing but the master seed and ``i``.
"""

from __future__ import annotations

from cryptosweep.core.reproducibility import seeded_rng
from cryptosweep.strategies.base import EvalRequest, FullBudgetStrategy
from cryptosweep.strategies.space import SearchSpace


class RandomSearch(FullBudgetStrategy):
    name = "random"

    def __init__(self, space: SearchSpace, seed: int, n_trials: int, budget: float) -> None:
        super().__init__(seed, n_trials, budget)
        self.space = space

    def _propose(self, eval_id: int) -> EvalRequest | None:
        if eval_id >= self.n_trials:
            return None
        return self._request(eval_id, self.space.sample(seeded_rng(self.seed, "random", eval_id)))


class RandomConfigSampler:
    """Configurations drawn at random: trial ``i`` from ``derive_seed(seed, "config", i)``."""

    uses_history = False  # Hyperband may start a bracket before earlier ones are told

    def __init__(self, space: SearchSpace, seed: int) -> None:
        self.space, self.seed = space, seed

    def sample(self, trial_id: int, history: object = ()) -> dict:
        return self.space.sample(seeded_rng(self.seed, "config", trial_id))
