"""Search efficiency at equal compute: best validation score reached against compute spent.

Strategies, each on the real objective (bundled Binance BTC/USDT 1h sample, LightGBM entry
model + trading parameters, 4 purged walk-forward folds) with the same search space:

* ours: Hyperband, BOHB (Hyperband + TPE), random search, Bayesian (TPE, batches of 4);
* the peer: Optuna's own ``TPESampler`` + ``HyperbandPruner`` through ``study.optimize``,
  reporting the validation score at the same rungs (1, 3, 9, 27 units) and pruned by Optuna.

Compute is counted in budget units (1 unit = ``rounds_per_unit`` boosting rounds, retraining
from scratch at every rung, for everyone). Every strategy gets the compute of our Hyperband
run (``--iterations`` passes over its brackets); the best score counts only evaluations at
the full budget R, the only ones comparable with each other. 5 seeds each by default.

    .venv/bin/python benchmarks/search_efficiency.py [--seeds 5] [--iterations 1]
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import math
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cryptosweep.core.config_files import load_config
from cryptosweep.records.journal import Journal
from cryptosweep.strategies.hyperband import hyperband_brackets
from cryptosweep.strategies.optuna_space import suggest_point
from cryptosweep.strategies.space import SearchSpace
from cryptosweep.sweep.runner import SweepResult, run_sweep
from cryptosweep.trading.objective import evaluate_trial
from machine import BENCHMARK_RANGES, describe

HERE = Path(__file__).resolve().parent
MAX_ITER, ETA, ROUNDS_PER_UNIT = 27, 3, 4.0
CONFIG = {
    "name": "search_efficiency",
    # every rung retrains from scratch, as Optuna's pruned trials do: equal compute means equal
    # training, and LightGBM with sampling continued from a checkpoint is not the same model
    "hyperband": {"max_iter": MAX_ITER, "eta": ETA, "continue_training": False},
    "parameter_ranges": copy.deepcopy(BENCHMARK_RANGES),
    "objective": {"folds": 4, "rounds_per_unit": ROUNDS_PER_UNIT, "slippage_bps": 2.0},
    "reporting": {"top_k": 1},
    "data": {"holdout_fraction": 0.2},
}
OURS = {
    "hyperband": {"sweep_type": "hyperband"},
    "bohb": {"sweep_type": "hyperband", "hyperband": {"sampler": "tpe"}},
    "random": {"sweep_type": "random"},
    "bayesian_tpe": {"sweep_type": "bayesian"},
}


def hyperband_budget(iterations: int, max_iter: int = MAX_ITER, eta: int = ETA) -> float:
    per_pass = sum(r.n_configs * r.resource for b in hyperband_brackets(max_iter, eta)
                   for r in b.rungs)
    return iterations * per_pass


def curve_from_store(db: Path, full_budget: float = MAX_ITER) -> list[tuple[float, float]]:
    """(compute spent, best full-budget score so far) after each evaluation, in eval order."""
    journal = Journal(db)
    spent, best, points = 0.0, -math.inf, []
    for row in journal.evaluations():
        spent += row.budget
        if row.status == "done" and row.budget == full_budget and row.score is not None:
            best = max(best, row.score)
        points.append((spent, best))
    journal.close()
    return points


def sweep_raw(name: str, budget: float, base: dict[str, Any] | None = None,
              strategies: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The raw config of strategy ``name`` (a key of ``strategies``, default :data:`OURS`) on
    ``base`` (default :data:`CONFIG`) at ``budget`` units: random and Bayesian get
    ``floor(budget / R)`` full-budget trials, Hyperband ``budget`` / one pass iterations."""
    raw = json.loads(json.dumps(CONFIG if base is None else base))
    for key, value in (OURS if strategies is None else strategies)[name].items():
        raw[key] = {**raw.get(key, {}), **value} if isinstance(value, dict) else value
    max_iter, eta = raw["hyperband"]["max_iter"], raw["hyperband"]["eta"]
    n_full = max(1, math.floor(budget / max_iter))
    raw["random"] = {"n_trials": n_full}
    raw["bayesian"] = {"n_trials": n_full, "batch_size": 4}
    raw["hyperband"]["iterations"] = round(budget / hyperband_budget(1, max_iter, eta))
    return raw


def sweep_ours(name: str, seed: int, budget: float, workdir: Path,
               base: dict[str, Any] | None = None,
               strategies: dict[str, dict[str, Any]] | None = None, workers: int = 2,
               run_name: str | None = None) -> tuple[list[tuple[float, float]], SweepResult]:
    """One sweep of ours (:func:`sweep_raw`): its curve (:func:`curve_from_store`) and the
    sweep's result (its results dict: the winner's holdout, the deployment gate)."""
    raw = sweep_raw(name, budget, base, strategies)
    config = load_config(raw=raw)
    result = run_sweep(config=config, seed=seed, log_dir=workdir,
                       run_name=run_name or f"{name}_{seed}", workers=workers,
                       show_progress=False)
    return curve_from_store(result.run_dir / "sweep.db", raw["hyperband"]["max_iter"]), result


def run_ours(name: str, seed: int, budget: float, workdir: Path) -> list[tuple[float, float]]:
    return sweep_ours(name, seed, budget, workdir)[0]


@dataclass
class OptunaRun:
    """An Optuna study's curve (as :func:`curve_from_store`'s) and its winner: the best score
    at the full budget within the budget (the first to reach it), its parameters and the seed
    it was scored with (the trial's number)."""

    curve: list[tuple[float, float]]
    best_score: float = -math.inf
    best_params: dict[str, Any] | None = None
    best_seed: int | None = None
    n_trials: int = 0


