"""Bayesian optimisation through Optuna's samplers, in synchronous batches, and the TPE
configuration sampler of BOHB.

:class:`BayesianSearch` runs ``n_trials`` trials at the full budget, proposed by

- ``"tpe"``: the Tree-structured Parzen Estimator (Bergstra, Bardenet, Bengio, Kegl,
  "Algorithms for Hyper-Parameter Optimization", NeurIPS 2011), multivariate and grouped for our
  conditional space;
- ``"gp"``: Gaussian-process BO (Rasmussen & Williams, "Gaussian Processes for Machine
  Learning", MIT Press 2006; Optuna's ``GPSampler``: Matern-5/2 ARD kernel, log expected
  improvement);
- ``"cmaes"``: CMA-ES (Hansen, "The CMA Evolution Strategy: A Tutorial", arXiv:1604.00772,
  2016), warm-started on the history at every batch (see :mod:`.optuna_space`);

all through Optuna (Akiba, Sano, Yanase, Ohta, Koyama, "Optuna: A Next-generation
Hyperparameter Optimization Framework", KDD 2019), used statelessly by
:func:`~cryptosweep.strategies.optuna_space.propose`.

Batches are synchronous and of a *configured* width, ``batch_size``: batch ``k`` (eval ids
``k*batch_size`` ...) is proposed only once every earlier trial has been told, from the history
of all told results in eval-id order, by a sampler seeded ``derive_seed(seed, "bayesian", k)``.
The width is deliberately not the number of parallel slots (as the issue first suggested): with
the runner telling results in eval-id order, the trials are then the same with 1 or N workers,
and for a run interrupted and resumed any number of times (resume replays the journal through
the same asks and tells). More workers than ``batch_size`` simply idle at the batch barrier.

:class:`TPEConfigSampler` is BOHB's model (Falkner, Klein, Hutter, "BOHB: Robust and Efficient
Hyperparameter Optimization at Scale", ICML 2018): TPE fitted on the observations of the largest
budget that has enough of them, a fixed fraction of configurations drawn at random.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from cryptosweep.core.reproducibility import derive_seed, seeded_rng
from cryptosweep.strategies.base import (
    EvalRequest,
    EvalResult,
    FullBudgetStrategy,
    Observation,
)
from cryptosweep.strategies.optuna_space import SAMPLERS, propose
from cryptosweep.strategies.random import RandomConfigSampler
from cryptosweep.strategies.space import Point, SearchSpace

__all__ = ["BayesianSearch", "TPEConfigSampler"]


class BayesianSearch(FullBudgetStrategy):
    """``n_trials`` trials at ``budget``, proposed ``batch_size`` at a time by an Optuna sampler.

    Trial ``i`` is eval ``i``, with seed ``derive_seed(seed, "trial", i)`` and tags
    ``{"batch": k}``. ``ask`` returns ``None`` while the previous batch is not fully told.
    """

    name = "bayesian"

    def __init__(
        self, space: SearchSpace, seed: int, n_trials: int, budget: float,
        sampler: str = "tpe", batch_size: int = 4,
    ) -> None:
        super().__init__(seed, n_trials, budget)
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}, got {sampler!r}")
        if n_trials < 1 or batch_size < 1:
            raise ValueError(f"n_trials ({n_trials}) and batch_size ({batch_size}) must be >= 1")
        self.space, self.sampler, self.batch_size = space, sampler, batch_size
        self._batches: dict[int, list[Point]] = {}
        self._params: dict[int, Point] = {}
        self.history: list[Observation] = []

    def _batch_points(self, k: int) -> list[Point]:
        if k not in self._batches:
            start = k * self.batch_size
            count = min(self.batch_size, self.n_trials - start)
            self._batches[k] = propose(
                self.space, self.history[:start], self.sampler,
                derive_seed(self.seed, "bayesian", k), count,
            )
        return self._batches[k]

    def _propose(self, eval_id: int) -> EvalRequest | None:
        if eval_id >= self.n_trials:
            return None
        k = eval_id // self.batch_size
        if len(self.history) < k * self.batch_size:
            return None  # synchronous: wait until the whole previous batch is told
        params = copy.deepcopy(self._batch_points(k)[eval_id - k * self.batch_size])
        self._params[eval_id] = copy.deepcopy(params)
        return self._request(eval_id, params, {"batch": k})

    def _observe(self, result: EvalResult) -> None:
        score = result.score if result.status == "done" else None
        self.history.append(
            Observation(result.trial_id, self._params.pop(result.eval_id), self.budget, score)
        )
        self._batches.pop(result.eval_id // self.batch_size - 1, None)  # no longer needed

    def summary(self) -> dict[str, Any]:
        return {
            **super().summary(), "sampler": self.sampler, "batch_size": self.batch_size,
            "n_trials": self.n_trials,
            "batches": -(-self._asked // self.batch_size),
        }


def default_min_points(space: SearchSpace) -> int:
    """BOHB's ``d + 1``: dimensions of the largest family plus the trading ones, plus one."""
    largest = max((len(dims) for dims in space.families.values()), default=0)
    return largest + len(space.trading) + 1


