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
criterion's, and another market's score, whose failure is journaled and shown in its table),
and a resume runs it again.
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
from cryptosweep.core.errors import InfrastructureError
from cryptosweep.core.faults import infrastructure_fault
from cryptosweep.core.files import (
    canonical_json,
    finite_or_none,
    write_json_atomic,
    write_text_atomic,
)
from cryptosweep.execution.executors import Executor, InProcessExecutor, worker_died
from cryptosweep.execution.worker import TaskOutcome, run_final_task
from cryptosweep.judging.deployment import decide
from cryptosweep.judging.edge import edge
from cryptosweep.judging.overfitting import (
    PBO_SPLITS,
    deflated_sharpe_from_returns,
    probability_of_backtest_overfitting,
)
from cryptosweep.records.evaluations import EvaluationRow, configured, without_search
from cryptosweep.records.journal import Journal
from cryptosweep.records.ranking import ranked
from cryptosweep.records.results import (
    BEST_CONFIGS_PREFIX,
    RESULTS_PREFIX,
    best_configs,
    build_results,
    resource_usage,
    text_report,
)
from cryptosweep.strategies import Strategy
from cryptosweep.sweep.champion import Champion, champion_request, comparison, read_champion
from cryptosweep.sweep.evidence import (
    common_bars,
    ledger_path,
    paired_test,
    statistics,
)
from cryptosweep.sweep.rescoring import (
    RESCORE,
    by_rescore,
    neighbour_tasks,
    neighbourhood,
    rescore_tasks,
    rescored,
    reusable,
)
from cryptosweep.sweep.robustness import (
    cpcv_block,
    cpcv_tasks,
    journal_result,
    market_tasks,
    markets_block,
    regimes_block,
)
from cryptosweep.trading.metrics import per_bar_sharpe
from cryptosweep.trading.objective import HELD_SPANS, trial_reproducibility

log = logging.getLogger(__name__)

