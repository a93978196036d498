"""The trading objective: OHLCV data, features, labels, purged walk-forward validation, entry
models, backtest, and :func:`evaluate_trial`, the function a sweep worker calls.

Nothing here knows about the sweep (strategies, executors, store).
"""

from __future__ import annotations

from cryptosweep.trading.backtest import BacktestResult, annualised_sharpe, backtest_long_only
from cryptosweep.trading.data import load_ohlcv, sample_data_path
from cryptosweep.trading.features import (
    FEATURE_COLUMNS,
    build_features,
    cached_features,
    clear_feature_cache,
    feature_cache_key,
)
from cryptosweep.trading.labels import fixed_horizon_labels
from cryptosweep.trading.models import EntryModel, LightGBMEntryModel, make_entry_model
from cryptosweep.trading.objective import evaluate_holdout, evaluate_trial, full_rounds
from cryptosweep.trading.validation import Fold, holdout_split, walk_forward_folds

__all__ = [
    "FEATURE_COLUMNS",
    "BacktestResult",
    "EntryModel",
    "Fold",
    "LightGBMEntryModel",
    "annualised_sharpe",
    "backtest_long_only",
    "build_features",
    "cached_features",
    "clear_feature_cache",
    "evaluate_holdout",
    "evaluate_trial",
    "feature_cache_key",
    "fixed_horizon_labels",
    "full_rounds",
    "holdout_split",
    "load_ohlcv",
    "make_entry_model",
    "sample_data_path",
    "walk_forward_folds",
]
