"""What a finished run writes for people and for production — the results JSON, the text
report, the best configs and the resource usage — and how a run folder is read back.
Files are written atomically by :mod:`cryptosweep.core.files`.

Deterministic content and run-specific content are kept apart: timing, host and attempt counts
live under ``run`` and each evaluation's ``timing``, so that two runs with the same config and
seed give byte-identical files once those keys are removed.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptosweep.core.formatting import MISSING, param_lines, signed, wall_time
from cryptosweep.core.intervals import parse_interval, periods_per_year
from cryptosweep.judging.caveats import (
    fold_scores,
    fold_stability,
    fold_trades,
    min_trades_of,
    small_sample,
)
from cryptosweep.judging.deployment import criterion_lines
from cryptosweep.judging.explained import explained
from cryptosweep.judging.verdict import Verdict, verdict
from cryptosweep.records.evaluations import EvaluationRow
from cryptosweep.records.journal import Journal

RESULTS_SCHEMA = "cryptosweep.sweep_results/1"
#: The ``schema`` of a best-configs file: each of its ``configurations`` carries what
#: ``cryptosweep.production.train_model`` needs (``objective_spec``, ``data``).
BEST_CONFIGS_SCHEMA = "cryptosweep.best_configs/1"
#: A run folder's results file: ``sweep_results_<UTC stamp>.json`` (the newest is the run's).
RESULTS_PREFIX = "sweep_results_"
RESULTS_GLOB = f"{RESULTS_PREFIX}*.json"
#: A run folder's resource usage (samples of CPU, memory and GPUs, and each worker's tasks).
RESOURCE_USAGE_GLOB = "resource_usage_*.json"
#: A run folder's environment (versions, devices, seeds: what a re-run needs).
ENVIRONMENT_GLOB = "gpu_repro_*.json"
#: The JSON files :func:`load_run` reads (the newest of each pattern), besides the journal.
RUN_VIEW_GLOBS = (RESULTS_GLOB, RESOURCE_USAGE_GLOB, ENVIRONMENT_GLOB)
#: A run folder's best-configs file: ``best_configs_<UTC stamp>.json``.
BEST_CONFIGS_PREFIX = "best_configs_"
BEST_CONFIGS_GLOB = f"{BEST_CONFIGS_PREFIX}*.json"
#: The name the nightly publishes the latest best-configs file under, in its models folder.
BEST_CONFIGS_LATEST = "best_configs_latest.json"
#: The last run's best configs in the nightly's models folder, approved or not.
BEST_CONFIGS_LAST_RUN = "best_configs_last_run.json"
#: The nightly models folder's history of the deployment gate's decisions.
CHAMPION_HISTORY = "champions.jsonl"
#: What a configuration entry of a best-configs file says of the data its run swept.
BEST_CONFIGS_DATA_KEYS = ("path", "sha256", "bars", "first_bar", "last_bar", "bar_interval",
                          "periods_per_year", "holdout_first_bar")


def evaluation_record(row: EvaluationRow) -> dict[str, Any]:
    """One evaluation as it appears in the results file."""
    duration = (row.finished_at - row.started_at
                if row.finished_at is not None and row.started_at is not None else None)
    return {
        "eval_id": row.eval_id, "trial_id": row.trial_id, "params": row.params,
        "budget": row.budget, "seed": row.seed, "tags": row.tags, "status": row.status,
        "score": row.score, "metrics": row.metrics, "error": row.error,
        "timing": {
            "worker": row.worker, "device": row.device, "started_at": row.started_at,
            "finished_at": row.finished_at, "duration_s": duration, "attempts": row.attempts,
        },
    }


def build_results(
    *, config: dict[str, Any], config_hash: str, seed: int, run: dict[str, Any],
    data: dict[str, Any] | None, strategy: dict[str, Any], rows: list[EvaluationRow],
    top: list[dict[str, Any]], reproducibility_check: list[dict[str, Any]],
    overfitting: dict[str, Any] | None = None, baselines: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The results file's content; the deployment gate's decision is added to it by
    :func:`cryptosweep.sweep.finalize.finalize_run`
    (:func:`cryptosweep.judging.deployment.decide` reads the rest)."""
    finished = [row for row in rows if row.status in ("done", "failed")]
    return {
        "schema": RESULTS_SCHEMA,
        "run": run,
        "seed": seed,
        "config_hash": config_hash,
        "config": config,
        "data": data,
        "sweep_type": config["sweep_type"],
        "strategy": strategy,
        "counts": {
            "evaluations": len(rows),
            "done": sum(row.status == "done" for row in rows),
            "failed": sum(row.status == "failed" for row in rows),
        },
        "budget_spent": sum(row.budget for row in finished),
        "compute_spent": compute_spent(finished),
        "best": top[0] if top else None,
        "top_k": top,
        "baselines": baselines,
        "reproducibility_check": reproducibility_check,
        "overfitting": overfitting,
        "evaluations": [evaluation_record(row) for row in rows],
    }


