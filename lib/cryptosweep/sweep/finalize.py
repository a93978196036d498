"""The end of a sweep: the top-k on the untouched holdout, a reproducibility re-run of each of
them, the baselines (flat, buy-and-hold) on the same bars, the deployed champion re-evaluated
on this run's holdout, the deflated Sharpe ratio and the probability of backtest overfitting,
the deployment gate's decision, and the run's output files.

The evaluations run as tasks on the sweep's executor while it is still up (its workers, GPUs
or cluster; in this process with ``workers: 0``), all submitted at once; the DSR and PBO are
computed here meanwhile. Each result is journaled as it arrives, so a run interrupted here
resumes without redoing them; the files are built from the journal only, so they are the same
bytes whatever the executor and whichever order the results came in. A task that fails is
never journaled: it stops the run (the champion's re-evaluation excepted, whose failure is its
criterion's), and a resume runs it again.
"""

from __future__ import annotations

import logging
import math
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from cryptosweep.core.config import ObjectiveSpec, SweepConfig
from cryptosweep.core.faults import infrastructure_fault
from cryptosweep.core.files import canonical_json, write_json_atomic, write_text_atomic
from cryptosweep.execution.checkpoints import checkpoint_spec
from cryptosweep.execution.executors import Executor, InProcessExecutor
from cryptosweep.execution.worker import TaskOutcome, run_final_task
from cryptosweep.judging.deployment import decide
from cryptosweep.judging.edge import edge
from cryptosweep.judging.overfitting import (
    deflated_sharpe_from_returns,
    per_bar_sharpe,
    probability_of_backtest_overfitting,
)
from cryptosweep.records.journal import EvaluationRow, Journal
from cryptosweep.records.ranking import ranked
from cryptosweep.records.results import best_configs, build_results, resource_usage, text_report
from cryptosweep.strategies import Strategy
from cryptosweep.sweep.champion import Champion, champion_request, comparison, read_champion
from cryptosweep.trading.objective import trial_reproducibility

log = logging.getLogger(__name__)

PBO_SPLITS = 16  # CSCV blocks: C(16, 8) = 12,870 in-sample/out-of-sample splits
#: The journal's ``extra_evaluations`` id of the one-per-run results (baselines, champion).
RUN_LEVEL_ID = 0


def framework_params(family: str, seed: int, spec: ObjectiveSpec) -> dict[str, Any]:
    """The seed/determinism parameters production should train the winner with: those its
    trials ran with (``gpu_settings.deterministic`` included)."""
    manager = trial_reproducibility(spec, seed)
    getter = {
        "lightgbm": manager.get_lightgbm_params, "xgboost": manager.get_xgboost_params,
        "catboost": manager.get_catboost_params, "torch": manager.get_torch_settings,
    }[family]
    return getter()


