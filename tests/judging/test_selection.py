"""The statistics of selection against independent computations."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from cryptosweep.judging.selection import selection_evidence
from cryptosweep.judging.track_record import minimum_backtest_length


def test_the_dsr_deflates_by_the_ledgers_count_and_variance() -> None:
    rng = np.random.default_rng(0)
    winner = rng.normal(0.0004, 0.01, 4000)
    few = selection_evidence(winner, 10, 1e-4, None, 8766.0)
    many = selection_evidence(winner, 500, 1e-4, None, 8766.0)
    assert many["dsr"]["dsr"] < few["dsr"]["dsr"]
    # Independent: PSR at SR0 = sqrt(V) * E[max of N standard normals] (Bailey & López de
    # Prado 2014, eq. 2), written out here with scipy.
    sr = winner.mean() / winner.std(ddof=1)
    gamma = 0.5772156649015329
    z = (1 - gamma) * stats.norm.ppf(1 - 1 / 500) + gamma * stats.norm.ppf(1 - 1 / (500 * math.e))
    sr0 = math.sqrt(1e-4) * z
    skew = stats.skew(winner, bias=False)
    kurt = stats.kurtosis(winner, fisher=False, bias=False)
    expected = stats.norm.cdf((sr - sr0) * math.sqrt(len(winner) - 1)
                              / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2))
    assert abs(many["dsr"]["dsr"] - expected) < 1e-12
    assert many["min_backtest_years"] == minimum_backtest_length(500, 1.0)
    assert many["haircut"]["haircut_sharpe"] < many["haircut"]["sharpe"]


def test_near_copies_count_once_in_the_effective_number() -> None:
    rng = np.random.default_rng(1)
    base = rng.normal(0, 0.01, (3000, 3))
    copies = np.repeat(base, 10, axis=1) + rng.normal(0, 0.0005, (3000, 30))
    out = selection_evidence(copies[:, 0], 30, float(np.var(copies.mean(0) / copies.std(0))),
                             copies, 8766.0)
    # Three groups; each worth its 10 near copies discounted by their mean correlation.
    assert out["effective_trials"] == {"n_clustered": 30, "n_effective": 3,
                                       "n_independent": _worth(copies, 3)}
    assert out["dsr_effective"]["n_trials"] == _worth(copies, 3)


def _worth(copies: np.ndarray, groups: int) -> int:
    """Σ over the groups of consecutive columns of ⌈ρ̄ + (1 − ρ̄)·M⌉, written out here."""
    total = 0
    for group in np.split(copies, groups, axis=1):
        corr = np.corrcoef(group, rowvar=False)
        rho = corr[~np.eye(group.shape[1], dtype=bool)].mean()
        total += math.ceil(rho + (1 - rho) * group.shape[1] - 1e-9)
    return total


def _psr(sr: float, benchmark: float, returns: np.ndarray) -> float:
    """PSR (Bailey & López de Prado 2012, eq. 12) written out with scipy."""
    skew = stats.skew(returns, bias=False)
    kurt = stats.kurtosis(returns, fisher=False, bias=False)
    return float(stats.norm.cdf((sr - benchmark) * math.sqrt(len(returns) - 1)
                                / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2)))


def test_one_trial_is_not_deflated_its_dsr_is_psr_of_zero() -> None:
    """With N = 1 the expected maximum of unskilled trials is 0: the paper's DSR is PSR(0),
    and it needs no variance across trials."""
    winner = np.random.default_rng(2).normal(0.0003, 0.01, 3000)
    out = selection_evidence(winner, 1, None, None, 8766.0)
    sr = winner.mean() / winner.std(ddof=1)
    assert out["dsr"]["n_trials"] == 1 and out["dsr"]["sr0"] == 0.0
    assert abs(out["dsr"]["dsr"] - _psr(sr, 0.0, winner)) < 1e-12


def test_ledger_trials_outside_the_clusters_count_one_each_with_the_ledgers_variance() -> None:
    """Three groups of near copies clustered tonight, and 4 trials of other nights (no return
    series): the effective N is the groups' worth + 4, deflated by the ledger's variance."""
    rng = np.random.default_rng(1)
    base = rng.normal(0, 0.01, (3000, 3))
    copies = np.repeat(base, 10, axis=1) + rng.normal(0, 0.0005, (3000, 30))
    winner = copies[:, 0]
    variance = 2e-4
    out = selection_evidence(winner, 34, variance, copies, 8766.0, n_unclustered=4)
    n = _worth(copies, 3) + 4
    assert out["effective_trials"] == {"n_clustered": 30, "n_effective": 3,
                                       "n_independent": n - 4, "n_unclustered": 4}
    effective = out["dsr_effective"]
    assert effective["n_trials"] == n and effective["sharpe_variance"] == variance
    gamma = 0.5772156649015329
    sr0 = math.sqrt(variance) * ((1 - gamma) * stats.norm.ppf(1 - 1 / n)
                                 + gamma * stats.norm.ppf(1 - 1 / (n * math.e)))
    sr = winner.mean() / winner.std(ddof=1)
    assert abs(effective["dsr"] - _psr(sr, sr0, winner)) < 1e-12
    # Copies of one trial and nothing outside them: one trial, PSR(0).
    same = np.repeat(base[:, :1], 8, axis=1)
    alone = selection_evidence(same[:, 0], 8, variance, same, 8766.0)
    assert alone["effective_trials"]["n_effective"] == 1
    assert abs(alone["dsr_effective"]["dsr"]
               - _psr(same[:, 0].mean() / same[:, 0].std(ddof=1), 0.0, same[:, 0])) < 1e-12
