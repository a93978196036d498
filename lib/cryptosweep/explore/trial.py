"""One evaluation of a run as the sweep recorded it: its parameters, per-fold metrics, the
per-bar returns it journaled, its holdout where the sweep evaluated one, the rungs a Hyperband
trial was promoted through, the run's config and the data it was swept on.

Read-only, no widgets and no training (the trial's models are retrained by
:mod:`cryptosweep.explore.whatif`). An evaluation that cannot be shown — unknown, still
running, failed, of a folder that cannot be read — is a
:class:`~cryptosweep.explore.runs.RunReadError` whose message is one sentence for the user.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cryptosweep.core.config import ObjectiveSpec, SweepConfig
from cryptosweep.core.config_files import validate_config
from cryptosweep.core.errors import UserError
from cryptosweep.explore.runs import (
    RunReadError,
    inspect_run,
    load_results,
    read_config,
    read_evaluations,
)
from cryptosweep.records.inspection import DB_NAME
from cryptosweep.records.integrity import JournalDamagedError
from cryptosweep.records.journal import Journal
from cryptosweep.records.ranking import finished_with_score, ranked
from cryptosweep.reporting.figures import fold_dates
from cryptosweep.trading.steps import TradingParams

__all__ = [
    "HOLDOUT",
    "TrialRecord",
    "block_labels",
    "finished_evaluations",
    "parameters_table",
    "read_trial",
    "trading_dimensions",
]

#: The name of the holdout block (the last block of a configuration's predictions).
HOLDOUT = "holdout"


@dataclass(frozen=True)
class TrialRecord:
    """One finished evaluation of a run, as recorded.

    ``evaluation`` is its results record (:func:`~cryptosweep.records.results.evaluation_record`);
    ``rungs`` the same trial's evaluations it was promoted through (Hyperband), smallest
    budget first, without itself; ``data`` the run's description of its data with the dated
    walk-forward test blocks and the holdout (``results["data"]``); ``returns`` the per-bar
    returns the sweep journaled (``validation``: the test blocks one after the other;
    ``holdout`` for the evaluations whose holdout the sweep evaluated); ``holdout`` the
    sweep's holdout metrics (``holdout_sharpe``, ...) where it has them."""

    run_dir: Path
    evaluation: Mapping[str, Any]
    config: Mapping[str, Any]
    data: Mapping[str, Any] | None
    rungs: tuple[Mapping[str, Any], ...] = ()
    # not in the repr (``ui.trial.record`` in a cell): the holdout's returns and metrics
    returns: Mapping[str, np.ndarray] = field(default_factory=dict, repr=False)
    holdout: Mapping[str, Any] | None = field(default=None, repr=False)
    journal: bool = True
    created_at: float | None = None

    @property
    def eval_id(self) -> int:
        return int(self.evaluation["eval_id"])

    @property
    def trial_id(self) -> int:
        return int(self.evaluation["trial_id"])

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.evaluation["params"])

    @property
    def family(self) -> str:
        return str(self.evaluation["params"].get("model"))

    @property
    def budget(self) -> float:
        return float(self.evaluation["budget"])

    @property
    def seed(self) -> int:
        return int(self.evaluation["seed"])

    @property
    def metrics(self) -> Mapping[str, Any]:
        return self.evaluation.get("metrics") or {}

    @property
    def metric(self) -> str:
        """The metric the run scores with (``objective.metric``)."""
        return str(self.metrics.get("metric") or self.sweep_config.objective.metric)

    @property
    def trading(self) -> TradingParams:
        """The trial's own trading parameters."""
        return TradingParams.from_params(self.params)

    @cached_property
    def sweep_config(self) -> SweepConfig:
        return validate_config(dict(self.config), "the run's config")

    @cached_property
    def spec(self) -> ObjectiveSpec:
        """What the sweep's workers evaluated trials with (data, objective, determinism)."""
        return self.sweep_config.objective_spec()

    @property
    def device(self) -> str | None:
        """Where the sweep trained it (``cpu``, ``cuda:0 (GPU 1)``, ...), when recorded."""
        device = (self.evaluation.get("timing") or {}).get("device")
        return None if device in (None, "?") else str(device)

    @property
    def label(self) -> str:
        """What a trial picker shows."""
        score = self.evaluation.get("score")
        return (f"eval {self.eval_id} · trial {self.trial_id} · {self.family} · budget "
                f"{self.budget:g} · {self.metric} "
                + ("–" if score is None else f"{float(score):+.3f}"))


def _block(record_or_data: Mapping[str, Any] | None) -> dict[str, Any]:
    return dict(record_or_data or {})


def block_labels(data: Mapping[str, Any] | None, n_folds: int, holdout: bool) -> list[str]:
    """``fold 1 · 2022-01-14 – 2022-04-30``, ..., ``holdout · ...``: the blocks of a
    configuration's predictions (walk-forward test blocks, then the holdout) with their UTC
    dates where the run recorded them. Fewer blocks than the run's folds are its most recent
    folds (``objective.fidelity: folds`` below the full budget), and are labelled so."""
    dates = fold_dates({"data": _block(data)})
    first = max(0, len(dates) - n_folds)
    labels = [f"fold {k + 1}" + (f" · {dates[k]}" if k < len(dates) else "")
              for k in range(first, first + n_folds)]
    if holdout:
        block = _block(data).get("holdout")
        labels.append(HOLDOUT + (f" · {block['first_bar'][:10]} – {block['last_bar'][:10]}"
                                 if block else ""))
    return labels


