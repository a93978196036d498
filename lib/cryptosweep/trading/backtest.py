"""Bar backtests of one position at a time, without look-ahead.

:func:`simulate` is the backtest the objective scores: long and short entries, stop loss and
take profit as price levels watched on every bar's high and low (the pessimistic *stop first*
rule when a bar touches both), gaps through a level filled at the bar's open, a time exit,
fees and slippage. Its barrier rules are :func:`barrier_exits`, which the triple-barrier labels
(:func:`cryptosweep.trading.labels.triple_barrier_labels`) share, so a label is exactly the
outcome of the trade :func:`simulate` would make.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import starmap

import numpy as np

EXIT_REASONS = ("stop", "take_profit", "time", "end", "gap")
"""``Trade.exit_reason`` values; :attr:`BarrierExits.reason` holds their positions."""
STOP, TAKE_PROFIT, TIME, END, GAP = range(5)


@dataclass(frozen=True)
class Trade:
    """One round trip of :func:`simulate`.

    ``entry_bar``/``exit_bar`` are bar positions (the exit bar is the bar whose open, high/low
    or, for ``"end"``, close decided the exit); ``side`` is +1 (long) or -1 (short); prices are
    the fills, slippage included; ``gross_return = side * (exit_price / entry_price - 1)`` and
    ``net_return = gross_return - fee * (1 + exit_price / entry_price)`` (the fee of both sides
    as a fraction of the entry notional), which the trade's per-bar returns compound to.
    """

    entry_bar: int
    exit_bar: int
    side: int
    entry_price: float
    exit_price: float
    exit_reason: str
    gross_return: float
    net_return: float


@dataclass(frozen=True)
class BacktestResult:
    """Per-bar net ``returns``, the number of trades opened, per-bar ``positions``, and (from
    :func:`simulate`) the ``trades`` themselves."""

    returns: np.ndarray
    n_trades: int
    positions: np.ndarray
    trades: list[Trade] = field(default_factory=list)

    @property
    def total_return(self) -> float:
        """Compounded return of the whole window."""
        return float(np.prod(1.0 + self.returns) - 1.0) if len(self.returns) else 0.0

    def held_spans(self) -> list[list[int]]:
        """Each trade's ``[entry bar, bars held, side]``: the bars whose position was the
        trade's, from its entry bar through its exit bar, except an exit bar whose open filled
        the exit (a time exit, a gap through a level), which the position never held past its
        open. What a test that matches a strategy's market exposure sums the market over."""
        return [[trade.entry_bar,
                 int(np.count_nonzero(self.positions[trade.entry_bar:trade.exit_bar + 1])),
                 trade.side] for trade in self.trades]


@dataclass(frozen=True)
class BarrierExits:
    """How the trades entered at ``open[entry_bar]`` end (arrays aligned with the entries).

    ``reason`` holds positions in :data:`EXIT_REASONS`; ``at_open`` is True where the exit fill
    is the exit bar's open (a time exit or a gap through a level).
    """

    entry_price: np.ndarray
    exit_bar: np.ndarray
    exit_price: np.ndarray
    reason: np.ndarray
    at_open: np.ndarray
    gross_return: np.ndarray
    net_return: np.ndarray


