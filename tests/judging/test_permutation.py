"""Tests of ``cryptosweep.judging.permutation``: exposure-matched permutation test, and alpha.

No published worked example exists for either statistic on data available here, so the checks
are independent computations:

* the random placements against a brute-force enumeration of every arrangement of the trades
  (never overlapping, inside the bars, uniformly distributed), and the p-value against trade
  returns summed bar by bar in plain Python loops with the Phipson & Smyth (2010) formula;
* the OLS t-ratio of the alpha against ``scipy.stats.linregress``, and the Newey–West (1987)
  standard error against a double loop over lags and bars written here (no statsmodels).
"""

from __future__ import annotations

import itertools
import math
import time
from collections import Counter

import numpy as np
import pytest
from scipy import stats

from cryptosweep.judging.permutation import (
    NULL_QUANTILES,
    alpha_tstat,
    exposure_matched_pvalue,
    newey_west_lags,
    random_trade_starts,
)

# --------------------------------------------------------------------------------------------
# Random placement of trades


def all_arrangements(n_bars, lengths):
    """Every set of non-overlapping (start, length) trades with these lengths, brute force."""
    found = set()
    k = len(lengths)
    for starts in itertools.product(range(n_bars), repeat=k):
        trades = sorted(zip(starts, lengths, strict=True))
        if trades[-1][0] + trades[-1][1] > n_bars:
            continue
        if any(s + ell > n_bars for s, ell in trades):
            continue
        if all(trades[i][0] + trades[i][1] <= trades[i + 1][0] for i in range(k - 1)):
            found.add(tuple(trades))
    return found


@pytest.mark.parametrize(
    ("n_bars", "lengths"),
    [(2000, [5, 1, 30, 12, 7] * 6), (50, [10, 10, 10, 10, 10]), (40, [3]), (100, [1] * 100)],
)
def test_placed_trades_never_overlap_and_stay_inside(n_bars, lengths):
    rng = np.random.default_rng(0)
    starts, laid_out = random_trade_starts(n_bars, np.array(lengths), 500, rng)
    assert starts.shape == laid_out.shape == (500, len(lengths))
    assert np.all(starts >= 0)
    assert np.all(starts + laid_out <= n_bars)
    assert np.all(starts[:, 1:] >= starts[:, :-1] + laid_out[:, :-1])  # no overlap
    assert np.all(np.sort(laid_out, axis=1) == np.sort(lengths))  # same trades
    if sum(lengths) == n_bars:  # no room to move: the only arrangements tile the bars
        assert np.all(starts == np.cumsum(laid_out, axis=1) - laid_out)


def test_placements_are_uniform_over_all_arrangements():
    n_bars, lengths = 7, [2, 1, 2]
    arrangements = all_arrangements(n_bars, lengths)
    rng = np.random.default_rng(1)
    draws = 60_000
    starts, laid_out = random_trade_starts(n_bars, np.array(lengths), draws, rng)
    counts = Counter(
        tuple(zip(s.tolist(), ell.tolist(), strict=True))
        for s, ell in zip(starts, laid_out, strict=True)
    )
    assert set(counts) == arrangements  # every arrangement occurs, nothing else does
    observed = np.array([counts[a] for a in sorted(arrangements)])
    _, p = stats.chisquare(observed)
    assert p > 0.001


# --------------------------------------------------------------------------------------------
# The permutation p-value


def reference_null_totals(returns, starts, laid_out, cost):
    totals = []
    for row_starts, row_lengths in zip(starts.tolist(), laid_out.tolist(), strict=True):
        total = 0.0
        for s, ell in zip(row_starts, row_lengths, strict=True):
            total += sum(returns[s : s + ell]) - cost
        totals.append(total)
    return totals


