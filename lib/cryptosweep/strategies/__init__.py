"""Search strategies behind one ask/tell protocol (:mod:`cryptosweep.strategies.base`)."""

from __future__ import annotations

from cryptosweep.config import SweepConfig
from cryptosweep.errors import ConfigError
from cryptosweep.space import SearchSpace
from cryptosweep.strategies.base import EvalRequest, EvalResult, Strategy
from cryptosweep.strategies.grid import GridSearch
from cryptosweep.strategies.random import RandomSearch

__all__ = ["EvalRequest", "EvalResult", "GridSearch", "RandomSearch", "Strategy", "make_strategy"]


def make_strategy(config: SweepConfig, seed: int) -> Strategy:
    """The strategy named by ``config.sweep_type``, at the full budget ``hyperband.max_iter``."""
    space = SearchSpace.from_config(config)
    full_budget = float(config.hyperband.max_iter)
    if config.sweep_type == "random":
        return RandomSearch(space, seed, config.random.n_trials, full_budget)
    if config.sweep_type == "grid":
        return GridSearch(
            space, seed, config.grid.points, full_budget, config.grid.max_trials
        )
    raise ConfigError(
        f"sweep_type: '{config.sweep_type}' is not available in this version yet; "
        "use 'random' or 'grid'"
    )
