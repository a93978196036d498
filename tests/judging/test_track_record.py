"""Tests of ``cryptosweep.judging.track_record``: MinTRL, MinBTL and the Harvey–Liu haircut.

Published numbers checked:

* Bailey, Borwein, López de Prado & Zhu (2014), "Pseudo-mathematics and financial
  charlatanism": with 5 years of data no more than 45 independent configurations should be
  tried for an annual Sharpe ratio of 1, i.e. ``MinBTL(45) ≈ 5`` years; the expected maximum of
  10 standard normals by their approximation, about 1.57 (as quoted in public checks of the
  paper).

Harvey & Liu (2015) report haircuts in exhibits whose Holm and BHY figures come from a
simulation of the Harvey–Liu–Zhu model of published factors; their text was not available to
check here (the search found only abstracts), and this module replaces that simulation by a
documented deterministic assumption. The haircut is therefore checked against independent
computations written differently here: root finding on the t-distribution for the inversion,
``scipy.stats.false_discovery_control(method="by")`` for BHY, a textbook loop for Holm, and
Lo's (2002) sum form of the autocorrelation correction.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, optimize, stats

from cryptosweep.judging.overfitting import probabilistic_sharpe_ratio
from cryptosweep.judging.track_record import (
    autocorrelation_factor,
    expected_maximum_sharpe,
    haircut_sharpe,
    minimum_backtest_length,
    minimum_track_record_length,
)

# --------------------------------------------------------------------------------------------
# MinTRL


@pytest.mark.parametrize(
    ("sr", "sr_star", "skew", "kurt", "conf"),
    [
        (0.1, 0.0, 0.0, 3.0, 0.95),
        (0.05, 0.02, -1.5, 9.0, 0.95),
        (0.2, 0.1, 0.5, 4.0, 0.99),
        (0.03, -0.01, -0.3, 25.0, 0.9),
    ],
)
def test_min_trl_is_where_psr_reaches_the_confidence(sr, sr_star, skew, kurt, conf):
    # MinTRL is the PSR equation solved for n: PSR at n = MinTRL is the confidence (written
    # here in Mertens' standard-error form), and the PSR of cryptosweep.judging.overfitting (written
    # separately, integer n only) crosses the confidence between floor(n) and ceil(n).
    n = minimum_track_record_length(sr, sr_star, skew, kurt, conf)
    se = math.sqrt((1 + 0.5 * sr**2 - skew * sr + (kurt - 3) / 4 * sr**2) / (n - 1))
    assert stats.norm.cdf((sr - sr_star) / se) == pytest.approx(conf, abs=1e-12)
    assert probabilistic_sharpe_ratio(sr, sr_star, math.ceil(n), skew, kurt) >= conf
    assert probabilistic_sharpe_ratio(sr, sr_star, math.floor(n), skew, kurt) < conf


def test_min_trl_by_hand_for_normal_returns():
    # Normal returns, SR = 0.1 per bar, SR* = 0, 95%: 1 + (1 + 0.1²/2) · (1.644854/0.1)².
    z = 1.6448536269514722
    expected = 1.0 + (1.0 + 0.005) * (z / 0.1) ** 2
    assert minimum_track_record_length(0.1, 0.0, 0.0, 3.0) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(272.9, abs=0.1)


def test_min_trl_shape():
    assert minimum_track_record_length(0.05, 0.05, 0.0, 3.0) == math.inf
    assert minimum_track_record_length(0.04, 0.05, 0.0, 3.0) == math.inf
    # Negative skew and fat tails lengthen the record; a higher confidence too.
    base = minimum_track_record_length(0.1, 0.0, 0.0, 3.0)
    assert minimum_track_record_length(0.1, 0.0, -2.0, 3.0) > base
    assert minimum_track_record_length(0.1, 0.0, 0.0, 10.0) > base
    assert minimum_track_record_length(0.1, 0.0, 0.0, 3.0, confidence=0.99) > base


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"confidence": 1.0}, "confidence"),
        ({"confidence": 0.0}, "confidence"),
        ({"sharpe": float("nan")}, "sharpe"),
        ({"kurtosis": -500.0}, "kurtosis"),
    ],
)
def test_min_trl_rejects_bad_input(kwargs, name):
    args = {"sharpe": 0.1, "benchmark_sharpe": 0.0, "skew": 0.0, "kurtosis": 3.0, **kwargs}
    with pytest.raises(ValueError, match=name):
        minimum_track_record_length(**args)


# --------------------------------------------------------------------------------------------
# Expected maximum and MinBTL


def exact_expected_max(n):
    """E[max of n iid N(0,1)] by quadrature of x · n φ(x) Φ(x)^(n−1)."""
    value, _ = integrate.quad(
        lambda x: x * n * stats.norm.pdf(x) * stats.norm.cdf(x) ** (n - 1), -12, 12, limit=200
    )
    return value


def test_expected_maximum_published_value_and_exact_integral():
    assert expected_maximum_sharpe(10) == pytest.approx(1.57, abs=0.01)
    # The approximation is close to the exact expectation, closer as N grows (2.3% at N = 10,
    # 0.9% at 100, 0.4% at 1000).
    for n, tolerance in ((10, 0.03), (100, 0.012), (1000, 0.006)):
        assert expected_maximum_sharpe(n) == pytest.approx(exact_expected_max(n), rel=tolerance)
    assert expected_maximum_sharpe(100, variance=4.0) == pytest.approx(
        2.0 * expected_maximum_sharpe(100), rel=1e-12
    )


def test_min_btl_paper_example_45_trials_5_years():
    assert minimum_backtest_length(45, 1.0) == pytest.approx(5.0, abs=0.02)
    assert minimum_backtest_length(46, 1.0) > 5.0 > minimum_backtest_length(44, 1.0)


def test_min_btl_bound_and_scaling():
    for n in (2, 5, 45, 1000, 10**6):
        assert minimum_backtest_length(n) < 2.0 * math.log(n)
    assert minimum_backtest_length(100, 2.0) == pytest.approx(
        minimum_backtest_length(100, 1.0) / 4.0, rel=1e-12
    )


def test_min_btl_rejects_bad_input():
    with pytest.raises(ValueError, match="n_trials"):
        minimum_backtest_length(1)
    with pytest.raises(ValueError, match="annual_sharpe_target"):
        minimum_backtest_length(10, 0.0)
    with pytest.raises(ValueError, match="variance"):
        expected_maximum_sharpe(10, -1.0)


# --------------------------------------------------------------------------------------------
# Haircut Sharpe ratio (Harvey & Liu 2015)


def reference_haircut_from_p(p_adj, n_obs, q):
    """Annual Sharpe whose two-sided single-test p-value is p_adj, by root finding."""
    if p_adj >= 1.0:
        return 0.0

    def gap(sr_annual):
        t = sr_annual / math.sqrt(q) * math.sqrt(n_obs)
        return 2.0 * (1.0 - stats.t.cdf(t, n_obs - 1)) - p_adj

    return optimize.brentq(gap, 0.0, 50.0, xtol=1e-14)


def reference_p(sr_annual, n_obs, q):
    t = sr_annual / math.sqrt(q) * math.sqrt(n_obs)
    return 2.0 * (1.0 - stats.t.cdf(t, n_obs - 1))


def reference_holm(pvalues):
    """Holm's step-down adjusted p-values, straight from the definition with loops."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted = [0.0] * m
    running = 0.0
    for position, i in enumerate(order):
        running = max(running, min(1.0, (m - position) * pvalues[i]))
        adjusted[i] = running
    return adjusted


