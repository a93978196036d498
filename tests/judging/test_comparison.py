"""Tests of ``cryptosweep.judging.comparison``: paired Sharpe ratio tests on the same bars.

No published worked example is used: Jobson & Korkie (1981) and Memmel (2003) give the formula
only, and Ledoit & Wolf (2008) report simulations and an application to fund returns whose data
is not available here. The checks are independent computations:

* a hand computation of the Jobson–Korkie–Memmel statistic on 8 returns with the ``statistics``
  module of the standard library (no numpy);
* Monte Carlo on bivariate normal returns: the variance of the Sharpe difference across
  simulated samples matches Memmel's θ/T, and the test's size is its nominal level;
* the bootstrap's standard error matches θ/T on i.i.d. normal data, it resamples the two series
  on the same bars (a series and an affine copy of it keep a near-constant difference), and it
  is deterministic given its seed.
"""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
from scipy import stats

from cryptosweep.judging.comparison import (
    PairedTest,
    bootstrap_sharpe_difference,
    default_block_length,
    jobson_korkie_memmel,
    sharpe_above_flat,
)


def bivariate_normal(rng, n, mean_a, mean_b, rho, size=None):
    """Returns with unit volatility and correlation rho; shape (size, n) or (n,)."""
    shape = (n,) if size is None else (size, n)
    z1 = rng.standard_normal(shape)
    z2 = rng.standard_normal(shape)
    a = mean_a + z1
    b = mean_b + rho * z1 + math.sqrt(1 - rho**2) * z2
    return a, b


def memmel_theta(sr_a, sr_b, rho):
    return 2 - 2 * rho + 0.5 * (sr_a**2 + sr_b**2 - 2 * sr_a * sr_b * rho**2)


# --------------------------------------------------------------------------------------------
# Jobson–Korkie–Memmel


def test_jkm_hand_computed_small_example():
    a = [0.012, -0.004, 0.021, 0.003, -0.011, 0.017, 0.006, 0.009]
    b = [0.008, -0.006, 0.010, 0.004, -0.002, 0.007, 0.001, 0.005]
    sr_a = statistics.mean(a) / statistics.stdev(a)
    sr_b = statistics.mean(b) / statistics.stdev(b)
    rho = statistics.correlation(a, b)
    theta = 2 - 2 * rho + 0.5 * (sr_a**2 + sr_b**2 - 2 * sr_a * sr_b * rho**2)
    z = (sr_a - sr_b) / math.sqrt(theta / len(a))
    p = 0.5 * math.erfc(z / math.sqrt(2))  # 1 − Φ(z)

    result = jobson_korkie_memmel(np.array(a), np.array(b))
    assert isinstance(result, PairedTest)
    assert result.sharpe_a == pytest.approx(sr_a, rel=1e-12)
    assert result.sharpe_b == pytest.approx(sr_b, rel=1e-12)
    assert result.difference == pytest.approx(sr_a - sr_b, rel=1e-12)
    assert result.statistic == pytest.approx(z, rel=1e-10)
    assert result.p_value == pytest.approx(p, rel=1e-10)
    # Swapping the series flips the sign of z and gives the complementary p-value.
    swapped = jobson_korkie_memmel(np.array(b), np.array(a))
    assert swapped.statistic == pytest.approx(-z, rel=1e-10)
    assert swapped.p_value == pytest.approx(1 - p, rel=1e-10)


def test_jkm_variance_matches_monte_carlo():
    # Var(SR_a − SR_b) across 4000 simulated samples of T = 500 vs Memmel's θ/T.
    rng = np.random.default_rng(1981)
    n, reps, rho = 500, 4000, 0.5
    mean_a, mean_b = 0.10, 0.02  # unit volatility: the true per-bar Sharpe ratios
    a, b = bivariate_normal(rng, n, mean_a, mean_b, rho, size=reps)
    diffs = a.mean(1) / a.std(1, ddof=1) - b.mean(1) / b.std(1, ddof=1)
    theta = memmel_theta(mean_a, mean_b, rho)
    assert diffs.var(ddof=1) * n == pytest.approx(theta, rel=0.08)
    # And the function's own standard error, difference / z, agrees with θ/T sample by sample.
    for i in range(5):
        result = jobson_korkie_memmel(a[i], b[i])
        se = result.difference / result.statistic
        assert se == pytest.approx(math.sqrt(theta / n), rel=0.1)


