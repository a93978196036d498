"""Funding and borrow cost of a short per bar, worked by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from cryptosweep.trading.funding import funding_cost_per_bar


def test_constant_rate_on_hourly_bars():
    # 0.01 % per 8 hours: an hour is 1/8 of it, 0.00125 % = 1.25e-5
    times = pd.date_range("2024-01-01", periods=24, freq="h")
    cost = funding_cost_per_bar(times, rate_per_8h=1e-4)
    assert cost.shape == (24,) and cost.dtype == np.float64
    np.testing.assert_allclose(cost, 1.25e-5, rtol=1e-15)
    # a day of hourly bars pays three 8-hour periods
    assert cost.sum() == pytest.approx(3e-4, rel=1e-12)


def test_constant_rate_on_15_minute_bars():
    # a quarter hour is 1/32 of 8 hours: 1e-4 / 32 = 3.125e-6
    times = pd.date_range("2024-01-01", periods=96, freq="15min")
    np.testing.assert_allclose(funding_cost_per_bar(times, rate_per_8h=1e-4), 3.125e-6)
    # a negative rate: the short is paid
    np.testing.assert_allclose(funding_cost_per_bar(times, rate_per_8h=-2e-4), -6.25e-6)


def test_gaps_do_not_change_a_bars_duration():
    # bars at 00, 01, 05, 06: the median step is 1 hour; the 4-hour hole is never charged
    times = pd.DatetimeIndex([f"2024-01-01 0{h}:00" for h in (0, 1, 5, 6)])
    np.testing.assert_allclose(funding_cost_per_bar(times, rate_per_8h=8e-4), 1e-4)
    # an explicit bar length wins over the median step
    np.testing.assert_allclose(funding_cost_per_bar(times, 8e-4, bar_seconds=1800), 5e-5)


def test_rate_series_forward_filled_from_the_past_only():
    # rates take effect at 00:00 (0.01 %), 08:00 (-0.02 %) and 16:00 (0.03 %); hourly bars from
    # 22:00 the day before to 17:00
    rates = pd.Series(
        [1e-4, -2e-4, 3e-4],
        index=pd.DatetimeIndex(["2024-01-02 00:00", "2024-01-02 08:00", "2024-01-02 16:00"]),
    )
    times = pd.date_range("2024-01-01 22:00", "2024-01-02 17:00", freq="h")
    cost = funding_cost_per_bar(times, rate_series=rates)
    assert len(cost) == 20
    assert np.isnan(cost[:2]).all()  # 22:00 and 23:00: no rate yet, none borrowed from 00:00
    np.testing.assert_allclose(cost[2:10], 1e-4 / 8)  # 00:00 .. 07:00
    np.testing.assert_allclose(cost[10:18], -2e-4 / 8)  # 08:00 .. 15:00 (08:00 uses its own)
    np.testing.assert_allclose(cost[18:], 3e-4 / 8)  # 16:00, 17:00


def test_rate_series_between_bar_times_and_on_15_minute_bars():
    # a rate stamped 00:10 is not used by the 00:00 bar, only from 00:15 on
    rates = pd.Series([4e-4, 8e-4], index=pd.DatetimeIndex(["2023-12-31", "2024-01-01 00:10"]))
    times = pd.date_range("2024-01-01 00:00", periods=3, freq="15min")
    np.testing.assert_allclose(
        funding_cost_per_bar(times, rate_series=rates), [4e-4 / 32, 8e-4 / 32, 8e-4 / 32]
    )


def test_rate_series_with_time_zones():
    index = pd.date_range("2024-01-01", periods=2, freq="8h", tz="UTC")
    rates = pd.Series([1e-4, 2e-4], index=index)
    # 09:00 Berlin (UTC+1 in winter) is 08:00 UTC: the second rate
    times = pd.date_range("2024-01-01 08:00", periods=2, freq="h", tz="Europe/Berlin")
    np.testing.assert_allclose(funding_cost_per_bar(times, rate_series=rates), [1e-4 / 8, 2e-4 / 8])
    with pytest.raises(ValueError, match="time-zone"):
        funding_cost_per_bar(times.tz_localize(None), rate_series=rates)


def _rates(values: list[float], days: list[str] | None = None) -> pd.Series:
    index = pd.DatetimeIndex(days or [f"2024-01-0{i + 1}" for i in range(len(values))])
    return pd.Series(values, index=index)


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({}, "exactly one"),
        ({"rate_per_8h": 1e-4, "rate_series": _rates([1e-4])}, "exactly one"),
        ({"rate_per_8h": math.nan}, "rate_per_8h"),
        ({"rate_per_8h": math.inf}, "rate_per_8h"),
        ({"rate_per_8h": 1e-4, "bar_seconds": 0}, "bar_seconds"),
        ({"rate_series": pd.Series([1e-4, 2e-4])}, "DatetimeIndex"),
        ({"rate_series": _rates([1e-4, np.nan])}, "finite"),
        ({"rate_series": _rates([1e-4, 2e-4], ["2024-01-02", "2024-01-01"])}, "strictly"),
    ],
)
def test_bad_arguments_raise(kwargs, word):
    times = pd.date_range("2024-01-01", periods=4, freq="h")
    with pytest.raises(ValueError, match=word):
        funding_cost_per_bar(times, **kwargs)


def test_bar_times_are_checked_and_one_bar_needs_bar_seconds():
    with pytest.raises(ValueError, match="bar_times"):
        funding_cost_per_bar(np.array([1.0, 2.0]), rate_per_8h=1e-4)
    with pytest.raises(ValueError, match="bar_seconds"):
        funding_cost_per_bar(pd.DatetimeIndex(["2024-01-01"]), rate_per_8h=1e-4)
    one = funding_cost_per_bar(pd.DatetimeIndex(["2024-01-01"]), 1e-4, bar_seconds=3600)
    np.testing.assert_allclose(one, [1.25e-5])
