"""Flat and buy-and-hold: the baselines every configuration is measured against, with the
backtest's own conventions (fills, fees, slippage, mark to market), on the trials' bars."""

from __future__ import annotations

import numpy as np
import pytest

from cryptosweep.trading.backtest import simulate
from cryptosweep.trading.baselines import buy_and_hold, flat
from cryptosweep.trading.metrics import METRIC_NAMES, performance
from cryptosweep.trading.objective import check_spec, evaluate_baselines

PER_YEAR = 8760.0


def _candles(n: int, seed: int = 3) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    open_ = np.concatenate([[100.0], close[:-1]]) * (1 + rng.normal(0.0, 0.001, n))
    high = np.maximum(open_, close) * 1.004
    low = np.minimum(open_, close) * 0.996
    return open_, high, low, close


def test_buy_and_hold_is_one_round_trip_from_the_first_open_to_the_last_close():
    open_, high, low, close = _candles(200)
    fees, slip = 10.0, 2.0
    result = buy_and_hold(open_, high, low, close, fees_bps=fees, slippage_bps=slip)
    entry, exit_ = open_[0] * (1 + slip / 1e4), close[-1] * (1 - slip / 1e4)
    ratio = exit_ / entry
    net = ratio - 1 - fees / 1e4 * (1 + ratio)
    (trade,) = result.trades
    assert (trade.entry_bar, trade.exit_bar, trade.side, trade.exit_reason) == (0, 199, 1, "end")
    assert trade.entry_price == pytest.approx(entry, rel=1e-15)
    assert trade.net_return == pytest.approx(net, rel=1e-12)
    assert result.n_trades == 1 and (result.positions == 1).all()
    assert np.prod(1 + result.returns) - 1 == pytest.approx(net, rel=1e-9)
    # Marked to market close to close, the entry fee on the first bar (simulate's rule).
    value = 1 + (close / entry - 1) - fees / 1e4
    assert result.returns[0] == pytest.approx(value[0] - 1, rel=1e-12)
    assert result.returns[1:-1] == pytest.approx(value[1:-1] / value[:-2] - 1, rel=1e-9)
    # Stop loss and take profit never fire, however far the price goes.
    crash = buy_and_hold(open_, high, low * 0.5, close, fees_bps=fees, slippage_bps=slip)
    assert crash.trades[0].exit_reason == "end" and crash.trades[0].exit_bar == 199


def test_buy_and_hold_is_what_simulate_does_with_a_signal_before_the_window():
    open_, high, low, close = _candles(120, seed=8)
    signal = np.zeros(120, dtype=np.int8)
    signal[19] = 1  # decided at bar 19's close, bought at bar 20's open
    whole = simulate(open_, high, low, close, signal, holding_period=500, stop_loss=np.inf,
                     take_profit=np.inf, fees_bps=7.0, slippage_bps=1.0)
    window = buy_and_hold(open_[20:], high[20:], low[20:], close[20:], fees_bps=7.0,
                          slippage_bps=1.0)
    assert np.array_equal(window.returns, whole.returns[20:])
    assert window.trades[0].net_return == whole.trades[0].net_return


def test_flat_has_no_trade_and_every_metric_zero():
    result = flat(50)
    assert result.n_trades == 0 and not result.returns.any() and not result.positions.any()
    metrics = performance(result.returns, result.trades, result.positions,
                          periods_per_year=PER_YEAR)
    assert set(metrics) == set(METRIC_NAMES) and all(v == 0 for v in metrics.values())
    assert buy_and_hold(*(np.array([]),) * 4, fees_bps=10.0).n_trades == 0
    with pytest.raises(ValueError):
        flat(-1)


def test_evaluate_baselines_on_the_trials_test_blocks_and_holdout():
    spec = {"data": {"holdout_fraction": 0.2},
            "objective": {"folds": 3, "fees_bps": 10.0, "slippage_bps": 2.0,
                          "metric": "total_return"}}
    data = check_spec(spec)
    baselines = evaluate_baselines(spec)
    assert set(baselines) == {"flat", "buy_and_hold"}
    flat_, hold = baselines["flat"], baselines["buy_and_hold"]
    assert len(flat_["folds"]) == len(hold["folds"]) == len(data["folds"]) == 3
    assert flat_["score"] == 0.0 and flat_["holdout"]["holdout_sharpe"] == 0.0
    assert flat_["holdout"]["holdout_bars"] == data["holdout_bars"]
    assert set(hold["holdout"]) == {f"holdout_{m}" for m in METRIC_NAMES} | {"holdout_bars"}
    assert all(fold["trades"] == 1 for fold in hold["folds"])

    from cryptosweep.trading.data import load_ohlcv, sample_data_path

    candles = load_ohlcv(sample_data_path())
    fee, slip = 10.0 / 1e4, 2.0 / 1e4

    def round_trip(start: int, stop: int) -> float:
        ratio = (candles["close"].iloc[stop - 1] * (1 - slip)) / (
            candles["open"].iloc[start] * (1 + slip))
        return ratio - 1 - fee * (1 + ratio)

    for block, fold in zip(data["folds"], hold["folds"], strict=True):
        assert fold["total_return"] == pytest.approx(round_trip(block["start"], block["stop"]),
                                                     rel=1e-9)
    assert hold["score"] == pytest.approx(np.mean([f["total_return"] for f in hold["folds"]]))
    span = data["holdout"]
    assert hold["holdout"]["holdout_total_return"] == pytest.approx(
        round_trip(span["start"], span["stop"]), rel=1e-9)
    no_holdout = evaluate_baselines({**spec, "data": {"holdout_fraction": 0.0}})
    assert no_holdout["buy_and_hold"]["holdout"] is None
