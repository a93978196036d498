"""The trial objective a worker calls: train, signal and backtest one configuration.

It knows nothing about the sweep: it gets a configuration (``params``), a budget
(``resource``), a seed and the plain-dict ``spec`` of the data and the objective, and returns a
JSON-safe dict. Same inputs, same dict, in any process.

Protocol of :func:`evaluate_trial`:

1. the cached OHLCV and features of the data file (built once per process);
2. the holdout (the most recent ``holdout_fraction`` of bars) is cut off first: no label,
   training row or backtest bar of a trial reads it;
3. labels from the trial's trading parameters: triple-barrier (take profit, stop loss, max
   holding period; AFML ch. 3.4) by default, or fixed-horizon returns above round-trip fees
   (AFML ch. 3.2); each keeps the bar where its information ends;
4. expanding walk-forward folds with purging and embargo (AFML ch. 7.4);
5. per fold: fit the entry model on the training rows with complete features and labels,
   go long where the predicted probability exceeds the threshold (short below
   ``1 - threshold`` when shorts are allowed), backtest the test block with the same barriers,
   fees and slippage;
6. score: the mean over folds of the configured metric (default: annualised Sharpe). A trial
   with no trade at all scores 0 and says so in ``penalty``; a model error fails the trial.

The steps are public functions, and every consumer goes through them, so that what the sweep
scores and what production trades cannot drift apart: :func:`load_market` /
:func:`market_from_candles` (arrays and features of a data source), :func:`training_labels`,
:func:`purged_training_rows` (purged: the label ends before the cutoff),
:func:`train_before` (labels, rows and fit for the bars before a cutoff: the holdout model and
``cryptosweep.production.train_model``), :func:`fit_entry_model`, :func:`predict_probabilities`,
:func:`entry_signals` (the threshold rule), :func:`backtest_bars`, :func:`fold_score` (the
score of per-fold metrics) and :func:`configuration_predictions` (per validation fold and the
holdout: the bars and their probabilities).

AFML: López de Prado (2018), *Advances in Financial Machine Learning*.
"""

from __future__ import annotations

import hashlib
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

from cryptosweep.core.config import DataSettings, ObjectiveSettings, ObjectiveSpec
from cryptosweep.core.errors import ConfigError, DataError
from cryptosweep.core.intervals import (
    detect_interval,
    format_interval,
    periods_per_year,
    resolve_interval,
)
from cryptosweep.core.reproducibility import ReproducibilityManager
from cryptosweep.trading.backtest import BacktestResult, simulate
from cryptosweep.trading.baselines import BASELINES, buy_and_hold, flat
from cryptosweep.trading.data import data_files, sample_data_path
from cryptosweep.trading.features import build_features, cached_features
from cryptosweep.trading.labels import fixed_horizon_labels, triple_barrier_labels
from cryptosweep.trading.metrics import performance
from cryptosweep.trading.models import ContinuableEntryModel, checkpoint_path, make_entry_model
from cryptosweep.trading.validation import holdout_split, test_blocks, walk_forward_folds


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


@dataclass(frozen=True)
class Predictions:
    """The out-of-sample probabilities of one configuration on one block of bars: ``block``
    (``"fold 0"``, ``"fold 1"``, ..., ``"holdout"``), the bar positions ``bars`` and their open
    ``times``, ``proba`` (P(entry pays) per bar, NaN where a feature is missing) and whether
    the block's model ``continued`` from a checkpoint."""

    block: str
    bars: np.ndarray
    times: pd.DatetimeIndex
    proba: np.ndarray
    continued: bool = False


