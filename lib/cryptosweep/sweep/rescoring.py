"""Score what you deploy: the top-k re-scored from scratch with several seeds, the winner chosen
by that score, and the winner's neighbourhood.

The search ranks configurations by the score it measured, and under Hyperband a full-budget
score often comes from a model *continued* from its lower rungs; the holdout, the champion and
production all train from scratch with the recorded seed. So each of the top-k is evaluated
again at the full budget **from scratch**, with ``deployment.rescore_seeds`` seeds: the first
is its recorded seed (the path production trains; an evaluation that was already from scratch
with that seed is reused, not run again), the others are derived
(``derive_seed(master, "rescore", trial_id, i)``). The winner is the best **mean** of those
scores (ties by the search's order); the spread is shown. Every seed is a trial for the DSR.

The winner's neighbourhood (``deployment.neighbourhood``): each trading parameter one step
either way (an integer dimension's step, a float dimension's ``step`` or a tenth of its range)
and each numeric model parameter ±10 % (at least one for integers), within their ranges,
evaluated from scratch at the full budget with the winner's recorded seed. A winner on a
**plateau** (most neighbours score at least half as well) is more believable than one on a
**spike**.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np

from cryptosweep.core.config import SweepConfig
from cryptosweep.core.reproducibility import derive_seed
from cryptosweep.core.settings import (
    CategoricalDimension,
    FloatDimension,
    IntDimension,
    step_from,
)
from cryptosweep.records.evaluations import EvaluationRow
from cryptosweep.records.journal import Journal

#: The ``extra_evaluations`` kind of the i-th re-score (``rescore:0`` is the recorded seed).
RESCORE = "rescore:{}"
#: The ``extra_evaluations`` kind of the j-th neighbour of the winner.
NEIGHBOUR = "neighbour:{}"


def rescore_seed(master: int, row: EvaluationRow, index: int) -> int:
    """The seed of re-score ``index`` of ``row``: its own for 0, else derived."""
    return row.seed if index == 0 else derive_seed(master, "rescore", row.trial_id, index)


def reusable(row: EvaluationRow) -> bool:
    """Whether the search's own evaluation is already a from-scratch full-budget score with
    the recorded seed (nothing was continued from a checkpoint)."""
    metrics = row.metrics or {}
    trained = float(metrics.get("budget_trained", row.budget))
    return not metrics.get("continued") and trained == float(row.budget)


def rescore_tasks(config: SweepConfig, seed: int, journal: Journal,
                  leaders: list[EvaluationRow]) -> list[dict[str, Any]]:
    """The re-scores of ``leaders`` that the journal does not hold yet (as task fields)."""
    tasks = []
    for index in range(config.deployment.rescore_seeds):
        kind = RESCORE.format(index)
        returns = journal.get_extra_returns(kind)
        done = {e: m for e, m in journal.get_extra(kind).items() if e in returns}
        for row in leaders:
            if row.eval_id in done or (index == 0 and reusable(row)):
                continue
            tasks.append({"task": f"rescore{index}-{row.eval_id}", "kind": "validation",
                          "store": RESCORE.format(index), "eval_id": row.eval_id,
                          "params": row.params, "budget": row.budget,
                          "seed": rescore_seed(seed, row, index)})
    return tasks


def rescored(config: SweepConfig, journal: Journal, leaders: list[EvaluationRow],
             validation: dict[int, np.ndarray]) -> dict[int, dict[str, Any]]:
    """``eval_id`` → the re-scores of a leader: ``scores`` (one per seed, in seed order),
    ``seeds``, ``mean``, ``std`` and ``returns`` (its from-scratch path with the recorded seed,
    the one production trains)."""
    out = {}
    extra = [journal.get_extra(RESCORE.format(i)) for i in range(config.deployment.rescore_seeds)]
    first_returns = journal.get_extra_returns(RESCORE.format(0))
    for row in leaders:
        scores, seeds = [], []
        for index, done in enumerate(extra):
            if index == 0 and reusable(row):
                scores.append(float(row.score))
            elif row.eval_id in done:
                scores.append(float(done[row.eval_id]["score"]))
            else:
                continue
            seeds.append(index)
        returns = (validation.get(row.eval_id) if reusable(row)
                   else first_returns.get(row.eval_id))
        out[row.eval_id] = {
            "scores": scores, "n_seeds": len(scores),
            "mean": float(np.mean(scores)) if scores else None,
            "std": float(np.std(scores, ddof=1)) if len(scores) > 1 else None,
            "reused_search_evaluation": reusable(row), "returns": returns,
        }
    return out


def by_rescore(leaders: list[EvaluationRow], scores: dict[int, dict[str, Any]]
               ) -> list[EvaluationRow]:
    """The leaders in order of their mean re-score (best first; the search's order breaks
    ties and places a leader without re-scores last)."""
    position = {row.eval_id: i for i, row in enumerate(leaders)}

    def key(row: EvaluationRow) -> tuple[float, int]:
        mean = scores.get(row.eval_id, {}).get("mean")
        return (-mean if mean is not None else math.inf, position[row.eval_id])

    return sorted(leaders, key=key)


# ------------------------------------------------------------------------- the neighbourhood


def _step(dimension: Any, value: Any, direction: int) -> Any:
    if isinstance(dimension, IntDimension):
        moved = int(value) + direction * dimension.step
        return moved if dimension.low <= moved <= dimension.high else None
    if isinstance(dimension, FloatDimension):
        if dimension.step is not None:  # on the steps the search draws
            return step_from(float(value), dimension, direction)
        moved = float(value) + direction * (dimension.high - dimension.low) / 10.0
        return moved if dimension.low <= moved <= dimension.high else None
    return None


def _nudge(value: Any, direction: int, dimension: Any) -> Any:
    """A numeric model parameter ±10 % (±1 at least for integers), within its range."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, int):
        moved: Any = value + direction * max(1, round(abs(value) * 0.1))
    else:
        moved = value * (1.0 + 0.1 * direction)
    if isinstance(dimension, IntDimension | FloatDimension) and not (
            dimension.low <= moved <= dimension.high):
        return None
    if isinstance(dimension, CategoricalDimension):
        return None
    return moved