def test_p_value_matches_loop_computation():
    rng = np.random.default_rng(2)
    returns = rng.normal(0.0, 0.01, size=300)
    lengths = np.array([4, 9, 2, 15, 6])
    starts = np.array([10, 40, 100, 150, 250])
    cost = 0.001
    observed = sum(
        float(returns[s : s + ell].sum()) - cost for s, ell in zip(starts, lengths, strict=True)
    )
    result = exposure_matched_pvalue(
        returns, starts, lengths, observed, 400, seed=7, cost_per_trade=cost
    )

    # Same generator and seed as the function: the same placements, totals summed by loops.
    placed, laid_out = random_trade_starts(300, lengths, 400, np.random.default_rng(7))
    null = reference_null_totals(returns.tolist(), placed, laid_out, cost)
    at_least = sum(1 for v in null if v >= observed)
    assert result.p_value == pytest.approx((1 + at_least) / 401, rel=1e-12)
    below = sum(1 for v in null if v < observed)
    assert result.percentile == pytest.approx(100 * below / 400, abs=100 * 0.5 / 400)
    assert result.n_draws == 400
    assert list(result.null_quantiles) == list(NULL_QUANTILES)
    assert result.null_quantiles[0.5] == pytest.approx(float(np.median(null)), rel=1e-9)


def test_p_value_approaches_the_exact_permutation_p_value():
    # All arrangements of 3 trades in 12 bars enumerated: the exact p-value of the observed
    # total; the Monte Carlo one converges to it.
    rng = np.random.default_rng(3)
    returns = rng.normal(0.0, 0.01, size=12)
    lengths = [3, 1, 2]
    totals = [
        sum(float(returns[s : s + ell].sum()) for s, ell in arrangement)
        for arrangement in all_arrangements(12, lengths)
    ]
    observed = float(np.quantile(totals, 0.8))
    exact = sum(1 for t in totals if t >= observed - 1e-15) / len(totals)
    result = exposure_matched_pvalue(
        returns, np.array([0, 4, 6]), np.array(lengths), observed, 20_000, seed=4
    )
    assert result.p_value == pytest.approx(exact, abs=0.01)


def test_plus_one_correction_and_the_two_extremes():
    rng = np.random.default_rng(5)
    returns = rng.normal(0.0, 0.01, size=500)
    starts, lengths = np.array([0, 100, 200]), np.array([10, 10, 10])
    best = exposure_matched_pvalue(returns, starts, lengths, 10.0, n_draws=99)
    assert best.p_value == pytest.approx(1 / 100)  # never 0
    assert best.percentile == 100.0
    worst = exposure_matched_pvalue(returns, starts, lengths, -10.0, n_draws=99)
    assert worst.p_value == 1.0
    assert worst.percentile == 0.0


def test_cost_shifts_the_null_by_the_number_of_trades():
    rng = np.random.default_rng(6)
    returns = rng.normal(0.0005, 0.01, size=800)
    starts, lengths = np.array([10, 300, 600]), np.array([20, 50, 8])
    plain = exposure_matched_pvalue(returns, starts, lengths, 0.02, 300, seed=1)
    costly = exposure_matched_pvalue(
        returns, starts, lengths, 0.02 - 3 * 0.002, 300, seed=1, cost_per_trade=0.002
    )
    assert costly.p_value == plain.p_value
    for q in NULL_QUANTILES:
        assert costly.null_quantiles[q] == pytest.approx(plain.null_quantiles[q] - 0.006)


def test_detects_entries_timed_before_rises():
    rng = np.random.default_rng(8)
    returns = rng.normal(0.0, 0.01, size=2000)
    starts = np.arange(30) * 60 + 5
    lengths = np.full(30, 10)
    for s in starts:
        returns[s : s + 10] += 0.004  # the strategy holds exactly the rising stretches
    observed = float(sum(returns[s : s + 10].sum() for s in starts))
    skilled = exposure_matched_pvalue(returns, starts, lengths, observed, 1000, seed=0)
    assert skilled.p_value < 0.01
    # The same number of trades placed elsewhere (between the rises) is unremarkable.
    elsewhere = starts + 30
    luckless = float(sum(returns[s : s + 10].sum() for s in elsewhere))
    assert exposure_matched_pvalue(returns, elsewhere, lengths, luckless, 1000).p_value > 0.5


def test_fast_enough_for_a_sweep():
    rng = np.random.default_rng(9)
    returns = rng.normal(0.0, 0.01, size=2000)
    lengths = rng.integers(5, 40, size=30)
    starts = np.cumsum(np.concatenate([[0], lengths[:-1]])) + np.arange(30) * 10
    best = math.inf
    for _ in range(3):
        began = time.perf_counter()
        exposure_matched_pvalue(returns, starts, lengths, 0.0, n_draws=1000, seed=1)
        best = min(best, time.perf_counter() - began)
    assert best < 0.5