def evaluate_trial(
    params: dict[str, Any], resource: float, seed: int, spec: ObjectiveSpec | dict[str, Any],
    device: str = "cpu", timings: dict[str, float] | None = None,
    checkpoint: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Score one configuration by purged walk-forward backtests on the development bars.

    Returns plain Python numbers: ``score`` (the mean over folds of the configured metric),
    ``metric``, ``folds`` (every metric of :func:`~cryptosweep.trading.metrics.performance` per
    fold), ``fold_sharpe``, ``fold_trades``, ``n_trades``, ``rounds``, ``penalty`` (why the score
    was set rather than measured, else ``None``), ``returns_sha256`` and ``oos_returns`` (the
    per-bar out-of-sample returns of all test blocks, in bar order; the runner stores them apart
    from the metrics). Bars from the holdout start on are never read. ``timings``, when given,
    accumulates the seconds spent per stage (data, labels, fit, predict, backtest).

    ``checkpoint`` (Hyperband promotions) is ``{"dir", "trial_id", "from_budget"}``: each
    fold's model is saved under ``dir/trial_<id>/`` and, where the family continues from
    checkpoints (``docs/continuation.md``), a promoted trial goes on from the model its
    previous rung saved instead of retraining; ``continued`` in the result says whether it did.
    A checkpoint that should be there and is not is an error (retraining would change the
    result of the families whose continuation is not equal to training from scratch).
    """
    clock = _Stopwatch(timings)
    spec = ObjectiveSpec.of(spec)
    settings = spec.objective
    trading = TradingParams.from_params(params)
    rounds = full_rounds(resource, settings.rounds_per_unit)
    per_fold, returns, continued = [], [], []
    market: Market | None = None
    for block in fold_predictions(params, resource, seed, spec, device, checkpoint=checkpoint,
                                  clock=clock):
        if market is None:
            market = load_market(spec)
        continued.append(block.continued)
        with clock("backtest"):
            result = backtest_bars(market, block.bars, block.proba, trading, settings)
            per_fold.append(performance(result.returns, result.trades, result.positions,
                                        periods_per_year=market.periods_per_year))
        returns.append(result.returns)
    oos = np.concatenate(returns)
    fold_trades = [int(m["trades"]) for m in per_fold]
    score, penalty = fold_score(per_fold, settings.metric)
    return {
        "score": score,
        "metric": settings.metric,
        "penalty": penalty,
        "folds": per_fold,
        "fold_sharpe": [float(m["sharpe"]) for m in per_fold],
        "fold_trades": fold_trades,
        "n_trades": int(sum(fold_trades)),
        "rounds": int(rounds),
        "continued": bool(continued) and all(continued),
        "budget_trained": _budget_trained(resource, checkpoint, continued),
        "returns_sha256": returns_digest(oos),
        "oos_returns": [float(r) for r in oos],
    }


NO_TRADES_PENALTY = "no trades in any fold: score set to 0"


def fold_score(per_fold: list[dict[str, Any]], metric: str) -> tuple[float, str | None]:
    """A configuration's score from the :func:`~cryptosweep.trading.metrics.performance` of
    each walk-forward fold: the mean of ``metric`` over the folds, and ``None``; or 0 and
    :data:`NO_TRADES_PENALTY` when no fold traded at all (a configuration that never trades
    is not scored by its flat returns)."""
    if not sum(int(m["trades"]) for m in per_fold):
        return 0.0, NO_TRADES_PENALTY
    return float(np.mean([m[metric] for m in per_fold])), None


def evaluate_holdout(
    params: dict[str, Any], resource: float, seed: int, spec: ObjectiveSpec | dict[str, Any],
    device: str = "cpu",
) -> dict[str, Any]:
    """Train on the whole development part and backtest the holdout bars once.

    Training rows whose label ends at or after the holdout start are purged (labels are built
    from development bars only, so none do). Returns every metric of the holdout backtest with
    a ``holdout_`` prefix, ``holdout_bars``, and ``holdout_returns`` (per bar).
    """
    spec = ObjectiveSpec.of(spec)
    trading = TradingParams.from_params(params)
    block = holdout_predictions(params, resource, seed, spec, device)
    market = load_market(spec)
    result = backtest_bars(market, block.bars, block.proba, trading, spec.objective)
    metrics = performance(result.returns, result.trades, result.positions,
                          periods_per_year=market.periods_per_year)
    out: dict[str, Any] = {f"holdout_{name}": value for name, value in metrics.items()}
    out["holdout_bars"] = len(block.bars)
    out["holdout_returns"] = [float(r) for r in result.returns]
    return out


def evaluate_baselines(spec: ObjectiveSpec | dict[str, Any]) -> dict[str, Any]:
    """Flat and buy-and-hold (:mod:`cryptosweep.trading.baselines`) on the trials' own bars:
    every walk-forward test block and the holdout, with the spec's fees, slippage and bar
    interval.

    Returns ``{"flat": ..., "buy_and_hold": ...}``, each with ``folds`` (every metric of
    :func:`~cryptosweep.trading.metrics.performance` per test block, as in a trial's
    ``folds``), ``metric`` and ``score`` (their mean of the configured metric, as a trial's
    score) and ``holdout`` (the ``holdout_*`` metrics and ``holdout_bars``, as
    :func:`evaluate_holdout` gives them; ``None`` without a holdout) and ``returns``: the
    per-bar returns, ``validation`` (the test blocks one after the other, as a trial's
    journaled validation returns) and ``holdout`` (``None`` without one), which the sweep
    journals (:meth:`cryptosweep.records.journal.Journal.put_baseline_returns`) rather than putting
    them in its results. Buy-and-hold enters at each block's first open and exits at its last
    close: one round trip per block.
    """
    spec = ObjectiveSpec.of(spec)
    settings = spec.objective
    market = load_market(spec)
    n_dev, n_all = market.holdout_start, len(market.open_)

    def run(name: str, bars: slice) -> BacktestResult:
        if name == "flat":
            return flat(bars.stop - bars.start)
        return buy_and_hold(market.open_[bars], market.high[bars], market.low[bars],
                            market.close[bars], fees_bps=settings.fees_bps,
                            slippage_bps=settings.slippage_bps)

    def metrics(result: BacktestResult) -> dict[str, Any]:
        return performance(result.returns, result.trades, result.positions,
                           periods_per_year=market.periods_per_year)

    out: dict[str, Any] = {}
    for name in BASELINES:
        blocks = [run(name, slice(start, stop))
                  for start, stop in test_blocks(n_dev, settings.folds)]
        folds = [metrics(block) for block in blocks]
        holdout = holdout_returns = None
        if n_dev < n_all:
            kept = run(name, slice(n_dev, n_all))
            holdout = {f"holdout_{key}": value for key, value in metrics(kept).items()}
            holdout["holdout_bars"] = n_all - n_dev
            holdout_returns = kept.returns
        out[name] = {
            "metric": settings.metric,
            "score": float(np.mean([fold[settings.metric] for fold in folds])),
            "folds": folds,
            "holdout": holdout,
            "returns": {"validation": np.concatenate([block.returns for block in blocks]),
                        "holdout": holdout_returns},
        }
    return out


def fold_predictions(
    params: dict[str, Any], resource: float, seed: int, spec: ObjectiveSpec | dict[str, Any],
    device: str = "cpu", *, checkpoint: dict[str, Any] | None = None,
    clock: _Stopwatch | None = None,
) -> Iterator[Predictions]:
    """Per purged walk-forward fold of the development bars, in order: the model fitted on the
    fold's training rows (as :func:`evaluate_trial` fits it, checkpoints included) and its
    probabilities on the fold's test block. Lazy: each fold is fitted when it is asked for."""
    clock = clock or _Stopwatch(None)
    spec = ObjectiveSpec.of(spec)
    settings = spec.objective
    trading = TradingParams.from_params(params)
    rounds = full_rounds(resource, settings.rounds_per_unit)
    with clock("data"):
        market = load_market(spec)
    with clock("labels"):
        labels, label_end = training_labels(market, trading, settings, market.holdout_start)
    try:
        folds = walk_forward_folds(
            market.holdout_start, settings.folds, label_end, settings.embargo_bars,
            settings.min_train_bars,
        )
    except ValueError as exc:
        raise ConfigError(f"objective: {exc}") from None
    repro = trial_reproducibility(spec, seed, device)
    for k, fold in enumerate(folds):
        train = usable_rows(fold.train, market.features, labels, f"fold {k}")
        save_to, init_from = _checkpoint_files(checkpoint, params, k, rounds,
                                               settings.rounds_per_unit)
        model = fit_entry_model(params, repro, rounds, market.features, labels, train,
                                clock=clock, save_to=save_to, init_from=init_from)
        proba = predict_probabilities(model, market.features, fold.test, clock)
        yield Predictions(block=f"fold {k}", bars=fold.test,
                          times=market.ohlcv.index[fold.test], proba=proba,
                          continued=bool(getattr(model, "last_fit_continued", False)))


def holdout_predictions(
    params: dict[str, Any], resource: float, seed: int, spec: ObjectiveSpec | dict[str, Any],
    device: str = "cpu",
) -> Predictions:
    """The model trained on every development bar (:func:`train_before` the holdout start)
    and its probabilities on the holdout bars: what :func:`evaluate_holdout` backtests."""
    spec = ObjectiveSpec.of(spec)
    if spec.data.holdout_fraction <= 0.0:
        raise ConfigError("data.holdout_fraction is 0: there is no holdout to evaluate")
    market = load_market(spec)
    rounds = full_rounds(resource, spec.objective.rounds_per_unit)
    n_dev, n_all = market.holdout_start, len(market.open_)
    repro = trial_reproducibility(spec, seed, device)
    model, _ = train_before(market, n_dev, params, rounds, repro, spec.objective,
                            "holdout training")
    test = np.arange(n_dev, n_all, dtype="int64")
    proba = predict_probabilities(model, market.features, test)
    return Predictions(block="holdout", bars=test, times=market.ohlcv.index[test], proba=proba)


def configuration_predictions(
    params: dict[str, Any], resource: float, seed: int, spec: ObjectiveSpec | dict[str, Any],
    device: str = "cpu",
) -> list[Predictions]:
    """What a configuration predicted out of sample: one :class:`Predictions` per validation
    fold (as the sweep scored it, trained from scratch) and, when the data has a holdout, the
    holdout (as the sweep's holdout evaluation scored it)."""
    spec = ObjectiveSpec.of(spec)
    blocks = list(fold_predictions(params, resource, seed, spec, device))
    if spec.data.holdout_fraction > 0.0:
        blocks.append(holdout_predictions(params, resource, seed, spec, device))
    return blocks


def trial_reproducibility(spec: ObjectiveSpec, seed: int, device: str = "cpu"
                          ) -> ReproducibilityManager:  # fmt: skip
    """The framework switches of one trial: its seed, the config's ``gpu_settings``
    (determinism, memory share) and the fixed thread count."""
    return ReproducibilityManager(
        seed=seed, deterministic=spec.deterministic, device=device,
        threads=spec.objective.threads_per_trial, memory_fraction=spec.gpu_memory_fraction,
        concurrent_trials=spec.trials_per_gpu,
    )


def returns_digest(returns: np.ndarray) -> str:
    """SHA-256 of per-bar returns as little-endian float64: equal digests, equal bits."""
    return hashlib.sha256(np.ascontiguousarray(returns, dtype="<f8").tobytes()).hexdigest()


def check_spec(spec: ObjectiveSpec | dict[str, Any]) -> dict[str, Any]:
    """Fail fast, before a sweep starts: load the data (a bad file is a ``DataError``), check
    that the folds fit the development bars (else a ``ConfigError``) and that enough of them
    have every feature finite for a fold to train on (constant prices, or prices and volumes
    too large or too small for float64 arithmetic, have none: a ``DataError``, not a sweep in
    which every evaluation fails), and describe the data.

    Returns the data's summary and a SHA-256 fingerprint of its file(s), which resume compares
    so that a run is never continued on different candles.
    """
    spec = ObjectiveSpec.of(spec)
    settings = spec.objective
    market = load_market(spec)
    n_dev = market.holdout_start
    try:
        walk_forward_folds(n_dev, settings.folds, np.arange(1, n_dev + 1),
                           settings.embargo_bars, settings.min_train_bars)
    except ValueError as exc:
        raise ConfigError(f"objective: {exc}") from None
    _check_features_usable(market, spec.data.path)
    _check_warm_up(market, settings)
    index = market.ohlcv.index

    def span(start: int, stop: int) -> dict[str, Any]:
        return {"start": start, "stop": stop, "first_bar": index[start].isoformat(),
                "last_bar": index[stop - 1].isoformat()}

    described = {
        "path": spec.data.path or f"<bundled sample>/{sample_data_path().name}",
        "sha256": data_fingerprint(spec.data.path),
        "bars": len(index),
        "first_bar": index[0].isoformat(),
        "last_bar": index[-1].isoformat(),
        "bar_interval": format_interval(market.bar_interval),
        "periods_per_year": market.periods_per_year,
        "development_bars": n_dev,
        "holdout_bars": len(index) - n_dev,
        "holdout_first_bar": index[n_dev].isoformat() if n_dev < len(index) else None,
        "folds": [span(start, stop) for start, stop in test_blocks(n_dev, settings.folds)],
        "holdout": span(n_dev, len(index)) if n_dev < len(index) else None,
    }
    if spec.data.start is not None or spec.data.end is not None:
        described["range"] = {"start": spec.data.start, "end": spec.data.end}
    return described


def _check_features_usable(market: Market, path: str | None) -> None:
    """After the features' warm-up (their longest window), nearly every bar has every feature
    finite. Where none has, or most have not, the data themselves defeat float64 arithmetic
    (constant prices: zero variance; prices or volumes near 1e300 or 1e-300: overflow and
    underflow), and no evaluation could run: a ``DataError`` naming the features."""
    development = market.features[:market.holdout_start]
    finite = np.isfinite(development)
    complete = finite.all(axis=1)
    if complete.any() and complete[int(np.argmax(complete)):].mean() >= 0.5:
        return
    missing = (~finite).sum(axis=0)
    worst = [str(market.features_frame.columns[i]) for i in np.argsort(-missing, kind="stable")
             if missing[i] > len(development) // 2][:3] or ["none in particular"]
    raise DataError(
        f"{path or sample_data_path()}: {int(complete.sum())} of {len(development)} development "
        f"bars have every feature finite (mostly not finite: {', '.join(worst)}): the prices or "
        "volumes are constant, or too large or too small for float64 arithmetic"
    )


def _check_warm_up(market: Market, settings: ObjectiveSettings) -> None:
    """The first fold must have ``min_train_bars`` bars with complete features before its test
    block (less the embargo): the features' warm-up (the longest rolling window) comes first,
    and a fold that trains on warm-up bars only would fail every trial."""
    complete = np.isfinite(market.features).all(axis=1)
    first_test = test_blocks(market.holdout_start, settings.folds)[0][0]
    window = max(0, first_test - settings.embargo_bars)
    usable = int(complete[:window].sum())
    if usable < settings.min_train_bars:
        warm_up = int(np.argmax(complete)) if complete.any() else len(complete)
        raise ConfigError(
            f"objective: fold 0 would train on {usable} bars with complete features, fewer than "
            f"objective.min_train_bars={settings.min_train_bars} (its training window is the "
            f"first {window} bars and the features need {warm_up} bars of warm-up); use fewer "
            "objective.folds, a smaller data.holdout_fraction or more data"
        )


def data_fingerprint(path: str | None) -> str:
    """SHA-256 over the bytes of every file the data path stands for, in load order."""
    digest = hashlib.sha256()
    for file in data_files(Path(path) if path else sample_data_path()):
        digest.update(file.name.encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


# --------------------------------------------------------------------------- steps


def load_market(spec: ObjectiveSpec | dict[str, Any]) -> Market:
    """The :class:`Market` of the spec's data: the cached frames of the per-process feature
    cache as arrays, converted once per process and data version (a new file version gives new
    frames), restricted to ``data.start`` .. ``data.end`` (:func:`time_range`); the holdout
    starts at ``data.holdout_fraction`` of the bars in that range."""
    spec = ObjectiveSpec.of(spec)
    ohlcv, features = cached_features(spec.data.path, **dict(data_options(spec.data)))
    holdout_fraction = spec.data.holdout_fraction
    key = (holdout_fraction, spec.data.bar_interval, spec.data.start, spec.data.end)
    with _markets_lock:
        for file_ohlcv, file_features, market_key, market in _markets:
            if file_ohlcv is ohlcv and file_features is features and market_key == key:
                return market
        in_range = time_range(ohlcv.index, spec.data)
        if in_range != slice(0, len(ohlcv)):
            ohlcv_in, features_in = ohlcv.iloc[in_range], features.iloc[in_range]
        else:
            ohlcv_in, features_in = ohlcv, features
        market = market_from_candles(ohlcv_in, features_in,
                                     holdout_fraction=holdout_fraction,
                                     declared_interval=spec.data.bar_interval,
                                     source=spec.data.path or "sample")
        _markets.insert(0, (ohlcv, features, key, market))
        del _markets[_MARKETS_KEPT:]
        return market


def time_range(index: pd.DatetimeIndex, data: DataSettings) -> slice:
    """The positions of the bars of ``index`` in ``[data.start, data.end)`` (all of them
    without a range). Features are sliced after being computed on the whole file: a feature
    at bar ``t`` reads bars ``<= t`` only, so this equals computing them on data that ends at
    ``data.end``. A range that holds fewer than 2 bars is a ``ConfigError``."""
    if data.start is None and data.end is None:
        return slice(0, len(index))
    first = 0 if data.start is None else int(index.searchsorted(pd.Timestamp(data.start)))
    stop = len(index) if data.end is None else int(index.searchsorted(pd.Timestamp(data.end)))
    if stop - first < 2:
        raise ConfigError(
            f"data.start/data.end: the range [{data.start or 'first bar'}, "
            f"{data.end or 'after the last bar'}) holds {max(stop - first, 0)} bar(s) of the "
            f"data ({index[0].isoformat()} .. {index[-1].isoformat()})")
    return slice(first, stop)


def market_from_candles(
    ohlcv: pd.DataFrame, features: pd.DataFrame | None = None, *,
    holdout_fraction: float = 0.0, declared_interval: str | None = None,
    source: object = "data",
) -> Market:
    """A :class:`Market` of candles in memory (the output of
    :func:`~cryptosweep.trading.data.load_ohlcv`): ``features`` are built with
    :func:`~cryptosweep.trading.features.build_features` unless given. The bar interval is
    detected (a declared one must agree: :func:`~cryptosweep.core.intervals.resolve_interval`).
    The arrays are read-only (a cached market is shared by every trial of a process)."""
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
        periods_per_year=periods_per_year(interval),
    )
    for array in (market.open_, market.high, market.low, market.close, market.features):
        array.flags.writeable = False
    return market


_MARKETS_KEPT = 4
#: (the file's frames, the range key, the market): the frames are compared by identity.
_markets: list[tuple[pd.DataFrame, pd.DataFrame, tuple[Any, ...], Market]] = []
_markets_lock = threading.Lock()


def training_labels(
    market: Market, trading: TradingParams, settings: ObjectiveSettings, stop: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(label, label_end)`` of bars ``[0, stop)``, computed from those bars only (the
    development bars for the sweep, ``stop`` = the holdout start): triple-barrier or
    fixed-horizon as ``settings.labels`` says, with the trade's barriers, fees and slippage."""
    if settings.labels == "fixed_horizon":
        development = market.ohlcv.iloc[:stop]
        return fixed_horizon_labels(development, trading.holding_period, settings.fees_bps)
    return triple_barrier_labels(
        market.open_[:stop], market.high[:stop], market.low[:stop], market.close[:stop],
        take_profit=trading.take_profit, stop_loss=trading.stop_loss,
        max_holding=trading.holding_period, fees_bps=settings.fees_bps,
        slippage_bps=settings.slippage_bps,
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
    model = fit_entry_model(params, repro, rounds, market.features, labels, train)
    return model, train


def fit_entry_model(
    params: dict[str, Any], repro: ReproducibilityManager, rounds: int, features: np.ndarray,
    labels: np.ndarray, train: np.ndarray, *, clock: _Stopwatch | None = None,
    save_to: Path | None = None, init_from: Path | None = None,
) -> ContinuableEntryModel:
    """The configuration's entry model (``params["model"]``, ``params["entry_model"]``) fitted
    on the ``train`` rows for ``rounds`` rounds/epochs with ``repro``'s seed and switches; saved
    to ``save_to`` and continued from ``init_from`` when given (Hyperband checkpoints)."""
    clock = clock or _Stopwatch(None)
    model = make_entry_model(str(params.get("model", "")), _section(params, "entry_model"), repro)
    with clock("fit"):
        model.fit(features[train], labels[train], rounds,
                  init_from=init_from if init_from is not None and model.continues else None)
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
    where it is < ``1 - threshold`` when shorts are allowed; else 0 (and 0 where it is NaN)."""
    signal = np.zeros(len(proba), dtype=np.int8)
    known = np.isfinite(proba)
    signal[known & (proba > threshold)] = 1
    if allow_short:
        signal[known & (proba < 1.0 - threshold)] = -1
    return signal


def backtest_bars(
    market: Market, bars: np.ndarray, proba: np.ndarray, trading: TradingParams,
    settings: ObjectiveSettings,
) -> BacktestResult:
    """:func:`~cryptosweep.trading.backtest.simulate` over the contiguous ``bars`` with the
    :func:`entry_signals` of ``proba``: flat at the first bar, the trade rules, barriers, fees
    and slippage of the configuration."""
    signal = entry_signals(proba, trading.threshold, settings.allow_short)
    return simulate(
        market.open_[bars], market.high[bars], market.low[bars], market.close[bars], signal,
        holding_period=trading.holding_period, stop_loss=trading.stop_loss,
        take_profit=trading.take_profit, fees_bps=settings.fees_bps,
        slippage_bps=settings.slippage_bps,
    )


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


def _section(mapping: dict[str, Any], name: str) -> dict[str, Any]:
    value = mapping.get(name)
    if not isinstance(value, dict):
        raise ConfigError(f"'{name}' must be a mapping, got {type(value).__name__}")
    return value


def _key(mapping: dict[str, Any], section: str, name: str) -> Any:
    if name not in mapping:
        raise ConfigError(f"{section}.{name} is missing")
    return mapping[name]
