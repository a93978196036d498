"""The decisions of :func:`~cryptosweep.production.decisions.decisions_frame` on candles in
memory, with hand-made probabilities (no trained model): what a live ``signals`` says at a
bar's close is what the backtest of the longer series later says of the same bar."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cryptosweep.core.settings import ObjectiveSettings
from cryptosweep.production.decisions import decisions_frame
from cryptosweep.trading.steps import TradingParams, backtest_bars, market_from_candles


def _candles(n: int, gap_after: int) -> pd.DataFrame:
    """A gentle random walk of hourly candles with a 5-hour hole after bar ``gap_after``."""
    rng = np.random.default_rng(7)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.002, n)))
    open_ = np.concatenate(([100.0], close[:-1]))
    times = pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC")
    times = times + pd.to_timedelta(np.where(np.arange(n) > gap_after, 5, 0), unit="h")
    return pd.DataFrame({"open": open_, "high": np.maximum(open_, close) * 1.0005,
                         "low": np.minimum(open_, close) * 0.9995, "close": close,
                         "volume": np.ones(n)}, index=pd.DatetimeIndex(times))


def test_a_gap_after_a_bar_never_changes_that_bars_decision():
    """A trade open at the last bar before a gap closes at its close, which the backtest
    knows only from the later bars; its signal at that bar entered after the gap, so the
    'none' that signals printed live (a position open) became 'enter long' once the bars after
    the hole arrived."""
    n, gap_after = 60, 40
    candles = _candles(n, gap_after)
    trading = TradingParams(threshold=0.6, holding_period=24, stop_loss=0.5, take_profit=0.5)
    settings = ObjectiveSettings(fees_bps=10.0)
    proba = np.full(n, 0.9)  # wants in on every bar
    full = decisions_frame(market_from_candles(candles), 0, proba, trading, settings)
    live = decisions_frame(market_from_candles(candles.iloc[: gap_after + 1]), 0,
                           proba[: gap_after + 1], trading, settings)
    assert live["position"].iloc[-1] == 1 and live["action"].iloc[-1] == "none"
    # only projected times move (a planned exit past the last bar lands after the hole)
    same = full.columns.drop("planned_exit_time")
    assert full.iloc[: gap_after + 1][same].equals(live[same])
    # after the hole the backtest is flat, and the first bar after it decides the next entry
    assert full["position"].iloc[gap_after + 1] == 0
    assert full["action"].iloc[gap_after + 1] == "enter long"


def test_an_entry_says_the_share_of_equity_the_backtest_puts_in():
    """With bet sizing or volatility targeting the backtest trades a share of the equity, but
    the decisions said only 'enter long': followed live, a whole-equity trade where the sweep
    measured a few per cent of one."""
    n = 260
    candles = _candles(n, gap_after=n)  # no gap
    trading = TradingParams(threshold=0.55, holding_period=6, stop_loss=0.05, take_profit=0.05)
    proba = np.full(n, 0.58)
    sized = ObjectiveSettings(bet_sizing="afml", vol_target=0.3)
    market = market_from_candles(candles)
    frame = decisions_frame(market, 0, proba, trading, sized)
    whole = decisions_frame(market, 0, proba, trading, ObjectiveSettings())
    entered = frame[(frame["action"] != "none") & ~frame["pending"]]
    # the backtest's own sizes: a trade's gross return over the whole-equity trade's
    bars = np.arange(n)
    shares = [s.gross_return / w.gross_return for s, w in zip(
        backtest_bars(market, bars, proba, trading, sized).trades,
        backtest_bars(market, bars, proba, trading, ObjectiveSettings()).trades, strict=True)]
    assert len(entered) == len(shares) > 3
    np.testing.assert_allclose(entered["size"].to_numpy(), shares, rtol=1e-9)
    assert (entered["size"] < 0.5).all()
    assert frame["size"][frame["action"] == "none"].isna().all()
    assert frame["pending"].iloc[-1] and 0 < frame["size"].iloc[-1] < 0.5  # decided at its close
    assert (whole["size"][whole["action"] != "none"] == 1.0).all()
