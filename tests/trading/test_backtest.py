"""Backtest semantics worked by hand: entries at the next open, fees, stop/take-profit exits;
``simulate`` against a bar-by-bar reference; the performance metrics."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from cryptosweep.trading.backtest import Trade, annualised_sharpe, simulate
from cryptosweep.trading.metrics import METRIC_NAMES, performance

FEE = 0.001  # 10 bps


def test_annualised_sharpe():
    returns = np.array([0.01, -0.005, 0.002, 0.0])
    expected = returns.mean() / returns.std(ddof=1) * math.sqrt(8760)
    assert annualised_sharpe(returns, 8760) == pytest.approx(expected, rel=1e-15)
    assert annualised_sharpe(returns, periods_per_year=252) == pytest.approx(
        returns.mean() / returns.std(ddof=1) * math.sqrt(252)
    )
    assert annualised_sharpe(np.zeros(10), 8760) == 0.0
    assert annualised_sharpe(np.array([0.01]), 8760) == 0.0
    assert annualised_sharpe(np.array([]), 8760) == 0.0
    assert isinstance(annualised_sharpe(returns, 8760), float)


def test_returns_equal_up_to_rounding_have_no_sharpe_ratio():
    """Ten returns of 0.001 have a float standard deviation of about 1e-19, not 0: their
    annualised Sharpe ratio came out as 8.4e16 and the ledger's per-bar one as 4.4e15 (found by
    an independent audit of the statistics), where "no dispersion" promises 0 (None in the
    ledger). Also a steadily rising price's returns, equal but for rounding."""
    from cryptosweep.trading.metrics import per_bar_sharpe, trial_sharpe

    price = 100.0 * 1.001 ** np.arange(200)
    for flat in (np.full(10, 0.001), price[1:] / price[:-1] - 1.0):
        assert np.std(flat, ddof=1) > 0.0  # what the old rule saw as dispersion
        assert annualised_sharpe(flat, 8760) == 0.0
        assert per_bar_sharpe(flat) == 0.0
        assert trial_sharpe(flat) is None
        assert performance(flat, [], np.ones(len(flat)), periods_per_year=8760)["sharpe"] == 0.0
    # A NaN is no Sharpe ratio either: the ledger recorded 0.0 for it.
    assert trial_sharpe(np.array([0.01, float("nan"), -0.02])) is None
    # One return that differs by a millionth of the others is dispersion, as before.
    varied = np.full(10, 0.001)
    varied[3] += 1e-9
    assert trial_sharpe(varied) == pytest.approx(varied.mean() / varied.std(ddof=1), rel=1e-12)


# --------------------------------------------------------------------------- simulate


def _bars(open_, high=None, low=None, close=None):
    """OHLC arrays; ``high``/``low`` default to the candle body (no wick)."""
    open_ = np.array(open_, dtype=float)
    close = open_.copy() if close is None else np.array(close, dtype=float)
    high = np.maximum(open_, close) if high is None else np.array(high, dtype=float)
    low = np.minimum(open_, close) if low is None else np.array(low, dtype=float)
    return open_, high, low, close


def _sim(bars, signal, holding_period=2, stop_loss=0.05, take_profit=0.05, fees_bps=10.0,
         slippage_bps=0.0):  # fmt: skip
    return simulate(
        *bars, np.array(signal, dtype=np.int8), holding_period=holding_period,
        stop_loss=stop_loss, take_profit=take_profit, fees_bps=fees_bps,
        slippage_bps=slippage_bps,
    )  # fmt: skip


def _net(side, entry, exit_, fee=FEE):
    ratio = exit_ / entry
    return side * (ratio - 1) - fee * (1 + ratio)


def _assert_compounds(result):
    """Every trade's per-bar returns compound to its net return; nothing outside trades."""
    covered = np.zeros(len(result.returns), dtype=bool)
    for trade in result.trades:
        bars = slice(trade.entry_bar, trade.exit_bar + 1)
        assert np.prod(1 + result.returns[bars]) - 1 == pytest.approx(trade.net_return, abs=1e-13)
        covered[bars] = True
    assert not result.returns[~covered].any() and not result.positions[~covered].any()