def compute_spent(rows: list[EvaluationRow]) -> dict[str, Any]:
    """Budget units actually trained (a promotion that continued from its checkpoint trains only
    the increment), in total and per Hyperband (iteration, bracket)."""
    total, per_bracket = 0.0, {}
    for row in rows:
        trained = float((row.metrics or {}).get("budget_trained", row.budget))
        total += trained
        if "bracket" in row.tags:
            key = f"iteration {row.tags.get('iteration', 0)}, bracket {row.tags['bracket']}"
            per_bracket[key] = per_bracket.get(key, 0.0) + trained
    return {"total": total, "per_bracket": per_bracket}


def best_configs(results: dict[str, Any], framework_params: dict[str, Any]) -> dict[str, Any]:
    """The deployment export (``schema`` :data:`BEST_CONFIGS_SCHEMA`): ``configurations[0]``
    is the winner; ``trading_params`` and ``entry_model`` repeat it in the shape the production
    code loads; ``deployment`` is the gate's decision on it and ``baselines`` what it was
    measured against (:mod:`cryptosweep.judging.deployment`).

    Each configuration is the run's top-k entry (params, budget, seed, score, metrics with
    ``rounds``, holdout, ...) plus ``objective_spec`` (the run's
    :class:`~cryptosweep.core.config.ObjectiveSpec` payload: labels, fees, slippage, shorts, rounds
    per unit, threads, the data path, loader options and holdout fraction) and ``data`` (the
    swept data: :data:`BEST_CONFIGS_DATA_KEYS`), so that one entry alone is enough to train
    the model it describes: ``train_model(best["configurations"][0])``; and its ``edge`` over
    the baselines."""
    from cryptosweep.core.config_files import validate_config

    spec = validate_config(results["config"], "results config").objective_spec().to_payload()
    data = {key: (results.get("data") or {}).get(key) for key in BEST_CONFIGS_DATA_KEYS}
    top = [{**item, "objective_spec": spec, "data": data} for item in results["top_k"]]
    winner = top[0] if top else None
    return {
        "schema": BEST_CONFIGS_SCHEMA,
        "configurations": top,
        "trading_params": winner["params"]["trading"] if winner else {},
        "entry_model": {
            "family": winner["params"]["model"],
            "params": winner["params"]["entry_model"],
            "rounds": winner["metrics"].get("rounds"),
            "seed": winner["seed"],
            "framework_params": framework_params,
        } if winner else {},
        "seed": results["seed"],
        "config_hash": results["config_hash"],
        "baselines": results.get("baselines"),
        "deployment": results.get("deployment"),
        "source_run": results["run"]["name"],
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def resource_usage(
    rows: list[EvaluationRow], samples: list[tuple[float, str, dict[str, Any]]]
) -> dict[str, Any]:
    """Host/GPU samples and, from the evaluations' start and end, each worker's busy time."""
    timeline = [
        {"eval_id": r.eval_id, "worker": r.worker, "device": r.device,
         "start": r.started_at, "end": r.finished_at}
        for r in rows if r.started_at is not None and r.finished_at is not None
    ]
    workers: dict[str, dict[str, Any]] = {}
    for item in timeline:
        entry = workers.setdefault(str(item["worker"]), {
            "evaluations": 0, "busy_s": 0.0, "first_start": item["start"], "last_end": item["end"],
        })
        entry["evaluations"] += 1
        entry["busy_s"] += item["end"] - item["start"]
        entry["first_start"] = min(entry["first_start"], item["start"])
        entry["last_end"] = max(entry["last_end"], item["end"])
    for entry in workers.values():
        span = entry["last_end"] - entry["first_start"]
        entry["utilisation"] = entry["busy_s"] / span if span > 0 else None
    return {
        "samples": [{"ts": ts, "source": source, **payload} for ts, source, payload in samples],
        "workers": workers,
        "timeline": timeline,
    }


def _per_year(results: dict[str, Any]) -> str:
    data = results.get("data") or {}
    if data.get("periods_per_year") is None:
        return "the bar interval's periods per year"
    year = float(data["periods_per_year"])
    text = f"{year:.6g} bars of {data['bar_interval']} a year"
    around = periods_per_year(parse_interval(str(data["bar_interval"])))
    if not math.isclose(year, around, rel_tol=1e-9):
        text += (f" (a market closed at weekends: the data's own density, not the {around:g} "
                 "of a market open around the clock)")
    return text


def text_report(results: dict[str, Any]) -> str:
    """A short human-readable summary of a run, led by its verdict
    (:func:`cryptosweep.judging.verdict.verdict`: the deployment gate's decision) and the gate's
    criteria one by one."""
    run, counts = results["run"], results["counts"]
    trained = results["compute_spent"]["total"]
    metric = results["config"]["objective"]["metric"]
    min_trades = min_trades_of(results)
    lines = [
        *verdict_lines(verdict(results)),
        *criterion_lines(results.get("deployment")),
        "",
        f"cryptosweep run {run['name']}",
        "=" * (17 + len(run["name"])),
        f"sweep type     : {results['sweep_type']}",
        f"seed           : {results['seed']}",
        f"config hash    : {results['config_hash'][:16]}",
        f"evaluations    : {counts['evaluations']} ({counts['done']} done, "
        f"{counts['failed']} failed, {run.get('retried', 0)} retried)",
        f"budget spent   : {results['budget_spent']:g} units ({trained:g} trained; "
        + ("promotions continued from checkpoints)" if trained < results["budget_spent"]
           else "every evaluation trained from scratch)"),
        f"wall time      : {wall_time(run) or MISSING}",
        "",
        f"top {len(results['top_k'])} (validation = mean over walk-forward folds of {metric} "
        f"± its standard deviation across folds; annualised with {_per_year(results)}; "
        f"† or 'small sample' = fewer than {min_trades} trades):",
    ]
    for item in results["top_k"]:
        lines += _top_item_lines(item, metric, min_trades)
    lines += _baseline_lines(results)
    overfitting = results.get("overfitting") or {}
    dsr, pbo = overfitting.get("dsr") or {}, overfitting.get("pbo") or {}
    if dsr.get("dsr") is not None or pbo:
        lines.append("")
        lines.append(f"overfitting ({overfitting.get('n_full_budget', '?')} configurations at "
                     f"the full budget, {overfitting['n_configurations']} tried):")
        if dsr.get("dsr") is not None:
            lines.append(f"  deflated Sharpe ratio of the search's best among the full-budget "
                         f"ones: {dsr['dsr']:.3f} "
                         f"(PSR vs 0: {dsr['psr']:.3f}; expected max Sharpe of the trials "
                         f"under the null: {dsr['sr0']:.4f} per bar)")
        if pbo:
            lines.append(f"  probability of backtest overfitting (CSCV, {pbo['n_splits']} "
                         f"blocks): {pbo['pbo']:.3f}")
    rows = explained(results)
    if rows:
        lines += ["", "what the numbers say:"]
        width = max(len(row.name) for row in rows)
        lines += [f"  {row.name:<{width}}  {row.value}: {row.meaning}" for row in rows]
    checks = results.get("reproducibility_check") or []
    if checks:
        lines += ["", "reproducibility (the winner's deployed path replayed from scratch with "
                      "its recorded seed):"]
        lines += [f"  eval {c['eval_id']}: {c['status']}" for c in checks]
    failures = [e for e in results["evaluations"] if e["status"] == "failed"]
    if failures:
        lines += ["", f"failures ({len(failures)}):"]
        lines += [f"  eval {e['eval_id']}: {e['error']}" for e in failures[:20]]
    return "\n".join(lines) + "\n"


def _baseline_lines(results: dict[str, Any]) -> list[str]:
    baselines = results.get("baselines")
    if not baselines:
        return []
    metric = results["config"]["objective"]["metric"]
    lines = ["", f"baselines ({metric} on the same test blocks and holdout, same fees and "
                 "slippage; a winner that does not beat flat has no edge):"]
    for name, label in (("flat", "flat (never trade)"), ("buy_and_hold", "buy-and-hold")):
        baseline = baselines[name]
        holdout = baseline.get("holdout") or {}
        lines.append(
            f"  {label:<18} validation {baseline['score']:+.3f}"
            + (f"  holdout {holdout[f'holdout_{metric}']:+.3f} ({holdout['holdout_trades']} "
               f"trade{'' if holdout['holdout_trades'] == 1 else 's'})" if holdout else ""))
    return lines


def verdict_lines(decided: Verdict) -> list[str]:
    """The verdict as the first lines of the text report."""
    lines = [f"VERDICT: {decided.label} ({decided.basis})", f"  {decided.reason}",
             f"  {decided.headline()}"]
    lines += [f"  ! {flag}" for flag in decided.flags]
    return lines


def _top_item_lines(item: dict[str, Any], metric: str, min_trades: int) -> list[str]:
    metrics = item.get("metrics") or {}
    holdout = item.get("holdout") or {}
    scores = fold_scores(metrics, metric)
    stability = fold_stability(scores) if scores else None
    spread = f" ± {stability.spread:.2f}" if stability and len(scores) > 1 else ""
    text = (f"  #{item['rank']} eval {item['eval_id']:>4}  {item['params']['model']:<9}"
            f" validation {signed(item['score'])}{spread}")
    if scores:
        trades = fold_trades(metrics)
        marked = [signed(score) + ("†" if k < len(trades) and small_sample(trades[k], min_trades)
                                   else "") for k, score in enumerate(scores)]
        text += f" (folds {' '.join(marked)})"
    if f"holdout_{metric}" in holdout:
        trades = holdout.get("holdout_trades")
        text += (f"  holdout {signed(holdout[f'holdout_{metric}'])} ({trades} trades"
                 + (", small sample)" if small_sample(trades, min_trades) else ")"))
    if (item.get("edge") or {}).get("label"):  # does not beat never trading
        text += f"  [{item['edge']['label']}]"
    lines = [text]
    if metrics.get("penalty"):
        lines.append(f"      penalty: {metrics['penalty']}")
    if stability and stability.note():
        lines.append(f"      unstable: {stability.note()}")
    lines.append(f"      trading: {', '.join(param_lines(item['params']['trading']))}")
    lines.append(f"      model:   {', '.join(param_lines(item['params']['entry_model']))}")
    return lines


# ------------------------------------------------------------------------ reading a run back


@dataclass(frozen=True)
class RunView:
    """A finished run as the analysis notebook reads it (read-only)."""

    run_dir: Path
    results: dict[str, Any]
    resource_usage: dict[str, Any]
    environment: dict[str, Any]
    journal: Journal


def latest_file(run_dir: Path, pattern: str) -> Path:
    """The newest file matching ``pattern`` (timestamps sort), or a clear error."""
    from cryptosweep.core.errors import UserError

    matches = sorted(Path(run_dir).glob(pattern))
    if not matches:
        raise UserError(f"{run_dir}: no {pattern} (is this a finished cryptosweep run folder?)")
    return matches[-1]


def load_run(run_dir: str | Path) -> RunView:
    """Open a finished run folder: its results, resource usage, environment
    (:data:`RUN_VIEW_GLOBS`) and journal."""
    from cryptosweep.core.errors import UserError

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir} is a file, not a run folder" if run_dir.exists()
                        else f"run folder not found: {run_dir}")
    results = json.loads(latest_file(run_dir, RESULTS_GLOB).read_text())
    usage = json.loads(latest_file(run_dir, RESOURCE_USAGE_GLOB).read_text())
    environment = json.loads(latest_file(run_dir, ENVIRONMENT_GLOB).read_text())
    return RunView(run_dir=run_dir, results=results, resource_usage=usage,
                   environment=environment, journal=Journal.open_existing(run_dir))
