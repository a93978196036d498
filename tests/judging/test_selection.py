"""The statistics of selection against independent computations."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from cryptosweep.judging.selection import selection_evidence
from cryptosweep.judging.track_record import minimum_backtest_length

EULER_GAMMA = 0.5772156649015329


def _sr0(variance: float, n: int) -> float:
    """SR0 = √V · E[max of N standard normals] (Bailey & López de Prado 2014, eq. 2), written
    out here with scipy."""
    return math.sqrt(variance) * ((1 - EULER_GAMMA) * stats.norm.ppf(1 - 1 / n)
                                  + EULER_GAMMA * stats.norm.ppf(1 - 1 / (n * math.e)))


def _near_copies() -> tuple[np.ndarray, np.ndarray]:
    """Three independent return series and 30 columns: 10 near copies of each."""
    rng = np.random.default_rng(1)
    base = rng.normal(0, 0.01, (3000, 3))
    return base, np.repeat(base, 10, axis=1) + rng.normal(0, 0.0005, (3000, 30))


def test_the_dsr_deflates_by_the_ledgers_count_and_variance() -> None:
    rng = np.random.default_rng(0)
    winner = rng.normal(0.0004, 0.01, 4000)
    few = selection_evidence(winner, 10, 1e-4, None, 8766.0, dsr_variance="trials")
    many = selection_evidence(winner, 500, 1e-4, None, 8766.0,
                              dsr_variance="trials")
    assert many["dsr"]["dsr"] < few["dsr"]["dsr"]
    # Independent: PSR at SR0 = sqrt(V) * E[max of N standard normals] (Bailey & López de
    # Prado 2014, eq. 2), written out here with scipy.
    sr = winner.mean() / winner.std(ddof=1)
    sr0 = _sr0(1e-4, 500)
    skew = stats.skew(winner, bias=False)
    kurt = stats.kurtosis(winner, fisher=False, bias=False)
    expected = stats.norm.cdf((sr - sr0) * math.sqrt(len(winner) - 1)
                              / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2))
    assert abs(many["dsr"]["dsr"] - expected) < 1e-12
    assert many["min_backtest_years"] == minimum_backtest_length(500, 1.0)
    assert many["haircut"]["haircut_sharpe"] < many["haircut"]["sharpe"]


def test_near_copies_count_once_in_the_effective_number() -> None:
    _, copies = _near_copies()
    out = selection_evidence(copies[:, 0], 30, float(np.var(copies.mean(0) / copies.std(0))),
                             copies, 8766.0, dsr_variance="trials")
    # Three groups; each worth its 10 near copies discounted by their mean correlation.
    assert out["effective_trials"] == {"n_clustered": 30, "n_effective": 3,
                                       "n_independent": _worth(copies, 3),
                                       "n_bars": len(copies)}
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
    out = selection_evidence(winner, 1, None, None, 8766.0, dsr_variance="trials")
    sr = winner.mean() / winner.std(ddof=1)
    assert out["dsr"]["n_trials"] == 1 and out["dsr"]["sr0"] == 0.0
    assert abs(out["dsr"]["dsr"] - _psr(sr, 0.0, winner)) < 1e-12


def test_trials_that_cannot_be_clustered_leave_the_ledgers_dsr_and_say_why() -> None:
    """No clustered trial varies (none traded on the common bars): the effective number is
    not computed, said in words, and the DSR the gate falls back to is the ledger's (an audit
    found the sweep's end failed here)."""
    winner = np.random.default_rng(5).normal(0.0003, 0.01, 3000)
    out = selection_evidence(winner, 12, 1e-4, np.zeros((3000, 4)), 8766.0,
                             dsr_variance="trials")
    assert "constant" in out["effective_trials"]["why_not"]
    assert "dsr_effective" not in out and out["dsr"]["dsr"] is not None


def test_ledger_trials_outside_the_clusters_count_one_each_with_the_ledgers_variance() -> None:
    """Three groups of near copies clustered tonight, and 4 trials of other nights (no return
    series): the effective N is the groups' worth + 4, deflated by the ledger's variance."""
    base, copies = _near_copies()
    winner = copies[:, 0]
    variance = 2e-4
    out = selection_evidence(winner, 34, variance, copies, 8766.0, dsr_variance="trials",
                             n_unclustered=4)
    n = _worth(copies, 3) + 4
    assert out["effective_trials"] == {"n_clustered": 30, "n_effective": 3,
                                       "n_independent": n - 4, "n_unclustered": 4,
                                       "n_bars": len(copies)}
    effective = out["dsr_effective"]
    assert effective["n_trials"] == n and effective["sharpe_variance"] == variance
    sr0 = _sr0(variance, n)
    sr = winner.mean() / winner.std(ddof=1)
    assert abs(effective["dsr"] - _psr(sr, sr0, winner)) < 1e-12
    # Copies of one trial and nothing outside them: one trial, PSR(0).
    same = np.repeat(base[:, :1], 8, axis=1)
    alone = selection_evidence(same[:, 0], 8, variance, same, 8766.0, dsr_variance="trials")
    assert alone["effective_trials"]["n_effective"] == 1
    assert abs(alone["dsr_effective"]["dsr"]
               - _psr(same[:, 0].mean() / same[:, 0].std(ddof=1), 0.0, same[:, 0])) < 1e-12


