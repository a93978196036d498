"""The steps every consumer of the objective shares, in the order a trial takes them: the market
(candles, features, the holdout cut) loaded once per process, labels, the purged training rows,
the entry model fitted and asked for probabilities, entry signals and the backtest of the bars.
The sweep's trials, the holdout, the walk-forward's segments, production and the explorer's
what-if all call these, so that they compute the same numbers."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cryptosweep.core.config import ObjectiveSpec
from cryptosweep.core.data_settings import DataSettings
from cryptosweep.core.errors import ConfigError
from cryptosweep.core.intervals import (
    bars_per_year,
    detect_interval,
    resolve_interval,
)
from cryptosweep.core.reproducibility import ReproducibilityManager
from cryptosweep.core.settings import ObjectiveSettings
from cryptosweep.trading.backtest import BacktestResult, simulate
from cryptosweep.trading.features import build_features, cached_features
from cryptosweep.trading.labels import fixed_horizon_labels, triple_barrier_labels
from cryptosweep.trading.models import ContinuableEntryModel, checkpoint_path, make_entry_model
from cryptosweep.trading.validation import holdout_split


def data_options(data: DataSettings) -> tuple[tuple[str, Any], ...]:
    """Loader options of the data section, hashable (they key the per-process cache)."""
    options: dict[str, Any] = {}
    if data.format != "auto":
        options["format"] = data.format
    if data.format == "generic":
        options["columns"] = tuple(sorted(data.columns.model_dump().items()))
    if data.timestamp_unit:
        options["timestamp_unit"] = data.timestamp_unit
    return tuple(sorted(options.items()))


@dataclass(frozen=True)
class TradingParams:
    """The trading half of a trial configuration."""

    threshold: float
    holding_period: int
    stop_loss: float
    take_profit: float

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> TradingParams:
        trading = _section(params, "trading")
        return cls(
            threshold=float(_key(trading, "trading", "threshold")),
            holding_period=int(_key(trading, "trading", "holding_period")),
            stop_loss=float(_key(trading, "trading", "stop_loss")),
            take_profit=float(_key(trading, "trading", "take_profit")),
        )


@dataclass(frozen=True)
class Market:
    """A series of candles as the objective reads it: the frames, float64 arrays of prices and
    features (row ``t`` of ``features`` reads bars ``<= t`` only), where the holdout starts,
    and the bar interval with its bars per year."""

    ohlcv: pd.DataFrame
    features_frame: pd.DataFrame
    holdout_fraction: float
    open_: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    features: np.ndarray
    holdout_start: int
    declared_interval: str | None
    bar_interval: pd.Timedelta
    periods_per_year: float


def full_rounds(resource: float, rounds_per_unit: float) -> int:
    """Boosting rounds for a budget: ``max(1, floor(resource * rounds_per_unit + 0.5))``."""
    return max(1, math.floor(resource * rounds_per_unit + 0.5))


def load_market(spec: ObjectiveSpec | dict[str, Any]) -> Market:
    """The :class:`Market` of the spec's data: the cached frames of the per-process feature
    cache as arrays, converted once per process and data version (a new file version gives new
    frames), restricted to ``data.start`` .. ``data.end`` (:func:`time_range`); the holdout
    starts at ``data.holdout_fraction`` of the bars in that range. Its bars per year are the
    whole file's (:func:`~cryptosweep.core.intervals.bars_per_year`), whatever the range."""
    spec = ObjectiveSpec.of(spec)
    ohlcv, features = cached_features(spec.data.path, **dict(data_options(spec.data)))
    holdout_fraction = spec.data.holdout_fraction
    key = (holdout_fraction, spec.data.bar_interval, spec.data.start, spec.data.end)
    with _markets_lock:
        for file_ohlcv, file_features, market_key, market in _markets:
            if file_ohlcv is ohlcv and file_features is features and market_key == key:
                return market
        market = ranged_market(ohlcv, features, spec.data, spec.data.path or "sample")
        _markets.insert(0, (ohlcv, features, key, market))
        del _markets[_MARKETS_KEPT:]
        return market


