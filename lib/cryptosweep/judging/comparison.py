"""Is a challenger's Sharpe ratio higher than the champion's, on the same bars?

Two paired tests of ``H0: SR_a <= SR_b`` against ``H1: SR_a > SR_b`` for two return series
observed on the same bars (so their correlation matters):

* :func:`jobson_korkie_memmel` — the asymptotic z-test of Jobson & Korkie, "Performance
  Hypothesis Testing with the Sharpe and Treynor Measures", *Journal of Finance* 36(4), 1981,
  with the corrected variance of Memmel, "Performance Hypothesis Testing with the Sharpe
  Ratio", *Finance Letters* 1, 2003. It assumes i.i.d. normal returns.
* :func:`sharpe_above_flat` — the same z-test against a champion flat on every bar (Sharpe
  ratio 0, known without error): the variance is the challenger's own, ``(1 + ½·SR²)/T``, of
  Lo, "The Statistics of Sharpe Ratios", *Financial Analysts Journal* 58(4), 2002 (i.i.d.
  normal returns; skewed or fat-tailed ones have a larger variance, Mertens 2002, and the test
  then over-rejects, as the Jobson–Korkie one does).
* :func:`bootstrap_sharpe_difference` — a paired circular block bootstrap in the spirit of
  Ledoit & Wolf, "Robust Performance Hypothesis Testing with the Sharpe Ratio", *Journal of
  Empirical Finance* 15(5), 2008: robust to fat tails and serial dependence.

Sharpe ratios are per bar: ``mean / std(ddof=1)``, no risk-free rate, as in
:mod:`cryptosweep.judging.overfitting`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from cryptosweep.judging.exact_sums import exact_dot, exact_mean

__all__ = ["PairedTest", "bootstrap_sharpe_difference", "jobson_korkie_memmel",
           "sharpe_above_flat"]


@dataclass(frozen=True)
class PairedTest:
    """Outcome of a paired Sharpe ratio test of ``a`` better than ``b``.

    Attributes:
        statistic: the z statistic (``difference`` over its standard error).
        p_value: one-sided p-value of ``H0: SR_a <= SR_b``; small means ``a`` is better.
        sharpe_a: per-bar Sharpe ratio of ``a``.
        sharpe_b: per-bar Sharpe ratio of ``b``.
        difference: ``sharpe_a − sharpe_b``.
    """

    statistic: float
    p_value: float
    sharpe_a: float
    sharpe_b: float
    difference: float


def _series(name: str, returns: np.ndarray, minimum: int) -> np.ndarray:
    x = np.asarray(returns, dtype=float)
    if x.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got {x.ndim} dimension(s)")
    if x.size < minimum:
        raise ValueError(f"{name} needs at least {minimum} returns, got {x.size}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    if np.all(x == x[0]):
        raise ValueError(f"{name} is constant: its Sharpe ratio is undefined")
    return x


def _pair(returns_a: np.ndarray, returns_b: np.ndarray, minimum: int) -> tuple[np.ndarray, ...]:
    a, b = _series("returns_a", returns_a, minimum), _series("returns_b", returns_b, minimum)
    if a.size != b.size:
        raise ValueError(
            f"returns_a and returns_b must cover the same bars, got {a.size} and {b.size} returns"
        )
    return a, b


def jobson_korkie_memmel(returns_a: np.ndarray, returns_b: np.ndarray) -> PairedTest:
    """Jobson–Korkie (1981) test of equal Sharpe ratios with Memmel's (2003) correction.

    With ``T`` paired returns, per-bar Sharpe ratios ``SR_a``, ``SR_b`` and correlation ``ρ``,
    the asymptotic variance of ``SR_a − SR_b`` under i.i.d. normal returns is (Memmel 2003,
    correcting Jobson & Korkie 1981)

    ``θ / T,  θ = 2 − 2ρ + ½ · (SR_a² + SR_b² − 2·SR_a·SR_b·ρ²)``

    and ``z = (SR_a − SR_b) / √(θ/T)`` is compared with the standard normal: the p-value is
    ``1 − Φ(z)`` (one-sided, ``a`` better than ``b``). Means, standard deviations (``ddof=1``)
    and ``ρ`` are the sample ones. Under fat tails or autocorrelation the variance is too small
    and the test over-rejects; use :func:`bootstrap_sharpe_difference` there.

    Args:
        returns_a: per-bar returns of the challenger.
        returns_b: per-bar returns of the champion, on the same bars.

    Returns:
        :class:`PairedTest`. Two identical series (``θ = 0`` and no difference) give
        ``statistic = 0`` and ``p_value = 0.5``.

    Raises:
        ValueError: not 1-D, of different lengths, fewer than 3 returns, non-finite or
            constant.
    """
    a, b = _pair(returns_a, returns_b, 3)
    n = a.size
    sr_a = float(a.mean() / a.std(ddof=1))
    sr_b = float(b.mean() / b.std(ddof=1))
    centred_a, centred_b = a - exact_mean(a), b - exact_mean(b)
    rho = exact_dot(centred_a, centred_b) / math.sqrt(
        exact_dot(centred_a, centred_a) * exact_dot(centred_b, centred_b))
    rho = min(max(rho, -1.0), 1.0)
    theta = 2.0 - 2.0 * rho + 0.5 * (sr_a**2 + sr_b**2 - 2.0 * sr_a * sr_b * rho**2)
    diff = sr_a - sr_b
    z = _ratio(diff, math.sqrt(max(theta, 0.0) / n))
    return PairedTest(
        statistic=float(z),
        p_value=float(stats.norm.sf(z)),
        sharpe_a=sr_a,
        sharpe_b=sr_b,
        difference=diff,
    )


def sharpe_above_flat(returns_a: np.ndarray) -> PairedTest:
    """:func:`jobson_korkie_memmel` against a champion that stayed flat on these bars (every
    return 0, which the paired test refuses as constant): the champion's Sharpe ratio is the
    flat baseline's 0, known without error, so the difference's variance is the challenger's
    own, ``(1 + ½·SR_a²) / T`` (Lo 2002; Memmel's θ without the champion's terms), and
    ``z = SR_a / √((1 + ½·SR_a²) / T)``, one-sided.

    Raises:
        ValueError: not 1-D, fewer than 3 returns, non-finite or constant.
    """
    a = _series("returns_a", returns_a, 3)
    sr_a = float(a.mean() / a.std(ddof=1))
    z = _ratio(sr_a, math.sqrt((1.0 + 0.5 * sr_a**2) / a.size))
    return PairedTest(statistic=float(z), p_value=float(stats.norm.sf(z)), sharpe_a=sr_a,
                      sharpe_b=0.0, difference=sr_a)


def default_block_length(n_bars: int) -> int:
    """``max(1, round(n^(1/3)))``: the rate at which the optimal block length of a block
    bootstrap of a mean-like statistic grows (Hall, Horowitz & Jing 1995, "On blocking rules
    for the bootstrap with dependent data", Biometrika 82(3)); 13 for 2000 bars."""
    return max(1, round(n_bars ** (1.0 / 3.0)))


def bootstrap_sharpe_difference(
    returns_a: np.ndarray,
    returns_b: np.ndarray,
    n_draws: int = 2000,
    block_length: int | None = None,
    seed: int = 0,
) -> PairedTest:
    """Paired circular block bootstrap of the Sharpe ratio difference (after Ledoit & Wolf 2008).

    Each draw resamples the **same** bars for both series: ``ceil(T / b)`` blocks of ``b``
    consecutive bars, each starting at a bar drawn uniformly, wrapping around the end (the
    circular block bootstrap of Politis & Romano 1992), the first ``T`` bars kept. The draw's
    difference ``d* = SR*_a − SR*_b`` is computed on the resampled pairs, which keeps the
    correlation of the two series and, within blocks, their serial dependence.

    Test of ``H0: SR_a <= SR_b``: the bootstrap distribution centred on the observed
    difference ``d`` stands for the null (the "basic" bootstrap test); the p-value is
    ``(1 + #{d* − d >= d}) / (n_draws + 1)`` and the statistic ``z = d / sd(d*)``.

    This is simpler than Ledoit & Wolf's recommended test, which **studentizes** each draw with
    a HAC-type standard error and chooses the block length by calibration; the plain version
    here is less accurate in small samples (its p-values are approximate), which a larger
    number of bars mitigates.

    Args:
        returns_a: per-bar returns of the challenger.
        returns_b: per-bar returns of the champion, on the same bars.
        n_draws: bootstrap draws (>= 1).
        block_length: ``b`` in bars, 1 <= b <= T; default :func:`default_block_length` (about
            ``T^(1/3)``). ``b = 1`` is the i.i.d. pairs bootstrap.
        seed: seed of ``numpy.random.default_rng``; the result is deterministic given it.

    Raises:
        ValueError: as :func:`jobson_korkie_memmel`, or a bad ``n_draws``, ``block_length``
            or ``seed``.
    """
    a, b = _pair(returns_a, returns_b, 3)
    n = a.size
    if isinstance(n_draws, bool) or int(n_draws) != n_draws or n_draws < 1:
        raise ValueError(f"n_draws must be an integer >= 1, got {n_draws!r}")
    n_draws = int(n_draws)
    if block_length is None:
        block_length = default_block_length(n)
    if (
        isinstance(block_length, bool)
        or int(block_length) != block_length
        or not (1 <= block_length <= n)
    ):
        raise ValueError(f"block_length must be an integer in [1, {n}], got {block_length!r}")
    block_length = int(block_length)
    if isinstance(seed, bool) or int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")

    sr_a = float(a.mean() / a.std(ddof=1))
    sr_b = float(b.mean() / b.std(ddof=1))
    diff = sr_a - sr_b

    rng = np.random.default_rng(int(seed))
    n_blocks = -(-n // block_length)
    # Chunks of draws bound the memory of the (draws x T) index matrix.
    chunk = max(1, 4_000_000 // n)
    draws = np.empty(n_draws)
    offsets = np.arange(block_length)
    for start in range(0, n_draws, chunk):
        stop = min(start + chunk, n_draws)
        starts = rng.integers(0, n, size=(stop - start, n_blocks))
        index = ((starts[:, :, None] + offsets) % n).reshape(stop - start, -1)[:, :n]
        draws[start:stop] = _sharpe_rows(a[index]) - _sharpe_rows(b[index])

    spread = float(draws.std(ddof=1)) if n_draws > 1 else 0.0
    z = _ratio(diff, spread)
    exceed = int(np.count_nonzero(draws - diff >= diff))
    return PairedTest(
        statistic=float(z),
        p_value=(1.0 + exceed) / (n_draws + 1.0),
        sharpe_a=sr_a,
        sharpe_b=sr_b,
        difference=diff,
    )


def _ratio(diff: float, se: float) -> float:
    """``diff / se``; without a standard error (identical series), 0 for no difference and
    ±inf otherwise. Differences below 1e-12 count as none (rounding of equal Sharpe ratios)."""
    if se > 1e-12:
        return diff / se
    return 0.0 if abs(diff) <= 1e-12 else math.copysign(math.inf, diff)


def _sharpe_rows(x: np.ndarray) -> np.ndarray:
    """Per-row ``mean / std(ddof=1)``; 0 for a row without dispersion."""
    mean = x.mean(axis=1)
    std = x.std(axis=1, ddof=1)
    out = np.zeros_like(mean)
    np.divide(mean, std, out=out, where=std > 0)
    return out
