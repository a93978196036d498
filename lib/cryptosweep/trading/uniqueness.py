"""Concurrency and uniqueness of overlapping labels, and the sample weights they give.

López de Prado (2018), *Advances in Financial Machine Learning* (AFML), ch. 4:

* **concurrency** ``c_t`` (AFML 4.3, snippet 4.1): the number of labels whose span covers bar
  ``t`` (``c_t = Σ_i 1_{t,i}``, the row sums of the indicator matrix of snippet 4.3);
* **average uniqueness** of label ``i`` (AFML 4.4, snippet 4.2): ``ū_i = (Σ_t 1_{t,i} / c_t) /
  (Σ_t 1_{t,i})``, the mean of ``1 / c_t`` over the bars of its span;
* **weights** (AFML 4.4 and 4.6): ``ū_i`` rescaled to mean 1, so a label that shares its bars
  with others counts for less.

A label's span is the inclusive range of bar positions ``[label_start[i], label_end[i]]`` whose
data it uses. For the labels of :mod:`cryptosweep.trading.labels` a consistent choice is
``label_start = np.arange(n)`` (the bar the decision is made at, as the purge of
:mod:`cryptosweep.trading.validation` and :mod:`cryptosweep.trading.cpcv` treats it) and their
``label_end``, keeping only the labels that finish inside the data. The sequential bootstrap
(AFML 4.5) is not implemented here.
"""

from __future__ import annotations

import numpy as np


def concurrency(label_start: np.ndarray, label_end: np.ndarray, n_bars: int) -> np.ndarray:
    """``c_t`` for ``t`` in ``[0, n_bars)`` (int64): how many label spans ``[label_start[i],
    label_end[i]]`` contain bar ``t`` (AFML 4.3, snippet 4.1). ``O(n_bars + n_labels)``."""
    start, end = _check_spans(label_start, label_end, n_bars)
    steps = np.zeros(n_bars + 1, dtype="int64")
    np.add.at(steps, start, 1)
    np.add.at(steps, end + 1, -1)
    return np.cumsum(steps[:n_bars])


def average_uniqueness(label_start: np.ndarray, label_end: np.ndarray, n_bars: int) -> np.ndarray:
    """``ū_i``, the mean of ``1 / c_t`` over the bars ``t`` of label ``i``'s span (AFML 4.4,
    snippet 4.2), float64 in ``(0, 1]``: 1 for a label that shares no bar, ``1 / m`` for ``m``
    labels with one identical span. Labels may repeat (a bootstrap sample), each copy counting
    in ``c_t``. Computed with a prefix sum of ``1 / c_t`` (``O(n_bars + n_labels)``)."""
    start, end = _check_spans(label_start, label_end, n_bars)
    counts = concurrency(start, end, n_bars)
    inverse = np.zeros(n_bars, dtype="float64")
    covered = counts > 0
    inverse[covered] = 1.0 / counts[covered]
    prefix = np.concatenate(([0.0], np.cumsum(inverse)))
    return (prefix[end + 1] - prefix[start]) / (end - start + 1)


def uniqueness_weights(label_start: np.ndarray, label_end: np.ndarray, n_bars: int) -> np.ndarray:
    """Sample weights ``w_i = ū_i / mean(ū)`` (float64, **mean 1**, so they sum to the number of
    labels): AFML 4.4's average uniqueness used as the weight of each label, scaled as AFML
    4.6 (snippet 4.10) scales its weights to sum to ``I``, the number of labels.

    Mean 1 keeps the weighted sample the size of the unweighted one, so hyperparameters that
    count samples (e.g. LightGBM's ``min_child_weight``/``min_sum_hessian_in_leaf``) keep
    their meaning; with no overlap at all every weight is exactly 1. Raises ``ValueError``
    without labels.
    """
    start, end = _check_spans(label_start, label_end, n_bars)
    if len(start) == 0:
        raise ValueError("label_start and label_end must hold at least one label")
    unique = average_uniqueness(start, end, n_bars)
    return unique / unique.mean()


def _check_spans(
    label_start: np.ndarray, label_end: np.ndarray, n_bars: int
) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(n_bars, bool) or int(n_bars) != n_bars or n_bars < 1:
        raise ValueError(f"n_bars must be an integer >= 1, got {n_bars!r}")
    start, end = np.asarray(label_start), np.asarray(label_end)
    for name, values in (("label_start", start), ("label_end", end)):
        if values.ndim != 1:
            raise ValueError(f"{name} must be 1-d, got shape {values.shape}")
        if len(values) and not np.issubdtype(values.dtype, np.integer):
            raise ValueError(f"{name} must hold integer bar positions, got dtype {values.dtype}")
    if start.shape != end.shape:
        raise ValueError(
            f"label_start and label_end must have one length, got {len(start)} and {len(end)}"
        )
    start, end = start.astype("int64"), end.astype("int64")
    if len(start) and (start.min() < 0 or end.max() >= n_bars):
        raise ValueError(
            f"label spans must lie in [0, n_bars={n_bars}): label_start >= 0 and label_end < "
            "n_bars (drop the labels that end past the data, the NaN labels of labels.py)"
        )
    backwards = np.flatnonzero(end < start)
    if len(backwards):
        i = int(backwards[0])
        raise ValueError(
            f"label_end must be >= label_start, got label_start[{i}] = {start[i]} > "
            f"label_end[{i}] = {end[i]}"
        )
    return start, end