def simulate(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    signal: np.ndarray,
    *,
    holding_period: int,
    stop_loss: float,
    take_profit: float,
    fees_bps: float,
    slippage_bps: float = 0.0,
    last_bar: np.ndarray | None = None,
) -> BacktestResult:
    """Backtest entry signals with stop-loss, take-profit and time exits, one trade at a time.

    ``signal`` holds integers in {-1, 0, +1} (booleans count as long entries); prices must be
    finite. Conventions:

    * **Entry.** ``signal[t]`` (+1 long, -1 short, 0 nothing) is decided at bar ``t``'s close
      and filled at ``open[t+1]``: a long buys at ``open * (1 + s)``, a short sells at ``open *
      (1 - s)``, ``s = slippage_bps / 1e4``. A signal on the last bar is void.
    * **One position at a time.** Signals while a position is open are ignored, including the
      signal at the bar before an exit at an open (the position is still open at its close); a
      signal at the exit bar itself (the position is gone by its close) can enter at the next
      open, except at the last bar before a gap (``"gap"``): that trade closes at the bar's
      close only because later bars show the hole, so at that close the position was open.
    * **Levels.** From the fill price ``P``: long stop ``P * (1 - stop_loss)``, take profit ``P
      * (1 + take_profit)``; short stop ``P * (1 + stop_loss)``, take profit ``P * (1 -
      take_profit)``. ``math.inf`` switches a level off.
    * **Barrier checks**, on every bar from the entry bar (after its open) to the last bar
      before the time exit, against the bar's high and low (widened to include its open and
      close, should a candle be inconsistent):

      1. a bar that opens at or beyond a level exits at its open (a gap: the stop when it opens
         through the stop, the take profit when it opens through the take profit);
      2. otherwise, when the bar touches both levels, the **stop comes first** (we cannot know
         which was hit first, so assume the worse) and fills at the stop price;
      3. otherwise the level touched fills at its price.

    * **Time exit** at ``open[entry + holding_period]`` (before any level is checked on that
      bar). **End of data:** a position still open exits at the last close (``"end"``).
    * **Gaps in the candles** (``last_bar``, per bar the position of the last bar before the
      next gap: :func:`cryptosweep.trading.gaps.last_bar_before_gap`): bars across a gap are
      never consecutive; a trade still open at the last bar before a gap exits at its close
      (``"gap"``). None: no gaps.
    * **Exit fills** take slippage against the trade: a long sells at ``price * (1 - s)``, a
      short buys back at ``price * (1 + s)``.
    * **Fees:** ``fees_bps / 1e4`` of the traded notional on each side. Returns are on the entry
      notional, the whole equity going into each trade: ``net_return = side * (X - 1) - fee *
      (1 + X)``, ``X = exit_price / entry_price`` (the convention of `backtesting.py`'s
      ``Trade.pl_pct``).
    * **Per-bar returns** (length ``n``) mark the position to market close to close: the value
      of the trade (1 at entry) at bar ``t``'s close is ``V_t = 1 + side * (close[t] / P - 1) -
      fee`` and at the exit ``1 + net_return``; ``returns[t] = V_t / V_{t-1} - 1`` (``V = 1``
      before the entry bar). So the entry bar runs from the fill to its close less the entry
      fee, the exit bar from the previous close to the exit fill less the exit fee, and a
      trade's per-bar returns compound exactly to its ``net_return``. Bars out of the market
      return 0.
    * **Positions** (``int8``): ``side`` on every bar the position is held at some moment
      after the bar's open, i.e. from the entry bar to the exit bar, without the exit bar when
      the exit is at its open (time exits and gaps after the entry bar). That exit bar still
      carries the return from the previous close to the exit and the exit fee.

    A short without an effective stop can lose more than its notional; its value ``V`` then
    goes below 0 and the per-bar returns stop meaning much. Cost: the exits of all signals are
    found at once by :func:`barrier_exits`, then a loop over the trades only picks those taken.
    """
    open_, high, low, close = _check_ohlc(open_, high, low, close)
    signal = _check_signal(signal, len(open_))
    _check_params(holding_period, stop_loss, take_profit, fees_bps)
    _check_slippage(slippage_bps)
    n = len(open_)
    returns = np.zeros(n)
    positions = np.zeros(n, dtype="int8")
    candidates = np.flatnonzero(signal[: max(n - 1, 0)])
    if len(candidates) == 0:
        return BacktestResult(returns=returns, n_trades=0, positions=positions, trades=[])
    sides = signal[candidates]
    exits = barrier_exits(
        open_, high, low, close, candidates + 1, sides, holding_period=holding_period,
        stop_loss=stop_loss, take_profit=take_profit, fees_bps=fees_bps,
        slippage_bps=slippage_bps, checked=True, last_bar=last_bar,
    )  # fmt: skip
    # The next signal a trade leaves free is the first at or after its exit bar (after it for
    # a trade closed before a gap: the close that decided the signal did not know the gap).
    free_from = exits.exit_bar + (exits.reason == GAP)
    following = np.searchsorted(candidates, free_from, side="left").tolist()
    taken, i, last = [], 0, len(following)
    while i < last:
        taken.append(i)
        i = following[i]
    k = np.asarray(taken, dtype="int64")
    entry_bar, exit_bar, side = candidates[k] + 1, exits.exit_bar[k], sides[k].astype("int64")
    entry_price, exit_price = exits.entry_price[k], exits.exit_price[k]
    net = exits.net_return[k]
    _mark_to_market(
        returns, positions, close, entry_bar, exit_bar, side, entry_price, net,
        exits.at_open[k], fees_bps / 1e4,
    )  # fmt: skip
    reasons = [EXIT_REASONS[r] for r in exits.reason[k].tolist()]
    columns = (
        entry_bar.tolist(), exit_bar.tolist(), side.tolist(), entry_price.tolist(),
        exit_price.tolist(), reasons, exits.gross_return[k].tolist(), net.tolist(),
    )  # fmt: skip
    trades = list(starmap(Trade, zip(*columns, strict=True)))
    return BacktestResult(returns=returns, n_trades=len(trades), positions=positions, trades=trades)


