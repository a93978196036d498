"""The holdout, tested with power: is the winner's holdout record evidence of skill, or what
a no-skill strategy with the same exposure would show?

"Holdout Sharpe ≥ 0 on 20 trades" is passed by random entries about half of the time in a bull
market: it measures beta. Four numbers say more, each from the winner's per-bar holdout
returns, its trades and the market's own per-bar returns on the same bars:

* **PSR(0)** (Bailey & López de Prado 2012): the probability that the true Sharpe ratio is
  above 0, given the record's length, skewness and kurtosis.
* **Permutation p-value** against exposure-matched random entries
  (:func:`~cryptosweep.judging.permutation.exposure_matched_pvalue`; Phipson & Smyth 2010):
  the same number and lengths of trades placed at random times on the same bars, seeded; the
  share of such placements that do at least as well as the winner's own entries. Small means
  that the timing of the entries, not the market's drift, made the return.
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
from cryptosweep.judging.permutation import PERMUTATION_DRAWS, alpha_tstat, exposure_matched_pvalue
from cryptosweep.judging.track_record import minimum_track_record_length
from cryptosweep.trading.backtest import has_dispersion
from cryptosweep.trading.metrics import per_bar_sharpe


def _moments(returns: np.ndarray) -> tuple[float, float]:
    """Bias-corrected skewness and plain kurtosis (normal = 3), as the DSR uses; (0, 3) for a
    series too short or flat to have them."""
    if len(returns) < 4 or not has_dispersion(returns):
        return 0.0, 3.0
    return (float(stats.skew(returns, bias=False)),
            float(stats.kurtosis(returns, fisher=False, bias=False)))


def exposure_spans(spans: Sequence[Sequence[int]], n_bars: int) -> tuple[np.ndarray, np.ndarray]:
    """The long trades' ``(starts, lengths)``, clipped to the bars and so that a trade that
    starts on the bar where the previous one exited does not overlap it."""
    starts, lengths, free_from = [], [], 0
    for start, length, side in spans:
        if side != 1:
            continue
        end = min(int(start) + int(length), n_bars)
        start = max(int(start), free_from)
        if end <= start:
            continue
        starts.append(start)
        lengths.append(end - start)
        free_from = end
    return np.asarray(starts, dtype=np.int64), np.asarray(lengths, dtype=np.int64)


def _track_record(out: dict[str, Any], sr: float, n_bars: int, skew: float, kurtosis: float,
                  confidence: float) -> None:
    """PSR(0) and the minimum track record length into ``out`` (or why not)."""
    try:
        out["psr0"] = probabilistic_sharpe_ratio(sr, 0.0, n_bars, skew, kurtosis)
        mintrl = minimum_track_record_length(sr, 0.0, skew, kurtosis, confidence)
        out["min_track_record_bars"] = None if math.isinf(mintrl) else float(mintrl)
        if math.isinf(mintrl):
            out["why_not"].append("minimum track record: the Sharpe ratio is not above 0")
    except ValueError as exc:
        out["why_not"].append(f"PSR: {exc}")


def holdout_evidence(
    returns: Sequence[float] | np.ndarray,
    spans: Sequence[Sequence[int]],
    market_returns: Sequence[float] | np.ndarray | None,
    *,
    cost_per_trade: float,
    seed: int,
    n_draws: int = PERMUTATION_DRAWS,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """The four numbers of the module docstring for one holdout record.

    ``returns``: the winner's per-bar holdout returns; ``spans``: its trades as
    ``[first bar, length, side]`` on the same bars; ``market_returns``: buy-and-hold's per-bar
    returns on the same bars (``None``: no alpha or permutation test); ``cost_per_trade``: a
    round trip's fees and slippage as a fraction of price, charged to the null's trades as to
    the winner's. Each value is ``None`` with a ``why_not`` when it cannot be computed.
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
    if not np.isfinite(r).all():
        out["why_not"].append("PSR and minimum track record: the winner's holdout returns are "
                              "not all finite")
    elif not has_dispersion(r):  # no trade: a Sharpe ratio of 0 would read as PSR(0) = 0.5
        out["why_not"].append("PSR and minimum track record: the winner's holdout returns do "
                              "not vary (no trade)")
    else:
        _track_record(out, sr, len(r), skew, kurtosis, confidence)
    if market_returns is None:
        out["why_not"].append("no buy-and-hold returns on the holdout")
        return out
    market = np.asarray(market_returns, dtype=float)
    if len(market) != len(r):
        out["why_not"].append("buy-and-hold returns are not on the same bars")
        return out
    try:
        alpha = alpha_tstat(r, market)
        out["alpha"] = {"alpha_per_bar": alpha.alpha, "beta": alpha.beta, "t_stat": alpha.t_stat,
                        "p_value_positive": alpha.p_value_positive, "hac_lags": alpha.hac_lags}
    except ValueError as exc:
        out["why_not"].append(f"alpha: {exc}")
    log_market = np.log1p(market)
    starts, lengths = exposure_spans(spans, len(r))
    if not len(starts):
        out["why_not"].append("no long trade on the holdout: no permutation test")
        return out
    ends = np.cumsum(np.concatenate([[0.0], log_market]))
    observed = float(np.sum(ends[starts + lengths] - ends[starts]) - cost_per_trade * len(starts))
    try:
        test = exposure_matched_pvalue(log_market, starts, lengths, observed, n_draws=n_draws,
                                       seed=seed, cost_per_trade=cost_per_trade)
        out["permutation"] = {"p_value": test.p_value, "percentile": test.percentile,
                              "n_draws": test.n_draws, "n_trades": len(starts),
                              "observed_log_return": observed}
    except ValueError as exc:
        out["why_not"].append(f"permutation: {exc}")
    return out
