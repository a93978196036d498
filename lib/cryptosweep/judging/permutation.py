"""Could random entries have done as well? A permutation test under the strategy's own rules,
and alpha.

* :func:`rules_matched_pvalue` — a Monte Carlo permutation test of a strategy's trades against
  the same number of trades entered at random times under the **same rules** (the same stop,
  take profit, holding period, fees and slippage), so that only the timing of the entries is
  tested, with the p-value of Phipson & Smyth, "Permutation P-values Should Never Be Zero:
  Calculating Exact P-values When Permutations Are Randomly Drawn", *Statistical Applications
  in Genetics and Molecular Biology* 9(1), 2010.
* :func:`alpha_tstat` — the intercept of an OLS regression of the strategy's returns on the
  benchmark's, with Newey & West, "A Simple, Positive Semi-Definite, Heteroskedasticity and
  Autocorrelation Consistent Covariance Matrix", *Econometrica* 55(3), 1987, standard errors.

Why the rules and not the trades' lengths: with a stop and a take profit, how long a trade
lasts depends on the path its price took (a trade that ends in two bars went far, one way or
the other, in two bars). Random trades of the *same lengths* placed elsewhere, most of them in
quieter bars, vary less than the strategy's own trades even when its entries are random, so
the strategy's total lands in either tail of that null too often: on markets without any edge
a strategy that enters after large moves was "significant" at 5 % about twice as often as it
should be (``tests/judging/test_permutation.py``). A random entry that then follows the
strategy's rules goes far in a few bars exactly as the strategy's trades do.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from scipy import stats

__all__ = [
    "NULL_QUANTILES",
    "AlphaResult",
    "PermutationResult",
    "alpha_tstat",
    "newey_west_lags",
    "rules_matched_pvalue",
]

#: Probabilities at which :class:`PermutationResult` reports the null distribution.
NULL_QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
# Elements of the (draws x trades) index matrices per vectorised chunk: bounds memory.
_CHUNK_ELEMENTS = 4_000_000


def _integer(name: str, value: int, minimum: int) -> int:
    if isinstance(value, bool) or int(value) != value or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class PermutationResult:
    """Outcome of :func:`rules_matched_pvalue`.

    Attributes:
        p_value: ``(1 + #{null >= observed}) / (n_draws + 1)`` (Phipson & Smyth 2010), in
            ``(0, 1]``.
        percentile: share of the null draws below the observed total, ties counted half, in
            percent (0 to 100).
        null_quantiles: the null totals at the probabilities of :data:`NULL_QUANTILES`.
        n_draws: number of random draws.
    """

    p_value: float
    percentile: float
    null_quantiles: dict[float, float] = field(repr=False)
    n_draws: int


def rules_matched_pvalue(
    entry_returns: Mapping[int, np.ndarray],
    trades: Sequence[tuple[int, int]],
    n_draws: int = 1000,
    seed: int = 0,
) -> PermutationResult:
    """p-value of a strategy's trades against as many trades entered at random under its rules.

    ``entry_returns[side][i]``: the net return of a trade entered at candidate bar ``i`` on
    ``side`` (+1 long, -1 short) that then follows the strategy's exit rules, fees and
    slippage (:func:`cryptosweep.trading.steps.random_entry_returns`); ``trades``: the
    strategy's own trades as ``(i, side)``. The observed total is the sum of its trades'
    ``entry_returns[side][i]``. The null hypothesis: the entries are no better than random
    ones. Each null draw enters, for each side, as many trades as the strategy did on that
    side, at candidate bars drawn uniformly and independently (with replacement: the null's
    trades may overlap, which makes its totals vary a little more, so the test a little
    conservative), and sums their returns.

    p-value: ``(1 + #{null >= observed}) / (n_draws + 1)``, the exact p-value of a test with
    randomly drawn permutations (Phipson & Smyth 2010), never 0.

    Args:
        entry_returns: per side, a non-empty 1-D array of finite returns.
        trades: ``(i, side)`` pairs, at least one; ``i`` a whole number in
            ``[0, len(entry_returns[side]))``.
        n_draws: random draws (>= 1).
        seed: seed of ``numpy.random.default_rng``; the result is deterministic given it.

    Raises:
        ValueError: naming the bad argument (no trades, a side without entry returns, an index
            outside them, non-finite returns, bad ``n_draws``/``seed``).
    """
    candidates: dict[int, np.ndarray] = {}
    for side, values in entry_returns.items():
        array = np.asarray(values, dtype=float)
        if array.ndim != 1 or array.size < 1:
            raise ValueError(f"entry_returns[{side}] must be a non-empty 1-D array, got shape "
                             f"{array.shape}")
        if not np.all(np.isfinite(array)):
            raise ValueError(f"entry_returns[{side}] must be finite (no NaN or inf)")
        candidates[int(side)] = array
    if not trades:
        raise ValueError("trades must hold at least one (index, side) pair")
    observed = 0.0
    per_side: dict[int, int] = {}
    for index, side in trades:
        if int(side) not in candidates:
            raise ValueError(f"trades: side {side!r} has no entry_returns")
        values = candidates[int(side)]
        if isinstance(index, bool) or int(index) != index or not 0 <= index < values.size:
            raise ValueError(f"trades: index {index!r} is not a whole number in [0, "
                             f"{values.size}) for side {side}")
        observed += float(values[int(index)])
        per_side[int(side)] = per_side.get(int(side), 0) + 1
    n_draws = _integer("n_draws", n_draws, 1)
    seed = _integer("seed", seed, 0)

    rng = np.random.default_rng(seed)
    null = np.zeros(n_draws)
    for side in sorted(per_side, reverse=True):  # the longs drawn first, then the shorts
        values, k = candidates[side], per_side[side]
        chunk = max(1, _CHUNK_ELEMENTS // k)
        for first in range(0, n_draws, chunk):
            last = min(first + chunk, n_draws)
            null[first:last] += values[rng.integers(0, values.size, size=(last - first, k))
                                       ].sum(axis=1)

    quantiles = np.quantile(null, NULL_QUANTILES)
    at_least = int(np.count_nonzero(null >= observed))
    below = np.count_nonzero(null < observed)
    ties = np.count_nonzero(null == observed)
    return PermutationResult(
        p_value=(1.0 + at_least) / (n_draws + 1.0),
        percentile=float(100.0 * (below + 0.5 * ties) / n_draws),
        null_quantiles=dict(zip(NULL_QUANTILES, quantiles.tolist(), strict=True)),
        n_draws=n_draws,
    )


@dataclass(frozen=True)
class AlphaResult:
    """Outcome of :func:`alpha_tstat`.

    Attributes:
        alpha: intercept, per bar (in the returns' units).
        beta: slope on the benchmark.
        t_stat: ``alpha / se(alpha)``.
        p_value: two-sided p-value of ``alpha = 0`` (Student t, ``n − 2`` degrees of freedom).
        p_value_positive: one-sided p-value of ``alpha <= 0`` against ``alpha > 0``.
        se_alpha: standard error of ``alpha``.
        covariance: ``"hac"`` (Newey–West) or ``"ols"``.
        hac_lags: lags of the Newey–West estimator (0 with ``"ols"``).
        n_obs: number of bars.
    """

    alpha: float
    beta: float
    t_stat: float
    p_value: float
    p_value_positive: float
    se_alpha: float
    covariance: str
    hac_lags: int
    n_obs: int


def newey_west_lags(n_obs: int) -> int:
    """``floor(4 · (n/100)^(2/9))``: the rule of thumb of Newey & West (1994, "Automatic Lag
    Selection in Covariance Matrix Estimation", Review of Economic Studies 61(4)) for the
    Bartlett kernel; 7 lags for 2000 bars, 10 for 8760."""
    return math.floor(4.0 * (n_obs / 100.0) ** (2.0 / 9.0))


def alpha_tstat(
    strategy_returns: np.ndarray,
    benchmark_returns: np.ndarray,
    hac_lags: int | None = None,
    *,
    covariance: Literal["hac", "ols"] = "hac",
) -> AlphaResult:
    """Alpha of a strategy over a benchmark: OLS ``r_t = α + β·b_t + u_t`` on the same bars.

    Standard errors:

    * ``covariance="hac"`` (default): Newey & West (1987), Bartlett weights
      ``w_l = 1 − l/(L + 1)``, ``V = (X'X)⁻¹ S (X'X)⁻¹`` with
      ``S = Σ_t u_t² x_t x_t' + Σ_{l=1}^{L} w_l Σ_{t>l} u_t u_{t−l} (x_t x_{t−l}' + x_{t−l} x_t')``
      and ``x_t = (1, b_t)``; no small-sample correction. ``L = hac_lags``, by default
      :func:`newey_west_lags`. ``L = 0`` is White's heteroskedasticity-robust estimator.
    * ``covariance="ols"``: the classical ``s² (X'X)⁻¹`` with ``s² = Σ u_t² / (n − 2)``; the
      t-ratio then equals ``scipy.stats.linregress``'s intercept over ``intercept_stderr``.

    p-values use the Student t distribution with ``n − 2`` degrees of freedom in both cases.

    Raises:
        ValueError: not 1-D, different lengths, fewer than 3 bars, non-finite values, a
            constant benchmark (alpha and beta not identified), a bad ``hac_lags`` (negative
            or >= n) or ``covariance``.
    """
    y = np.asarray(strategy_returns, dtype=float)
    x = np.asarray(benchmark_returns, dtype=float)
    for name, values in (("strategy_returns", y), ("benchmark_returns", x)):
        if values.ndim != 1:
            raise ValueError(f"{name} must be 1-D, got {values.ndim} dimension(s)")
        if values.size < 3:
            raise ValueError(f"{name} needs at least 3 bars, got {values.size}")
        if not np.all(np.isfinite(values)):
            raise ValueError(f"{name} must be finite (no NaN or inf)")
    if x.size != y.size:
        raise ValueError(
            f"strategy_returns and benchmark_returns must cover the same bars, got {y.size} "
            f"and {x.size}"
        )
    if np.all(x == x[0]):
        raise ValueError("benchmark_returns is constant: alpha and beta are not identified")
    if covariance not in ("hac", "ols"):
        raise ValueError(f"covariance must be 'hac' or 'ols', got {covariance!r}")
    n = y.size
    if covariance == "ols":
        lags = 0
    elif hac_lags is None:
        lags = newey_west_lags(n)
    else:
        lags = _integer("hac_lags", hac_lags, 0)
        if lags >= n:
            raise ValueError(f"hac_lags must be < the number of bars {n}, got {hac_lags!r}")

    design = np.column_stack([np.ones(n), x])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ coef
    bread = np.linalg.inv(design.T @ design)
    if covariance == "ols":
        cov = bread * float(resid @ resid) / (n - 2)
    else:
        scores = design * resid[:, None]
        meat = scores.T @ scores
        for lag in range(1, lags + 1):
            weight = 1.0 - lag / (lags + 1.0)
            gamma = scores[lag:].T @ scores[:-lag]
            meat += weight * (gamma + gamma.T)
        cov = bread @ meat @ bread
    se_alpha = math.sqrt(max(float(cov[0, 0]), 0.0))
    alpha = float(coef[0])
    if se_alpha > 0.0:
        t_stat = alpha / se_alpha
    else:
        t_stat = 0.0 if alpha == 0.0 else math.copysign(math.inf, alpha)
    dof = n - 2
    return AlphaResult(
        alpha=alpha,
        beta=float(coef[1]),
        t_stat=t_stat,
        p_value=float(2.0 * stats.t.sf(abs(t_stat), dof)),
        p_value_positive=float(stats.t.sf(t_stat, dof)),
        se_alpha=se_alpha,
        covariance=covariance,
        hac_lags=lags,
        n_obs=n,
    )
