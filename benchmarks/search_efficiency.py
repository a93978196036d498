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
from pathlib import Path

import numpy as np

from cryptosweep.core.config_files import load_config
from cryptosweep.records.journal import Journal
from cryptosweep.strategies.hyperband import hyperband_brackets
from cryptosweep.strategies.optuna_space import suggest_point
from cryptosweep.strategies.space import SearchSpace
from cryptosweep.sweep.runner import run_sweep
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


def hyperband_budget(iterations: int) -> float:
    per_pass = sum(r.n_configs * r.resource for b in hyperband_brackets(MAX_ITER, ETA)
                   for r in b.rungs)
    return iterations * per_pass


def curve_from_store(db: Path) -> list[tuple[float, float]]:
    """(compute spent, best full-budget score so far) after each evaluation, in eval order."""
    journal = Journal(db)
    spent, best, points = 0.0, -math.inf, []
    for row in journal.evaluations():
        spent += row.budget
        if row.status == "done" and row.budget == MAX_ITER and row.score is not None:
            best = max(best, row.score)
        points.append((spent, best))
    journal.close()
    return points


def run_ours(name: str, seed: int, budget: float, workdir: Path) -> list[tuple[float, float]]:
    raw = json.loads(json.dumps(CONFIG))
    for key, value in OURS[name].items():
        raw[key] = {**raw.get(key, {}), **value} if isinstance(value, dict) else value
    n_full = max(1, math.floor(budget / MAX_ITER))
    raw["random"] = {"n_trials": n_full}
    raw["bayesian"] = {"n_trials": n_full, "batch_size": 4}
    raw["hyperband"]["iterations"] = round(budget / hyperband_budget(1))
    config = load_config(raw=raw)
    result = run_sweep(config=config, seed=seed, log_dir=workdir, run_name=f"{name}_{seed}",
                       workers=2, show_progress=False)
    return curve_from_store(result.run_dir / "sweep.db")


def run_optuna(seed: int, budget: float) -> list[tuple[float, float]]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = SearchSpace.from_config(load_config(raw=CONFIG))
    spec = load_config(raw=CONFIG).objective_spec()
    rungs = [ETA**i for i in range(round(math.log(MAX_ITER, ETA)) + 1)]  # 1, 3, 9, 27
    spent, best, points = [0.0], [-math.inf], []

    def objective(trial: optuna.Trial) -> float:
        params = suggest_point(trial, space)
        score = -math.inf
        for step in rungs:
            score = evaluate_trial(params, float(step), trial.number, spec)["score"]
            spent[0] += step
            if step == MAX_ITER:
                best[0] = max(best[0], score)
            points.append((spent[0], best[0]))
            trial.report(score, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return score

    # HyperbandPruner assigns trials to brackets by a hash of the study name: a fixed name,
    # else Optuna draws a new one (uuid) per study and the run is not reproducible
    study = optuna.create_study(
        study_name=f"search_efficiency_{seed}",
        direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.HyperbandPruner(min_resource=1, max_resource=MAX_ITER,
                                              reduction_factor=ETA),
    )
    study.optimize(objective, callbacks=[lambda s, t: spent[0] >= budget and s.stop()])
    return points


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
