"""The permutation test's null backtested: each rotation of the entry signal earns what
``simulate`` earns with that rotated signal (checked by backtesting every rotation), and the
holdout's own total is what its backtest's trades earn."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cryptosweep.core.settings import ObjectiveSettings
from cryptosweep.trading.backtest import simulate
from cryptosweep.trading.rotation import rotated_totals, rotation_shifts, signal_rotations
from cryptosweep.trading.steps import TradingParams, backtest_bars, market_from_candles


def walk(n: int, seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.006, n)))
    open_ = np.concatenate([[100.0], close[:-1]]) * np.exp(rng.normal(0.0, 0.001, n))
    wick = np.abs(rng.normal(0.0, 0.004, n))
    return (open_, np.maximum(open_, close) * np.exp(wick),
            np.minimum(open_, close) * np.exp(-wick), close)


def test_every_rotation_earns_what_its_backtest_earns():
    n = 160
    open_, high, low, close = walk(n, 1)
    rng = np.random.default_rng(2)
    signal = np.where(rng.random(n) < 0.15, np.where(rng.random(n) < 0.6, 1, -1), 0)
    last_bar = np.where(np.arange(n) < 90, 89, n - 1)  # a gap after bar 89
    rules = {"holding_period": 7, "stop_loss": 0.008, "take_profit": 0.012, "fees_bps": 6.0,
             "slippage_bps": 2.0}
    shifts = np.arange(n)
    totals = rotated_totals(open_, high, low, close, signal, shifts, last_bar=last_bar, **rules)
    reasons = set()
    for shift in shifts:
        result = simulate(open_, high, low, close, np.roll(signal, shift), last_bar=last_bar,
                          **rules)
        reasons |= {trade.exit_reason for trade in result.trades}
        assert totals[shift] == sum(trade.net_return for trade in result.trades), shift
    assert reasons >= {"stop", "take_profit", "time", "gap"}  # every kind of exit was walked


def test_the_shifts_are_every_one_or_a_seeded_sample():
    assert rotation_shifts(5).tolist() == [0, 1, 2, 3, 4]
    sample = rotation_shifts(10_000, 300, seed=4)
    assert sample[0] == 0 and len(sample) == 301 and len(set(sample.tolist())) == 301
    assert np.all(np.diff(sample[1:]) > 0) and sample[1:].min() >= 1 and sample.max() < 10_000
    assert sample.tolist() == rotation_shifts(10_000, 300, seed=4).tolist()
    assert sample.tolist() != rotation_shifts(10_000, 300, seed=5).tolist()


def test_the_holdouts_own_total_is_what_its_trades_earn():
    """Element 0 is the strategy on the bars as the objective backtests them (its entry rule,
    shorts, gaps in the candles), unsized."""
    rng = np.random.default_rng(3)
    n = 400
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.003, n)))
    times = pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC")
    times = pd.DatetimeIndex(times + pd.to_timedelta(np.where(np.arange(n) > 250, 5, 0),
                                                     unit="h"))
    candles = pd.DataFrame({"open": np.concatenate([[100.0], close[:-1]]),
                            "high": close * 1.002, "low": close * 0.998, "close": close,
                            "volume": 1.0}, index=times)
    candles["high"] = np.maximum(candles["high"], candles["open"])
    candles["low"] = np.minimum(candles["low"], candles["open"])
    market = market_from_candles(candles)
    bars = np.arange(100, n)
    proba = rng.uniform(0.0, 1.0, len(bars))
    settings = ObjectiveSettings(allow_short=True, fees_bps=7.0, slippage_bps=3.0)
    rules = TradingParams(threshold=0.7, holding_period=12, stop_loss=0.03, take_profit=0.04)
    result = backtest_bars(market, bars, proba, rules, settings)
    totals = signal_rotations(market, bars, proba, rules, settings, seed=0, max_rotations=50)
    assert {trade.side for trade in result.trades} == {1, -1}
    assert "gap" in {trade.exit_reason for trade in result.trades}
    assert totals[0] == sum(trade.net_return for trade in result.trades)
    assert len(totals) == 51
