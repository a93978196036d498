"""Run folders as the explorer reads them: plain functions over files, no widgets.

Everything here only reads. Journals are opened with
:meth:`~cryptosweep.records.journal.Journal.open_readonly` (a sweep that is still writing is never
blocked), results files with :mod:`json`. A folder that is missing, half-written or written by
another version of cryptosweep becomes a :class:`RunReadError` whose message is one sentence for
the user, or a :class:`RunInfo` whose ``state`` and ``note`` say so, never a traceback.

Tables are :class:`pandas.DataFrame` objects so that a researcher can keep working on them in
the notebook (``explorer.trials``).
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cryptosweep.core.errors import UserError
from cryptosweep.judging.selection import gate_dsr
from cryptosweep.records.evaluations import configured
from cryptosweep.records.inspection import DB_NAME
from cryptosweep.records.integrity import JournalDamagedError
from cryptosweep.records.journal import Journal
from cryptosweep.records.ranking import at_largest_budget, finished_with_score
from cryptosweep.records.results import RESULTS_GLOB, RESULTS_SCHEMA, evaluation_record
from cryptosweep.records.schema import READABLE_SCHEMA_VERSIONS
from cryptosweep.reporting.report import run_summaries

__all__ = [
    "RunComparison",
    "RunInfo",
    "RunReadError",
    "TrialFilter",
    "best_score_curve",
    "compare_runs",
    "filter_trials",
    "gate_decision",
    "inspect_run",
    "list_runs",
    "load_results",
    "parameter_columns",
    "read_config",
    "read_evaluations",
    "runs_frame",
    "sort_trials",
    "trials_table",
]

#: States of a run folder, as :func:`inspect_run` names them.
COMPLETE, RUNNING, FAILED, INCOMPLETE, OTHER_VERSION, UNREADABLE, NOT_A_RUN = (
    "complete", "running", "failed", "incomplete", "other version", "unreadable", "not a run")


class RunReadError(UserError):
    """A run folder cannot be read as asked; ``str()`` is one sentence saying why."""


@dataclass(frozen=True)
class RunInfo:
    """One run folder at a glance: what state it is in and, when complete, its index row."""

    name: str
    path: Path
    state: str
    note: str | None = None
    created_at: float | None = None
    # the row of publish.run_summaries; not in the repr: it holds the holdout's score, which
    # ``ui.run`` in a notebook cell would show while the holdout is locked
    summary: Mapping[str, Any] | None = field(default=None, repr=False)
    gate: str | None = None

    @property
    def readable(self) -> bool:
        """Its trials can be read (from the journal, or the results file)."""
        return self.state in (COMPLETE, RUNNING, FAILED, INCOMPLETE)

    @property
    def complete(self) -> bool:
        return self.state == COMPLETE

    @property
    def label(self) -> str:
        """What a run picker shows: name, date, strategy and best score, or its state."""
        when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(self.created_at)) \
            if self.created_at else "?"
        if self.summary:
            best = self.summary.get("best")
            return (f"{self.name} — {when} UTC, {self.summary.get('strategy')}, best "
                    + ("–" if best is None else f"{best:+.3f}"))
        return f"{self.name} — {when} UTC, {self.state}" + (
            "" if self.readable else " (cannot be opened)")


# ------------------------------------------------------------------------------- folders


def _results_path(run_dir: Path) -> Path | None:
    matches = sorted(run_dir.glob(RESULTS_GLOB))
    return matches[-1] if matches else None


def _read_journal_meta(db: Path) -> dict[str, Any]:
    journal = Journal.open_readonly(db)
    try:
        return {key: journal.get_meta(key, None)
                for key in ("status", "created_at", "schema_version", "config")}
    finally:
        journal.close()


def inspect_run(run_dir: str | Path, summary: Mapping[str, Any] | None = None) -> RunInfo:
    """What state ``run_dir`` is in, read-only:

    * ``complete``: its results file is there and of this version's schema;
    * ``running``: the journal says running and there are no results yet (or the sweep was
      interrupted and can be resumed);
    * ``failed``: the sweep stopped itself (too many failed evaluations);
    * ``incomplete``: the journal says complete but no results file (half-written folder);
    * ``other version``: results or journal of another schema;
    * ``unreadable``: a results file that is not complete JSON, or a journal that is not one;
    * ``not a run``: neither a journal nor a results file.
    """
    run_dir = Path(run_dir)
    name = run_dir.name
    if not run_dir.is_dir():
        return RunInfo(name, run_dir, NOT_A_RUN, f"no such folder: {run_dir}")
    db, results_path = run_dir / DB_NAME, _results_path(run_dir)
    if not db.is_file() and results_path is None:
        return RunInfo(name, run_dir, NOT_A_RUN,
                       f"{run_dir} has neither a journal ({DB_NAME}) nor a sweep_results_*.json")
    meta: dict[str, Any] = {}
    if db.is_file():
        try:
            meta = _read_journal_meta(db)
        except (sqlite3.Error, json.JSONDecodeError) as exc:
            return RunInfo(name, run_dir, UNREADABLE,
                           f"{DB_NAME} is not a readable cryptosweep journal ({exc})")
        if meta.get("config") is None:
            return RunInfo(name, run_dir, UNREADABLE,
                           f"{DB_NAME} has no config: not a cryptosweep journal, or one whose "
                           "sweep never started")
        version = meta.get("schema_version")
        if version is not None and version not in READABLE_SCHEMA_VERSIONS:
            return RunInfo(name, run_dir, OTHER_VERSION,
                           f"its journal was written by another version of cryptosweep "
                           f"(journal schema {version}; this version reads "
                           f"{' and '.join(map(str, READABLE_SCHEMA_VERSIONS))})",
                           meta.get("created_at"))
    status, created_at = meta.get("status"), meta.get("created_at")
    if results_path is not None:
        try:
            results = json.loads(results_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return RunInfo(name, run_dir, UNREADABLE,
                           f"{results_path.name} is not complete JSON (half-written?)", created_at)
        schema = results.get("schema") if isinstance(results, dict) else None
        if schema != RESULTS_SCHEMA:
            return RunInfo(name, run_dir, OTHER_VERSION,
                           f"{results_path.name} was written by another version of cryptosweep "
                           f"(schema {schema!r}; this version reads {RESULTS_SCHEMA!r})",
                           created_at)
        created_at = (results.get("run") or {}).get("created_at", created_at)
        note = None if db.is_file() else (
            f"no journal ({DB_NAME}): its trials come from {results_path.name}")
        return RunInfo(name, run_dir, COMPLETE, note, created_at, summary,
                       gate_decision(results))
    if status == "failed":
        return RunInfo(name, run_dir, FAILED, "the sweep stopped itself (too many failed "
                       "evaluations); what finished is in the journal", created_at)
    if status == "complete":
        return RunInfo(name, run_dir, INCOMPLETE, "the journal says complete but there is no "
                       "sweep_results_*.json (half-written run folder)", created_at)
    return RunInfo(name, run_dir, RUNNING, "no results yet: the sweep is running, or was "
                   f"interrupted (cryptosweep run --resume {run_dir})", created_at)


def list_runs(reports_dir: str | Path) -> list[RunInfo]:
    """Every run folder directly under ``reports_dir`` (a journal or a results file; links
    such as ``latest`` are skipped), newest first. A missing folder is a :class:`RunReadError`."""
    reports_dir = Path(reports_dir)
    if not reports_dir.is_dir():
        raise RunReadError(f"reports folder not found: {reports_dir} (make sweep writes one)")
    try:
        index = {row["run"]: row for row in run_summaries(reports_dir)}
    except (OSError, KeyError, TypeError, ValueError):
        index = {}
    runs = []
    for path in sorted(reports_dir.iterdir()):
        if not path.is_dir() or path.is_symlink():
            continue
        info = inspect_run(path, index.get(path.name))
        if info.state == NOT_A_RUN:
            continue
        if info.created_at is None:
            info = RunInfo(info.name, info.path, info.state, info.note, path.stat().st_mtime,
                           info.summary, info.gate)
        runs.append(info)
    return sorted(runs, key=lambda run: (-(run.created_at or 0.0), run.name))


def runs_frame(runs: Iterable[RunInfo], show_holdout: bool | Collection[str] = True
               ) -> pd.DataFrame:
    """The runs as the index lists them (date, strategy, best, holdout, DSR, PBO, the
    reproducibility status) plus each folder's state, the deployment gate's decision where
    the run has one, and a note for folders that cannot be read. ``show_holdout``: True, or
    the names of the runs whose holdout is shown; the others' holdout column says ``locked``
    (:mod:`cryptosweep.explore.accounting`)."""
    rows = []
    for run in runs:
        shown = show_holdout if isinstance(show_holdout, bool) else run.name in show_holdout
        summary = run.summary or {}
        rows.append({
            "run": run.name,
            "date (UTC)": time.strftime("%Y-%m-%d %H:%M", time.gmtime(run.created_at))
            if run.created_at else None,
            "state": run.state,
            "strategy": summary.get("strategy"),
            "best": summary.get("best"),
            "holdout": summary.get("holdout") if shown else "locked",
            "DSR": summary.get("dsr"),
            "PBO": summary.get("pbo"),
            "repro": summary.get("status"),
            "gate": run.gate,
            "note": run.note,
        })
    columns = ["run", "date (UTC)", "state", "strategy", "best", "holdout", "DSR", "PBO",
               "repro", "gate", "note"]
    return pd.DataFrame(rows, columns=columns)


def gate_decision(results: Mapping[str, Any]) -> str | None:
    """The deployment gate's decision recorded in a results file
    (``results["deployment"]["decision"]``, :mod:`cryptosweep.judging.deployment`), ``None``
    for runs made without a gate."""
    gate = results.get("deployment")
    if isinstance(gate, Mapping):
        gate = gate.get("decision")
    return None if gate is None else str(gate)


# ------------------------------------------------------------------------------ one run


def load_results(run_dir: str | Path) -> dict[str, Any]:
    """The run's newest ``sweep_results_*.json`` of this version's schema, or a
    :class:`RunReadError` saying why there is none."""
    run_dir = Path(run_dir)
    info = inspect_run(run_dir)
    if info.state != COMPLETE:
        raise RunReadError(f"{run_dir.name}: {info.state}: {info.note}")
    path = _results_path(run_dir)
    assert path is not None
    return json.loads(path.read_text(encoding="utf-8"))


def read_evaluations(run_dir: str | Path) -> list[dict[str, Any]]:
    """Every evaluation of the run as a results record
    (:func:`~cryptosweep.records.results.evaluation_record`), from the journal, read-only, so that a
    running sweep shows what it has finished so far; from the results file when there is no
    readable journal."""
    run_dir = Path(run_dir)
    info = inspect_run(run_dir)
    if not info.readable:
        raise RunReadError(f"{run_dir.name}: {info.state}: {info.note}")
    if (run_dir / DB_NAME).is_file():
        try:
            journal = Journal.open_readonly(run_dir)
            try:
                return [evaluation_record(configured(row)) for row in journal.evaluations()]
            finally:
                journal.close()
        except JournalDamagedError as exc:
            raise RunReadError(f"{run_dir.name}: {exc}") from None
        except sqlite3.Error as exc:
            if info.state != COMPLETE:
                raise RunReadError(f"{run_dir.name}: cannot read {DB_NAME} ({exc})") from None
    return list(load_results(run_dir)["evaluations"])


def read_config(run_dir: str | Path) -> dict[str, Any]:
    """The run's canonical config: from the journal's meta, else from its results file."""
    run_dir = Path(run_dir)
    if (run_dir / DB_NAME).is_file():
        try:
            config = _read_journal_meta(run_dir / DB_NAME).get("config")
        except (sqlite3.Error, json.JSONDecodeError):
            config = None
        if isinstance(config, dict):
            return config
    return dict(load_results(run_dir)["config"])


# ------------------------------------------------------------------------------ trials


def trials_table(evaluations: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per evaluation (index ``eval_id``): trial, model family, budget, status,
    score, the objective metric of every walk-forward fold (``fold_1_sharpe``, ...), the
    worst fold drawdown, trades, penalty, attempts, ``retried`` (more than one attempt),
    ``failed``, error, worker, duration, Hyperband tags where present, and every parameter as
    ``<family>.<name>`` or ``trading.<name>`` (empty for another family's parameters)."""
    rows = []
    for e in evaluations:
        metrics = e.get("metrics") or {}
        timing = e.get("timing") or {}
        tags = e.get("tags") or {}
        params = e.get("params") or {}
        family = params.get("model")
        attempts = int(timing.get("attempts") or 0)
        row: dict[str, Any] = {
            "eval_id": e["eval_id"], "trial_id": e["trial_id"], "family": family,
            "budget": float(e["budget"]), "status": e["status"],
            "score": np.nan if e.get("score") is None else float(e["score"]),
        }
        metric = metrics.get("metric")
        folds = metrics.get("folds") or []
        for number, fold in zip(_fold_numbers(metrics, len(folds)), folds, strict=True):
            row[f"fold_{number}_{metric}"] = fold.get(metric)
        drawdowns = [fold.get("max_drawdown") for fold in folds
                     if fold.get("max_drawdown") is not None]
        row.update({
            "worst_drawdown": max(drawdowns) if drawdowns else np.nan,
            "trades": metrics.get("n_trades"),
            "penalty": metrics.get("penalty"),
            "attempts": attempts,
            "retried": attempts > 1,
            "failed": e["status"] == "failed",
            "error": e.get("error"),
            "worker": timing.get("worker"),
            "duration_s": timing.get("duration_s"),
        })
        for key in ("iteration", "bracket", "rung"):
            if key in tags:
                row[key] = tags[key]
        for name, value in sorted((params.get("entry_model") or {}).items()):
            row[f"{family}.{name}"] = value
        for name, value in sorted((params.get("trading") or {}).items()):
            row[f"trading.{name}"] = value
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=["trial_id", "family", "budget", "status", "score"],
                            index=pd.Index([], name="eval_id"))
    base = [c for c in frame.columns if "." not in c]
    folds = sorted((c for c in base if c.startswith("fold_")), key=lambda c: int(c.split("_")[1]))
    if folds:  # in fold order, where the first one stood (rows may start with a later fold)
        at = min(base.index(c) for c in folds)
        rest = [c for c in base if c not in folds]
        base = rest[:at] + folds + rest[at:]
    params_cols = sorted((c for c in frame.columns if "." in c),
                         key=lambda c: (c.startswith("trading."), c))
    return frame[base + params_cols].set_index("eval_id").sort_index()


