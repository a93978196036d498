"""The trial objective: determinism, the untouched holdout, the model adapter and errors."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from cryptosweep.errors import ConfigError
from cryptosweep.reproducibility import ReproducibilityManager
from cryptosweep.trading.data import load_ohlcv
from cryptosweep.trading.features import clear_feature_cache
from cryptosweep.trading.models import EntryModel, LightGBMEntryModel, make_entry_model
from cryptosweep.trading.objective import evaluate_holdout, evaluate_trial, full_rounds

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


@pytest.mark.parametrize("family", ["catboost", "xgboost", "torch"])
def test_planned_families_have_no_adapter_yet(family):
    with pytest.raises(ConfigError, match=f"model family '{family}' has no adapter yet"):
        make_entry_model(family, {}, ReproducibilityManager(seed=1))
    with pytest.raises(ConfigError, match="unknown model family 'sklearn'"):
        make_entry_model("sklearn", {}, ReproducibilityManager(seed=1))


def test_evaluate_trial_is_deterministic_and_json_safe():
    first = evaluate_trial(PARAMS, 1.0, 1234, _spec())
    clear_feature_cache()  # a fresh process would rebuild the features: same result
    second = evaluate_trial(copy.deepcopy(PARAMS), 1.0, 1234, _spec())
    assert json.dumps(first) == json.dumps(second)
    assert set(first) == {"score", "fold_sharpe", "fold_trades", "n_trades", "rounds",
                          "mean_bar_return"}  # fmt: skip
    assert type(first["score"]) is float and type(first["mean_bar_return"]) is float
    assert all(type(s) is float for s in first["fold_sharpe"]) and len(first["fold_sharpe"]) == 3
    assert all(type(n) is int for n in first["fold_trades"])
    assert first["n_trades"] == sum(first["fold_trades"]) > 0
    assert first["rounds"] == 30
    assert first["score"] == pytest.approx(np.mean(first["fold_sharpe"]))
    json.loads(json.dumps(first, allow_nan=False))


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
    assert set(result) == {"holdout_sharpe", "holdout_trades", "holdout_total_return",
                           "holdout_bars"}  # fmt: skip
    assert result["holdout_bars"] == 1900
    assert type(result["holdout_sharpe"]) is float and type(result["holdout_trades"]) is int
    assert result == evaluate_holdout(PARAMS, 1.0, 5, _spec())
    with pytest.raises(ConfigError, match="holdout_fraction is 0"):
        evaluate_holdout(PARAMS, 1.0, 5, _spec(holdout_fraction=0.0))


def test_evaluate_trial_errors():
    with pytest.raises(ValueError, match="unknown objective metric 'sortino'"):
        evaluate_trial(PARAMS, 1.0, 1, _spec(metric="sortino"))
    with pytest.raises(ConfigError, match="min_train_bars"):
        evaluate_trial(PARAMS, 1.0, 1, _spec(folds=3, min_train_bars=5_000))
    missing = copy.deepcopy(PARAMS)
    del missing["trading"]["threshold"]
    with pytest.raises(ConfigError, match=r"trading\.threshold is missing"):
        evaluate_trial(missing, 1.0, 1, _spec())
    other_family = {**PARAMS, "model": "catboost"}
    with pytest.raises(ConfigError, match="has no adapter yet"):
        evaluate_trial(other_family, 1.0, 1, _spec())
