"""Combinatorial purged cross-validation (CPCV) and its backtest paths.

López de Prado (2018), *Advances in Financial Machine Learning* (AFML), ch. 12.4: the bars are
cut into ``N`` contiguous groups; every choice of ``k`` of them is one split (the ``k`` groups
are tested, the other ``N - k`` trained on), ``C(N, k)`` splits in all. Each group is tested in
``C(N - 1, k - 1)`` splits, so the test predictions can be stitched into

    ``φ[N, k] = k / N · C(N, k)``

complete backtest paths (AFML eq. in 12.4.1), each covering every bar once. Training sets are
purged and embargoed as in AFML ch. 7.4 (the conventions of
:mod:`cryptosweep.trading.validation`: bar positions, and ``label_end[i]``, the last bar whose
information label ``i`` uses, as :mod:`cryptosweep.trading.labels` returns it).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CPCVSplit:
    """One CPCV split: the ids of its test groups (ascending), and the integer bar positions it
    trains and tests on (both ascending)."""

    test_groups: tuple[int, ...]
    train: np.ndarray
    test: np.ndarray


def group_bounds(n_bars: int, n_groups: int) -> list[tuple[int, int]]:
    """``(start, stop)`` bar positions (``stop`` excluded) of the ``n_groups`` contiguous groups
    of ``[0, n_bars)``: near-equal, the first ``n_bars % n_groups`` one bar longer (the rule of
    :func:`cryptosweep.trading.validation.test_blocks`)."""
    _check_groups(n_bars, n_groups)
    size, longer = divmod(n_bars, n_groups)
    starts = [g * size + min(g, longer) for g in range(n_groups + 1)]
    return [(starts[g], starts[g + 1]) for g in range(n_groups)]


def n_paths(n_groups: int, n_test_groups: int) -> int:
    """``φ[N, k] = k / N · C(N, k)`` (AFML 12.4.1): the number of backtest paths CPCV yields,
    which equals ``C(N - 1, k - 1)``, the number of splits that test any one group. E.g.
    ``φ[6, 2] = 2/6 · 15 = 5``."""
    _check_combination(n_groups, n_test_groups)
    paths, remainder = divmod(n_test_groups * math.comb(n_groups, n_test_groups), n_groups)
    assert remainder == 0  # k · C(N, k) = N · C(N - 1, k - 1)
    return paths


def cpcv_splits(
    n_bars: int,
    n_groups: int,
    n_test_groups: int,
    label_end: np.ndarray,
    embargo_bars: int = 0,
    *,
    min_train_bars: int = 1,
) -> list[CPCVSplit]:
    """The ``C(N, k)`` purged and embargoed CPCV splits (AFML ch. 12.4, purging and embargo of
    ch. 7.4), in lexicographic order of their test groups (``(0, 1), (0, 2), …``, the order of
    AFML Fig. 12.1's split numbers).

    ``[0, n_bars)`` is cut into ``n_groups`` groups by :func:`group_bounds`. A split tests on
    every bar of its ``n_test_groups`` groups. For a test group ``[s, e)`` let ``E = max(e - 1,
    max(label_end[s:e]))``, the last bar any of its labels reads. A bar ``i`` outside the test
    groups trains unless, for some test group, its label window ``[i, label_end[i]]`` meets

    * ``[s, E]`` (purge, AFML 7.4.1: the training label overlaps a test label, from either
      side), or
    * ``[E + 1, E + embargo_bars]`` (embargo, AFML 7.4.2: the bars right after the test
      labels' end). AFML snippet 7.3 resumes training at bar ``E + embargo_bars`` itself; with
      no embargo that keeps a label starting on bar ``E``, an overlap by 7.4.1's inclusive
      definition, so here training resumes one bar later.

    In short ``i`` is dropped when ``i <= E + embargo_bars and label_end[i] >= s``. Every
    training label therefore ends before each test group starts, or starts after the embargo
    that follows it.

    Args:
        n_bars: number of bars (``>= n_groups``).
        n_groups: ``N``, at least 2.
        n_test_groups: ``k``, in ``[1, N)``.
        label_end: int array of shape ``(n_bars,)``; ``label_end[i] >= i`` (it may lie past the
            data, as for the unfinished labels of :mod:`cryptosweep.trading.labels`).
        embargo_bars: bars embargoed after each test group's last label end (``>= 0``).
        min_train_bars: ``ValueError`` when a split keeps fewer training bars.
    """
    if (
        isinstance(min_train_bars, bool)
        or int(min_train_bars) != min_train_bars
        or min_train_bars < 1
    ):
        raise ValueError(f"min_train_bars must be an integer >= 1, got {min_train_bars!r}")
    splits = purged_splits(n_bars, n_groups, n_test_groups, label_end, embargo_bars)
    for split in splits:
        if len(split.train) < min_train_bars:
            raise ValueError(
                f"split with test groups {split.test_groups} keeps {len(split.train)} training "
                f"bars after purging and embargo, fewer than min_train_bars={min_train_bars}"
            )
    return splits


def purged_splits(
    n_bars: int,
    n_groups: int,
    n_test_groups: int,
    label_end: np.ndarray,
    embargo_bars: int = 0,
) -> list[CPCVSplit]:
    """The splits of :func:`cpcv_splits` (same arguments, same rules) with no minimum number of
    training bars: a split may train on none. For callers that judge the training sets
    themselves (the preflight counts their bars with complete features)."""
    return list(iter_purged_splits(n_bars, n_groups, n_test_groups, label_end, embargo_bars))


def iter_purged_splits(
    n_bars: int,
    n_groups: int,
    n_test_groups: int,
    label_end: np.ndarray,
    embargo_bars: int = 0,
) -> Iterator[CPCVSplit]:
    """:func:`purged_splits` one split at a time, the arguments checked at the call (a
    ``ValueError`` before the first split). A list of the ``C(N, k)`` splits holds
    ``C(N, k) · n_bars`` bar positions: 16 groups, 8 tested, took 1 GB for 9,500 hourly bars
    and would take tens of GB for a year of minute bars; one at a time, one split's worth."""
    _check_combination(n_groups, n_test_groups)
    bounds = group_bounds(n_bars, n_groups)
    label_end = _check_label_end(label_end, n_bars)
    if isinstance(embargo_bars, bool) or int(embargo_bars) != embargo_bars or embargo_bars < 0:
        raise ValueError(f"embargo_bars must be an integer >= 0, got {embargo_bars!r}")
    # Per group: where it starts, and where its forbidden window (test labels + embargo) ends.
    window_end = [
        max(stop - 1, int(label_end[start:stop].max())) + int(embargo_bars)
        for start, stop in bounds
    ]
    return _splits(n_bars, n_groups, n_test_groups, label_end, bounds, window_end)


def _splits(n_bars: int, n_groups: int, n_test_groups: int, label_end: np.ndarray,
            bounds: list[tuple[int, int]], window_end: list[int]) -> Iterator[CPCVSplit]:
    bars = np.arange(n_bars, dtype="int64")
    for groups in itertools.combinations(range(n_groups), n_test_groups):
        in_test = np.zeros(n_bars, dtype=bool)
        dropped = np.zeros(n_bars, dtype=bool)
        for g in groups:
            start, stop = bounds[g]
            in_test[start:stop] = True
            dropped |= (bars <= window_end[g]) & (label_end >= start)
        yield CPCVSplit(test_groups=groups, train=bars[~in_test & ~dropped], test=bars[in_test])


def assemble_paths(
    splits: Sequence[CPCVSplit], n_groups: int, n_test_groups: int
) -> list[list[tuple[int, int]]]:
    """The ``φ[N, k]`` backtest paths of AFML 12.4.1 (Fig. 12.1): for path ``p``, the list of
    ``(split index, group)`` pairs, one per group in time order, naming the split whose test
    predictions of that group the path uses.

    Allocation: the splits that test group ``g``, taken in the order of ``splits``, go to paths
    ``0, 1, …, φ - 1`` in turn. So every ``(split, group)`` pair with ``group`` in the split's
    test groups is used exactly once across the paths. With the lexicographic order of
    :func:`cpcv_splits` this reproduces AFML Fig. 12.1: for ``N = 6, k = 2`` the book's path 2
    is ``(G1,S2), (G2,S6), (G3,S6), (G4,S7), (G5,S8), (G6,S9)`` (1-based), here path 1 with
    split indices ``1, 5, 5, 6, 7, 8``.

    ``splits`` must test every ``k``-combination of the ``N`` groups exactly once.
    """
    n_path = n_paths(n_groups, n_test_groups)
    expected = set(itertools.combinations(range(n_groups), n_test_groups))
    seen = [tuple(int(g) for g in split.test_groups) for split in splits]
    if len(seen) != len(expected) or set(seen) != expected:
        raise ValueError(
            f"splits must test each of the {len(expected)} combinations of {n_test_groups} of "
            f"{n_groups} groups exactly once (as cpcv_splits returns them), got {len(seen)} "
            "splits"
        )
    testing: list[list[int]] = [[] for _ in range(n_groups)]
    for index, groups in enumerate(seen):
        for g in groups:
            testing[g].append(index)
    return [[(testing[g][p], g) for g in range(n_groups)] for p in range(n_path)]


def _check_groups(n_bars: int, n_groups: int) -> None:
    if isinstance(n_groups, bool) or int(n_groups) != n_groups or n_groups < 2:
        raise ValueError(f"n_groups must be an integer >= 2, got {n_groups!r}")
    if isinstance(n_bars, bool) or int(n_bars) != n_bars or n_bars < n_groups:
        raise ValueError(f"n_bars must be an integer >= n_groups={n_groups}, got {n_bars!r}")


def _check_combination(n_groups: int, n_test_groups: int) -> None:
    if isinstance(n_groups, bool) or int(n_groups) != n_groups or n_groups < 2:
        raise ValueError(f"n_groups must be an integer >= 2, got {n_groups!r}")
    if isinstance(n_test_groups, bool) or int(n_test_groups) != n_test_groups:
        raise ValueError(f"n_test_groups must be an integer, got {n_test_groups!r}")
    if not 1 <= n_test_groups < n_groups:
        raise ValueError(
            f"n_test_groups must be in [1, n_groups={n_groups}) (something must be left to "
            f"train on), got {n_test_groups}"
        )


def _check_label_end(label_end: np.ndarray, n_bars: int) -> np.ndarray:
    label_end = np.asarray(label_end)
    if label_end.shape != (n_bars,):
        raise ValueError(f"label_end has shape {label_end.shape}, expected ({n_bars},)")
    if not np.issubdtype(label_end.dtype, np.integer):
        raise ValueError(f"label_end must hold integer bar positions, got dtype {label_end.dtype}")
    label_end = label_end.astype("int64")
    before = np.flatnonzero(label_end < np.arange(n_bars))
    if len(before):
        i = int(before[0])
        raise ValueError(
            f"label_end must be >= each label's own bar, got label_end[{i}] = {label_end[i]}"
        )
    return label_end