def test_simulate_time_exit_and_end_of_data_with_mark_to_market_returns():
    bars = _bars(
        open_=[100.0, 100.0, 102.0, 104.0, 103.0, 105.0],
        close=[100.0, 101.0, 103.0, 104.0, 104.0, 105.0],
    )
    # signal at 0 -> long at open[1] = 100; time exit H = 2 at open[3] = 104 (bar 3). The
    # signal at 2 is ignored (in a position at its close); the one at 3 (the exit bar) enters
    # at open[4] = 103 and is still open at the end: out at the last close, 105.
    result = _sim(bars, [1, 0, 1, 1, 0, 0], stop_loss=0.5, take_profit=0.5)
    first, second = result.trades
    assert (first.entry_bar, first.exit_bar, first.side, first.exit_reason) == (1, 3, 1, "time")
    assert (first.entry_price, first.exit_price) == (100.0, 104.0)
    assert first.gross_return == pytest.approx(0.04, abs=1e-15)
    assert first.net_return == pytest.approx(0.04 - 0.001 * 2.04, abs=1e-15)
    assert (second.entry_bar, second.exit_bar, second.exit_reason) == (4, 5, "end")
    assert (second.entry_price, second.exit_price) == (103.0, 105.0)
    assert second.gross_return == pytest.approx(105 / 103 - 1, abs=1e-15)
    v1, v2, v3 = 1 + 0.01 - FEE, 1 + 0.03 - FEE, 1 + _net(1, 100, 104)
    v4, v5 = 1 + (104 / 103 - 1) - FEE, 1 + _net(1, 103, 105)
    expected = [0.0, v1 - 1, v2 / v1 - 1, v3 / v2 - 1, v4 - 1, v5 / v4 - 1]
    np.testing.assert_allclose(result.returns, expected, rtol=0, atol=1e-15)
    # bar 3 is flat after its open (exit there) but carries close[2] -> 104 and the exit fee
    np.testing.assert_array_equal(result.positions, [0, 1, 1, 0, 1, 1])
    assert result.positions.dtype == np.int8 and result.n_trades == 2
    _assert_compounds(result)
    assert result.total_return == pytest.approx(v3 * v5 - 1, abs=1e-14)


def test_simulate_stop_and_take_profit_fill_at_their_levels():
    # entry 100 at bar 1; stop 95, target 105
    stop = _sim(_bars([100, 100, 99, 97, 97], low=[100, 99, 94, 97, 97]), [1, 0, 0, 0, 0],
                holding_period=3)  # fmt: skip
    assert [(t.exit_bar, t.exit_price, t.exit_reason) for t in stop.trades] == [(2, 95.0, "stop")]
    np.testing.assert_array_equal(stop.positions, [0, 1, 1, 0, 0])
    take = _sim(_bars([100, 100, 101, 106, 106], high=[100, 101, 105.5, 106, 106]),
                [1, 0, 0, 0, 0], holding_period=3)  # fmt: skip
    assert [(t.exit_bar, t.exit_price, t.exit_reason) for t in take.trades] == [
        (2, 105.0, "take_profit")
    ]
    assert take.trades[0].net_return == pytest.approx(0.05 - FEE * 2.05, abs=1e-15)
    _assert_compounds(stop)
    _assert_compounds(take)


def test_simulate_stop_first_when_a_bar_touches_both_levels():
    # bar 2 reaches 94 and 106: both levels; we cannot know the order -> the stop, at 95
    result = _sim(_bars([100, 100, 100, 100], high=[100, 100, 106, 100], low=[100, 100, 94, 100]),
                  [1, 0, 0, 0], holding_period=2)  # fmt: skip
    (trade,) = result.trades
    assert (trade.exit_bar, trade.exit_price, trade.exit_reason) == (2, 95.0, "stop")


def test_simulate_gaps_exit_at_the_open():
    # bar 2 opens at 93, below the stop of 95: out at 93, not 95 (the stop was gapped through)
    down = _sim(_bars([100, 100, 93, 93], close=[100, 100, 96, 93]), [1, 0, 0, 0], holding_period=3)
    (trade,) = down.trades
    assert (trade.exit_bar, trade.exit_price, trade.exit_reason) == (2, 93.0, "stop")
    # the exit is at bar 2's open: the position is flat over bar 2, whose return is the gap
    np.testing.assert_array_equal(down.positions, [0, 1, 0, 0])
    np.testing.assert_allclose(down.returns, [0, -FEE, (1 + _net(1, 100, 93)) / (1 - FEE) - 1, 0],
                               atol=1e-15)  # fmt: skip
    # bar 2 opens at 107, above the target 105, then falls to 90 (through the stop): the open
    # comes first, so the take profit at 107 (the stop-first rule is for touches inside a bar)
    up = _sim(_bars([100, 100, 107, 107], high=[100, 100, 107, 107], low=[100, 100, 90, 107]),
              [1, 0, 0, 0], holding_period=3)  # fmt: skip
    (trade,) = up.trades
    assert (trade.exit_bar, trade.exit_price, trade.exit_reason) == (2, 107.0, "take_profit")
    _assert_compounds(down)
    _assert_compounds(up)


