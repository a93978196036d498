"""Tests of ``cryptosweep.judging.permutation``: the permutation test over the rotations of a
strategy's signal, and alpha.

No published worked example exists for either statistic on data available here, so the checks
are independent computations:

* the p-value against the Phipson & Smyth (2010) formula counted in plain Python, ties
  included; the rotations' totals (``cryptosweep.trading.rotation``) against a backtest of
  every rotated signal (``tests/trading/test_rotation.py``); the test's size on synthetic
  markets without edge for the strategies that broke the nulls it replaced;
* the OLS t-ratio of the alpha against ``scipy.stats.linregress``, and the Newey–West (1987)
  standard error against a double loop over lags and bars written here (no statsmodels).
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from scipy import stats

from cryptosweep.judging.permutation import (
    NULL_QUANTILES,
    alpha_tstat,
    newey_west_lags,
    rotation_pvalue,
)
from cryptosweep.trading.backtest import simulate
from cryptosweep.trading.rotation import rotated_totals, rotation_shifts

# --------------------------------------------------------------------------------------------
# The permutation p-value


def test_p_value_matches_the_formula_counted_by_hand():
    rng = np.random.default_rng(2)
    totals = rng.normal(0.0, 0.01, size=401)
    result = rotation_pvalue(totals)
    observed, null = totals[0], totals[1:].tolist()
    assert result.p_value == (1 + sum(1 for v in null if v >= observed)) / 401
    below = sum(1 for v in null if v < observed)
    assert result.percentile == pytest.approx(100 * below / 400)
    assert result.n_draws == 400
    assert list(result.null_quantiles) == list(NULL_QUANTILES)
    assert result.null_quantiles[0.5] == pytest.approx(float(np.median(null)), abs=1e-15)


def test_totals_a_few_ulps_apart_are_ties():
    """A stop or a take profit fills at its level: rotations that take other trades can earn
    the same total, which floating point puts a few ulps to either side of the observed one.
    They count as at least as good (Phipson & Smyth), never as worse."""
    level = 0.1 + 0.2  # 0.30000000000000004
    totals = np.array([level, 0.3, level, 0.3 - 1e-16, 0.29, 0.31, 0.0, -0.1])
    result = rotation_pvalue(totals)
    assert result.p_value == (1 + 4) / 8  # three ties and 0.31
    assert result.percentile == pytest.approx(100 * (3 + 0.5 * 3) / 7)  # 0.29, 0, -0.1 below


def test_plus_one_correction_and_the_two_extremes():
    best = rotation_pvalue(np.concatenate([[1.0], np.linspace(-0.5, 0.5, 99)]))
    assert best.p_value == pytest.approx(1 / 100)  # never 0
    assert best.percentile == 100.0
    worst = rotation_pvalue(np.concatenate([[-1.0], np.linspace(-0.5, 0.5, 99)]))
    assert worst.p_value == 1.0 and worst.percentile == 0.0
    always = rotation_pvalue(np.full(50, 0.2))  # every rotation is the strategy itself
    assert always.p_value == 1.0 and always.percentile == 50.0


def regime_market(seed: int, n: int = 1000, drift: float = 0.0) -> tuple[np.ndarray, ...]:
    """A random walk whose volatility alternates, 100 bars calm (0.2 % a bar), 100 volatile
    (2 %), the volatile stretches drifting by ``drift`` a bar: no bar's direction can be told
    from the bars before it beyond that drift."""
    rng = np.random.default_rng(seed)
    volatile = (np.arange(n) // 100) % 2 == 1
    vol = np.where(volatile, 0.02, 0.002)
    moves = rng.normal(0.0, 1.0, n) * vol + np.where(volatile, drift, 0.0)
    close = 100.0 * np.exp(np.cumsum(moves))
    open_ = np.concatenate([[100.0], close[:-1]])
    wick = np.abs(rng.normal(0.0, 1.0, n)) * vol * 0.5
    return (open_, np.maximum(open_, close) * np.exp(wick),
            np.minimum(open_, close) * np.exp(-wick), close, moves)


def rejection_rate(signal_of, rules, markets: int = 200, drift: float = 0.0,
                   rotations: int = 199) -> float:
    """How often a strategy whose signal knows nothing of the next bars is "significant" at 5 %
    over seeded markets."""
    p_values = []
    for seed in range(markets):
        open_, high, low, close, moves = regime_market(seed, drift=drift)
        signal = signal_of(moves, np.random.default_rng(10_000 + seed))
        totals = rotated_totals(open_, high, low, close, signal,
                                rotation_shifts(len(signal), rotations, seed), **rules)
        p_values.append(rotation_pvalue(totals).p_value)
    return float(np.mean(np.asarray(p_values) <= 0.05))


BARRIERS = {"holding_period": 6, "stop_loss": 0.01, "take_profit": 0.03, "fees_bps": 0.0}


def test_entries_after_large_moves_without_skill_are_not_found_skilled():
    """Length-matched random trades (the null before 2026-12-07) called this strategy
    significant at 5 % on 13.5 % of these markets (rotations: 4.5 %): its trades sit in the
    volatile stretches, where a stop or a take profit is reached in a few bars."""
    rate = rejection_rate(lambda moves, _: (np.abs(moves) > 0.02).astype(int), BARRIERS)
    assert rate <= 0.06


@pytest.mark.parametrize("density", [1.0, 0.5, 0.05])
def test_signals_that_know_nothing_are_found_skilled_at_most_as_often_as_the_level(density):
    """Always long and coin flips of two densities, on markets whose volatile stretches drift
    up: one position at a time, such signals take more trades where trades are short, which
    uniformly drawn entries under the same rules (briefly the null) mistook for skill on 15 %
    (always) and 14.5 % (every other bar) of these markets (rotations: 0 %, 4.5 %, 5.0 %)."""
    rules = {"holding_period": 24, "stop_loss": 0.02, "take_profit": 0.02, "fees_bps": 10.0}
    rate = rejection_rate(lambda moves, rng: (rng.random(len(moves)) < density).astype(int),
                          rules, drift=0.002)
    assert rate <= 0.07


def test_detects_entries_timed_before_rises():
    rng = np.random.default_rng(8)
    n = 1500
    moves = rng.normal(0.0, 0.004, n)
    signal = np.zeros(n, dtype=int)
    signal[np.sort(rng.choice(np.arange(20, n - 10), 30, replace=False))] = 1  # irregular
    moves[np.flatnonzero(signal) + 1] += 0.01  # the bar after each signal rises
    close = 100.0 * np.exp(np.cumsum(moves))
    open_ = np.concatenate([[100.0], close[:-1]])
    high, low = np.maximum(open_, close), np.minimum(open_, close)
    rules = {"holding_period": 1, "stop_loss": 0.5, "take_profit": 0.5, "fees_bps": 5.0}
    skilled = rotated_totals(open_, high, low, close, signal, rotation_shifts(n, 999, 0),
                             **rules)
    assert rotation_pvalue(skilled).p_value < 0.01
    late = rotated_totals(open_, high, low, close, np.roll(signal, 7),
                          rotation_shifts(n, 999, 0), **rules)
    assert rotation_pvalue(late).p_value > 0.05  # the same signals, a few bars off


def test_fast_enough_for_a_sweep():
    rng = np.random.default_rng(9)
    open_, high, low, close, _ = regime_market(1, n=2000)
    signal = (rng.random(2000) < 0.5).astype(int) * np.where(rng.random(2000) < 0.5, 1, -1)
    best = math.inf
    for _ in range(2):
        began = time.perf_counter()
        rotated_totals(open_, high, low, close, signal, rotation_shifts(2000), **BARRIERS)
        best = min(best, time.perf_counter() - began)
    assert best < 2.0
    assert simulate(open_, high, low, close, signal, **BARRIERS).n_trades > 200


@pytest.mark.parametrize(
    ("totals", "match"),
    [(np.array([0.1]), "at least one rotation"), (np.zeros((2, 2)), "1-D"),
     (np.array([0.1, np.nan]), "finite")],
)
def test_permutation_rejects_bad_input(totals, match):
    with pytest.raises(ValueError, match=match):
        rotation_pvalue(totals)


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
