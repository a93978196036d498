"""Performance of a backtest: risk-adjusted return, drawdown, trade statistics.

All from the per-bar net returns, trades and positions of
:func:`cryptosweep.trading.backtest.simulate`, annualised with the ``periods_per_year`` of the
candles' bar interval (:mod:`cryptosweep.core.intervals`: crypto trades around the clock, so
hourly bars make 8760 a year, daily bars 365); it has no default, so nothing is silently
annualised as hourly. Every value is a plain Python number, and a degenerate case (no
trades, no dispersion, no drawdown) gives 0.0, never NaN. The one value that can be
infinite is ``calmar``: its annualised return over a few bars with a big move can exceed
the largest float (``inf``, not an error); what writes JSON writes it as null
(:func:`cryptosweep.core.files.finite_or_none`; a worker returns it so).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from cryptosweep.trading.backtest import annualised_sharpe, has_dispersion

METRIC_NAMES = (
    "sharpe", "sortino", "max_drawdown", "calmar", "total_return", "hit_rate", "trades",
    "exposure", "turnover",
)  # fmt: skip


def per_bar_sharpe(returns: np.ndarray) -> float:
    """``mean / std(ddof=1)`` of per-bar returns, 0 without dispersion
    (:func:`~cryptosweep.trading.backtest.has_dispersion`: equal returns up to rounding, fewer
    than 2, or a non-finite one): the Sharpe ratio of one configuration (the trial ledger's;
    their variance across configurations is the DSR's with ``deployment.dsr_variance:
    trials``)."""
    if not has_dispersion(returns):
        return 0.0
    return float(np.mean(returns) / np.std(returns, ddof=1))


def trial_sharpe(returns: np.ndarray | None) -> float | None:
    """An evaluation's per-bar Sharpe ratio as the trial ledger records it
    (:func:`per_bar_sharpe`), None without at least 2 bars or any dispersion, or with a
    non-finite return (left out of the variance across trials)."""
    if returns is None or not has_dispersion(returns):
        return None
    return per_bar_sharpe(np.asarray(returns))


def performance(
    returns: np.ndarray,
    trades: Sequence[Any],
    positions: np.ndarray,
    *,
    periods_per_year: float,
) -> dict[str, float | int]:
    """The metrics of one backtest (keys in :data:`METRIC_NAMES`).

    With ``r`` the per-bar returns (``n`` bars), ``P = periods_per_year`` and the equity curve
    ``E_t = prod_{s <= t} (1 + r_s)`` starting from ``E = 1`` before the first bar:

    * ``sharpe``: ``mean(r) / std(r, ddof=1) * sqrt(P)`` (no risk-free rate); 0 with fewer
      than 2 bars or no dispersion (returns equal up to rounding,
      :func:`~cryptosweep.trading.backtest.has_dispersion`).
    * ``sortino``: ``mean(r) / D * sqrt(P)`` with the downside deviation about a 0 target over
      *all* bars, ``D = sqrt(mean(min(r, 0)^2))`` (Sortino & Price 1994); 0 with fewer than 2
      bars or no losing bar.
    * ``max_drawdown``: the largest fall of ``E`` from its running peak (the peak includes the
      starting 1), as a positive fraction.
    * ``calmar``: the annualised compounded return ``E_n^(P / n) - 1`` divided by
      ``max_drawdown``; 0 without a drawdown; ``inf`` when that return exceeds the largest
      float (:func:`annualised_growth`).
    * ``total_return``: ``E_n - 1``.
    * ``hit_rate``: the share of trades with ``net_return > 0``; 0 without trades.
    * ``trades``: the number of trades (an ``int``).
    * ``exposure``: the share of bars with a non-zero position.
    * ``turnover``: the sum of ``|position change|`` over all fills, per bar, annualised:
      ``2 * trades / n * P`` (every trade moves the whole equity in and out once). It is
      counted from the trades, not from differences of ``positions``, which cannot show the
      flat moment between an exit and an entry on adjacent bars.
    """
    r = np.asarray(returns, dtype="float64")
    positions = np.asarray(positions)
    if r.ndim != 1 or positions.shape != r.shape:
        raise ValueError(
            f"returns and positions must be 1-d of one length, got {r.shape}, {positions.shape}"
        )
    if not np.isfinite(r).all():
        raise ValueError("returns must be finite")
    if not periods_per_year > 0:
        raise ValueError(f"periods_per_year must be > 0, got {periods_per_year}")
    n, n_trades = len(r), len(trades)
    equity = np.cumprod(1.0 + r)
    total = float(equity[-1] - 1.0) if n else 0.0
    peak = np.maximum.accumulate(np.concatenate([[1.0], equity]))[1:]
    drawdown = float(np.max(1.0 - equity / peak)) if n else 0.0
    drawdown = max(drawdown, 0.0)
    annual = annualised_growth(1.0 + total, periods_per_year / n) if n else 0.0
    wins = sum(1 for trade in trades if trade.net_return > 0)
    return {
        "sharpe": annualised_sharpe(r, periods_per_year),
        "sortino": _sortino(r, periods_per_year),
        "max_drawdown": drawdown,
        "calmar": float(annual / drawdown) if drawdown > 0 else 0.0,
        "total_return": total,
        "hit_rate": wins / n_trades if n_trades else 0.0,
        "trades": int(n_trades),
        "exposure": float(np.count_nonzero(positions) / n) if n else 0.0,
        "turnover": 2.0 * n_trades / n * periods_per_year if n else 0.0,
    }


def annualised_growth(growth: float, years_per_period: float) -> float:
    """``growth ** years_per_period - 1``: the compounded return a year of ``growth`` (the
    equity's end over its start) over a period gives; -1 when everything was lost, and
    ``math.inf`` when it exceeds the largest float (a big move over a few bars, e.g. 20 % in
    2 hourly bars), never an ``OverflowError``."""
    if not growth > 0:
        return -1.0
    try:
        return growth**years_per_period - 1.0
    except OverflowError:
        return math.inf


def _sortino(r: np.ndarray, periods_per_year: float) -> float:
    if len(r) < 2:
        return 0.0
    downside = math.sqrt(float(np.mean(np.minimum(r, 0.0) ** 2)))
    if not downside > 0.0:
        return 0.0
    return float(np.mean(r) / downside * math.sqrt(periods_per_year))
