"""How many independent trials did a sweep really make? Clustering trials by their returns.

The deflated Sharpe ratio and MinBTL need ``N``, the number of *independent* trials. Trials of
a hyperparameter sweep are strongly correlated (a small change of a parameter barely changes
the trades), so the raw count overstates ``N``.

:func:`effective_number_of_trials` estimates it with the ONC algorithm ("optimal number of
clusters") of López de Prado & Lewis, "Detection of False Investment Strategies Using
Unsupervised Learning Methods", *Quantitative Finance* 19(9), 2019, used for that purpose in
López de Prado, "A Data Science Solution to the Multiple-Testing Crisis in Financial
Research", *Journal of Financial Data Science* 1(1), 2019: the number of clusters of trials
is ``N`` (the paper also takes the variance from the clusters' aggregate Sharpe ratios;
the gate's variance is chosen by ``deployment.dsr_variance``,
:mod:`cryptosweep.judging.selection`).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = [
    "EffectiveTrials",
    "correlation_adjusted_trials",
    "effective_number_of_trials",
    "silhouette_values",
]

#: Largest number of clusters tried when ``max_clusters`` is not given.
DEFAULT_MAX_CLUSTERS = 50


@dataclass(frozen=True, eq=False)
class EffectiveTrials:
    """Outcome of :func:`effective_number_of_trials` (arrays are read-only).

    Attributes:
        n_trials: columns given, constant ones included.
        n_effective: the effective number of independent trials: the number of clusters, or,
            when the trials show no cluster structure, the distinct trials discounted by their
            mean correlation (:func:`correlation_adjusted_trials`).
        n_independent: the number of independent trials the gate deflates by: each cluster
            worth its distinct members discounted by their mean correlation (1 for a cluster
            of copies; k-means' clusters are groups, not copies), summed; without cluster
            structure, ``n_effective``. Never below ``n_effective``.
        labels: cluster of each trial (column), numbered from 0 in order of first appearance
            (each distinct trial its own when there is no structure); ``-1`` for a constant
            column, which takes no part.
        cluster_sharpes: per-bar Sharpe ratio (``mean / std(ddof=1)``) of each cluster's
            aggregate series, in label order.
        sharpe_variance: ``var(cluster_sharpes, ddof=1)``; NaN with a single group.
        constant_trials: indices of the columns left out for having no variance.
        silhouette: mean silhouette of the chosen k-means partition; NaN when the partition
            did not come from k-means (fewer than 3 distinct trials, or the fallback for no
            clear structure).
    """

    n_trials: int
    n_effective: int
    n_independent: int
    labels: np.ndarray
    cluster_sharpes: np.ndarray
    sharpe_variance: float
    constant_trials: tuple[int, ...]
    silhouette: float


def effective_number_of_trials(
    returns_matrix: np.ndarray,
    seed: int = 0,
    max_clusters: int | None = None,
    *,
    n_init: int = 5,
    min_silhouette: float = 0.25,
    weighting: Literal["inverse_variance", "equal"] = "inverse_variance",
) -> EffectiveTrials:
    """Effective number of trials by ONC clustering (López de Prado & Lewis 2019).

    What is implemented (the base step of ONC; its second, recursive step, which re-clusters
    the clusters of below-average quality, is **not**):

    1. Columns (trials) with zero variance are left out (label ``-1``, listed in
       ``constant_trials``): their correlation is undefined.
    2. Correlation ``ρ`` of the remaining trials' returns, distance
       ``d = √((1 − ρ)/2)``; each trial is the point given by its row of distances.
    3. For ``k = 2 … K`` (``K = max_clusters``, by default ``min(distinct trials − 1, 50)``),
       ``n_init`` k-means runs (scikit-learn ``KMeans``, one initialisation each, seeds drawn
       from ``numpy.random.default_rng(seed)``) on those points; the quality of a partition is
       ``q = mean(s) / std(s)`` of the silhouettes ``s`` of all trials (Euclidean, on the same
       points; :func:`silhouette_values`). The partition with the highest ``q`` is kept
       (ties: the smallest ``k``, then the first run; ``q = inf`` when all silhouettes are
       equal and positive). k-means runs on one thread (``threadpoolctl``, a dependency of
       scikit-learn): for these small matrices OpenMP start-up costs more than the fit.
    4. Silhouettes cannot compare one cluster, nor all-singletons, with a partition. When the
       best partition's mean silhouette is below ``min_silhouette`` (0.25: "no substantial
       structure" in Kaufman & Rousseeuw, *Finding Groups in Data*, 1990), the trials form no
       clusters: each distinct trial is its own group (labels and Sharpe ratios), and the
       effective number is their count discounted by their mean pairwise correlation ρ̄,
       ``⌈ρ̄ + (1 − ρ̄)·M⌉`` for ``M`` distinct trials (:func:`correlation_adjusted_trials`,
       Bailey & López de Prado 2014). So are two distinct trials (no k-means possible).
       Identical columns always share a cluster.
    5. Each cluster's aggregate series is the inverse-variance weighted (weights ∝ 1/σ², the
       choice of López de Prado 2019) or equally weighted average of its trials' returns; its
       per-bar Sharpe ratio is ``mean / std(ddof=1)`` (0 without dispersion). The variance
       across clusters of these Sharpe ratios is what the deflated Sharpe ratio deflates by,
       with ``N = n_effective`` (e.g.
       :func:`cryptosweep.judging.overfitting.deflated_sharpe_ratio`).

    Args:
        returns_matrix: ``T × N`` per-bar returns, rows = bars in time order, columns = trials;
            finite, ``T >= 3``, ``N >= 1``.
        seed: seeds the k-means initialisations; the result is deterministic given it.
        max_clusters: the largest ``k`` tried (>= 2); capped at distinct trials − 1.
        n_init: k-means runs per ``k`` (>= 1).
        min_silhouette: mean silhouette below which a partition is not trusted, in [-1, 1].
        weighting: ``"inverse_variance"`` or ``"equal"``, the aggregate of a cluster.

    Raises:
        ValueError: naming the bad argument; also when every column is constant.
    """
    data = np.asarray(returns_matrix, dtype=float)
    if data.ndim != 2:
        raise ValueError(
            f"returns_matrix must be 2-D (bars x trials), got {data.ndim} dimension(s)"
        )
    n_bars, n_trials = data.shape
    if n_trials < 1 or n_bars < 3:
        raise ValueError(
            f"returns_matrix needs at least 3 bars and 1 trial, got shape {data.shape}"
        )
    if not np.all(np.isfinite(data)):
        raise ValueError("returns_matrix must be finite (no NaN or inf)")
    if isinstance(seed, bool) or int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if max_clusters is not None and (
        isinstance(max_clusters, bool) or int(max_clusters) != max_clusters or max_clusters < 2
    ):
        raise ValueError(f"max_clusters must be an integer >= 2, got {max_clusters!r}")
    if isinstance(n_init, bool) or int(n_init) != n_init or n_init < 1:
        raise ValueError(f"n_init must be an integer >= 1, got {n_init!r}")
    if not (math.isfinite(min_silhouette) and -1.0 <= min_silhouette <= 1.0):
        raise ValueError(f"min_silhouette must lie in [-1, 1], got {min_silhouette!r}")
    if weighting not in ("inverse_variance", "equal"):
        raise ValueError(f"weighting must be 'inverse_variance' or 'equal', got {weighting!r}")

    constant = np.all(data == data[0], axis=0)
    active = np.flatnonzero(~constant)
    if active.size == 0:
        raise ValueError("returns_matrix has only constant columns: nothing to cluster")
    active_data = data[:, active]
    active_labels, silhouette, independent = _cluster(
        active_data,
        seed=int(seed),
        max_clusters=None if max_clusters is None else int(max_clusters),
        n_init=int(n_init),
        min_silhouette=float(min_silhouette),
    )
    # Number clusters in order of first appearance (deterministic, independent of k-means).
    _, first = np.unique(active_labels, return_index=True)
    renumber = {int(active_labels[i]): rank for rank, i in enumerate(sorted(first))}
    active_labels = np.array([renumber[int(label)] for label in active_labels])
    n_clusters = len(renumber)

    labels = np.full(n_trials, -1, dtype=np.int64)
    labels[active] = active_labels
    sharpes = np.empty(n_clusters)
    variances = active_data.var(axis=0, ddof=1)
    for cluster in range(n_clusters):
        members = active_labels == cluster
        weights = 1.0 / variances[members] if weighting == "inverse_variance" else None
        if weights is None:
            weights = np.ones(int(members.sum()))
        # Column by column in a fixed order, not a BLAS product (whose kernel, chosen by the
        # CPU, moves the last bits of what the ledger's variance records).
        series = np.zeros(len(active_data))
        for column, weight in zip(active_data[:, members].T, weights / weights.sum(),
                                  strict=True):
            series += weight * column
        std = float(series.std(ddof=1))
        sharpes[cluster] = float(series.mean()) / std if std > 0.0 else 0.0
    variance = float(sharpes.var(ddof=1)) if n_clusters > 1 else math.nan
    labels.setflags(write=False)
    sharpes.setflags(write=False)
    return EffectiveTrials(
        n_trials=n_trials,
        # A k-means partition (a silhouette) counts its clusters; without one, the trials
        # form no clusters and the effective number is what they are worth.
        n_effective=n_clusters if math.isfinite(silhouette) else independent,
        n_independent=independent,
        labels=labels,
        cluster_sharpes=sharpes,
        sharpe_variance=variance,
        constant_trials=tuple(int(i) for i in np.flatnonzero(constant)),
        silhouette=silhouette,
    )


def _cluster(
    data: np.ndarray,
    *,
    seed: int,
    max_clusters: int | None,
    n_init: int,
    min_silhouette: float,
) -> tuple[np.ndarray, float, int | None]:
    """Labels of the (non-constant) columns of ``data``, the mean silhouette (or NaN), and
    what the trials are worth as independent ones: each group's distinct members discounted
    by their mean correlation (:func:`correlation_adjusted_trials`), summed; without cluster
    structure, all distinct trials as one group."""
    n = data.shape[1]
    if n == 1:
        return np.zeros(1, dtype=np.int64), math.nan, 1
    corr = np.clip(np.corrcoef(data, rowvar=False), -1.0, 1.0)
    np.fill_diagonal(corr, 1.0)
    points = np.sqrt((1.0 - corr) / 2.0)
    # Identical columns give identical points; k-means cannot split them, and their number
    # bounds k. Rounding absorbs the last-bit noise of np.corrcoef.
    _, distinct = np.unique(np.round(points, 10), axis=0, return_inverse=True)
    distinct = distinct.ravel()
    n_distinct = int(distinct.max()) + 1
    if n_distinct == 1:
        return np.zeros(n, dtype=np.int64), math.nan, 1
    first = np.unique(distinct, return_index=True)[1]  # one column per distinct trial

    def worth(members: np.ndarray) -> int:
        """The distinct trials among the columns ``members`` discounted by their mean
        pairwise correlation."""
        kept = first[np.isin(first, np.flatnonzero(members))]
        if kept.size == 1:
            return 1
        block = corr[np.ix_(kept, kept)]
        mean = float(block[~np.eye(kept.size, dtype=bool)].mean())
        return correlation_adjusted_trials(mean, int(kept.size))

    structureless = (distinct, math.nan, worth(np.ones(n, dtype=bool)))
    if n_distinct == 2:
        return structureless

    top = n_distinct - 1 if max_clusters is None else min(max_clusters, n_distinct - 1)
    if max_clusters is None:
        top = min(top, DEFAULT_MAX_CLUSTERS)
    rng = np.random.default_rng(seed)
    euclidean = np.sqrt(np.maximum(_squared_distances(points), 0.0))
    best: tuple[float, np.ndarray, float] | None = None
    # One thread: for the small (trials x trials) matrices of a sweep, starting OpenMP threads
    # costs more than the fits (about 3x here), and the sweep's workers already use the cores.
    # threadpoolctl is a dependency of scikit-learn.
    # scikit-learn here, not at the top: importing it costs every process that imports the
    # sweep about half a second, and only the end of a sweep with trials to cluster needs it.
    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for k in range(2, top + 1):
            for run_seed in rng.integers(0, 2**31 - 1, size=n_init):
                fitted = KMeans(n_clusters=k, n_init=1, random_state=int(run_seed)).fit(points)
                labels = fitted.labels_
                if np.unique(labels).size < 2:
                    continue
                silhouettes = silhouette_values(euclidean, labels)
                mean = float(silhouettes.mean())
                spread = float(silhouettes.std())
                quality = _quality(mean, spread)
                if best is None or quality > best[0]:
                    best = (quality, labels.copy(), mean)
    if best is not None and best[2] >= min_silhouette:
        labels = best[1]
        return labels, best[2], sum(worth(labels == cluster) for cluster in np.unique(labels))
    return structureless


def correlation_adjusted_trials(mean_correlation: float, n_trials: int) -> int:
    """The number of independent trials ``M`` trials of average pairwise correlation ``ρ̄``
    are worth: ``ρ̄ + (1 − ρ̄)·M`` (Bailey & López de Prado 2014, "The deflated Sharpe
    ratio", their approximation of N for correlated trials), ``ρ̄`` clipped to [0, 1],
    rounded **up** (the gate's side: a fraction of a trial still selects), at least 1. ``M``
    uncorrelated trials are ``M``; only perfectly correlated ones are one."""
    if isinstance(n_trials, bool) or int(n_trials) != n_trials or n_trials < 1:
        raise ValueError(f"n_trials must be an integer >= 1, got {n_trials!r}")
    if not math.isfinite(mean_correlation):
        raise ValueError(f"mean_correlation must be finite, got {mean_correlation!r}")
    rho = min(max(float(mean_correlation), 0.0), 1.0)
    return max(1, math.ceil(rho + (1.0 - rho) * int(n_trials) - 1e-9))


def _quality(mean: float, spread: float) -> float:
    """ONC's t-statistic of the silhouettes, ``mean / std``; ±inf without dispersion."""
    if spread > 0.0:
        return mean / spread
    return math.inf if mean > 0 else -math.inf


def _squared_distances(points: np.ndarray) -> np.ndarray:
    norms = np.einsum("ij,ij->i", points, points)
    out = norms[:, None] + norms[None, :] - 2.0 * points @ points.T
    np.fill_diagonal(out, 0.0)
    return out


def silhouette_values(distances: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Silhouette of each point (Rousseeuw 1987, "Silhouettes: a graphical aid to the
    interpretation and validation of cluster analysis", J. Comput. Appl. Math. 20):
    ``s = (b − a) / max(a, b)`` with ``a`` the mean distance to the other members of its
    cluster and ``b`` the smallest mean distance to another cluster; 0 for a point alone in
    its cluster (as in scikit-learn's ``silhouette_samples``, which this equals; computed here
    from one distance matrix for all partitions, which is much faster in the loop over k).
    """
    clusters, index = np.unique(labels, return_inverse=True)
    onehot = np.zeros((labels.size, clusters.size))
    onehot[np.arange(labels.size), index] = 1.0
    sizes = onehot.sum(axis=0)
    sums = distances @ onehot  # (points, clusters): total distance to each cluster
    own_size = sizes[index]
    rows = np.arange(labels.size)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = sums[rows, index] / (own_size - 1.0)
        means = sums / sizes
    means[rows, index] = np.inf
    b = means.min(axis=1)
    denominator = np.maximum(a, b)
    out = np.zeros(labels.size)
    valid = (own_size > 1) & (denominator > 0)
    out[valid] = (b[valid] - a[valid]) / denominator[valid]
    return out
