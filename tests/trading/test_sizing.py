"""Entry rule, bet sizes and volatility-targeted sizes, worked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cryptosweep.trading.sizing import (
    bet_size,
    break_even_probability,
    expected_value_entries,
    volatility_target_size,
)


def test_break_even_exact_with_dyadic_numbers():
    # tp = 1/2, sl = 1/4, cost = 1/8: p* = (1/4 + 1/8) / (3/4) = 1/2, and at p* the expected
    # value 1/2*1/2 - 1/2*1/4 - 1/8 is exactly 0 -> no entry (strict >)
    assert break_even_probability(0.5, 0.25, 0.125) == 0.5
    got = expected_value_entries(np.array([0.5, 0.5 + 2**-20, 0.5 - 2**-20]), 0.5, 0.25, 0.125)
    np.testing.assert_array_equal(got, [False, True, False])
    assert got.dtype == np.bool_


def test_entries_around_the_break_even_probability():
    # tp 3 %, sl 1 %, cost 0.2 %: p* = 0.012 / 0.04 = 0.3
    tp, sl, cost = 0.03, 0.01, 0.002
    assert break_even_probability(tp, sl, cost) == pytest.approx(0.3, abs=1e-15)
    p = np.array([0.0, 0.2, 0.3 - 1e-9, 0.3 + 1e-9, 0.31, 0.9, 1.0])
    # by hand: EV(0.31) = 0.31*0.03 - 0.69*0.01 - 0.002 = 0.0093 - 0.0069 - 0.002 = 0.0004 > 0
    np.testing.assert_array_equal(
        expected_value_entries(p, tp, sl, cost), [False, False, False, True, True, True, True]
    )
    # without costs the break-even is sl / (tp + sl) = 0.25
    np.testing.assert_array_equal(expected_value_entries([0.24, 0.26], tp, sl, 0.0), [False, True])


def test_entries_broadcast_over_levels_and_skip_nan():
    got = expected_value_entries(
        np.array([0.6, 0.6, np.nan]), np.array([0.01, 0.02, 0.02]), 0.02, 0.001
    )
    # 0.6*0.01 - 0.4*0.02 - 0.001 = -0.003 -> False; 0.6*0.02 - 0.008 - 0.001 = 0.003 -> True
    np.testing.assert_array_equal(got, [False, True, False])


def test_a_cost_above_the_take_profit_never_enters():
    assert break_even_probability(0.01, 0.01, 0.02) > 1.0
    assert not expected_value_entries(1.0, 0.01, 0.01, 0.02)


@pytest.mark.parametrize(
    ("args", "word"),
    [
        ((1.2, 0.02, 0.01, 0.0), "probability"),
        ((-0.1, 0.02, 0.01, 0.0), "probability"),
        ((0.5, 0.0, 0.01, 0.0), "take_profit"),
        ((0.5, math.inf, 0.01, 0.0), "take_profit"),
        ((0.5, 0.02, -0.01, 0.0), "stop_loss"),
        ((0.5, 0.02, 0.01, -0.001), "cost"),
        ((0.5, 0.02, 0.01, np.nan), "cost"),
    ],
)
def test_entries_reject_bad_arguments(args, word):
    with pytest.raises(ValueError, match=word):
        expected_value_entries(*args)


def _by_hand(p: float, n: int = 2) -> float:
    """2*Phi(z) - 1 = erf(z / sqrt(2)), z = (p - 1/n) / sqrt(p (1 - p))."""
    z = (p - 1.0 / n) / math.sqrt(p * (1.0 - p))
    return math.erf(z / math.sqrt(2.0))


def test_bet_size_by_hand():
    assert bet_size(0.5) == 0.0  # z = 0
    # p = 0.6: z = 0.1 / sqrt(0.24) = 0.2041241..., m = erf(0.1443376...) = 0.16174...
    assert float(bet_size(0.6)) == pytest.approx(_by_hand(0.6), rel=1e-12)
    assert float(bet_size(0.6)) == pytest.approx(0.1617, abs=1e-4)
    # p = 0.9: z = 0.4 / 0.3 = 4/3, m = erf(4 / (3 sqrt 2)) = 0.8176...
    assert float(bet_size(0.9)) == pytest.approx(math.erf(4 / (3 * math.sqrt(2))), rel=1e-12)
    assert float(bet_size(0.9)) == pytest.approx(0.8176, abs=1e-4)
    # three classes: p = 1/3 is the no-skill point; p = 0.5 gives z = (1/6) / (1/2) = 1/3
    assert float(bet_size(1 / 3, n_classes=3)) == pytest.approx(0.0, abs=1e-15)
    assert float(bet_size(0.5, n_classes=3)) == pytest.approx(math.erf(1 / (3 * math.sqrt(2))))


def test_bet_size_clips_below_no_skill_and_handles_the_endpoints():
    np.testing.assert_array_equal(bet_size(np.array([0.0, 0.1, 0.49, 1.0])), [0.0, 0.0, 0.0, 1.0])
    assert np.isnan(bet_size(np.array([0.7, np.nan]))[1])
    assert bet_size(np.array([[0.5, 0.6]])).shape == (1, 2)


def test_bet_size_is_monotone():
    p = np.linspace(0.0, 1.0, 2001)
    size = bet_size(p)
    assert np.all(np.diff(size) >= 0.0)
    inside = (p > 0.5) & (p < 0.99)
    assert np.all(np.diff(size[inside]) > 0.0)
    assert np.all((size >= 0.0) & (size <= 1.0))


def test_bet_size_discretised():
    # step 0.25: m(0.6) = 0.1617 -> 0.25 (0.647 rounds to 1), m(0.9) = 0.8176 -> 0.75
    # (3.27 -> 3), m(0.99) = 0.99999... -> 1.0; m(0.55) = 0.0797 -> 0 (0.32 -> 0)
    np.testing.assert_array_equal(
        bet_size(np.array([0.55, 0.6, 0.9, 0.99]), step=0.25), [0.0, 0.25, 0.75, 1.0]
    )
    np.testing.assert_array_equal(bet_size(0.9, step=1.0), 1.0)


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"probability": 1.5}, "probability"),
        ({"probability": 0.6, "n_classes": 1}, "n_classes"),
        ({"probability": 0.6, "n_classes": 2.5}, "n_classes"),
        ({"probability": 0.6, "step": 0.0}, "step"),
        ({"probability": 0.6, "step": 1.5}, "step"),
    ],
)
def test_bet_size_rejects_bad_arguments(kwargs, word):
    with pytest.raises(ValueError, match=word):
        bet_size(**kwargs)


def test_volatility_target_size_by_hand():
    # hourly bars, 8760 a year: 1 % per bar is 0.01 * sqrt(8760) = 93.6 % a year; a 50 %
    # target gives 0.5 / 0.936 = 0.534
    sigma = np.array([0.01, 0.002, 0.0, np.nan])
    got = volatility_target_size(sigma, target_annual_vol=0.5, bars_per_year=8760)
    assert got[0] == pytest.approx(0.5 / (0.01 * math.sqrt(8760)), rel=1e-12)
    assert got[0] == pytest.approx(0.5342, abs=1e-4)
    # 0.2 % per bar is 18.7 % a year: 2.67x, capped at 1; zero volatility also at the cap
    np.testing.assert_array_equal(got[1:3], [1.0, 1.0])
    assert np.isnan(got[3])
    lever = volatility_target_size(sigma, 0.5, 8760, max_leverage=3.0)
    assert lever[1] == pytest.approx(0.5 / (0.002 * math.sqrt(8760)), rel=1e-12)
    assert lever[2] == 3.0


def test_volatility_target_size_falls_as_volatility_rises():
    sigma = np.linspace(0.001, 0.05, 50)
    size = volatility_target_size(sigma, 0.3, 8760, max_leverage=10.0)
    assert np.all(np.diff(size) < 0.0)


@pytest.mark.parametrize(
    ("args", "word"),
    [
        ((-0.01, 0.5, 8760), "realised_vol_per_bar"),
        ((np.inf, 0.5, 8760), "realised_vol_per_bar"),
        ((0.01, 0.0, 8760), "target_annual_vol"),
        ((0.01, 0.5, -1.0), "bars_per_year"),
        ((0.01, 0.5, 8760, 0.0), "max_leverage"),
        ((0.01, 0.5, 8760, math.nan), "max_leverage"),
    ],
)
def test_volatility_target_size_rejects_bad_arguments(args, word):
    with pytest.raises(ValueError, match=word):
        volatility_target_size(*args)