def test_held_spans_are_the_bars_the_position_was_held():
    # Continuous candles (each open is the previous close), no stop or target: a time exit
    # fills at its exit bar's open, so the trade's gross return is the market's close-to-close
    # return over the bars from its entry bar to the one before its exit bar, which is what a
    # test that matches the trade's exposure sums. Counting the exit bar too (as the holdout's
    # spans did) adds a bar the position never held, and can flip the sign.
    rng = np.random.default_rng(7)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, 400)))
    open_ = np.r_[100.0, close[:-1]]
    bars = _bars(open_, close=close)
    market = np.log(close / open_)  # close to close, as buy-and-hold's per-bar returns
    for holding_period in (1, 3, 7):
        signal = (rng.random(400) < 0.2).astype(np.int8)
        result = _sim(bars, signal, holding_period=holding_period, stop_loss=math.inf,
                      take_profit=math.inf, fees_bps=0.0)  # fmt: skip
        spans = result.held_spans()
        assert len(spans) == len(result.trades) > 10
        for (start, held, side), trade in zip(spans, result.trades, strict=True):
            assert (start, side) == (trade.entry_bar, trade.side)
            if trade.exit_reason == "time":
                assert held == trade.exit_bar - trade.entry_bar == holding_period
                assert math.expm1(market[start:start + held].sum()) == pytest.approx(
                    trade.gross_return, rel=1e-9, abs=1e-12)
    # A stop touched inside its exit bar held that bar until the fill; a gap held none of it.
    stop = _sim(_bars([100, 100, 99, 97, 97], low=[100, 99, 94, 97, 97]), [1, 0, 0, 0, 0],
                holding_period=3)  # fmt: skip
    assert stop.held_spans() == [[1, 2, 1]]
    gapped = _sim(_bars([100, 100, 93, 93], close=[100, 100, 96, 93]), [1, 0, 0, 0],
                  holding_period=3)  # fmt: skip
    assert gapped.held_spans() == [[1, 1, 1]]


def test_simulate_checks_the_entry_bar_and_frees_the_exit_bar_signal():
    # the entry bar itself (after its open) reaches the stop: entry and exit on bar 1; the
    # signal at bar 1 (flat again at its close) enters at open[2]
    bars = _bars([100, 100, 100, 100, 100], low=[100, 94, 100, 100, 100])
    result = _sim(bars, [1, 1, 0, 0, 0], holding_period=1)
    assert [(t.entry_bar, t.exit_bar, t.exit_reason) for t in result.trades] == [
        (1, 1, "stop"), (2, 3, "time"),
    ]  # fmt: skip
    np.testing.assert_array_equal(result.positions, [0, 1, 1, 0, 0])
    assert result.returns[1] == pytest.approx(_net(1, 100, 95), abs=1e-15)
    _assert_compounds(result)


def test_simulate_short_side_with_slippage():
    s = 0.001  # 10 bps
    bars = _bars([100, 100, 98, 97, 97], low=[100, 100, 93, 97, 97], close=[100, 99, 98, 97, 97])
    # short at open[1] * (1 - s) = 99.9; target 99.9 * 0.95 = 94.905 touched on bar 2 (low 93),
    # bought back at 94.905 * (1 + s); stop at 99.9 * 1.05 never reached
    result = _sim(bars, [-1, 0, 0, 0, 0], holding_period=3, slippage_bps=10.0)
    (trade,) = result.trades
    entry, exit_ = 100 * (1 - s), 100 * (1 - s) * 0.95 * (1 + s)
    assert trade.side == -1 and trade.exit_reason == "take_profit" and trade.exit_bar == 2
    assert trade.entry_price == pytest.approx(entry, abs=1e-12)
    assert trade.exit_price == pytest.approx(exit_, abs=1e-12)
    assert trade.gross_return == pytest.approx(1 - exit_ / entry, abs=1e-15)
    ratio = exit_ / entry
    assert trade.net_return == pytest.approx(1 - ratio - FEE * (1 + ratio), abs=1e-15)
    v1 = 1 - (99 / entry - 1) - FEE
    np.testing.assert_allclose(result.returns[:3], [0, v1 - 1, (1 + trade.net_return) / v1 - 1],
                               atol=1e-15)  # fmt: skip
    np.testing.assert_array_equal(result.positions, [0, -1, -1, 0, 0])
    # the short's stop: the high reaching 99.9 * 1.05 = 104.895 on bar 2
    up = _sim(_bars([100, 100, 100, 100], high=[100, 100, 105, 100]), [-1, 0, 0, 0],
              holding_period=3, slippage_bps=10.0)  # fmt: skip
    (trade,) = up.trades
    assert trade.exit_reason == "stop"
    assert trade.exit_price == pytest.approx(100 * (1 - s) * 1.05 * (1 + s), abs=1e-12)


