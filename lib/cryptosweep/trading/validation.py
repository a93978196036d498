"""Holdout cut and purged walk-forward cross-validation for time series.

Purging and embargo follow López de Prado (2018), *Advances in Financial Machine Learning*
(AFML), ch. 7.4: a training sample whose label uses information from the test period is
removed (purged), and a margin of bars before the test block can be dropped too (embargo), so
serially correlated features cannot carry test information into training.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Fold:
    """Integer bar positions of one walk-forward fold (both ascending)."""

    train: np.ndarray
    test: np.ndarray


def holdout_split(n_bars: int, holdout_fraction: float) -> int:
    """The first bar position of the holdout: the most recent ``floor(n_bars * fraction)``
    bars. ``holdout_fraction`` in ``[0, 1)``; 0 gives ``n_bars`` (no holdout)."""
    if n_bars < 0:
        raise ValueError(f"n_bars must be >= 0, got {n_bars}")
    if not 0.0 <= holdout_fraction < 1.0:
        raise ValueError(f"holdout_fraction must be in [0, 1), got {holdout_fraction}")
    n_holdout = math.floor(n_bars * holdout_fraction + 1e-9)
    return n_bars - n_holdout


def walk_forward_folds(
    n_bars: int,
    n_folds: int,
    label_end: np.ndarray,
    embargo_bars: int = 0,
    min_train_bars: int = 1,
) -> list[Fold]:
    """Expanding-window walk-forward folds with purging and embargo (AFML ch. 7.4).

    ``[0, n_bars)`` is cut into ``n_folds + 1`` contiguous blocks of near-equal size (the first
    ``n_bars % (n_folds + 1)`` blocks one bar longer). Fold ``k`` (0-based) tests on block
    ``k + 1`` and trains on blocks ``0..k``, less

    * every training bar ``i`` with ``label_end[i] >= test_start`` (purge: its label reads the
      test period), and
    * the ``embargo_bars`` bars right before ``test_start`` (embargo). AFML embargoes the bars
      *after* a test block; with training always before the test block, the margin goes there.

    Raises ``ValueError`` when a fold keeps fewer than ``min_train_bars`` training bars.
    """
    label_end = np.asarray(label_end)
    _check_fold_args(n_bars, n_folds, label_end, embargo_bars, min_train_bars)
    folds = []
    for k, (test_start, test_stop) in enumerate(test_blocks(n_bars, n_folds)):
        test = np.arange(test_start, test_stop, dtype="int64")
        train = np.arange(test_start, dtype="int64")
        keep = (label_end[:test_start] < test_start) & (train < test_start - embargo_bars)
        train = train[keep]
        if len(train) < min_train_bars:
            raise ValueError(
                f"fold {k} keeps {len(train)} training bars after purging and embargo, fewer "
                f"than min_train_bars={min_train_bars} ({n_bars} bars in {n_folds} folds)"
            )
        folds.append(Fold(train=train, test=test))
    return folds


def test_blocks(n_bars: int, n_folds: int) -> list[tuple[int, int]]:
    """``(start, stop)`` bar positions of each fold's test block (``stop`` excluded): blocks
    ``1..n_folds`` of ``[0, n_bars)`` cut into ``n_folds + 1`` near-equal blocks, the first
    ``n_bars % (n_folds + 1)`` one bar longer (as :func:`walk_forward_folds` tests on). They do
    not depend on labels, so reports can date them without the trial."""
    if n_folds < 1 or n_bars < n_folds + 1:
        raise ValueError(f"{n_bars} bars cannot make {n_folds + 1} blocks for {n_folds} folds")
    size, longer = divmod(n_bars, n_folds + 1)
    starts = [k * size + min(k, longer) for k in range(n_folds + 2)]
    return [(starts[k], starts[k + 1]) for k in range(1, n_folds + 1)]


def _check_fold_args(
    n_bars: int, n_folds: int, label_end: np.ndarray, embargo_bars: int, min_train_bars: int
) -> None:
    if n_folds < 1:
        raise ValueError(f"n_folds must be >= 1, got {n_folds}")
    if n_bars < n_folds + 1:
        raise ValueError(f"{n_bars} bars cannot make {n_folds + 1} blocks for {n_folds} folds")
    if label_end.shape != (n_bars,):
        raise ValueError(f"label_end has shape {label_end.shape}, expected ({n_bars},)")
    if embargo_bars < 0:
        raise ValueError(f"embargo_bars must be >= 0, got {embargo_bars}")
    if min_train_bars < 1:
        raise ValueError(f"min_train_bars must be >= 1, got {min_train_bars}")