def ranged_market(ohlcv: pd.DataFrame, features: pd.DataFrame, data: DataSettings,
                  source: object) -> Market:
    """The :class:`Market` of the bars of ``ohlcv`` (and their ``features``, computed on all
    of them) in ``data.start`` .. ``data.end`` (:func:`time_range`), its holdout the last
    ``data.holdout_fraction`` of that range and its bar interval ``data.bar_interval`` when
    declared: what :func:`load_market` makes of a file, and ``train_model`` of candles in
    memory, so that the two train on the same bars."""
    in_range = time_range(ohlcv.index, data)
    year = None
    if in_range != slice(0, len(ohlcv)):
        ohlcv_in, features_in = ohlcv.iloc[in_range], features.iloc[in_range]
        # The calendar is the market's, read from all its candles: a range (a walk-forward
        # window) too short to read it from was annualised round the clock while the
        # window's out-of-sample track used the market's count (EURUSD: 8760 vs 6199).
        year = bars_per_year(ohlcv.index, resolve_interval(
            detect_interval(ohlcv.index, source), data.bar_interval, source))
    else:
        ohlcv_in, features_in = ohlcv, features
    return market_from_candles(ohlcv_in, features_in, holdout_fraction=data.holdout_fraction,
                               declared_interval=data.bar_interval, source=source,
                               periods_per_year=year)


def time_range(index: pd.DatetimeIndex, data: DataSettings) -> slice:
    """The positions of the bars of ``index`` in ``[data.start, data.end)`` (all of them
    without a range). Features are sliced after being computed on the whole file: a feature
    at bar ``t`` reads bars ``<= t`` only, so this equals computing them on data that ends at
    ``data.end``. A range that holds fewer than 2 bars is a ``ConfigError``."""
    if data.start is None and data.end is None:
        return slice(0, len(index))
    first = 0 if data.start is None else _position(index, data.start)
    stop = len(index) if data.end is None else _position(index, data.end)
    if stop - first < 2:
        raise ConfigError(
            f"data.start/data.end: the range [{data.start or 'first bar'}, "
            f"{data.end or 'after the last bar'}) holds {max(stop - first, 0)} bar(s) of the "
            f"data ({index[0].isoformat()} .. {index[-1].isoformat()})")
    return slice(first, stop)


def _position(index: pd.DatetimeIndex, stamp: str) -> int:
    """Where ``stamp`` (canonical UTC) falls in ``index``; a time pandas cannot hold (before
    1677 or after 2262) lies before the first bar or after the last."""
    try:
        return int(index.searchsorted(pd.Timestamp(stamp)))
    except (OverflowError, ValueError):  # pandas' OutOfBoundsDatetime is a ValueError
        return 0 if stamp < "1970" else len(index)


def market_from_candles(
    ohlcv: pd.DataFrame, features: pd.DataFrame | None = None, *,
    holdout_fraction: float = 0.0, declared_interval: str | None = None,
    source: object = "data", periods_per_year: float | None = None,
) -> Market:
    """A :class:`Market` of candles in memory (the output of
    :func:`~cryptosweep.trading.data.load_ohlcv`): ``features`` are built with
    :func:`~cryptosweep.trading.features.build_features` unless given. The bar interval is
    detected (a declared one must agree: :func:`~cryptosweep.core.intervals.resolve_interval`).
    Its bars per year are ``periods_per_year`` when given (a trained model's, as its sweep
    counted them), else :func:`~cryptosweep.core.intervals.bars_per_year` of the candles
    (round the clock, or their own density for a market closed at weekends). The arrays are
    read-only (a cached market is shared by every trial of a process)."""
    if features is None:
        features = build_features(ohlcv)
    interval = resolve_interval(detect_interval(ohlcv.index, source), declared_interval, source)
    market = Market(
        ohlcv=ohlcv,
        features_frame=features,
        holdout_fraction=holdout_fraction,
        open_=ohlcv["open"].to_numpy(dtype="float64"),
        high=ohlcv["high"].to_numpy(dtype="float64"),
        low=ohlcv["low"].to_numpy(dtype="float64"),
        close=ohlcv["close"].to_numpy(dtype="float64"),
        features=features.to_numpy(dtype="float64"),
        holdout_start=holdout_split(len(ohlcv), holdout_fraction),
        declared_interval=declared_interval,
        bar_interval=interval,
        periods_per_year=(bars_per_year(ohlcv.index, interval) if periods_per_year is None
                          else float(periods_per_year)),
    )
    for array in (market.open_, market.high, market.low, market.close, market.features):
        array.flags.writeable = False
    return market