def test_the_null_variance_is_that_of_a_sharpe_ratio_without_skill() -> None:
    """``dsr_variance: no_skill``: SR0 rests on 1/(T − 1), whatever the ledger's variance; checked
    by simulation: the mean of the best per-bar Sharpe ratio of N independent unskilled trials
    of T bars is SR0 (Bailey & López de Prado 2014's approximation), and a winner so chosen
    reaches DSR >= 0.95 in at most 5 % of the experiments."""
    rng = np.random.default_rng(3)
    n_trials, bars, experiments = 10, 400, 3000
    returns = rng.standard_t(5, (experiments, bars, n_trials)) * 0.01
    sharpes = returns.mean(axis=1) / returns.std(axis=1, ddof=1)
    best = sharpes.argmax(axis=1)
    variance = 1.0 / (bars - 1)
    out = selection_evidence(returns[0, :, best[0]], n_trials, 1.0, None, 8766.0,
                             dsr_variance="no_skill")
    assert out["dsr_variance"] == "no_skill" and out["dsr"]["sharpe_variance"] == variance
    simulated = float(sharpes.max(axis=1).mean())
    assert abs(out["dsr"]["sr0"] - simulated) < 0.04 * simulated
    approved = sum(selection_evidence(returns[i, :, best[i]], n_trials, None, None, 8766.0,
                                      dsr_variance="no_skill")["dsr"]["dsr"] >= 0.95
                   for i in range(300))
    assert approved <= 8  # theory: about 0.6 %, 2 of 300
    winner = returns[0, :, best[0]]
    sr = winner.mean() / winner.std(ddof=1)
    sr0 = _sr0(variance, n_trials)
    assert abs(out["dsr"]["dsr"] - _psr(sr, sr0, winner)) < 1e-12


def test_the_trials_variance_grows_with_an_edge_some_trials_find_and_the_null_one_does_not(
) -> None:
    """Half the trials with a real edge: the variance across the trials' Sharpe ratios carries
    the difference and raises SR0; the no-skill variance is the luck alone."""
    rng = np.random.default_rng(4)
    bars = 2000
    drift = np.r_[np.zeros(10), np.full(10, 0.0015)]
    trials = rng.normal(0.0, 0.01, (bars, 20)) + drift
    sharpes = trials.mean(0) / trials.std(0, ddof=1)
    winner = trials[:, int(sharpes.argmax())]
    by_trials = selection_evidence(winner, 20, float(np.var(sharpes, ddof=1)), None, 8766.0,
                                   dsr_variance="trials")
    by_null = selection_evidence(winner, 20, float(np.var(sharpes, ddof=1)), None, 8766.0,
                                 dsr_variance="no_skill")
    assert by_trials["dsr"]["sharpe_variance"] > 2 * by_null["dsr"]["sharpe_variance"]
    assert by_trials["dsr"]["sr0"] > by_null["dsr"]["sr0"]
    assert by_null["dsr"]["dsr"] > by_trials["dsr"]["dsr"]


def test_the_effective_dsr_takes_the_no_skill_variance_too() -> None:
    """What the gate reads by default (effective N, no-skill variance): the effective count's
    DSR with SR0 from 1/(T − 1), not from the ledger's variance."""
    _, copies = _near_copies()
    winner = copies[:, 0]
    out = selection_evidence(winner, 34, 2e-4, copies, 8766.0, dsr_variance="no_skill",
                             n_unclustered=4)
    n = _worth(copies, 3) + 4
    variance = 1 / (len(winner) - 1)
    effective = out["dsr_effective"]
    assert effective["n_trials"] == n and effective["sharpe_variance"] == variance
    sr0 = _sr0(variance, n)
    sr = winner.mean() / winner.std(ddof=1)
    assert abs(effective["dsr"] - _psr(sr, sr0, winner)) < 1e-12


def test_returns_equal_up_to_rounding_are_not_judged() -> None:
    """A winner whose ten returns are all 0.001 (a float standard deviation of about 1e-19):
    its "Sharpe ratio" of 4e15 went into the DSR, whose why-not was "skew must be a finite
    number, got nan"; now it is a winner whose returns do not vary."""
    evidence = selection_evidence(np.full(10, 0.001), 5, 0.01, None, 8760.0,
                                  dsr_variance="no_skill")
    assert evidence["dsr"] == {"dsr": None, "why_not": "the winner's returns do not vary"}
