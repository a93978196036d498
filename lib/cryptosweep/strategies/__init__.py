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
    """The strategy named by ``config.sweep_type``; ``config.full_budget_units`` is the full
    budget R of one configuration for every strategy (random, grid and Bayesian trials run at
    R; Hyperband's largest rung is R)."""
    space = SearchSpace.from_config(config)
    full_budget = float(config.full_budget_units)
    if config.sweep_type == "random":
        return RandomSearch(space, seed, config.random.n_trials, full_budget)
    if config.sweep_type == "grid":
        return GridSearch(
            space, seed, config.grid.points, full_budget, config.grid.max_trials
        )
    if config.sweep_type == "bayesian":
        from cryptosweep.strategies.bayesian import BayesianSearch

        settings = config.bayesian
        return BayesianSearch(space, seed, settings.n_trials, full_budget, settings.sampler,
                              settings.batch_size)
    if config.sweep_type == "hyperband":
        from cryptosweep.strategies.hyperband import HyperbandSearch

        settings = config.hyperband
        sampler = None
        if settings.sampler == "tpe":  # BOHB
            from cryptosweep.strategies.bayesian import TPEConfigSampler

            sampler = TPEConfigSampler(space, seed)
        return HyperbandSearch(space, seed, config.full_budget_units, settings.eta,
                               settings.iterations, sampler, settings.overlap_brackets)
    raise ConfigError(f"sweep_type: unknown strategy '{config.sweep_type}'")
