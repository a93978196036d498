"""The end of a sweep: the top-k on the untouched holdout, a reproducibility re-run of each of
them, the deflated Sharpe ratio and the probability of backtest overfitting, and the run's
output files.

Holdout and re-run results are journaled too, so a run interrupted here resumes without redoing
them, and they run in this process (the search's workers are gone by then).
"""

from __future__ import annotations

import logging
import math
import socket
import time
from pathlib import Path
from typing import Any

import numpy as np

from cryptosweep.checkpoints import checkpoint_spec
from cryptosweep.config import ObjectiveSpec, SweepConfig
from cryptosweep.files import canonical_json, write_json_atomic, write_text_atomic
from cryptosweep.overfitting import (
    deflated_sharpe_from_returns,
    probability_of_backtest_overfitting,
)
from cryptosweep.ranking import ranked
from cryptosweep.results import best_configs, build_results, resource_usage, text_report
from cryptosweep.store import TrialStore
from cryptosweep.strategies import Strategy
from cryptosweep.trading.objective import evaluate_holdout, evaluate_trial, trial_reproducibility

log = logging.getLogger(__name__)

PBO_SPLITS = 16  # CSCV blocks: C(16, 8) = 12,870 in-sample/out-of-sample splits


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
    config: SweepConfig, seed: int, run_dir: Path, store: TrialStore, stamp: str,
    strategy: Strategy,
) -> tuple[dict[str, Path], dict[str, Any]]:
    spec = config.objective_spec()
    rows = store.evaluations()
    leaders = ranked(rows)[: config.reporting.top_k]
    holdout = store.get_extra("holdout")
    top: list[dict[str, Any]] = []
    for rank, row in enumerate(leaders, start=1):
        if config.data.holdout_fraction > 0 and row.eval_id not in holdout:
            log.info("holdout %d/%d: eval %d", rank, len(leaders), row.eval_id)
            result = evaluate_holdout(row.params, row.budget, row.seed, spec)
            store.put_returns("holdout", row.eval_id, result.pop("holdout_returns"))
            store.put_extra("holdout", row.eval_id, result)
            holdout[row.eval_id] = result
        top.append({
            "rank": rank, "eval_id": row.eval_id, "trial_id": row.trial_id, "params": row.params,
            "budget": row.budget, "seed": row.seed, "score": row.score, "metrics": row.metrics,
            "holdout": holdout.get(row.eval_id),
        })
    check = []
    for rank, row in enumerate(leaders, start=1):
        log.info("reproducibility re-run %d/%d: eval %d", rank, len(leaders), row.eval_id)
        check.append(_reproducibility_check(
            store, row, spec, checkpoint_spec(config, run_dir, row.trial_id, row.tags)))
    data = store.get_meta("data", None) or {}
    overfitting = overfitting_diagnostics(rows, store.get_returns("validation"), top,
                                          data.get("periods_per_year"))

    canonical = config.canonical()
    created_at = store.get_meta("created_at")
    finished_at = time.time()
    run = {
        "name": run_dir.name, "run_dir": str(run_dir), "timestamp": stamp,
        "created_at": created_at, "finished_at": finished_at,
        "wall_time_s": finished_at - created_at, "host": socket.gethostname(),
        "retried": sum(row.attempts > 1 for row in rows),
    }
    results = build_results(
        config=canonical, config_hash=config.results_hash(), seed=seed, run=run,
        data=store.get_meta("data", None),
        strategy=strategy.summary(), rows=rows, top=top, reproducibility_check=check,
        overfitting=overfitting,
    )
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
    write_json_atomic(files["resource_usage"], resource_usage(rows, store.resource_samples()))
    for name, path in files.items():
        log.info("wrote %s: %s", name, path)
    return files, results


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
    trial_sharpes = np.array([_sharpe(matrix[:, j]) for j in range(matrix.shape[1])])
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


def _sharpe(series: np.ndarray) -> float:
    std = float(np.std(series, ddof=1))
    return float(np.mean(series) / std) if std > 0 else 0.0


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


def _reproducibility_check(
    store: TrialStore, best: Any, spec: ObjectiveSpec, checkpoint: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Re-run an evaluation with its recorded seed; PASS when the metrics (which include the
    SHA-256 of its per-bar returns) are bitwise equal, compared as canonical JSON (which
    round-trips floats exactly)."""
    rerun = store.get_extra("repro").get(best.eval_id)
    if rerun is None:
        rerun = evaluate_trial(best.params, best.budget, best.seed, spec, checkpoint=checkpoint)
        rerun.pop("oos_returns")  # its digest, returns_sha256, is part of the metrics
        store.put_extra("repro", best.eval_id, rerun)
    status = "PASS" if canonical_json(rerun) == canonical_json(best.metrics) else "FAIL"
    if status == "FAIL":
        log.error("reproducibility check FAILED for eval %d: %s != %s",
                  best.eval_id, canonical_json(rerun), canonical_json(best.metrics))
    return {"eval_id": best.eval_id, "status": status, "original": best.metrics, "rerun": rerun}
