"""What a trial predicted, and its backtest with other trading parameters.

:func:`trial_predictions` retrains an evaluation's entry models with its recorded seed through
the objective's own functions (:func:`~cryptosweep.trading.objective.fold_predictions`,
:func:`~cryptosweep.trading.objective.holdout_predictions`), so that its probabilities are the
sweep's: one block per walk-forward fold, then the holdout. A Hyperband evaluation that
continued from its previous rung's checkpoint is replayed along the same rungs, with
checkpoints in a temporary folder, because for families that sample rows or columns the
continued model is not the one trained from scratch (``docs/continuation.md``). The sweep's
holdout model is always trained from scratch on the CPU, as ``finalize`` trains it.
:class:`PredictionCache` keeps them for the session.

:func:`what_if` backtests cached predictions with any trading parameters: the threshold rule
(:func:`~cryptosweep.trading.steps.entry_signals`) and the backtest
(:func:`~cryptosweep.trading.steps.backtest_bars`) of the sweep, its metrics
(:func:`~cryptosweep.trading.metrics.performance`) and score
(:func:`~cryptosweep.trading.objective.fold_score`). Only the trading rules of the backtest
change: the model stays the trial's, trained on the labels of its own barriers.
:func:`parity` checks that with the trial's own parameters the per-bar returns are the ones the
sweep journaled, bit for bit.
"""

from __future__ import annotations

import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cryptosweep.core.config import ObjectiveSpec
from cryptosweep.core.errors import ConfigError, UserError
from cryptosweep.execution.checkpoints import checkpoint_spec
from cryptosweep.explore.trial import HOLDOUT, TrialRecord, block_labels
from cryptosweep.trading.backtest import BacktestResult
from cryptosweep.trading.fidelity import fidelity_at
from cryptosweep.trading.metrics import METRIC_NAMES, performance
from cryptosweep.trading.objective import (
    Predictions,
    data_fingerprint,
    fold_predictions,
    fold_score,
    holdout_predictions,
)
from cryptosweep.trading.steps import Market, TradingParams, backtest_bars, load_market

__all__ = [
    "PREDICTIONS",
    "BlockBacktest",
    "Parity",
    "PredictionCache",
    "PredictionsError",
    "WhatIf",
    "metrics_table",
    "parity",
    "trial_predictions",
    "what_if",
]

#: Where the sweep trains holdout models (``finalize``), and the explorer whatever it cannot
#: train where the sweep did.
CPU = "cpu"


class PredictionsError(UserError):
    """A trial's predictions cannot be rebuilt as the sweep made them; ``str()`` says why."""


def check_data(record: TrialRecord) -> None:
    """The run's data must be here and be the candles it was swept on (SHA-256 of the files,
    as the run recorded it): else retraining would not give the sweep's predictions."""
    path = record.spec.data.path
    if path is not None and not Path(path).exists():
        raise PredictionsError(f"the run's data ({path}) is not here: the trial cannot be "
                               "retrained")
    recorded = (record.data or {}).get("sha256")
    if recorded is not None and data_fingerprint(path) != recorded:
        raise PredictionsError(f"the run's data ({path or 'the bundled sample'}) changed since "
                               "the sweep (its SHA-256 differs): retraining would not give the "
                               "sweep's predictions")


def fold_device(record: TrialRecord) -> str:
    """Where to retrain the walk-forward folds: on a GPU (``cuda:0``, as a sweep's worker sees
    its own) when the sweep trained them on one and torch sees one here, else on the CPU (a
    GPU-trained trial retrained on the CPU may predict otherwise: :func:`parity` says)."""
    if record.device and record.device.startswith("cuda"):
        from cryptosweep.trading.models import torch_cuda_available

        if torch_cuda_available():
            return "cuda:0"
    return CPU


def training_steps(record: TrialRecord) -> int:
    """How many models :func:`trial_predictions` fits: the folds of every rung replayed, and
    the holdout model."""
    spec = record.spec
    rungs = len(record.rungs) + 1 if _continued(record) else 1
    folds = len(fidelity_at(record.budget, spec).folds(spec.objective.folds))
    return rungs * folds + (1 if spec.data.has_holdout else 0)


def _continued(record: TrialRecord) -> bool:
    return bool(record.metrics.get("continued")) and bool(record.rungs)


def trial_predictions(record: TrialRecord) -> list[Predictions]:
    """The evaluation's probabilities, as the sweep made them: per walk-forward fold (its
    rungs replayed when it continued from a checkpoint) and, when the data has a holdout, the
    holdout (trained from scratch on every development bar). Seconds per fold."""
    check_data(record)
    spec = record.spec
    params, seed, device = record.params, record.seed, fold_device(record)
    if _continued(record):
        config = record.sweep_config
        with tempfile.TemporaryDirectory(prefix="cryptosweep-replay-") as folder:
            folds: list[Predictions] = []
            for evaluation in (*record.rungs, record.evaluation):
                checkpoint = checkpoint_spec(config, Path(folder), record.trial_id,
                                             evaluation.get("tags") or {})
                folds = list(fold_predictions(params, float(evaluation["budget"]), seed, spec,
                                              device, checkpoint=checkpoint))
    else:
        folds = list(fold_predictions(params, record.budget, seed, spec, device))
    if spec.data.has_holdout:
        folds.append(holdout_predictions(params, record.budget, seed, spec, CPU))
    return folds