class TPEConfigSampler:
    """BOHB's configuration sampler (implements :class:`~.base.ConfigSampler`).

    For trial ``i``: with probability ``random_fraction`` (decided by
    ``seeded_rng(seed, "bohb-random", i).random()``, BOHB's rho, 1/3 in the paper) or when no
    budget has ``min_points`` successful observations, a random configuration
    (``RandomConfigSampler(space, seed).sample(i)``); otherwise TPE fitted on the observations of
    the largest budget with at least ``min_points`` scored observations (default
    :func:`default_min_points`, BOHB's ``d + 1``), from a sampler seeded
    ``derive_seed(seed, "bohb", i)``. A pure function of ``(i, history)`` and the seed.

    ``last_info`` tells how the last configuration was chosen (for tests and logs):
    ``{"trial_id", "source": "random" | "fallback" | "tpe", "budget", "n_observations"}``.
    """

    uses_history = True

    def __init__(
        self, space: SearchSpace, seed: int, min_points: int | None = None,
        random_fraction: float = 1 / 3,
    ) -> None:
        if not 0.0 <= random_fraction <= 1.0:
            raise ValueError(f"random_fraction must be in [0, 1], got {random_fraction}")
        self.space, self.seed = space, seed
        self.min_points = default_min_points(space) if min_points is None else int(min_points)
        if self.min_points < 1:
            raise ValueError(f"min_points must be >= 1, got {self.min_points}")
        self.random_fraction = random_fraction
        self._random = RandomConfigSampler(space, seed)
        self.last_info: dict[str, Any] = {}

    def model_budget(self, history: Sequence[Observation]) -> float | None:
        """The largest budget with at least ``min_points`` scored observations, if any."""
        counts: dict[float, int] = {}
        for obs in history:
            if obs.score is not None and obs.score == obs.score:  # not failed, not NaN
                counts[obs.budget] = counts.get(obs.budget, 0) + 1
        eligible = [budget for budget, n in counts.items() if n >= self.min_points]
        return max(eligible) if eligible else None

    def sample(self, trial_id: int, history: Sequence[Observation]) -> dict[str, Any]:
        info: dict[str, Any] = {"trial_id": trial_id, "budget": None, "n_observations": 0}
        if seeded_rng(self.seed, "bohb-random", trial_id).random() < self.random_fraction:
            self.last_info = {**info, "source": "random"}
            return self._random.sample(trial_id)
        budget = self.model_budget(history)
        if budget is None:
            self.last_info = {**info, "source": "fallback"}
            return self._random.sample(trial_id)
        at_budget = [obs for obs in history if obs.budget == budget]
        self.last_info = {**info, "source": "tpe", "budget": budget,
                          "n_observations": len(at_budget)}
        # the min_points gate is ours: TPE models from its first trial on
        (point,) = propose(self.space, at_budget, "tpe", derive_seed(self.seed, "bohb", trial_id),
                           1, n_startup_trials=0)
        return point
