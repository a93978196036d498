"""Evidence beyond the one walk-forward path, as pure functions over plain numbers: the
distribution of a configuration's CPCV path Sharpe ratios (AFML ch. 12), a configuration's
Sharpe ratio, trades and hit rate per market regime, the flag raised when its positive return
comes from one regime, and how a configuration holds on other markets.

**One regime carries the return.** With per-regime total returns ``r_1..r_m`` of a
configuration whose total ``R = Σ r_j`` is positive: the flag is raised when the best regime's
return is at least ``R`` itself, i.e. the other regimes together made nothing or lost. The same
rule as the walk-forward's "one fold carries the mean" (:mod:`cryptosweep.judging.caveats`),
with no tuning constant.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from cryptosweep.trading.backtest import has_dispersion

#: The quantiles of the path Sharpe ratios the results keep.
PATH_QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)


def path_distribution(sharpes: Sequence[float], quantiles: Sequence[float] = PATH_QUANTILES
                      ) -> dict[str, Any]:
    """The distribution of path Sharpe ratios: ``n_paths``, ``mean``, ``std`` (ddof=1; None
    with one path), ``quantiles`` (``{"0.25": value}``, linear interpolation),
    ``fraction_positive`` (share of paths above 0), ``min`` and ``max``. A ValueError for none
    or a non-finite one."""
    values = np.asarray([float(s) for s in sharpes], dtype="float64")
    if values.size == 0:
        raise ValueError("no path Sharpe ratios")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"path Sharpe ratios must be finite, got {values.tolist()}")
    return {
        "n_paths": int(values.size),
        "mean": float(values.mean()),
        "std": float(values.std(ddof=1)) if values.size > 1 else None,
        "quantiles": {f"{q:g}": float(np.quantile(values, q)) for q in quantiles},
        "fraction_positive": float((values > 0).mean()),
        "min": float(values.min()),
        "max": float(values.max()),
    }


def quantile_of(sharpes: Sequence[float], q: float) -> float:
    """The ``q`` quantile (linear interpolation) of the path Sharpe ratios."""
    return float(np.quantile(np.asarray(sharpes, dtype="float64"), q))


def per_regime(returns: np.ndarray, regimes: Sequence[str], periods_per_year: float | None
               ) -> list[dict[str, Any]]:
    """One row per regime present in ``regimes`` (aligned with ``returns``, one per bar), in
    order of first appearance sorted by name: ``regime``, ``bars``, ``total_return`` (sum of
    the per-bar returns), ``sharpe`` (per-bar mean / std(ddof=1), annualised with
    ``periods_per_year`` when given; None when the returns do not vary), ``active_bars``
    (bars with a non-zero return), ``trades`` (runs of consecutive non-zero returns: a trade is
    in the market, and flat bars return exactly 0), ``hit_rate`` (share of those runs whose
    summed return is positive; None without one)."""
    returns = np.asarray(returns, dtype="float64")
    labels = np.asarray(list(regimes), dtype=object)
    if returns.shape != labels.shape:
        raise ValueError(f"{len(returns)} returns and {len(labels)} regime labels")
    scale = math.sqrt(periods_per_year) if periods_per_year else 1.0
    rows = []
    for regime in sorted(set(labels.tolist())):
        mask = labels == regime
        part = returns[mask]
        std = float(part.std(ddof=1)) if part.size > 1 else 0.0
        sharpe = float(part.mean()) / std * scale if has_dispersion(part) else None
        runs = _runs(returns, mask)
        wins = sum(1 for total in runs if total > 0)
        rows.append({"regime": str(regime), "bars": int(mask.sum()),
                     "total_return": float(part.sum()), "sharpe": sharpe,
                     "active_bars": int((part != 0).sum()), "trades": len(runs),
                     "hit_rate": wins / len(runs) if runs else None})
    return rows


def _runs(returns: np.ndarray, mask: np.ndarray) -> list[float]:
    """The summed returns of the runs of consecutive non-zero returns inside ``mask``'s bars
    (a run that crosses into another regime is cut at its border)."""
    totals: list[float] = []
    current: float | None = None
    for value, inside in zip(returns, mask, strict=True):
        if inside and value != 0.0:
            current = value if current is None else current + value
        elif current is not None:
            totals.append(current)
            current = None
    if current is not None:
        totals.append(current)
    return totals


def carried_by_one_regime(rows: Sequence[Mapping[str, Any]]) -> str | None:
    """The module docstring's flag: a sentence naming the regime when a positive total return
    comes from it alone, else None."""
    total = sum(float(row["total_return"]) for row in rows)
    if not rows or total <= 0:
        return None
    best = max(rows, key=lambda row: (float(row["total_return"]), row["regime"]))
    if float(best["total_return"]) < total:
        return None
    # What the others did: "made nothing" read wrong beside "+0.0331 of +0.0311" (the demo's
    # holdout), where they lost 0.0020.
    rest = total - float(best["total_return"])
    others = f"lost {-rest:.4f}" if round(-rest, 4) > 0 else "made nothing"  # as shown
    return (f"the regime {best['regime']} carries the return ({best['total_return']:+.4f} of "
            f"{total:+.4f}, sums of per-bar returns, not compounded): the other regimes "
            f"together {others}")


def market_spread(scores: Mapping[str, float | None]) -> dict[str, Any]:
    """How a configuration holds on other markets, from its score on each (None: it failed
    there): ``n_markets``, ``holds`` (markets with a score above 0), ``mean``, ``min``,
    ``std`` (ddof=1, None with fewer than 2) and ``line`` ("holds on k of m markets")."""
    values = [float(v) for v in scores.values() if v is not None and math.isfinite(v)]
    holds = sum(1 for v in values if v > 0)
    m = len(scores)
    return {"n_markets": m, "holds": holds,
            "mean": float(np.mean(values)) if values else None,
            "min": float(min(values)) if values else None,
            "std": float(np.std(values, ddof=1)) if len(values) > 1 else None,
            "line": f"holds on {holds} of {m} market{'s' if m != 1 else ''}"}