class PredictionCache:
    """A trial's predictions per (run folder, its creation time, eval id), kept for the session
    (the ``size`` most recently used); one retraining at a time per trial. ``trainings``
    counts the retrainings it did."""

    def __init__(self, size: int = 16) -> None:
        self.size = size
        self.trainings = 0
        self._items: OrderedDict[tuple[str, float | None, int], list[Predictions]] = \
            OrderedDict()
        self._lock = threading.Lock()
        self._training: dict[tuple[str, float | None, int], threading.Lock] = {}

    @staticmethod
    def key(record: TrialRecord) -> tuple[str, float | None, int]:
        return (str(record.run_dir.resolve()), record.created_at, record.eval_id)

    def cached(self, record: TrialRecord) -> list[Predictions] | None:
        """The trial's predictions when they are in the cache, else ``None``."""
        with self._lock:
            found = self._items.get(self.key(record))
            if found is not None:
                self._items.move_to_end(self.key(record))
            return found

    def get(self, record: TrialRecord,
            train: Callable[[TrialRecord], list[Predictions]] = trial_predictions
            ) -> list[Predictions]:
        """The trial's predictions: from the cache, else retrained (``train``) and cached."""
        key = self.key(record)
        with self._lock:
            gate = self._training.setdefault(key, threading.Lock())
        with gate:
            found = self.cached(record)
            if found is not None:
                return found
            blocks = train(record)
            with self._lock:
                self.trainings += 1
                self._items[key] = blocks
                self._items.move_to_end(key)
                while len(self._items) > self.size:
                    self._items.popitem(last=False)
                self._training.pop(key, None)
            return blocks

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


#: The session's cache (shared by every explorer of the kernel).
PREDICTIONS = PredictionCache()


@dataclass(frozen=True)
class BlockBacktest:
    """The backtest of one block of predictions: its name (``fold 1``, ..., ``holdout``),
    bar positions in the market, open times, the simulation (per-bar returns, positions,
    trades with bar positions within the block) and its metrics."""

    name: str
    bars: np.ndarray
    times: pd.DatetimeIndex
    result: BacktestResult
    metrics: dict[str, Any]


@dataclass(frozen=True)
class WhatIf:
    """A trial's predictions backtested with ``trading``: per block, the validation score of
    the sweep's rule (:func:`~cryptosweep.trading.objective.fold_score`) and its penalty."""

    trading: TradingParams
    blocks: tuple[BlockBacktest, ...] = field(repr=False)  # the holdout's too: not in the repr
    metric: str
    score: float
    penalty: str | None

    @property
    def folds(self) -> tuple[BlockBacktest, ...]:
        return tuple(b for b in self.blocks if b.name != HOLDOUT)

    @property
    def holdout(self) -> BlockBacktest | None:
        return next((b for b in self.blocks if b.name == HOLDOUT), None)

    @property
    def validation_returns(self) -> np.ndarray:
        """The per-bar returns of the test blocks one after the other, as the sweep journals
        them."""
        return np.concatenate([b.result.returns for b in self.folds])


def what_if(predictions: Sequence[Predictions], trading: TradingParams, spec: ObjectiveSpec,
            market: Market | None = None) -> WhatIf:
    """Backtest ``predictions`` (from :func:`trial_predictions`) with ``trading``: the sweep's
    signals, simulation, metrics and score, nothing retrained (about 1.5 ms per 10,000 bars
    for the simulation). ``trading`` outside the ranges a sweep config allows (a threshold
    or stop loss outside (0, 1), a holding period beyond its bound, NaN) is a
    ``ConfigError``, not a score."""
    _check_trading(trading)
    market = market if market is not None else load_market(spec)
    blocks = []
    for block in predictions:
        result = backtest_bars(market, block.bars, block.proba, trading, spec.objective)
        metrics = performance(result.returns, result.trades, result.positions,
                              periods_per_year=market.periods_per_year)
        name = HOLDOUT if block.block == HOLDOUT else f"fold {int(block.block.split()[1]) + 1}"
        blocks.append(BlockBacktest(name, block.bars, block.times, result, metrics))
    folds = [b.metrics for b in blocks if b.name != HOLDOUT]
    score, penalty = fold_score(folds, spec.objective.metric)
    return WhatIf(trading, tuple(blocks), spec.objective.metric, score, penalty)


def _check_trading(trading: TradingParams) -> None:
    """The sweep config's rules for trading parameters
    (:func:`~cryptosweep.core.config.trading_values_problem`), for one what-if's values."""
    from cryptosweep.core.config import trading_values_problem
    from cryptosweep.core.settings import TRADING_PARAMETERS

    problem = trading_values_problem({key: getattr(trading, key) for key in TRADING_PARAMETERS})
    if problem is not None:
        raise ConfigError(f"what-if trading{problem}")