def test_simulate_long_slippage_worsens_both_fills_and_moves_the_levels():
    # buy at 100 * 1.001 = 100.1: stop at 100.1 * 0.95 = 95.095, so a low of 95.09 hits it
    result = _sim(_bars([100, 100, 100, 100], low=[100, 100, 95.09, 100]), [1, 0, 0, 0],
                  holding_period=3, slippage_bps=10.0)  # fmt: skip
    (trade,) = result.trades
    assert trade.entry_price == pytest.approx(100.1, abs=1e-12)
    assert trade.exit_price == pytest.approx(100.1 * 0.95 * 0.999, abs=1e-12)
    assert trade.exit_reason == "stop"
    no_slip = _sim(_bars([100, 100, 100, 100], low=[100, 100, 95.09, 100]), [1, 0, 0, 0],
                   holding_period=2)  # fmt: skip
    assert no_slip.trades[0].exit_reason == "time"  # 95.09 > 95: no stop without slippage


def test_simulate_ignores_opposite_signals_in_a_position_and_last_bar_signals():
    bars = _bars([100, 100, 101, 102, 103, 104])
    result = _sim(bars, [1, -1, -1, 0, 0, 1], holding_period=3, stop_loss=0.5, take_profit=0.5)
    assert [(t.side, t.entry_bar, t.exit_bar) for t in result.trades] == [(1, 1, 4)]
    assert _sim(bars, [0, 0, 0, 0, 0, 1]).n_trades == 0
    empty = _sim(bars, [0] * 6)
    assert empty.trades == [] and not empty.returns.any() and not empty.positions.any()


def test_simulate_input_checks():
    bars = _bars([1.0, 2.0, 3.0])
    with pytest.raises(TypeError, match="integer"):
        simulate(*bars, np.ones(3), holding_period=1, stop_loss=0.1, take_profit=0.1, fees_bps=0)
    with pytest.raises(ValueError, match="-1"):
        _sim(bars, [2, 0, 0])
    with pytest.raises(ValueError, match="shape"):
        _sim(bars, [1, 0])
    with pytest.raises(ValueError, match="one length"):
        simulate(bars[0], bars[1][:2], bars[2], bars[3], np.zeros(3, np.int8), holding_period=1,
                 stop_loss=0.1, take_profit=0.1, fees_bps=0)  # fmt: skip
    with pytest.raises(ValueError, match="finite"):
        _sim(_bars([1.0, np.nan, 3.0]), [1, 0, 0])
    with pytest.raises(ValueError, match="holding_period"):
        _sim(bars, [1, 0, 0], holding_period=0)
    with pytest.raises(ValueError, match="slippage"):
        _sim(bars, [1, 0, 0], slippage_bps=-1.0)
    # booleans are long signals
    as_bool = simulate(*bars, np.array([True, False, False]), holding_period=1, stop_loss=0.5,
                       take_profit=0.5, fees_bps=0)  # fmt: skip
    assert [t.side for t in as_bool.trades] == [1]


def test_signal_values_outside_minus_one_to_one_are_refused_whatever_the_dtype():
    """The range was checked after a cast to int8, which wraps: 257 traded long, a uint8 255
    short and 256 not at all, instead of the ValueError."""
    bars = _bars([1.0, 2.0, 3.0])
    rules = dict(holding_period=1, stop_loss=0.5, take_profit=0.5, fees_bps=0)
    for signal in (np.array([257, 0, 0]), np.array([256, 0, 0]), np.array([-255, 0, 0]),
                   np.array([255, 0, 0], np.uint8)):
        with pytest.raises(ValueError, match="-1"):
            simulate(*bars, signal, **rules)
    unsigned = simulate(*bars, np.array([1, 0, 0], np.uint64), **rules)
    assert [t.side for t in unsigned.trades] == [1]


def _random_market(seed, n, gap_rate=0.05):
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.r_[100.0, close[:-1]]
    gaps = rng.random(n) < gap_rate
    open_[gaps] *= np.exp(rng.normal(0, 0.03, gaps.sum()))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.008, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.008, n)))
    return open_, high, low, close