def optuna_search(seed: int, budget: float, base: dict[str, Any] | None = None, *,
                  pruned: bool = True, study_name: str | None = None) -> OptunaRun:
    """Optuna's ``TPESampler(seed=seed)`` through ``study.optimize`` on our objective.

    ``pruned``: with ``HyperbandPruner(1, R, eta)``, each trial scored from scratch at the
    rungs 1, eta, eta^2, ..., R and reported, until ``budget`` units are spent. Else Optuna's
    defaults (``create_study`` without a pruner, the objective reporting nothing): every trial
    at the full budget R, ``floor(budget / R)`` of them (random search's count)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    raw = CONFIG if base is None else base
    config = load_config(raw=raw)
    space, spec = SearchSpace.from_config(config), config.objective_spec()
    max_iter, eta = raw["hyperband"]["max_iter"], raw["hyperband"]["eta"]
    rungs = ([eta**i for i in range(round(math.log(max_iter, eta)) + 1)]  # 1, 3, 9, 27
             if pruned else [max_iter])
    run = OptunaRun(curve=[])
    spent, best = [0.0], [-math.inf]

    def objective(trial: optuna.Trial) -> float:
        params = suggest_point(trial, space)
        score = -math.inf
        for step in rungs:
            score = evaluate_trial(params, float(step), trial.number, spec)["score"]
            spent[0] += step
            if step == max_iter:
                best[0] = max(best[0], score)
                if spent[0] <= budget + 1e-9 and score > run.best_score:
                    run.best_score, run.best_params, run.best_seed = score, params, trial.number
            run.curve.append((spent[0], best[0]))
            if pruned:
                trial.report(score, step)
                if trial.should_prune():
                    raise optuna.TrialPruned()
        return score

    # HyperbandPruner assigns trials to brackets by a hash of the study name: a fixed name,
    # else Optuna draws a new one (uuid) per study and the run is not reproducible
    pruner = (optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max_iter,
                                             reduction_factor=eta) if pruned else None)
    study = optuna.create_study(
        study_name=study_name or f"search_efficiency_{seed}",
        direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed), pruner=pruner,
    )
    if pruned:
        study.optimize(objective, callbacks=[lambda s, t: spent[0] >= budget and s.stop()])
    else:
        study.optimize(objective, n_trials=max(1, math.floor(budget / max_iter)))
    run.n_trials = len(study.trials)
    return run


def run_optuna(seed: int, budget: float) -> list[tuple[float, float]]:
    return optuna_search(seed, budget).curve


def best_at(curve: list[tuple[float, float]], compute: float) -> float:
    reached = [best for spent, best in curve if spent <= compute + 1e-9]
    return reached[-1] if reached else -math.inf


def compute_to_reach(curve: list[tuple[float, float]], target: float) -> float | None:
    for spent, best in curve:
        if best >= target:
            return spent
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=1)
    parser.add_argument("--plot", default=str(HERE / "search_efficiency.png"))
    args = parser.parse_args()
    logging.getLogger("cryptosweep").setLevel(logging.WARNING)
    budget = hyperband_budget(args.iterations)
    curves: dict[str, list[list[tuple[float, float]]]] = {}
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        for name in (*OURS, "optuna_tpe_hyperband"):
            curves[name] = []
            for seed in range(1, args.seeds + 1):
                if name == "optuna_tpe_hyperband":
                    curves[name].append(run_optuna(seed, budget))
                else:
                    curves[name].append(run_ours(name, seed, budget, Path(tmp)))
    random_final = statistics.median(best_at(c, budget) for c in curves["random"])
    print(f"machine: {describe()}; {args.seeds} seeds; compute budget {budget:g} units "
          f"(= {budget / MAX_ITER:.1f} full-budget trials); wall {time.time() - started:.0f} s\n")
    print("| strategy | final best: median | min | max | compute to reach random's final "
          "median best (median over seeds; share of budget) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, runs in curves.items():
        finals = [best_at(c, budget) for c in runs]
        reach = [compute_to_reach(c, random_final) for c in runs]
        reached = [r for r in reach if r is not None]
        reach_text = (f"{statistics.median(reached):.0f} units ({len(reached)}/{len(reach)} "
                      f"seeds reached it; {statistics.median(reached) / budget:.0%})"
                      if reached else f"never (0/{len(reach)} seeds)")
        print(f"| {name} | {statistics.median(finals):+.3f} | {min(finals):+.3f} | "
              f"{max(finals):+.3f} | {reach_text} |")
    plot(curves, budget, args.plot)
    print(f"\nplot: {args.plot}")


def plot(curves: dict[str, list[list[tuple[float, float]]]], budget: float, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = np.linspace(0, budget, 200)
    figure, axis = plt.subplots(figsize=(8, 4.5))
    for name, runs in curves.items():
        values = np.array([[best_at(c, x) for x in grid] for c in runs])
        values[~np.isfinite(values)] = np.nan
        reached = ~np.isnan(values).all(axis=0)  # before any full-budget result: no point
        grid_r, values = grid[reached], values[:, reached]
        axis.plot(grid_r, np.nanmedian(values, axis=0), label=name)
        axis.fill_between(grid_r, np.nanmin(values, axis=0), np.nanmax(values, axis=0),
                          alpha=0.15)
    axis.set_xlabel("compute spent (budget units)")
    axis.set_ylabel("best validation Sharpe at full budget")
    axis.set_title("Search efficiency on BTC/USDT 1h (median and min-max over seeds)")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
