"""The ask/tell protocol and the random and grid strategies."""

from __future__ import annotations

import pytest

from cryptosweep.core.config_files import load_config
from cryptosweep.strategies import EvalResult, GridSearch, RandomSearch, make_strategy
from cryptosweep.strategies.space import SearchSpace
from tests.support import tiny_config


def drain(strategy):
    requests = []
    while (request := strategy.ask()) is not None:
        requests.append(request)
    return requests


def test_random_trial_depends_only_on_seed_and_id():
    config = load_config(raw=tiny_config(random__n_trials=8))
    first = drain(make_strategy(config, 1))
    longer = drain(make_strategy(load_config(raw=tiny_config(random__n_trials=12)), 1))
    assert [r.params for r in first] == [r.params for r in longer[:8]]
    assert len({r.seed for r in longer}) == 12
    assert all(r.budget == config.hyperband.max_iter for r in first)
    assert [r.eval_id for r in first] == list(range(8))


def test_results_told_out_of_order_are_observed_in_eval_id_order():
    seen = []

    class Recording(RandomSearch):
        def _observe(self, result):
            seen.append(result.eval_id)

    config = load_config(raw=tiny_config())
    strategy = Recording(SearchSpace.from_config(config), 1, 4, 1.0)
    requests = drain(strategy)
    with pytest.raises(RuntimeError, match="never asked"):
        strategy.tell(EvalResult(9, 9, "done", 0.1))
    for request in (requests[2], requests[1], requests[3]):
        strategy.tell(EvalResult(request.eval_id, request.trial_id, "done", 0.0))
        assert seen == [] and not strategy.finished  # eval 0 is still missing
    with pytest.raises(RuntimeError, match="told twice"):
        strategy.tell(EvalResult(1, 1, "done", 0.1))
    strategy.tell(EvalResult(0, 0, "failed", None))
    assert seen == [0, 1, 2, 3] and strategy.finished


def test_factory_builds_every_strategy():
    assert isinstance(make_strategy(load_config(raw=tiny_config()), 0), RandomSearch)
    grid = make_strategy(load_config(raw=tiny_config(sweep_type="grid")), 0)
    assert isinstance(grid, GridSearch) and grid.total_evaluations == len(drain(grid))
    assert make_strategy(load_config(raw=tiny_config(sweep_type="bayesian")), 0).name == "bayesian"
    hyperband = make_strategy(load_config(raw=tiny_config(sweep_type="hyperband")), 0)
    assert hyperband.name == "hyperband"