def _reference(open_, high, low, close, signal, holding_period, stop_loss, take_profit, fee, slip):
    """Bar-by-bar restatement of the rules of ``simulate`` (slow, obviously right)."""
    n, trades, t = len(open_), [], 0
    while t < n - 1:
        side = int(signal[t])
        if side == 0:
            t += 1
            continue
        entry = t + 1
        price = open_[entry] * (1 + side * slip)
        stop, target = price * (1 - side * stop_loss), price * (1 + side * take_profit)
        found = None
        for j in range(entry, min(entry + holding_period, n)):
            lo = min(open_[j], high[j], low[j], close[j])
            hi = max(open_[j], high[j], low[j], close[j])
            adverse, favourable = (lo, hi) if side > 0 else (hi, lo)
            beyond_stop = (open_[j] <= stop) if side > 0 else (open_[j] >= stop)
            beyond_target = (open_[j] >= target) if side > 0 else (open_[j] <= target)
            if beyond_stop:
                found = (j, open_[j], "stop")
            elif beyond_target:
                found = (j, open_[j], "take_profit")
            elif (adverse <= stop) if side > 0 else (adverse >= stop):
                found = (j, stop, "stop")
            elif (favourable >= target) if side > 0 else (favourable <= target):
                found = (j, target, "take_profit")
            if found:
                break
        if found is None:
            scheduled = entry + holding_period
            found = (scheduled, open_[scheduled], "time") if scheduled <= n - 1 else (
                n - 1, close[n - 1], "end")  # fmt: skip
        exit_bar, raw, reason = found
        exit_price = raw * (1 - side * slip)
        gross = side * (exit_price / price - 1)
        net = gross - fee * (1 + exit_price / price)
        trades.append(Trade(entry, exit_bar, side, price, exit_price, reason, gross, net))
        t = exit_bar
    returns, positions = np.zeros(n), np.zeros(n, dtype=np.int8)
    for tr in trades:
        value_before = 1.0
        for j in range(tr.entry_bar, tr.exit_bar + 1):
            if j == tr.exit_bar:
                value = 1 + tr.net_return
            else:
                value = 1 + tr.side * (close[j] / tr.entry_price - 1) - fee
            returns[j] = value / value_before - 1
            value_before = value
            at_open = tr.exit_price == open_[j] * (1 - tr.side * slip) and tr.exit_reason != "end"
            held = j < tr.exit_bar or j == tr.entry_bar or not at_open
            positions[j] = tr.side if held else 0
    return trades, returns, positions


