"""How sure we are that the winner is not the luckiest of many: the statistics of selection.

A winner is the best of every configuration and seed tried on overlapping bars, tonight and in
the nights before (the trial ledger, :mod:`cryptosweep.records.ledger`, counts them). From the
winner's per-bar validation returns (the from-scratch path that is deployed) and that count:

* **Deflated Sharpe ratio** (Bailey & López de Prado 2014) with ``N`` = the ledger's trials
  (the conservative count).
* The same DSR with the **effective number of trials** (López de Prado 2019: tonight's trials'
  return series clustered, :mod:`~cryptosweep.judging.effective_trials`, plus every ledger
  trial outside them; trials that are near copies of each other are one trial).
* Which of the two the gate judges: ``deployment.trial_count`` (:func:`gate_dsr`).
* Both deflate by one variance of Sharpe ratios (``deployment.dsr_variance``): ``"no_skill"``,
  the variance ``1/(T − 1)`` of a Sharpe ratio estimated on the winner's ``T`` bars when the
  true one is 0 (Lo 2002; Mertens 2002: ``(1 − γ3·SR + (γ4 − 1)/4·SR²)/(T − 1)`` at SR = 0),
  so that SR0 is the expected best of N trials that have no skill; or ``"trials"``, the
  variance across the ledger's trials' Sharpe ratios, the paper's estimate of the same
  quantity, which also carries the real differences between the trials (an edge that some
  find and others miss, costs that some pay more of) and then raises SR0 with the edge.
* **Minimum backtest length** (Bailey et al. 2014) for ``N``: the years of data below which
  the best of ``N`` unskilled trials is expected to show an annualised Sharpe ratio of 1 by
  chance, beside the years the folds cover.
* **Haircut Sharpe ratio** (Harvey & Liu 2015, Holm's adjustment for ``N`` tests): the
  annualised Sharpe ratio the winner's would be worth as a single test.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
from scipy import stats

from cryptosweep.judging.effective_trials import effective_number_of_trials
from cryptosweep.judging.overfitting import (
    deflated_sharpe_ratio,
    expected_max_sharpe_ratio,
    probabilistic_sharpe_ratio,
)
from cryptosweep.judging.track_record import haircut_sharpe, minimum_backtest_length
from cryptosweep.trading.backtest import has_dispersion


def variance_of_sharpe(rule: Literal["no_skill", "trials"], n_obs: int,
                       trials_variance: float | None) -> float | None:
    """The variance of Sharpe ratios SR0 rests on, as ``deployment.dsr_variance`` names it:
    ``no_skill``, ``1/(T − 1)`` for a Sharpe ratio on ``n_obs`` = T bars without skill;
    ``trials``, ``trials_variance`` (the spread of the trials' Sharpe ratios)."""
    return 1.0 / (n_obs - 1) if rule == "no_skill" else trials_variance


def deflated_sharpe(sr: float, variance: float | None, n_trials: int, returns: np.ndarray,
                    periods_per_year: float | None) -> dict[str, Any]:
    """The DSR of ``returns`` (Sharpe ratio ``sr``) among ``n_trials`` whose Sharpe ratios vary
    by ``variance``; with one trial there is nothing to deflate by: PSR(0) (the paper's DSR at
    N = 1, where the expected maximum is 0), and ``variance`` is not needed."""
    if n_trials < 1 or (n_trials > 1 and (variance is None or not math.isfinite(variance))):
        return {"dsr": None, "why_not": "fewer than 2 trials with a Sharpe ratio"}
    skew = float(stats.skew(returns, bias=False))
    kurtosis = float(stats.kurtosis(returns, fisher=False, bias=False))
    try:
        if n_trials > 1:
            dsr = deflated_sharpe_ratio(sr, variance, n_trials, len(returns), skew, kurtosis)
        else:
            dsr = probabilistic_sharpe_ratio(sr, 0.0, len(returns), skew, kurtosis)
    except ValueError as exc:
        return {"dsr": None, "why_not": str(exc)}
    sr0 = expected_max_sharpe_ratio(variance, n_trials) if n_trials > 1 else 0.0
    out = {"dsr": dsr, "sr": sr, "sr0": sr0, "n_trials": int(n_trials),
           "sharpe_variance": None if variance is None else float(variance),
           "n_obs": len(returns), "skew": skew, "kurtosis": kurtosis}
    if periods_per_year:
        scale = math.sqrt(periods_per_year)
        out.update(sr_annualised=sr * scale, sr0_annualised=sr0 * scale)
    return out


def selection_evidence(
    winner_returns: np.ndarray,
    n_trials: int,
    sharpe_variance: float | None,
    trial_returns: np.ndarray | None,
    periods_per_year: float | None,
    *,
    dsr_variance: Literal["no_skill", "trials"],
    seed: int = 0,
    n_unclustered: int = 0,
) -> dict[str, Any]:
    """The statistics of the module docstring for the winner.

    ``winner_returns``: its per-bar validation returns; ``n_trials`` and ``sharpe_variance``:
    the ledger's count and the variance of those trials' per-bar Sharpe ratios;
    ``trial_returns``: a ``T × M`` matrix of tonight's trials' validation returns on the same
    bars (for the effective number of trials; ``None`` to skip it); ``n_unclustered``: the
    ledger's trials that none of those columns is (other nights' configurations, thresholds of
    inner searches, neighbours): each counts as one more independent trial beside the
    clusters. Both DSRs deflate by the variance ``dsr_variance`` names (the module docstring):
    ``1/(T − 1)`` or ``sharpe_variance``; ``periods_per_year``: the candles' bars per year.
    """
    r = np.asarray(winner_returns, dtype=float)
    if len(r) < 4 or not has_dispersion(r):
        return {"dsr": {"dsr": None, "why_not": "the winner's returns do not vary"},
                "n_trials": int(n_trials)}
    sr = float(np.mean(r) / np.std(r, ddof=1))
    variance = variance_of_sharpe(dsr_variance, len(r), sharpe_variance)
    out: dict[str, Any] = {"n_trials": int(n_trials), "dsr_variance": dsr_variance,
                           "dsr": deflated_sharpe(sr, variance, n_trials, r, periods_per_year)}
    effective = None
    if trial_returns is not None and trial_returns.shape[1] >= 2:
        try:
            effective = effective_number_of_trials(trial_returns, seed=seed)
        except ValueError as exc:  # no trial varies, or a series not finite: no clusters
            out["effective_trials"] = {"why_not": str(exc)}
    if effective is not None:
        extra = max(int(n_unclustered), 0)
        out["effective_trials"] = {"n_clustered": effective.n_trials,
                                   "n_effective": effective.n_effective,
                                   "n_independent": effective.n_independent,
                                   # the bars every clustered series was scored on
                                   "n_bars": int(trial_returns.shape[0])}
        if extra:
            out["effective_trials"]["n_unclustered"] = extra
        # The same variance whatever N (with "trials" the ledger's: the clusters' own would
        # rest on a handful of values and jump when one trial outside them is added).
        out["dsr_effective"] = deflated_sharpe(sr, variance, effective.n_independent + extra,
                                               r, periods_per_year)
    if periods_per_year:
        years = len(r) / periods_per_year
        out["sample_years"] = years
        out["min_backtest_years"] = (minimum_backtest_length(n_trials, 1.0) if n_trials >= 2
                                     else 0.0)
        annual = sr * math.sqrt(periods_per_year)
        if annual > 0 and n_trials >= 1:
            cut = haircut_sharpe(annual, len(r), max(int(n_trials), 1), periods_per_year,
                                 method="holm")
            out["haircut"] = {"sharpe": annual, "haircut_sharpe": cut.haircut_sharpe,
                              "haircut": cut.haircut, "adjusted_p_value": cut.adjusted_p_value,
                              "method": cut.method}
        else:
            out["haircut"] = {"sharpe": annual, "haircut_sharpe": None,
                              "why_not": "the winner's Sharpe ratio is not above 0"}
    return out


def gate_dsr(results: Mapping[str, Any]) -> dict[str, Any]:
    """The DSR block the gate judges for ``results``, with ``"basis"``: ``"effective"`` when
    the run's ``deployment.trial_count`` (recorded in ``statistics.selection.trial_count`` when
    it ran) asked for the effective number of trials and it was computed, else ``"ledger"``
    (the full count; also when the effective one could not be computed, and for a run made
    before the choice existed, which was judged on the full count); ``"full-budget"`` for a run
    made before the ledger existed (its ``overfitting`` block)."""
    selection = (results.get("statistics") or {}).get("selection")
    if selection is None:
        overfitting = results.get("overfitting") or {}
        block = {"why_not": overfitting.get("why_not"), **(overfitting.get("dsr") or {})}
        return {**block, "basis": "full-budget"}
    effective = selection.get("dsr_effective") or {}
    if selection.get("trial_count") == "effective" and effective.get("dsr") is not None:
        return {**effective, "basis": "effective"}
    return {**(selection.get("dsr") or {}), "basis": "ledger"}
