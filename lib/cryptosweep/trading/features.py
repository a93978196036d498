"""Causal features of an OHLCV series, and a per-process cache so a worker builds them once.

Every feature at bar ``t`` is computed from bars ``<= t`` only: trailing windows, recursive
(``adjust=False``) exponential averages, no centred windows, no back-filling and no
normalisation over the whole series. Rows before a window is full (the warm-up) are NaN.

Indicators: RSI after Wilder (1978), *New Concepts in Technical Trading Systems*; MACD after
Appel (1979); Bollinger %b after Bollinger (2001), *Bollinger on Bollinger Bands*.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cryptosweep.trading.candle_formats import LoadOptions
from cryptosweep.trading.data import data_files, load_ohlcv, sample_data_path

RETURN_WINDOWS = (1, 3, 6, 12, 24, 72)
VOLATILITY_WINDOWS = (24, 72)
VOLUME_WINDOWS = (24, 168)
RSI_PERIOD = 14
MACD_SPANS = (12, 26, 9)  # fast, slow, signal
BOLLINGER = (20, 2.0)  # window, number of standard deviations

FEATURE_COLUMNS: tuple[str, ...] = (
    *(f"log_ret_{w}" for w in RETURN_WINDOWS),
    *(f"realised_vol_{w}" for w in VOLATILITY_WINDOWS),
    "hl_range",
    f"rsi_{RSI_PERIOD}",
    "macd",
    "macd_signal",
    "macd_hist",
    "bollinger_pct_b",
    *(f"volume_z_{w}" for w in VOLUME_WINDOWS),
    "hour_sin",
    "hour_cos",
    "dow_sin",
    "dow_cos",
)

#: Bars before the first bar with every feature complete (the features' warm-up): a return
#: over ``w`` bars and a volatility of ``w`` one-bar returns start at bar ``w``, a z-score over
#: ``w`` volumes at ``w - 1``, RSI at its period, the MACD signal line after the slow average's
#: ``slow - 1`` bars and its own ``signal - 1``, Bollinger at its window less one.
WARM_UP_BARS = max(
    max(RETURN_WINDOWS),
    max(VOLATILITY_WINDOWS),
    max(VOLUME_WINDOWS) - 1,
    RSI_PERIOD,
    MACD_SPANS[1] - 1 + MACD_SPANS[2] - 1,
    BOLLINGER[0] - 1,
)

CacheKey = tuple[str, tuple[tuple[str, int, int], ...], LoadOptions]
_CACHE_SIZE = 4
_cache: OrderedDict[CacheKey, tuple[pd.DataFrame, pd.DataFrame]] = OrderedDict()
_cache_lock = threading.Lock()


def build_features(ohlcv: pd.DataFrame) -> pd.DataFrame:
    """The feature matrix of :data:`FEATURE_COLUMNS`, float64, indexed like ``ohlcv``.

    ``ohlcv`` is the output of :func:`cryptosweep.trading.data.load_ohlcv` (a
    ``DatetimeIndex`` and float columns ``open, high, low, close, volume``); bars out of time
    order or at a repeated time are a ``ValueError``.
    """
    if not isinstance(ohlcv.index, pd.DatetimeIndex):
        raise TypeError("build_features needs a DatetimeIndex (the output of load_ohlcv)")
    if not (ohlcv.index.is_monotonic_increasing and ohlcv.index.is_unique):
        # a trailing window over bars newest first (CryptoDataDownload's order) reads the future
        raise ValueError("build_features needs bars in ascending time order without repeated "
                         "times (the output of load_ohlcv)")
    close = ohlcv["close"].astype("float64")
    log_close = np.log(close)
    one_bar = log_close.diff()
    columns: dict[str, pd.Series] = {}
    for window in RETURN_WINDOWS:
        columns[f"log_ret_{window}"] = log_close.diff(window)
    for window in VOLATILITY_WINDOWS:
        columns[f"realised_vol_{window}"] = one_bar.rolling(window, min_periods=window).std()
    columns["hl_range"] = (ohlcv["high"] - ohlcv["low"]) / close
    columns[f"rsi_{RSI_PERIOD}"] = wilder_rsi(close, RSI_PERIOD)
    columns.update(_macd(close))
    columns["bollinger_pct_b"] = _bollinger_pct_b(close)
    for window in VOLUME_WINDOWS:
        columns[f"volume_z_{window}"] = _rolling_zscore(ohlcv["volume"], window)
    columns.update(_calendar(ohlcv.index))
    features = pd.DataFrame(columns, index=ohlcv.index)[list(FEATURE_COLUMNS)]
    return features.astype("float64").replace([np.inf, -np.inf], np.nan)


def wilder_rsi(close: pd.Series, period: int = RSI_PERIOD) -> pd.Series:
    """Wilder's RSI: the first average gain/loss is the simple mean of the first ``period``
    changes, then ``avg_t = avg_{t-1} + (x_t - avg_{t-1}) / period``. NaN for the first
    ``period`` bars; 50 where there was neither a gain nor a loss over the window."""
    delta = close.diff().to_numpy()
    rsi = np.full(len(close), np.nan)
    if len(close) > period:
        gain = _wilder_average(np.clip(delta, 0.0, None), period)
        loss = _wilder_average(np.clip(-delta, 0.0, None), period)
        total = gain + loss
        with np.errstate(invalid="ignore", divide="ignore"):
            rsi[period:] = np.where(total > 0, 100.0 * gain / total, 50.0)
    return pd.Series(rsi, index=close.index)


def _wilder_average(values: np.ndarray, period: int) -> np.ndarray:
    """Wilder smoothing of ``values[1:]`` (``values[0]`` is the undefined first change), for
    positions ``period`` onwards."""
    tail = values[period:].copy()
    tail[0] = values[1 : period + 1].mean()
    return pd.Series(tail).ewm(alpha=1.0 / period, adjust=False).mean().to_numpy()


def _macd(close: pd.Series) -> dict[str, pd.Series]:
    fast, slow, signal_span = MACD_SPANS
    line = _ema(close, fast) - _ema(close, slow)
    signal = _ema(line, signal_span)
    return {
        "macd": line / close,
        "macd_signal": signal / close,
        "macd_hist": (line - signal) / close,
    }


def _ema(series: pd.Series, span: int) -> pd.Series:
    return series.ewm(span=span, adjust=False, min_periods=span).mean()


def _bollinger_pct_b(close: pd.Series) -> pd.Series:
    window, width = BOLLINGER
    rolling = close.rolling(window, min_periods=window)
    mean, std = rolling.mean(), rolling.std(ddof=0)
    lower = mean - width * std
    return (close - lower) / (2.0 * width * std)


def _rolling_zscore(series: pd.Series, window: int) -> pd.Series:
    rolling = series.rolling(window, min_periods=window)
    return (series - rolling.mean()) / rolling.std()


def _calendar(index: pd.DatetimeIndex) -> dict[str, np.ndarray]:
    """The hour of the day and the day of the week in UTC, whatever zone the index is in (a
    time without a zone is UTC): the same instants give the same features."""
    if index.tz is not None:
        index = index.tz_convert("UTC")
    hour = index.hour.to_numpy() + index.minute.to_numpy() / 60.0
    day = index.day_of_week.to_numpy() + hour / 24.0
    return {
        "hour_sin": np.sin(2 * np.pi * hour / 24.0),
        "hour_cos": np.cos(2 * np.pi * hour / 24.0),
        "dow_sin": np.sin(2 * np.pi * day / 7.0),
        "dow_cos": np.cos(2 * np.pi * day / 7.0),
    }


# --------------------------------------------------------------------------- per-process cache


def feature_cache_key(path: str | Path | None = None, **options: Any) -> CacheKey:
    """``(resolved path, ((file, size, mtime_ns), ...), LoadOptions)``: changes whenever a file
    or a loader option (``format``, ``columns``, ``timestamp_unit`` of
    :func:`~cryptosweep.trading.data.load_ohlcv`) changes; equivalent options give equal keys."""
    source = (sample_data_path() if path is None else Path(path)).resolve()
    load_options = LoadOptions.of(**options, source=source)
    stats = []
    for file in data_files(source):
        stat = file.stat()
        stats.append((str(file), stat.st_size, stat.st_mtime_ns))
    return str(source), tuple(stats), load_options


def cached_features(
    path: str | Path | None = None, **options: Any
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(ohlcv, features)`` for ``path``, built once per process, file version and loader
    options (``**options`` go to :func:`~cryptosweep.trading.data.load_ohlcv`).

    Thread-safe (a dask worker runs several trials in threads): the first caller builds, the
    others wait and share the result. The frames are shared; callers must not modify them.
    """
    key = feature_cache_key(path, **options)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
        ohlcv = load_ohlcv(path, **options)
        entry = (ohlcv, build_features(ohlcv))
        _cache[key] = entry
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
        return entry


def clear_feature_cache() -> None:
    """Forget every cached entry (tests, or a long-lived process after data updates)."""
    with _cache_lock:
        _cache.clear()