@pytest.mark.parametrize("seed", range(6))
def test_simulate_matches_a_bar_by_bar_reference(seed):
    rng = np.random.default_rng(100 + seed)
    n = 400
    bars = _random_market(seed, n)
    signal = (rng.random(n) < [0.05, 0.3, 0.9][seed % 3]).astype(np.int8)
    signal *= rng.choice(np.array([-1, 1], dtype=np.int8), n)
    params = dict(
        holding_period=int(rng.integers(1, 30)), stop_loss=float(rng.uniform(0.005, 0.04)),
        take_profit=float(rng.uniform(0.005, 0.06)), fees_bps=float(rng.uniform(0, 20)),
        slippage_bps=[0.0, 5.0, 150.0][seed % 3],
    )  # fmt: skip
    result = simulate(*bars, signal, **params)
    trades, returns, positions = _reference(
        *bars, signal, params["holding_period"], params["stop_loss"], params["take_profit"],
        params["fees_bps"] / 1e4, params["slippage_bps"] / 1e4,
    )  # fmt: skip
    assert result.trades == trades
    np.testing.assert_allclose(result.returns, returns, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(result.positions, positions)
    _assert_compounds(result)
    assert result.total_return == pytest.approx(
        np.prod([1 + t.net_return for t in trades]) - 1, abs=1e-12
    )


def test_simulate_infinite_levels_switch_the_barriers_off():
    bars = _random_market(7, 300)
    signal = np.ones(300, dtype=np.int8)
    result = simulate(*bars, signal, holding_period=5, stop_loss=math.inf, take_profit=math.inf,
                      fees_bps=0.0)  # fmt: skip
    assert {t.exit_reason for t in result.trades} <= {"time", "end"}
    assert all(t.exit_bar - t.entry_bar == 5 for t in result.trades if t.exit_reason == "time")


# --------------------------------------------------------------------------- metrics


def test_performance_by_hand():
    returns = np.array([0.1, -0.05, 0.0, 0.02])
    positions = np.array([1, 1, 0, -1], dtype=np.int8)
    trades = [
        Trade(0, 1, 1, 1.0, 1.0, "time", 0.0, 0.1), Trade(3, 3, -1, 1.0, 1.0, "end", 0.0, -0.03),
    ]  # fmt: skip
    m = performance(returns, trades, positions, periods_per_year=4)
    assert set(m) == set(METRIC_NAMES)
    assert m["sharpe"] == pytest.approx(returns.mean() / returns.std(ddof=1) * 2, rel=1e-14)
    # downside deviation sqrt(mean([0, 0.05^2, 0, 0])) = 0.025; mean 0.0175 -> 0.7 * sqrt(4)
    assert m["sortino"] == pytest.approx(0.7 * 2, rel=1e-14)
    # equity 1.1, 1.045, 1.045, 1.0659: peak 1.1, trough 1.045 -> 5 %
    assert m["max_drawdown"] == pytest.approx(0.05, rel=1e-14)
    assert m["total_return"] == pytest.approx(0.0659, rel=1e-13)
    assert m["calmar"] == pytest.approx(0.0659 / 0.05, rel=1e-13)  # 4 bars = one year
    assert m["hit_rate"] == 0.5 and m["trades"] == 2
    assert m["exposure"] == 0.75
    assert m["turnover"] == pytest.approx(2 * 2 / 4 * 4)
    assert all(isinstance(v, float) for k, v in m.items() if k != "trades")
    assert isinstance(m["trades"], int)
    # two years of data: the calmar annualises the compounded return
    m2 = performance(returns, trades, positions, periods_per_year=2)
    assert m2["calmar"] == pytest.approx((1.0659**0.5 - 1) / 0.05, rel=1e-13)


def test_performance_degenerate_cases_are_zero():
    m = performance(np.zeros(0), [], np.zeros(0, dtype=np.int8), periods_per_year=8760)
    assert all(v == 0 for v in m.values())
    flat = performance(np.zeros(10), [], np.zeros(10, dtype=np.int8), periods_per_year=8760)
    assert all(v == 0 for v in flat.values())
    rising = performance(np.full(5, 0.01), [], np.ones(5, dtype=np.int8), periods_per_year=8760)
    assert rising["sharpe"] == 0 and rising["sortino"] == 0  # no dispersion, no losing bar
    assert rising["max_drawdown"] == 0 and rising["calmar"] == 0 and rising["exposure"] == 1.0
    with pytest.raises(ValueError, match="one length"):
        performance(np.zeros(3), [], np.zeros(2), periods_per_year=8760)


def test_a_calmar_too_large_for_a_float_is_inf_not_an_overflow_error():
    # 3 hourly bars with a 30 % move: 1.2974 ** (8760 / 3) is about 1e330, past the largest
    # float (an OverflowError from Python's ** before); the other metrics stay as they are
    returns = np.array([-0.0015, 0.3, -0.0005])
    positions = np.array([1, 1, 1], dtype=np.int8)
    m = performance(returns, [], positions, periods_per_year=8760)
    assert m["calmar"] == math.inf
    assert m["total_return"] == pytest.approx(0.9985 * 1.3 * 0.9995 - 1, rel=1e-14)
    assert m["max_drawdown"] == pytest.approx(0.0015, rel=1e-12)
    assert all(math.isfinite(v) for k, v in m.items() if k != "calmar")
    # one that a float holds: the formula as before
    short = performance(returns, [], positions, periods_per_year=300)
    assert short["calmar"] == pytest.approx(((0.9985 * 1.3 * 0.9995) ** 100 - 1) / 0.0015,
                                            rel=1e-12)
    # a loss annualised over a few bars goes to -100 %, not an error
    lost = performance(-returns, [], positions, periods_per_year=8760)
    assert lost["calmar"] == pytest.approx(-1 / lost["max_drawdown"], rel=1e-12)


def test_performance_of_a_simulation_matches_its_trades():
    bars = _random_market(11, 2000)
    rng = np.random.default_rng(11)
    signal = (rng.random(2000) < 0.2).astype(np.int8) * rng.choice(np.array([-1, 1], np.int8), 2000)
    result = simulate(*bars, signal, holding_period=12, stop_loss=0.02, take_profit=0.03,
                      fees_bps=10.0)  # fmt: skip
    m = performance(result.returns, result.trades, result.positions, periods_per_year=8760)
    assert m["trades"] == result.n_trades > 10
    assert m["total_return"] == pytest.approx(result.total_return, abs=1e-12)
    assert m["sharpe"] == annualised_sharpe(result.returns, 8760)
    assert m["hit_rate"] == pytest.approx(np.mean([t.net_return > 0 for t in result.trades]))
    held = sum(t.exit_bar - t.entry_bar + 1 for t in result.trades) - sum(
        1 for t in result.trades if t.exit_reason == "time"
    )
    gaps = sum(
        1 for t in result.trades if t.exit_reason in ("stop", "take_profit")
        and t.exit_bar > t.entry_bar and t.exit_price == bars[0][t.exit_bar]
    )  # fmt: skip
    assert m["exposure"] == pytest.approx((held - gaps) / 2000)


# --------------------------------------------------------------------------- backtesting.py
#
# Cross-check against backtesting.py (kernc, 0.6): a Strategy replays the same entries (a
# bracket order at the next open, sl/tp as absolute prices computed from that next open, which
# the test knows), closes after `holding_period` bars, and only enters when flat. Conventions
# that are the same in both, and checked to 1e-9:
#   * fills at the next open (trade_on_close=False); one trade at a time;
#   * stop = stop order, take profit = limit order: filled at the level, or at the open when
#     the bar opens beyond it; stop first when a bar touches both (backtesting.py processes the
#     SL order before the TP order); both checked on the entry bar too (it reprocesses the
#     contingent orders of a market order in the bar that filled it);
#   * the time exit (Trade.close() at the close of bar entry + H - 1) fills at open[entry + H]
#     before the SL/TP orders of that bar are looked at;
#   * commission = fee on the notional of each side, ReturnPct = side * (X - 1) - fee * (1 + X)
#     on the entry notional; its equity curve (1 unit a trade) marks to market at each close.
# Conventions that differ, each asserted below as a documented difference:
#   * a bar that opens beyond the take profit and then also reaches the stop: backtesting.py
#     fills the SL at the stop price (it checks SL first whatever the open); `simulate` takes
#     the take profit at the open (the open is the first price of the bar);
#   * end of data: with finalize_trades=True backtesting.py closes a still-open trade at the
#     last bar's *open* (it reruns the broker on the last bar); `simulate` at the last *close*;
#   * slippage: backtesting.py's `spread` worsens the entry fill only; `simulate` worsens the
#     exit fill too (exit = backtesting's exit * (1 - side * s));
#   * backtesting.py calls Strategy.next from bar 1 on, so a signal at bar 0 cannot trade there
#     (the test data has none);
#   * per-bar returns: backtesting.py's equity holds whole units and accumulates cash; the
#     test compares our per-bar returns with the returns of its equity relative to each
#     trade's entry notional, which is how `simulate` compounds.


def _replay(bars, signal, holding_period, stop_loss, take_profit, fees_bps, slippage_bps=0.0):
    """Run backtesting.py with the entries of ``signal``; its trades and equity curve."""
    backtesting = pytest.importorskip("backtesting")
    open_, high, low, close = bars
    n, s = len(open_), slippage_bps / 1e4

    class Replay(backtesting.Strategy):
        def init(self):
            pass

        def next(self):
            i = len(self.data) - 1
            for trade in self.trades:
                if i == trade.entry_bar + holding_period - 1:
                    trade.close()
            side = int(signal[i])
            if side and not self.position and i < n - 1:
                fill = open_[i + 1] * (1.0 + side * s)
                stop, target = fill * (1.0 - side * stop_loss), fill * (1.0 + side * take_profit)
                (self.buy if side > 0 else self.sell)(size=1, sl=stop, tp=target)

    frame = pd.DataFrame(
        {"Open": open_, "High": high, "Low": low, "Close": close},
        index=pd.date_range("2024-01-01", periods=n, freq="h"),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = backtesting.Backtest(
            frame, Replay, cash=1e6, commission=fees_bps / 1e4, spread=s, trade_on_close=False,
            exclusive_orders=True, hedging=False, finalize_trades=True,
        ).run()  # fmt: skip
    return run._trades.reset_index(drop=True), run._equity_curve["Equity"].to_numpy()


def _cross_check_market(seed=5, n=600):
    """Random bars with gaps (never on a bar that a signal could enter at: backtesting.py
    checks sl < price < tp against the signal bar's close), and a quiet tail holding one trade
    open to the end."""
    rng = np.random.default_rng(seed)
    signal = (rng.random(n) < 0.15).astype(np.int8) * rng.choice(np.array([-1, 1], np.int8), n)
    signal[0] = 0
    signal[n - 40 :] = 0
    signal[n - 6] = 1
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.008, n)))
    close[n - 6 :] = close[n - 6]
    open_ = np.r_[100.0, close[:-1]]
    gaps = rng.random(n) < 0.1
    gaps[1:] &= signal[:-1] == 0
    gaps[n - 6 :] = False
    open_[gaps] *= np.exp(rng.normal(0, 0.03, gaps.sum()))
    wick = np.exp(np.abs(rng.normal(0, 0.006, n)))
    wick[n - 5 :] = 1.0
    high, low = np.maximum(open_, close) * wick, np.minimum(open_, close) / wick
    return (open_, high, low, close), signal