@pytest.mark.parametrize(
    ("sr", "n_obs", "trials", "q"),
    [(1.0, 120, 100, 12), (2.5, 8760, 200, 8760), (0.8, 240, 10, 12), (1.5, 2000, 1, 365)],
)
def test_bonferroni_haircut_matches_root_finding(sr, n_obs, trials, q):
    result = haircut_sharpe(sr, n_obs, trials, q, method="bonferroni")
    p = reference_p(sr, n_obs, q)
    p_adj = min(1.0, trials * p)
    assert result.p_value == pytest.approx(p, rel=1e-9)
    assert result.adjusted_p_value == pytest.approx(p_adj, rel=1e-9)
    expected = reference_haircut_from_p(p_adj, n_obs, q)
    assert result.haircut_sharpe == pytest.approx(expected, rel=1e-7, abs=1e-9)
    assert result.haircut == pytest.approx((sr - expected) / sr, rel=1e-7, abs=1e-9)
    assert result.method == "bonferroni"


def test_single_trial_has_no_haircut():
    for method in ("bonferroni", "holm", "bhy"):
        result = haircut_sharpe(1.2, 500, 1, 365, method=method)
        assert result.haircut == pytest.approx(0.0, abs=1e-9)
        assert result.haircut_sharpe == pytest.approx(1.2, rel=1e-9)


def test_holm_and_bhy_with_the_other_trials_sharpes():
    rng = np.random.default_rng(7)
    q, n_obs = 365, 730
    others = rng.normal(0.0, 1.0 / math.sqrt(n_obs / q), size=49)  # unskilled, 2 years daily
    sr = 3.0
    all_p = [reference_p(sr, n_obs, q)] + [reference_p(abs(s), n_obs, q) for s in others]
    holm = haircut_sharpe(sr, n_obs, 50, q, method="holm", other_annual_sharpes=others)
    bhy = haircut_sharpe(sr, n_obs, 50, q, method="bhy", other_annual_sharpes=others)
    assert holm.adjusted_p_value == pytest.approx(reference_holm(all_p)[0], rel=1e-9)
    by = stats.false_discovery_control(np.array(all_p), method="by")
    assert bhy.adjusted_p_value == pytest.approx(by[0], rel=1e-9)
    assert holm.haircut_sharpe == pytest.approx(
        reference_haircut_from_p(holm.adjusted_p_value, n_obs, q), rel=1e-7
    )
    assert bhy.haircut_sharpe == pytest.approx(
        reference_haircut_from_p(bhy.adjusted_p_value, n_obs, q), rel=1e-7
    )
    bon = haircut_sharpe(sr, n_obs, 50, q, method="bonferroni")
    # Holm is never stricter than Bonferroni (BHY can be either side of them for the top test).
    assert holm.haircut <= bon.haircut
    assert holm.adjusted_p_value <= bon.adjusted_p_value