def barrier_exits(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    entry_bars: np.ndarray,
    sides: np.ndarray,
    *,
    holding_period: int,
    stop_loss: float,
    take_profit: float,
    fees_bps: float,
    slippage_bps: float = 0.0,
    checked: bool = False,
    last_bar: np.ndarray | None = None,
) -> BarrierExits:
    """The exit of a trade entered at ``open[entry_bars[i]]`` on side ``sides[i]`` (±1), for
    every ``i`` at once, by the rules of :func:`simulate` (whatever the other trades do).

    Vectorised: the first barrier touch of every trade is found by binary lifting over sparse
    tables of running lows and highs (``O((n + len(entry_bars)) log holding_period)``).
    ``checked=True`` skips the input checks (the caller made them). ``last_bar``: see
    :func:`simulate` (a trade open at the last bar before a gap exits at its close).
    """
    if not checked:
        open_, high, low, close = _check_ohlc(open_, high, low, close)
        _check_params(holding_period, stop_loss, take_profit, fees_bps)
        _check_slippage(slippage_bps)
    n = len(open_)
    entry = np.asarray(entry_bars, dtype="int64")
    side = np.asarray(sides).astype("float64")
    if entry.shape != side.shape or entry.ndim != 1:
        raise ValueError("entry_bars and sides must be 1-d of one length")
    if len(entry) and (entry.min() < 0 or entry.max() >= n):
        raise ValueError(f"entry_bars must be bar positions in [0, {n})")
    if not np.isin(side, (-1.0, 1.0)).all():
        raise ValueError("sides must be +1 (long) or -1 (short)")
    slip, fee, horizon = slippage_bps / 1e4, fees_bps / 1e4, int(holding_period)
    entry_price = open_[entry] * (1.0 + side * slip)
    stop, target = barrier_levels(entry_price, side, stop_loss, take_profit)
    # Work in signed prices (side * price): "at or beyond the stop" is <= for both sides.
    stop_s, target_s = side * stop, side * target
    lowest = np.minimum(np.minimum(low, high), np.minimum(open_, close))
    highest = np.maximum(np.maximum(low, high), np.maximum(open_, close))
    # A bar touches a barrier when its low reaches the lower level or its high the upper one.
    lower, upper = np.where(side > 0, stop, target), np.where(side > 0, target, stop)
    if last_bar is None:
        cap = np.full(len(entry), n - 1, dtype="int64")
    else:
        cap = np.asarray(last_bar, dtype="int64")
        if cap.shape != (n,) or np.any(cap < np.arange(n)) or np.any(cap > n - 1):
            raise ValueError("last_bar must hold, per bar, a position in [bar, n)")
        cap = cap[entry]
    first = _first_touch(lowest, highest, entry, lower, upper, min(horizon, n), cap + 1)
    touched = first >= 0
    scheduled = entry + horizon
    exit_bar = np.where(touched, entry + first, np.minimum(scheduled, cap))
    # Touched: gap through the stop, gap through the target, stop (first), target.
    open_s = side * open_[exit_bar]
    gap_stop = touched & (open_s <= stop_s)
    gap_target = touched & ~gap_stop & (open_s >= target_s)
    adverse_s = np.where(side > 0, lowest[exit_bar], -highest[exit_bar])
    hit_stop = touched & ~gap_target & (gap_stop | (adverse_s <= stop_s))
    timed = ~touched & (scheduled <= cap)
    at_open = gap_stop | gap_target | timed
    raw = np.where(
        at_open, open_[exit_bar],
        np.where(touched, np.where(hit_stop, stop, target), close[cap] if n else np.nan),
    )  # fmt: skip
    codes = np.select([hit_stop, touched, timed, cap < n - 1], [STOP, TAKE_PROFIT, TIME, GAP],
                      default=END)
    reason = codes.astype("int8")
    exit_price = raw * (1.0 - side * slip)
    ratio = exit_price / entry_price
    gross = side * (ratio - 1.0)
    return BarrierExits(
        entry_price=entry_price, exit_bar=exit_bar.astype("int64"), exit_price=exit_price,
        reason=reason, at_open=at_open, gross_return=gross, net_return=gross - fee * (1.0 + ratio),
    )  # fmt: skip


