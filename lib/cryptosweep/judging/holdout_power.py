"""The holdout, tested with power: is the winner's holdout record evidence of skill, or what
a no-skill strategy with the same exposure would show?

"Holdout Sharpe ≥ 0 on 20 trades" is passed by random entries about half of the time in a bull
market: it measures beta. Four numbers say more, each from the winner's per-bar holdout
returns, its trades and the market's own per-bar returns on the same bars:

* **PSR(0)** (Bailey & López de Prado 2012): the probability that the true Sharpe ratio is
  above 0, given the record's length, skewness and kurtosis.
* **Permutation p-value** against the strategy's own entry signal rotated in time
  (:func:`~cryptosweep.judging.permutation.rotation_pvalue`; the null,
  :mod:`cryptosweep.trading.rotation`; Phipson & Smyth 2010): each rotation traded by the same
  rules, one position at a time; the share of rotations that earn at least as much as the
  strategy. Small means that the timing of the entries, not the market's drift, the exit rules
  or how often the signal fires, made the return.
* **Alpha t-statistic** against buy-and-hold (OLS with Newey–West errors,
  :func:`~cryptosweep.judging.permutation.alpha_tstat`): the return not explained by holding the
  market.
* **Minimum track record length** (Bailey & López de Prado 2012): how many bars a record with
  this Sharpe ratio, skewness and kurtosis needs before PSR(0) reaches the confidence; beside
  the holdout's length it says whether the holdout could have told at all.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

from cryptosweep.judging.overfitting import probabilistic_sharpe_ratio
from cryptosweep.judging.permutation import alpha_tstat, rotation_pvalue
from cryptosweep.judging.track_record import minimum_track_record_length
from cryptosweep.trading.metrics import per_bar_sharpe


def _moments(returns: np.ndarray) -> tuple[float, float]:
    """Bias-corrected skewness and plain kurtosis (normal = 3), as the DSR uses; (0, 3) for a
    series too short or flat to have them."""
    if len(returns) < 4 or float(np.std(returns)) == 0.0:
        return 0.0, 3.0
    return (float(stats.skew(returns, bias=False)),
            float(stats.kurtosis(returns, fisher=False, bias=False)))


def holdout_evidence(
    returns: Sequence[float] | np.ndarray,
    market_returns: Sequence[float] | np.ndarray | None,
    rotations: Sequence[float] | np.ndarray | None,
    *,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """The four numbers of the module docstring for one holdout record.

    ``returns``: the winner's per-bar holdout returns; ``market_returns``: buy-and-hold's
    per-bar returns on the same bars (``None``: no alpha); ``rotations``: the holdout's
    :func:`~cryptosweep.trading.rotation.signal_rotations`, element 0 the strategy's total
    (``None``: no permutation test). Each value is ``None`` with a ``why_not`` when it cannot
    be computed.
    """
    r = np.asarray(returns, dtype=float)
    out: dict[str, Any] = {"n_bars": len(r), "psr0": None, "min_track_record_bars": None,
                           "permutation": None, "alpha": None, "why_not": []}
    if len(r) < 4:
        out["why_not"].append("fewer than 4 holdout bars")
        return out
    sr = per_bar_sharpe(r)
    skew, kurtosis = _moments(r)
    out["sharpe_per_bar"] = sr
    try:
        out["psr0"] = probabilistic_sharpe_ratio(sr, 0.0, len(r), skew, kurtosis)
        mintrl = minimum_track_record_length(sr, 0.0, skew, kurtosis, confidence)
        out["min_track_record_bars"] = None if math.isinf(mintrl) else float(mintrl)
        if math.isinf(mintrl):
            out["why_not"].append("minimum track record: the Sharpe ratio is not above 0")
    except ValueError as exc:
        out["why_not"].append(f"PSR: {exc}")
    if market_returns is None:
        out["why_not"].append("no buy-and-hold returns on the holdout")
    elif len(market_returns) != len(r):
        out["why_not"].append("buy-and-hold returns are not on the same bars")
    else:
        try:
            alpha = alpha_tstat(r, np.asarray(market_returns, dtype=float))
            out["alpha"] = {"alpha_per_bar": alpha.alpha, "beta": alpha.beta,
                            "t_stat": alpha.t_stat, "p_value_positive": alpha.p_value_positive,
                            "hac_lags": alpha.hac_lags}
        except ValueError as exc:
            out["why_not"].append(f"alpha: {exc}")
    if rotations is None:
        out["why_not"].append("the holdout was evaluated before its signal's rotations were "
                              "kept")
        return out
    try:
        test = rotation_pvalue(rotations)
    except ValueError as exc:
        out["why_not"].append(f"permutation: {exc}")
        return out
    out["permutation"] = {"p_value": test.p_value, "percentile": test.percentile,
                          "n_draws": test.n_draws, "null": "rotations",
                          "observed_total": float(rotations[0])}
    return out
