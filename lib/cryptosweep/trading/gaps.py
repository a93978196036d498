"""Candles with gaps: contiguous segments, and where a trade open across a gap must close.

Exchange data has holes (outages, delistings, maintenance); :func:`cryptosweep.trading.data.
load_ohlcv` reports them and never fills them (:func:`~cryptosweep.trading.data.gap_report`).
A bar-count holding period or a stop watched bar by bar would silently run through a hole, as
if no time had passed and the price had jumped. The convention here: **a trade open across a
gap closes at the last bar before the gap** (its close), because nothing is known about the
missing time. :func:`segment_ids` numbers the contiguous runs of bars and
:func:`last_bar_before_gap` gives, for each bar, the last bar of its run; a simulation caps a
trade entered at bar ``e`` at ``last_bar_before_gap(...)[e]``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


def segment_ids(bar_times: pd.DatetimeIndex | np.ndarray, bar_seconds: float) -> np.ndarray:
    """Contiguous-segment number of every bar (int64, 0, 1, …, non-decreasing).

    A new segment starts at bar ``i`` when ``bar_times[i] - bar_times[i-1]`` exceeds one bar
    interval, ``bar_seconds`` (a step of exactly one interval is contiguous). ``bar_times`` are
    the bars' open times, strictly increasing datetimes (a ``DatetimeIndex``, a datetime64
    array or a Series of datetimes; time-zone aware or naive).
    """
    times = as_epoch_ns(bar_times, "bar_times")
    bar_ns = _bar_ns(bar_seconds)
    starts = np.diff(times) > bar_ns
    return np.concatenate(([0], np.cumsum(starts))).astype("int64")[: len(times)]


def last_bar_before_gap(bar_times: pd.DatetimeIndex | np.ndarray, bar_seconds: float) -> np.ndarray:
    """For every bar, the position (int64) of the last bar of its contiguous segment (see
    :func:`segment_ids`): where a trade open at that bar must close at the latest, at that
    bar's close, if a gap follows. Bars of the last segment map to the last bar."""
    ids = segment_ids(bar_times, bar_seconds)
    if len(ids) == 0:
        return np.zeros(0, dtype="int64")
    ends = np.flatnonzero(np.diff(ids, append=ids[-1] + 1))
    return ends[ids].astype("int64")


def as_epoch_ns(times: pd.DatetimeIndex | np.ndarray, name: str) -> np.ndarray:
    """Datetimes as int64 nanoseconds since the epoch (UTC for aware times), checked to be
    strictly increasing and free of NaT; ``ValueError`` naming ``name`` otherwise (numbers are
    refused: they would be read as nanoseconds)."""
    dtype = times.dtype if isinstance(times, pd.Index | pd.Series) else np.asarray(times).dtype
    if dtype.kind in "biuf":
        raise ValueError(f"{name} must be datetimes, got numbers of dtype {dtype}")
    try:
        index = pd.DatetimeIndex(times)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be datetimes: {exc}") from None
    if index.tz is not None:
        index = index.tz_convert("UTC").tz_localize(None)
    if index.hasnans:
        raise ValueError(f"{name} must not contain NaT")
    values = index.as_unit("ns").asi8
    if len(values) > 1 and not np.all(np.diff(values) > 0):
        i = int(np.flatnonzero(np.diff(values) <= 0)[0]) + 1
        raise ValueError(f"{name} must be strictly increasing; {name}[{i}] is not after [{i - 1}]")
    return values


def _bar_ns(bar_seconds: float) -> int:
    if isinstance(bar_seconds, bool) or not (math.isfinite(bar_seconds) and bar_seconds > 0):
        raise ValueError(f"bar_seconds must be finite and > 0, got {bar_seconds!r}")
    return round(bar_seconds * 1e9)