def finalize_run(
    config: SweepConfig, seed: int, run_dir: Path, journal: Journal, stamp: str,
    strategy: Strategy, executor: Executor | None = None, use_gpu: bool = False,
) -> tuple[dict[str, Path], dict[str, Any]]:
    """Evaluate, judge and write the run's files (see the module docstring). ``executor``:
    the sweep's, still up (None: in this process)."""
    spec = config.objective_spec()
    rows = journal.evaluations()
    leaders = ranked(rows)[: config.reporting.top_k]
    data = journal.get_meta("data", None) or {}
    champion = read_champion(config.deployment.champion_dir)
    tasks = _pending_tasks(config, run_dir, journal, leaders, champion, use_gpu)
    executor = executor or InProcessExecutor()
    if tasks:
        log.info("end of the sweep: %d evaluation(s) on %s: %s", len(tasks),
                 executor.description, ", ".join(task["task"] for task in tasks))
    outcomes = executor.run_tasks(run_final_task, tasks, config.execution.max_retries)

    # While the workers evaluate: the overfitting diagnostics, from the journal.
    top = [{"rank": rank, "eval_id": row.eval_id, "trial_id": row.trial_id,
            "params": row.params, "budget": row.budget, "seed": row.seed, "score": row.score,
            "metrics": row.metrics}
           for rank, row in enumerate(leaders, start=1)]
    overfitting = overfitting_diagnostics(rows, journal.get_returns("validation"), top,
                                          data.get("periods_per_year"))
    champion_error = _journal(outcomes, journal, len(tasks))

    holdout, reruns = journal.get_extra("holdout"), journal.get_extra("repro")
    baselines = journal.get_extra("baselines").get(RUN_LEVEL_ID)
    metric = config.objective.metric
    for item in top:
        item["holdout"] = holdout.get(item["eval_id"])
        item["edge"] = edge(item, baselines, metric)
    check = [_reproducibility_check(row, reruns[row.eval_id]) for row in leaders]
    champion_side = _champion_side(champion, spec, data, journal, champion_error)

    canonical = config.canonical()
    created_at = journal.get_meta("created_at")
    finished_at = time.time()
    run = {
        "name": run_dir.name, "run_dir": str(run_dir), "timestamp": stamp,
        "created_at": created_at, "finished_at": finished_at,
        "wall_time_s": finished_at - created_at, "host": socket.gethostname(),
        "retried": sum(row.attempts > 1 for row in rows),
    }
    results = build_results(
        config=canonical, config_hash=config.results_hash(), seed=seed, run=run,
        data=journal.get_meta("data", None),
        strategy=strategy.summary(), rows=rows, top=top, reproducibility_check=check,
        overfitting=overfitting, baselines=baselines,
    )
    results["deployment"] = decide(results, champion_side)
    log.info("deployment gate: %s", results["deployment"]["reason"])
    files = {
        "results": run_dir / f"sweep_results_{stamp}.json",
        "report": run_dir / f"sweep_report_{stamp}.txt",
        "best_configs": run_dir / f"best_configs_{stamp}.json",
        "resource_usage": run_dir / f"resource_usage_{stamp}.json",
    }
    write_json_atomic(files["results"], results)
    write_text_atomic(files["report"], text_report(results))
    winner_params = (
        framework_params(top[0]["params"]["model"], top[0]["seed"], spec) if top else {}
    )
    write_json_atomic(files["best_configs"], best_configs(results, winner_params))
    write_json_atomic(files["resource_usage"], resource_usage(rows, journal.resource_samples()))
    for name, path in files.items():
        log.info("wrote %s: %s", name, path)
    return files, results


def _pending_tasks(config: SweepConfig, run_dir: Path, journal: Journal,
                   leaders: list[EvaluationRow], champion: Champion | None,
                   use_gpu: bool) -> list[dict[str, Any]]:
    """The end-of-sweep evaluations the journal does not hold yet, as plain-JSON payloads."""
    spec = config.objective_spec()
    payload_spec = spec.to_payload()
    holdout, reruns = journal.get_extra("holdout"), journal.get_extra("repro")
    tasks: list[dict[str, Any]] = []

    def task(kind: str, name: str, **fields: Any) -> None:
        tasks.append({"task": name, "kind": kind, "spec": payload_spec, "use_gpu": use_gpu,
                      **fields})

    if config.data.has_holdout:
        for row in leaders:
            if row.eval_id not in holdout:
                task("holdout", f"holdout-{row.eval_id}", eval_id=row.eval_id,
                     params=row.params, budget=row.budget, seed=row.seed)
    for row in leaders:
        if row.eval_id not in reruns:
            task("rerun", f"rerun-{row.eval_id}", eval_id=row.eval_id, params=row.params,
                 budget=row.budget, seed=row.seed,
                 checkpoint=checkpoint_spec(config, run_dir, row.trial_id, row.tags))
    if RUN_LEVEL_ID not in journal.get_extra("baselines"):
        task("baselines", "baselines")
    if (champion is not None and champion.error is None and config.data.has_holdout
            and _journaled_champion(journal, champion) is None):
        task("champion", "champion", digest=champion.digest,
             **champion_request(champion.manifest, spec))
    # Longest first (Graham's LPT rule): the last task to start is a short one, so the
    # workers finish together instead of one waiting for a long re-run started last.
    estimates = _estimated_seconds(tasks, {row.eval_id: row for row in leaders},
                                   config.objective.folds)
    return sorted(tasks, key=lambda t: -estimates[t["task"]])