def _fold_numbers(metrics: Mapping[str, Any], n: int) -> list[int]:
    """The walk-forward folds (1-based) of an evaluation's ``n`` fold metrics: below the full
    budget with ``objective.fidelity: folds`` they are the most recent folds (recorded in
    ``metrics.fidelity.folds_evaluated``), not the first ones."""
    evaluated = (metrics.get("fidelity") or {}).get("folds_evaluated")
    if isinstance(evaluated, list) and len(evaluated) == n \
            and all(isinstance(k, int) and not isinstance(k, bool) for k in evaluated):
        return [k + 1 for k in evaluated]
    return list(range(1, n + 1))


def parameter_columns(trials: pd.DataFrame) -> list[str]:
    """The parameter columns of a trials table (model parameters first, then trading) that
    hold at least one value."""
    return [c for c in trials.columns if "." in c and trials[c].notna().any()]


@dataclass(frozen=True)
class TrialFilter:
    """Which evaluations a trials table shows. ``None`` keeps everything of that kind. The
    score range is inclusive and applies to evaluations with a score; those without one
    (failed, running) are kept or dropped by ``statuses``."""

    families: frozenset[str] | None = None
    budgets: frozenset[float] | None = None
    statuses: frozenset[str] | None = None
    score_range: tuple[float, float] | None = None
    retried_only: bool = False

    def apply(self, trials: pd.DataFrame) -> pd.DataFrame:
        return filter_trials(trials, self)