def neighbours(config: SweepConfig, params: dict[str, Any]) -> list[dict[str, Any]]:
    """The winner's neighbours (see the module docstring), in a fixed order; each is
    ``{"changed": "<section>.<name>", "value": ..., "params": {...}}``."""
    out = []
    trading_ranges = config.parameter_ranges.trading
    for name in sorted(params.get("trading", {})):
        dimension = trading_ranges.get(name)
        for direction in (-1, 1):
            moved = _step(dimension, params["trading"][name], direction)
            if moved is None:
                continue
            changed = copy.deepcopy(params)
            changed["trading"][name] = moved
            out.append({"changed": f"trading.{name}", "value": moved, "params": changed})
    model_ranges = config.parameter_ranges.family(params.get("model", ""))
    for name in sorted(params.get("entry_model", {})):
        if name not in model_ranges:
            continue  # a fixed parameter: not searched, not nudged
        for direction in (-1, 1):
            moved = _nudge(params["entry_model"][name], direction, model_ranges[name])
            if moved is None:
                continue
            changed = copy.deepcopy(params)
            changed["entry_model"][name] = moved
            out.append({"changed": f"entry_model.{name}", "value": moved, "params": changed})
    return out


def neighbour_tasks(config: SweepConfig, journal: Journal, winner: EvaluationRow
                    ) -> list[dict[str, Any]]:
    """The neighbourhood's evaluations the journal does not hold yet."""
    if not config.deployment.neighbourhood:
        return []
    tasks = []
    for index, neighbour in enumerate(neighbours(config, winner.params)):
        kind = NEIGHBOUR.format(index)
        if winner.eval_id in journal.get_extra(kind):
            continue
        tasks.append({"task": f"neighbour{index}-{winner.eval_id}", "kind": "validation",
                      "store": kind, "eval_id": winner.eval_id, "params": neighbour["params"],
                      "budget": winner.budget, "seed": winner.seed})
    return tasks


def neighbourhood(config: SweepConfig, journal: Journal, winner: EvaluationRow,
                  winner_score: float | None) -> dict[str, Any] | None:
    """The neighbours' scores, their median, the fraction above 0 and the label:
    ``plateau`` when at least half of them score at least half of the winner's (positive)
    score, else ``spike``."""
    if not config.deployment.neighbourhood:
        return None
    rows = []
    for index, neighbour in enumerate(neighbours(config, winner.params)):
        done = journal.get_extra(NEIGHBOUR.format(index)).get(winner.eval_id)
        if done is not None:
            rows.append({"changed": neighbour["changed"], "value": neighbour["value"],
                         "score": done["score"], "trades": done.get("n_trades")})
    if not rows:
        return {"neighbours": [], "label": None, "why_not": "no neighbour within the ranges"}
    scores = np.array([row["score"] for row in rows], dtype=float)
    half = 0.5 * winner_score if winner_score is not None and winner_score > 0 else None
    near = float(np.mean(scores >= half)) if half is not None else 0.0
    return {"neighbours": rows, "median": float(np.median(scores)),
            "fraction_positive": float(np.mean(scores > 0)),
            "fraction_near": near, "winner_score": winner_score,
            "label": "plateau" if half is not None and near >= 0.5 else "spike"}