def _estimated_seconds(tasks: list[dict[str, Any]], rows: dict[int, EvaluationRow],
                       folds: int) -> dict[str, float]:
    """Each task's expected duration from its evaluation's own: a re-run repeats it; a
    holdout evaluation fits one model on all the development bars with the full budget, where
    the evaluation fitted ``folds`` models on k/(folds+1) of them (k = 1..folds: folds/2 of
    them in all), possibly continuing from a checkpoint (``budget_trained`` < ``budget``)."""
    estimates, holdouts = {}, []
    for task in tasks:
        row = rows.get(task.get("eval_id", -1))
        if row is None or row.started_at is None or row.finished_at is None:
            continue
        seconds = row.finished_at - row.started_at
        if task["kind"] == "holdout":
            trained = float((row.metrics or {}).get("budget_trained", row.budget)) or 1.0
            seconds *= (2.0 / folds) * (row.budget / trained)
            holdouts.append(seconds)
        estimates[task["task"]] = seconds
    typical = float(np.median(holdouts)) if holdouts else 0.0
    for task in tasks:  # the champion like a typical holdout; the baselines take no time
        estimates.setdefault(task["task"], typical if task["kind"] == "champion" else 0.0)
    return estimates


def _journal(outcomes: Iterator[TaskOutcome], journal: Journal, expected: int) -> str | None:
    """Journal each finished task as it arrives; returns why the champion's re-evaluation
    failed (None when it did not, or was not run). Any other failure stops the run here,
    with nothing of it journaled; so does an infrastructure fault (a full disk) of the
    champion's, which says nothing about the champion."""
    champion_error = None
    for done, outcome in enumerate(outcomes, start=1):
        payload = outcome.payload
        if outcome.error is not None:
            if (payload["kind"] == "champion" and not isinstance(outcome.error, OSError)
                    and infrastructure_fault(outcome.error) is None):
                champion_error = f"{type(outcome.error).__name__}: {outcome.error}"
                log.warning("the champion's re-evaluation failed: %s", champion_error)
                continue
            raise outcome.error
        result = outcome.result
        if payload["kind"] == "holdout":
            journal.put_returns("holdout", payload["eval_id"], result.pop("holdout_returns"))
            journal.put_extra("holdout", payload["eval_id"], result)
        elif payload["kind"] == "rerun":
            journal.put_extra("repro", payload["eval_id"], result)
        elif payload["kind"] == "baselines":
            for name, baseline in result.items():
                for kind, returns in baseline.pop("returns").items():
                    if returns is not None:
                        journal.put_baseline_returns(name, kind, returns)
            journal.put_extra("baselines", RUN_LEVEL_ID, result)
        else:
            result.pop("holdout_returns")
            journal.put_extra("champion", RUN_LEVEL_ID,
                            {"manifest_sha256": payload["digest"], "holdout": result})
        log.info("end of the sweep %d/%d: %s done", done, expected, payload["task"])
    return champion_error


def _journaled_champion(journal: Journal, champion: Champion) -> dict[str, Any] | None:
    """The journaled re-evaluation of this very champion (same manifest), if any."""
    record = journal.get_extra("champion").get(RUN_LEVEL_ID)
    if record is None or record.get("manifest_sha256") != champion.digest:
        return None
    return record["holdout"]


