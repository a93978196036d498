"""Whether a configuration beats the baselines — never trading (flat) and buy-and-hold — on the
bars it was judged on (:func:`cryptosweep.trading.objective.evaluate_baselines` scores them on
the same walk-forward test blocks and holdout, with the same fees and slippage).

A configuration **beats** a baseline when its score in the configured metric is strictly above
the baseline's

1. on validation: its score (the mean over the walk-forward test blocks) against the
   baseline's mean over the same blocks, and
2. on the holdout, when the run has one: its ``holdout_<metric>`` against the baseline's.

Both must hold: a configuration that beats flat in the search but loses on the untouched
holdout has shown no edge. Flat scores 0 in every metric, so "beats flat" means a positive
score on both. A configuration that does not beat flat is labelled :data:`NO_EDGE` wherever
it is shown.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cryptosweep.core.vocabulary import NO_EDGE


def holdout_score(holdout: Mapping[str, Any] | None, metric: str) -> float | None:
    """``holdout_<metric>`` of a holdout result (a top-k item's or a baseline's), or None."""
    value = (holdout or {}).get(f"holdout_{metric}")
    return None if value is None else float(value)


def beats(item: Mapping[str, Any], baseline: Mapping[str, Any], metric: str) -> bool:
    """Whether ``item`` (a top-k entry: ``score``, ``holdout``) beats ``baseline`` (an entry
    of ``results["baselines"]``) by the rule of the module docstring."""
    score = item.get("score")
    if score is None or not float(score) > float(baseline["score"]):
        return False
    mine, theirs = holdout_score(item.get("holdout"), metric), holdout_score(
        baseline.get("holdout"), metric)
    if theirs is None:  # the run has no holdout: validation decides
        return True
    return mine is not None and mine > theirs


def edge(item: Mapping[str, Any], baselines: Mapping[str, Any], metric: str) -> dict[str, Any]:
    """``{"beats_flat", "beats_buy_and_hold", "label"}`` of one top-k entry; ``label`` is
    :data:`NO_EDGE` when it does not beat flat, else None."""
    beats_flat = beats(item, baselines["flat"], metric)
    return {
        "beats_flat": beats_flat,
        "beats_buy_and_hold": beats(item, baselines["buy_and_hold"], metric),
        "label": None if beats_flat else NO_EDGE,
    }
