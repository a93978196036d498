"""Bayesian optimisation through Optuna (TPE, GP, CMA-ES) and BOHB's TPE configuration sampler,
driven directly with a synthetic, deterministic score (no real objective)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cryptosweep.core.reproducibility import derive_seed, seeded_rng
from cryptosweep.core.settings import CategoricalDimension, FloatDimension, IntDimension
from cryptosweep.strategies import bayesian
from cryptosweep.strategies.base import EvalResult, Observation
from cryptosweep.strategies.bayesian import BayesianSearch, TPEConfigSampler, default_min_points
from cryptosweep.strategies.optuna_space import frozen_trial, propose
from cryptosweep.strategies.random import RandomConfigSampler
from cryptosweep.strategies.space import SearchSpace

LIB = Path(__file__).resolve().parents[2] / "lib"


def make_space() -> SearchSpace:
    """Two families with different dimensions; every kind of dimension (names sorted)."""
    return SearchSpace(
        families={
            "lightgbm": {
                "learning_rate": FloatDimension(type="float", low=1e-3, high=0.3, log=True),
                "num_leaves": IntDimension(type="int", low=4, high=62, step=4),  # high off-grid
            },
            "xgboost": {
                "booster": CategoricalDimension(type="categorical", choices=["gbtree", "dart"]),
                "max_depth": IntDimension(type="int", low=2, high=10),
                "subsample": FloatDimension(type="float", low=0.5, high=0.95, step=0.1),
            },
        },
        trading={
            "holding_period": IntDimension(type="int", low=1, high=48, log=True),
            "side": CategoricalDimension(type="categorical", choices=[1, -1]),
            "threshold": FloatDimension(type="float", low=0.5, high=0.75),
        },
    )


SPACE = make_space()


def score(point: dict) -> float:
    """Smooth score with its optimum at lightgbm, lr 0.03, threshold 0.6, holding 12, side 1."""
    trading = point["trading"]
    value = -40 * (trading["threshold"] - 0.6) ** 2
    value -= (math.log(trading["holding_period"]) - math.log(12)) ** 2
    value -= 0.0 if trading["side"] == 1 else 1.0
    if point["model"] == "lightgbm":
        value -= (math.log10(point["entry_model"]["learning_rate"]) + 1.5) ** 2
    else:
        value -= 1.5
    return value


def check_point(point: dict, space: SearchSpace) -> None:
    assert set(point) == {"model", "entry_model", "trading"}
    assert point["model"] in space.families
    for values, dims in ((point["entry_model"], space.families[point["model"]]),
                         (point["trading"], space.trading)):
        assert list(values) == list(dims)  # only the chosen family's dims, in sorted order
        for name, dim in dims.items():
            value = values[name]
            if isinstance(dim, CategoricalDimension):
                assert value in dim.choices and type(value) is type(dim.choices[0])
            elif isinstance(dim, IntDimension):
                assert type(value) is int and dim.low <= value <= dim.high
                assert (value - dim.low) % dim.step == 0
            else:
                assert type(value) is float and dim.low <= value <= dim.high
                if dim.step is not None:
                    k = (value - dim.low) / dim.step
                    assert abs(k - round(k)) < 1e-8


def history_of(points: list[dict], budget: float = 1.0, fail_every: int = 0) -> list[Observation]:
    return [
        Observation(i, p, budget, None if fail_every and i % fail_every == 0 else score(p))
        for i, p in enumerate(points)
    ]


def random_points(n: int, seed: int = 0) -> list[dict]:
    sampler = RandomConfigSampler(SPACE, seed)
    return [sampler.sample(i) for i in range(n)]


def run(strategy: BayesianSearch, mode: str = "batch", fail_every: int = 0) -> list:
    """Drive a strategy to the end; ``batch``: ask all then tell all; ``one``: ask/tell each."""
    requests = []
    while not strategy.finished:
        asked = []
        while (request := strategy.ask()) is not None:
            asked.append(request)
            if mode == "one":
                break
        assert asked, "stalled"
        for request in asked:
            failed = fail_every and request.eval_id % fail_every == 0
            strategy.tell(EvalResult(request.eval_id, request.trial_id,
                                     "failed" if failed else "done",
                                     None if failed else score(request.params)))
        requests.extend(asked)
    return requests


def as_tuples(requests: list) -> list:
    return [(r.eval_id, r.trial_id, json.dumps(r.params, sort_keys=True), r.seed, r.budget, r.tags)
            for r in requests]


# ------------------------------------------------------------------------- optuna glue


def test_conditional_points_within_bounds_and_both_families():
    requests = run(BayesianSearch(SPACE, seed=3, n_trials=24, budget=9.0, batch_size=6))
    for request in requests:
        check_point(request.params, SPACE)
    assert {r.params["model"] for r in requests[:12]} == {"lightgbm", "xgboost"}
    trial = frozen_trial(5, requests[0].params, 1.0, SPACE)
    family = requests[0].params["model"]
    assert trial.number == 5
    assert set(trial.distributions) == {"model"} | {
        f"{family}.{name}" for name in SPACE.families[family]} | {
        f"trading.{name}" for name in SPACE.trading}
    if family == "lightgbm":  # off-grid highs snapped down, as the space's sampler does
        assert trial.distributions["lightgbm.num_leaves"].high == 60
    else:
        assert trial.distributions["xgboost.subsample"].high == 0.9


def test_single_family_has_no_model_parameter():
    space = SearchSpace(families={"lightgbm": SPACE.families["lightgbm"]}, trading=SPACE.trading)
    (point,) = propose(space, [], "tpe", 0, 1)
    check_point(point, space)
    assert "model" not in frozen_trial(0, point, 0.0, space).params


def test_foreign_params_are_a_clear_error():
    space = SearchSpace(families={"lightgbm": SPACE.families["lightgbm"]}, trading=SPACE.trading)
    xgb = next(p for p in random_points(10) if p["model"] == "xgboost")
    with pytest.raises(ValueError, match="trial 3: its parameters do not fit the search space"):
        frozen_trial(3, xgb, 1.0, space)


PROPOSE_SCRIPT = """
import json, sys
sys.path.insert(0, {lib!r}); sys.path.insert(0, {tests!r})
from test_bayesian import SPACE, history_of, random_points
from cryptosweep.strategies.optuna_space import propose
history = history_of(random_points(14), fail_every=5)
print(json.dumps({{name: propose(SPACE, history, name, 11, 3) for name in ("tpe", "cmaes")}}))
"""


def test_propose_is_deterministic_in_and_across_processes():
    history = history_of(random_points(14), fail_every=5)
    local = {name: propose(SPACE, history, name, 11, 3) for name in ("tpe", "cmaes")}
    assert local == {name: propose(SPACE, history, name, 11, 3) for name in ("tpe", "cmaes")}
    assert local["tpe"] != propose(SPACE, history, "tpe", 12, 3)
    assert len({json.dumps(p, sort_keys=True) for p in local["tpe"]}) == 3  # a batch spreads
    script = PROPOSE_SCRIPT.format(lib=str(LIB), tests=str(Path(__file__).parent))
    for hash_seed in ("1", "12345"):
        out = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True,
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
        )
        assert json.loads(out.stdout) == json.loads(json.dumps(local))


# ------------------------------------------------------------------------- BayesianSearch


def test_batches_wait_for_tells_and_have_their_own_seeds(monkeypatch):
    seeds = []

    def spy(space, history, sampler, seed, count, *args, **kwargs):
        seeds.append((seed, len(history), count))
        return propose(space, history, sampler, seed, count, *args, **kwargs)

    monkeypatch.setattr(bayesian, "propose", spy)
    strategy = BayesianSearch(SPACE, seed=7, n_trials=10, budget=27.0, batch_size=4)
    first = [strategy.ask() for _ in range(4)]
    assert strategy.ask() is None and strategy.ask() is None  # batch 0 not told yet
    for request in first[:3]:
        strategy.tell(EvalResult(request.eval_id, request.trial_id, "done", 0.5))
    assert strategy.ask() is None  # still one missing
    strategy.tell(EvalResult(3, 3, "failed", None))
    fifth = strategy.ask()
    assert fifth.tags == {"batch": 1}
    strategy.tell(EvalResult(4, 4, "done", 0.1))
    rest = run(strategy)
    assert len(rest) == 5 and strategy.finished and strategy.exhausted
    requests = [*first, fifth, *rest]
    assert [r.tags["batch"] for r in requests] == [0] * 4 + [1] * 4 + [2] * 2
    assert seeds == [(derive_seed(7, "bayesian", k), 4 * k, n) for k, n in ((0, 4), (1, 4),
                                                                             (2, 2))]
    assert len({seed for seed, _, _ in seeds}) == 3
    assert all(r.budget == 27.0 and r.trial_id == r.eval_id for r in requests)
    assert all(r.seed == derive_seed(7, "trial", r.eval_id) for r in requests)
    assert strategy.total_evaluations == 10 and strategy.total_budget == 270.0
    assert strategy.summary()["sampler"] == "tpe"


def test_same_asks_whatever_the_ask_tell_interleaving_and_across_resume():
    reference = as_tuples(run(BayesianSearch(SPACE, 5, 14, 3.0, batch_size=4)))
    one_by_one = as_tuples(run(BayesianSearch(SPACE, 5, 14, 3.0, batch_size=4), mode="one"))
    assert one_by_one == reference
    # interrupted with batches 0-1 told and evals 8-9 of batch 2 in flight: the journal
    interrupted = BayesianSearch(SPACE, 5, 14, 3.0, batch_size=4)
    journal = run(BayesianSearch(SPACE, 5, 8, 3.0, batch_size=4))
    for request in journal:
        assert interrupted.ask() == request
        interrupted.tell(EvalResult(request.eval_id, request.trial_id, "done",
                                    score(request.params)))
    journal += [interrupted.ask(), interrupted.ask()]
    assert as_tuples(journal) == reference[:10]
    # resume = a fresh strategy replaying the journal, then going on
    assert as_tuples(run(BayesianSearch(SPACE, 5, 14, 3.0, batch_size=4))) == reference
    assert reference != as_tuples(run(BayesianSearch(SPACE, 6, 14, 3.0, batch_size=4)))


def test_tpe_learns_a_synthetic_optimum():
    requests = run(BayesianSearch(SPACE, seed=1, n_trials=40, budget=1.0, batch_size=4))
    scores = [score(r.params) for r in requests]
    first, last = scores[:12], scores[-12:]
    assert sum(last) / 12 > sum(first) / 12 + 0.5
    assert max(scores[12:]) > max(first)


def test_cmaes_runs_deterministically_and_uses_the_history():
    runs = [as_tuples(run(BayesianSearch(SPACE, 2, 16, 1.0, "cmaes", batch_size=4)))
            for _ in range(2)]
    assert runs[0] == runs[1]
    for _, _, params, *_ in runs[0]:
        check_point(json.loads(params), SPACE)
    # after the 10 random trials the warm-started CMA-ES depends on the scores told
    history = history_of(random_points(12))
    flipped = [Observation(o.trial_id, o.params, o.budget, -o.score) for o in history]
    assert propose(SPACE, history, "cmaes", 3, 2) != propose(SPACE, flipped, "cmaes", 3, 2)


def test_gp_runs_deterministically():
    runs = [as_tuples(run(BayesianSearch(SPACE, 4, 11, 1.0, "gp", batch_size=10)))
            for _ in range(2)]
    assert runs[0] == runs[1]
    check_point(json.loads(runs[0][-1][2]), SPACE)


def test_failed_observations_are_accepted():
    requests = run(BayesianSearch(SPACE, 8, 16, 1.0, batch_size=4), fail_every=3)
    assert len(requests) == 16
    only_failures = history_of(random_points(12), fail_every=1)
    nan = [Observation(0, random_points(1)[0], 1.0, float("nan"))]
    for name in ("tpe", "cmaes"):
        for point in propose(SPACE, only_failures + nan, name, 0, 2):
            check_point(point, SPACE)


def test_bad_arguments():
    with pytest.raises(ValueError, match="sampler"):
        BayesianSearch(SPACE, 0, 4, 1.0, sampler="smac")
    with pytest.raises(ValueError, match="batch_size"):
        BayesianSearch(SPACE, 0, 4, 1.0, batch_size=0)
    with pytest.raises(ValueError, match="random_fraction"):
        TPEConfigSampler(SPACE, 0, random_fraction=1.5)


# ------------------------------------------------------------------------- BOHB's sampler


def test_bohb_sampler_falls_back_to_random_without_enough_points():
    sampler = TPEConfigSampler(SPACE, seed=9, random_fraction=0.0)
    assert sampler.min_points == default_min_points(SPACE) == 3 + 3 + 1
    # six points at budget 9, and seven at budget 3 of which one failed: not enough anywhere
    history = history_of(random_points(6, seed=1), budget=9.0) + history_of(
        random_points(7, seed=2), budget=3.0, fail_every=7)
    assert sampler.model_budget(history) is None
    assert sampler.sample(4, history) == RandomConfigSampler(SPACE, 9).sample(4)
    assert sampler.last_info["source"] == "fallback"


def test_bohb_sampler_models_the_largest_budget_with_enough_points():
    sampler = TPEConfigSampler(SPACE, seed=9, random_fraction=0.0)
    low = history_of(random_points(20, seed=1), budget=1.0)
    mid = history_of(random_points(8, seed=2), budget=3.0, fail_every=5)  # 6 scored: not enough
    mid_ok = history_of(random_points(9, seed=3), budget=3.0, fail_every=5)  # 7 scored
    high = history_of(random_points(4, seed=4), budget=9.0)
    assert sampler.model_budget(low + mid + high) == 1.0
    assert sampler.model_budget(low + mid_ok + high) == 3.0
    point = sampler.sample(17, low + mid_ok + high)
    check_point(point, SPACE)
    assert sampler.last_info == {"trial_id": 17, "source": "tpe", "budget": 3.0,
                                 "n_observations": 9}
    # exactly TPE on the budget-3 observations, seeded by the trial id
    expected = propose(SPACE, mid_ok, "tpe", derive_seed(9, "bohb", 17), 1, n_startup_trials=0)
    assert point == expected[0]
    assert sampler.sample(17, low[:5] + mid_ok + high[:2]) == point  # other budgets: ignored
    assert sampler.sample(17, mid_ok[:-1] + low) != point  # other budget-3 data: used
    assert sampler.sample(18, low + mid_ok + high) != point


def test_bohb_random_fraction():
    history = history_of(random_points(30), budget=1.0)
    always = TPEConfigSampler(SPACE, seed=2, random_fraction=1.0)
    assert always.sample(3, history) == RandomConfigSampler(SPACE, 2).sample(3)
    assert always.last_info["source"] == "random"
    never = TPEConfigSampler(SPACE, seed=2, random_fraction=0.0)
    never.sample(3, history)
    assert never.last_info["source"] == "tpe"
    # the default 1/3, decided per trial id by its own generator (no model needed to check)
    third = TPEConfigSampler(SPACE, seed=2)
    sources = []
    for trial_id in range(300):
        third.sample(trial_id, [])
        sources.append(third.last_info["source"])
        expected = seeded_rng(2, "bohb-random", trial_id).random() < 1 / 3
        assert (sources[-1] == "random") == expected
    assert 0.25 < sources.count("random") / 300 < 0.42
