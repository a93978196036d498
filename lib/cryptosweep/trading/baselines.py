"""The two strategies every configuration must beat to be worth anything: **flat** (never
trade) and **buy-and-hold**, backtested on a window of bars by the rules of
:func:`~cryptosweep.trading.backtest.simulate`, so that their returns and metrics mean exactly
what a trial's do.

* Flat: zero return on every bar, no trade, no position. Every metric of
  :func:`~cryptosweep.trading.metrics.performance` is 0 for it.
* Buy-and-hold: one long trade over the whole window, bought at the first bar's open and sold
  at the last bar's close, with the window's fees and slippage on both sides (one round trip),
  marked to market close to close like any trade of :func:`simulate` — it *is* ``simulate``
  with a long signal just before the window and no stop, take profit or time exit.

A sweep scores them on the same walk-forward test blocks and holdout bars as its trials
(:func:`cryptosweep.trading.objective.evaluate_baselines`).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from cryptosweep.trading.backtest import BacktestResult, simulate

BASELINES = ("flat", "buy_and_hold")
"""The baselines' names, as they appear in the results."""


def flat(n_bars: int) -> BacktestResult:
    """Never trade: ``n_bars`` zero returns, no position, no trade."""
    if n_bars < 0:
        raise ValueError(f"n_bars must be >= 0, got {n_bars}")
    return BacktestResult(returns=np.zeros(n_bars), n_trades=0,
                          positions=np.zeros(n_bars, dtype="int8"), trades=[])


def buy_and_hold(
    open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray, *,
    fees_bps: float, slippage_bps: float = 0.0,
) -> BacktestResult:
    """One long trade from the first bar's open to the last bar's close of these bars.

    The entry fills at ``open_[0] * (1 + s)`` and the exit at ``close[-1] * (1 - s)``
    (``s = slippage_bps / 1e4``), each side paying ``fees_bps``; the per-bar returns compound
    to the trade's net return. Computed by :func:`simulate` itself: a copy of the first bar is
    put before the window with a long signal on it (a signal fills at the next open), barriers
    off (``math.inf``) and a holding period longer than the window, so the position ends at the
    last close (``"end"``); that extra bar is then dropped. An empty window makes no trade.
    """
    arrays = [np.asarray(a, dtype="float64") for a in (open_, high, low, close)]
    n = len(arrays[0])
    if n == 0:
        return flat(0)
    padded = [np.concatenate([a[:1], a]) for a in arrays]
    signal = np.zeros(n + 1, dtype=np.int8)
    signal[0] = 1
    result = simulate(*padded, signal, holding_period=n + 1, stop_loss=math.inf,
                      take_profit=math.inf, fees_bps=fees_bps, slippage_bps=slippage_bps)
    trades = [dataclasses.replace(t, entry_bar=t.entry_bar - 1, exit_bar=t.exit_bar - 1)
              for t in result.trades]
    return BacktestResult(returns=result.returns[1:], n_trades=result.n_trades,
                          positions=result.positions[1:], trades=trades)