def test_simulate_agrees_with_backtesting_py():
    bars, signal = _cross_check_market()
    params = dict(holding_period=12, stop_loss=0.02, take_profit=0.03, fees_bps=10.0)
    result = simulate(*bars, signal, **params)
    theirs, equity = _replay(bars, signal, **params)
    ours = result.trades
    assert len(ours) == len(theirs) > 30
    assert {t.exit_reason for t in ours} == {"stop", "take_profit", "time", "end"}
    assert any(t.exit_price == bars[0][t.exit_bar] and t.exit_reason != "time" for t in ours)
    np.testing.assert_array_equal([t.entry_bar for t in ours], theirs["EntryBar"])
    np.testing.assert_array_equal([t.exit_bar for t in ours], theirs["ExitBar"])
    np.testing.assert_array_equal([t.side for t in ours], np.sign(theirs["Size"]))
    np.testing.assert_allclose([t.entry_price for t in ours], theirs["EntryPrice"], rtol=1e-12)
    finished = [k for k, t in enumerate(ours) if t.exit_reason != "end"]
    assert finished == list(range(len(ours) - 1))
    np.testing.assert_allclose([ours[k].exit_price for k in finished],
                               theirs["ExitPrice"][finished], rtol=1e-12)  # fmt: skip
    np.testing.assert_allclose([ours[k].net_return for k in finished],
                               theirs["ReturnPct"][finished], rtol=0, atol=1e-9)  # fmt: skip
    # documented difference: the trade open at the end -> their last open, our last close
    last = ours[-1]
    assert last.exit_bar == theirs["ExitBar"].iloc[-1] == len(signal) - 1
    assert theirs["ExitPrice"].iloc[-1] == bars[0][-1] and last.exit_price == bars[3][-1]
    # per-bar returns: their equity over each trade's entry notional (1 unit)
    for k in finished:
        trade = ours[k]
        value = 1 + (equity[trade.entry_bar : trade.exit_bar + 1]
                     - equity[trade.entry_bar - 1]) / trade.entry_price  # fmt: skip
        implied = value / np.r_[1.0, value[:-1]] - 1
        np.testing.assert_allclose(result.returns[trade.entry_bar : trade.exit_bar + 1], implied,
                                   rtol=0, atol=1e-9)  # fmt: skip


