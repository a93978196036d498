"""Score what you deploy: who is re-scored with which seed, the winner by the mean re-score,
and the winner's neighbourhood."""

from __future__ import annotations

from typing import Any

from cryptosweep.core.config_files import load_config
from cryptosweep.core.reproducibility import derive_seed
from cryptosweep.records.evaluations import EvaluationRow
from cryptosweep.sweep.rescoring import by_rescore, neighbours, rescore_seed, reusable
from tests.support import tiny_config


def row(eval_id: int, score: float, **metrics: Any) -> EvaluationRow:
    return EvaluationRow(eval_id=eval_id, trial_id=eval_id, budget=9.0, seed=100 + eval_id,
                         params={"model": "lightgbm", "entry_model": {"num_leaves": 8},
                                 "trading": {"threshold": 0.6, "holding_period": 12}},
                         status="done", score=score, metrics=metrics, error=None, worker=None,
                         device=None, started_at=None, finished_at=None, attempts=1)


def test_the_first_seed_is_the_recorded_one_and_continued_scores_are_not_reused():
    fresh, continued = row(1, 0.5, continued=False), row(2, 0.7, continued=True)
    assert reusable(fresh) and not reusable(continued)
    assert not reusable(row(3, 0.1, budget_trained=3.0))  # trained only the increment
    assert rescore_seed(7, fresh, 0) == fresh.seed
    assert rescore_seed(7, fresh, 2) == derive_seed(7, "rescore", fresh.trial_id, 2)


def test_the_winner_is_the_best_mean_rescore_not_the_best_search_score():
    leaders = [row(1, 0.9), row(2, 0.8), row(3, 0.7)]
    scores = {1: {"mean": 0.2}, 2: {"mean": 0.6}, 3: {"mean": 0.6}}
    assert [r.eval_id for r in by_rescore(leaders, scores)] == [2, 3, 1]
    assert [r.eval_id for r in by_rescore(leaders, {1: {"mean": None}, 2: {"mean": 0.1},
                                                    3: {}})] == [2, 1, 3]


def test_neighbours_step_each_trading_parameter_and_nudge_each_searched_model_parameter():
    config = load_config(raw=tiny_config())
    params = {"model": "lightgbm",
              "entry_model": {"num_leaves": 8, "learning_rate": 0.1, "verbose": -1},
              "trading": {"threshold": 0.6, "holding_period": 12, "stop_loss": 0.02,
                          "take_profit": 0.03}}
    found = neighbours(config, params)
    changed = {(n["changed"], round(n["value"], 6)) for n in found}
    ranges = config.parameter_ranges.trading
    for name, value in params["trading"].items():
        dimension = ranges[name]
        if dimension.type == "categorical":
            continue
        step = getattr(dimension, "step", None) or (dimension.high - dimension.low) / 10
        for moved in (value - step, value + step):
            inside = dimension.low <= moved <= dimension.high
            assert ((f"trading.{name}", round(moved, 6)) in changed) is inside, (name, moved)
    family = config.parameter_ranges.family("lightgbm")
    names = {n["changed"] for n in found}
    assert "entry_model.verbose" not in names  # not searched: not nudged
    for name in family:
        if name in params["entry_model"]:
            assert f"entry_model.{name}" in names or params["entry_model"][name] in (
                family[name].low, family[name].high)
    assert all(n["params"]["model"] == "lightgbm" for n in found)
    assert params["trading"]["threshold"] == 0.6  # the winner's own params are not changed


def test_a_stepped_float_s_neighbours_are_on_its_steps_and_reach_its_bounds():
    """A float searched in steps was moved by adding the step: 0.2 + 0.1 is
    0.30000000000000004, past a high of 0.3, so that neighbour was left out, and the others
    were off the steps the search draws."""
    config = load_config(raw=tiny_config(**{"parameter_ranges__trading__stop_loss": {
        "type": "float", "low": 0.1, "high": 0.3, "step": 0.1}}))
    params = {"model": "lightgbm", "entry_model": {"num_leaves": 8},
              "trading": {"threshold": 0.55, "holding_period": 12, "stop_loss": 0.2,
                          "take_profit": 0.03}}
    moved = sorted(n["value"] for n in neighbours(config, params)
                   if n["changed"] == "trading.stop_loss")
    assert moved == [0.1, 0.3]
