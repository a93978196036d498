"""The population stability index (judging/drift.py) against a hand computation."""

from __future__ import annotations

import math

import numpy as np

from cryptosweep.judging.drift import population_stability_index


def test_psi_matches_a_hand_computation():
    """Expected 1..10 with 2 bins: the median edge (5.5) splits it 5/5. Actual: 8 values at or
    below 5.5 and 2 above: shares (0.5, 0.5) against (0.8, 0.2), so
    PSI = (0.8 − 0.5)·ln(0.8/0.5) + (0.2 − 0.5)·ln(0.2/0.5)."""
    expected = np.arange(1.0, 11.0)
    actual = np.array([1, 2, 3, 4, 5, 1, 2, 3, 9, 10], dtype=float)
    hand = 0.3 * math.log(0.8 / 0.5) + (-0.3) * math.log(0.2 / 0.5)
    assert math.isclose(population_stability_index(expected, actual, bins=2), hand,
                        rel_tol=1e-12)


def test_psi_is_zero_for_the_same_distribution_and_large_for_a_shift():
    rng = np.random.default_rng(0)
    train = rng.normal(size=20_000)
    assert population_stability_index(train, train) == 0.0
    assert population_stability_index(train, rng.normal(size=5_000)) < 0.01
    assert population_stability_index(train, rng.normal(1.0, 1.0, size=5_000)) > 0.25
    assert math.isnan(population_stability_index(np.ones(10), train))
    assert math.isnan(population_stability_index(train, np.array([np.nan])))