def test_deterministic_given_the_seed():
    rng = np.random.default_rng(10)
    returns = rng.normal(0.0, 0.01, size=400)
    args = (returns, np.array([0, 50]), np.array([20, 30]), 0.01, 200)
    assert exposure_matched_pvalue(*args, seed=3) == exposure_matched_pvalue(*args, seed=3)
    assert (
        exposure_matched_pvalue(*args, seed=3).null_quantiles
        != exposure_matched_pvalue(*args, seed=4).null_quantiles
    )


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"trade_starts": np.array([0, 5])}, "overlapping"),
        ({"trade_starts": np.array([0, 95])}, "outside"),
        ({"trade_starts": np.array([-1, 50])}, "outside"),
        ({"trade_lengths": np.array([10, 0])}, "trade_lengths"),
        ({"trade_lengths": np.array([10])}, "trade_lengths"),
        ({"trade_starts": np.array([0.5, 50])}, "trade_starts"),
        ({"bar_log_returns": np.full(100, np.nan)}, "bar_log_returns"),
        ({"observed_total": float("inf")}, "observed_total"),
        ({"n_draws": 0}, "n_draws"),
        ({"seed": -2}, "seed"),
        ({"cost_per_trade": float("nan")}, "cost_per_trade"),
    ],
)
def test_permutation_rejects_bad_input(kwargs, name):
    args = {
        "bar_log_returns": np.zeros(100),
        "trade_starts": np.array([0, 50]),
        "trade_lengths": np.array([10, 10]),
        "observed_total": 0.0,
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        exposure_matched_pvalue(**args)


# --------------------------------------------------------------------------------------------
# Alpha t-statistic


def reference_newey_west_se_alpha(y, x, lags):
    """Newey–West standard error of the intercept with explicit loops over lags and bars."""
    n = len(y)
    design = np.column_stack([np.ones(n), x])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    u = y - design @ coef
    s = np.zeros((2, 2))
    for lag in range(lags + 1):
        w = 1.0 if lag == 0 else 1.0 - lag / (lags + 1)
        for t in range(lag, n):
            outer = np.outer(design[t], design[t - lag]) * u[t] * u[t - lag]
            s += w * (outer if lag == 0 else outer + outer.T)
    xtx_inv = np.linalg.inv(design.T @ design)
    v = xtx_inv @ s @ xtx_inv
    return coef, math.sqrt(v[0, 0])


def test_ols_t_matches_linregress():
    rng = np.random.default_rng(11)
    bench = rng.normal(0.0, 0.01, size=700)
    strat = 0.0004 + 0.6 * bench + rng.normal(0.0, 0.008, size=700)
    fit = stats.linregress(bench, strat)
    result = alpha_tstat(strat, bench, covariance="ols")
    assert result.alpha == pytest.approx(fit.intercept, rel=1e-10)
    assert result.beta == pytest.approx(fit.slope, rel=1e-10)
    assert result.se_alpha == pytest.approx(fit.intercept_stderr, rel=1e-10)
    t = fit.intercept / fit.intercept_stderr
    assert result.t_stat == pytest.approx(t, rel=1e-10)
    assert result.p_value == pytest.approx(2 * stats.t.sf(abs(t), 698), rel=1e-9)
    assert result.p_value_positive == pytest.approx(stats.t.sf(t, 698), rel=1e-9)
    assert (result.covariance, result.hac_lags, result.n_obs) == ("ols", 0, 700)


@pytest.mark.parametrize("lags", [0, 1, 5, None])
def test_newey_west_matches_loop_reference(lags):
    rng = np.random.default_rng(12)
    n = 300
    bench = rng.normal(0.0, 0.01, size=n)
    noise = np.zeros(n)
    shocks = rng.normal(0.0, 0.01, size=n) * (1 + 2 * np.abs(bench) / 0.01)  # heteroskedastic
    for t in range(1, n):
        noise[t] = 0.5 * noise[t - 1] + shocks[t]  # autocorrelated
    strat = 0.0005 + 0.3 * bench + noise
    result = alpha_tstat(strat, bench, hac_lags=lags)
    used = newey_west_lags(n) if lags is None else lags
    coef, se = reference_newey_west_se_alpha(strat, bench, used)
    assert result.hac_lags == used
    assert result.covariance == "hac"
    assert result.alpha == pytest.approx(coef[0], rel=1e-10)
    assert result.se_alpha == pytest.approx(se, rel=1e-10)
    assert result.t_stat == pytest.approx(coef[0] / se, rel=1e-10)


def _exact_alpha_and_se(strat, bench, lags):
    """α and its Newey–West standard error in rational arithmetic (the sandwich with its 2×2
    inverse), rounded once at the end: the reference no floating-point order can move."""
    from fractions import Fraction

    y, x = [Fraction(float(v)) for v in strat], [Fraction(float(v)) for v in bench]
    n = len(y)
    sx, sy = sum(x), sum(y)
    sxx, sxy = sum(v * v for v in x), sum(a * b for a, b in zip(x, y, strict=True))
    det = n * sxx - sx * sx
    slope = (n * sxy - sx * sy) / det
    alpha = (sy - slope * sx) / n
    u = [b - alpha - slope * a for a, b in zip(x, y, strict=True)]
    row = [(sxx - sx * a) / det for a in x]  # first row of (X'X)^-1 applied to x_t
    psi = [r * e for r, e in zip(row, u, strict=True)]
    var = sum(v * v for v in psi)
    for lag in range(1, lags + 1):
        weight = 1 - Fraction(lag, lags + 1)
        var += 2 * weight * sum(psi[t] * psi[t - lag] for t in range(lag, n))
    return float(alpha), float(var) ** 0.5


@pytest.mark.parametrize("mean_over_sd", [0.05, 1e2, 1e4, 1e6])
def test_alpha_stays_exact_when_the_benchmarks_mean_dwarfs_its_spread(mean_over_sd):
    """A review found the first closed form (uncentred sums) lost 4 digits of α at a mean 1e4
    times the spread and all of them at 1e7, where the lstsq it replaced kept 12: centred data
    keep it to the reference's rounding."""
    rng = np.random.default_rng(21)
    bench = mean_over_sd * 0.01 + rng.normal(0.0, 0.01, size=200)
    strat = 0.0002 + 0.5 * bench + rng.normal(0.0, 0.005, size=200)
    result = alpha_tstat(strat, bench, hac_lags=3)
    alpha, se = _exact_alpha_and_se(strat, bench, 3)
    tolerance = 1e-12 * max(1.0, mean_over_sd)
    assert result.alpha == pytest.approx(alpha, rel=tolerance)
    assert result.se_alpha == pytest.approx(se, rel=tolerance)


def test_default_lag_rule():
    # floor(4 (n/100)^(2/9)) by hand: n = 100 → 4, 2000 → 7, 8760 → 10.
    assert [newey_west_lags(n) for n in (100, 2000, 8760)] == [4, 7, 10]


def test_hac_fixes_the_size_under_autocorrelated_errors():
    # No alpha, AR(1) errors with φ = 0.7: OLS standard errors are too small and over-reject
    # (about 45% at 5%), Newey–West ones with the rule-of-thumb 5 lags much less so (about
    # 17%: a known small-sample shortfall of the Bartlett kernel under strong persistence).
    rng = np.random.default_rng(13)
    n, reps = 500, 300
    rejections = {"ols": 0, "hac": 0}
    for _ in range(reps):
        bench = rng.normal(0.0, 1.0, size=n)
        shocks = rng.normal(0.0, 1.0, size=n)
        u = np.empty(n)
        u[0] = shocks[0]
        for t in range(1, n):
            u[t] = 0.7 * u[t - 1] + shocks[t]
        strat = 0.5 * bench + u
        for cov in rejections:
            rejections[cov] += alpha_tstat(strat, bench, covariance=cov).p_value < 0.05
    assert rejections["ols"] / reps > 0.25
    assert rejections["hac"] / reps < 0.22
    assert rejections["hac"] < 0.6 * rejections["ols"]


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"benchmark_returns": np.ones(50)}, "benchmark_returns"),
        ({"benchmark_returns": np.arange(49.0)}, "same bars"),
        ({"strategy_returns": np.full(50, np.inf)}, "strategy_returns"),
        ({"hac_lags": -1}, "hac_lags"),
        ({"hac_lags": 50}, "hac_lags"),
        ({"covariance": "hc3"}, "covariance"),
    ],
)
def test_alpha_rejects_bad_input(kwargs, name):
    rng = np.random.default_rng(0)
    args = {"strategy_returns": rng.normal(size=50), "benchmark_returns": rng.normal(size=50)}
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        alpha_tstat(**args)
