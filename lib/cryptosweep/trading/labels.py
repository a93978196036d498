"""Labels for a long entry decided at a bar's close: does the trade pay?

Two methods of López de Prado (2018), *Advances in Financial Machine Learning* (AFML), ch. 3,
both with the entry at the next bar's open (a signal at bar ``t`` is known only at ``t``'s
close, so the earliest fill is ``open[t + 1]``):

* :func:`fixed_horizon_labels`, the fixed-time-horizon method (AFML ch. 3.2) with the threshold
  set to the round-trip fee;
* :func:`triple_barrier_labels`, the triple-barrier method (AFML ch. 3.4): take profit (upper),
  stop loss (lower) and a maximum holding time (vertical), with the exact barrier rules, fees
  and slippage of :func:`cryptosweep.trading.backtest.simulate`.

Each label records where its information ends (``label_end``), which the purged walk-forward
split needs (AFML ch. 7.4).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cryptosweep.trading.backtest import END, barrier_exits


def fixed_horizon_labels(
    ohlcv: pd.DataFrame, holding_period: int, fees_bps: float
) -> tuple[np.ndarray, np.ndarray]:
    """``(label, label_end)`` for every bar ``t`` of ``ohlcv``.

    ``label[t]`` is 1.0 when ``open[t+1+H] / open[t+1] - 1 > 2 * fees_bps / 1e4`` (a long
    opened at the next open and closed ``H`` bars later beats the round-trip fee), else 0.0, and
    NaN where ``t + 1 + H`` is past the last bar. ``label_end[t] = t + 1 + H`` (int64) is the
    position of the last bar whose data the label uses.
    """
    if isinstance(holding_period, bool) or int(holding_period) != holding_period:
        raise ValueError(f"holding_period must be an integer, got {holding_period!r}")
    horizon = int(holding_period)
    if horizon < 1:
        raise ValueError(f"holding_period must be >= 1 bar, got {horizon}")
    if fees_bps < 0:
        raise ValueError(f"fees_bps must be >= 0, got {fees_bps}")
    open_ = ohlcv["open"].to_numpy(dtype="float64")
    n = len(open_)
    label_end = np.arange(n, dtype="int64") + 1 + horizon
    label = np.full(n, np.nan)
    usable = max(n - 1 - horizon, 0)
    if usable:
        gross = open_[1 + horizon : n] / open_[1 : n - horizon] - 1.0
        label[:usable] = (gross > 2.0 * fees_bps / 1e4).astype("float64")
    return label, label_end


def triple_barrier_labels(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    *,
    take_profit: float,
    stop_loss: float,
    max_holding: int,
    fees_bps: float,
    slippage_bps: float = 0.0,
    last_bar: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Triple-barrier labels (AFML ch. 3.4) of a long entry at every bar: ``(label,
    label_end)``.

    For bar ``t`` the trade is the long that :func:`~cryptosweep.trading.backtest.simulate`
    opens on a lone signal at ``t``: filled at ``open[t+1] * (1 + slippage)``; upper barrier
    the take profit, lower barrier the stop loss (price levels from the fill, watched on each
    bar's high and low from the entry bar on; a bar opening beyond a level exits at its open;
    the stop first when a bar touches both); vertical barrier the open of bar ``t + 1 +
    max_holding``.

    * ``label[t]`` (float64) is 1.0 when that trade's net return after fees on both sides and
      slippage is > 0, else 0.0; NaN when the trade cannot finish inside the data (no barrier
      touched and the vertical barrier past the last bar; always for the last bar).
    * ``label_end[t]`` (int64) is the bar where the trade exits: the bar whose open, high or
      low decided it (``t + 1 + max_holding`` for a time exit). Where the label is NaN it is
      ``t + 1 + max_holding``, past the data, so a purge drops the bar.

    ``last_bar`` (per bar, the last bar before the next gap in the candles; None: no gaps):
    a trade open at the last bar before a gap ends at its close, as in ``simulate``.

    Vectorised over all bars (see :func:`~cryptosweep.trading.backtest.barrier_exits`).
    """
    if isinstance(max_holding, bool) or int(max_holding) != max_holding:
        raise ValueError(f"max_holding must be an integer, got {max_holding!r}")
    horizon = int(max_holding)
    if horizon < 1:
        raise ValueError(f"max_holding must be >= 1 bar, got {horizon}")
    open_ = np.asarray(open_, dtype="float64")
    n = len(open_)
    label = np.full(n, np.nan)
    label_end = np.arange(n, dtype="int64") + 1 + horizon
    starts = np.arange(max(n - 1, 0), dtype="int64")
    exits = barrier_exits(
        open_, high, low, close, starts + 1, np.ones(len(starts)), holding_period=horizon,
        stop_loss=stop_loss, take_profit=take_profit, fees_bps=fees_bps,
        slippage_bps=slippage_bps, last_bar=last_bar,
    )  # fmt: skip
    done = exits.reason != END
    label[starts[done]] = (exits.net_return[done] > 0.0).astype("float64")
    label_end[starts[done]] = exits.exit_bar[done]
    return label, label_end
