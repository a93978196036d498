"""Feature drift between the bars a model was trained on and the bars it meets live: the
population stability index (PSI).

``PSI = Σ_i (a_i − e_i) · ln(a_i / e_i)`` over bins ``i``, where ``e_i`` and ``a_i`` are the
shares of the expected (training) and actual (live) values in bin ``i``. The bins are the
expected values' deciles (quantile edges, so each expected bin holds about one tenth), open at
both ends so that every live value falls in one; an empty share is floored at ``floor`` so the
logarithm stays finite. Reading (the credit-scoring convention, Siddiqi 2006): below 0.1 no
real shift, 0.1–0.25 a moderate shift, above 0.25 a major one (:data:`MAJOR_SHIFT`).
"""

from __future__ import annotations

import numpy as np

#: A PSI above this is a major shift of the distribution.
MAJOR_SHIFT = 0.25
#: A PSI from this on is a moderate shift.
MODERATE_SHIFT = 0.1


def population_stability_index(expected: np.ndarray, actual: np.ndarray, bins: int = 10,
                               floor: float = 1e-4) -> float:
    """The PSI of ``actual`` against ``expected`` (see the module docstring); NaNs are left
    out. ``nan`` when either side has no value or the expected values are all equal."""
    expected = np.asarray(expected, dtype="float64")
    actual = np.asarray(actual, dtype="float64")
    expected, actual = expected[np.isfinite(expected)], actual[np.isfinite(actual)]
    if not len(expected) or not len(actual) or bins < 2 or expected.min() == expected.max():
        return float("nan")
    edges = np.unique(np.quantile(expected, np.linspace(0, 1, bins + 1))[1:-1])
    if not len(edges):
        return float("nan")
    e = np.bincount(np.searchsorted(edges, expected, side="right"),
                    minlength=len(edges) + 1) / len(expected)
    a = np.bincount(np.searchsorted(edges, actual, side="right"),
                    minlength=len(edges) + 1) / len(actual)
    e, a = np.maximum(e, floor), np.maximum(a, floor)
    return float(np.sum((a - e) * np.log(a / e)))