def filter_trials(trials: pd.DataFrame, selection: TrialFilter) -> pd.DataFrame:
    """The rows of ``trials`` that ``selection`` keeps, in their order."""
    if trials.empty:
        return trials
    keep = pd.Series(True, index=trials.index)
    if selection.families is not None:
        keep &= trials["family"].isin(selection.families)
    if selection.budgets is not None:
        keep &= trials["budget"].isin([float(b) for b in selection.budgets])
    if selection.statuses is not None:
        keep &= trials["status"].isin(selection.statuses)
    if selection.score_range is not None:
        low, high = selection.score_range
        scored = trials["score"].notna()
        keep &= ~scored | trials["score"].between(low, high)
    if selection.retried_only:
        keep &= trials["retried"].astype(bool)
    return trials[keep]


def sort_trials(trials: pd.DataFrame, by: str = "score", descending: bool = True
                ) -> pd.DataFrame:
    """``trials`` sorted by column ``by`` (or ``eval_id``), missing values last, ties by
    ``eval_id``; a stable sort, so equal rows keep their order."""
    if by == "eval_id" or by not in trials.columns:
        return trials.sort_index(ascending=not descending)
    ordered = trials.sort_index().sort_values(by, ascending=not descending,
                                              na_position="last", kind="stable")
    return ordered


