"""The two warnings a reader needs next to a score: too few trades to trust it, and a
walk-forward mean that rests on one fold. Pure functions over plain numbers, so that the report,
the text report, the index and the verdict flag exactly the same things.

**Small sample.** A score measured on fewer than ``reporting.min_trades`` trades (default 30)
is marked wherever it appears. The standard error of a Sharpe ratio estimated from *n*
independent observations is about ``sqrt((1 + SR²/2) / n)`` (Lo 2002, "The Statistics of
Sharpe Ratios", *Financial Analysts Journal* 58(4)); per trade, 30 trades leave an error of
about 0.2 on the per-trade Sharpe, the same size as the edges being measured.

**One fold carries the mean.** With fold scores ``s_1..s_k`` (``k >= 2``), mean ``m``, and
``m_-`` the mean of the other folds once the best fold is left out: the flag is raised when
``m > 0`` and ``m_- <= 0``, i.e. the validation score is positive only because of its best
fold. Example: folds ``[-0.31, +4.77, -0.87, -1.31]`` have ``m = +0.57`` but
``m_- = -0.83``. The rule needs no tuning constant and reads as one sentence.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptosweep.core.settings import DEFAULT_MIN_TRADES


def small_sample(trades: Any, min_trades: int) -> bool:
    """True when ``trades`` is known and fewer than ``min_trades``."""
    if trades is None or isinstance(trades, bool):
        return False
    try:
        return int(trades) < int(min_trades)
    except (TypeError, ValueError):
        return False


@dataclass(frozen=True)
class FoldStability:
    """How a walk-forward mean is spread over its folds (see the module docstring)."""

    scores: tuple[float, ...]
    mean: float
    spread: float  # sample standard deviation over folds (ddof=1); 0 with one fold
    best_fold: int  # 0-based index of the highest fold score (the first one on ties)
    mean_without_best: float | None  # None with a single fold
    carried_by_one_fold: bool

    def note(self) -> str | None:
        """One sentence when the flag is raised, else ``None``; folds are numbered from 1."""
        if not self.carried_by_one_fold:
            return None
        return (f"fold {self.best_fold + 1} ({self.scores[self.best_fold]:+.2f}) carries the "
                f"mean {self.mean:+.2f}: without it the mean is "
                f"{self.mean_without_best:+.2f}")


def fold_stability(scores: Sequence[float]) -> FoldStability:
    """The stability of fold scores; a ValueError for none or a non-finite one."""
    values = tuple(float(s) for s in scores)
    if not values:
        raise ValueError("no fold scores")
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"fold scores must be finite, got {values}")
    k = len(values)
    mean = sum(values) / k
    spread = math.sqrt(sum((v - mean) ** 2 for v in values) / (k - 1)) if k > 1 else 0.0
    best = max(range(k), key=lambda i: (values[i], -i))
    without = (sum(values) - values[best]) / (k - 1) if k > 1 else None
    carried = without is not None and mean > 0 and without <= 0
    return FoldStability(values, mean, spread, best, without, carried)


def fold_scores(metrics: Mapping[str, Any] | None, metric: str) -> list[float]:
    """The per-fold values of ``metric`` from an evaluation's metrics (``folds``); empty when
    the evaluation has none (failed, or an older results file)."""
    folds = (metrics or {}).get("folds") or []
    return [float(fold[metric]) for fold in folds if fold.get(metric) is not None]


def fold_trades(metrics: Mapping[str, Any] | None) -> list[int]:
    """The trades of each fold (``fold_trades``, else each fold's ``trades``)."""
    metrics = metrics or {}
    if metrics.get("fold_trades") is not None:
        return [int(t) for t in metrics["fold_trades"]]
    return [int(fold.get("trades", 0)) for fold in metrics.get("folds") or []]


def min_trades_of(results: Mapping[str, Any]) -> int:
    """The one small-sample threshold, shared by the report's flag and the deployment gate's
    holdout-trades criterion: ``deployment.min_holdout_trades`` when a config sets it, else
    ``reporting.min_trades`` (the default for older results)."""
    config = results.get("config") or {}
    gate = (config.get("deployment") or {}).get("min_holdout_trades")
    if gate is not None:
        return int(gate)
    return int((config.get("reporting") or {}).get("min_trades", DEFAULT_MIN_TRADES))
