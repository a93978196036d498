"""The trial objective: determinism, the untouched holdout, the model adapter and errors."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from cryptosweep.core.errors import ConfigError
from cryptosweep.core.reproducibility import ReproducibilityManager
from cryptosweep.trading.data import load_ohlcv
from cryptosweep.trading.features import clear_feature_cache
from cryptosweep.trading.metrics import METRIC_NAMES
from cryptosweep.trading.models import EntryModel, LightGBMEntryModel, make_entry_model
from cryptosweep.trading.objective import evaluate_holdout, evaluate_trial, returns_digest
from cryptosweep.trading.steps import full_rounds

PARAMS = {
    "model": "lightgbm",
    "entry_model": {
        "num_leaves": 15, "learning_rate": 0.1, "min_data_in_leaf": 40,
        "feature_fraction": 0.8, "bagging_fraction": 0.8, "lambda_l2": 1.0,
    },
    "trading": {"threshold": 0.5, "holding_period": 6, "stop_loss": 0.03, "take_profit": 0.05},
}  # fmt: skip


def _spec(path=None, holdout_fraction: float = 0.2, **objective) -> dict:
    settings = {
        "metric": "sharpe", "folds": 3, "fees_bps": 5.0, "rounds_per_unit": 30.0,
        "embargo_bars": 12, "threads_per_trial": 1, "min_train_bars": 300,
    }  # fmt: skip
    settings.update(objective)
    return {
        "data": {"path": None if path is None else str(path), "holdout_fraction": holdout_fraction},
        "objective": settings,
    }


def test_full_rounds():
    assert full_rounds(1.0, 100.0) == 100
    assert full_rounds(0.333, 100.0) == 33
    assert full_rounds(0.335, 100.0) == 34  # 33.5 rounds half up
    assert full_rounds(0.001, 10.0) == 1  # never zero rounds


def test_lightgbm_predictions_are_bitwise_identical_for_a_seed():
    rng = np.random.default_rng(11)
    x = rng.normal(size=(2_000, 8))
    y = (x[:, 0] + rng.normal(scale=2.0, size=2_000) > 0).astype(float)
    params = {"num_leaves": 15, "bagging_fraction": 0.7, "feature_fraction": 0.7}

    def predict(seed: int) -> np.ndarray:
        model = make_entry_model("lightgbm", params, ReproducibilityManager(seed=seed))
        model.fit(x, y, rounds=40)
        return model.predict_proba(x)

    first = predict(5)
    assert first.tobytes() == predict(5).tobytes()
    assert first.tobytes() != predict(6).tobytes()  # the seed reaches bagging/feature sampling
    assert ((first > 0) & (first < 1)).all()


def test_lightgbm_adapter_parameters():
    repro = ReproducibilityManager(seed=3, threads=2)
    model = make_entry_model("lightgbm", {"bagging_fraction": 0.5, "num_leaves": 7}, repro)
    assert isinstance(model, LightGBMEntryModel) and isinstance(model, EntryModel)
    assert model.params["objective"] == "binary"
    assert model.params["bagging_freq"] == 1
    assert model.params["seed"] == 3 and model.params["num_threads"] == 2
    assert model.params["deterministic"] is True and model.params["num_leaves"] == 7
    kept = LightGBMEntryModel({"bagging_fraction": 0.5, "bagging_freq": 4}, repro)
    assert kept.params["bagging_freq"] == 4
    with pytest.raises(ConfigError, match="may not set seed"):
        LightGBMEntryModel({"seed": 1}, repro)


def test_unknown_family_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown model family 'sklearn'"):
        make_entry_model("sklearn", {}, ReproducibilityManager(seed=1))


def test_evaluate_trial_is_deterministic_and_json_safe():
    first = evaluate_trial(PARAMS, 1.0, 1234, _spec())
    clear_feature_cache()  # a fresh process would rebuild the features: same result
    second = evaluate_trial(copy.deepcopy(PARAMS), 1.0, 1234, _spec())
    assert json.dumps(first) == json.dumps(second)
    assert set(first) == {"score", "metric", "penalty", "folds", "fold_sharpe", "fold_trades",
                          "n_trades", "rounds", "continued", "budget_trained", "returns_sha256",
                          "oos_returns"}  # fmt: skip
    assert type(first["score"]) is float and first["penalty"] is None
    assert len(first["folds"]) == 3 and set(first["folds"][0]) == set(METRIC_NAMES)
    assert all(type(s) is float for s in first["fold_sharpe"]) and len(first["fold_sharpe"]) == 3
    assert all(type(n) is int for n in first["fold_trades"])
    assert first["n_trades"] == sum(first["fold_trades"]) > 0
    assert first["rounds"] == 30
    assert first["score"] == pytest.approx(np.mean(first["fold_sharpe"]))
    returns = np.array(first["oos_returns"])
    assert first["returns_sha256"] == returns_digest(returns)
    assert len(returns) == sum(len(f.test) for f in _folds(PARAMS))
    json.loads(json.dumps(first, allow_nan=False))


def _folds(params):
    from cryptosweep.trading.objective import ObjectiveSpec
    from cryptosweep.trading.steps import TradingParams, load_market, training_labels
    from cryptosweep.trading.validation import walk_forward_folds

    spec = ObjectiveSpec.of(_spec())
    market = load_market(spec)
    _, label_end = training_labels(market, TradingParams.from_params(params), spec.objective,
                                   market.holdout_start)
    return walk_forward_folds(market.holdout_start, 3, label_end, 12, 300)


@pytest.mark.parametrize(("family", "entry_model"), [
    ("xgboost", {"max_depth": 3, "learning_rate": 0.1, "subsample": 0.8}),
    ("catboost", {"depth": 4, "learning_rate": 0.1}),
    ("torch", {"hidden_units": 16, "layers": 1, "learning_rate": 0.01}),
    ("lightgbm", {"boosting": "rf", "num_leaves": 15, "feature_fraction": 0.7}),
])
def test_every_family_scores_reproducibly_through_the_objective(family, entry_model):
    params = {**PARAMS, "model": family, "entry_model": entry_model}
    spec = _spec(rounds_per_unit=3.0)
    first = evaluate_trial(params, 1.0, 42, spec)
    assert json.dumps(first) == json.dumps(evaluate_trial(params, 1.0, 42, spec))
    assert np.isfinite(first["score"]) and first["rounds"] == 3


def test_metric_labels_and_short_side_options():
    base = evaluate_trial(PARAMS, 1.0, 8, _spec())
    sortino = evaluate_trial(PARAMS, 1.0, 8, _spec(metric="sortino"))
    assert sortino["score"] == pytest.approx(np.mean([f["sortino"] for f in sortino["folds"]]))
    assert sortino["fold_sharpe"] == base["fold_sharpe"]  # same trades, other summary
    fixed = evaluate_trial(PARAMS, 1.0, 8, _spec(labels="fixed_horizon"))
    assert fixed["returns_sha256"] != base["returns_sha256"]
    both_sides = evaluate_trial(PARAMS, 1.0, 8, _spec(allow_short=True))
    assert both_sides["n_trades"] > base["n_trades"]


def test_no_trades_is_a_penalised_score_with_its_reason():
    never = {**PARAMS, "trading": {**PARAMS["trading"], "threshold": 0.999999}}
    result = evaluate_trial(never, 1.0, 3, _spec())
    assert result["n_trades"] == 0 and result["score"] == 0.0
    assert "no trades" in result["penalty"]


def test_holdout_bars_never_reach_evaluate_trial(tmp_path):
    ohlcv = load_ohlcv()
    holdout_start = len(ohlcv) - int(len(ohlcv) * 0.2)
    rng = np.random.default_rng(7)
    changed = ohlcv.copy()
    factor = rng.uniform(0.5, 2.0, len(ohlcv) - holdout_start)  # scaling keeps candles valid
    for column in ("open", "high", "low", "close", "volume"):
        changed.iloc[holdout_start:, changed.columns.get_loc(column)] *= factor
    paths = []
    for name, frame in (("same.csv", ohlcv), ("changed.csv", changed)):
        out = frame.copy()
        out.index = out.index.as_unit("ms").asi8
        out.to_csv(tmp_path / name, index_label="open_time")
        paths.append(tmp_path / name)
    same, other = (evaluate_trial(PARAMS, 1.0, 99, _spec(path)) for path in paths)
    assert json.dumps(same) == json.dumps(other)
    assert same == evaluate_trial(PARAMS, 1.0, 99, _spec())  # the CSV copy is the sample
    holdout_same, holdout_other = (evaluate_holdout(PARAMS, 1.0, 99, _spec(p)) for p in paths)
    assert holdout_same != holdout_other  # the change did reach the holdout
    assert holdout_same["holdout_bars"] == len(ohlcv) - holdout_start


def test_evaluate_holdout_shape_and_errors():
    result = evaluate_holdout(PARAMS, 1.0, 5, _spec())
    assert set(result) == {f"holdout_{name}" for name in METRIC_NAMES} | {
        "holdout_bars", "holdout_returns", "holdout_held_spans"}
    assert len(result["holdout_returns"]) == 1900
    # Each trade's first bar, length and side: the same trades as the metrics count.
    assert len(result["holdout_held_spans"]) == result["holdout_trades"]
    assert all(0 <= start < 1900 and length >= 1 and side in (-1, 1)
               for start, length, side in result["holdout_held_spans"])
    # Their lengths are the bars held in a position (the exposure), not entry to exit bar.
    held = sum(length for _, length, _ in result["holdout_held_spans"])
    assert held == round(result["holdout_exposure"] * 1900)
    stressed = evaluate_holdout(PARAMS, 1.0, 5, _spec(), stress_multiplier=2.0)
    assert stressed["holdout_stress"]["multiplier"] == 2.0
    assert stressed["holdout_stress"]["trades"] == result["holdout_trades"]
    assert stressed["holdout_stress"]["total_return"] < result["holdout_total_return"]
    assert result["holdout_bars"] == 1900
    assert type(result["holdout_sharpe"]) is float and type(result["holdout_trades"]) is int
    assert result == evaluate_holdout(PARAMS, 1.0, 5, _spec())
    with pytest.raises(ConfigError, match="holdout_fraction is 0"):
        evaluate_holdout(PARAMS, 1.0, 5, _spec(holdout_fraction=0.0))


def test_evaluate_trial_errors():
    with pytest.raises(ConfigError, match=r"objective\.metric: Input should be 'sharpe'"):
        evaluate_trial(PARAMS, 1.0, 1, _spec(metric="omega"))
    with pytest.raises(ConfigError, match="min_train_bars"):
        evaluate_trial(PARAMS, 1.0, 1, _spec(folds=3, min_train_bars=5_000))
    missing = copy.deepcopy(PARAMS)
    del missing["trading"]["threshold"]
    with pytest.raises(ConfigError, match=r"trading\.threshold is missing"):
        evaluate_trial(missing, 1.0, 1, _spec())
    other_family = {**PARAMS, "model": "sklearn"}
    with pytest.raises(ConfigError, match="unknown model family"):
        evaluate_trial(other_family, 1.0, 1, _spec())


def test_promoted_trial_continues_from_its_checkpoints_reproducibly(tmp_path):
    spec = _spec(rounds_per_unit=10.0)
    first = {"dir": str(tmp_path), "trial_id": 7, "from_budget": None}
    low = evaluate_trial(PARAMS, 1.0, 5, spec, checkpoint=first)
    assert low["continued"] is False
    assert sorted(p.name for p in (tmp_path / "trial_7").glob("*.txt")) == [
        "fold0_r10.txt", "fold1_r10.txt", "fold2_r10.txt"]
    promoted = {"dir": str(tmp_path), "trial_id": 7, "from_budget": 1.0}
    high = evaluate_trial(PARAMS, 3.0, 5, spec, checkpoint=promoted)
    again = evaluate_trial(PARAMS, 3.0, 5, spec, checkpoint=promoted)
    assert high["continued"] is True and high["rounds"] == 30
    assert low["budget_trained"] == 1.0 and high["budget_trained"] == 2.0
    assert json.dumps(high) == json.dumps(again)
    missing = {"dir": str(tmp_path), "trial_id": 8, "from_budget": 1.0}
    with pytest.raises(FileNotFoundError):
        evaluate_trial(PARAMS, 3.0, 5, spec, checkpoint=missing)
