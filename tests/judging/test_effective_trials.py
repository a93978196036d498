"""Tests of ``cryptosweep.judging.effective_trials``: the effective number of trials (ONC).

López de Prado & Lewis (2019) and López de Prado (2019) illustrate ONC on simulated
block-correlated matrices and on a proprietary set of 6,385 backtests; neither is reproducible
here. The checks use planted structure instead (groups of series built from a common factor,
whose number of clusters is known by construction), the edge cases of the brief (N = 1, N = 2,
identical and constant columns), and an inverse-variance aggregate computed by hand.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from cryptosweep.judging.effective_trials import (
    EffectiveTrials,
    correlation_adjusted_trials,
    effective_number_of_trials,
    silhouette_values,
)


def planted_groups(rng, sizes, n_bars=500, noise=0.3, drift=None):
    """Columns = factor of their group + independent noise; returns (matrix, group of each)."""
    columns, groups = [], []
    for g, size in enumerate(sizes):
        factor = rng.standard_normal(n_bars)
        mean = 0.0 if drift is None else drift[g]
        for _ in range(size):
            columns.append(mean + factor + noise * rng.standard_normal(n_bars))
            groups.append(g)
    return np.column_stack(columns) * 0.01, np.array(groups)


def same_partition(a, b):
    """True when two labelings define the same partition (labels may be permuted)."""
    pairs = set(zip(a.tolist(), b.tolist(), strict=True))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


def test_three_planted_groups_of_ten_give_three():
    rng = np.random.default_rng(2019)
    data, groups = planted_groups(rng, [10, 10, 10])
    result = effective_number_of_trials(data, seed=0)
    assert isinstance(result, EffectiveTrials)
    assert result.n_trials == 30
    assert result.n_effective == 3
    assert same_partition(result.labels, groups)
    assert result.silhouette > 0.5
    # Labels are numbered in order of first appearance.
    assert result.labels[0] == 0


def test_unequal_groups_and_shuffled_columns():
    rng = np.random.default_rng(7)
    data, groups = planted_groups(rng, [12, 3, 7, 5], noise=0.5)
    order = rng.permutation(data.shape[1])
    result = effective_number_of_trials(data[:, order], seed=3)
    assert result.n_effective == 4
    assert same_partition(result.labels, groups[order])


def test_identical_columns_cluster_together():
    rng = np.random.default_rng(11)
    data, _ = planted_groups(rng, [6, 6])
    copies = np.column_stack([data, data[:, 0], data[:, 7], data[:, 0]])
    result = effective_number_of_trials(copies, seed=1)
    assert result.n_effective == 2
    assert result.labels[12] == result.labels[0] == result.labels[14]
    assert result.labels[13] == result.labels[7]
    # Only identical columns: one trial.
    same = np.column_stack([data[:, 0]] * 5)
    assert effective_number_of_trials(same).n_effective == 1


def test_constant_columns_are_left_out():
    rng = np.random.default_rng(13)
    data, groups = planted_groups(rng, [5, 5])
    with_flat = np.column_stack([np.zeros(500), data, np.full(500, 0.001)])
    result = effective_number_of_trials(with_flat, seed=0)
    assert result.n_trials == 12
    assert result.constant_trials == (0, 11)
    assert result.labels[0] == result.labels[11] == -1
    assert result.n_effective == 2
    assert same_partition(result.labels[1:11], groups)
    with pytest.raises(ValueError, match="constant"):
        effective_number_of_trials(np.zeros((50, 3)))


def test_single_trial():
    rng = np.random.default_rng(17)
    x = rng.normal(0.001, 0.01, size=(300, 1))
    result = effective_number_of_trials(x)
    assert (result.n_trials, result.n_effective) == (1, 1)
    assert result.labels.tolist() == [0]
    assert result.cluster_sharpes[0] == pytest.approx(x.mean() / x.std(ddof=1))
    assert math.isnan(result.sharpe_variance)


def test_two_trials_correlated_or_not():
    rng = np.random.default_rng(19)
    base = rng.standard_normal(400)
    close = np.column_stack([base, base + 0.2 * rng.standard_normal(400)])
    apart = np.column_stack([base, rng.standard_normal(400)])
    # Two distinct trials make no clusters: ρ̄ + (1 − ρ̄)·2, rounded up, is 2 unless they are
    # identical (test_identical_columns_cluster_together): a near copy still selects.
    assert effective_number_of_trials(close).n_effective == 2
    assert effective_number_of_trials(apart).n_effective == 2


def test_independent_trials_count_one_each_and_one_factor_counts_once():
    rng = np.random.default_rng(23)
    independent = rng.standard_normal((600, 8))
    result = effective_number_of_trials(independent, seed=0)
    assert result.n_effective == 8
    assert np.isnan(result.silhouette)  # the fallback, not a k-means partition
    one_factor, _ = planted_groups(rng, [9], noise=0.2)  # ρ̄ ≈ 0.96: 9 trials worth 1.3
    assert effective_number_of_trials(one_factor, seed=0).n_effective == 2


def test_cluster_sharpes_are_inverse_variance_aggregates():
    rng = np.random.default_rng(29)
    data, _ = planted_groups(rng, [4, 4, 4], drift=[0.05, 0.0, -0.03])
    data[:, 1] *= 3.0  # unequal variances, so the weights matter
    result = effective_number_of_trials(data, seed=0)
    assert result.n_effective == 3
    expected = []
    for cluster in range(3):
        cols = [j for j in range(12) if result.labels[j] == cluster]
        inv = [1.0 / np.var(data[:, j], ddof=1) for j in cols]
        series = sum(w * data[:, j] for w, j in zip(inv, cols, strict=True)) / sum(inv)
        expected.append(series.mean() / series.std(ddof=1))
    assert np.allclose(result.cluster_sharpes, expected, rtol=1e-10)
    assert result.sharpe_variance == pytest.approx(np.var(expected, ddof=1), rel=1e-10)
    equal = effective_number_of_trials(data, seed=0, weighting="equal")
    cols0 = [j for j in range(12) if equal.labels[j] == 0]
    series0 = data[:, cols0].mean(axis=1)
    assert equal.cluster_sharpes[0] == pytest.approx(series0.mean() / series0.std(ddof=1))
    assert equal.cluster_sharpes[0] != pytest.approx(result.cluster_sharpes[0], rel=1e-6)


def test_deterministic_given_the_seed_and_read_only():
    rng = np.random.default_rng(31)
    data, _ = planted_groups(rng, [5, 5, 5], noise=0.8)
    first = effective_number_of_trials(data, seed=5)
    again = effective_number_of_trials(data, seed=5)
    assert first.n_effective == again.n_effective
    assert np.array_equal(first.labels, again.labels)
    assert np.array_equal(first.cluster_sharpes, again.cluster_sharpes)
    with pytest.raises(ValueError):
        first.labels[0] = 3


def test_max_clusters_caps_k():
    rng = np.random.default_rng(37)
    data, _ = planted_groups(rng, [5, 5, 5, 5])
    assert effective_number_of_trials(data, seed=0).n_effective == 4
    assert effective_number_of_trials(data, seed=0, max_clusters=2).n_effective == 2


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"returns_matrix": np.zeros(10)}, "returns_matrix"),
        ({"returns_matrix": np.ones((2, 3))}, "returns_matrix"),
        ({"returns_matrix": np.full((10, 3), np.nan)}, "returns_matrix"),
        ({"seed": -1}, "seed"),
        ({"max_clusters": 1}, "max_clusters"),
        ({"n_init": 0}, "n_init"),
        ({"min_silhouette": 2.0}, "min_silhouette"),
        ({"weighting": "hrp"}, "weighting"),
    ],
)
def test_rejects_bad_input(kwargs, name):
    rng = np.random.default_rng(0)
    args = {"returns_matrix": rng.standard_normal((50, 4)), **kwargs}
    with pytest.raises(ValueError, match=name):
        effective_number_of_trials(**args)


def test_silhouette_values_match_scikit_learn():
    from sklearn.metrics import silhouette_samples

    rng = np.random.default_rng(41)
    points = rng.random((25, 6))
    distances = np.sqrt(((points[:, None, :] - points[None, :, :]) ** 2).sum(axis=2))
    for k in (2, 3, 7):
        labels = rng.integers(0, k, size=25)
        labels[:k] = np.arange(k)  # every cluster used
        labels[-1] = k  # and one singleton
        assert np.allclose(
            silhouette_values(distances, labels), silhouette_samples(points, labels), atol=1e-12
        )


def test_structureless_trials_are_discounted_by_their_mean_correlation():
    """No clusters, one common factor: M trials of mean pairwise correlation ρ̄ are worth
    ρ̄ + (1 − ρ̄)·M independent ones (Bailey & López de Prado 2014), neither 1 nor M."""
    rng = np.random.default_rng(5)
    factor = rng.standard_normal((4000, 1))
    trials = factor + rng.standard_normal((4000, 10))  # correlation 0.5 between any two
    result = effective_number_of_trials(trials, seed=0)
    corr = np.corrcoef(trials, rowvar=False)
    rho = corr[~np.eye(10, dtype=bool)].mean()
    assert 0.45 < rho < 0.55 and np.isnan(result.silhouette)
    assert result.n_effective == math.ceil(rho + (1 - rho) * 10) == 6
    assert len(result.cluster_sharpes) == 10  # each trial its own group for the variance


def test_correlation_adjusted_trials():
    assert correlation_adjusted_trials(0.0, 8) == 8
    assert correlation_adjusted_trials(1.0, 8) == 1
    assert correlation_adjusted_trials(0.5, 10) == 6  # 5.5, rounded up
    assert correlation_adjusted_trials(-0.3, 4) == 4  # negative correlation clipped at 0
    assert correlation_adjusted_trials(0.6, 2) == 2  # 1.4: a near copy still selects
    assert correlation_adjusted_trials(0.99, 2) == 2
    with pytest.raises(ValueError, match="n_trials"):
        correlation_adjusted_trials(0.5, 0)
    with pytest.raises(ValueError, match="mean_correlation"):
        correlation_adjusted_trials(float("nan"), 3)


def test_a_cluster_is_worth_its_members_discounted_by_their_correlation():
    """k-means' clusters are groups, not copies: the number the gate deflates by counts each
    as its members discounted by their mean correlation (1 for copies of one trial)."""
    rng = np.random.default_rng(7)
    factors = rng.standard_normal((3000, 2))
    loose = np.repeat(factors, 6, axis=1) + 1.2 * rng.standard_normal((3000, 12))
    result = effective_number_of_trials(loose, seed=0)
    assert result.n_effective == 2
    expected = 0
    for cluster in range(2):
        members = loose[:, result.labels == cluster]
        corr = np.corrcoef(members, rowvar=False)
        rho = corr[~np.eye(members.shape[1], dtype=bool)].mean()
        expected += math.ceil(rho + (1 - rho) * members.shape[1] - 1e-9)
    assert result.n_independent == expected > result.n_effective
    copies = np.repeat(factors, 5, axis=1)  # exact copies of two trials: worth two
    assert effective_number_of_trials(copies, seed=0).n_independent == 2


def test_a_sweep_process_imports_scikit_learn_only_to_cluster():
    """Importing scikit-learn costs about half a second; every CLI process imports the sweep,
    and only the end of a sweep with trials to cluster needs it."""
    import subprocess
    import sys

    probe = ("import sys; import cryptosweep.sweep.runner, cryptosweep.reporting.tables; "
             "print('sklearn' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["False"]