# --------------------------------------------------------------------------- comparing


@dataclass(frozen=True)
class RunComparison:
    """Two finished runs side by side: ``summary`` (one row per figure of merit, a column per
    run and the change from the first to the second) and ``parameters`` (each parameter of the
    two winners, their values and the change)."""

    first: str
    second: str
    summary: pd.DataFrame
    parameters: pd.DataFrame
    curves: dict[str, tuple[list[float], list[float | None]]] = field(default_factory=dict)


def _winner_parameters(results: Mapping[str, Any]) -> dict[str, Any]:
    best = results.get("best") or {}
    params = best.get("params") or {}
    family = params.get("model")
    out: dict[str, Any] = {"model": family} if family else {}
    out.update({f"{family}.{k}": v for k, v in sorted((params.get("entry_model") or {}).items())})
    out.update({f"trading.{k}": v for k, v in sorted((params.get("trading") or {}).items())})
    return out


def _figures_of_merit(results: Mapping[str, Any], show_holdout: bool = True
                      ) -> dict[str, Any]:
    best = results.get("best") or {}
    overfitting = results.get("overfitting") or {}
    counts = results.get("counts") or {}
    data = results.get("data") or {}
    checks = results.get("reproducibility_check") or []
    if isinstance(checks, Mapping):
        checks = [checks]
    objective = (results.get("config") or {}).get("objective") or {}
    return {
        "strategy": results.get("sweep_type"),
        "metric": objective.get("metric"),  # what "best (validation)" measures
        "seed": None if results.get("seed") is None else str(results["seed"]),
        "evaluations": counts.get("evaluations"),
        "failed": counts.get("failed"),
        "budget spent": results.get("budget_spent"),
        "best (validation)": best.get("score"),
        "holdout Sharpe": (best.get("holdout") or {}).get("holdout_sharpe")
        if show_holdout else "locked",
        "holdout trades": (best.get("holdout") or {}).get("holdout_trades")
        if show_holdout else "locked",
        "DSR": gate_dsr(results).get("dsr"),  # the one the gate judged
        "PBO": (overfitting.get("pbo") or {}).get("pbo"),
        "winner": f"eval {best['eval_id']} ({(best.get('params') or {}).get('model')})"
        if best else None,
        "reproducibility": ("PASS" if checks and all(c.get("status") == "PASS" for c in checks)
                            else "FAIL" if checks else None),
        "gate": gate_decision(results),
        "data": f"{data.get('first_bar')} to {data.get('last_bar')}" if data else None,
        "config hash": str(results.get("config_hash", ""))[:12] or None,
    }


