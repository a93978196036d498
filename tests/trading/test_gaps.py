"""Segments of candles with gaps, and the last bar before each gap."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cryptosweep.trading.gaps import as_epoch_ns, last_bar_before_gap, segment_ids


def _hourly_with_gaps() -> pd.DatetimeIndex:
    # 00:00-03:00 (4 bars), a missing 04:00, 05:00-06:00 (2 bars), 8 hours missing,
    # 15:00 (1 bar), a missing 16:00, 17:00-19:00 (3 bars)
    hours = [0, 1, 2, 3, 5, 6, 15, 17, 18, 19]
    return pd.DatetimeIndex([pd.Timestamp("2024-03-01") + pd.Timedelta(hours=h) for h in hours])


def test_segments_and_last_bars_by_hand():
    times = _hourly_with_gaps()
    ids = segment_ids(times, 3600)
    np.testing.assert_array_equal(ids, [0, 0, 0, 0, 1, 1, 2, 3, 3, 3])
    assert ids.dtype == np.int64
    last = last_bar_before_gap(times, 3600)
    np.testing.assert_array_equal(last, [3, 3, 3, 3, 5, 5, 6, 9, 9, 9])
    assert last.dtype == np.int64


def test_a_longer_bar_interval_bridges_the_short_gaps():
    # read as 2-hour bars, steps of 2 hours are contiguous; only the 9-hour hole splits
    times = _hourly_with_gaps()
    np.testing.assert_array_equal(segment_ids(times, 7200), [0, 0, 0, 0, 0, 0, 1, 1, 1, 1])
    np.testing.assert_array_equal(last_bar_before_gap(times, 7200), [5] * 6 + [9] * 4)


def test_no_gap_is_one_segment_and_exactly_one_interval_is_contiguous():
    times = pd.date_range("2024-01-01", periods=96, freq="15min")
    np.testing.assert_array_equal(segment_ids(times, 900), np.zeros(96))
    np.testing.assert_array_equal(last_bar_before_gap(times, 900), np.full(96, 95))
    # one second more than a bar is a gap
    shifted = times.insert(96, times[-1] + pd.Timedelta(seconds=901))
    assert segment_ids(shifted, 900)[-1] == 1
    assert last_bar_before_gap(shifted, 900)[0] == 95


def test_time_zones_and_input_kinds():
    times = _hourly_with_gaps()
    expected = segment_ids(times, 3600)
    np.testing.assert_array_equal(segment_ids(times.tz_localize("Europe/Berlin"), 3600), expected)
    np.testing.assert_array_equal(segment_ids(times.to_numpy(), 3600), expected)
    np.testing.assert_array_equal(segment_ids(pd.Series(times), 3600), expected)
    np.testing.assert_array_equal(segment_ids(list(times), 3600), expected)
    # microsecond resolution is read in nanoseconds all the same
    np.testing.assert_array_equal(segment_ids(times.as_unit("us"), 3600), expected)


def test_a_trade_capped_at_the_last_bar_before_a_gap():
    # how a simulation uses it: a 3-bar holding period entered at bar 2 would run to bar 5,
    # through the hole after bar 3; the cap closes it at bar 3
    times = _hourly_with_gaps()
    last = last_bar_before_gap(times, 3600)
    entry, holding = 2, 3
    assert min(entry + holding, last[entry]) == 3
    assert min(7 + 1, last[7]) == 8  # inside a segment nothing changes


def test_empty_and_single_bar():
    empty = pd.DatetimeIndex([])
    assert len(segment_ids(empty, 60)) == 0
    assert len(last_bar_before_gap(empty, 60)) == 0
    one = pd.DatetimeIndex(["2024-01-01"])
    np.testing.assert_array_equal(segment_ids(one, 60), [0])
    np.testing.assert_array_equal(last_bar_before_gap(one, 60), [0])


@pytest.mark.parametrize(
    ("times", "seconds", "word"),
    [
        (pd.DatetimeIndex(["2024-01-01 01:00", "2024-01-01 00:00"]), 3600, "strictly"),
        (pd.DatetimeIndex(["2024-01-01 01:00", "2024-01-01 01:00"]), 3600, "strictly"),
        (pd.DatetimeIndex(["2024-01-01", None]), 3600, "NaT"),
        (np.array([0, 3600]), 3600, "datetimes"),
        (pd.Series([0.0, 1.0]), 3600, "datetimes"),
        (["not a time", "x"], 3600, "datetimes"),
        (pd.DatetimeIndex(["2024-01-01"]), 0, "bar_seconds"),
        (pd.DatetimeIndex(["2024-01-01"]), float("nan"), "bar_seconds"),
    ],
)
def test_bad_arguments_raise(times, seconds, word):
    for function in (segment_ids, last_bar_before_gap):
        with pytest.raises(ValueError, match=word):
            function(times, seconds)


def test_as_epoch_ns_names_its_argument():
    with pytest.raises(ValueError, match="rate_times"):
        as_epoch_ns(np.array([1, 2]), "rate_times")
    assert as_epoch_ns(pd.DatetimeIndex(["1970-01-01 00:00:01"]), "t").tolist() == [10**9]
