"""Is the winner of a sweep skill or luck? Probabilistic and deflated Sharpe ratios, and PBO.

Three diagnostics from the multiple-testing literature of Bailey and López de Prado:

* :func:`probabilistic_sharpe_ratio` — PSR, Bailey & López de Prado, "The Sharpe Ratio
  Efficient Frontier", *Journal of Risk* 15(2), 2012: the probability that the true Sharpe
  ratio exceeds a benchmark, given the length, skewness and kurtosis of the track record.
* :func:`deflated_sharpe_ratio` — DSR, Bailey & López de Prado, "The Deflated Sharpe Ratio:
  Correcting for Selection Bias, Backtest Overfitting and Non-Normality", *Journal of
  Portfolio Management* 40(5), 2014: the PSR against the Sharpe ratio the best of N unskilled
  trials would reach by luck alone. :func:`deflated_sharpe_from_returns` computes it from the
  winner's returns and the Sharpe ratios of all trials.
* :func:`probability_of_backtest_overfitting` — PBO by combinatorially symmetric
  cross-validation (CSCV), Bailey, Borwein, López de Prado & Zhu, "The Probability of Backtest
  Overfitting", *Journal of Computational Finance* 20(4), 2017.

Conventions, the same everywhere in this module:

* **Sharpe ratios are per observation** (per bar), never annualised: ``mean / std`` of the
  returns with ``ddof=1``, and no risk-free rate (crypto returns are taken as excess returns).
  To use annualised figures, divide a Sharpe ratio by ``sqrt(P)`` and a variance of Sharpe
  ratios by ``P``, where ``P`` is the number of observations per year (e.g. 8760 for hourly
  bars traded around the clock). The PSR formula is only valid per observation.
* **Kurtosis is plain** (Pearson; a normal distribution has 3), not excess (Fisher; normal 0).
* Bad arguments raise :class:`ValueError` with one clear message.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

#: CSCV blocks of the probability of backtest overfitting: C(16, 8) = 12,870
#: in-sample/out-of-sample splits.
PBO_SPLITS = 16

__all__ = [
    "PBO_SPLITS",
    "PBOResult",
    "deflated_sharpe_from_returns",
    "deflated_sharpe_ratio",
    "expected_max_sharpe_ratio",
    "probabilistic_sharpe_ratio",
    "probability_of_backtest_overfitting",
]

# Elements (combinations x blocks x configurations) per vectorised CSCV chunk: bounds memory.
_CHUNK_ELEMENTS = 2_000_000


def _finite(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return value


def probabilistic_sharpe_ratio(
    sr: float, sr_benchmark: float, n_obs: int, skew: float, kurtosis: float
) -> float:
    """Probabilistic Sharpe ratio (Bailey & López de Prado, J. of Risk, 2012, eq. 12).

    ``PSR(SR*) = Φ( (SR − SR*) · √(n − 1) / √(1 − γ3·SR + (γ4 − 1)/4 · SR²) )``

    the probability that the true Sharpe ratio is above ``sr_benchmark`` given an observed
    ``sr`` estimated on ``n_obs`` returns with skewness ``γ3`` and kurtosis ``γ4``.

    Args:
        sr: observed Sharpe ratio, **per observation** (not annualised).
        sr_benchmark: the benchmark ``SR*``, per observation (0 for "any skill at all").
        n_obs: number of returns the Sharpe ratio was estimated on (at least 2).
        skew: skewness ``γ3`` of those returns.
        kurtosis: **plain** kurtosis ``γ4`` of those returns (normal = 3, not excess).

    Returns:
        A probability in [0, 1]; exactly 0.5 when ``sr == sr_benchmark``.

    Raises:
        ValueError: a non-finite argument, ``n_obs < 2``, or a non-positive variance term
            ``1 − γ3·SR + (γ4 − 1)/4·SR²`` (impossible moments, e.g. kurtosis below 1).
    """
    sr = _finite("sr", sr)
    sr_benchmark = _finite("sr_benchmark", sr_benchmark)
    skew = _finite("skew", skew)
    kurtosis = _finite("kurtosis", kurtosis)
    if int(n_obs) != n_obs or n_obs < 2:
        raise ValueError(f"n_obs must be an integer >= 2, got {n_obs!r}")
    variance_term = 1.0 - skew * sr + (kurtosis - 1.0) / 4.0 * sr**2
    if not variance_term > 0.0:
        raise ValueError(
            "1 - skew*sr + (kurtosis-1)/4*sr^2 must be positive, got "
            f"{variance_term!r} (is the kurtosis plain, not excess, and sr per observation?)"
        )
    z = (sr - sr_benchmark) * math.sqrt(n_obs - 1) / math.sqrt(variance_term)
    return float(stats.norm.cdf(z))


def expected_max_sharpe_ratio(sr_variance: float, n_trials: int) -> float:
    """``SR0``: the expected maximum Sharpe ratio of ``n_trials`` unskilled trials.

    Bailey & López de Prado, J. of Portfolio Management, 2014, eq. 2 (the false strategy
    theorem): ``SR0 = √V · ((1 − γ)·Φ⁻¹(1 − 1/N) + γ·Φ⁻¹(1 − 1/(N·e)))``, with ``V`` the variance
    of the trials' Sharpe ratios (per observation), ``γ`` the Euler–Mascheroni constant and
    ``e`` Euler's number.

    Raises:
        ValueError: ``sr_variance`` negative or not finite, or ``n_trials < 2`` (the
            approximation is undefined for a single trial).
    """
    sr_variance = _finite("sr_variance", sr_variance)
    if sr_variance < 0.0:
        raise ValueError(f"sr_variance must be >= 0, got {sr_variance!r}")
    if int(n_trials) != n_trials or n_trials < 2:
        raise ValueError(f"n_trials must be an integer >= 2, got {n_trials!r}")
    gamma = np.euler_gamma
    n = float(n_trials)
    expected_max_z = (1.0 - gamma) * stats.norm.ppf(1.0 - 1.0 / n) + gamma * stats.norm.ppf(
        1.0 - 1.0 / (n * math.e)
    )
    return float(math.sqrt(sr_variance) * expected_max_z)


def deflated_sharpe_ratio(
    sr: float,
    sr_variance: float,
    n_trials: int,
    n_obs: int,
    skew: float,
    kurtosis: float,
) -> float:
    """Deflated Sharpe ratio (Bailey & López de Prado, J. of Portfolio Management, 2014).

    ``DSR = PSR(SR0)`` with ``SR0`` from :func:`expected_max_sharpe_ratio`: the probability
    that the selected strategy's true Sharpe ratio beats the best one N unskilled trials would
    show by luck. The paper's example (N = 100, V = 0.5 annualised, T = 1250 daily returns,
    γ3 = −3, γ4 = 10, SR = 2.5 annualised) gives DSR ≈ 0.9004 once converted per observation
    (``sr = 2.5/√250``, ``sr_variance = 0.5/250``).

    Args:
        sr: Sharpe ratio of the selected trial, per observation.
        sr_variance: variance across all trials of their Sharpe ratios, per observation
            (i.e. annualised variance / observations per year).
        n_trials: N, the number of (independent) trials the selection was made from, >= 2.
        n_obs: T, the number of returns ``sr`` was estimated on.
        skew: skewness of the selected trial's returns.
        kurtosis: plain kurtosis (normal = 3) of the selected trial's returns.

    Returns:
        A probability in [0, 1]; values near 1 mean the winner is unlikely to be luck.
    """
    sr0 = expected_max_sharpe_ratio(sr_variance, n_trials)
    return probabilistic_sharpe_ratio(sr, sr0, n_obs, skew, kurtosis)


def deflated_sharpe_from_returns(
    returns_of_best: np.ndarray, trial_sharpes: np.ndarray
) -> dict[str, Any]:
    """DSR and PSR of the selected trial from its returns and the Sharpe ratios of all trials.

    From ``returns_of_best`` (1-D, the per-observation returns of the selected trial, at least
    4 of them): ``sr = mean / std(ddof=1)``; ``skew`` = ``scipy.stats.skew(bias=False)`` and
    ``kurtosis`` = ``scipy.stats.kurtosis(fisher=False, bias=False)``, the bias-corrected
    sample moments (the same adjustment as the ``ddof=1`` standard deviation, and what pandas'
    ``skew()``/``kurt() + 3`` give); the kurtosis is plain (normal = 3).

    From ``trial_sharpes`` (1-D, the per-observation Sharpe ratios of **all** trials of the
    sweep, the selected one included): ``N = len(trial_sharpes)`` and
    ``V = var(trial_sharpes, ddof=1)``.

    Returns:
        A JSON-ready dict: ``dsr`` (PSR against ``sr0``), ``psr`` (PSR against 0), ``sr0``
        (expected maximum Sharpe ratio under no skill), and the inputs ``sr``, ``skew``,
        ``kurtosis``, ``sr_variance``, ``n_trials``, ``n_obs`` — all per observation.

    Raises:
        ValueError: not 1-D, non-finite values, fewer than 4 returns or 2 trials, or constant
            returns (their Sharpe ratio and moments are undefined).
    """
    returns = np.asarray(returns_of_best, dtype=float)
    sharpes = np.asarray(trial_sharpes, dtype=float)
    if returns.ndim != 1 or sharpes.ndim != 1:
        raise ValueError("returns_of_best and trial_sharpes must be 1-D arrays")
    if returns.size < 4:
        raise ValueError(f"returns_of_best needs at least 4 observations, got {returns.size}")
    if sharpes.size < 2:
        raise ValueError(f"trial_sharpes needs at least 2 trials, got {sharpes.size}")
    if not (np.all(np.isfinite(returns)) and np.all(np.isfinite(sharpes))):
        raise ValueError("returns_of_best and trial_sharpes must be finite (no NaN or inf)")
    if np.all(returns == returns[0]):
        raise ValueError("returns_of_best is constant: its Sharpe ratio is undefined")
    n_obs = int(returns.size)
    sr = float(returns.mean() / returns.std(ddof=1))
    skew = float(stats.skew(returns, bias=False))
    kurtosis = float(stats.kurtosis(returns, fisher=False, bias=False))
    sr_variance = float(sharpes.var(ddof=1))
    n_trials = int(sharpes.size)
    sr0 = expected_max_sharpe_ratio(sr_variance, n_trials)
    return {
        "dsr": probabilistic_sharpe_ratio(sr, sr0, n_obs, skew, kurtosis),
        "psr": probabilistic_sharpe_ratio(sr, 0.0, n_obs, skew, kurtosis),
        "sr0": sr0,
        "sr": sr,
        "skew": skew,
        "kurtosis": kurtosis,
        "sr_variance": sr_variance,
        "n_trials": n_trials,
        "n_obs": n_obs,
    }


@dataclass(frozen=True, eq=False)
class PBOResult:
    """Outcome of :func:`probability_of_backtest_overfitting` (arrays are read-only).

    Attributes:
        pbo: share of combinations whose logit is <= 0: the estimated probability that the
            in-sample winner ranks at or below the median out of sample.
        logits: ``λ = ln(ω / (1 − ω))`` per combination, in the order of
            ``itertools.combinations(range(n_splits), n_splits // 2)`` (the in-sample blocks).
        is_performance: in-sample Sharpe ratio (per observation) of the selected configuration,
            per combination.
        oos_performance: out-of-sample Sharpe ratio of the same configuration, per combination.
        n_combinations: ``C(n_splits, n_splits / 2)``.
    """

    pbo: float
    logits: np.ndarray
    is_performance: np.ndarray
    oos_performance: np.ndarray
    n_combinations: int

    @property
    def probability_of_loss(self) -> float:
        """The share of combinations in which the in-sample winner loses out of sample
        (out-of-sample Sharpe ratio < 0): Bailey et al. (2017), section 2.3, "probability of
        loss"."""
        return float(np.mean(self.oos_performance < 0.0))

    @property
    def degradation(self) -> tuple[float, float]:
        """``(slope, intercept)`` of the least-squares line of the winner's out-of-sample on
        its in-sample Sharpe ratio over the combinations: Bailey et al. (2017), section 2.3,
        "performance degradation" (a slope below 0 means that the better a configuration
        looked in sample, the worse it did out of sample). ``(nan, nan)`` when the in-sample
        Sharpe ratios do not vary."""
        x, y = self.is_performance, self.oos_performance
        if len(x) < 2 or float(np.ptp(x)) == 0.0:
            return math.nan, math.nan
        slope, intercept = np.polyfit(x, y, 1)
        return float(slope), float(intercept)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready copy (arrays as lists of floats)."""
        return {
            "pbo": self.pbo,
            "logits": self.logits.tolist(),
            "is_performance": self.is_performance.tolist(),
            "oos_performance": self.oos_performance.tolist(),
            "n_combinations": self.n_combinations,
        }


def probability_of_backtest_overfitting(returns: np.ndarray, n_splits: int = PBO_SPLITS
                                        ) -> PBOResult:
    """Probability of backtest overfitting by CSCV (Bailey, Borwein, López de Prado & Zhu, 2017).

    Steps (section 2 of the paper), on a ``T × N`` matrix of per-observation returns, one column
    per configuration tried, rows in time order:

    1. Split the rows into ``S = n_splits`` contiguous blocks of ``T // S`` rows each. The
       ``T mod S`` remainder rows **at the end** are dropped, so every block has the same size.
    2. For each of the ``C(S, S/2)`` combinations of ``S/2`` blocks (in the order of
       ``itertools.combinations``), those blocks form the in-sample set and the other ``S/2``
       the out-of-sample set (each keeps its rows in time order; order does not matter).
    3. Performance of each configuration on a set = its Sharpe ratio ``mean / std(ddof=1)``
       over the set's rows, per observation (PBO is unchanged by annualising). A column that is
       constant over the set's rows has Sharpe ratio 0 (not ±inf or NaN).
    4. ``n*`` = the configuration with the best in-sample Sharpe ratio; ties go to the lowest
       column index.
    5. ``ω`` = rank of ``n*`` among the N out-of-sample Sharpe ratios (1 = worst, N = best,
       ties get their average rank as in ``scipy.stats.rankdata(method="average")``), divided
       by ``N + 1``; the logit is ``λ = ln(ω / (1 − ω))``.
    6. ``PBO`` = share of combinations with ``λ <= 0`` (winner at or below the OOS median).

    Args:
        returns: ``T × N`` array of finite returns, ``N >= 2`` configurations.
        n_splits: S, even and >= 2; ``T >= S``. The default 16 gives 12 870 combinations.

    Raises:
        ValueError: wrong shape, non-finite values, ``N < 2``, ``S`` odd or < 2, ``T < S``,
            halves of fewer than 2 rows (no ``ddof=1`` standard deviation), or configurations
            whose returns are all the same (no winner: a PBO of 1 would say nothing).
    """
    data = np.asarray(returns, dtype=float)
    if data.ndim != 2:
        raise ValueError(f"returns must be a 2-D array (T x N), got {data.ndim} dimension(s)")
    n_rows, n_configs = data.shape
    if int(n_splits) != n_splits or n_splits < 2 or n_splits % 2:
        raise ValueError(f"n_splits must be an even integer >= 2, got {n_splits!r}")
    n_splits = int(n_splits)
    if n_configs < 2:
        raise ValueError(f"returns needs at least 2 configurations (columns), got {n_configs}")
    if n_rows < n_splits:
        raise ValueError(f"returns needs at least n_splits={n_splits} rows, got {n_rows}")
    block_size = n_rows // n_splits
    half = n_splits // 2
    if block_size * half < 2:
        raise ValueError(
            f"each half of the split has {block_size * half} row(s); at least 2 are needed"
        )
    if not np.all(np.isfinite(data)):
        raise ValueError("returns must be finite (no NaN or inf)")
    scored = data[: block_size * n_splits]  # the rows the blocks hold (a remainder is not)
    if np.all(scored == scored[:, :1]):
        # Every rank a tie: each logit would be 0 and the PBO 1, a number that says nothing.
        raise ValueError("the configurations' returns are the same on every bar (none "
                         "traded, or all alike): there is no best one to rank out of sample")

    blocks = scored.reshape(n_splits, block_size, n_configs)
    stats_ = _BlockStats(blocks)

    combos = np.array(list(itertools.combinations(range(n_splits), half)), dtype=np.intp)
    membership = np.zeros((len(combos), n_splits), dtype=bool)
    membership[np.arange(len(combos))[:, None], combos] = True
    complements = np.nonzero(~membership)[1].reshape(len(combos), half)

    n_combos = len(combos)
    logits = np.empty(n_combos)
    is_perf = np.empty(n_combos)
    oos_perf = np.empty(n_combos)
    chunk = max(1, _CHUNK_ELEMENTS // (half * n_configs))
    for start in range(0, n_combos, chunk):
        stop = min(start + chunk, n_combos)
        sr_is = stats_.sharpe(combos[start:stop])
        sr_oos = stats_.sharpe(complements[start:stop])
        best = np.argmax(sr_is, axis=1)  # first maximum: ties go to the lowest column index
        rows = np.arange(stop - start)
        chosen_oos = sr_oos[rows, best]
        # Average rank (1-based), identical to scipy.stats.rankdata(method="average").
        below = (sr_oos < chosen_oos[:, None]).sum(axis=1)
        equal = (sr_oos == chosen_oos[:, None]).sum(axis=1)
        omega = (below + (equal + 1) / 2.0) / (n_configs + 1)
        logits[start:stop] = np.log(omega / (1.0 - omega))
        is_perf[start:stop] = sr_is[rows, best]
        oos_perf[start:stop] = chosen_oos

    for array in (logits, is_perf, oos_perf):
        array.setflags(write=False)
    return PBOResult(
        pbo=float(np.mean(logits <= 0.0)),
        logits=logits,
        is_performance=is_perf,
        oos_performance=oos_perf,
        n_combinations=n_combos,
    )


class _BlockStats:
    """Per-block sufficient statistics, combined into Sharpe ratios for sets of blocks.

    The mean and sum of squared deviations of a union of equal-size blocks come from the
    blocks' own (Chan et al.'s pairwise update): ``M2 = Σ M2_b + n_b · Σ (mean_b − mean)²``,
    which avoids the cancellation of ``Σx² − n·mean²``. Constancy is decided exactly from the
    blocks' minima and maxima.
    """

    def __init__(self, blocks: np.ndarray) -> None:
        self.size = blocks.shape[1]
        self.mean = blocks.mean(axis=1)
        self.m2 = ((blocks - self.mean[:, None, :]) ** 2).sum(axis=1)
        self.min = blocks.min(axis=1)
        self.max = blocks.max(axis=1)

    def sharpe(self, block_sets: np.ndarray) -> np.ndarray:
        """Sharpe ratios (ddof=1), shape (sets, N), of the union of each row's blocks."""
        means = self.mean[block_sets]  # (sets, blocks per set, N)
        mean = means.mean(axis=1)
        spread = ((means - mean[:, None, :]) ** 2).sum(axis=1)
        m2 = self.m2[block_sets].sum(axis=1) + self.size * spread
        n = self.size * block_sets.shape[1]
        std = np.sqrt(m2 / (n - 1))
        varies = (self.min[block_sets].min(axis=1) < self.max[block_sets].max(axis=1)) & (std > 0)
        out = np.zeros_like(mean)
        np.divide(mean, std, out=out, where=varies)
        return out
