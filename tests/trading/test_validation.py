"""Labels, holdout cut and purged walk-forward folds, worked by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cryptosweep.trading.labels import fixed_horizon_labels
from cryptosweep.trading.validation import Fold, holdout_split, walk_forward_folds


def _opens(values: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"open": values})


def test_fixed_horizon_labels_by_hand():
    # H = 2: label[t] compares open[t+3] with open[t+1]; 10 bps a side -> must beat 0.2 %
    ohlcv = _opens([50.0, 100.0, 100.0, 100.3, 100.1, 101.0, 99.0])
    label, label_end = fixed_horizon_labels(ohlcv, holding_period=2, fees_bps=10.0)
    # t=0: 100.3/100 = +0.3 % -> 1;  t=1: 100.1/100 = +0.1 % -> 0 (below the fees)
    # t=2: 101/100.3 = +0.7 % -> 1;  t=3: 99/100.1 < 0 -> 0;  t=4..6: open[t+3] is past the end
    np.testing.assert_array_equal(label, [1.0, 0.0, 1.0, 0.0, np.nan, np.nan, np.nan])
    np.testing.assert_array_equal(label_end, [3, 4, 5, 6, 7, 8, 9])
    assert label_end.dtype == np.int64
    without_fees, _ = fixed_horizon_labels(ohlcv, holding_period=2, fees_bps=0.0)
    np.testing.assert_array_equal(without_fees[:4], [1.0, 1.0, 1.0, 0.0])


def test_labels_ignore_the_first_open_and_everything_after_label_end():
    ohlcv = _opens([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    label, _ = fixed_horizon_labels(ohlcv, holding_period=1, fees_bps=0.0)
    changed = _opens([999.0, 2.0, 3.0, 4.0, 5.0, 0.5])  # open[0] and the last open differ
    changed_label, _ = fixed_horizon_labels(changed, holding_period=1, fees_bps=0.0)
    np.testing.assert_array_equal(label[:3], changed_label[:3])  # label_end[2] = 4
    assert changed_label[3] == 0.0 and label[3] == 1.0  # label_end[3] = 5 reads the change


@pytest.mark.parametrize("bad", [0, -1, 1.5])
def test_labels_reject_bad_holding_periods(bad):
    with pytest.raises(ValueError, match="holding_period"):
        fixed_horizon_labels(_opens([1.0, 2.0, 3.0]), holding_period=bad, fees_bps=0.0)


def test_holdout_split():
    assert holdout_split(100, 0.2) == 80
    assert holdout_split(100, 0.0) == 100
    assert holdout_split(9504, 0.2) == 9504 - 1900  # floor(1900.8) bars of holdout
    assert holdout_split(100, 0.29) == 71  # 100 * 0.29 = 28.999999999999996 in floats
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match="holdout_fraction"):
            holdout_split(100, bad)


def _positions(folds: list[Fold]) -> list[tuple[list[int], list[int]]]:
    return [(fold.train.tolist(), fold.test.tolist()) for fold in folds]


def test_walk_forward_12_bars_2_folds_horizon_2():
    # blocks [0..3] [4..7] [8..11]; label_end[t] = t + 3 (fixed_horizon_labels with H = 2)
    _, label_end = fixed_horizon_labels(_opens([1.0] * 12), holding_period=2, fees_bps=0.0)
    folds = walk_forward_folds(12, 2, label_end)
    assert _positions(folds) == [
        ([0], [4, 5, 6, 7]),  # bars 1, 2, 3 purged: label_end 4, 5, 6 >= 4
        ([0, 1, 2, 3, 4], [8, 9, 10, 11]),  # bars 5, 6, 7 purged: label_end 8, 9, 10 >= 8
    ]
    assert all(fold.train.dtype == np.int64 for fold in folds)


def test_walk_forward_13_bars_uneven_blocks_with_embargo():
    # blocks [0..4] [5..8] [9..12] (the first block takes the extra bar); label_end = t + 2
    label_end = np.arange(13) + 2
    assert _positions(walk_forward_folds(13, 2, label_end)) == [
        ([0, 1, 2], [5, 6, 7, 8]),
        ([0, 1, 2, 3, 4, 5, 6], [9, 10, 11, 12]),
    ]
    # embargo 3 also drops the 3 bars before each test block: [2, 3, 4] and [6, 7, 8]
    assert _positions(walk_forward_folds(13, 2, label_end, embargo_bars=3)) == [
        ([0, 1], [5, 6, 7, 8]),
        ([0, 1, 2, 3, 4, 5], [9, 10, 11, 12]),
    ]


def test_no_training_label_reaches_its_test_block():
    label_end = np.arange(1000) + 1 + 24
    folds = walk_forward_folds(1000, 4, label_end, embargo_bars=5)
    tested = np.concatenate([fold.test for fold in folds])
    assert tested.tolist() == list(range(200, 1000))  # blocks 1..4 of 200 bars each
    for fold in folds:
        assert label_end[fold.train].max() < fold.test[0]
        assert fold.train.max() < fold.test[0] - 5


def test_too_few_training_bars_is_an_error():
    label_end = np.arange(12) + 3
    with pytest.raises(ValueError, match=r"fold 0 keeps 1 training bars.*min_train_bars=2"):
        walk_forward_folds(12, 2, label_end, min_train_bars=2)
    with pytest.raises(ValueError, match="label_end has shape"):
        walk_forward_folds(12, 2, label_end[:-1])
    with pytest.raises(ValueError, match="n_folds"):
        walk_forward_folds(12, 0, label_end)
