"""The holdout tested with power: PSR(0), MinTRL, alpha and the permutation test's p-value
assembled from one holdout record, and what cannot be computed said."""

from __future__ import annotations

import numpy as np

from cryptosweep.judging.holdout_power import holdout_evidence
from cryptosweep.judging.overfitting import probabilistic_sharpe_ratio
from cryptosweep.judging.permutation import rotation_pvalue


def market(n: int = 2000, drift: float = 0.0, seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).normal(drift, 0.01, n)


def test_the_permutation_block_is_the_rotations_p_value() -> None:
    bars = market()
    rotations = np.concatenate([[0.4], np.random.default_rng(1).normal(0.0, 0.1, 999)])
    evidence = holdout_evidence(bars * (bars > 0), bars, rotations)
    test = rotation_pvalue(rotations)
    assert evidence["permutation"] == {"p_value": test.p_value, "percentile": test.percentile,
                                       "n_draws": 999, "null": "rotations",
                                       "observed_total": 0.4}
    assert evidence["permutation"]["p_value"] < 0.01
    assert evidence["alpha"]["t_stat"] > 3  # it holds only the rising bars


def test_psr_and_min_track_record_are_consistent() -> None:
    bars = market(drift=0.001)
    evidence = holdout_evidence(bars, bars, None)
    sr = bars.mean() / bars.std(ddof=1)
    assert evidence["sharpe_per_bar"] == sr
    mintrl = evidence["min_track_record_bars"]
    # At exactly MinTRL bars the PSR(0) of the same Sharpe ratio is the 95% confidence
    # (normal-ish returns: skewness and kurtosis of the sample).
    from scipy import stats
    skew, kurt = stats.skew(bars, bias=False), stats.kurtosis(bars, fisher=False, bias=False)
    assert abs(probabilistic_sharpe_ratio(sr, 0.0, round(mintrl), skew, kurt) - 0.95) < 0.01


def test_what_cannot_be_computed_says_why() -> None:
    evidence = holdout_evidence([0.0, 0.0], None, None)
    assert evidence["psr0"] is None and evidence["why_not"]
    bars = market(200)
    evidence = holdout_evidence(bars, bars, None)
    assert evidence["permutation"] is None and evidence["alpha"] is not None
    assert any("before its signal's rotations were kept" in why for why in evidence["why_not"])
    evidence = holdout_evidence(bars, bars[:100], np.array([0.1]))
    assert evidence["permutation"] is None and evidence["alpha"] is None
    assert any("not on the same bars" in why for why in evidence["why_not"])
    assert any("at least one rotation" in why for why in evidence["why_not"])
