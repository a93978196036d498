"""From a sweep's winner to the model that trades.

``train_model(best["configurations"][0])`` trains the configuration as the sweep did (family,
parameters, rounds, seed, features, labels, purging); ``model.save(dir)`` writes it in its
library's own format with ``manifest.json``; ``load_model(dir)`` checks and reads it back;
``model.decide(ohlcv)`` says what to do at each closed bar by the backtest's rules, and
``model.backtest(ohlcv, start, end)`` gives the sweep's metrics on any period or asset.
``docs/production.md`` describes the files and what history ``decide`` needs.

Modules: :mod:`~cryptosweep.production.configuration` (reading best-configs files),
:mod:`~cryptosweep.production.candles` (the candles a model may read),
:mod:`~cryptosweep.production.decisions` (decisions from the backtest's simulation),
:mod:`~cryptosweep.production.model` (training, saving, loading),
:mod:`~cryptosweep.production.evaluation` (the offline HTML of a backtest).
"""

from __future__ import annotations

from cryptosweep.production.configuration import (
    Configuration,
    configuration_of,
    read_best_configs,
)
from cryptosweep.production.decisions import (
    DECISION_COLUMNS,
    decisions_json,
    decisions_records,
    decisions_table,
)
from cryptosweep.production.model import (
    MANIFEST,
    MODEL_FORMAT,
    Backtest,
    TrainedModel,
    load_model,
    train_model,
)

__all__ = [
    "DECISION_COLUMNS", "MANIFEST", "MODEL_FORMAT", "Backtest", "Configuration",
    "TrainedModel", "configuration_of", "decisions_json", "decisions_records",
    "decisions_table", "load_model", "read_best_configs", "train_model",
]  # fmt: skip