#: The journal's ``extra_evaluations`` id of the one-per-run results (baselines, champion).
RUN_LEVEL_ID = 0
#: The ``extra_returns`` kind of the champion's per-bar returns on this run's holdout.
CHAMPION_HOLDOUT = "champion_holdout"


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
    # Each evaluation as the configuration it scored (a threshold its trial chose included).
    rows = [configured(row) for row in journal.evaluations()]
    leaders = ranked(rows)[: config.reporting.top_k]
    data = journal.get_meta("data", None) or {}
    champion = read_champion(config.deployment.champion_dir)
    executor = executor or InProcessExecutor()

    # First wave: the top-k's holdout (with the cost stress) and re-scores, the baselines,
    # the champion's re-evaluation.
    tasks = _pending_tasks(config, seed, run_dir, journal, leaders, champion, use_gpu)
    outcomes = _run(executor, tasks, config)
    validation = journal.get_returns("validation")
    # While the workers evaluate: the overfitting diagnostics, from the journal.
    overfitting = overfitting_diagnostics(rows, validation, data.get("periods_per_year"))
    champion_error = _journal(outcomes, journal, len(tasks))

    # The winner is the best mean re-score; the second wave replays its deployed path and
    # evaluates its neighbourhood.
    scores = rescored(config, journal, leaders, validation)
    order = by_rescore(leaders, scores)
    winner = order[0] if order else None
    second = _second_wave(config, journal, winner, spec, use_gpu)
    _journal(_run(executor, second, config), journal, len(second))

    holdout, reruns = journal.get_extra("holdout"), journal.get_extra("repro")
    baselines = journal.get_extra("baselines").get(RUN_LEVEL_ID)
    metric = config.objective.metric
    top = []
    for rank, row in enumerate(order, start=1):
        rescore = {key: value for key, value in scores[row.eval_id].items() if key != "returns"}
        top.append({"rank": rank, "eval_id": row.eval_id, "trial_id": row.trial_id,
                    "params": row.params, "budget": row.budget, "seed": row.seed,
                    "score": row.score, "search_rank": leaders.index(row) + 1,
                    "rescore": rescore, "metrics": row.metrics,
                    "holdout": holdout.get(row.eval_id)})
    trial_sharpes = _trial_sharpes(rows, validation)
    for item in top:
        item["edge"] = edge(item, baselines, metric)
        item["dsr"] = _dsr_or_none(validation.get(item["eval_id"]), trial_sharpes,
                                   data.get("periods_per_year"))
    check = ([_reproducibility_check(winner, reruns[winner.eval_id],
                                     without_search(_deployed_metrics(winner, journal)))]
             if winner is not None and winner.eval_id in reruns else [])
    winner_returns = scores[winner.eval_id]["returns"] if winner is not None else None
    created_at = journal.get_meta("created_at")
    resumed_at = journal.get_meta("resumed_at", [])
    finished_at = time.time()
    evidence = statistics(config, seed, run_dir, journal, rows, leaders, winner,
                          winner_returns, holdout.get(winner.eval_id) if winner else None,
                          data, now=float(created_at))
    evidence["rescore"] = {"seeds": config.deployment.rescore_seeds,
                           "winner_changed": bool(winner and leaders and winner != leaders[0])}
    if winner is not None:
        evidence["neighbourhood"] = neighbourhood(
            config, journal, winner, scores[winner.eval_id]["mean"])
    champion_side = _champion_side(champion, spec, data, journal, champion_error)
    if champion_side is not None and winner is not None:
        champion_side["paired_test"] = paired_test(
            journal.get_returns("holdout").get(winner.eval_id),
            journal.get_extra_returns(CHAMPION_HOLDOUT).get(RUN_LEVEL_ID))

    canonical = config.canonical()
    run = {
        "name": run_dir.name, "run_dir": str(run_dir), "timestamp": stamp,
        "created_at": created_at, "finished_at": finished_at,
        "wall_time_s": finished_at - created_at, "host": socket.gethostname(),
        # A resumed run's wall time holds the pauses between its sessions: the last one's own.
        "resumed_at": resumed_at,
        "session_s": finished_at - (resumed_at[-1] if resumed_at else created_at),
        "retried": sum(row.attempts > 1 for row in rows),
        "ledger": str(ledger_path(config, run_dir)),
    }
    results = build_results(
        config=canonical, config_hash=config.results_hash(), seed=seed, run=run,
        data=journal.get_meta("data", None),
        strategy=strategy.summary(), rows=rows, top=top, reproducibility_check=check,
        overfitting=overfitting, baselines=baselines,
    )
    for name, block in (("cpcv", cpcv_block(config, journal, order)),
                        ("regimes", regimes_block(config, journal, winner, data)),
                        ("markets", markets_block(config, journal, order))):
        if block is not None:
            evidence[name] = block
    results["statistics"] = finite_or_none(evidence)
    results["overfitting"] = finite_or_none(results["overfitting"])
    if champion_side is not None:
        champion_side = finite_or_none(champion_side)
    results["deployment"] = decide(results, champion_side)
    log.info("deployment gate: %s", results["deployment"]["reason"])
    files = {
        "results": run_dir / f"{RESULTS_PREFIX}{stamp}.json",
        "report": run_dir / f"sweep_report_{stamp}.txt",
        "best_configs": run_dir / f"{BEST_CONFIGS_PREFIX}{stamp}.json",
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


def _run(executor: Executor, tasks: list[dict[str, Any]], config: SweepConfig
         ) -> Iterator[TaskOutcome]:
    if tasks:
        log.info("end of the sweep: %d evaluation(s) on %s: %s", len(tasks),
                 executor.description, ", ".join(task["task"] for task in tasks))
    return executor.run_tasks(run_final_task, tasks, config.execution.max_retries)


def _trial_sharpes(rows: list[EvaluationRow], validation: dict[int, np.ndarray]) -> np.ndarray:
    """The per-bar Sharpe ratios of the full-budget configurations (each top-k entry's own
    DSR, for reading; the gate's DSR counts every trial of the ledger)."""
    return np.array([per_bar_sharpe(validation[r.eval_id]) for r in ranked(rows)
                     if r.eval_id in validation])


def _deployed_metrics(row: EvaluationRow, journal: Journal) -> dict[str, Any] | None:
    """The metrics of the winner's deployed path: its own evaluation when that was already
    from scratch with its recorded seed, else its first re-score."""
    if reusable(row):
        return row.metrics
    return journal.get_extra(RESCORE.format(0)).get(row.eval_id)


def _second_wave(config: SweepConfig, journal: Journal, winner: EvaluationRow | None,
                 spec: ObjectiveSpec, use_gpu: bool) -> list[dict[str, Any]]:
    """The replay of the winner's deployed path (the reproducibility check) and its
    neighbourhood, as payloads; what the journal holds already is not run again."""
    if winner is None:
        return []
    payload_spec = spec.to_payload()
    tasks = []
    if winner.eval_id not in journal.get_extra("repro"):
        tasks.append({"task": f"rerun-{winner.eval_id}", "kind": "rerun",
                      "eval_id": winner.eval_id, "params": winner.params,
                      "budget": winner.budget, "seed": winner.seed})
    tasks.extend(neighbour_tasks(config, journal, winner))
    return [{**task, "spec": payload_spec, "use_gpu": use_gpu} for task in tasks]


def _pending_tasks(config: SweepConfig, seed: int, run_dir: Path, journal: Journal,
                   leaders: list[EvaluationRow], champion: Champion | None,
                   use_gpu: bool) -> list[dict[str, Any]]:
    """The first wave's evaluations the journal does not hold yet, as plain-JSON payloads."""
    spec = config.objective_spec()
    payload_spec = spec.to_payload()
    # An evaluation counts as journaled only with its per-bar returns too (the statistics
    # read them): one whose returns were lost is evaluated again, to the same numbers. So is a
    # holdout journaled with the spans that counted a time exit's bar (before HELD_SPANS).
    holdout = {eval_id: metrics for eval_id, metrics in journal.get_extra("holdout").items()
               if eval_id in journal.get_returns("holdout") and HELD_SPANS in metrics}
    tasks: list[dict[str, Any]] = []

    def task(kind: str, name: str, **fields: Any) -> None:
        tasks.append({"task": name, "kind": kind, "spec": payload_spec, "use_gpu": use_gpu,
                      **fields})

    if config.data.has_holdout:
        for row in leaders:
            if row.eval_id not in holdout:
                task("holdout", f"holdout-{row.eval_id}", eval_id=row.eval_id,
                     params=row.params, budget=row.budget, seed=row.seed,
                     stress_multiplier=config.deployment.stress_multiplier)
    for fields in rescore_tasks(config, seed, journal, leaders):
        task(fields.pop("kind"), fields.pop("task"), **fields)
    for fields in cpcv_tasks(config, journal, leaders) + market_tasks(config, journal, leaders):
        task(fields.pop("kind"), fields.pop("task"), **fields)
    if RUN_LEVEL_ID not in journal.get_extra("baselines"):
        task("baselines", "baselines")
    if (champion is not None and champion.error is None and config.data.has_holdout
            and _journaled_champion(journal, champion) is None):
        task("champion", "champion", digest=champion.digest,
             stress_multiplier=config.deployment.stress_multiplier,
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
        if task["kind"] == "validation":  # from scratch: all of the budget is trained
            trained = float((row.metrics or {}).get("budget_trained", row.budget)) or 1.0
            seconds *= row.budget / trained
        if task["kind"] == "cpcv":  # C(N, k) fits on about (N - k)/N of the bars, each
            trained = float((row.metrics or {}).get("budget_trained", row.budget)) or 1.0
            fits = math.comb(task["groups"], task["test_groups"])
            seconds *= (2.0 * fits / folds) * (row.budget / trained)
        if task["kind"] == "market":  # the same folds on other candles
            trained = float((row.metrics or {}).get("budget_trained", row.budget)) or 1.0
            seconds *= row.budget / trained
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
            if (payload["kind"] == "market" and not isinstance(outcome.error, OSError)
                    and infrastructure_fault(outcome.error) is None):
                # Another market that cannot be scored says so in its table; the run goes on.
                error = f"{type(outcome.error).__name__}: {outcome.error}"
                log.warning("%s failed: %s", payload["task"], error)
                journal.put_extra(payload["store"], payload["eval_id"],
                                  {"market_data": payload["market_data"],
                                   "market_sha256": payload["market_sha256"], "error": error})
                continue
            if (payload["kind"] == "champion" and not isinstance(outcome.error, OSError)
                    and infrastructure_fault(outcome.error) is None):
                champion_error = f"{type(outcome.error).__name__}: {outcome.error}"
                log.warning("the champion's re-evaluation failed: %s", champion_error)
                continue
            if worker_died(outcome.error):  # was dask's traceback, exit 1
                # The runner adds that nothing was recorded, and the resume command.
                dask = " ".join(str(outcome.error).split()).rstrip(".")
                raise InfrastructureError(
                    f"end of the sweep: {payload['task']}: its worker process died on every "
                    f"attempt (out of memory? give the workers more memory, or run fewer of "
                    f"them; dask: {dask})")
            raise outcome.error
        result = outcome.result
        if payload["kind"] == "holdout":
            journal.put_returns("holdout", payload["eval_id"], result.pop("holdout_returns"))
            journal.put_extra("holdout", payload["eval_id"], result)
        elif payload["kind"] == "rerun":
            journal.put_extra("repro", payload["eval_id"], result)
        elif payload["kind"] == "validation":  # a re-score or a neighbour
            journal.put_extra_returns(payload["store"], payload["eval_id"],
                                      result.pop("oos_returns"))
            journal.put_extra(payload["store"], payload["eval_id"], result)
        elif payload["kind"] in ("cpcv", "market"):
            journal_result(journal, payload, result)
        elif payload["kind"] == "baselines":
            for name, baseline in result.items():
                for kind, returns in baseline.pop("returns").items():
                    if returns is not None:
                        journal.put_baseline_returns(name, kind, returns)
            journal.put_extra("baselines", RUN_LEVEL_ID, result)
        else:
            journal.put_extra_returns(CHAMPION_HOLDOUT, RUN_LEVEL_ID,
                                      result.pop("holdout_returns"))
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
    # Its re-evaluation raised (an infrastructure fault never gets here): the keep-gate counts
    # a failed night, as for a champion that cannot be read; kept, it blocked every winner.
    failed = champion.error is None and error is not None
    if champion.error is None and holdout is None and error is None:
        error = "this run has no holdout (data.holdout_fraction is 0)"
    side = comparison(champion, spec, data.get("bar_interval"), holdout, error)
    if failed:
        side["reevaluation_failed"] = True
    return side


def overfitting_diagnostics(
    rows: list[Any], returns: dict[int, np.ndarray], periods_per_year: float | None = None,
    n_splits: int = PBO_SPLITS,
) -> dict[str, Any]:
    """How sure we are that the search's winner is not luck, from the per-bar out-of-sample
    returns of the evaluations (every configuration is scored on the same folds).

    The probability of backtest overfitting by CSCV (Bailey et al. 2017) on the ``T × N``
    matrix of **every configuration tried**, each at the largest budget it reached (the whole
    choice the search made, not only the survivors of its early stopping; with
    ``objective.fidelity: folds``, on the most recent folds every one of them was evaluated
    on: :func:`~cryptosweep.sweep.evidence.common_bars`), with the probability
    of out-of-sample loss and the slope of out-of-sample on in-sample performance the same
    splits give. ``dsr`` is the search winner's deflated Sharpe ratio with N = the full-budget
    configurations (kept for comparison; the gate's DSR counts every trial of the ledger:
    ``results["statistics"]["selection"]``).
    """
    full = [r.eval_id for r in ranked(rows) if r.eval_id in returns]
    last: dict[int, Any] = {}
    for row in rows:
        if row.status == "done" and row.eval_id in returns and (
                row.trial_id not in last or row.budget >= last[row.trial_id].budget):
            last[row.trial_id] = row
    candidates = [last[trial].eval_id for trial in sorted(last)]
    out: dict[str, Any] = {"n_configurations": len(candidates), "n_full_budget": len(full),
                           "dsr": None, "pbo": None, "why_not": None}
    if len(full) >= 2:
        matrix = np.column_stack([returns[eval_id] for eval_id in full])
        out["dsr"] = _dsr_or_none(returns[full[0]], np.array(
            [per_bar_sharpe(matrix[:, j]) for j in range(matrix.shape[1])]), periods_per_year)
    if len(candidates) < 2:
        out["why_not"] = "fewer than 2 finished configurations"
        return out
    try:
        common = common_bars([returns[eval_id] for eval_id in candidates])
        pbo = probability_of_backtest_overfitting(common, n_splits)
        slope, intercept = pbo.degradation
        # The in/out-of-sample pairs are recomputable from the journal; the logits are kept
        # for the report's histogram.
        out["pbo"] = {"pbo": pbo.pbo, "logits": pbo.logits.tolist(),
                      "n_combinations": pbo.n_combinations, "n_splits": n_splits,
                      "n_bars": int(common.shape[0]),  # every configuration was scored on
                      "probability_of_loss": pbo.probability_of_loss,
                      "degradation_slope": slope, "degradation_intercept": intercept}
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


def _reproducibility_check(original: EvaluationRow, rerun: dict[str, Any],
                           deployed: dict[str, Any] | None) -> dict[str, Any]:
    """PASS when the replay of the winner's deployed path (from scratch, its recorded seed)
    gave bitwise-equal metrics to that path's journaled ones (which include the SHA-256 of its
    per-bar returns), compared as canonical JSON (which round-trips floats exactly)."""
    status = ("PASS" if deployed is not None and canonical_json(rerun) == canonical_json(deployed)
              else "FAIL")
    if status == "FAIL":
        log.error("reproducibility check FAILED for eval %d: %s != %s",
                  original.eval_id, canonical_json(rerun), canonical_json(deployed))
    return {"eval_id": original.eval_id, "status": status, "original": deployed,
            "rerun": rerun}