def test_holm_and_bhy_with_noise_others_by_default():
    # Default assumption: the other M − 1 p-values are i/M (pure noise).
    q, n_obs, m = 12, 240, 20
    for sr in (0.4, 0.9, 1.6):
        p = reference_p(sr, n_obs, q)
        all_p = [p, *[i / m for i in range(1, m)]]
        holm = haircut_sharpe(sr, n_obs, m, q, method="holm")
        bhy = haircut_sharpe(sr, n_obs, m, q, method="bhy")
        assert holm.adjusted_p_value == pytest.approx(reference_holm(all_p)[0], rel=1e-9)
        by = stats.false_discovery_control(np.array(all_p), method="by")
        assert bhy.adjusted_p_value == pytest.approx(by[0], rel=1e-9)


def test_bhy_with_noise_others_is_m_c_p_only_below_one_over_2m():
    """The docstring said that for p < 1/M BHY equals min(1, M·c(M)·p); written out, the
    step-up takes the noise's c(M)·(j − 1)/j ≥ c(M)/2 too, so that holds for p ≤ 1/(2M) only
    (M = 2, p = 0.3: 0.75, not 0.9). Checked against scipy's BY adjustment."""
    for m, p in ((2, 0.3), (3, 0.2), (2, 0.2), (5, 0.09), (10, 0.04)):
        c = sum(1.0 / i for i in range(1, m + 1))
        by = stats.false_discovery_control(np.array([p, *[i / m for i in range(1, m)]]),
                                           method="by")[0]
        t = stats.t.isf(p / 2.0, 99)
        result = haircut_sharpe(t / math.sqrt(100) * math.sqrt(12), 100, m, 12, method="bhy")
        assert result.adjusted_p_value == pytest.approx(by, rel=1e-9)
        if p <= 1.0 / (2 * m):
            assert by == pytest.approx(min(1.0, m * c * p), rel=1e-9)
    assert haircut_sharpe(stats.t.isf(0.15, 99) / 10 * math.sqrt(12), 100, 2, 12,
                          method="bhy").adjusted_p_value == pytest.approx(0.75)


def test_haircut_grows_with_trials_and_is_nonlinear_in_sharpe():
    cuts = [haircut_sharpe(1.0, 240, m, 12, method="bonferroni").haircut for m in (1, 10, 100)]
    assert cuts[0] < cuts[1] < cuts[2]
    # Harvey & Liu's point: high Sharpe ratios are haircut proportionally less.
    low = haircut_sharpe(0.8, 240, 100, 12, method="holm").haircut
    high = haircut_sharpe(2.0, 240, 100, 12, method="holm").haircut
    assert high < low


def lo_eta_sum_form(rho, q):
    """Lo (2002): SR(q) = η(q)·SR with η(q) = q / sqrt(q + 2 Σ_{k=1}^{q−1} (q − k) ρ^k)."""
    total = sum((q - k) * rho**k for k in range(1, q))
    return q / math.sqrt(q + 2.0 * total)


@pytest.mark.parametrize(("rho", "q"), [(0.1, 12), (-0.2, 12), (0.3, 52), (0.05, 365)])
def test_autocorrelation_factor_matches_lo_sum_form(rho, q):
    assert autocorrelation_factor(rho, q) == pytest.approx(
        lo_eta_sum_form(rho, q) / math.sqrt(q), rel=1e-10
    )
    result = haircut_sharpe(1.0, 240, 1, q, method="bonferroni", autocorrelation=rho)
    assert result.adjusted_sharpe == pytest.approx(lo_eta_sum_form(rho, q) / math.sqrt(q))
    assert (result.adjusted_sharpe < 1.0) == (rho > 0)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"annual_sharpe": -0.5}, "annual_sharpe"),
        ({"n_observations": 1}, "n_observations"),
        ({"n_trials": 0}, "n_trials"),
        ({"bars_per_year": 0}, "bars_per_year"),
        ({"method": "sidak"}, "method"),
        ({"autocorrelation": 1.0}, "autocorrelation"),
        ({"other_annual_sharpes": np.zeros(3)}, "other_annual_sharpes"),
    ],
)
def test_haircut_rejects_bad_input(kwargs, name):
    args = {"annual_sharpe": 1.0, "n_observations": 240, "n_trials": 10, "bars_per_year": 12}
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        haircut_sharpe(**args)
