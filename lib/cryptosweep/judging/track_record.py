"""How long must a record be, and how much of a Sharpe ratio survives the number of trials?

* :func:`minimum_track_record_length` — MinTRL, Bailey & López de Prado, "The Sharpe Ratio
  Efficient Frontier", *Journal of Risk* 15(2), 2012: the number of observations a record needs
  for its Sharpe ratio to beat a benchmark at a given confidence.
* :func:`expected_maximum_sharpe` and :func:`minimum_backtest_length` — MinBTL, Bailey,
  Borwein, López de Prado & Zhu, "Pseudo-Mathematics and Financial Charlatanism: The Effects of
  Backtest Overfitting on Out-of-Sample Performance", *Notices of the AMS* 61(5), 2014: the
  years of data below which N unskilled trials are expected to show a given annual Sharpe ratio
  by luck alone.
* :func:`haircut_sharpe` — Harvey & Liu, "Backtesting", *Journal of Portfolio Management*
  42(1), 2015: the Sharpe ratio left after its p-value is adjusted for multiple testing
  (Bonferroni, Holm, or Benjamini–Hochberg–Yekutieli).

Conventions: the per-observation (per-bar) Sharpe ratio is ``mean / std``, never annualised,
unless an argument's name says ``annual``; kurtosis is **plain** (Pearson, normal = 3), not
excess, as in the papers and in :mod:`cryptosweep.judging.overfitting`. Bad arguments raise
:class:`ValueError` naming the argument.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats

__all__ = [
    "HaircutResult",
    "autocorrelation_factor",
    "expected_maximum_sharpe",
    "haircut_sharpe",
    "minimum_backtest_length",
    "minimum_track_record_length",
]

HaircutMethod = Literal["bonferroni", "holm", "bhy"]
_METHODS = ("bonferroni", "holm", "bhy")


def _finite(name: str, value: float) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return value


def _integer(name: str, value: int, minimum: int) -> int:
    if isinstance(value, bool) or int(value) != value or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def minimum_track_record_length(
    sharpe: float,
    benchmark_sharpe: float,
    skew: float,
    kurtosis: float,
    confidence: float = 0.95,
) -> float:
    """Minimum track record length (Bailey & López de Prado, J. of Risk, 2012, MinTRL).

    ``MinTRL = 1 + [1 − γ3·SR + (γ4 − 1)/4 · SR²] · (Z_α / (SR − SR*))²``

    the number of observations after which an observed Sharpe ratio ``SR`` (with skewness
    ``γ3`` and kurtosis ``γ4``) beats ``SR*`` at confidence ``α``, ``Z_α = Φ⁻¹(α)``. It is the
    ``n`` at which the probabilistic Sharpe ratio ``PSR(SR*)`` (same paper;
    :func:`cryptosweep.judging.overfitting.probabilistic_sharpe_ratio`) equals ``confidence``.

    Args:
        sharpe: observed Sharpe ratio, **per observation** (not annualised).
        benchmark_sharpe: ``SR*``, per observation.
        skew: skewness ``γ3`` of the returns.
        kurtosis: **plain** kurtosis ``γ4`` (normal = 3, not the excess 0).
        confidence: ``α`` in (0, 1).

    Returns:
        Observations (a float, not rounded up; the unit is the returns' own, e.g. bars);
        ``inf`` when ``sharpe <= benchmark_sharpe`` (no record is long enough).

    Raises:
        ValueError: a non-finite argument, ``confidence`` outside (0, 1), or a non-positive
            variance term ``1 − γ3·SR + (γ4 − 1)/4·SR²`` (impossible moments).
    """
    sharpe = _finite("sharpe", sharpe)
    benchmark_sharpe = _finite("benchmark_sharpe", benchmark_sharpe)
    skew = _finite("skew", skew)
    kurtosis = _finite("kurtosis", kurtosis)
    confidence = _finite("confidence", confidence)
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}")
    variance_term = 1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2
    if not variance_term > 0.0:
        raise ValueError(
            f"kurtosis/skew give a non-positive variance term {variance_term!r} "
            "(is the kurtosis plain, not excess, and the Sharpe ratio per observation?)"
        )
    if sharpe <= benchmark_sharpe:
        return math.inf
    z = float(stats.norm.ppf(confidence))
    return 1.0 + variance_term * (z / (sharpe - benchmark_sharpe)) ** 2


def expected_maximum_sharpe(n_trials: int, variance: float = 1.0) -> float:
    """Expected maximum of ``n_trials`` independent N(0, variance) Sharpe ratios.

    Bailey, Borwein, López de Prado & Zhu (2014), the approximation of the expected maximum
    (after Embrechts, Klüppelberg & Mikosch) that the paper's MinBTL rests on:

    ``E[max_N] ≈ √V · ((1 − γ)·Z⁻¹[1 − 1/N] + γ·Z⁻¹[1 − 1/(N·e)])``

    with ``γ`` the Euler–Mascheroni constant, ``e`` Euler's number and ``Z⁻¹`` the standard
    normal quantile function; about 1.57 for ``N = 10`` and ``V = 1``. With
    the variance of *annualised* Sharpe ratios (1 for unskilled strategies over one year) it is
    an annualised Sharpe ratio; with the variance of per-bar ones, a per-bar ratio.

    Raises:
        ValueError: ``n_trials < 2`` (the approximation is undefined for one trial) or a
            negative or non-finite ``variance``.
    """
    n_trials = _integer("n_trials", n_trials, 2)
    variance = _finite("variance", variance)
    if variance < 0.0:
        raise ValueError(f"variance must be >= 0, got {variance!r}")
    gamma = float(np.euler_gamma)
    n = float(n_trials)
    expected_z = (1.0 - gamma) * stats.norm.ppf(1.0 - 1.0 / n) + gamma * stats.norm.ppf(
        1.0 - 1.0 / (n * math.e)
    )
    return float(math.sqrt(variance) * expected_z)


def minimum_backtest_length(n_trials: int, annual_sharpe_target: float = 1.0) -> float:
    """Minimum backtest length in years (Bailey, Borwein, López de Prado & Zhu, 2014).

    ``MinBTL ≈ ( ((1 − γ)·Z⁻¹[1 − 1/N] + γ·Z⁻¹[1 − 1/(N·e)]) / E[max_N] )²``

    where ``E[max_N]`` is ``annual_sharpe_target``: over fewer years than this, the best of
    ``N`` independent trials with true Sharpe ratio 0 is expected to show an annualised Sharpe
    ratio of at least the target by chance (the annualised Sharpe ratio estimated over ``y``
    years of an unskilled strategy has variance ``1/y``). The paper's example: 5 years of data
    allow no more than 45 independent configurations for a target of 1 (``MinBTL(45) ≈ 5``).
    The paper's upper bound ``MinBTL < 2·ln(N) / E[max_N]²`` holds for every N >= 2.

    Args:
        n_trials: N, the number of **independent** configurations tried (>= 2); see
            :mod:`cryptosweep.judging.effective_trials` for an estimate from correlated ones.
        annual_sharpe_target: the annualised Sharpe ratio the selected strategy shows (> 0).

    Returns:
        Years of data.
    """
    target = _finite("annual_sharpe_target", annual_sharpe_target)
    if not target > 0.0:
        raise ValueError(f"annual_sharpe_target must be > 0, got {target!r}")
    return (expected_maximum_sharpe(n_trials, 1.0) / target) ** 2


@dataclass(frozen=True)
class HaircutResult:
    """Outcome of :func:`haircut_sharpe` (Sharpe ratios annualised).

    Attributes:
        haircut_sharpe: the annualised Sharpe ratio whose single-test p-value equals the
            multiple-testing adjusted one.
        haircut: ``(adjusted_sharpe − haircut_sharpe) / adjusted_sharpe``, in [0, 1].
        adjusted_p_value: the p-value adjusted for the ``n_trials`` tests.
        method: ``"bonferroni"``, ``"holm"`` or ``"bhy"``.
        p_value: the single-test two-sided p-value.
        adjusted_sharpe: the annualised Sharpe ratio after the autocorrelation correction (the
            input itself when ``autocorrelation == 0``), which the haircut is taken from.
        t_stat: the single-test t-ratio ``SR_per_bar · √T``.
    """

    haircut_sharpe: float
    haircut: float
    adjusted_p_value: float
    method: str
    p_value: float
    adjusted_sharpe: float
    t_stat: float


def autocorrelation_factor(autocorrelation: float, periods: float) -> float:
    """Lo (2002, "The Statistics of Sharpe Ratios", FAJ 58(4), AR(1) returns) as used by
    Harvey & Liu (2015): ``[1 + 2ρ/(1 − ρ) · (1 − (1 − ρ^q)/(q·(1 − ρ)))]^(−1/2)``, the factor
    that turns a Sharpe ratio annualised by ``√q`` into the correct one when the ``q`` returns
    of a year have first-order autocorrelation ``ρ``."""
    rho = autocorrelation
    q = periods
    if rho == 0.0:
        return 1.0
    return (1.0 + 2.0 * rho / (1.0 - rho) * (1.0 - (1.0 - rho**q) / (q * (1.0 - rho)))) ** -0.5


def haircut_sharpe(
    annual_sharpe: float,
    n_observations: int,
    n_trials: int,
    bars_per_year: float,
    method: HaircutMethod = "holm",
    autocorrelation: float = 0.0,
    *,
    other_annual_sharpes: np.ndarray | None = None,
) -> HaircutResult:
    """Haircut Sharpe ratio for multiple testing (Harvey & Liu, "Backtesting", JPM, 2015).

    The steps of the paper (its section "Haircut Sharpe ratios" and appendix), with bars in
    place of its monthly observations:

    1. Correct the annualised Sharpe ratio for first-order autocorrelation ``ρ`` of the per-bar
       returns (Lo 2002; :func:`autocorrelation_factor` with ``q = bars_per_year``).
    2. Per bar ``SR = SR_annual / √q``; the t-ratio ``t = SR · √T`` and the single-test
       two-sided p-value ``p = 2·(1 − F_{T−1}(t))`` (Student t, ``T − 1`` degrees of freedom).
    3. Adjust ``p`` for ``M = n_trials`` tests (this one included):

       * ``bonferroni``: ``p_adj = min(M·p, 1)``;
       * ``holm`` (Holm 1979): step-down, ``p_adj = max_{j ≤ r} min(1, (M − j + 1)·p_(j))`` where
         ``r`` is the rank of ``p`` among the M ascending p-values ``p_(1) ≤ … ≤ p_(M)``;
       * ``bhy`` (Benjamini & Yekutieli 2001): step-up,
         ``p_adj = min_{j ≥ r} min(1, M·c(M)·p_(j)/j)`` with ``c(M) = Σ_{i=1}^{M} 1/i``.

       A p-value tied with another ranks first among the ties.
    4. Invert: the haircut t-ratio ``t_h = F⁻¹_{T−1}(1 − p_adj/2)``, the haircut Sharpe ratio
       ``t_h / √T · √q`` and the haircut ``1 − haircut_sharpe / adjusted_sharpe``.

    **The other M − 1 p-values** (Holm and BHY only; Bonferroni does not need them): pass the
    other trials' annualised Sharpe ratios as ``other_annual_sharpes`` (same ``T`` and ``q``;
    no autocorrelation correction is applied to them). Without them, this function departs
    from the paper, which simulates the other tests from the model of Harvey, Liu & Zhu (2016,
    "… and the Cross-Section of Expected Returns", RFS) calibrated to published equity
    factors: here they are taken as **pure noise**, with p-values at the expected order
    statistics of M − 1 uniforms, ``i/M`` for ``i = 1 … M − 1``. Deterministic; for a
    significant strategy (``p < 1/M``) Holm then equals Bonferroni, and BHY equals
    ``min(1, M·c(M)·p)`` when ``p ≤ 1/(2M)`` (above it the step-up reaches the noise's
    ``c(M)/2``: with M = 2 and p = 0.3, 0.75, not 0.9).

    Args:
        annual_sharpe: observed annualised Sharpe ratio ``SR_per_bar · √bars_per_year`` (> 0).
        n_observations: T, the bars it was estimated on (>= 2).
        n_trials: M, the number of strategies tried, this one included (>= 1).
        bars_per_year: q, e.g. 8760 for hourly crypto bars (> 0).
        method: ``"bonferroni"``, ``"holm"`` or ``"bhy"``.
        autocorrelation: first-order autocorrelation of the per-bar returns, in (−1, 1).
        other_annual_sharpes: optional, the other ``n_trials − 1`` annualised Sharpe ratios.

    Raises:
        ValueError: naming the bad argument.
    """
    annual_sharpe = _finite("annual_sharpe", annual_sharpe)
    if not annual_sharpe > 0.0:
        raise ValueError(f"annual_sharpe must be > 0 (nothing to haircut), got {annual_sharpe!r}")
    n_obs = _integer("n_observations", n_observations, 2)
    n_tests = _integer("n_trials", n_trials, 1)
    q = _finite("bars_per_year", bars_per_year)
    if not q > 0.0:
        raise ValueError(f"bars_per_year must be > 0, got {q!r}")
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    rho = _finite("autocorrelation", autocorrelation)
    if not -1.0 < rho < 1.0:
        raise ValueError(f"autocorrelation must lie in (-1, 1), got {rho!r}")
    others: np.ndarray | None = None
    if other_annual_sharpes is not None:
        others = np.asarray(other_annual_sharpes, dtype=float)
        if others.ndim != 1 or others.size != n_tests - 1:
            raise ValueError(
                f"other_annual_sharpes must be 1-D with n_trials - 1 = {n_tests - 1} values, "
                f"got shape {others.shape}"
            )
        if not np.all(np.isfinite(others)):
            raise ValueError("other_annual_sharpes must be finite (no NaN or inf)")

    adjusted = annual_sharpe * autocorrelation_factor(rho, q)
    dof = n_obs - 1
    t_stat = adjusted / math.sqrt(q) * math.sqrt(n_obs)
    p_value = float(2.0 * stats.t.sf(t_stat, dof))

    if method == "bonferroni" or n_tests == 1:
        p_adj = min(n_tests * p_value, 1.0)
    else:
        if others is None:
            other_p = np.arange(1, n_tests) / n_tests
        else:
            other_t = np.abs(others) / math.sqrt(q) * math.sqrt(n_obs)
            other_p = 2.0 * stats.t.sf(other_t, dof)
        p_adj = _adjusted_p(p_value, other_p, method)

    haircut_t = float(stats.t.isf(p_adj / 2.0, dof)) if p_adj < 1.0 else 0.0
    haircut_sr = haircut_t / math.sqrt(n_obs) * math.sqrt(q)
    haircut_sr = min(max(haircut_sr, 0.0), adjusted)  # rounding of isf must not exceed SR
    return HaircutResult(
        haircut_sharpe=haircut_sr,
        haircut=(adjusted - haircut_sr) / adjusted,
        adjusted_p_value=float(p_adj),
        method=method,
        p_value=p_value,
        adjusted_sharpe=adjusted,
        t_stat=t_stat,
    )


def _adjusted_p(p_value: float, other_p: np.ndarray, method: str) -> float:
    """Holm or BHY adjusted p-value of ``p_value`` among ``other_p`` (ours ranks first among
    equal p-values)."""
    m = other_p.size + 1
    ordered = np.sort(np.concatenate([[p_value], other_p]))
    rank = int(np.searchsorted(ordered, p_value, side="left"))  # 0-based, first of ties
    j = np.arange(1, m + 1)
    if method == "holm":
        steps = np.minimum((m - j + 1) * ordered, 1.0)
        return float(np.max(steps[: rank + 1]))
    c_m = float(np.sum(1.0 / j))
    steps = np.minimum(m * c_m * ordered / j, 1.0)
    return float(np.min(steps[rank:]))