def finished_evaluations(evaluations: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The evaluations a trial can be shown for (done, with a finite score): those that
    compete for "best" in their rank order (:func:`cryptosweep.records.ranking.ranked`, the run's
    winner first), then the smaller budgets' by score, ties by ``eval_id``."""
    competing = ranked(evaluations)
    chosen = {e["eval_id"] for e in competing}
    rest = sorted((e for e in evaluations if finished_with_score(e) and e["eval_id"] not in chosen),
                  key=lambda e: (-float(e["score"]), e["eval_id"]))
    return [*competing, *rest]


def _rung_path(evaluation: Mapping[str, Any], evaluations: Sequence[Mapping[str, Any]]
               ) -> tuple[Mapping[str, Any], ...]:
    """The evaluations of the same trial it was promoted through (``tags.previous_budget``
    followed back), smallest budget first."""
    by_budget = {float(e["budget"]): e for e in evaluations
                 if e["trial_id"] == evaluation["trial_id"]}
    path: list[Mapping[str, Any]] = []
    previous = (evaluation.get("tags") or {}).get("previous_budget")
    while previous is not None:
        earlier = by_budget.get(float(previous))
        if earlier is None:
            raise RunReadError(f"eval {evaluation['eval_id']} was promoted from budget "
                               f"{previous:g}, which the run does not hold")
        path.append(earlier)
        previous = (earlier.get("tags") or {}).get("previous_budget")
    return tuple(reversed(path))


def read_trial(run_dir: str | Path, eval_id: int) -> TrialRecord:
    """Evaluation ``eval_id`` of the run in ``run_dir``, from its journal (read-only, so a
    running sweep's finished evaluations can be shown), else from its results file (then
    without per-bar returns)."""
    run_dir = Path(run_dir)
    info = inspect_run(run_dir)
    if not info.readable:
        raise RunReadError(f"{run_dir.name}: {info.state}: {info.note}")
    evaluations = read_evaluations(run_dir)
    evaluation = next((e for e in evaluations if int(e["eval_id"]) == int(eval_id)), None)
    if evaluation is None:
        raise RunReadError(f"{run_dir.name} has no evaluation {eval_id}")
    if evaluation["status"] != "done":
        why = f": {evaluation['error']}" if evaluation.get("error") else ""
        raise RunReadError(f"eval {eval_id} of {run_dir.name} is {evaluation['status']}{why}; "
                           "only finished evaluations can be shown in depth")
    config = read_config(run_dir)
    try:
        validate_config(dict(config), "the run's config")
    except UserError as exc:
        raise RunReadError(f"{run_dir.name}: its config cannot be read by this version "
                           f"({exc})") from None
    rungs = _rung_path(evaluation, evaluations)
    returns: dict[str, np.ndarray] = {}
    holdout = data = None
    from_journal = (run_dir / DB_NAME).is_file()
    if from_journal:
        try:
            journal = Journal.open_readonly(run_dir)
            try:
                data = journal.get_meta("data", None)
                for kind in ("validation", HOLDOUT):
                    stored = journal.get_returns(kind, int(eval_id)).get(int(eval_id))
                    if stored is not None:
                        returns[kind] = stored
                holdout = journal.get_extra(HOLDOUT).get(int(eval_id))
            finally:
                journal.close()
        except JournalDamagedError as exc:
            raise RunReadError(f"{run_dir.name}: {exc}") from None
        except sqlite3.Error:
            from_journal = False
    if not from_journal or data is None:
        try:
            results = load_results(run_dir)
        except RunReadError:
            results = {}
        data = data or results.get("data")
        top = {item["eval_id"]: item for item in results.get("top_k") or []}
        holdout = holdout or (top.get(int(eval_id)) or {}).get(HOLDOUT)
    return TrialRecord(run_dir=run_dir, evaluation=evaluation, config=config, data=data,
                       rungs=rungs, returns=returns, holdout=holdout, journal=from_journal,
                       created_at=info.created_at)


def trading_dimensions(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The search ranges of the trading parameters in a run's config
    (``parameter_ranges.trading``): name → ``{"type", "low", "high", "log", "step"}`` or
    ``{"type": "categorical", "choices"}``."""
    ranges = (config.get("parameter_ranges") or {}).get("trading") or {}
    return {str(name): dict(dimension) for name, dimension in ranges.items()}


def parameters_table(record: TrialRecord) -> pd.DataFrame:
    """The trial's parameters (model family, entry-model and trading parameters), budget,
    rounds and seed, one row each."""
    params = record.params
    rows: list[tuple[str, Any]] = [("model", record.family)]
    rows += [(f"{record.family}.{k}", v) for k, v in sorted((params.get("entry_model")
                                                            or {}).items())]
    rows += [(f"trading.{k}", v) for k, v in sorted((params.get("trading") or {}).items())]
    rows += [("budget", record.budget), ("rounds", record.metrics.get("rounds")),
             ("seed", record.seed)]
    if record.rungs:
        rows.append(("promoted through budgets",
                     " → ".join(f"{float(e['budget']):g}" for e in (*record.rungs,
                                                                      record.evaluation))))
    return pd.DataFrame({"value": pd.Series(dict(rows), dtype=object)}).rename_axis("parameter")
