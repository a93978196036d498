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
    assert out["effective_trials"] == {"n_clustered": 30, "n_effective": 3}
    assert out["dsr_effective"]["n_trials"] == 3
