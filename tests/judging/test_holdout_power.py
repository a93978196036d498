"""The holdout tested with power: timing skill is told from exposure to the market's drift."""

from __future__ import annotations

import numpy as np

from cryptosweep.judging.holdout_power import exposure_spans, holdout_evidence
from cryptosweep.judging.overfitting import probabilistic_sharpe_ratio


def market(n: int = 2000, drift: float = 0.0, seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).normal(drift, 0.01, n)


def strategy(returns: np.ndarray, spans: list[list[int]]) -> np.ndarray:
    out = np.zeros_like(returns)
    for start, length, _ in spans:
        out[start:start + length] = returns[start:start + length]
    return out


def test_entries_timed_on_the_best_bars_beat_random_entries() -> None:
    bars = market()
    best = np.argsort(bars)[-60:]  # a strategy that knows where the up-moves are
    spans = [[int(b), 1, 1] for b in sorted(best)]
    evidence = holdout_evidence(strategy(bars, spans), spans, bars, cost_per_trade=0.0, seed=1)
    assert evidence["permutation"]["p_value"] < 0.01
    assert evidence["alpha"]["t_stat"] > 3


def test_random_entries_in_a_rising_market_are_not_evidence() -> None:
    """The bull-market trap: random long trades earn the drift, the permutation test says so
    even though the holdout Sharpe ratio is positive."""
    bars = market(drift=0.002)
    rng = np.random.default_rng(9)
    starts = np.sort(rng.choice(np.arange(0, 1980, 20), 30, replace=False))
    spans = [[int(s), 10, 1] for s in starts]
    returns = strategy(bars, spans)
    evidence = holdout_evidence(returns, spans, bars, cost_per_trade=0.0, seed=1)
    assert returns.mean() > 0 and evidence["psr0"] > 0.95  # the old criterion would pass
    assert evidence["permutation"]["p_value"] > 0.05


def test_psr_and_min_track_record_are_consistent() -> None:
    bars = market(drift=0.001)
    spans = [[0, 2000, 1]]
    evidence = holdout_evidence(bars, spans, bars, cost_per_trade=0.0, seed=0)
    sr = bars.mean() / bars.std(ddof=1)
    assert evidence["sharpe_per_bar"] == sr
    mintrl = evidence["min_track_record_bars"]
    # At exactly MinTRL bars the PSR(0) of the same Sharpe ratio is the 95% confidence
    # (normal-ish returns: skewness and kurtosis of the sample).
    from scipy import stats
    skew, kurt = stats.skew(bars, bias=False), stats.kurtosis(bars, fisher=False, bias=False)
    assert abs(probabilistic_sharpe_ratio(sr, 0.0, round(mintrl), skew, kurt) - 0.95) < 0.01


def test_overlapping_and_short_spans_are_clipped_and_shorts_left_out() -> None:
    starts, lengths = exposure_spans([[0, 5, 1], [4, 3, 1], [10, 2, -1], [98, 5, 1]], 100)
    assert starts.tolist() == [0, 5, 98] and lengths.tolist() == [5, 2, 2]


def test_what_cannot_be_computed_says_why() -> None:
    evidence = holdout_evidence([0.0, 0.0], [], None, cost_per_trade=0.0, seed=0)
    assert evidence["psr0"] is None and evidence["why_not"]
    bars = market(200)
    evidence = holdout_evidence(bars, [[0, 5, -1]], bars, cost_per_trade=0.0, seed=0)
    assert evidence["permutation"] is None
    assert any("no long trade" in why for why in evidence["why_not"])


def test_the_report_says_why_a_losing_holdout_has_no_track_record_length() -> None:
    """A holdout with a Sharpe ratio below 0 read "the holdout is too short to tell", as if
    more bars would help: no length confirms a record that loses."""
    from cryptosweep.judging.explained import explained

    def mintrl_row(returns: np.ndarray) -> str:
        evidence = holdout_evidence(returns, [], None, cost_per_trade=0.0, seed=1)
        (row,) = [r for r in explained({"statistics": {"holdout": evidence}})
                  if r.name == "minimum track record length"]
        return row.meaning

    losing = market(drift=-0.001)
    assert "not above 0" in mintrl_row(losing) and "too short" not in mintrl_row(losing)
    short = market(n=100, drift=0.001, seed=4)
    assert "too short to tell" in mintrl_row(short)
    confirmed = market(drift=0.003)
    assert "too short" not in mintrl_row(confirmed) and "not above 0" not in mintrl_row(confirmed)


def test_a_holdout_without_a_trade_has_no_psr() -> None:
    """A winner that never traded on the holdout (returns all 0) read "holdout PSR(0) 0.500:
    the probability that the winner's true Sharpe ratio is above 0", a coin toss it never
    made; now no PSR and no track record, and the report says it did not trade."""
    from cryptosweep.judging.explained import explained

    flat = np.zeros(500)
    evidence = holdout_evidence(flat, [], market(500), cost_per_trade=0.001, seed=1)
    assert evidence["psr0"] is None and evidence["min_track_record_bars"] is None
    assert any("do not vary" in why for why in evidence["why_not"])
    rows = {r.name: r for r in explained({"statistics": {"holdout": evidence}})}
    assert rows["holdout PSR(0)"].value == "–"
    assert "did not trade on the holdout" in rows["holdout PSR(0)"].meaning
    assert "did not trade on the holdout" in rows["minimum track record length"].meaning
