"""What a model decides on each closed bar, read off the backtest's own simulation.

:func:`decisions_frame` runs :func:`~cryptosweep.trading.steps.backtest_bars` (the
:func:`~cryptosweep.trading.backtest.simulate` of the sweep: a signal at bar ``t``'s close
fills at bar ``t + 1``'s open, one position at a time, stop loss and take profit as price levels
from the fill, a time exit at the open ``holding_period`` bars after the fill) and reads each
bar's decision from the trades it made, so that the decisions are the backtest's, not a copy
of its rules. The one thing the simulation cannot show is the last bar's entry, whose fill bar
is not in the data yet: it is reported as ``pending``, with its levels relative to the fill.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd

from cryptosweep.core.settings import ObjectiveSettings
from cryptosweep.trading.steps import (
    Market,
    TradingParams,
    backtest_bars,
    entry_decisions,
    position_sizes,
)

#: ``action`` per side of an entry decided at a bar's close.
ACTIONS = {1: "enter long", -1: "enter short", 0: "none"}
#: The columns of a decisions frame, in order (see :func:`decisions_frame`).
DECISION_COLUMNS = (
    "decided_at", "proba", "signal", "action", "size", "position", "pending", "fill_time",
    "fill_price", "stop_factor", "take_profit_factor", "stop_price", "take_profit_price",
    "planned_exit_time",
)  # fmt: skip


def decisions_frame(
    market: Market, start: int, proba: np.ndarray, trading: TradingParams,
    settings: ObjectiveSettings,
) -> pd.DataFrame:
    """One row per bar from position ``start`` to the last bar (flat at ``start``), indexed
    by the bar's open time; ``proba`` holds P(entry pays) of those bars.

    * ``decided_at``: the bar's close (its open time plus the bar interval), when the decision
      is taken; ``proba``; ``signal``: the entry rule's side (+1, -1 or 0: the threshold rule,
      or ``objective.entry_rule: expected_value``; NaN ``proba`` during the features' warm-up
      gives 0).
    * ``action``: ``"enter long"``, ``"enter short"`` or ``"none"``: the signal is acted on
      only when no position is open at the bar's close (one position at a time).
    * ``size``: for an entry, the share of equity it puts in, as the backtest sizes it (1;
      less with ``objective.bet_sizing: afml`` or ``objective.vol_target``:
      :func:`~cryptosweep.trading.steps.position_sizes`); NaN on other bars.
    * ``position``: the side held after the bar's close (+1, -1, 0), this bar's entry not
      included (it fills at the next open).
    * For an entry: ``fill_time`` (the next bar's open), ``fill_price`` (its open with
      slippage, as the backtest fills), ``stop_factor`` and ``take_profit_factor`` (the levels
      as multiples of the fill price: a long's stop ``1 - stop_loss``, a short's ``1 +
      stop_loss``), ``stop_price`` and ``take_profit_price`` (the fill price times the factor,
      as the backtest computes them) and ``planned_exit_time`` (the time exit: the open
      ``holding_period`` bars after the fill). Empty (NaN/NaT) on other bars.
    * ``pending``: True on the last bar when it decides an entry whose fill bar is not in the
      data yet; its ``fill_price`` and absolute levels are then NaN (the factors say where
      they go), and times past the last bar are projected with the bar interval.

    Appending later bars never changes a row, except that a pending entry gets its fill; a
    gap in the appended bars moves only projected times.
    """
    n = len(market.open_)
    bars = np.arange(start, n, dtype="int64")
    if len(proba) != len(bars):
        raise ValueError(f"proba has {len(proba)} values for {len(bars)} bars")
    result = backtest_bars(market, bars, proba, trading, settings)
    signal = entry_decisions(proba, trading, settings)
    size = len(bars)
    side = np.zeros(size, dtype="int8")
    position = np.zeros(size, dtype="int8")
    fill_price = np.full(size, np.nan)
    for trade in result.trades:
        decided = trade.entry_bar - 1  # the bar whose close decided the entry
        side[decided] = trade.side
        fill_price[decided] = trade.entry_price
        closes = trade.exit_reason in ("end", "gap")  # at the exit bar's close: held on it
        held_to = trade.exit_bar + 1 if closes else trade.exit_bar
        position[trade.entry_bar : held_to] = trade.side
    pending = np.zeros(size, dtype=bool)
    if size and signal[-1] != 0 and position[-1] == 0:
        side[-1] = signal[-1]
        pending[-1] = True
    times = market.ohlcv.index[bars]
    step = market.bar_interval
    sides = side.astype("float64")
    entries = side != 0
    share = np.full(size, np.nan)
    if entries.any():
        share[entries] = position_sizes(market, bars, proba, side[entries].astype("int64"),
                                        np.flatnonzero(entries), settings)
    stop_factor = np.where(entries, 1.0 - sides * trading.stop_loss, np.nan)
    target_factor = np.where(entries, 1.0 + sides * trading.take_profit, np.nan)
    frame = pd.DataFrame({
        "decided_at": times + step,
        "proba": proba,
        "signal": signal,
        "action": [ACTIONS[int(s)] for s in side],
        "size": share,
        "position": position,
        "pending": pending,
        "fill_time": _bar_times(market, bars + 1, entries),
        "fill_price": fill_price,
        "stop_factor": stop_factor,
        "take_profit_factor": target_factor,
        "stop_price": fill_price * stop_factor,
        "take_profit_price": fill_price * target_factor,
        "planned_exit_time": _bar_times(market, bars + 1 + trading.holding_period, entries),
    }, index=times)  # fmt: skip
    frame.index.name = "open_time"
    return frame


def _bar_times(market: Market, positions: np.ndarray, where: np.ndarray) -> pd.DatetimeIndex:
    """Open times of bar ``positions`` (projected with the bar interval past the last bar);
    NaT where ``where`` is False."""
    index = market.ohlcv.index
    last = len(index) - 1
    inside = np.minimum(positions, last)
    times = index[inside] + market.bar_interval * np.maximum(positions - last, 0)
    return times.where(where, pd.NaT)


def decisions_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of a decisions frame as JSON-safe dicts: times in ISO 8601 (UTC), NaN/NaT as
    ``None``, floats as their exact ``repr`` (JSON round-trips them bit for bit)."""
    records = []
    for open_time, row in zip(frame.index, frame.itertuples(index=False), strict=True):
        record: dict[str, Any] = {"open_time": open_time.isoformat()}
        for name, value in zip(frame.columns, row, strict=True):
            record[name] = _plain(value)
        records.append(record)
    return records


