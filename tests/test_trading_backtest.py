"""Backtest semantics worked by hand: entries at the next open, fees, stop/take-profit exits."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cryptosweep.trading.backtest import annualised_sharpe, backtest_long_only

FEE = 0.001  # 10 bps


def _run(open_, close, signal, holding_period=2, stop_loss=0.5, take_profit=0.5, fees_bps=10.0):
    return backtest_long_only(
        np.array(open_, dtype=float), np.array(close, dtype=float), np.array(signal, dtype=bool),
        holding_period, stop_loss, take_profit, fees_bps,
    )  # fmt: skip


def test_held_for_the_holding_period_with_fees_at_entry_and_exit():
    open_ = [100.0, 100.0, 110.0, 121.0, 100.0, 100.0]
    close = [100.0, 110.0, 121.0, 100.0, 100.0, 100.0]
    # signal at bar 0 -> long at open[1] = 100, held over bars 1 and 2, exit at open[3] = 121;
    # the signal at bar 1 is ignored (in a position)
    result = _run(open_, close, [True, True, False, False, False, False])
    expected = [0.0, 0.10 - FEE, 0.10 - FEE, 0.0, 0.0, 0.0]
    np.testing.assert_allclose(result.returns, expected, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(result.positions, [0, 1, 1, 0, 0, 0])
    assert result.n_trades == 1
    assert result.total_return == pytest.approx((1.1 - FEE) ** 2 - 1)


def test_stop_loss_exits_at_the_next_open_after_a_close_below_the_stop():
    open_ = [100.0, 100.0, 98.0, 90.0, 95.0, 95.0]
    close = [100.0, 97.0, 94.0, 93.0, 95.0, 95.0]
    # entry 100 at bar 1; stop 5 % -> 95: close[1] = 97 holds, close[2] = 94 triggers,
    # exit at open[3] = 90 (the gap below the stop is taken, no intrabar fill at 95)
    result = _run(open_, close, [True, False, False, False, False, False],
                  holding_period=4, stop_loss=0.05)  # fmt: skip
    expected = [0.0, -0.02 - FEE, 90 / 98 - 1 - FEE, 0.0, 0.0, 0.0]
    np.testing.assert_allclose(result.returns, expected, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(result.positions, [0, 1, 1, 0, 0, 0])


def test_take_profit_uses_closes_only_and_frees_the_next_signal():
    open_ = [100.0, 100.0, 103.0, 107.0, 108.0, 108.0, 109.0]
    close = [100.0, 102.0, 106.0, 108.0, 108.0, 109.0, 110.0]
    signal = [True, False, True, True, False, False, False]
    # entry 100 at bar 1, target +4 % = 104: close[1] = 102 holds, close[2] = 106 triggers,
    # exit at open[3] = 107; the signal at bar 2 was ignored (in a position). The signal at
    # bar 3 (flat) enters at open[4] = 108 (target 112.32, never reached) and is still open at
    # the end of the window: closed at close[6] = 110 with the exit fee.
    result = _run(open_, close, signal, holding_period=10, take_profit=0.04)
    expected = [0.0, 0.03 - FEE, 107 / 103 - 1 - FEE, 0.0, -FEE, 109 / 108 - 1, 110 / 109 - 1 - FEE]
    np.testing.assert_allclose(result.returns, expected, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(result.positions, [0, 1, 1, 0, 1, 1, 1])
    assert result.n_trades == 2


def test_open_position_is_closed_at_the_last_close_and_last_bar_signal_is_void():
    open_ = [100.0, 100.0, 102.0]
    close = [100.0, 101.0, 104.0]
    # entry at open[1] = 100 for 5 bars; the window ends: bar 2 is held to close[2] = 104
    result = _run(open_, close, [True, False, False], holding_period=5)
    np.testing.assert_allclose(result.returns, [0.0, 0.02 - FEE, 104 / 102 - 1 - FEE], atol=1e-15)
    assert result.n_trades == 1
    last = _run(open_, close, [False, False, True], holding_period=1)
    assert last.n_trades == 0 and not last.returns.any()
    one_bar = _run(open_, close, [False, True, False], holding_period=1)
    np.testing.assert_allclose(one_bar.returns, [0.0, 0.0, 104 / 102 - 1 - 2 * FEE], atol=1e-15)


def test_no_signal_means_no_returns():
    result = _run([1.0, 2.0, 3.0], [2.0, 3.0, 4.0], [False, False, False])
    assert result.n_trades == 0 and not result.returns.any() and not result.positions.any()


def test_input_checks():
    with pytest.raises(TypeError, match="boolean"):
        backtest_long_only(np.ones(3), np.ones(3), np.ones(3), 1, 0.1, 0.1, 0.0)
    with pytest.raises(ValueError, match="one length"):
        _run([1.0, 2.0], [1.0], [True, False])
    with pytest.raises(ValueError, match="holding_period"):
        _run([1.0], [1.0], [True], holding_period=0)


def test_annualised_sharpe():
    returns = np.array([0.01, -0.005, 0.002, 0.0])
    expected = returns.mean() / returns.std(ddof=1) * math.sqrt(8760)
    assert annualised_sharpe(returns) == pytest.approx(expected, rel=1e-15)
    assert annualised_sharpe(returns, periods_per_year=252) == pytest.approx(
        returns.mean() / returns.std(ddof=1) * math.sqrt(252)
    )
    assert annualised_sharpe(np.zeros(10)) == 0.0
    assert annualised_sharpe(np.array([0.01])) == 0.0
    assert annualised_sharpe(np.array([])) == 0.0
    assert isinstance(annualised_sharpe(returns), float)