def test_slippage_differs_from_backtesting_py_spread_on_exits_only():
    bars, signal = _cross_check_market(seed=9)
    params = dict(holding_period=8, stop_loss=0.02, take_profit=0.02, fees_bps=5.0)
    result = simulate(*bars, signal, slippage_bps=10.0, **params)
    theirs, _ = _replay(bars, signal, slippage_bps=10.0, **params)
    ours = result.trades[:-1]  # the last one ends at the end of data (see above)
    theirs = theirs.iloc[:-1]
    assert len(ours) == len(theirs) > 30
    np.testing.assert_array_equal([t.exit_bar for t in ours], theirs["ExitBar"])
    np.testing.assert_allclose([t.entry_price for t in ours], theirs["EntryPrice"], rtol=1e-12)
    side = np.array([t.side for t in ours])
    np.testing.assert_allclose([t.exit_price for t in ours],
                               theirs["ExitPrice"] * (1 - side * 0.001), rtol=1e-12)  # fmt: skip


def test_gap_through_the_target_differs_from_backtesting_py():
    # long at open[2] = 100 (signal at bar 1): target 105, stop 95. Bar 3 opens at 107 and
    # then trades down to 90.
    bars = _bars([100, 100, 100, 107, 107], high=[100, 100, 100, 107, 107],
                 low=[100, 100, 100, 90, 107])  # fmt: skip
    signal = np.array([0, 1, 0, 0, 0], dtype=np.int8)
    params = dict(holding_period=2, stop_loss=0.05, take_profit=0.05, fees_bps=0.0)
    (ours,) = simulate(*bars, signal, **params).trades
    theirs, _ = _replay(bars, signal, **params)
    assert (ours.exit_bar, ours.exit_reason, ours.exit_price) == (3, "take_profit", 107.0)
    assert (theirs["ExitBar"][0], theirs["ExitPrice"][0]) == (3, 95.0)  # SL checked first
    # without the gap both take the stop first when one bar touches both levels
    bars = _bars([100, 100, 100, 100, 100], high=[100, 100, 100, 106, 100],
                 low=[100, 100, 100, 94, 100])  # fmt: skip
    (ours,) = simulate(*bars, signal, **params).trades
    theirs, _ = _replay(bars, signal, **params)
    assert (ours.exit_bar, ours.exit_reason, ours.exit_price) == (3, "stop", 95.0)
    assert (theirs["ExitBar"][0], theirs["ExitPrice"][0]) == (3, 95.0)
