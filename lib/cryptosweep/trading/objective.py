"""The trial objective a worker calls: train, signal and backtest one configuration.

It knows nothing about the sweep: it gets a configuration (``params``), a budget
(``resource``), a seed and the plain-dict ``spec`` of the data and the objective, and returns a
JSON-safe dict. Same inputs, same dict, in any process.

Protocol of :func:`evaluate_trial`:

1. the cached OHLCV and features of the data file (built once per process);
2. the holdout (the most recent ``holdout_fraction`` of bars) is cut off first: no label,
   training row or backtest bar of a trial reads it;
3. fixed-horizon labels with the trial's holding period (AFML ch. 3.2);
4. expanding walk-forward folds with purging and embargo (AFML ch. 7.4);
5. per fold: fit on the training rows with complete features and labels, signal where the
   predicted probability exceeds the threshold, backtest the test block;
6. score: the mean of the folds' annualised Sharpe ratios.

AFML: López de Prado (2018), *Advances in Financial Machine Learning*.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cryptosweep.errors import ConfigError
from cryptosweep.reproducibility import ReproducibilityManager
from cryptosweep.trading.backtest import BacktestResult, annualised_sharpe, backtest_long_only
from cryptosweep.trading.data import data_files, sample_data_path
from cryptosweep.trading.features import cached_features
from cryptosweep.trading.labels import fixed_horizon_labels
from cryptosweep.trading.models import make_entry_model
from cryptosweep.trading.validation import holdout_split, walk_forward_folds

METRICS = ("sharpe",)


@dataclass(frozen=True)
class ObjectiveSpec:
    """The data and objective settings of a sweep, read from the plain-dict ``spec``."""

    data_path: str | None
    holdout_fraction: float
    metric: str
    folds: int
    fees_bps: float
    rounds_per_unit: float
    embargo_bars: int
    threads_per_trial: int
    min_train_bars: int

    @classmethod
    def from_dict(cls, spec: dict[str, Any]) -> ObjectiveSpec:
        data, objective = _section(spec, "data"), _section(spec, "objective")
        parsed = cls(
            data_path=data.get("path"),
            holdout_fraction=float(_key(data, "data", "holdout_fraction")),
            metric=str(_key(objective, "objective", "metric")),
            folds=int(_key(objective, "objective", "folds")),
            fees_bps=float(_key(objective, "objective", "fees_bps")),
            rounds_per_unit=float(_key(objective, "objective", "rounds_per_unit")),
            embargo_bars=int(objective.get("embargo_bars", 0)),
            threads_per_trial=int(objective.get("threads_per_trial", 1)),
            min_train_bars=int(objective.get("min_train_bars", 1)),
        )
        if parsed.metric not in METRICS:
            raise ValueError(f"unknown objective metric '{parsed.metric}' (known: {METRICS})")
        return parsed


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
    open_: np.ndarray
    close: np.ndarray
    features: np.ndarray
    holdout_start: int


def full_rounds(resource: float, rounds_per_unit: float) -> int:
    """Boosting rounds for a budget: ``max(1, floor(resource * rounds_per_unit + 0.5))``."""
    return max(1, math.floor(resource * rounds_per_unit + 0.5))


def evaluate_trial(
    params: dict[str, Any], resource: float, seed: int, spec: dict[str, Any], device: str = "cpu"
) -> dict[str, Any]:
    """Score one configuration by purged walk-forward backtests on the development bars.

    Returns ``{"score", "fold_sharpe", "fold_trades", "n_trades", "rounds",
    "mean_bar_return"}`` with plain Python numbers. Bars from the holdout start on are never
    read (their prices cannot change the result).
    """
    settings = ObjectiveSpec.from_dict(spec)
    trading = TradingParams.from_params(params)
    rounds = full_rounds(resource, settings.rounds_per_unit)
    market = _market(settings)
    n_dev = market.holdout_start
    labels, label_end = _dev_labels(market, trading, settings.fees_bps)
    try:
        folds = walk_forward_folds(
            n_dev, settings.folds, label_end, settings.embargo_bars, settings.min_train_bars
        )
    except ValueError as exc:
        raise ConfigError(f"objective: {exc}") from None
    repro = ReproducibilityManager(seed=seed, threads=settings.threads_per_trial, device=device)
    results = []
    for k, fold in enumerate(folds):
        train = _usable_rows(fold.train, market.features, labels, f"fold {k}")
        proba = _fit_predict(params, repro, rounds, market.features, labels, train, fold.test)
        results.append(_backtest(market, fold.test, proba, trading, settings.fees_bps))
    fold_sharpe = [annualised_sharpe(result.returns) for result in results]
    fold_trades = [int(result.n_trades) for result in results]
    return {
        "score": float(np.mean(fold_sharpe)),
        "fold_sharpe": [float(s) for s in fold_sharpe],
        "fold_trades": fold_trades,
        "n_trades": int(sum(fold_trades)),
        "rounds": int(rounds),
        "mean_bar_return": float(np.mean(np.concatenate([r.returns for r in results]))),
    }


def evaluate_holdout(
    params: dict[str, Any], resource: float, seed: int, spec: dict[str, Any], device: str = "cpu"
) -> dict[str, Any]:
    """Train on the whole development part and backtest the holdout bars once.

    Training rows whose label end reaches the holdout are purged (by construction of the
    development-only labels there are none). Returns ``{"holdout_sharpe",
    "holdout_trades", "holdout_total_return", "holdout_bars"}``.
    """
    settings = ObjectiveSpec.from_dict(spec)
    if settings.holdout_fraction <= 0.0:
        raise ConfigError("data.holdout_fraction is 0: there is no holdout to evaluate")
    trading = TradingParams.from_params(params)
    rounds = full_rounds(resource, settings.rounds_per_unit)
    market = _market(settings)
    n_dev, n_all = market.holdout_start, len(market.open_)
    labels, label_end = _dev_labels(market, trading, settings.fees_bps)
    candidates = np.flatnonzero(label_end < n_dev)
    train = _usable_rows(candidates, market.features, labels, "holdout training")
    test = np.arange(n_dev, n_all, dtype="int64")
    repro = ReproducibilityManager(seed=seed, threads=settings.threads_per_trial, device=device)
    proba = _fit_predict(params, repro, rounds, market.features, labels, train, test)
    result = _backtest(market, test, proba, trading, settings.fees_bps)
    return {
        "holdout_sharpe": float(annualised_sharpe(result.returns)),
        "holdout_trades": int(result.n_trades),
        "holdout_total_return": float(result.total_return),
        "holdout_bars": len(test),
    }


def check_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """Fail fast, before a sweep starts: load the data (a bad file is a ``DataError``), check
    that the folds fit the development bars (else a ``ConfigError``), and describe the data.

    Returns the data's summary and a SHA-256 fingerprint of its file(s), which resume compares
    so that a run is never continued on different candles.
    """
    settings = ObjectiveSpec.from_dict(spec)
    market = _market(settings)
    n_dev = market.holdout_start
    try:
        walk_forward_folds(n_dev, settings.folds, np.arange(1, n_dev + 1), settings.embargo_bars,
                           settings.min_train_bars)
    except ValueError as exc:
        raise ConfigError(f"objective: {exc}") from None
    index = market.ohlcv.index
    return {
        "path": settings.data_path or f"<bundled sample>/{sample_data_path().name}",
        "sha256": data_fingerprint(settings.data_path),
        "bars": len(index),
        "first_bar": index[0].isoformat(),
        "last_bar": index[-1].isoformat(),
        "development_bars": n_dev,
        "holdout_bars": len(index) - n_dev,
        "holdout_first_bar": index[n_dev].isoformat() if n_dev < len(index) else None,
    }


def data_fingerprint(path: str | None) -> str:
    """SHA-256 over the bytes of every file the data path stands for, in load order."""
    digest = hashlib.sha256()
    for file in data_files(Path(path) if path else sample_data_path()):
        digest.update(file.name.encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


# --------------------------------------------------------------------------- steps


def _market(settings: ObjectiveSpec) -> _Market:
    ohlcv, features = cached_features(settings.data_path)
    return _Market(
        ohlcv=ohlcv,
        open_=ohlcv["open"].to_numpy(dtype="float64"),
        close=ohlcv["close"].to_numpy(dtype="float64"),
        features=features.to_numpy(dtype="float64"),
        holdout_start=holdout_split(len(ohlcv), settings.holdout_fraction),
    )


def _dev_labels(
    market: _Market, trading: TradingParams, fees_bps: float
) -> tuple[np.ndarray, np.ndarray]:
    """Labels of the development bars, computed from development bars only."""
    development = market.ohlcv.iloc[: market.holdout_start]
    return fixed_horizon_labels(development, trading.holding_period, fees_bps)


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


def _fit_predict(
    params: dict[str, Any], repro: ReproducibilityManager, rounds: int, features: np.ndarray,
    labels: np.ndarray, train: np.ndarray, test: np.ndarray,
) -> np.ndarray:  # fmt: skip
    """Predicted probabilities for the ``test`` bars; NaN where a feature is missing."""
    model = make_entry_model(str(params.get("model", "")), _section(params, "entry_model"), repro)
    model.fit(features[train], labels[train], rounds)
    x_test = features[test]
    complete = np.isfinite(x_test).all(axis=1)
    proba = np.full(len(test), np.nan)
    if complete.any():
        proba[complete] = model.predict_proba(x_test[complete])
    return proba


def _backtest(
    market: _Market, bars: np.ndarray, proba: np.ndarray, trading: TradingParams, fees_bps: float
) -> BacktestResult:
    signal = np.nan_to_num(proba, nan=-np.inf) > trading.threshold
    return backtest_long_only(
        market.open_[bars], market.close[bars], signal, trading.holding_period,
        trading.stop_loss, trading.take_profit, fees_bps,
    )  # fmt: skip


def _section(mapping: dict[str, Any], name: str) -> dict[str, Any]:
    value = mapping.get(name)
    if not isinstance(value, dict):
        raise ConfigError(f"'{name}' must be a mapping, got {type(value).__name__}")
    return value


def _key(mapping: dict[str, Any], section: str, name: str) -> Any:
    if name not in mapping:
        raise ConfigError(f"{section}.{name} is missing")
    return mapping[name]