_MARKETS_KEPT = 4


def training_labels(
    market: Market, trading: TradingParams, settings: ObjectiveSettings, stop: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(label, label_end)`` of bars ``[0, stop)``, computed from those bars only (the
    development bars for the sweep, ``stop`` = the holdout start): triple-barrier or
    fixed-horizon as ``settings.labels`` says, with the trade's barriers, fees and slippage (a
    triple-barrier trade open across a gap in the candles ends before it, as the backtest's)."""
    if settings.labels == "fixed_horizon":
        development = market.ohlcv.iloc[:stop]
        return fixed_horizon_labels(development, trading.holding_period, settings.fees_bps)
    return triple_barrier_labels(
        market.open_[:stop], market.high[:stop], market.low[:stop], market.close[:stop],
        take_profit=trading.take_profit, stop_loss=trading.stop_loss,
        max_holding=trading.holding_period, fees_bps=settings.fees_bps,
        slippage_bps=settings.slippage_bps,
        last_bar=gap_ends(market, np.arange(stop, dtype="int64")),
    )


def usable_rows(
    rows: np.ndarray, features: np.ndarray, labels: np.ndarray, what: str
) -> np.ndarray:
    """The ``rows`` with complete features and a label; a ``ConfigError`` naming ``what`` when
    none is left."""
    keep = np.isfinite(features[rows]).all(axis=1) & np.isfinite(labels[rows])
    usable = rows[keep]
    if len(usable) == 0:
        raise ConfigError(
            f"objective: {what} has no bars with complete features and labels; raise "
            "objective.min_train_bars or use fewer folds"
        )
    return usable


def purged_training_rows(
    features: np.ndarray, labels: np.ndarray, label_end: np.ndarray, cutoff: int, what: str
) -> np.ndarray:
    """The training rows for a model used from bar ``cutoff`` on: bars whose label ends before
    ``cutoff`` (purged, AFML ch. 7.4) with complete features and a label."""
    candidates = np.flatnonzero(label_end < cutoff)
    return usable_rows(candidates, features, labels, what)


def train_before(
    market: Market, cutoff: int, params: dict[str, Any], rounds: int,
    repro: ReproducibilityManager, settings: ObjectiveSettings, what: str,
) -> tuple[ContinuableEntryModel, np.ndarray]:
    """The entry model for the bars from ``cutoff`` on, and its training rows: labels of bars
    ``[0, cutoff)`` from those bars only (:func:`training_labels`), the purged rows
    (:func:`purged_training_rows`), fitted for ``rounds`` with ``repro``'s seed. The sweep's
    holdout model (``cutoff`` = the holdout start) and production's ``train_model`` are this."""
    trading = TradingParams.from_params(params)
    labels, label_end = training_labels(market, trading, settings, cutoff)
    train = purged_training_rows(market.features, labels, label_end, cutoff, what)
    model = fit_entry_model(params, repro, rounds, market.features, labels, train,
                            sample_weight=training_weights(settings, train, label_end))
    return model, train


def training_weights(settings: ObjectiveSettings, train: np.ndarray, label_end: np.ndarray
                     ) -> np.ndarray | None:
    """The ``train`` rows' sample weights: None (every row once) unless
    ``objective.sample_weights`` is ``uniqueness``: each label's average uniqueness among the
    training labels' spans ``[t, label_end[t]]`` (AFML ch. 4,
    :func:`~cryptosweep.trading.uniqueness.uniqueness_weights`, mean 1)."""
    if settings.sample_weights != "uniqueness" or len(train) == 0:
        return None
    from cryptosweep.trading.uniqueness import uniqueness_weights

    start = np.asarray(train, dtype="int64")
    end = np.maximum(np.asarray(label_end[train], dtype="int64"), start)
    return uniqueness_weights(start, end, int(end.max()) + 1)


def fit_entry_model(
    params: dict[str, Any], repro: ReproducibilityManager, rounds: int, features: np.ndarray,
    labels: np.ndarray, train: np.ndarray, *, clock: _Stopwatch | None = None,
    save_to: Path | None = None, init_from: Path | None = None,
    sample_weight: np.ndarray | None = None,
) -> ContinuableEntryModel:
    """The configuration's entry model (``params["model"]``, ``params["entry_model"]``) fitted
    on the ``train`` rows for ``rounds`` rounds/epochs with ``repro``'s seed and switches; saved
    to ``save_to`` and continued from ``init_from`` when given (Hyperband checkpoints);
    ``sample_weight``: one weight per ``train`` row (:func:`training_weights`), or None."""
    clock = clock or _Stopwatch(None)
    model = make_entry_model(str(params.get("model", "")), _section(params, "entry_model"), repro)
    weights = {} if sample_weight is None else {"sample_weight": sample_weight}
    with clock("fit"):
        model.fit(features[train], labels[train], rounds,
                  init_from=init_from if init_from is not None and model.continues else None,
                  **weights)
    if save_to is not None:
        with clock("checkpoint"):
            model.save(save_to)
    return model


def predict_probabilities(
    model: Any, features: np.ndarray, bars: np.ndarray, clock: _Stopwatch | None = None
) -> np.ndarray:
    """P(entry pays) for each of ``bars`` (NaN where a feature is missing). Every family
    predicts a row the same whatever other rows are predicted with it, so a bar's probability
    does not depend on the window it is asked in."""
    clock = clock or _Stopwatch(None)
    x = features[bars]
    complete = np.isfinite(x).all(axis=1)
    proba = np.full(len(bars), np.nan)
    with clock("predict"):
        if complete.any():
            proba[complete] = model.predict_proba(x[complete])
    return proba


def entry_signals(proba: np.ndarray, threshold: float, allow_short: bool) -> np.ndarray:
    """The signal per bar (int8): +1 (long) where P(entry pays) > ``threshold``; -1 (short)
    where it is < ``1 - threshold`` when shorts are allowed; else 0 (and 0 where it is NaN).
    A threshold below 0.5 with shorts makes both hold between ``threshold`` and ``1 -
    threshold``: there the likelier side, long from 0.5 (as :func:`entry_decisions`'s
    expected-value rule)."""
    signal = np.zeros(len(proba), dtype=np.int8)
    known = np.isfinite(proba)
    longs = known & (proba > threshold)
    signal[longs] = 1
    if allow_short:
        signal[known & (proba < 1.0 - threshold) & ~(longs & (proba >= 0.5))] = -1
    return signal


def backtest_bars(
    market: Market, bars: np.ndarray, proba: np.ndarray, trading: TradingParams,
    settings: ObjectiveSettings,
) -> BacktestResult:
    """:func:`~cryptosweep.trading.backtest.simulate` over the ``bars`` (in order) with the
    entries of ``proba`` (:func:`entry_decisions`): flat at the first bar, the trade rules,
    barriers, fees and slippage of the configuration. A gap in the candles is never simulated
    as consecutive bars: a trade open across it closes at the last bar before it
    (:func:`~cryptosweep.trading.gaps.last_bar_before_gap`). Then, as the objective's options
    say, each trade's size (:func:`position_sizes`) and the shorts' funding
    (``funding_bps_per_8h``)."""
    signal = entry_decisions(proba, trading, settings)
    last_bar = gap_ends(market, bars)
    result = simulate(
        market.open_[bars], market.high[bars], market.low[bars], market.close[bars], signal,
        holding_period=trading.holding_period, stop_loss=trading.stop_loss,
        take_profit=trading.take_profit, fees_bps=settings.fees_bps,
        slippage_bps=settings.slippage_bps, last_bar=last_bar,
    )
    if settings.bet_sizing == "none" and settings.vol_target is None and not (
            settings.funding_bps_per_8h and settings.allow_short):
        return result
    return sized(result, market, bars, proba, settings)


def gap_ends(market: Market, bars: np.ndarray) -> np.ndarray | None:
    """Per bar of ``bars``, the position (in ``bars``) of the last bar before the next gap
    in the candles; None when the bars have no gap (the simulation as without gaps)."""
    times = market.ohlcv.index[bars]
    if len(times) < 2:
        return None
    seconds = market.bar_interval.total_seconds()
    if not np.any(np.diff(times.as_unit("ns").asi8) > round(seconds * 1e9)):
        return None
    from cryptosweep.trading.gaps import last_bar_before_gap

    return last_bar_before_gap(times, seconds)


def entry_decisions(proba: np.ndarray, trading: TradingParams, settings: ObjectiveSettings
                    ) -> np.ndarray:
    """The signal per bar (int8): :func:`entry_signals` (``objective.entry_rule:
    threshold``), or, with ``expected_value``, long where ``p·take_profit − (1 − p)·stop_loss
    − cost > 0`` (:func:`~cryptosweep.trading.sizing.expected_value_entries`; ``cost`` the round
    trip's fees and slippage, ``2·(fees_bps + slippage_bps) / 1e4``) and, when shorts are
    allowed, short where the same holds for ``1 − p``; where both pay, the side with the larger
    expected value (their difference is ``(2p − 1)·(tp + sl)``: long from ``p >= 0.5``)."""
    if settings.entry_rule == "threshold":
        return entry_signals(proba, trading.threshold, settings.allow_short)
    from cryptosweep.trading.sizing import expected_value_entries

    cost = 2.0 * (settings.fees_bps + settings.slippage_bps) / 1e4
    known = np.isfinite(proba)
    p = np.where(known, proba, 0.0)
    signal = np.zeros(len(proba), dtype=np.int8)
    longs = known & expected_value_entries(p, trading.take_profit, trading.stop_loss, cost)
    if settings.allow_short:
        longs &= p >= 0.5
        shorts = known & (p < 0.5) & expected_value_entries(1.0 - p, trading.take_profit,
                                                            trading.stop_loss, cost)
        signal[shorts] = -1
    signal[longs] = 1
    return signal


def position_sizes(market: Market, bars: np.ndarray, proba: np.ndarray, sides: np.ndarray,
                   signal_bars: np.ndarray, settings: ObjectiveSettings) -> np.ndarray:
    """The share of equity each trade puts in (one per trade, decided at its signal bar, a
    position in ``bars``): 1, times the AFML bet size (``bet_sizing: afml``,
    :func:`~cryptosweep.trading.sizing.bet_size` of the chosen side's probability), times the
    volatility-targeted size (``vol_target``, :func:`~cryptosweep.trading.sizing.
    volatility_target_size` from the 24-bar realised volatility, capped at 1)."""
    from cryptosweep.trading.sizing import bet_size, volatility_target_size

    size = np.ones(len(signal_bars))
    if settings.bet_sizing == "afml":
        p = proba[signal_bars]
        chosen = np.where(sides > 0, p, 1.0 - p)
        size *= np.nan_to_num(bet_size(np.clip(chosen, 0.0, 1.0)), nan=0.0)
    if settings.vol_target is not None:
        close = market.close
        one_bar = np.diff(np.log(close), prepend=np.nan)
        vol = pd.Series(one_bar).rolling(24, min_periods=24).std(ddof=1).to_numpy()
        sigma = vol[bars[signal_bars]]
        size *= np.nan_to_num(volatility_target_size(
            np.where(np.isfinite(sigma), sigma, np.nan), settings.vol_target,
            market.periods_per_year, 1.0), nan=0.0)
    return size


def sized(result: BacktestResult, market: Market, bars: np.ndarray, proba: np.ndarray,
          settings: ObjectiveSettings) -> BacktestResult:
    """``result`` with each trade holding ``size`` of the equity (the rest in cash) and a
    short paying ``funding_bps_per_8h`` pro-rated per bar held
    (:func:`~cryptosweep.trading.funding.funding_cost_per_bar`). Per bar, the equity return of
    a trade held at share ``s`` is ``s·(V_t − V_{t−1}) / (1 − s + s·V_{t−1})``, ``V`` the
    trade's value (1 at entry) that :func:`simulate`'s per-bar returns compound to, so the
    per-bar returns still compound to the equity's growth; funding is charged on the
    position's value, ``s·V_{t−1}``, on each bar the short is held."""
    from cryptosweep.trading.backtest import Trade
    from cryptosweep.trading.funding import funding_cost_per_bar

    returns = np.asarray(result.returns, dtype="float64").copy()
    trades = list(result.trades)
    if not trades:
        return result
    entries = np.asarray([t.entry_bar for t in trades], dtype="int64")
    sides = np.asarray([t.side for t in trades], dtype="int64")
    sizes = position_sizes(market, bars, proba, sides, entries - 1, settings)
    funding = None
    if settings.funding_bps_per_8h and settings.allow_short:
        funding = funding_cost_per_bar(market.ohlcv.index[bars], settings.funding_bps_per_8h
                                       / 1e4, bar_seconds=market.bar_interval.total_seconds())
    out_trades = []
    for trade, size in zip(trades, sizes, strict=True):
        span = np.arange(trade.entry_bar, trade.exit_bar + 1)
        value = np.cumprod(1.0 + returns[span])  # the trade's value after each bar
        before = np.concatenate(([1.0], value[:-1]))
        equity_before = 1.0 - size + size * before
        step = size * (value - before)
        if funding is not None and trade.side < 0:
            held = result.positions[span] != 0
            step = step - np.where(held, funding[span] * size * before, 0.0)
        bar_returns = step / equity_before
        returns[span] = bar_returns
        net = float(np.prod(1.0 + bar_returns) - 1.0)
        out_trades.append(Trade(trade.entry_bar, trade.exit_bar, trade.side, trade.entry_price,
                                trade.exit_price, trade.exit_reason, trade.gross_return * size,
                                net))
    return BacktestResult(returns=returns, n_trades=result.n_trades, positions=result.positions,
                          trades=out_trades)


def _budget_trained(resource: float, checkpoint: dict[str, Any] | None,
                    continued: list[bool]) -> float:
    """The budget this evaluation actually trained: the increment over its previous rung when
    every fold continued from a checkpoint, else all of it."""
    previous = (checkpoint or {}).get("from_budget")
    if previous is not None and continued and all(continued):
        return float(resource) - float(previous)
    return float(resource)


def _checkpoint_files(
    checkpoint: dict[str, Any] | None, params: dict[str, Any], fold: int, rounds: int,
    rounds_per_unit: float,
) -> tuple[Path | None, Path | None]:
    """Where fold ``fold`` of this trial saves its model, and the previous rung's model to
    continue from (``None`` at the first rung or without checkpoints)."""
    if not checkpoint:
        return None, None
    family = str(params.get("model", ""))
    folder = Path(checkpoint["dir"]) / f"trial_{int(checkpoint['trial_id'])}"
    folder.mkdir(parents=True, exist_ok=True)
    save_to = checkpoint_path(folder, f"fold{fold}_r{rounds}", family)
    previous = checkpoint.get("from_budget")
    if previous is None:
        return save_to, None
    before = full_rounds(float(previous), rounds_per_unit)
    return save_to, checkpoint_path(folder, f"fold{fold}_r{before}", family)


def _section(mapping: dict[str, Any], name: str) -> dict[str, Any]:
    value = mapping.get(name)
    if not isinstance(value, dict):
        raise ConfigError(f"'{name}' must be a mapping, got {type(value).__name__}")
    return value


def _key(mapping: dict[str, Any], section: str, name: str) -> Any:
    if name not in mapping:
        raise ConfigError(f"{section}.{name} is missing")
    return mapping[name]


#: (the file's frames, the range key, the market): the frames are compared by identity.
_markets: list[tuple[pd.DataFrame, pd.DataFrame, tuple[Any, ...], Market]] = []


_markets_lock = threading.Lock()


class _Stopwatch:
    """``with clock("stage"):`` adds the block's wall time to ``timings[stage]`` (if given)."""

    def __init__(self, timings: dict[str, float] | None) -> None:
        self.timings = timings

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        if self.timings is None:
            yield
            return
        started = time.perf_counter()
        try:
            yield
        finally:
            self.timings[stage] = self.timings.get(stage, 0.0) + time.perf_counter() - started
