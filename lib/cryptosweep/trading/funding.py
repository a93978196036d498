"""What holding a short costs per bar: funding or borrow, pro-rated to the bar's duration.

A short is not free: shorting spot means borrowing the coin and paying interest on it, and a
short on a perpetual swap exchanges funding with the longs, usually every 8 hours, ``funding
fee = position notional × funding rate`` (e.g. Binance, Bybit, OKX: 00:00, 08:00 and 16:00 UTC;
a positive exchange rate is paid by longs to shorts). Both are quoted here as a **rate per 8
hours, positive when the short pays**: a borrow rate as is, an exchange funding rate negated.

:func:`funding_cost_per_bar` spreads the rate evenly over time: a bar of ``s`` seconds costs
``rate × s / 28 800`` of the position's notional. This is an approximation of discrete
settlements: on an exchange only a position open at a settlement instant pays, so a trade
between two settlements pays nothing and one across a settlement pays a full 8 hours. Over
many trades the pro-rated cost has the same expectation when entry times do not cluster
around settlements.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from cryptosweep.trading.gaps import as_epoch_ns

EIGHT_HOURS_SECONDS = 8 * 3600


def funding_cost_per_bar(
    bar_times: pd.DatetimeIndex | np.ndarray,
    rate_per_8h: float | None = None,
    rate_series: pd.Series | None = None,
    *,
    bar_seconds: float | None = None,
) -> np.ndarray:
    """The cost (float64, a fraction of notional) a short pays for holding through each bar.

    ``cost[i] = rate_i × bar_seconds / 28 800`` where

    * ``rate_i = rate_per_8h``, a constant rate per 8 hours, or
    * ``rate_i`` is the value of ``rate_series`` (rates per 8 hours, indexed by the datetimes
      they take effect) at its last timestamp ``<= bar_times[i]``: forward-filled from the past
      only, never from a later rate. Bars before the first rate get NaN (no rate known).

    Exactly one of ``rate_per_8h`` and ``rate_series`` is given; rates are positive when the
    short pays (see the module doc for perpetual swaps' sign) and may be negative.

    ``bar_times`` are the bars' open times (strictly increasing datetimes; time-zone aware or
    naive, the same for ``rate_series``'s index). A bar lasts ``bar_seconds``, by default the
    median step between consecutive bar times (the bar length of
    :func:`cryptosweep.trading.data.gap_report`; needs 2 bars). The duration of a bar is its
    candle's length, not the time to the next bar: across a gap a trade is closed (see
    :mod:`cryptosweep.trading.gaps`), so the hole is never charged.

    Raises ``ValueError`` for both or neither rate given, a non-finite rate, an unsorted or
    duplicated ``rate_series`` index, mixed time-zone awareness, or a bad ``bar_seconds``.
    """
    times = as_epoch_ns(bar_times, "bar_times")
    seconds = _bar_seconds(times, bar_seconds)
    if (rate_per_8h is None) == (rate_series is None):
        raise ValueError("give exactly one of rate_per_8h and rate_series")
    if rate_per_8h is not None:
        if isinstance(rate_per_8h, bool) or not math.isfinite(rate_per_8h):
            raise ValueError(f"rate_per_8h must be a finite number, got {rate_per_8h!r}")
        rates = np.full(len(times), float(rate_per_8h))
    else:
        rates = _rates_at(times, _aware(bar_times), rate_series)
    return rates * (seconds / EIGHT_HOURS_SECONDS)


def _rates_at(times: np.ndarray, times_aware: bool, rate_series: pd.Series) -> np.ndarray:
    if not isinstance(rate_series, pd.Series) or not isinstance(
        rate_series.index, pd.DatetimeIndex
    ):
        raise ValueError("rate_series must be a pandas Series indexed by a DatetimeIndex")
    if (rate_series.index.tz is not None) != times_aware:
        raise ValueError(
            "rate_series's index and bar_times must both be time-zone aware or both naive"
        )
    rate_times = as_epoch_ns(rate_series.index, "rate_series's index")
    values = rate_series.to_numpy(dtype="float64")
    if not np.all(np.isfinite(values)):
        raise ValueError("rate_series must hold finite rates")
    # The last rate that took effect at or before each bar's open.
    at = np.searchsorted(rate_times, times, side="right") - 1
    rates = np.full(len(times), np.nan)
    rates[at >= 0] = values[at[at >= 0]]
    return rates


def _bar_seconds(times: np.ndarray, bar_seconds: float | None) -> float:
    if bar_seconds is None:
        if len(times) < 2:
            raise ValueError("bar_seconds is needed with fewer than 2 bar_times")
        return float(np.median(np.diff(times))) / 1e9
    if isinstance(bar_seconds, bool) or not (math.isfinite(bar_seconds) and bar_seconds > 0):
        raise ValueError(f"bar_seconds must be finite and > 0, got {bar_seconds!r}")
    return float(bar_seconds)


def _aware(times: pd.DatetimeIndex | np.ndarray) -> bool:
    return pd.DatetimeIndex(times).tz is not None
