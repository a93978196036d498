"""Label concurrency, average uniqueness and weights: AFML 4.5.3's worked example and a brute
force indicator matrix."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from cryptosweep.trading.uniqueness import average_uniqueness, concurrency, uniqueness_weights

# AFML 4.5.3: y1 = f(r_{0,3}), y2 = f(r_{2,4}), y3 = f(r_{4,6}); the indicator matrix has rows
# t = 1..6 and columns (1,1,1,0,0,0), (0,0,1,1,0,0), (0,0,0,0,1,1). As 0-based bar spans:
BOOK_START = np.array([0, 2, 4])
BOOK_END = np.array([2, 3, 5])


def _indicator(start: np.ndarray, end: np.ndarray, n_bars: int) -> np.ndarray:
    """AFML snippet 4.3's indicator matrix 1_{t,i}, built cell by cell."""
    matrix = np.zeros((n_bars, len(start)))
    for i, (s, e) in enumerate(zip(start, end, strict=True)):
        for t in range(s, e + 1):
            matrix[t, i] = 1.0
    return matrix


def _brute_uniqueness(start: np.ndarray, end: np.ndarray, n_bars: int) -> np.ndarray:
    ind = _indicator(start, end, n_bars)
    c = ind.sum(axis=1)
    u = np.divide(ind, c[:, None], out=np.zeros_like(ind), where=c[:, None] > 0)
    return u.sum(axis=0) / ind.sum(axis=0)


def test_book_example_concurrency_and_uniqueness():
    np.testing.assert_array_equal(
        _indicator(BOOK_START, BOOK_END, 6).T,
        [[1, 1, 1, 0, 0, 0], [0, 0, 1, 1, 0, 0], [0, 0, 0, 0, 1, 1]],
    )
    counts = concurrency(BOOK_START, BOOK_END, 6)
    np.testing.assert_array_equal(counts, [1, 1, 2, 1, 1, 1])
    assert counts.dtype == np.int64
    # by hand: (1 + 1 + 1/2)/3 = 5/6, (1/2 + 1)/2 = 3/4, (1 + 1)/2 = 1
    np.testing.assert_allclose(
        average_uniqueness(BOOK_START, BOOK_END, 6), [5 / 6, 3 / 4, 1.0], rtol=0, atol=1e-15
    )


def _next_draw_probabilities(drawn: list[int]) -> list[Fraction]:
    """AFML 4.5.1's sequential-bootstrap update for the book example: label j's average
    uniqueness among the drawn labels plus j, normalised. Exact fractions (limit_denominator)."""
    values = []
    for j in range(3):
        chosen = [*drawn, j]
        u = average_uniqueness(BOOK_START[chosen], BOOK_END[chosen], 6)[-1]
        values.append(Fraction(float(u)).limit_denominator(1000))
    total = sum(values)
    return [v / total for v in values]


def test_book_example_second_draw_probabilities():
    # AFML 4.5.3 (published): after label y2 is drawn first, the second draw's probabilities
    # are delta = {5/14, 3/14, 6/14}, from average uniquenesses 5/6, 1/2 and 1
    assert _next_draw_probabilities([]) == [Fraction(1, 3)] * 3
    assert _next_draw_probabilities([1]) == [Fraction(5, 14), Fraction(3, 14), Fraction(6, 14)]
    # one step further (by hand, not quoted from the book): after y2 and y3 the uniquenesses
    # are 5/6, 1/2, 1/2 -> 5/11, 3/11, 3/11
    assert _next_draw_probabilities([1, 2]) == [Fraction(5, 11), Fraction(3, 11), Fraction(3, 11)]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_against_a_brute_force_indicator_matrix(seed):
    rng = np.random.default_rng(seed)
    n_bars, n_labels = 40, 25
    start = rng.integers(0, n_bars, size=n_labels)
    end = np.minimum(start + rng.integers(0, 8, size=n_labels), n_bars - 1)
    ind = _indicator(start, end, n_bars)
    np.testing.assert_array_equal(concurrency(start, end, n_bars), ind.sum(axis=1))
    brute = _brute_uniqueness(start, end, n_bars)
    np.testing.assert_allclose(average_uniqueness(start, end, n_bars), brute, rtol=1e-12)
    weights = uniqueness_weights(start, end, n_bars)
    np.testing.assert_allclose(weights, brute / brute.mean(), rtol=1e-12)
    assert weights.mean() == pytest.approx(1.0, abs=1e-12)


def test_weights_of_the_book_example_and_of_disjoint_labels():
    # ubar = (5/6, 3/4, 1), mean 31/36 -> weights 30/31, 27/31, 36/31
    np.testing.assert_allclose(
        uniqueness_weights(BOOK_START, BOOK_END, 6), [30 / 31, 27 / 31, 36 / 31], rtol=1e-14
    )
    disjoint = uniqueness_weights(np.array([0, 3, 5]), np.array([2, 4, 9]), 12)
    np.testing.assert_array_equal(disjoint, [1.0, 1.0, 1.0])


def test_identical_spans_share_their_bars_equally():
    start, end = np.array([3, 3, 3, 3]), np.array([6, 6, 6, 6])
    np.testing.assert_allclose(average_uniqueness(start, end, 10), [0.25] * 4)
    np.testing.assert_array_equal(concurrency(start, end, 10), [0, 0, 0, 4, 4, 4, 4, 0, 0, 0])


def test_labels_of_the_project_shape():
    # label_start = bar, label_end = bar + 2 (every label reads 3 bars), 8 bars, 6 labels
    start = np.arange(6)
    end = start + 2
    np.testing.assert_array_equal(concurrency(start, end, 8), [1, 2, 3, 3, 3, 3, 2, 1])
    u = average_uniqueness(start, end, 8)
    np.testing.assert_allclose(
        u,
        [
            (1 + 1 / 2 + 1 / 3) / 3,
            (1 / 2 + 1 / 3 + 1 / 3) / 3,
            1 / 3,
            1 / 3,
            (1 / 3 + 1 / 3 + 1 / 2) / 3,
            (1 / 3 + 1 / 2 + 1) / 3,
        ],
    )


@pytest.mark.parametrize(
    ("start", "end", "n_bars", "word"),
    [
        ([0, 1], [1], 5, "one length"),
        ([0, 3], [1, 2], 5, r"label_start\[1\]"),
        ([0, 1], [1, 5], 5, "n_bars"),
        ([-1, 1], [1, 2], 5, "label_start >= 0"),
        ([0.0, 1.0], [1.0, 2.0], 5, "label_start"),
        ([[0, 1]], [[1, 2]], 5, "1-d"),
        ([0], [0], 0, "n_bars"),
    ],
)
def test_bad_spans_raise(start, end, n_bars, word):
    for function in (concurrency, average_uniqueness, uniqueness_weights):
        with pytest.raises(ValueError, match=word):
            function(np.array(start), np.array(end), n_bars)


def test_weights_need_a_label():
    with pytest.raises(ValueError, match="at least one label"):
        uniqueness_weights(np.array([], dtype="int64"), np.array([], dtype="int64"), 5)
    assert len(average_uniqueness(np.array([], dtype="int64"), np.array([], dtype="int64"), 5)) == 0