def decisions_json(frame: pd.DataFrame) -> str:
    """The records of :func:`decisions_records` as JSON, one object per line of a list."""
    rows = [json.dumps(record, sort_keys=False, allow_nan=False)
            for record in decisions_records(frame)]
    return "[\n" + ",\n".join(rows) + "\n]\n" if rows else "[]\n"


def _plain(value: Any) -> Any:
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if value is pd.NaT or value is None:
        return None
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) else float(value)
    return value


def decisions_table(frame: pd.DataFrame) -> str:
    """A fixed-width text table of a decisions frame for a terminal."""
    header = ("bar (UTC open)", "P(pays)", "action", "size", "pos", "fill (UTC)", "fill price",
              "stop", "take profit", "exit by (UTC)")  # fmt: skip
    lines = []
    for open_time, row in frame.iterrows():
        fill = "pending" if row["pending"] else _price(row["fill_price"])
        lines.append((
            _time(open_time), "–" if math.isnan(row["proba"]) else f"{row['proba']:.4f}",
            row["action"], "–" if math.isnan(row["size"]) else f"{row['size']:.4g}",
            f"{int(row['position']):+d}" if row["position"] else "0",
            _time(row["fill_time"]), fill,
            _level(row["stop_price"], row["stop_factor"], row["pending"]),
            _level(row["take_profit_price"], row["take_profit_factor"], row["pending"]),
            _time(row["planned_exit_time"]),
        ))
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *lines,
                                                                      strict=True)]
    return "\n".join("  ".join(str(cell).ljust(width) for cell, width in zip(line, widths,
                                                                           strict=True)).rstrip()
                     for line in (header, *lines)) + "\n"


def _time(value: Any) -> str:
    return "–" if value is pd.NaT or value is None else value.strftime("%Y-%m-%d %H:%M")


def _price(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.6g}"


def _level(price: float, factor: float, pending: bool) -> str:
    if math.isnan(factor):
        return "–"
    return f"fill x {factor:.6g}" if pending else _price(price)