def test_sharpe_above_flat_variance_matches_monte_carlo_and_lo_2002():
    """The variance of a Sharpe ratio estimated from T i.i.d. normal returns is
    (1 + SR²/2)/T (Lo 2002, "The Statistics of Sharpe Ratios", Financial Analysts Journal
    58(4), eq. 9): checked against 4000 simulated samples, at an SR large enough that the SR²/2
    term (18 %) is not lost in the tolerance, then against a hand computation."""
    rng = np.random.default_rng(2002)
    n, reps, sr = 250, 4000, 0.6
    a = sr + rng.standard_normal((reps, n))
    estimates = a.mean(1) / a.std(1, ddof=1)
    assert estimates.var(ddof=1) * n == pytest.approx(1 + sr**2 / 2, rel=0.06)
    for i in range(5):  # the function's standard error, difference / z, is the same one
        result = sharpe_above_flat(a[i])
        assert result.sharpe_b == 0.0 and result.difference == result.sharpe_a
        assert result.difference / result.statistic == pytest.approx(
            math.sqrt((1 + result.sharpe_a**2 / 2) / n), rel=1e-12)
    x = [0.012, -0.004, 0.021, 0.003, -0.011, 0.017, 0.006, 0.009]
    sr_x = statistics.mean(x) / statistics.stdev(x)
    z = sr_x / math.sqrt((1 + sr_x**2 / 2) / len(x))
    hand = sharpe_above_flat(np.array(x))
    assert hand.statistic == pytest.approx(z, rel=1e-12)
    assert hand.p_value == pytest.approx(0.5 * math.erfc(z / math.sqrt(2)), rel=1e-10)


def test_sharpe_above_flat_size_under_the_null():
    # A challenger no better than flat (true SR 0): p < 0.05 in about 5% of 3000 samples.
    rng = np.random.default_rng(1)
    pvalues = np.array([sharpe_above_flat(r).p_value
                        for r in rng.standard_normal((3000, 400))])
    assert np.mean(pvalues < 0.05) == pytest.approx(0.05, abs=0.015)


def test_jkm_size_under_the_null():
    # Equal true Sharpe ratios: p < 0.05 in about 5% of 3000 samples.
    rng = np.random.default_rng(2003)
    a, b = bivariate_normal(rng, 400, 0.05, 0.05, 0.7, size=3000)
    pvalues = np.array([jobson_korkie_memmel(a[i], b[i]).p_value for i in range(len(a))])
    assert np.mean(pvalues < 0.05) == pytest.approx(0.05, abs=0.015)
    assert np.mean(pvalues < 0.5) == pytest.approx(0.5, abs=0.04)


def test_jkm_detects_a_better_challenger_and_identical_series():
    rng = np.random.default_rng(3)
    a, b = bivariate_normal(rng, 3000, 0.15, 0.0, 0.6)
    assert jobson_korkie_memmel(a, b).p_value < 1e-6
    same = jobson_korkie_memmel(a, a.copy())
    assert (same.statistic, same.p_value, same.difference) == (0.0, 0.5, 0.0)


@pytest.mark.parametrize(
    ("a", "b", "name"),
    [
        (np.zeros((3, 2)), np.ones(3), "returns_a"),
        (np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0, 3.0]), "same bars"),
        (np.array([1.0, 1.0, 1.0]), np.array([1.0, 2.0, 3.0]), "returns_a"),
        (np.array([1.0, 2.0, 3.0]), np.array([1.0, np.nan, 3.0]), "returns_b"),
        (np.array([1.0, 2.0]), np.array([1.0, 2.0]), "returns_a"),
    ],
)
def test_jkm_rejects_bad_input(a, b, name):
    with pytest.raises(ValueError, match=name):
        jobson_korkie_memmel(a, b)


# --------------------------------------------------------------------------------------------
# Paired block bootstrap


def test_bootstrap_standard_error_matches_theory_on_iid_normal_data():
    rng = np.random.default_rng(2008)
    a, b = bivariate_normal(rng, 2000, 0.08, 0.02, 0.4)
    jkm = jobson_korkie_memmel(a, b)
    boot = bootstrap_sharpe_difference(a, b, n_draws=2000, seed=11)
    assert boot.difference == pytest.approx(jkm.difference, rel=1e-12)
    # z = d / sd(d*): the bootstrap standard error is Memmel's √(θ/T) within 10%.
    theta = memmel_theta(jkm.sharpe_a, jkm.sharpe_b, np.corrcoef(a, b)[0, 1])
    boot_se = boot.difference / boot.statistic
    assert boot_se == pytest.approx(math.sqrt(theta / 2000), rel=0.1)
    # Both tests agree on the evidence (one-sided p-values within a factor of ~2).
    assert boot.p_value == pytest.approx(jkm.p_value, abs=0.03)