def _change(first: Any, second: Any) -> Any:
    numbers = (int, float)
    if (isinstance(first, numbers) and isinstance(second, numbers)
            and not isinstance(first, bool) and not isinstance(second, bool)):
        if math.isfinite(first) and math.isfinite(second):
            return second - first
        return None
    if first is None or second is None or "locked" in (first, second):
        return None
    return "same" if first == second else "changed"


def _relative(first: Any, second: Any) -> float | None:
    change = _change(first, second)
    if isinstance(change, (int, float)) and isinstance(first, (int, float)) and first != 0:
        return float(change) / abs(float(first))
    return None


def compare_runs(first: Mapping[str, Any], second: Mapping[str, Any],
                 show_holdout: bool | tuple[bool, bool] = True) -> RunComparison:
    """Compare two finished runs (their results dicts): figures of merit side by side, the
    parameters of their winners with the shift from the first to the second, and each run's
    best-score-against-compute curve (:func:`best_score_curve`). ``show_holdout``: for both
    runs, or (first, second); a run's holdout not shown says ``locked``."""
    show_a, show_b = (show_holdout, show_holdout) if isinstance(show_holdout, bool) \
        else show_holdout
    name_a = str((first.get("run") or {}).get("name", "first"))
    name_b = str((second.get("run") or {}).get("name", "second"))
    if name_a == name_b:
        name_a, name_b = f"{name_a} (1)", f"{name_b} (2)"
    merit_a = _figures_of_merit(first, show_a)
    merit_b = _figures_of_merit(second, show_b)
    summary = pd.DataFrame({
        name_a: pd.Series(merit_a, dtype=object),
        name_b: pd.Series(merit_b, dtype=object),
        "change": pd.Series({k: _change(merit_a[k], merit_b[k]) for k in merit_a},
                            dtype=object),
    })
    if merit_a["metric"] != merit_b["metric"]:  # a Sharpe ratio less a total return: no change
        summary.loc["best (validation)", "change"] = None
    params_a, params_b = _winner_parameters(first), _winner_parameters(second)
    names = list(params_a) + [k for k in params_b if k not in params_a]
    parameters = pd.DataFrame(
        {name_a: [params_a.get(k) for k in names], name_b: [params_b.get(k) for k in names],
         "change": [_change(params_a.get(k), params_b.get(k)) for k in names],
         "relative change": [_relative(params_a.get(k), params_b.get(k)) for k in names]},
        index=pd.Index(names, name="parameter"), dtype=object,
    )
    curves = {name_a: best_score_curve(first.get("evaluations") or []),
              name_b: best_score_curve(second.get("evaluations") or [])}
    return RunComparison(name_a, name_b, summary, parameters, curves)


def best_score_curve(evaluations: Sequence[Mapping[str, Any]]
                     ) -> tuple[list[float], list[float | None]]:
    """Cumulative compute (budget units of every finished evaluation, ``eval_id`` order) and
    the best score so far among the evaluations that compete for "best"
    (:mod:`cryptosweep.records.ranking`: done, finite score, the largest budget reached), as
    :func:`cryptosweep.reporting.figures.optimisation_history` draws it; ``None`` before the
    first."""
    finished = sorted((e for e in evaluations if e["status"] in ("done", "failed")),
                      key=lambda e: e["eval_id"])
    competing = {e["eval_id"] for e in at_largest_budget(finished)[0]}
    compute: list[float] = []
    best: list[float | None] = []
    spent, so_far = 0.0, None
    for e in finished:
        spent += float(e["budget"])
        if e["eval_id"] in competing and finished_with_score(e):
            so_far = float(e["score"]) if so_far is None else max(so_far, float(e["score"]))
        compute.append(spent)
        best.append(so_far)
    return compute, best
