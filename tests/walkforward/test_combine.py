"""The walk-forward track's deflated Sharpe ratio: the variance SR0 rests on follows
``deployment.dsr_variance`` as the gate's does (it used the windows' Sharpe ratios' spread
whatever the setting), checked against the formulas computed here (Bailey & López de Prado
2014, eq. for SR0 and the PSR; Mertens 2002 for the variance without skill)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from cryptosweep.walkforward.combine import _dsr, process_verdict


def psr(returns: np.ndarray, sr0: float) -> float:
    """PSR(SR0) by the paper's formula, written out here."""
    sr = returns.mean() / returns.std(ddof=1)
    skew = stats.skew(returns, bias=False)
    kurt = stats.kurtosis(returns, fisher=False, bias=False)
    z = (sr - sr0) * math.sqrt(len(returns) - 1) / math.sqrt(
        1 - skew * sr + (kurt - 1) / 4 * sr ** 2)
    return float(stats.norm.cdf(z))


def expected(returns: np.ndarray, variance: float, n: int) -> tuple[float, float]:
    """SR0 and the DSR by the paper's formulas, written out here."""
    gamma = 0.5772156649015329
    sr0 = math.sqrt(variance) * ((1 - gamma) * stats.norm.ppf(1 - 1 / n)
                                 + gamma * stats.norm.ppf(1 - 1 / (n * math.e)))
    return sr0, psr(returns, sr0)


@pytest.mark.parametrize("rule", ["no_skill", "trials"])
def test_the_tracks_dsr_deflates_by_the_variance_the_setting_names(rule):
    rng = np.random.default_rng(4)
    track = rng.normal(0.0004, 0.01, 3000)
    sharpes = rng.normal(0.0, 0.05, 12)  # the windows' configurations: a wide spread
    out = _dsr(track, sharpes, 9, 8766.0, rule)
    variance = 1 / (len(track) - 1) if rule == "no_skill" else float(np.var(sharpes, ddof=1))
    sr0, dsr = expected(track, variance, 9)
    assert out["dsr_variance"] == rule and out["n_trials"] == 9
    assert out["sr_variance"] == pytest.approx(variance, rel=1e-12)
    assert out["sr0"] == pytest.approx(sr0, rel=1e-9)
    assert out["dsr"] == pytest.approx(dsr, rel=1e-9)
    assert out["sr0_annualised"] == pytest.approx(sr0 * math.sqrt(8766.0), rel=1e-9)


def test_a_track_that_never_traded_says_why():
    out = _dsr(np.zeros(100), np.array([0.1]), 1, 8766.0, "no_skill")
    assert out["dsr"] is None
    assert out["why_not"] == "the track never traded: its returns do not vary"


def test_a_track_too_short_for_a_dsr_says_so_not_that_it_never_traded():
    out = _dsr(np.array([0.01, -0.02, 0.03]), np.array([0.1, 0.2]), 2, 8766.0, "no_skill")
    assert out["dsr"] is None
    assert out["why_not"] == "the track has 3 bar(s), fewer than 4"


@pytest.mark.parametrize("rule", ["no_skill", "trials"])
def test_one_design_is_psr_0_whatever_the_variance(rule):
    """A walk-forward whose windows each tried one configuration has nothing to deflate by:
    its DSR is PSR(0), as the gate's with N = 1 (it was "–" with an internal message)."""
    rng = np.random.default_rng(5)
    track = rng.normal(0.0005, 0.01, 1000)
    out = _dsr(track, np.array([0.03]), 1, 8760.0, rule)
    assert out["sr0"] == 0.0 and out["dsr"] == out["psr"]
    assert out["dsr"] == pytest.approx(psr(track, 0.0), rel=1e-9)


def test_trials_variance_needs_two_sharpe_ratios():
    out = _dsr(np.random.default_rng(6).normal(0, 0.01, 500), np.array([0.1]), 3, 8760.0,
               "trials")
    assert out["dsr"] is None and "fewer than 2" in out["why_not"]


def test_the_verdict_says_why_a_track_has_no_dsr():
    """The demo walk-forward's verdict ended "DSR – < 0.95": a dash compared with a threshold,
    where its text report said two lines later that the track never traded. The reason now
    says the DSR was not computed and why, as the deployment gate's criterion does."""
    results = {"metric": "sharpe", "n_designs": 6, "efficiency": {"overall": None},
               "out_of_sample": {"metrics": {"sharpe": 0.0, "trades": 0},
                                 "baselines": {"buy_and_hold": {"metrics": {"sharpe": -1.0}}}},
               "dsr": _dsr(np.zeros(100), np.array([0.1]), 6, 8766.0, "no_skill")}
    reason = process_verdict(results, 30)["reason"]
    assert reason.endswith("; DSR not computed (the track never traded: its returns do not "
                           "vary).")
    assert "DSR –" not in reason
    results["dsr"] = {"dsr": 0.4}
    assert process_verdict(results, 30)["reason"].endswith("; DSR 0.40 < 0.95.")