def test_bootstrap_resamples_the_same_bars_for_both_series():
    # b is an affine copy of a: SR*_a − SR*_b = c / (2 s*_a) in every paired draw, which
    # barely moves; resampling the series independently would give a spread of about √(2/T).
    rng = np.random.default_rng(5)
    a = rng.standard_t(4, size=1000) * 0.01
    b = 2.0 * a - 0.001
    result = bootstrap_sharpe_difference(a, b, n_draws=500, seed=1)
    se = result.difference / result.statistic
    assert se < 0.1 * math.sqrt(2 / 1000)
    assert result.p_value == pytest.approx(1 / 501)


def test_bootstrap_is_deterministic_and_seed_dependent():
    rng = np.random.default_rng(9)
    a, b = bivariate_normal(rng, 500, 0.05, 0.03, 0.5)
    first = bootstrap_sharpe_difference(a, b, n_draws=300, seed=42)
    again = bootstrap_sharpe_difference(a, b, n_draws=300, seed=42)
    other = bootstrap_sharpe_difference(a, b, n_draws=300, seed=43)
    assert first == again
    assert first.statistic != other.statistic


def test_bootstrap_p_values_under_the_null_and_the_alternative():
    rng = np.random.default_rng(17)
    # Equal Sharpe ratios (b is a with its bars permuted, same marginal, same SR exactly).
    a = rng.standard_normal(1500) * 0.01 + 0.0005
    b = rng.permutation(a)
    null = bootstrap_sharpe_difference(a, b, n_draws=999, seed=0)
    assert null.difference == pytest.approx(0.0, abs=1e-12)
    assert 0.3 < null.p_value < 0.7
    better = a + 0.002
    alt = bootstrap_sharpe_difference(better, b, n_draws=999, seed=0)
    assert alt.p_value == pytest.approx(1 / 1000)
    # The p-value never reaches 0 (the +1 correction) and never exceeds 1.
    worse = bootstrap_sharpe_difference(b, better, n_draws=999, seed=0)
    assert worse.p_value == pytest.approx(1.0)


def test_bootstrap_block_length_default_and_autocorrelation():
    assert default_block_length(2000) == 13
    assert default_block_length(1) == 1
    # AR(1) returns: blocks keep the serial dependence, so the standard error with blocks
    # exceeds the i.i.d. pairs bootstrap's (b = 1).
    rng = np.random.default_rng(23)
    n, phi = 3000, 0.6
    shocks = rng.standard_normal((2, n))
    a = np.empty(n)
    b = np.empty(n)
    a[0], b[0] = shocks[:, 0]
    for t in range(1, n):
        a[t] = phi * a[t - 1] + shocks[0, t]
        b[t] = phi * b[t - 1] + shocks[1, t]
    a += 0.05
    iid = bootstrap_sharpe_difference(a, b, n_draws=800, block_length=1, seed=2)
    blocks = bootstrap_sharpe_difference(a, b, n_draws=800, block_length=50, seed=2)
    se_iid = iid.difference / iid.statistic
    se_blocks = blocks.difference / blocks.statistic
    assert se_blocks > 1.5 * se_iid


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"n_draws": 0}, "n_draws"),
        ({"block_length": 0}, "block_length"),
        ({"block_length": 101}, "block_length"),
        ({"seed": -1}, "seed"),
        ({"returns_b": np.ones(100)}, "returns_b"),
    ],
)
def test_bootstrap_rejects_bad_input(kwargs, name):
    rng = np.random.default_rng(0)
    args = {"returns_a": rng.standard_normal(100), "returns_b": rng.standard_normal(100)}
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        bootstrap_sharpe_difference(**args)


def test_jkm_p_value_is_normal_tail():
    rng = np.random.default_rng(31)
    a, b = bivariate_normal(rng, 800, 0.06, 0.01, 0.3)
    result = jobson_korkie_memmel(a, b)
    assert result.p_value == pytest.approx(stats.norm.sf(result.statistic), rel=1e-12)
