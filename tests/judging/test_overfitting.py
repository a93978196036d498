"""Tests of ``cryptosweep.judging.overfitting``: PSR, DSR and PBO (CSCV).

References the numbers are checked against:

* the worked example of Bailey & López de Prado, "The Deflated Sharpe Ratio" (JPM 2014):
  DSR ≈ 0.9004 (and SR0 ≈ 0.1132 per observation);
* a hand enumeration of CSCV on a 4 × 3 matrix (all 6 combinations, in the comments);
* independent references written here: PSR/DSR in another algebraic form with
  ``scipy.stats.norm`` (survival and inverse-survival functions), and a brute-force loop of
  CSCV straight from the steps of Bailey, Borwein, López de Prado & Zhu (JCF 2017).

The ``pypbo`` package (a third-party PBO implementation) is not installable in this
environment, so it is not used as a cross-check; the brute-force reference stands in for it.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from cryptosweep.judging.overfitting import (
    PBOResult,
    deflated_sharpe_from_returns,
    deflated_sharpe_ratio,
    expected_max_sharpe_ratio,
    probabilistic_sharpe_ratio,
    probability_of_backtest_overfitting,
)

# --------------------------------------------------------------------------------------------
# Independent references


def reference_psr(sr, sr_benchmark, n_obs, skew, kurtosis):
    """PSR as 1 − Φ(−z), with the standard error of the Sharpe ratio written out (Mertens)."""
    se = math.sqrt((1.0 + 0.5 * sr**2 - skew * sr + (kurtosis - 3.0) / 4.0 * sr**2) / (n_obs - 1))
    return float(stats.norm.sf((sr_benchmark - sr) / se))


def reference_sr0(sr_variance, n_trials):
    """SR0 with the inverse survival function: Φ⁻¹(1 − p) = isf(p)."""
    g = 0.5772156649015329  # Euler–Mascheroni constant, written out
    return math.sqrt(sr_variance) * (
        (1 - g) * stats.norm.isf(1.0 / n_trials) + g * stats.norm.isf(math.exp(-1) / n_trials)
    )


def reference_cscv(returns, n_splits):
    """Brute-force CSCV: loop over combinations, concatenate rows, rank with scipy."""
    t, n = returns.shape
    size = t // n_splits
    blocks = [returns[i * size : (i + 1) * size] for i in range(n_splits)]

    def sharpe(rows):
        out = []
        for j in range(n):
            x = rows[:, j]
            out.append(0.0 if np.all(x == x[0]) else x.mean() / x.std(ddof=1))
        return np.array(out)

    logits, is_perf, oos_perf = [], [], []
    for combo in itertools.combinations(range(n_splits), n_splits // 2):
        rest = [b for b in range(n_splits) if b not in combo]
        sr_is = sharpe(np.concatenate([blocks[b] for b in combo]))
        sr_oos = sharpe(np.concatenate([blocks[b] for b in rest]))
        best = int(np.flatnonzero(sr_is == sr_is.max())[0])
        omega = stats.rankdata(sr_oos, method="average")[best] / (n + 1)
        logits.append(math.log(omega / (1 - omega)))
        is_perf.append(sr_is[best])
        oos_perf.append(sr_oos[best])
    logits = np.array(logits)
    return float(np.mean(logits <= 0)), logits, np.array(is_perf), np.array(oos_perf)


# --------------------------------------------------------------------------------------------
# PSR


def test_psr_equal_to_benchmark_is_one_half():
    assert probabilistic_sharpe_ratio(0.1, 0.1, 500, -1.0, 6.0) == pytest.approx(0.5, abs=1e-15)
    assert probabilistic_sharpe_ratio(0.0, 0.0, 2, 0.0, 3.0) == pytest.approx(0.5, abs=1e-15)


def test_psr_monotone_in_sr_and_n():
    srs = np.linspace(-0.2, 0.3, 26)
    values = [probabilistic_sharpe_ratio(s, 0.05, 300, -0.5, 5.0) for s in srs]
    assert np.all(np.diff(values) > 0)
    ns = [10, 30, 100, 300, 1000]
    above = [probabilistic_sharpe_ratio(0.08, 0.05, n, -0.5, 5.0) for n in ns]
    below = [probabilistic_sharpe_ratio(0.02, 0.05, n, -0.5, 5.0) for n in ns]
    assert np.all(np.diff(above) > 0)  # more evidence for a Sharpe ratio above the benchmark
    assert np.all(np.diff(below) < 0)  # ... and against one below it


@pytest.mark.parametrize(
    "args",
    [
        (0.1, 0.0, 250, 0.0, 3.0),
        (0.05, 0.02, 1000, -2.0, 12.0),
        (-0.03, 0.01, 60, 0.7, 4.5),
        (0.3, 0.1, 20, 1.5, 2.0),
    ],
)
def test_psr_matches_reference(args):
    assert probabilistic_sharpe_ratio(*args) == pytest.approx(reference_psr(*args), rel=1e-12)


def test_psr_normal_returns_reduce_to_textbook_standard_error():
    # Normal returns (skew 0, kurtosis 3): se(SR) = sqrt((1 + SR²/2) / (n − 1)).
    sr, n = 0.1, 401
    z = sr / math.sqrt((1 + sr**2 / 2) / (n - 1))
    assert probabilistic_sharpe_ratio(sr, 0.0, n, 0.0, 3.0) == pytest.approx(stats.norm.cdf(z))


@pytest.mark.parametrize(
    "args",
    [
        (0.1, 0.0, 1, 0.0, 3.0),  # n_obs < 2
        (float("nan"), 0.0, 100, 0.0, 3.0),
        (1.0, 0.0, 100, 0.0, -3.0),  # impossible kurtosis: variance term negative
    ],
)
def test_psr_rejects_bad_input(args):
    with pytest.raises(ValueError):
        probabilistic_sharpe_ratio(*args)


# --------------------------------------------------------------------------------------------
# DSR


def test_dsr_paper_example():
    # Bailey & López de Prado (2014): N = 100 trials, variance of their ANNUALISED Sharpe
    # ratios 0.5, T = 1250 daily returns, skewness −3, kurtosis 10, annualised SR 2.5,
    # 250 observations a year. Per observation: SR = 2.5/√250, V = 0.5/250.
    per_year = 250
    sr = 2.5 / math.sqrt(per_year)
    variance = 0.5 / per_year
    assert expected_max_sharpe_ratio(variance, 100) == pytest.approx(0.1132, abs=1e-4)
    dsr = deflated_sharpe_ratio(sr, variance, 100, 1250, -3.0, 10.0)
    assert dsr == pytest.approx(0.9004, abs=1e-3)


@pytest.mark.parametrize(
    "args",
    [
        (0.15, 0.002, 100, 1250, -3.0, 10.0),
        (0.05, 0.0001, 2, 500, 0.0, 3.0),
        (0.2, 0.01, 5000, 8760, 0.4, 25.0),
    ],
)
def test_dsr_matches_reference(args):
    sr, var, n_trials, n_obs, skew, kurt = args
    expected = reference_psr(sr, reference_sr0(var, n_trials), n_obs, skew, kurt)
    assert deflated_sharpe_ratio(*args) == pytest.approx(expected, rel=1e-12)
    assert expected_max_sharpe_ratio(var, n_trials) == pytest.approx(
        reference_sr0(var, n_trials), rel=1e-12
    )


def test_dsr_deflates_more_with_more_trials():
    values = [deflated_sharpe_ratio(0.1, 0.002, n, 1000, 0.0, 3.0) for n in (2, 10, 100, 1000)]
    assert np.all(np.diff(values) < 0)
    # No dispersion among trials: nothing to deflate, DSR = PSR against 0.
    assert deflated_sharpe_ratio(0.1, 0.0, 50, 1000, 0.0, 3.0) == pytest.approx(
        probabilistic_sharpe_ratio(0.1, 0.0, 1000, 0.0, 3.0)
    )


def test_dsr_rejects_bad_input():
    with pytest.raises(ValueError, match="n_trials"):
        deflated_sharpe_ratio(0.1, 0.002, 1, 1000, 0.0, 3.0)
    with pytest.raises(ValueError, match="sr_variance"):
        deflated_sharpe_ratio(0.1, -0.002, 10, 1000, 0.0, 3.0)


def test_dsr_from_returns_matches_reference():
    rng = np.random.default_rng(20140901)
    best = rng.standard_t(5, size=2000) * 0.01 + 0.002
    trials = rng.normal(0.0, 0.03, size=40)
    out = deflated_sharpe_from_returns(best, trials)

    sr = best.mean() / best.std(ddof=1)
    skew = stats.skew(best, bias=False)
    kurt = stats.kurtosis(best, fisher=False, bias=False)
    var = trials.var(ddof=1)
    sr0 = reference_sr0(var, 40)
    assert out["sr"] == pytest.approx(sr, rel=1e-12)
    assert out["skew"] == pytest.approx(skew, rel=1e-12)
    assert out["kurtosis"] == pytest.approx(kurt, rel=1e-12)
    assert out["kurtosis"] > 3.0  # plain kurtosis of a Student t: heavier tails than normal
    assert out["sr_variance"] == pytest.approx(var, rel=1e-12)
    assert (out["n_trials"], out["n_obs"]) == (40, 2000)
    assert out["sr0"] == pytest.approx(sr0, rel=1e-12)
    assert out["dsr"] == pytest.approx(reference_psr(sr, sr0, 2000, skew, kurt), rel=1e-12)
    assert out["psr"] == pytest.approx(reference_psr(sr, 0.0, 2000, skew, kurt), rel=1e-12)
    assert all(type(v) in (float, int) for v in out.values())


def test_dsr_from_returns_rejects_bad_input():
    with pytest.raises(ValueError, match="constant"):
        deflated_sharpe_from_returns(np.full(100, 0.01), np.array([0.1, 0.2]))
    with pytest.raises(ValueError, match="2 trials"):
        deflated_sharpe_from_returns(np.arange(100.0), np.array([0.1]))
    with pytest.raises(ValueError, match="finite"):
        deflated_sharpe_from_returns(np.array([1.0, np.nan, 2.0, 3.0]), np.array([0.1, 0.2]))


# --------------------------------------------------------------------------------------------
# PBO


def test_pbo_dominant_column_is_zero():
    rng = np.random.default_rng(1)
    returns = rng.normal(0.0, 1.0, size=(400, 8))
    returns[:, 3] = 1.0 + 0.01 * rng.normal(size=400)  # best Sharpe ratio on any rows
    result = probability_of_backtest_overfitting(returns, n_splits=8)
    assert result.pbo == 0.0
    assert result.n_combinations == 70
    # Always selected, always ranked N = 8 out of sample: ω = 8/9, λ = ln 8.
    np.testing.assert_allclose(result.logits, math.log(8.0))


def test_pbo_pure_noise_is_near_one_half():
    values = []
    for seed in range(5):
        rng = np.random.default_rng(seed)
        result = probability_of_backtest_overfitting(rng.normal(size=(480, 50)), n_splits=16)
        assert result.n_combinations == 12870
        assert 0.05 < result.pbo < 0.95
        values.append(result.pbo)
    assert 0.3 < np.mean(values) < 0.7


def test_pbo_hand_enumerated():
    # T = 4 rows, S = 4 blocks of one row, N = 3 configurations A, B, C.
    #   A = [3, 2, -1, -3], B = [-1, 2, 1, 0], C = 0.5 constant (Sharpe 0 on any rows).
    # The Sharpe ratio (ddof=1) of two returns (a, b) is (a + b) / (√2 · |a − b|):
    #   rows   A                 B                C
    #   0,1    2.5√2  =  3.536   0.5/(3/√2)=.236  0
    #   2,3   -2/√2   = -1.414   0.5/(1/√2)=.707  0
    #   0,2    1/(4/√2)= .354    0                0
    #   1,3  -.5/(5/√2)=-.141    1/(2/√2) = .707  0
    #   0,3    0                -.5/(1/√2)=-.707  0
    #   1,2   .5/(3/√2)= .236    1.5/(1/√2)=2.121 0
    # Combinations (IS | OOS), winner n*, its OOS rank among 3, ω = rank/4, λ = ln(ω/(1−ω)):
    #   1. {0,1}|{2,3}: n* = A (3.536); OOS A -1.414 < C 0 < B .707 -> rank 1, λ = ln(1/3)
    #   2. {0,2}|{1,3}: n* = A (.354);  OOS A -.141 < C 0 < B .707  -> rank 1, λ = ln(1/3)
    #   3. {0,3}|{1,2}: A 0 = C 0 > B -> tie, lowest index n* = A; OOS C 0 < A .236 < B
    #                   -> rank 2, ω = 1/2, λ = 0 (choosing C would give ln(1/3))
    #   4. {1,2}|{0,3}: n* = B (2.121); OOS B -.707 < A 0 = C 0   -> rank 1, λ = ln(1/3)
    #   5. {1,3}|{0,2}: n* = B (.707);  OOS B 0 = C 0 < A .354    -> average rank 1.5,
    #                   ω = 3/8, λ = ln(3/5)
    #   6. {2,3}|{0,1}: n* = B (.707);  OOS C 0 < B .236 < A 3.536 -> rank 2, λ = 0
    # Every λ <= 0, so PBO = 1.
    returns = np.array(
        [
            [3.0, -1.0, 0.5],
            [2.0, 2.0, 0.5],
            [-1.0, 1.0, 0.5],
            [-3.0, 0.0, 0.5],
        ]
    )
    result = probability_of_backtest_overfitting(returns, n_splits=4)
    third = math.log(1.0 / 3.0)
    np.testing.assert_allclose(
        result.logits, [third, third, 0.0, third, math.log(0.6), 0.0], atol=1e-12
    )
    r2 = math.sqrt(2.0)
    np.testing.assert_allclose(
        result.is_performance, [2.5 * r2, r2 / 4, 0.0, 1.5 * r2, r2 / 2, r2 / 2], atol=1e-12
    )
    np.testing.assert_allclose(
        result.oos_performance, [-r2, -0.1 * r2, r2 / 6, -r2 / 2, 0.0, r2 / 6], atol=1e-12
    )
    assert result.pbo == 1.0
    assert result.n_combinations == 6


@pytest.mark.parametrize(("t", "n", "n_splits"), [(103, 7, 8), (60, 4, 10), (37, 12, 2)])
def test_pbo_matches_brute_force(t, n, n_splits):
    rng = np.random.default_rng(t * n)
    returns = rng.normal(0.001, 0.02, size=(t, n))
    returns[:, 1] = 0.003  # constant column: Sharpe 0 everywhere
    returns[: t // 2, 2] = -0.001  # constant on some blocks only
    pbo, logits, is_perf, oos_perf = reference_cscv(returns, n_splits)
    result = probability_of_backtest_overfitting(returns, n_splits=n_splits)
    assert result.n_combinations == math.comb(n_splits, n_splits // 2) == len(logits)
    np.testing.assert_allclose(result.logits, logits, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(result.is_performance, is_perf, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(result.oos_performance, oos_perf, rtol=1e-9, atol=1e-12)
    assert result.pbo == pbo


def test_pbo_drops_remainder_rows_at_the_end():
    rng = np.random.default_rng(7)
    returns = rng.normal(size=(64, 5))
    extra = np.vstack([returns, 1e6 * rng.normal(size=(7, 5))])
    a = probability_of_backtest_overfitting(returns, n_splits=8)
    b = probability_of_backtest_overfitting(extra, n_splits=8)
    np.testing.assert_array_equal(a.logits, b.logits)
    np.testing.assert_array_equal(a.is_performance, b.is_performance)


def test_pbo_is_not_computed_when_no_configuration_differs():
    # No trial traded (an attack's night of thresholds no model reaches): every rank a tie,
    # every logit 0 and "PBO 1.00 > 0.5" read as certain overfitting. Not a number to show.
    flat = np.zeros((400, 5))
    with pytest.raises(ValueError, match="same on every bar"):
        probability_of_backtest_overfitting(flat, 8)
    alike = np.tile(np.random.default_rng(4).normal(size=(400, 1)), (1, 3))
    with pytest.raises(ValueError, match="same on every bar"):
        probability_of_backtest_overfitting(alike, 8)
    # A difference only in the rows the blocks leave out (403 rows, 8 blocks of 50) changes
    # no rank: still not computed (a review).
    remainder = np.zeros((403, 4))
    remainder[401, 1] = 0.02
    with pytest.raises(ValueError, match="same on every bar"):
        probability_of_backtest_overfitting(remainder, 8)
    # One configuration that differs is enough for a ranking.
    alike[::7, 2] += 0.1
    assert 0.0 <= probability_of_backtest_overfitting(alike, 8).pbo <= 1.0


def test_pbo_result_is_frozen_and_serialisable():
    result = probability_of_backtest_overfitting(np.random.default_rng(3).normal(size=(40, 3)), 4)
    assert isinstance(result, PBOResult)
    with pytest.raises(AttributeError):
        result.pbo = 0.0  # type: ignore[misc]
    with pytest.raises(ValueError):
        result.logits[0] = 1.0
    as_dict = result.to_dict()
    assert as_dict["n_combinations"] == 6 and len(as_dict["logits"]) == 6


@pytest.mark.parametrize(
    ("shape", "n_splits", "match"),
    [
        ((100, 1), 4, "2 configurations"),
        ((100, 3), 5, "even"),
        ((100, 3), 0, "even"),
        ((6, 3), 8, "rows"),
        ((3, 3), 2, "at least 2"),
        ((100,), 4, "2-D"),
    ],
)
def test_pbo_rejects_bad_input(shape, n_splits, match):
    with pytest.raises(ValueError, match=match):
        probability_of_backtest_overfitting(np.ones(shape), n_splits=n_splits)


def test_pbo_rejects_nan():
    returns = np.ones((20, 3))
    returns[5, 1] = np.nan
    with pytest.raises(ValueError, match="finite"):
        probability_of_backtest_overfitting(returns, n_splits=4)


def test_probability_of_loss_and_degradation_against_a_direct_loop():
    """Bailey et al. (2017), section 2.3, computed here split by split with plain numpy."""
    import itertools

    from scipy import stats as scipy_stats

    rng = np.random.default_rng(5)
    returns = rng.normal(0.0, 0.01, (160, 6)) + np.array([0.002, 0, 0, 0, 0, -0.001])
    result = probability_of_backtest_overfitting(returns, n_splits=8)
    blocks = returns.reshape(8, 20, 6)
    losses, pairs = [], []
    for chosen in itertools.combinations(range(8), 4):
        rest = [b for b in range(8) if b not in chosen]
        ins, outs = blocks[list(chosen)].reshape(-1, 6), blocks[rest].reshape(-1, 6)
        sr_in = ins.mean(0) / ins.std(0, ddof=1)
        sr_out = outs.mean(0) / outs.std(0, ddof=1)
        best = int(np.argmax(sr_in))
        losses.append(sr_out[best] < 0)
        pairs.append((sr_in[best], sr_out[best]))
    assert result.probability_of_loss == pytest.approx(np.mean(losses), abs=1e-12)
    fit = scipy_stats.linregress([p[0] for p in pairs], [p[1] for p in pairs])
    slope, intercept = result.degradation
    assert slope == pytest.approx(fit.slope, rel=1e-9)
    assert intercept == pytest.approx(fit.intercept, rel=1e-9, abs=1e-12)
