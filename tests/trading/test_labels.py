"""Triple-barrier labels (AFML ch. 3.4) worked by hand, and agreement with ``simulate``."""

from __future__ import annotations

import numpy as np
import pytest

from cryptosweep.trading.backtest import simulate
from cryptosweep.trading.labels import triple_barrier_labels


def _market(seed, n):
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.r_[100.0, close[:-1]]
    gaps = rng.random(n) < 0.05
    open_[gaps] *= np.exp(rng.normal(0, 0.03, gaps.sum()))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.008, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.008, n)))
    return open_, high, low, close


HAND = (
    np.array([100, 100, 102, 104, 101, 100, 100, 100.1]),  # open
    np.array([100, 101, 106, 104, 101, 100, 100, 100.1]),  # high
    np.array([100, 100, 101, 101, 94, 100, 100, 100.1]),  # low
    np.array([100, 101, 104, 102, 100, 100, 100, 100.1]),  # close
)


def test_triple_barrier_labels_by_hand():
    label, label_end = triple_barrier_labels(
        *HAND, take_profit=0.05, stop_loss=0.05, max_holding=2, fees_bps=10.0
    )
    # t=0: long at open[1] = 100, target 105 reached by bar 2's high (106)     -> 1, ends 2
    # t=1: long at 102 (target 107.1, stop 96.9), nothing touched in bars 2-3,
    #      out at open[4] = 101                                                -> 0, ends 4
    # t=2: long at 104, stop 98.8 reached by bar 4's low (94)                  -> 0, ends 4
    # t=3: long at 101, the entry bar 4 itself falls to 94 < stop 95.95        -> 0, ends 4
    # t=4: long at 100, out at open[7] = 100.1: +0.1 % does not pay 0.2 % fees -> 0, ends 7
    # t=5: long at 100, nothing touched, the vertical barrier (bar 8) is past the data -> NaN
    # t=6, t=7: likewise (the last bar has no next open)                       -> NaN
    np.testing.assert_array_equal(label, [1, 0, 0, 0, 0, np.nan, np.nan, np.nan])
    np.testing.assert_array_equal(label_end, [2, 4, 4, 4, 7, 8, 9, 10])
    assert label.dtype == np.float64 and label_end.dtype == np.int64
    free, _ = triple_barrier_labels(
        *HAND, take_profit=0.05, stop_loss=0.05, max_holding=2, fees_bps=0.0
    )
    assert free[4] == 1.0  # without fees the +0.1 % pays
    # 60 bps of slippage a side: t=0 buys at 100.6, target 105.63 still touched (106), but
    # sold at 105.63 * 0.994 = 104.996..., still a gain
    slipped, ends = triple_barrier_labels(
        *HAND, take_profit=0.05, stop_loss=0.05, max_holding=2, fees_bps=10.0, slippage_bps=60.0
    )
    assert slipped[0] == 1.0 and ends[0] == 2


def test_a_barrier_touched_before_the_end_gives_a_label():
    # the vertical barrier is past the data, but the stop is touched before: a finished trade
    open_ = np.array([100.0, 100, 100, 100])
    low = np.array([100.0, 100, 90, 100])
    label, label_end = triple_barrier_labels(
        open_, open_, low, open_, take_profit=0.05, stop_loss=0.05, max_holding=10, fees_bps=0.0
    )
    np.testing.assert_array_equal(label, [0.0, 0.0, np.nan, np.nan])
    np.testing.assert_array_equal(label_end, [2, 2, 13, 14])


@pytest.mark.parametrize(
    ("max_holding", "take_profit", "stop_loss", "slippage_bps"),
    [(1, 0.01, 0.01, 0.0), (6, 0.02, 0.01, 5.0), (24, 0.03, 0.02, 0.0), (48, 0.1, 0.1, 20.0)],
)
def test_labels_agree_with_simulate_on_a_lone_entry(max_holding, take_profit, stop_loss,
                                                    slippage_bps):  # fmt: skip
    n = 250
    bars = _market(max_holding, n)
    kw = dict(take_profit=take_profit, stop_loss=stop_loss, fees_bps=10.0,
              slippage_bps=slippage_bps)  # fmt: skip
    label, label_end = triple_barrier_labels(*bars, max_holding=max_holding, **kw)
    finished = 0
    for t in range(n):
        signal = np.zeros(n, dtype=np.int8)
        signal[t] = 1
        result = simulate(*bars, signal, holding_period=max_holding, **kw)
        if t == n - 1:
            assert result.trades == []
            assert np.isnan(label[t]) and label_end[t] == t + 1 + max_holding
            continue
        (trade,) = result.trades
        if trade.exit_reason == "end":
            assert np.isnan(label[t]) and label_end[t] == t + 1 + max_holding
        else:
            finished += 1
            assert label[t] == float(trade.net_return > 0)
            assert label_end[t] == trade.exit_bar
    assert finished > n // 2
    assert 0 < np.nanmean(label) < 1


def test_labels_read_only_bars_from_the_entry_to_label_end():
    bars = _market(3, 200)
    kw = dict(take_profit=0.02, stop_loss=0.015, max_holding=12, fees_bps=10.0)
    label, label_end = triple_barrier_labels(*bars, **kw)
    rng = np.random.default_rng(0)
    for t in (5, 50, 120, 170):
        assert np.isfinite(label[t])
        changed = [a.copy() for a in bars]
        for a in changed:  # scramble every bar but t + 1 .. label_end[t]
            keep = np.zeros(len(a), dtype=bool)
            keep[t + 1 : label_end[t] + 1] = True
            a[~keep] *= rng.uniform(0.5, 1.5, (~keep).sum())
        again, again_end = triple_barrier_labels(*changed, **kw)
        assert again[t] == label[t] and again_end[t] == label_end[t]


def test_triple_barrier_input_checks():
    with pytest.raises(ValueError, match="max_holding"):
        triple_barrier_labels(*HAND, take_profit=0.1, stop_loss=0.1, max_holding=0, fees_bps=0)
    with pytest.raises(ValueError, match="max_holding"):
        triple_barrier_labels(*HAND, take_profit=0.1, stop_loss=0.1, max_holding=1.5, fees_bps=0)
    with pytest.raises(ValueError, match="stop_loss"):
        triple_barrier_labels(*HAND, take_profit=0.1, stop_loss=0.0, max_holding=2, fees_bps=0)
    with pytest.raises(ValueError, match="one length"):
        triple_barrier_labels(HAND[0], HAND[1][:3], HAND[2], HAND[3], take_profit=0.1,
                              stop_loss=0.1, max_holding=2, fees_bps=0)  # fmt: skip
    empty = triple_barrier_labels(*(np.zeros(0),) * 4, take_profit=0.1, stop_loss=0.1,
                                  max_holding=2, fees_bps=0)  # fmt: skip
    assert [len(a) for a in empty] == [0, 0]