@dataclass(frozen=True)
class Parity:
    """Whether a what-if with the trial's own parameters gives the per-bar returns the sweep
    journaled, bit for bit: ``validation`` and ``holdout`` (``None``: nothing journaled to
    compare with), and a sentence saying so."""

    validation: bool | None
    holdout: bool | None
    text: str

    @property
    def ok(self) -> bool:
        return self.validation is not False and self.holdout is not False


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and np.asarray(a, "<f8").tobytes() == np.asarray(b, "<f8").tobytes()


def parity(record: TrialRecord, own: WhatIf, *, show_holdout: bool = False) -> Parity:
    """Compare ``own`` (a :func:`what_if` with ``record.trading``) with the journal. The
    sentence speaks of the holdout only with ``show_holdout`` (the explorer's recorded unlock),
    except to say that its per-bar returns are not the sweep's: that is about reproducing the
    run, not a score, and a check that failed is never kept quiet."""
    if own.trading != record.trading:
        raise ValueError("parity needs the what-if of the trial's own trading parameters")
    checks: dict[str, bool | None] = {"validation": None, HOLDOUT: None}
    journaled = record.returns.get("validation")
    if journaled is not None:
        checks["validation"] = _same_bits(own.validation_returns, journaled)
    holdout = record.returns.get(HOLDOUT)
    if holdout is not None and own.holdout is not None:
        checks[HOLDOUT] = _same_bits(own.holdout.result.returns, holdout)
    parts = []
    for kind, what in (("validation", f"validation ({len(own.folds)} folds, "
                                      f"{len(own.validation_returns):,} bars)"),
                       (HOLDOUT, f"holdout ({len(own.holdout.bars) if own.holdout else 0:,} "
                                 "bars)" if show_holdout else "holdout (locked)")):
        if kind == HOLDOUT and not show_holdout and checks[kind] is not False:
            continue
        if checks[kind] is True:
            parts.append(f"{what}: the sweep's per-bar returns, bit for bit")
        elif checks[kind] is False:
            parts.append(f"{what}: NOT the sweep's per-bar returns (the what-if below is not "
                         "what the sweep scored)")
    if checks["validation"] is None:
        parts.append("no journaled validation returns to compare with" if not record.journal
                     else "the journal has no validation returns of this evaluation")
    if checks[HOLDOUT] is None and own.holdout is not None and show_holdout:
        parts.append("holdout: not evaluated by the sweep (not in its top-k), computed here")
    note = ""
    if record.device and not record.device.startswith(CPU):
        note = (f" (the sweep trained its folds on {record.device}; retrained here on "
                f"{fold_device(record)})")
    return Parity(checks["validation"], checks[HOLDOUT], "; ".join(parts) + note)


#: The metrics a what-if table shows, in order.
TABLE_METRICS = METRIC_NAMES


def metrics_table(record: TrialRecord, whatif: WhatIf | None, *, show_holdout: bool = False
                  ) -> pd.DataFrame:
    """The sweep's metrics of each block (``as swept``: the journal's folds and holdout) beside
    the what-if's, one row per block and source: ``fold 1 · ... | as swept``, ``fold 1 · ... |
    what-if``, ..., and the score (mean of the folds' metric) as a first pair of rows. The
    holdout's rows only with ``show_holdout`` (the explorer's recorded unlock): the holdout is
    a budget (:mod:`cryptosweep.explore.accounting`)."""
    folds = list(record.metrics.get("folds") or [])
    n_folds = len(whatif.folds) if whatif is not None else len(folds)
    has_holdout = show_holdout and (
        (whatif is not None and whatif.holdout is not None) or record.holdout is not None)
    labels = block_labels(record.data, n_folds, has_holdout)
    rows, index = [], []
    metric = record.metric
    rows.append({metric: record.evaluation.get("score"), "trades": record.metrics.get("n_trades")})
    index.append((f"score (mean fold {metric})", "as swept"))
    if whatif is not None:
        rows.append({metric: whatif.score, "trades": sum(b.metrics["trades"]
                                                         for b in whatif.folds)})
        index.append((f"score (mean fold {metric})", "what-if"))
    for i, label in enumerate(labels):
        if label.startswith(HOLDOUT):
            mine = None if record.holdout is None else {
                name: record.holdout.get(f"holdout_{name}") for name in TABLE_METRICS}
        else:
            mine = folds[i] if i < len(folds) else None
        if mine is not None:
            rows.append({name: mine.get(name) for name in TABLE_METRICS})
            index.append((label, "as swept"))
        if whatif is not None:
            rows.append(dict(whatif.blocks[i].metrics))
            index.append((label, "what-if"))
    frame = pd.DataFrame(rows, columns=list(TABLE_METRICS),
                         index=pd.MultiIndex.from_tuples(index, names=["block", "source"]))
    return frame
