"""CPCV of one configuration (:func:`cryptosweep.trading.objective.evaluate_cpcv`): one
Sharpe ratio per path, φ[N, k] paths, every split's training purged of its test labels."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from cryptosweep.core.config import ObjectiveSpec
from cryptosweep.core.errors import ConfigError
from cryptosweep.trading.cpcv import group_bounds, n_paths
from cryptosweep.trading.objective import evaluate_cpcv
from cryptosweep.trading.steps import TradingParams, load_market, training_labels
from tests.support import weekday_market_bars_per_year
from tests.trading.test_objective import PARAMS, _spec


@pytest.mark.parametrize(("groups", "test_groups"), [(4, 2), (5, 1)])
def test_paths_are_phi_n_k_and_every_split_is_purged(groups, test_groups):
    spec = _spec(rounds_per_unit=5.0)
    used = []
    out = evaluate_cpcv(PARAMS, 1.0, 7, spec, groups, test_groups, splits_used=used)
    assert out["n_paths"] == n_paths(groups, test_groups) == len(out["path_sharpe"])
    assert out["n_splits"] == math.comb(groups, test_groups) == len(used)
    assert all(math.isfinite(s) for s in out["path_sharpe"])
    assert len(out["path_trades"]) == out["n_paths"]

    # The splits the function trained on: no training label reaches into a test group's
    # bars, its labels' end or the embargo after it.
    market = load_market(spec)
    n_dev = market.holdout_start
    _, label_end = training_labels(market, TradingParams.from_params(PARAMS),
                                   ObjectiveSpec.of(spec).objective, n_dev)
    bounds = group_bounds(n_dev, groups)
    embargo = spec["objective"]["embargo_bars"]
    for split in used:
        assert not np.intersect1d(split.train, split.test).size
        for g in split.test_groups:
            start, stop = bounds[g]
            forbidden_end = max(stop - 1, int(label_end[start:stop].max())) + embargo
            train = split.train
            overlaps = (train <= forbidden_end) & (label_end[train] >= start)
            assert not overlaps.any(), (split.test_groups, g)
        assert len(split.train) + len(split.test) < n_dev  # something was purged


def test_same_inputs_same_paths():
    spec = _spec(rounds_per_unit=5.0)
    assert evaluate_cpcv(PARAMS, 1.0, 3, spec, 4, 2) == evaluate_cpcv(PARAMS, 1.0, 3, spec, 4, 2)


def test_groups_that_cannot_split_are_a_config_error():
    with pytest.raises(ConfigError, match=r"evidence\.cpcv"):
        evaluate_cpcv(PARAMS, 1.0, 3, _spec(), 4, 4)


def test_every_split_keeps_objective_min_train_bars_as_a_walk_forward_fold_must():
    """16 groups, 15 tested: the split that trains on group 15 alone keeps 475 bars less the
    purge and the 12-bar embargo after group 14, under 460; the splits were fitted on such
    sets (``min_train_bars`` was 1) where a walk-forward fold needs 460."""
    spec = _spec(rounds_per_unit=1.0, min_train_bars=460)
    with pytest.raises(ConfigError, match=r"^evidence\.cpcv\.test_groups: ") as error:
        evaluate_cpcv(PARAMS, 1.0, 3, spec, 16, 15)
    assert "fewer than objective.min_train_bars=460" in str(error.value)
    used = []
    evaluate_cpcv(PARAMS, 1.0, 3, _spec(rounds_per_unit=1.0, min_train_bars=440), 16, 15,
                  splits_used=used)
    assert min(len(split.train) for split in used) >= 440


def test_each_split_is_weighted_as_a_walk_forward_fold_is():
    """``objective.sample_weights: uniqueness``: the walk-forward folds, the holdout and
    production weight each training label by its uniqueness; the CPCV splits were fitted
    unweighted, so the paths judged another model (the same Sharpe ratios with and without
    the setting). Recomputed by hand: each split's model fitted with the uniqueness of its own
    training labels, the paths stitched (path p takes, for each group, the p-th split in
    lexicographic order that tests it) and each path's Sharpe ratio from its per-bar returns."""
    from cryptosweep.trading.objective import trial_reproducibility
    from cryptosweep.trading.steps import backtest_bars, fit_entry_model, predict_probabilities
    from cryptosweep.trading.uniqueness import uniqueness_weights

    spec = _spec(rounds_per_unit=5.0, sample_weights="uniqueness")
    used = []
    out = evaluate_cpcv(PARAMS, 1.0, 7, spec, 4, 2, splits_used=used)
    unweighted = evaluate_cpcv(PARAMS, 1.0, 7, _spec(rounds_per_unit=5.0), 4, 2)
    assert out["path_sharpe"] != unweighted["path_sharpe"]

    settings = ObjectiveSpec.of(spec).objective
    trading = TradingParams.from_params(PARAMS)
    market = load_market(spec)
    n_dev = market.holdout_start
    labels, label_end = training_labels(market, trading, settings, n_dev)
    bounds = group_bounds(n_dev, 4)
    repro = trial_reproducibility(ObjectiveSpec.of(spec), 7)
    predicted = {}
    for index, split in enumerate(used):
        train = split.train[np.isfinite(market.features[split.train]).all(axis=1)
                            & np.isfinite(labels[split.train])]
        end = np.maximum(label_end[train], train)
        weights = uniqueness_weights(train, end, int(end.max()) + 1)
        model = fit_entry_model(PARAMS, repro, 5, market.features, labels, train,
                                sample_weight=weights)
        for g in split.test_groups:
            predicted[index, g] = predict_probabilities(model, market.features,
                                                        np.arange(*bounds[g]))
    # Backtested from the first bar with every feature: the warm-up's flat returns (no
    # prediction) pulled each path's Sharpe ratio about 1 % towards 0.
    first = int(np.flatnonzero(np.isfinite(market.features).all(axis=1))[0])
    assert first > 100
    sharpe = []
    for p in range(n_paths(4, 2)):
        proba = np.concatenate([
            predicted[[i for i, s in enumerate(used) if g in s.test_groups][p], g]
            for g in range(4)])
        returns = backtest_bars(market, np.arange(first, n_dev), proba[first:], trading,
                                settings).returns
        sharpe.append(returns.mean() / returns.std(ddof=1) * math.sqrt(8760.0))
    assert out["path_sharpe"] == pytest.approx(sharpe, rel=1e-12)


