"""The holdout's permutation test, backtested: the strategy's own entry signal rotated in time.

Could entries at other times have done as well? The null hypothesis is that the signal carries
no information about the bars that follow it. Rotating the signal series circularly by ``s``
bars keeps everything about it (how many signals, how they cluster, their sides) and
everything about the market, and moves only their alignment; each rotation is then traded by
the strategy's own rules as :func:`~cryptosweep.trading.backtest.simulate` trades it (one
position at a time, the same stop, take profit, holding period, gaps, fees and slippage).
Under the null every rotation is as likely as the one that happened, so the share of rotations
that earn at least as much as the strategy is an exact permutation p-value over that group
(Good, *Permutation, Parametric and Bootstrap Tests of Hypotheses*, 3rd ed., Springer 2005,
ch. 3; the p-value: :func:`cryptosweep.judging.permutation.rotation_pvalue`).

Why not random trades of the same lengths (the test until 2026-12-07): with a stop and a take
profit, how long a trade lasts depends on where its price went, so length-matched random trades
placed in quieter bars varied less than a signal-less strategy's own trades. Nor random entries
drawn uniformly under the same rules (briefly tried): one position at a time, even a signal
that knows nothing takes more trades where trades are short, in volatile stretches; an always
long strategy then "beat" uniform entries whenever those stretches drifted up. A rotated signal
is subject to both effects exactly as the strategy is (the rates: docs/statistics.md and
``tests/judging/test_permutation.py``).

The totals are of unsized trades (a trade's net return, summed): the test asks about the
timing of the entries, not about the sizes a strategy with bet sizing gives them.
"""

from __future__ import annotations

import numpy as np

from cryptosweep.core.settings import ObjectiveSettings
from cryptosweep.trading.backtest import barrier_exits
from cryptosweep.trading.steps import Market, TradingParams, entry_decisions, gap_ends

#: Rotations a permutation test draws at most (all of them when the bars allow fewer; the
#: issue's floor is 1,000).
MAX_ROTATIONS = 2000


def rotation_shifts(n_bars: int, max_rotations: int = MAX_ROTATIONS, seed: int = 0) -> np.ndarray:
    """0 (the strategy itself) followed by the shifts the null uses: every shift ``1 ..
    n_bars − 1`` when there are at most ``max_rotations``, else that many drawn without
    replacement with ``numpy.random.default_rng(seed)``, in increasing order."""
    every = np.arange(1, max(n_bars, 1), dtype=np.int64)
    if len(every) > max_rotations:
        every = np.sort(np.random.default_rng(seed).choice(every, max_rotations, replace=False))
    return np.concatenate([[0], every]).astype(np.int64)


def rotated_totals(
    open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray,
    signal: np.ndarray, shifts: np.ndarray, *, holding_period: int, stop_loss: float,
    take_profit: float, fees_bps: float, slippage_bps: float = 0.0,
    last_bar: np.ndarray | None = None,
) -> np.ndarray:
    """For each shift ``s``, the sum of the net returns of the trades :func:`simulate` takes
    with the signal ``np.roll(signal, s)`` (the same rules and arguments); 0 without a trade.

    The exits of an entry at every bar are found once per side (:func:`barrier_exits`); each
    rotation then only walks its signals, one position at a time as :func:`simulate` does (the
    next entry is the first signal at or after the previous trade's exit bar).
    """
    signal = np.asarray(signal).astype(np.int8)
    n = len(signal)
    totals = np.zeros(len(shifts))
    if n < 2:
        return totals
    entries = np.arange(1, n, dtype=np.int64)
    exit_bar = np.zeros((2, n - 1), dtype=np.int64)  # row 0: long, row 1: short
    net = np.zeros((2, n - 1))
    for row, side in ((0, 1), (1, -1)):
        if not np.any(signal == side):
            continue
        exits = barrier_exits(
            open_, high, low, close, entries, np.full(n - 1, side, dtype=np.int64),
            holding_period=holding_period, stop_loss=stop_loss, take_profit=take_profit,
            fees_bps=fees_bps, slippage_bps=slippage_bps, last_bar=last_bar)
        exit_bar[row], net[row] = exits.exit_bar, exits.net_return
    for k, shift in enumerate(np.asarray(shifts, dtype=np.int64).tolist()):
        rotated = np.roll(signal, shift)[: n - 1]
        candidates = np.flatnonzero(rotated)
        if not len(candidates):
            continue
        rows = (rotated[candidates] < 0).astype(np.int64)
        following = np.searchsorted(candidates, exit_bar[rows, candidates], side="left").tolist()
        gains = net[rows, candidates].tolist()
        total, i, last = 0.0, 0, len(candidates)
        while i < last:
            total += gains[i]
            i = following[i]
        totals[k] = total
    return totals


def signal_rotations(
    market: Market, bars: np.ndarray, proba: np.ndarray, trading: TradingParams,
    settings: ObjectiveSettings, seed: int, max_rotations: int = MAX_ROTATIONS,
) -> np.ndarray:
    """:func:`rotated_totals` of the entry signal :func:`~cryptosweep.trading.steps.backtest_bars`
    trades on ``bars`` with ``proba``, at :func:`rotation_shifts` (element 0: the strategy's own
    trades, unsized; the rest: the null)."""
    return rotated_totals(
        market.open_[bars], market.high[bars], market.low[bars], market.close[bars],
        entry_decisions(proba, trading, settings),
        rotation_shifts(len(bars), max_rotations, seed),
        holding_period=trading.holding_period, stop_loss=trading.stop_loss,
        take_profit=trading.take_profit, fees_bps=settings.fees_bps,
        slippage_bps=settings.slippage_bps, last_bar=gap_ends(market, bars))
