"""Could entries at other times have done as well? A permutation test, and alpha.

* :func:`rotation_pvalue` — the p-value of a strategy's total against the totals of its own
  entry signal rotated in time and traded by the same rules
  (:mod:`cryptosweep.trading.rotation` explains the null and why it replaced random trades of
  the same lengths), with the p-value of Phipson & Smyth, "Permutation P-values Should Never
  Be Zero: Calculating Exact P-values When Permutations Are Randomly Drawn", *Statistical
  Applications in Genetics and Molecular Biology* 9(1), 2010.
* :func:`alpha_tstat` — the intercept of an OLS regression of the strategy's returns on the
  benchmark's, with Newey & West, "A Simple, Positive Semi-Definite, Heteroskedasticity and
  Autocorrelation Consistent Covariance Matrix", *Econometrica* 55(3), 1987, standard errors.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
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
    "rotation_pvalue",
]

#: Probabilities at which :class:`PermutationResult` reports the null distribution.
NULL_QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
#: Totals this close to the observed one (relative to the larger of 1 and its size) are ties:
#: a stop or a take profit fills at its level, so two rotations that take different trades can
#: earn the same total, which floating point then puts a few ulps apart on either side.
TIE_TOLERANCE = 1e-9


def _integer(name: str, value: int, minimum: int) -> int:
    if isinstance(value, bool) or int(value) != value or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class PermutationResult:
    """Outcome of :func:`rotation_pvalue`.

    Attributes:
        p_value: ``(1 + #{null >= observed}) / (n_draws + 1)`` (Phipson & Smyth 2010), in
            ``(0, 1]``; ties (:data:`TIE_TOLERANCE`) count as at least as good.
        percentile: share of the null below the observed total, ties counted half, in percent
            (0 to 100).
        null_quantiles: the null totals at the probabilities of :data:`NULL_QUANTILES`.
        n_draws: number of null totals.
    """

    p_value: float
    percentile: float
    null_quantiles: dict[float, float] = field(repr=False)
    n_draws: int


def rotation_pvalue(totals: Sequence[float] | np.ndarray) -> PermutationResult:
    """p-value of ``totals[0]`` (the strategy's) against ``totals[1:]`` (its signal rotated).

    Under the null hypothesis (the signal says nothing about the bars after it) every rotation
    is as likely as the one that happened, so ``(1 + #{null >= observed}) / (n + 1)`` is the
    p-value of an exact permutation test over the rotations drawn (Phipson & Smyth 2010),
    never 0; a total within :data:`TIE_TOLERANCE` of the observed one counts as a tie.

    Raises:
        ValueError: not 1-D, fewer than 2 totals, or a non-finite total.
    """
    values = np.asarray(totals, dtype=float)
    if values.ndim != 1 or values.size < 2:
        raise ValueError(f"totals must be 1-D with the observed total and at least one "
                         f"rotation, got shape {values.shape}")
    if not np.all(np.isfinite(values)):
        raise ValueError("totals must be finite (no NaN or inf)")
    observed, null = float(values[0]), values[1:]
    tolerance = TIE_TOLERANCE * max(1.0, abs(observed))
    tied = np.abs(null - observed) <= tolerance
    at_least = int(np.count_nonzero(tied | (null > observed)))
    below = int(np.count_nonzero(~tied & (null < observed)))
    quantiles = np.quantile(null, NULL_QUANTILES)
    return PermutationResult(
        p_value=(1.0 + at_least) / (null.size + 1.0),
        percentile=float(100.0 * (below + 0.5 * np.count_nonzero(tied)) / null.size),
        null_quantiles=dict(zip(NULL_QUANTILES, quantiles.tolist(), strict=True)),
        n_draws=int(null.size),
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
