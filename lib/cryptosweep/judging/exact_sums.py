"""Sums rounded once, so that a recorded statistic depends on its numbers alone.

A product of two vectors through BLAS (``a @ b``, ``np.corrcoef``) adds its terms in an
order that the kernel picks, and OpenBLAS picks its kernel by the CPU (or
``OPENBLAS_CORETYPE``): the same Newey–West t-statistic came out as …756 on one kernel and
…754 on another of the same machine, so a night run from cron (where that variable is not
set) and the same run from a shell did not record the same bytes. :func:`math.fsum` rounds the
exact sum once (Shewchuk 1997), whatever the order of its terms; an element-wise product is
one rounding too. What these functions return is the same on every machine.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["exact_dot", "exact_mean", "exact_sum"]


def exact_sum(values: np.ndarray) -> float:
    """The sum of ``values`` (any shape), exactly rounded."""
    return math.fsum(np.asarray(values, dtype=float).ravel().tolist())


def exact_dot(a: np.ndarray, b: np.ndarray) -> float:
    """``Σ a_i b_i``, each product rounded once and their sum exactly rounded."""
    return exact_sum(np.multiply(np.asarray(a, dtype=float), np.asarray(b, dtype=float)))


def exact_mean(values: np.ndarray) -> float:
    """The mean of ``values``: their exactly rounded sum over their number."""
    values = np.asarray(values, dtype=float)
    return exact_sum(values) / values.size
