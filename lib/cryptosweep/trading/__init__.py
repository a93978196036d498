"""The trading objective: OHLCV data, features, labels, purged walk-forward validation, entry
models, backtest, and :func:`evaluate_trial`, the function a sweep worker calls.

Nothing here knows about the sweep (strategies, executors, store).
"""

from __future__ import annotations

from cryptosweep.trading.backtest import BacktestResult, Trade, annualised_sharpe, simulate
from cryptosweep.trading.data import gap_report, load_ohlcv, sample_data_path
from cryptosweep.trading.features import (
    FEATURE_COLUMNS,
    build_features,
    cached_features,
    clear_feature_cache,
    feature_cache_key,
)
from cryptosweep.trading.labels import fixed_horizon_labels, triple_barrier_labels
from cryptosweep.trading.metrics import METRIC_NAMES, performance
from cryptosweep.trading.models import EntryModel, make_entry_model
from cryptosweep.trading.objective import (
    Predictions,
    check_spec,
    configuration_predictions,
    evaluate_baselines,
    evaluate_holdout,
    evaluate_trial,
)
from cryptosweep.trading.steps import full_rounds
from cryptosweep.trading.validation import Fold, holdout_split, walk_forward_folds

__all__ = [
    "FEATURE_COLUMNS",
    "METRIC_NAMES",
    "BacktestResult",
    "EntryModel",
    "Fold",
    "Predictions",
    "Trade",
    "annualised_sharpe",
    "build_features",
    "cached_features",
    "check_spec",
    "clear_feature_cache",
    "configuration_predictions",
    "evaluate_baselines",
    "evaluate_holdout",
    "evaluate_trial",
    "feature_cache_key",
    "fixed_horizon_labels",
    "full_rounds",
    "gap_report",
    "holdout_split",
    "load_ohlcv",
    "make_entry_model",
    "performance",
    "sample_data_path",
    "simulate",
    "triple_barrier_labels",
    "walk_forward_folds",
]
