"""Combinatorial purged cross-validation: counts, purging and embargo by brute force, and the
path assembly of AFML Fig. 12.1."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from cryptosweep.trading.cpcv import (
    CPCVSplit,
    assemble_paths,
    cpcv_splits,
    group_bounds,
    iter_purged_splits,
    n_paths,
    purged_splits,
)


def _label_end(n_bars: int, seed: int = 0, longest: int = 7) -> np.ndarray:
    """Triple-barrier-like label ends: each label reads 1..longest bars past its own bar, some
    past the data (as labels.py gives the unfinished ones)."""
    rng = np.random.default_rng(seed)
    return np.arange(n_bars, dtype="int64") + rng.integers(1, longest + 1, size=n_bars)


@pytest.mark.parametrize(
    ("n_groups", "n_test_groups", "splits", "paths"),
    [(6, 2, 15, 5), (4, 2, 6, 3), (5, 2, 10, 4), (8, 3, 56, 21), (5, 1, 5, 1), (10, 4, 210, 84)],
)
def test_counts_of_splits_and_paths(n_groups, n_test_groups, splits, paths):
    # phi[N, k] = k/N * C(N, k); (6, 2) -> 15 splits, 5 paths is AFML 12.4.1's example
    assert n_paths(n_groups, n_test_groups) == paths
    assert paths == n_test_groups * math.comb(n_groups, n_test_groups) // n_groups
    result = cpcv_splits(60, n_groups, n_test_groups, _label_end(60, longest=2))
    assert len(result) == splits == math.comb(n_groups, n_test_groups)
    assert [s.test_groups for s in result] == list(
        itertools.combinations(range(n_groups), n_test_groups)
    )
    assert len(assemble_paths(result, n_groups, n_test_groups)) == paths


@pytest.mark.parametrize(("n_bars", "n_groups"), [(6, 6), (7, 3), (100, 6), (101, 7), (13, 5)])
def test_groups_are_contiguous_blocks_covering_every_bar(n_bars, n_groups):
    bounds = group_bounds(n_bars, n_groups)
    assert bounds[0][0] == 0 and bounds[-1][1] == n_bars
    assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))
    sizes = [stop - start for start, stop in bounds]
    assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)
    # each split tests exactly the bars of its groups
    for split in cpcv_splits(n_bars, n_groups, 2, np.arange(n_bars, dtype="int64")):
        expected = np.concatenate([np.arange(*bounds[g]) for g in split.test_groups])
        np.testing.assert_array_equal(split.test, expected)


def test_group_bounds_by_hand():
    assert group_bounds(10, 3) == [(0, 4), (4, 7), (7, 10)]
    assert group_bounds(6, 6) == [(g, g + 1) for g in range(6)]


def _forbidden(split: CPCVSplit, bounds, label_end, embargo):
    """Brute force: the bar windows a training label may not touch, per test group."""
    windows = []
    for g in split.test_groups:
        start, stop = bounds[g]
        reach = max(stop - 1, max(int(label_end[j]) for j in range(start, stop)))
        windows.append((start, reach + embargo))
    return windows


@pytest.mark.parametrize(
    ("n_bars", "n_groups", "n_test_groups", "embargo", "seed"),
    [(120, 6, 2, 0, 1), (120, 6, 2, 3, 2), (97, 5, 3, 2, 3), (64, 8, 1, 5, 4)],
)
def test_training_labels_never_touch_a_test_group_or_its_embargo(
    n_bars, n_groups, n_test_groups, embargo, seed
):
    label_end = _label_end(n_bars, seed)
    bounds = group_bounds(n_bars, n_groups)
    splits = cpcv_splits(n_bars, n_groups, n_test_groups, label_end, embargo_bars=embargo)
    for split in splits:
        windows = _forbidden(split, bounds, label_end, embargo)
        test = set(split.test.tolist())
        train = set(split.train.tolist())
        assert not train & test
        for i in range(n_bars):
            touches = any(i <= hi and label_end[i] >= lo for lo, hi in windows)
            if i in test:
                continue
            # purged or embargoed exactly when its label window meets a forbidden window
            assert (i in train) == (not touches), (split.test_groups, i)
        assert np.all(np.diff(split.train) > 0)


def test_purge_and_embargo_by_hand():
    # 12 bars, 3 groups of 4; every label reads 2 bars ahead: label_end[i] = i + 2
    label_end = np.arange(12, dtype="int64") + 2
    splits = cpcv_splits(12, 3, 1, label_end, embargo_bars=1)
    middle = splits[1]  # tests bars 4..7, whose labels read up to bar 9; embargo bar 10
    assert middle.test_groups == (1,)
    np.testing.assert_array_equal(middle.test, [4, 5, 6, 7])
    # bars 2, 3 read bar 4 (purged); 8, 9 start inside the test labels (purged); 10 embargoed
    np.testing.assert_array_equal(middle.train, [0, 1, 11])
    first = splits[0]  # tests 0..3, labels up to bar 5, embargo bar 6
    np.testing.assert_array_equal(first.train, [7, 8, 9, 10, 11])
    last = splits[2]  # tests 8..11: bars 6, 7 read bar 8
    np.testing.assert_array_equal(last.train, [0, 1, 2, 3, 4, 5])
    # without the embargo bar 10 trains again
    np.testing.assert_array_equal(cpcv_splits(12, 3, 1, label_end)[1].train, [0, 1, 10, 11])


@pytest.mark.parametrize(("n_groups", "n_test_groups"), [(6, 2), (4, 2), (7, 3), (5, 1), (6, 5)])
def test_every_path_covers_every_group_once_and_uses_each_prediction_once(n_groups, n_test_groups):
    n_bars = 10 * n_groups
    splits = cpcv_splits(n_bars, n_groups, n_test_groups, _label_end(n_bars, longest=3))
    paths = assemble_paths(splits, n_groups, n_test_groups)
    assert len(paths) == n_paths(n_groups, n_test_groups)
    used = []
    for path in paths:
        assert [group for _, group in path] == list(range(n_groups))
        for split_index, group in path:
            assert group in splits[split_index].test_groups
        used.extend(path)
    expected = {(i, g) for i, s in enumerate(splits) for g in s.test_groups}
    assert len(used) == len(set(used)) == len(expected)
    assert set(used) == expected
    # a path's test bars tile the whole series once
    for path in paths:
        bars = np.concatenate(
            [
                np.intersect1d(splits[i].test, np.arange(*group_bounds(n_bars, n_groups)[g]))
                for i, g in path
            ]
        )
        np.testing.assert_array_equal(bars, np.arange(n_bars))


def test_path_two_of_afml_figure_12_1():
    # AFML 12.4.1: "Path 2 is the result of combining forecasts from (G1,S2), (G2,S6),
    # (G3,S6), (G4,S7), (G5,S8) and (G6,S9)" (1-based groups and splits, N = 6, k = 2)
    splits = cpcv_splits(60, 6, 2, np.arange(60, dtype="int64"))
    paths = assemble_paths(splits, 6, 2)
    assert [(s + 1, g + 1) for s, g in paths[1]] == [
        (2, 1), (6, 2), (6, 3), (7, 4), (8, 5), (9, 6)
    ]  # fmt: skip
    # path 1 takes the first split testing each group
    assert [(s + 1, g + 1) for s, g in paths[0]] == [
        (1, 1), (1, 2), (2, 3), (3, 4), (4, 5), (5, 6)
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"n_groups": 1, "n_test_groups": 1}, "n_groups"),
        ({"n_groups": 4, "n_test_groups": 4}, "n_test_groups"),
        ({"n_groups": 4, "n_test_groups": 5}, "n_test_groups"),
        ({"n_groups": 4, "n_test_groups": 0}, "n_test_groups"),
        ({"n_groups": 4.5, "n_test_groups": 2}, "n_groups"),
        ({"n_groups": 30, "n_test_groups": 2}, "n_bars"),
        ({"n_groups": 4, "n_test_groups": 2, "embargo_bars": -1}, "embargo_bars"),
        ({"n_groups": 4, "n_test_groups": 2, "min_train_bars": 0}, "min_train_bars"),
        ({"n_groups": 4, "n_test_groups": 3, "min_train_bars": 10}, "min_train_bars"),
    ],
)
def test_bad_arguments_raise(kwargs, word):
    with pytest.raises(ValueError, match=word):
        cpcv_splits(20, label_end=np.arange(20, dtype="int64") + 1, **kwargs)


def test_bad_label_end_raises():
    with pytest.raises(ValueError, match="label_end"):
        cpcv_splits(20, 4, 2, np.arange(19, dtype="int64"))
    with pytest.raises(ValueError, match="label_end"):
        cpcv_splits(20, 4, 2, np.arange(20, dtype="float64"))
    ends = np.arange(20, dtype="int64")
    ends[5] = 4  # ends before its own bar
    with pytest.raises(ValueError, match=r"label_end\[5\]"):
        cpcv_splits(20, 4, 2, ends)


def test_n_paths_and_assembly_reject_bad_arguments():
    with pytest.raises(ValueError, match="n_test_groups"):
        n_paths(6, 6)
    with pytest.raises(ValueError, match="n_groups"):
        n_paths(1, 1)
    splits = cpcv_splits(30, 6, 2, np.arange(30, dtype="int64"))
    with pytest.raises(ValueError, match="splits"):
        assemble_paths(splits[:-1], 6, 2)
    with pytest.raises(ValueError, match="splits"):
        assemble_paths([*splits[:-1], splits[0]], 6, 2)
    with pytest.raises(ValueError, match="splits"):
        assemble_paths(splits, 6, 3)


def test_splits_one_at_a_time_are_the_same_and_bad_arguments_raise_at_the_call():
    """``iter_purged_splits`` (what the objective and the preflight use, never holding all
    C(N, k) training sets) gives ``purged_splits``' splits in order, and refuses bad
    arguments when called, not at the first split."""
    label_end = _label_end(50, longest=4)
    lazy = iter_purged_splits(50, 5, 2, label_end, embargo_bars=2)
    assert iter(lazy) is lazy
    for one, other in itertools.zip_longest(lazy, purged_splits(50, 5, 2, label_end, 2)):
        assert one.test_groups == other.test_groups
        np.testing.assert_array_equal(one.train, other.train)
        np.testing.assert_array_equal(one.test, other.test)
    with pytest.raises(ValueError, match="n_test_groups"):
        iter_purged_splits(50, 5, 5, label_end)
    with pytest.raises(ValueError, match="embargo_bars"):
        iter_purged_splits(50, 5, 2, label_end, embargo_bars=-1)