def _champion_side(champion: Champion | None, spec: ObjectiveSpec, data: dict[str, Any],
                   journal: Journal, error: str | None) -> dict[str, Any] | None:
    if champion is None:
        return None
    holdout = None if champion.error else _journaled_champion(journal, champion)
    if champion.error is None and holdout is None and error is None:
        error = "this run has no holdout (data.holdout_fraction is 0)"
    return comparison(champion, spec, data.get("bar_interval"), holdout, error)


def overfitting_diagnostics(
    rows: list[Any], returns: dict[int, np.ndarray], top: list[dict[str, Any]],
    periods_per_year: float | None = None, n_splits: int = PBO_SPLITS,
) -> dict[str, Any]:
    """How sure we are that the winner is not luck, from the per-bar out-of-sample returns of
    every finished evaluation at the full budget (the configurations the search chose among).

    Adds the deflated Sharpe ratio (Bailey & López de Prado 2014) to each top-k entry, with
    N = the number of those configurations and the variance of their Sharpe ratios, and
    computes the probability of backtest overfitting by CSCV (Bailey et al. 2017) on the
    T × N matrix of their returns. The DSR works on Sharpe ratios per bar; with
    ``periods_per_year`` (from the candles' bar interval) the winner's Sharpe ratio and the
    expected maximum under no skill are also given annualised, for reading.
    """
    candidates = [r.eval_id for r in ranked(rows) if r.eval_id in returns]
    out: dict[str, Any] = {"n_configurations": len(candidates), "dsr": None, "pbo": None,
                           "why_not": None}
    if len(candidates) < 2:
        out["why_not"] = "fewer than 2 finished full-budget configurations"
        return out
    matrix = np.column_stack([returns[eval_id] for eval_id in candidates])
    trial_sharpes = np.array([per_bar_sharpe(matrix[:, j]) for j in range(matrix.shape[1])])
    for item in top:
        series = returns.get(item["eval_id"])
        item["dsr"] = _dsr_or_none(series, trial_sharpes, periods_per_year)
    out["dsr"] = top[0]["dsr"] if top else None
    try:
        pbo = probability_of_backtest_overfitting(matrix, n_splits)
        # The in/out-of-sample pairs are recomputable from the journal; the logits are kept
        # for the report's histogram.
        out["pbo"] = {"pbo": pbo.pbo, "logits": pbo.logits.tolist(),
                      "n_combinations": pbo.n_combinations, "n_splits": n_splits}
    except ValueError as exc:
        out["why_not"] = f"PBO: {exc}"
    return out


def _dsr_or_none(series: np.ndarray | None, trial_sharpes: np.ndarray,
                 periods_per_year: float | None) -> dict[str, Any] | None:
    if series is None:
        return None
    try:
        dsr = deflated_sharpe_from_returns(series, trial_sharpes)
    except ValueError as exc:  # e.g. a configuration that never traded: constant returns
        return {"dsr": None, "why_not": str(exc)}
    if periods_per_year is not None:
        scale = math.sqrt(periods_per_year)
        dsr.update(periods_per_year=periods_per_year, sr_annualised=dsr["sr"] * scale,
                   sr0_annualised=dsr["sr0"] * scale)
    return dsr


def _reproducibility_check(original: EvaluationRow, rerun: dict[str, Any]) -> dict[str, Any]:
    """PASS when the re-run of an evaluation with its recorded seed gave bitwise-equal metrics
    (which include the SHA-256 of its per-bar returns), compared as canonical JSON (which
    round-trips floats exactly)."""
    status = "PASS" if canonical_json(rerun) == canonical_json(original.metrics) else "FAIL"
    if status == "FAIL":
        log.error("reproducibility check FAILED for eval %d: %s != %s",
                  original.eval_id, canonical_json(rerun), canonical_json(original.metrics))
    return {"eval_id": original.eval_id, "status": status, "original": original.metrics,
            "rerun": rerun}
