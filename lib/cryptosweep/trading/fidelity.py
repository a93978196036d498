"""The fidelity of a budget: what an evaluation at resource ``r`` of the full budget ``R``
trains and scores (``objective.fidelity``). Hyperband and BOHB evaluate their lower rungs at
``r < R``; every strategy's full-budget evaluation is the same whatever the fidelity.

* ``rounds`` (what a config without the key was made with): ``r`` x
  ``objective.rounds_per_unit`` boosting rounds (epochs for torch), every walk-forward fold
  with all its training rows.
* ``folds`` (a new Hyperband or BOHB run's default,
  :data:`~cryptosweep.core.vocabulary.MULTI_FIDELITY_DEFAULT`): successive halving over the
  purged walk-forward folds, as racing does over problem instances (Birattari, Stützle,
  Paquete & Varrentrapp, "A racing algorithm for configuring metaheuristics", GECCO 2002):
  the full budget's rounds on the most recent ``ceil(n_folds * r / R)`` folds only, the score
  the mean over those. The most recent folds because they are the closest to deployment: they
  train on the most history and test on the market the winner will trade next, so a
  configuration dropped on them is dropped for the reason that matters most; and a promoted
  configuration's folds are a superset of its lower rung's, ending at the same bar, so its
  validation returns extend the lower rung's backwards.
* ``bars``: the full budget's rounds on every fold, each trained on the most recent share
  ``r / R`` of its training bars, rounded up (at least ``objective.min_train_bars``).

At ``r = R`` (or more) all three train ``full_rounds(r)`` rounds on every fold with every
training bar: the same evaluation, bit for bit. A share is ``r / R`` in floating point, and
``ceil`` forgives :data:`SHARE_TOLERANCE` of rounding error (``r`` is ``R / eta**s`` as a float).
Models are never continued from a lower rung's checkpoint with ``folds`` or ``bars``: each
evaluation trains from scratch (``docs/continuation.md`` is about ``rounds``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cryptosweep.core.config import ObjectiveSpec
from cryptosweep.core.errors import ConfigError
from cryptosweep.trading.steps import full_rounds

#: How far above a whole number ``n * r / R`` may land by floating-point rounding and still
#: count as that number (``ceil(4 * (27/9) / 27)`` must be 1, not 2).
SHARE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Fidelity:
    """What one evaluation trains: ``kind`` (``objective.fidelity``), ``rounds`` (boosting
    rounds or epochs of every model) and ``share`` (``r / R``, at most 1; 1 with ``rounds``)."""

    kind: str
    rounds: int
    share: float

    @property
    def full(self) -> bool:
        """Every fold with every training bar: the full-budget evaluation."""
        return self.kind == "rounds" or self.share >= 1.0

    def folds(self, n_folds: int) -> list[int]:
        """The walk-forward folds evaluated, in order: every fold, or with ``folds`` the most
        recent ``ceil(n_folds * share)``."""
        if self.kind != "folds" or self.full:
            return list(range(n_folds))
        keep = max(1, min(n_folds, _ceil(n_folds * self.share)))
        return list(range(n_folds - keep, n_folds))

    def training_bars(self, train: np.ndarray, min_train_bars: int) -> np.ndarray:
        """A fold's training bars (ascending): all of them, or with ``bars`` the most recent
        ``max(min_train_bars, ceil(len(train) * share))``."""
        if self.kind != "bars" or self.full:
            return train
        keep = min(len(train), max(min_train_bars, _ceil(len(train) * self.share)))
        return train[len(train) - keep:]


def fidelity_at(resource: float, spec: ObjectiveSpec) -> Fidelity:
    """The :class:`Fidelity` of an evaluation at ``resource`` under ``spec``: with ``rounds``,
    ``full_rounds(resource)``; with ``folds`` or ``bars``, the share ``resource / R`` of the
    spec's ``full_budget`` R and the full budget's rounds (``resource``'s own from R on). A
    ``ConfigError`` when the spec lacks the full budget those need."""
    settings = spec.objective
    if settings.fidelity == "rounds":
        return Fidelity("rounds", full_rounds(resource, settings.rounds_per_unit), 1.0)
    if spec.full_budget is None:
        raise ConfigError(f"objective.fidelity {settings.fidelity}: the objective spec has no "
                          "full_budget to measure a budget against")
    share = min(1.0, float(resource) / spec.full_budget)
    trained = resource if share >= 1.0 else spec.full_budget
    return Fidelity(settings.fidelity, full_rounds(trained, settings.rounds_per_unit), share)


def _ceil(value: float) -> int:
    return math.ceil(value - SHARE_TOLERANCE)