def test_path_sharpe_ratios_are_annualised_with_a_weekend_closed_markets_own_density(
        monkeypatch):
    """The ``backtesting`` package's EURUSD hourly candles (closed at weekends): each path's
    Sharpe ratio is its per-bar mean / std (ddof=1) times the square root of the candles' own
    bars a year, counted here over the whole weeks they span (about 6,199, not
    the 8,760 of a market open around the clock, which would read 19 % high)."""
    import pandas as pd

    import cryptosweep.trading.objective as objective

    backtesting_test = pytest.importorskip("backtesting.test")
    eurusd = Path(backtesting_test.__file__).parent / "EURUSD.csv"
    spec = _spec(rounds_per_unit=2.0, min_train_bars=200)
    spec["data"] = {"path": str(eurusd), "format": "generic", "holdout_fraction": 0.2,
                    "columns": {"timestamp": "Unnamed: 0", "open": "Open", "high": "High",
                                "low": "Low", "close": "Close", "volume": "Volume"}}
    params = {**PARAMS, "trading": {**PARAMS["trading"], "threshold": 0.1}}
    paths = []
    performance = objective.performance

    def kept(returns, trades, positions, periods_per_year):
        paths.append(np.asarray(returns, dtype="float64"))
        return performance(returns, trades, positions, periods_per_year=periods_per_year)

    monkeypatch.setattr(objective, "performance", kept)
    out = evaluate_cpcv(params, 1.0, 7, spec, 3, 1)
    stamps = pd.to_datetime(pd.read_csv(eurusd, usecols=[0]).iloc[:, 0])
    per_year = weekday_market_bars_per_year(stamps)
    assert 6150 < per_year < 6250
    assert len(paths) == out["n_paths"] == 1 and out["path_trades"][0] > 0
    expected = paths[0].mean() / paths[0].std(ddof=1) * math.sqrt(per_year)
    assert out["path_sharpe"] == pytest.approx([expected], rel=1e-12)