def barrier_levels(
    entry_price: np.ndarray | float, side: np.ndarray | float, stop_loss: float,
    take_profit: float,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """The stop-loss and take-profit price levels of trades filled at ``entry_price`` (slippage
    included) on ``side`` (+1 long, -1 short), as :func:`simulate` watches them: long stop
    ``P * (1 - stop_loss)``, take profit ``P * (1 + take_profit)``; mirrored for shorts."""
    price = np.asarray(entry_price, dtype="float64")
    direction = np.asarray(side, dtype="float64")
    return price * (1.0 - direction * stop_loss), price * (1.0 + direction * take_profit)


def _first_touch(
    lowest: np.ndarray, highest: np.ndarray, entry: np.ndarray, lower: np.ndarray,
    upper: np.ndarray, span: int, limit: np.ndarray | int | None = None,
) -> np.ndarray:  # fmt: skip
    """Offset from ``entry`` of the first bar, among the ``span`` bars from ``entry`` on (and
    inside the data), whose low is ``<= lower`` or high ``>= upper``; -1 where there is none.

    Binary lifting over sparse tables of running minima/maxima: ``low_k[i] = min(lowest[i :
    i + 2**k])`` (and the max of ``highest``), then for ``k`` from the largest down, a trade
    skips ``2**k`` bars when they are all clean. ``O((n + len(entry)) log span)`` work, whatever
    the density of entries. ``limit`` (per trade, or one number): no bar at or after it is
    looked at (the first bar after a gap); default ``n``.
    """
    n = len(lowest)
    end = np.minimum(entry + span, n if limit is None else limit)
    low_tables, high_tables = [lowest], [highest]
    for k in range(1, max(span, 1).bit_length()):
        half = 1 << (k - 1)
        low_prev, high_prev = low_tables[-1], high_tables[-1]
        low_tables.append(np.minimum(low_prev[:-half], low_prev[half:]))
        high_tables.append(np.maximum(high_prev[:-half], high_prev[half:]))
    pos = entry.copy()
    for k in range(len(low_tables) - 1, -1, -1):
        size, low_k, high_k = 1 << k, low_tables[k], high_tables[k]
        if len(low_k) == 0:
            continue
        fits = pos + size <= end
        at = np.where(fits, pos, 0)
        pos += size * (fits & (low_k[at] > lower) & (high_k[at] < upper))
    return np.where(pos < end, pos - entry, -1)


def _mark_to_market(
    returns: np.ndarray, positions: np.ndarray, close: np.ndarray, entry_bar: np.ndarray,
    exit_bar: np.ndarray, side: np.ndarray, entry_price: np.ndarray, net: np.ndarray,
    at_open: np.ndarray, fee: float,
) -> None:  # fmt: skip
    """Fill ``returns``/``positions`` over the bars of the trades (see :func:`simulate`)."""
    length = exit_bar - entry_bar + 1
    trade = np.repeat(np.arange(len(length)), length)
    first = np.cumsum(length) - length
    bars = entry_bar[trade] + (np.arange(int(length.sum())) - first[trade])
    value = 1.0 + side[trade] * (close[bars] / entry_price[trade] - 1.0) - fee
    last = first + length - 1
    value[last] = 1.0 + net
    before = np.empty_like(value)
    before[1:] = value[:-1]
    before[first] = 1.0
    returns[bars] = value / before - 1.0
    positions[bars] = side[trade]
    gone = at_open & (exit_bar > entry_bar)
    positions[exit_bar[gone]] = 0


#: Returns whose spread (largest less smallest) is no more than this share of their largest
#: magnitude are equal up to rounding: ten returns of 0.001 have a float standard deviation of
#: about 1e-19, not 0, and a "Sharpe ratio" of 1e16.
DISPERSION_TOLERANCE = 1e-9


def has_dispersion(returns: np.ndarray) -> bool:
    """Whether per-bar returns vary by more than rounding: at least 2 of them, all finite,
    and ``max − min > DISPERSION_TOLERANCE · max|r|`` (a real series' spread is never within
    a billionth of its size; equal returns computed in floating point are)."""
    r = np.asarray(returns, dtype="float64")
    if r.size < 2 or not np.isfinite(r).all():
        return False
    return float(np.max(r) - np.min(r)) > DISPERSION_TOLERANCE * float(np.max(np.abs(r)))


def annualised_sharpe(returns: np.ndarray, periods_per_year: float) -> float:
    """``mean / std(ddof=1) * sqrt(periods_per_year)`` of per-bar returns (Sharpe 1966, 1994,
    without a risk-free rate); 0.0 for fewer than 2 returns or no dispersion
    (:func:`has_dispersion`). ``periods_per_year`` comes from the bar interval
    (:func:`~cryptosweep.core.intervals.periods_per_year`): there is no default."""
    returns = np.asarray(returns, dtype="float64")
    if not has_dispersion(returns):
        return 0.0
    std = float(np.std(returns, ddof=1))
    return float(np.mean(returns) / std * math.sqrt(periods_per_year))


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


def _check_ohlc(
    open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    arrays = tuple(np.asarray(a, dtype="float64") for a in (open_, high, low, close))
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1 or arrays[0].ndim != 1:
        raise ValueError(
            "open_, high, low and close must be 1-d of one length, got shapes "
            + ", ".join(str(a.shape) for a in arrays)
        )
    if not all(np.isfinite(a).all() for a in arrays):
        raise ValueError("open_, high, low and close must be finite (no NaN or inf)")
    return arrays  # type: ignore[return-value]


def _check_signal(signal: np.ndarray, n: int) -> np.ndarray:
    signal = np.asarray(signal)
    if signal.dtype != bool and not np.issubdtype(signal.dtype, np.integer):
        raise TypeError(f"signal must be an integer array of -1/0/+1, got {signal.dtype}")
    if signal.shape != (n,):
        raise ValueError(f"signal has shape {signal.shape}, expected ({n},)")
    # Checked before the cast to int8, which wraps: 257 read as a long, a uint8 255 as a short.
    if signal.dtype != bool and len(signal) and (signal.min() < -1 or signal.max() > 1):
        raise ValueError("signal values must be -1 (short), 0 (nothing) or +1 (long)")
    return signal.astype("int8")


def _check_slippage(slippage_bps: float) -> None:
    if not 0 <= slippage_bps < 1e4:
        raise ValueError(f"slippage_bps must be in [0, 1e4), got {slippage_bps}")
