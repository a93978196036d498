"""A long-only, one-position-at-a-time bar backtest without intrabar look-ahead.

Timing: a signal at bar ``t`` is known at ``t``'s close, so a long opens at ``open[t+1]``. A
position is checked only on bar closes (stop loss, take profit) and closed at the next open;
nothing assumes where inside a bar the high or the low came first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

HOURS_PER_YEAR = 24 * 365  # crypto trades around the clock


@dataclass(frozen=True)
class BacktestResult:
    """Per-bar net ``returns``, the number of trades opened, and ``positions`` (1 held over
    ``[open[t], open[t+1])``, else 0)."""

    returns: np.ndarray
    n_trades: int
    positions: np.ndarray

    @property
    def total_return(self) -> float:
        """Compounded return of the whole window."""
        return float(np.prod(1.0 + self.returns) - 1.0) if len(self.returns) else 0.0


def backtest_long_only(
    open_: np.ndarray,
    close: np.ndarray,
    signal: np.ndarray,
    holding_period: int,
    stop_loss: float,
    take_profit: float,
    fees_bps: float,
) -> BacktestResult:
    """Backtest long entries on ``signal`` over one window of bars.

    * A True ``signal[t]`` while flat opens a long at ``open[t+1]`` (the entry price); signals
      while in a position are ignored.
    * The position is closed at ``open[e + holding_period]`` (``e`` the entry bar), or earlier
      at ``open[t+1]`` after the first bar ``t >= e`` whose close is ``<= entry * (1 -
      stop_loss)`` or ``>= entry * (1 + take_profit)``. Still open at the window's last bar,
      it is closed at the last close.
    * ``returns[t] = position[t] * (open[t+1] / open[t] - 1)`` (the last bar: ``close / open
      - 1``); ``fees_bps / 1e4`` is subtracted on the entry bar and again on the last bar held.
    """
    open_, close, signal = _check_inputs(open_, close, signal)
    _check_params(holding_period, stop_loss, take_profit, fees_bps)
    n = len(open_)
    positions = np.zeros(n, dtype="int8")
    fees = np.zeros(n)
    fee = fees_bps / 1e4
    candidates = np.flatnonzero(signal[: max(n - 1, 0)])
    n_trades, next_free = 0, 0
    for t in candidates:
        if t < next_free:
            continue
        entry = int(t) + 1
        exit_ = _exit_bar(close, open_[entry], entry, int(holding_period), stop_loss, take_profit)
        positions[entry:exit_] = 1
        fees[entry] += fee
        fees[exit_ - 1] += fee
        n_trades += 1
        next_free = exit_
    returns = positions * _bar_returns(open_, close) - fees
    return BacktestResult(returns=returns, n_trades=n_trades, positions=positions)


def annualised_sharpe(returns: np.ndarray, periods_per_year: float = HOURS_PER_YEAR) -> float:
    """``mean / std(ddof=1) * sqrt(periods_per_year)`` of per-bar returns (Sharpe 1966, 1994,
    without a risk-free rate); 0.0 for fewer than 2 returns or zero dispersion."""
    returns = np.asarray(returns, dtype="float64")
    if len(returns) < 2:
        return 0.0
    std = float(np.std(returns, ddof=1))
    if not std > 0.0:
        return 0.0
    return float(np.mean(returns) / std * math.sqrt(periods_per_year))


def _exit_bar(
    close: np.ndarray, entry_price: float, entry: int, holding_period: int,
    stop_loss: float, take_profit: float,
) -> int:  # fmt: skip
    """One past the last bar held: the exit is at ``open[returned]`` (``len`` = last close)."""
    n = len(close)
    scheduled = entry + holding_period
    window = close[entry : min(scheduled, n)]
    stop_price, target_price = entry_price * (1.0 - stop_loss), entry_price * (1.0 + take_profit)
    hits = (window <= stop_price) | (window >= target_price)
    if hits.any():
        return entry + int(np.argmax(hits)) + 1
    return min(scheduled, n)


def _bar_returns(open_: np.ndarray, close: np.ndarray) -> np.ndarray:
    bar = np.empty(len(open_))
    if len(open_):
        bar[:-1] = open_[1:] / open_[:-1] - 1.0
        bar[-1] = close[-1] / open_[-1] - 1.0
    return bar


def _check_inputs(
    open_: np.ndarray, close: np.ndarray, signal: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    open_ = np.asarray(open_, dtype="float64")
    close = np.asarray(close, dtype="float64")
    signal = np.asarray(signal)
    if signal.dtype != bool:
        raise TypeError(f"signal must be a boolean array, got {signal.dtype}")
    if not open_.shape == close.shape == signal.shape or open_.ndim != 1:
        raise ValueError(
            f"open_, close and signal must be 1-d of one length, got shapes {open_.shape}, "
            f"{close.shape}, {signal.shape}"
        )
    return open_, close, signal


def _check_params(
    holding_period: int, stop_loss: float, take_profit: float, fees_bps: float
) -> None:
    if isinstance(holding_period, bool) or int(holding_period) != holding_period:
        raise ValueError(f"holding_period must be an integer, got {holding_period!r}")
    if holding_period < 1:
        raise ValueError(f"holding_period must be >= 1 bar, got {holding_period}")
    if not stop_loss > 0 or not take_profit > 0:
        raise ValueError(f"stop_loss and take_profit must be > 0, got {stop_loss}, {take_profit}")
    if not fees_bps >= 0:
        raise ValueError(f"fees_bps must be >= 0, got {fees_bps}")
