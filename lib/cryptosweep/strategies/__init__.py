"""Search strategies behind one ask/tell protocol (:mod:`cryptosweep.strategies.base`)."""

from __future__ import annotations

from cryptosweep.core.config import SweepConfig
from cryptosweep.core.errors import ConfigError
from cryptosweep.core.settings import MAX_EVALUATIONS
from cryptosweep.strategies.base import EvalRequest, EvalResult, Strategy
from cryptosweep.strategies.grid import GridSearch
from cryptosweep.strategies.random import RandomSearch
from cryptosweep.strategies.space import SearchSpace

__all__ = ["EvalRequest", "EvalResult", "GridSearch", "RandomSearch", "Strategy", "make_strategy",
           "sweep_size"]


def sweep_size(config: SweepConfig) -> tuple[int, float]:
    """How many evaluations the sweep of ``config`` runs and the budget they spend (in units of
    the full budget's unit), counted arithmetically, without building the strategy; a sweep of
    more than :data:`~cryptosweep.core.settings.MAX_EVALUATIONS` is a ``ConfigError`` naming what to
    lower. :func:`make_strategy` is safe to call once this returns."""
    full_budget = float(config.full_budget_units)
    if config.sweep_type == "hyperband":
        from cryptosweep.strategies.hyperband import hyperband_brackets

        settings = config.hyperband
        brackets = hyperband_brackets(config.full_budget_units, settings.eta)
        evaluations = settings.iterations * sum(b.n_evaluations for b in brackets)
        if evaluations > MAX_EVALUATIONS:
            raise ConfigError(
                f"hyperband: {settings.iterations} iteration(s) of "
                f"max_iter={config.full_budget_units}, eta={settings.eta} plan {evaluations} "
                f"evaluations, more than {MAX_EVALUATIONS}; lower hyperband.max_iter (or "
                "full_budget) or hyperband.iterations, or raise hyperband.eta"
            )
        return evaluations, settings.iterations * sum(b.budget for b in brackets)
    if config.sweep_type == "grid":
        size = SearchSpace.from_config(config).grid_size(config.grid.points)
        if size > config.grid.max_trials:
            raise ConfigError(
                f"grid: {size} combinations exceed grid.max_trials={config.grid.max_trials}; "
                "lower grid.points or narrow parameter_ranges"
            )
        return size, size * full_budget
    n_trials = config.bayesian.n_trials if config.sweep_type == "bayesian" else (
        config.random.n_trials)
    return n_trials, n_trials * full_budget


def make_strategy(config: SweepConfig, seed: int) -> Strategy:
    """The strategy named by ``config.sweep_type``; ``config.full_budget_units`` is the full
    budget R of one configuration for every strategy (random, grid and Bayesian trials run at
    R; Hyperband's largest rung is R). Its size is checked first (:func:`sweep_size`)."""
    sweep_size(config)
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
