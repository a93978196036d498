"""Walk-forward windows: where each window's in-sample and out-of-sample bars lie, and the
layouts that are refused; the process's track-record arithmetic."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from cryptosweep.core.errors import ConfigError
from cryptosweep.walkforward.analysis import (
    annualised_return,
    efficiency,
    parameter_paths,
    parameter_stability,
)
from cryptosweep.walkforward.windows import check_against_labels, plan_windows


def _never_leak(windows, n_bars, embargo):
    for before, after in itertools.pairwise(windows):
        assert before.oos_stop == after.oos_start  # consecutive, never overlapping
    for w in windows:
        assert 0 <= w.is_start < w.is_stop <= w.oos_start - embargo < w.oos_stop <= n_bars
    assert windows[-1].oos_stop == n_bars


def test_anchored_windows_grow_and_end_at_the_last_bar():
    windows = plan_windows(1000, 100, windows=4, embargo_bars=10)
    assert [(w.is_start, w.is_stop, w.oos_start, w.oos_stop) for w in windows] == [
        (0, 590, 600, 700), (0, 690, 700, 800), (0, 790, 800, 900), (0, 890, 900, 1000)]
    _never_leak(windows, 1000, 10)


def test_rolling_windows_keep_their_length():
    windows = plan_windows(1000, 100, windows=3, in_sample_bars=300, anchored=False,
                           embargo_bars=5)
    assert {w.in_sample_bars for w in windows} == {300}
    assert [w.is_start for w in windows] == [395, 495, 595]
    _never_leak(windows, 1000, 5)


def test_as_many_windows_as_fit_after_the_first_in_sample_period():
    windows = plan_windows(1000, 150, in_sample_bars=400, embargo_bars=20)
    assert len(windows) == 3 and windows[0].is_stop >= 400
    _never_leak(windows, 1000, 20)


def test_no_accepted_layout_overlaps():
    """"Overlapping anchored windows" (issue #26) over every layout of a grid: what is accepted
    has consecutive segments ending at the last bar, each after its own in-sample period and
    embargo; anchored in-sample periods start at bar 0, rolling ones keep their length."""
    accepted = 0
    for n_bars, length, embargo, windows, in_sample, anchored in itertools.product(
            (50, 1000, 1001), (1, 7, 100, 600), (0, 3, 99, 700), (None, 1, 2, 9),
            (None, 1, 40, 500), (True, False)):
        try:
            layout = plan_windows(n_bars, length, windows=windows, in_sample_bars=in_sample,
                                  anchored=anchored, embargo_bars=embargo)
        except ConfigError:
            continue
        accepted += 1
        _never_leak(layout, n_bars, embargo)
        assert all(w.out_of_sample_bars == length for w in layout)
        if anchored:
            assert {w.is_start for w in layout} == {0}
        else:
            assert {w.in_sample_bars for w in layout} == {in_sample}
    assert accepted > 100


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"windows": 10}, r"leave 0 in-sample bars"),
    ({"windows": 2, "in_sample_bars": 900, "anchored": False}, r"need 900"),
    # Anchored windows count themselves from in_sample_bars: with windows too, one was ignored.
    ({"windows": 2, "in_sample_bars": 300}, r"set windows or in_sample_bars, not both"),
    ({"in_sample_bars": 950}, r"hold no window"),
    ({}, r"set windows .* or in_sample_bars"),
    ({"windows": 2, "anchored": False}, r"in_sample_bars is required for rolling"),
])
def test_layouts_that_do_not_fit_the_data_are_refused(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        plan_windows(1000, 100, **kwargs)


def test_segments_must_hold_a_trade_and_labels_need_an_embargo():
    windows = plan_windows(1000, 20, windows=3, embargo_bars=24)
    with pytest.raises(ConfigError, match="shorter than the longest holding period"):
        check_against_labels(windows, 24, max_holding=24 + 1)
    no_embargo = plan_windows(1000, 100, windows=3)
    with pytest.raises(ConfigError, match="embargo_bars is 0 but labels span up to 24 bars"):
        check_against_labels(no_embargo, 0, max_holding=24)
    check_against_labels(no_embargo, 0, max_holding=1)
    # An embargo shorter than the labels still lets the last ones reach into the segment.
    with pytest.raises(ConfigError, match="embargo_bars is 10 but labels span up to 24 bars"):
        check_against_labels(plan_windows(1000, 100, windows=3, embargo_bars=10), 10,
                             max_holding=24)
    check_against_labels(plan_windows(1000, 100, windows=3, embargo_bars=24), 24,
                         max_holding=24)


def test_efficiency_and_annualised_return():
    flat = np.zeros(100)
    assert annualised_return(flat, 8760) == 0.0
    up = np.full(8760, 0.0001)
    assert annualised_return(up, 8760) == pytest.approx(1.0001 ** 8760 - 1)
    assert efficiency(0.1, 0.2) == 0.5 and efficiency(0.1, 0.0) is None
    assert efficiency(0.1, -0.2) is None


def test_an_annualised_return_past_the_largest_float_is_inf_not_an_error():
    # 30 % a bar over 4 hourly bars: 2.86 ** 2190 raised OverflowError (a traceback where a
    # traded segment or the track had such a move); inf, which efficiency leaves undefined.
    squeeze = np.full(4, 0.3)
    assert annualised_return(squeeze, 8760) == float("inf")
    assert efficiency(annualised_return(squeeze, 8760), 0.2) is None


def test_parameter_paths_and_stability():
    winners = [
        {"model": "lightgbm", "entry_model": {"num_leaves": 8}, "trading": {"threshold": 0.5}},
        {"model": "lightgbm", "entry_model": {"num_leaves": 32}, "trading": {"threshold": 0.5}},
        {"model": "xgboost", "entry_model": {"max_depth": 3}, "trading": {"threshold": 0.6}},
    ]
    paths = parameter_paths(winners)
    assert paths["model"] == ["lightgbm", "lightgbm", "xgboost"]
    assert paths["entry_model.num_leaves"] == [8, 32, None]
    stability = parameter_stability(paths, {"entry_model.num_leaves": (4, 36),
                                            "trading.threshold": (0.5, 0.7)})
    assert stability["model"]["changes"] == 1
    assert stability["entry_model.num_leaves"]["mean_step"] == pytest.approx(24 / 32)
    assert stability["trading.threshold"]["mean_step"] == pytest.approx((0 + 0.1 / 0.2) / 2)
