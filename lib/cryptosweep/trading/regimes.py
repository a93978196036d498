"""Market regimes of every bar, from past bars only: trend (up, down, sideways) and volatility
(high, low).

A rule-based labelling for slicing results by regime, not a fitted regime model (for those,
e.g. Markov switching, see Ang & Timmermann, "Regime Changes and Financial Markets", *Annual
Review of Financial Economics* 4, 2012). At bar ``t`` only closes ``<= t`` are read (known at
``t``'s close, as the features of :mod:`cryptosweep.trading.features`), with trailing windows
and an expanding median that ends before ``t``: a label never changes when later bars do.

* **Trend.** ``R_t = ln(close_t / close_{t-L})``, the return over the last ``L`` bars, against
  its volatility-scaled size ``σ_t · √L`` (the past return divided by its volatility, as the
  time-series momentum signal of Moskowitz, Ooi & Pedersen, "Time Series Momentum", *Journal
  of Financial Economics* 104(2), 2012): ``up`` when ``R_t > θ · σ_t · √L``, ``down`` when
  ``R_t < −θ · σ_t · √L``, else ``sideways``.
* **Volatility.** ``σ_t`` is the standard deviation (``ddof = 1``) of the last ``w`` one-bar
  log returns, bars ``t − w + 1 .. t``; ``high`` when ``σ_t`` is above the median of
  ``σ_s`` over all earlier bars ``s < t`` (an expanding, past-only median), else ``low``.

Bars without enough history are ``"warmup"``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

UP, DOWN, SIDEWAYS = "up", "down", "sideways"
HIGH, LOW = "high", "low"
WARMUP = "warmup"
#: The values of :func:`label_regimes`'s ``regime`` column: ``"{trend}_{volatility}"``, or
#: ``"warmup"`` where either part is.
REGIMES = (*(f"{t}_{v}" for t in (UP, DOWN, SIDEWAYS) for v in (HIGH, LOW)), WARMUP)


@dataclass(frozen=True)
class RegimeSettings:
    """Windows (in bars) and threshold of :func:`label_regimes`; defaults for hourly bars.

    Attributes:
        trend_lookback: ``L``, bars of the trend return ``ln(close_t / close_{t-L})``; 24 (a
            day of hourly bars).
        trend_threshold: ``θ``, the trend return must exceed ``θ · σ_t · √L``, i.e. ``θ``
            standard deviations of an ``L``-bar return; 1.0 (a random walk then reads
            ``sideways`` about 68 % of the time).
        volatility_window: ``w``, one-bar returns in the rolling volatility ``σ_t``; 24 (as the
            ``realised_vol_24`` feature).
        volatility_min_history: earlier ``σ`` values the expanding median needs before the
            volatility label is given; 168 (a week of hourly bars).
    """

    trend_lookback: int = 24
    trend_threshold: float = 1.0
    volatility_window: int = 24
    volatility_min_history: int = 168

    def __post_init__(self) -> None:
        for name, least in (
            ("trend_lookback", 1),
            ("volatility_window", 2),
            ("volatility_min_history", 1),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least:
                raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
        threshold = self.trend_threshold
        if isinstance(threshold, bool) or not (np.isfinite(threshold) and threshold >= 0):
            raise ValueError(f"trend_threshold must be finite and >= 0, got {threshold!r}")

    @property
    def trend_warmup(self) -> int:
        """First bar with a trend label: ``max(L, w)`` (the return and ``σ_t`` both exist)."""
        return max(self.trend_lookback, self.volatility_window)

    @property
    def volatility_warmup(self) -> int:
        """First bar with a volatility label: ``w + volatility_min_history`` (``σ`` starts at
        bar ``w``; that many earlier ``σ`` values are needed)."""
        return self.volatility_window + self.volatility_min_history

    @property
    def first_labelled(self) -> int:
        """First bar with a regime (both labels): the later of the two warm-ups."""
        return max(self.trend_warmup, self.volatility_warmup)

    def longest_window(self) -> tuple[str, str]:
        """The setting that sets :attr:`first_labelled` (the largest part of the later
        warm-up) and the sum that makes it, for messages."""
        w, h, lookback = (self.volatility_window, self.volatility_min_history,
                          self.trend_lookback)
        if self.volatility_warmup >= self.trend_warmup:
            key = "volatility_min_history" if h >= w else "volatility_window"
            return key, f"volatility_window {w} + volatility_min_history {h}"
        return "trend_lookback", f"trend_lookback {lookback}"  # then lookback > w + h


def label_regimes(
    close: pd.Series | np.ndarray, settings: RegimeSettings | None = None
) -> pd.DataFrame:
    """Regime labels of every bar (see the module doc for the rules).

    Args:
        close: close prices, finite and > 0, 1-d (a Series keeps its index).
        settings: :class:`RegimeSettings`; the defaults when None.

    Returns:
        A DataFrame indexed like ``close`` (a RangeIndex for an array) with string columns
        ``trend`` (``up``/``down``/``sideways``/``warmup``), ``volatility``
        (``high``/``low``/``warmup``) and ``regime`` (``"{trend}_{volatility}"``, or
        ``warmup`` where either is; the values of :data:`REGIMES`).
    """
    settings = RegimeSettings() if settings is None else settings
    if not isinstance(settings, RegimeSettings):
        raise ValueError(f"settings must be a RegimeSettings, got {type(settings).__name__}")
    index = close.index if isinstance(close, pd.Series) else None
    prices = np.asarray(close, dtype="float64")
    if prices.ndim != 1:
        raise ValueError(f"close must be 1-d, got shape {prices.shape}")
    if not np.all(np.isfinite(prices) & (prices > 0.0)):
        raise ValueError("close must hold finite prices > 0")
    n = len(prices)
    log_close = pd.Series(np.log(prices))
    window, lookback = settings.volatility_window, settings.trend_lookback
    sigma = log_close.diff().rolling(window, min_periods=window).std().to_numpy()
    past_median = (
        pd.Series(sigma)
        .expanding(min_periods=settings.volatility_min_history)
        .median()
        .shift(1)
        .to_numpy()
    )
    trend_return = log_close.diff(lookback).to_numpy()

    trend = np.full(n, WARMUP, dtype=object)
    ready = np.arange(n) >= settings.trend_warmup
    band = settings.trend_threshold * sigma * np.sqrt(lookback)
    trend[ready] = SIDEWAYS
    trend[ready & (trend_return > band)] = UP
    trend[ready & (trend_return < -band)] = DOWN

    volatility = np.full(n, WARMUP, dtype=object)
    known = np.arange(n) >= settings.volatility_warmup
    volatility[known] = LOW
    volatility[known & (sigma > past_median)] = HIGH

    regime = np.where(
        (trend == WARMUP) | (volatility == WARMUP),
        WARMUP,
        trend.astype(str) + "_" + volatility.astype(str),
    ).astype(object)
    return pd.DataFrame(
        {"trend": trend, "volatility": volatility, "regime": regime},
        index=index if index is not None else pd.RangeIndex(n),
    )
