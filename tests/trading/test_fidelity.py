"""The fidelity of a budget (``objective.fidelity``): ``folds`` evaluates exactly the most recent
folds, each as the full budget evaluates it, and is the ``rounds`` full-budget evaluation at
R; ``bars`` trains each fold on its most recent bars; the arithmetic of shares; the setting's
canonical form and its errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cryptosweep.core.config import ObjectiveSpec
from cryptosweep.core.config_files import load_config
from cryptosweep.core.errors import ConfigError
from cryptosweep.trading.fidelity import Fidelity, fidelity_at
from cryptosweep.trading.objective import evaluate_trial, fold_predictions
from tests.support import cli, tiny_config

PARAMS = {
    "model": "lightgbm",
    "entry_model": {"num_leaves": 8, "learning_rate": 0.1, "min_data_in_leaf": 40},
    "trading": {"threshold": 0.52, "holding_period": 8, "stop_loss": 0.03, "take_profit": 0.05},
}  # fmt: skip
FULL = 9  # R
FOLDS = 4
SEED = 7


def _spec(fidelity: str) -> ObjectiveSpec:
    config = load_config(raw=tiny_config(
        sweep_type="hyperband", hyperband={"max_iter": FULL, "eta": 3},
        objective={"folds": FOLDS, "rounds_per_unit": 2, "min_train_bars": 200,
                   "fidelity": fidelity}))
    return config.objective_spec()


@pytest.fixture(scope="module")
def full_rounds_result():
    """The ``rounds`` fidelity at the full budget: what every fidelity equals at R."""
    return evaluate_trial(PARAMS, float(FULL), SEED, _spec("rounds"))


def test_folds_below_the_full_budget_evaluates_exactly_the_most_recent_folds(
        full_rounds_result):
    full = full_rounds_result
    for budget, kept in ((1.0, 1), (3.0, 2)):  # ceil(4/9) = 1, ceil(4/3) = 2
        low = evaluate_trial(PARAMS, budget, SEED, _spec("folds"))
        assert low["fidelity"]["folds_evaluated"] == list(range(FOLDS - kept, FOLDS))
        assert low["rounds"] == full["rounds"]  # the full budget's rounds
        # each evaluated fold is the full evaluation's fold, bit for bit
        assert low["folds"] == full["folds"][-kept:]
        assert low["oos_returns"] == full["oos_returns"][-len(low["oos_returns"]):]
        assert low["score"] == float(np.mean([m["sharpe"] for m in full["folds"][-kept:]]))


@pytest.mark.parametrize("fidelity", ["folds", "bars"])
def test_at_the_full_budget_every_fidelity_is_the_rounds_evaluation(full_rounds_result,
                                                                    fidelity):
    at_r = evaluate_trial(PARAMS, float(FULL), SEED, _spec(fidelity))
    recorded = at_r.pop("fidelity")
    assert recorded["share"] == 1.0 and recorded["folds_evaluated"] == list(range(FOLDS))
    assert json.dumps(at_r, sort_keys=True) == json.dumps(full_rounds_result, sort_keys=True)


def test_bars_trains_every_fold_on_its_most_recent_bars(full_rounds_result):
    spec = _spec("bars")
    full = evaluate_trial(PARAMS, float(FULL), SEED, spec)["fidelity"]["train_bars"]
    low = evaluate_trial(PARAMS, 3.0, SEED, spec)
    assert low["fidelity"]["folds_evaluated"] == list(range(FOLDS))
    assert low["rounds"] == full_rounds_result["rounds"]
    assert all(200 <= few < many for few, many in zip(low["fidelity"]["train_bars"], full,
                                                      strict=True))
    assert low["score"] != full_rounds_result["score"]
    # the bars kept are the most recent ones of the fold's training bars
    train = np.arange(1000, 4000)
    kept = Fidelity("bars", 10, 1 / 3).training_bars(train, 200)
    assert kept.tolist() == list(range(3000, 4000))
    assert Fidelity("bars", 10, 0.01).training_bars(train, 200).tolist() == list(range(3800,
                                                                                       4000))


def test_the_share_arithmetic_forgives_floating_point_rounding():
    # R = 10, eta = 3: the first rung is 10/9 as a float; 9 folds x (10/9) / 10 is 1 fold
    assert Fidelity("folds", 1, (10 / 9) / 10).folds(9) == [8]
    assert Fidelity("folds", 1, 1 / 3).folds(4) == [2, 3]
    assert Fidelity("folds", 1, 1e-6).folds(4) == [3]  # never no fold
    assert Fidelity("folds", 1, 1.0).folds(4) == [0, 1, 2, 3]
    assert Fidelity("rounds", 1, 1.0).folds(4) == [0, 1, 2, 3]
    spec = _spec("folds")
    assert fidelity_at(FULL / 9, spec).share == pytest.approx(1 / 9)
    assert fidelity_at(2.0 * FULL, spec).rounds == 2 * fidelity_at(FULL, spec).rounds
    assert fidelity_at(1.0, _spec("rounds")).rounds == 2  # rounds: the budget's own


def test_a_spec_without_the_full_budget_or_with_a_checkpoint_is_refused(tmp_path):
    bare = ObjectiveSpec.of({"objective": {"fidelity": "folds"}})
    with pytest.raises(ConfigError, match="no full_budget"):
        fidelity_at(1.0, bare)
    with pytest.raises(ConfigError, match="rounds fidelity only"):
        next(fold_predictions(PARAMS, 1.0, SEED, _spec("bars"), checkpoint={
            "dir": str(tmp_path), "trial_id": 0, "from_budget": None}))


def test_the_default_is_left_out_and_the_others_recorded():
    rounds = load_config(raw=tiny_config())
    assert "fidelity" not in rounds.canonical()["objective"]
    assert "full_budget" not in rounds.objective_spec().to_payload()
    folds = load_config(raw=tiny_config(objective__fidelity="folds"))
    assert folds.canonical()["objective"]["fidelity"] == "folds"
    assert folds.objective_spec().to_payload()["full_budget"] == folds.full_budget_units
    assert folds.results_hash() != rounds.results_hash()
    # 0.1 round per unit: the first rung (1 of R = 9) trains 0 rounds with rounds, 1 with folds
    small = {"sweep_type": "hyperband", "hyperband": {"max_iter": 9, "eta": 3},
             "objective__rounds_per_unit": 0.1}
    with pytest.raises(ConfigError, match="rounds to 0 boosting rounds"):
        load_config(raw=tiny_config(objective__fidelity="rounds", **small))
    assert load_config(raw=tiny_config(**small)).objective.fidelity == "folds"  # the default


def test_a_bad_fidelity_is_one_line_exit_2(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps(tiny_config()), encoding="utf-8")
    done = cli("validate", "--config", str(path), "--set", "objective.fidelity=epochs")
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "objective.fidelity" in lines[0], lines
