"""Could random entries have done as well? Exposure-matched permutation test, and alpha.

* :func:`exposure_matched_pvalue` — a Monte Carlo permutation test of a strategy's trades
  against random trades with the same number and lengths, placed at random non-overlapping
  times in the same bars (so the null has the same market exposure), with the p-value of
  Phipson & Smyth, "Permutation P-values Should Never Be Zero: Calculating Exact P-values
  When Permutations Are Randomly Drawn", *Statistical Applications in Genetics and Molecular
  Biology* 9(1), 2010.
* :func:`alpha_tstat` — the intercept of an OLS regression of the strategy's returns on the
  benchmark's, with Newey & West, "A Simple, Positive Semi-Definite, Heteroskedasticity and
  Autocorrelation Consistent Covariance Matrix", *Econometrica* 55(3), 1987, standard errors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from scipy import stats

from cryptosweep.judging.exact_sums import exact_dot, exact_mean

__all__ = [
    "NULL_QUANTILES",
    "PERMUTATION_DRAWS",
    "AlphaResult",
    "PermutationResult",
    "alpha_tstat",
    "exposure_matched_pvalue",
    "newey_west_lags",
    "random_trade_starts",
]

#: Random placements the permutation test draws by default (the issue's floor is 1,000).
PERMUTATION_DRAWS = 2000
#: Probabilities at which :class:`PermutationResult` reports the null distribution.
NULL_QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
# Elements of the (draws x trades) placement matrices per vectorised chunk: bounds memory.
_CHUNK_ELEMENTS = 4_000_000


def _integer(name: str, value: int, minimum: int) -> int:
    if isinstance(value, bool) or int(value) != value or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class PermutationResult:
    """Outcome of :func:`exposure_matched_pvalue`.

    Attributes:
        p_value: ``(1 + #{null >= observed}) / (n_draws + 1)`` (Phipson & Smyth 2010), in
            ``(0, 1]``.
        percentile: share of the null draws below the observed total, ties counted half, in
            percent (0 to 100).
        null_quantiles: the null totals at the probabilities of :data:`NULL_QUANTILES`.
        n_draws: number of random placements drawn.
    """

    p_value: float
    percentile: float
    null_quantiles: dict[float, float] = field(repr=False)
    n_draws: int


def random_trade_starts(
    n_bars: int, trade_lengths: np.ndarray, n_draws: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Start bars of ``len(trade_lengths)`` non-overlapping trades, ``n_draws`` times.

    The method (sampling the gaps): with ``k`` trades covering ``L = Σ lengths`` bars, the
    ``F = n_bars − L`` free bars fall into ``k + 1`` gaps (before, between and after the
    trades). A uniformly random subset ``c_0 < … < c_{k−1}`` of ``{0, …, F + k − 1}`` (the
    positions of the ``k`` smallest of ``F + k`` uniform random keys) gives the gaps by stars
    and bars, every composition of ``F`` into ``k + 1`` gaps being equally likely; the trades
    are laid out in a uniformly random order. The ``i``-th trade laid out starts at
    ``c_i − i + Σ_{j<i} ℓ_j`` (the free bars before it plus the lengths of the trades before
    it). Every arrangement of the trades in the bars is thus equally likely, trades never
    overlap (they may touch), and each lies inside ``[0, n_bars)``. Cost: ``O(n_draws · n_bars)``.

    Args:
        n_bars: bars available (>= the total length of the trades).
        trade_lengths: 1-D lengths in bars, each >= 1.
        n_draws: placements to draw.
        rng: the generator to draw from.

    Returns:
        ``(starts, lengths)``, both ``(n_draws, k)`` integer arrays: row ``d`` holds draw
        ``d``'s trades in the order laid out (increasing starts) and their lengths.
    """
    lengths = np.asarray(trade_lengths, dtype=np.int64)
    k = lengths.size
    total = int(lengths.sum())
    if k < 1 or np.any(lengths < 1) or total > n_bars:
        raise ValueError(
            f"trade_lengths must be >= 1 and fit in the {n_bars} bars, got a total of {total}"
        )
    slots = n_bars - total + k
    keys = rng.random((n_draws, slots))
    chosen = np.sort(np.argpartition(keys, k - 1, axis=1)[:, :k], axis=1)
    laid_out = rng.permuted(np.tile(lengths, (n_draws, 1)), axis=1)
    before = np.cumsum(laid_out, axis=1) - laid_out
    starts = chosen - np.arange(k) + before
    return starts, laid_out


def exposure_matched_pvalue(
    bar_log_returns: np.ndarray,
    trade_starts: np.ndarray,
    trade_lengths: np.ndarray,
    observed_total: float,
    n_draws: int = PERMUTATION_DRAWS,
    seed: int = 0,
    cost_per_trade: float = 0.0,
) -> PermutationResult:
    """p-value of a strategy's total trade return against random trades of the same exposure.

    The null hypothesis: the strategy's entries are no better than random ones. Each null draw
    places trades with the **same number and lengths** as the strategy's at random
    non-overlapping start bars within the same bars (:func:`random_trade_starts`); a trade
    starting at bar ``s`` with length ``ℓ`` returns ``Σ_{t=s}^{s+ℓ−1} r_t − cost_per_trade``
    (log returns add up over the bars it holds), computed from cumulative sums. The draw's
    total is the sum over its trades. The null trades are **long**: pass the observed total
    of a long-only strategy (or of its long trades), computed in the same way.

    p-value: ``(1 + #{null >= observed}) / (n_draws + 1)``, the exact p-value of a test with
    randomly drawn permutations (Phipson & Smyth 2010), never 0.

    Args:
        bar_log_returns: 1-D per-bar log returns of the traded asset, finite.
        trade_starts: the strategy's trades' first bars (validated: inside the bars and not
            overlapping; the null does not use them otherwise).
        trade_lengths: the trades' lengths in bars (>= 1), aligned with ``trade_starts``.
        observed_total: the strategy's total, ``Σ`` over its trades of (log return − cost).
        n_draws: random placements (>= 1).
        seed: seed of ``numpy.random.default_rng``; the result is deterministic given it.
        cost_per_trade: subtracted from every trade's log return, as from the observed ones.

    Raises:
        ValueError: naming the bad argument (no trades, trades outside the bars or
            overlapping, lengths < 1, non-finite values, bad ``n_draws``/``seed``).
    """
    r = np.asarray(bar_log_returns, dtype=float)
    if r.ndim != 1 or r.size < 1:
        raise ValueError(f"bar_log_returns must be a non-empty 1-D array, got shape {r.shape}")
    if not np.all(np.isfinite(r)):
        raise ValueError("bar_log_returns must be finite (no NaN or inf)")
    starts = np.asarray(trade_starts)
    lengths = np.asarray(trade_lengths)
    if starts.ndim != 1 or starts.size < 1:
        raise ValueError(f"trade_starts must be a non-empty 1-D array, got shape {starts.shape}")
    if lengths.shape != starts.shape:
        raise ValueError(
            f"trade_lengths must align with trade_starts, got {lengths.shape} and {starts.shape}"
        )
    for name, values in (("trade_starts", starts), ("trade_lengths", lengths)):
        if not np.issubdtype(values.dtype, np.number) or not np.all(
            np.isfinite(values) & (values == np.round(values))
        ):
            raise ValueError(f"{name} must hold whole numbers")
    starts = starts.astype(np.int64)
    lengths = lengths.astype(np.int64)
    if np.any(lengths < 1):
        raise ValueError("trade_lengths must all be >= 1")
    if np.any(starts < 0) or np.any(starts + lengths > r.size):
        raise ValueError(f"trade_starts/trade_lengths put a trade outside the {r.size} bars")
    order = np.argsort(starts, kind="stable")
    ends = starts[order] + lengths[order]
    if np.any(starts[order][1:] < ends[:-1]):
        raise ValueError("trade_starts/trade_lengths describe overlapping trades")
    observed = float(observed_total)
    if not math.isfinite(observed):
        raise ValueError(f"observed_total must be finite, got {observed_total!r}")
    cost = float(cost_per_trade)
    if not math.isfinite(cost):
        raise ValueError(f"cost_per_trade must be finite, got {cost_per_trade!r}")
    n_draws = _integer("n_draws", n_draws, 1)
    seed = _integer("seed", seed, 0)

    rng = np.random.default_rng(seed)
    cumulative = np.concatenate([[0.0], np.cumsum(r)])
    k = lengths.size
    chunk = max(1, _CHUNK_ELEMENTS // (r.size + k))
    null = np.empty(n_draws)
    for first in range(0, n_draws, chunk):
        last = min(first + chunk, n_draws)
        placed, laid_out = random_trade_starts(r.size, lengths, last - first, rng)
        gains = cumulative[placed + laid_out] - cumulative[placed]
        null[first:last] = gains.sum(axis=1) - k * cost

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

    # The OLS fit and both covariances in closed form for x_t = (1, b_t), on centred data and
    # with every sum exactly rounded (exact_sums): BLAS kernels differ by CPU in their last
    # bits, a record must not. The first row of (X'X)⁻¹ applied to x_t is
    # 1/n − b̄ (b_t − b̄)/Sxx, so Var(α) of the sandwich is the HAC variance of the sum of
    # ψ_t = u_t (1/n − b̄ (b_t − b̄)/Sxx): the same estimator, without the cancellations of an
    # uncentred 2×2 product when the benchmark's mean is large against its spread.
    mean_x, mean_y = exact_mean(x), exact_mean(y)
    centred_x, centred_y = x - mean_x, y - mean_y
    sxx = exact_dot(centred_x, centred_x)
    if not sxx > 0.0:
        raise ValueError("benchmark_returns vary too little to identify alpha and beta")
    slope = exact_dot(centred_x, centred_y) / sxx
    intercept = mean_y - slope * mean_x
    resid = centred_y - slope * centred_x
    if covariance == "ols":
        var_alpha = exact_dot(resid, resid) / (n - 2) * (1.0 / n + mean_x * mean_x / sxx)
    else:
        influence = resid * (1.0 / n - mean_x * centred_x / sxx)
        var_alpha = exact_dot(influence, influence)
        for lag in range(1, lags + 1):
            weight = 1.0 - lag / (lags + 1.0)
            var_alpha += 2.0 * weight * exact_dot(influence[lag:], influence[:-lag])
    se_alpha = math.sqrt(max(var_alpha, 0.0))
    alpha = float(intercept)
    if se_alpha > 0.0:
        t_stat = alpha / se_alpha
    else:
        t_stat = 0.0 if alpha == 0.0 else math.copysign(math.inf, alpha)
    dof = n - 2
    return AlphaResult(
        alpha=alpha,
        beta=float(slope),
        t_stat=t_stat,
        p_value=float(2.0 * stats.t.sf(abs(t_stat), dof)),
        p_value_positive=float(stats.t.sf(t_stat, dof)),
        se_alpha=se_alpha,
        covariance=covariance,
        hac_lags=lags,
        n_obs=n,
    )
