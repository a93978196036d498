"""Which evaluations compete for "best", and in which order: the one rule the results files,
the figures, the overfitting diagnostics and the strategies share.

An evaluation competes when it finished with a finite score (a failed one has none) at the
largest budget any finished evaluation reached: with Hyperband, a configuration scored only at
a low rung is not comparable with one trained for the full budget. Among those, the higher
score ranks first; ties go to the smaller id, so the order never depends on completion order.

Items may be mappings (results records) or objects (journal rows, observations).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")


def _get(item: Any, name: str, default: Any = None) -> Any:
    if isinstance(item, Mapping):
        return item.get(name, default)
    return getattr(item, name, default)


def finished_with_score(item: Any) -> bool:
    """Done (where the item has a status) with a finite score."""
    score = _get(item, "score")
    if score is None or not math.isfinite(float(score)):
        return False
    return _get(item, "status", "done") == "done"


def at_largest_budget(items: Iterable[T]) -> tuple[list[T], float | None]:
    """The competing items (see the module docstring), in their given order, and the budget."""
    done = [item for item in items if finished_with_score(item)]
    if not done:
        return [], None
    top = max(float(_get(item, "budget")) for item in done)
    return [item for item in done if float(_get(item, "budget")) == top], top


def ranked(items: Iterable[T], tie: str = "eval_id") -> list[T]:
    """The competing items, best score first, ties by ``tie`` (smaller first)."""
    competing, _ = at_largest_budget(items)
    return sorted(competing, key=lambda item: (-float(_get(item, "score")), _get(item, tie)))
