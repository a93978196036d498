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

from cryptosweep.config import DataSettings, ObjectiveSettings, ObjectiveSpec
from cryptosweep.errors import ConfigError
from cryptosweep.intervals import (
    detect_interval,
    format_interval,
    periods_per_year,
    resolve_interval,
)
from cryptosweep.reproducibility import ReproducibilityManager
from cryptosweep.trading.backtest import BacktestResult, simulate
from cryptosweep.trading.data import data_files, sample_data_path
from cryptosweep.trading.features import cached_features
from cryptosweep.trading.labels import fixed_horizon_labels, triple_barrier_labels
from cryptosweep.trading.metrics import performance
from cryptosweep.trading.models import checkpoint_path, make_entry_model
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
class _Market:
    """The cached series, its arrays, and where the holdout starts."""

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
    with clock("data"):
        market = _market(spec)
    with clock("labels"):
        labels, label_end = _dev_labels(market, trading, settings)
    try:
        folds = walk_forward_folds(
            market.holdout_start, settings.folds, label_end, settings.embargo_bars,
            settings.min_train_bars,
        )
    except ValueError as exc:
        raise ConfigError(f"objective: {exc}") from None
    repro = trial_reproducibility(spec, seed, device)
    per_fold, returns, continued = [], [], []
    for k, fold in enumerate(folds):
        train = _usable_rows(fold.train, market.features, labels, f"fold {k}")
        files = _checkpoint_files(checkpoint, params, k, rounds, settings.rounds_per_unit)
        proba, fold_continued = _fit_predict(params, repro, rounds, market.features, labels,
                                             train, fold.test, clock, *files)
        continued.append(fold_continued)
        with clock("backtest"):
            result = _backtest(market, fold.test, proba, trading, settings)
            per_fold.append(performance(result.returns, result.trades, result.positions,
                                        periods_per_year=market.periods_per_year))
        returns.append(result.returns)
    oos = np.concatenate(returns)
    fold_trades = [int(m["trades"]) for m in per_fold]
    penalty = None if sum(fold_trades) else "no trades in any fold: score set to 0"
    score = 0.0 if penalty else float(np.mean([m[settings.metric] for m in per_fold]))
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
    settings = spec.objective
    if spec.data.holdout_fraction <= 0.0:
        raise ConfigError("data.holdout_fraction is 0: there is no holdout to evaluate")
    trading = TradingParams.from_params(params)
    rounds = full_rounds(resource, settings.rounds_per_unit)
    market = _market(spec)
    n_dev, n_all = market.holdout_start, len(market.open_)
    labels, label_end = _dev_labels(market, trading, settings)
    candidates = np.flatnonzero(label_end < n_dev)
    train = _usable_rows(candidates, market.features, labels, "holdout training")
    test = np.arange(n_dev, n_all, dtype="int64")
    repro = trial_reproducibility(spec, seed, device)
    proba, _ = _fit_predict(params, repro, rounds, market.features, labels, train, test)
    result = _backtest(market, test, proba, trading, settings)
    metrics = performance(result.returns, result.trades, result.positions,
                          periods_per_year=market.periods_per_year)
    out: dict[str, Any] = {f"holdout_{name}": value for name, value in metrics.items()}
    out["holdout_bars"] = len(test)
    out["holdout_returns"] = [float(r) for r in result.returns]
    return out


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
    that the folds fit the development bars (else a ``ConfigError``), and describe the data.

    Returns the data's summary and a SHA-256 fingerprint of its file(s), which resume compares
    so that a run is never continued on different candles.
    """
    spec = ObjectiveSpec.of(spec)
    settings = spec.objective
    market = _market(spec)
    n_dev = market.holdout_start
    try:
        walk_forward_folds(n_dev, settings.folds, np.arange(1, n_dev + 1), settings.embargo_bars,
                           settings.min_train_bars)
    except ValueError as exc:
        raise ConfigError(f"objective: {exc}") from None
    _check_warm_up(market, settings)
    index = market.ohlcv.index

    def span(start: int, stop: int) -> dict[str, Any]:
        return {"start": start, "stop": stop, "first_bar": index[start].isoformat(),
                "last_bar": index[stop - 1].isoformat()}

    return {
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


def _check_warm_up(market: _Market, settings: ObjectiveSettings) -> None:
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


def _market(spec: ObjectiveSpec) -> _Market:
    """The cached frames as arrays, converted once per process and data version (the frames
    come from the per-process feature cache; a new file version gives new frames)."""
    ohlcv, features = cached_features(spec.data.path, **dict(data_options(spec.data)))
    holdout_fraction = spec.data.holdout_fraction
    with _markets_lock:
        for market in _markets:
            if (market.ohlcv is ohlcv and market.features_frame is features
                    and market.holdout_fraction == holdout_fraction
                    and market.declared_interval == spec.data.bar_interval):
                return market
        interval = resolve_interval(detect_interval(ohlcv.index, spec.data.path or "sample"),
                                    spec.data.bar_interval, spec.data.path or "sample")
        market = _Market(
            ohlcv=ohlcv,
            features_frame=features,
            holdout_fraction=holdout_fraction,
            open_=ohlcv["open"].to_numpy(dtype="float64"),
            high=ohlcv["high"].to_numpy(dtype="float64"),
            low=ohlcv["low"].to_numpy(dtype="float64"),
            close=ohlcv["close"].to_numpy(dtype="float64"),
            features=features.to_numpy(dtype="float64"),
            holdout_start=holdout_split(len(ohlcv), holdout_fraction),
            declared_interval=spec.data.bar_interval,
            bar_interval=interval,
            periods_per_year=periods_per_year(interval),
        )
        for array in (market.open_, market.high, market.low, market.close, market.features):
            array.flags.writeable = False  # shared by every trial of this process
        _markets.insert(0, market)
        del _markets[_MARKETS_KEPT:]
        return market


_MARKETS_KEPT = 4
_markets: list[_Market] = []
_markets_lock = threading.Lock()


def _dev_labels(
    market: _Market, trading: TradingParams, settings: ObjectiveSettings
) -> tuple[np.ndarray, np.ndarray]:
    """Labels of the development bars, computed from development bars only."""
    n = market.holdout_start
    if settings.labels == "fixed_horizon":
        development = market.ohlcv.iloc[:n]
        return fixed_horizon_labels(development, trading.holding_period, settings.fees_bps)
    return triple_barrier_labels(
        market.open_[:n], market.high[:n], market.low[:n], market.close[:n],
        take_profit=trading.take_profit, stop_loss=trading.stop_loss,
        max_holding=trading.holding_period, fees_bps=settings.fees_bps,
        slippage_bps=settings.slippage_bps,
    )


def _usable_rows(
    rows: np.ndarray, features: np.ndarray, labels: np.ndarray, what: str
) -> np.ndarray:
    keep = np.isfinite(features[rows]).all(axis=1) & np.isfinite(labels[rows])
    usable = rows[keep]
    if len(usable) == 0:
        raise ConfigError(
            f"objective: {what} has no bars with complete features and labels; raise "
            "objective.min_train_bars or use fewer folds"
        )
    return usable


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


def _fit_predict(
    params: dict[str, Any], repro: ReproducibilityManager, rounds: int, features: np.ndarray,
    labels: np.ndarray, train: np.ndarray, test: np.ndarray, clock: _Stopwatch | None = None,
    save_to: Path | None = None, init_from: Path | None = None,
) -> tuple[np.ndarray, bool]:  # fmt: skip
    """Predicted probabilities for the ``test`` bars (NaN where a feature is missing), and
    whether the model continued from ``init_from``."""
    clock = clock or _Stopwatch(None)
    model = make_entry_model(str(params.get("model", "")), _section(params, "entry_model"), repro)
    with clock("fit"):
        model.fit(features[train], labels[train], rounds,
                  init_from=init_from if init_from is not None and model.continues else None)
    if save_to is not None:
        with clock("checkpoint"):
            model.save(save_to)
    x_test = features[test]
    complete = np.isfinite(x_test).all(axis=1)
    proba = np.full(len(test), np.nan)
    with clock("predict"):
        if complete.any():
            proba[complete] = model.predict_proba(x_test[complete])
    return proba, bool(getattr(model, "last_fit_continued", False))


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


def _backtest(
    market: _Market, bars: np.ndarray, proba: np.ndarray, trading: TradingParams,
    settings: ObjectiveSettings,
) -> BacktestResult:
    """Long where P(entry pays) > threshold; short where it is < 1 - threshold (if allowed)."""
    signal = np.zeros(len(bars), dtype=np.int8)
    known = np.isfinite(proba)
    signal[known & (proba > trading.threshold)] = 1
    if settings.allow_short:
        signal[known & (proba < 1.0 - trading.threshold)] = -1
    return simulate(
        market.open_[bars], market.high[bars], market.low[bars], market.close[bars], signal,
        holding_period=trading.holding_period, stop_loss=trading.stop_loss,
        take_profit=trading.take_profit, fees_bps=settings.fees_bps,
        slippage_bps=settings.slippage_bps,
    )


def _section(mapping: dict[str, Any], name: str) -> dict[str, Any]:
    value = mapping.get(name)
    if not isinstance(value, dict):
        raise ConfigError(f"'{name}' must be a mapping, got {type(value).__name__}")
    return value


def _key(mapping: dict[str, Any], section: str, name: str) -> Any:
    if name not in mapping:
        raise ConfigError(f"{section}.{name} is missing")
    return mapping[name]
