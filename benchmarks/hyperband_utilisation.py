"""Worker utilisation of Hyperband: overlapping brackets against one bracket at a time, and
against Optuna's ``HyperbandPruner`` on the same workers.

Synchronous successive halving leaves workers idle: a rung is decided only when all of it is
in, and the last rungs of a bracket hold few evaluations (one, at the top of the largest
bracket). ``hyperband.overlap_brackets`` (the default) lets the workers run the next brackets'
evaluations meanwhile; what each evaluation is does not change (see
:class:`cryptosweep.strategies.hyperband.HyperbandSearch`). This measures what that buys.

*Sleep trials* (default): the real loop and journal (:class:`cryptosweep.sweep.runner.SweepLoop`, a
``Journal`` in a temp dir) on a real dask ``LocalCluster`` of W single-threaded worker
processes (``make_executor(W)``), with the worker function swapped for one that sleeps
``unit_s x budget`` (training time proportional to the budget, as boosting rounds are).
Hyperband with ``max_iter`` 27, ``eta`` 3, one iteration: 69 evaluations, 423 budget units.
Ideal wall = 423 x unit_s / W. Sleep, not a busy loop, so that W can exceed the cores.

The peer, in the same run: Optuna ``study.optimize(n_jobs=W)`` with ``RandomSampler`` and
``HyperbandPruner(min_resource=1, max_resource=27, reduction_factor=3)``, 49 trials (as many
configurations as our Hyperband samples), each sleeping ``unit_s`` per reported step until
pruned or at step 27. It is a different algorithm (asynchronous pruning, not synchronous
halving, and it spends a different amount of compute), so only its utilisation compares.

*Real trials* (``--real``): the demo config of ``make sweep`` (LightGBM/XGBoost on the bundled
BTC/USDT candles) through the same loop on 2 workers, overlap on and off; the two runs must give
identical scores per evaluation (checked).

Utilisation = seconds inside the trial function / (W x wall); wall is the search only.

    .venv/bin/python benchmarks/hyperband_utilisation.py [--unit-s 0.05] [--workers 2 4 8] \\
        [--real] [--markdown FILE]
"""

from __future__ import annotations

import argparse
import importlib
import io
import logging
import os
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# benchmarks/ is on sys.path (the script's folder) and on the dask workers' PYTHONPATH
from machine import BENCHMARK_RANGES, machine_line
from overhead import BenchDaskExecutor, bench_evaluation

HERE = Path(__file__).resolve().parent
SEED = 20261127
MAX_ITER, ETA = 27, 3


def budget_sleep(payload: dict[str, Any], unit_s: float) -> dict[str, Any]:
    """Stands in for ``run_evaluation``: sleeps ``unit_s`` per budget unit."""
    return bench_evaluation(payload, unit_s * payload["budget"])


@dataclass
class Row:
    runner: str
    workers: int
    wall_s: float
    busy_s: float
    units: float
    note: str = ""

    @property
    def utilisation(self) -> float:
        return self.busy_s / (self.workers * self.wall_s)


def sweep_config(overlap: bool, base: dict[str, Any] | None = None) -> Any:
    from cryptosweep.core.config_files import load_config, validate_config

    if base is None:
        raw = {
            "name": "hb-utilisation", "sweep_type": "hyperband",
            "hyperband": {"max_iter": MAX_ITER, "eta": ETA, "iterations": 1},
            "parameter_ranges": BENCHMARK_RANGES, "objective": {"models": ["lightgbm"]},
        }
        return validate_config({**raw, "hyperband": {**raw["hyperband"],
                                                     "overlap_brackets": overlap}})
    return load_config(base["path"], [f"hyperband.overlap_brackets={str(overlap).lower()}"])


def run_ours(executor: Any, config: Any, tmp: Path) -> tuple[float, float, float, list]:
    """One sweep through ``SweepLoop``: wall, busy seconds, budget units, (eval, score)s."""
    from cryptosweep.records.journal import Journal
    from cryptosweep.sweep.loop import SweepLoop

    journal = Journal(Path(tempfile.mkdtemp(dir=tmp)) / "sweep.db")
    loop = SweepLoop(config, SEED, journal, executor, show_progress=False)
    started = time.perf_counter()
    loop.run()
    wall = time.perf_counter() - started
    rows = journal.evaluations()
    journal.close()
    assert all(r.status == "done" for r in rows), "sweep incomplete"
    busy = sum(r.finished_at - r.started_at for r in rows)  # type: ignore[operator]
    scores = sorted((r.eval_id, r.score) for r in rows)
    return wall, busy, sum(r.budget for r in rows), scores


def optuna_hyperband(workers: int, unit_s: float, n_trials: int) -> Row:
    import optuna

    from cryptosweep.core.config_files import validate_config
    from cryptosweep.strategies.optuna_space import quiet_optuna, suggest_point
    from cryptosweep.strategies.space import SearchSpace

    space = SearchSpace.from_config(validate_config({
        "name": "x", "parameter_ranges": BENCHMARK_RANGES, "objective": {"models": ["lightgbm"]},
    }))
    spans: list[float] = []
    units: list[int] = []

    def objective(trial: optuna.Trial) -> float:
        point = suggest_point(trial, space)
        score = (zlib.crc32(str(point).encode()) % 10_007) / 10_007
        for step in range(1, MAX_ITER + 1):
            started = time.time()
            time.sleep(unit_s)
            spans.append(time.time() - started)
            units.append(1)
            trial.report(score * step / MAX_ITER, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return score

    with quiet_optuna():
        study = optuna.create_study(  # a fixed name: the pruner's brackets hash it
            study_name="hyperband_utilisation",
            direction="maximize", sampler=optuna.samplers.RandomSampler(seed=SEED),
            pruner=optuna.pruners.HyperbandPruner(min_resource=1, max_resource=MAX_ITER,
                                                  reduction_factor=ETA))
        started = time.perf_counter()
        study.optimize(objective, n_trials=n_trials, n_jobs=workers)
        wall = time.perf_counter() - started
    return Row("Optuna HyperbandPruner", workers, wall, sum(spans), len(units),
               f"{n_trials} trials, n_jobs={workers}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--unit-s", type=float, default=0.05, help="sleep per budget unit")
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 4, 8])
    parser.add_argument("--real", action="store_true", help="also the demo config, 2 workers")
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()

    sys.path.insert(0, str(HERE))
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(HERE), *filter(None, [os.environ.get("PYTHONPATH")])])
    module = importlib.import_module("hyperband_utilisation")
    logging.basicConfig(level=logging.WARNING)
    for name in ("distributed", "cryptosweep"):
        logging.getLogger(name).setLevel(logging.ERROR)

    from cryptosweep.execution.executors import DaskExecutor, make_executor
    from cryptosweep.strategies.hyperband import hyperband_brackets

    n_configs = sum(b.rungs[0].n_configs for b in hyperband_brackets(MAX_ITER, ETA))
    rows: list[Row] = []
    t_total = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cs_hb_util_") as tmp_name:
        tmp = Path(tmp_name)
        for workers in args.workers:
            base = make_executor(workers)
            assert isinstance(base, DaskExecutor)
            base.client.run(importlib.import_module, "hyperband_utilisation")
            executor = BenchDaskExecutor(base, module.budget_sleep, args.unit_s)
            try:
                scores = {}
                for overlap in (False, True):
                    wall, busy, units, scores[overlap] = run_ours(
                        executor, sweep_config(overlap), tmp)
                    rows.append(Row(f"ours, overlap_brackets={str(overlap).lower()}", workers,
                                    wall, busy, units))
                assert scores[False] == scores[True], "overlap changed the results"
            finally:
                executor.close()
            rows.append(optuna_hyperband(workers, args.unit_s, n_configs))
        if args.real:
            base_config = {"path": str(HERE.parent / "parameters" / "demo.yaml")}
            executor = make_executor(2)
            try:
                scores = {}
                for overlap in (False, True):
                    config = sweep_config(overlap, base_config)
                    wall, busy, units, scores[overlap] = run_ours(executor, config, tmp)
                    rows.append(Row(f"ours, overlap_brackets={str(overlap).lower()}", 2, wall,
                                    busy, units, "real trials: demo config (make sweep)"))
                assert scores[False] == scores[True], "overlap changed the results"
            finally:
                executor.close()

    out = io.StringIO()
    p = out.write
    p(machine_line() + "\n")
    p(f"Sleep trials: {args.unit_s:g} s per budget unit; Hyperband max_iter {MAX_ITER}, eta "
      f"{ETA}, 1 iteration (69 evaluations, 423 units, {n_configs} configurations). "
      f"Whole benchmark: {time.perf_counter() - t_total:.0f} s.\n\n")
    p("| runner | workers | wall s | ideal s | utilisation | units | wall vs one bracket at a "
      "time | note |\n|---|---:|---:|---:|---:|---:|---:|---|\n")
    sequential = {(r.workers, r.note): r.wall_s for r in rows
                  if r.runner.endswith("overlap_brackets=false")}
    for r in rows:
        ideal = r.units * (args.unit_s if not r.note.startswith("real") else 0) / r.workers
        ratio = sequential.get((r.workers, r.note))
        p(f"| {r.runner} | {r.workers} | {r.wall_s:.2f} | "
          f"{f'{ideal:.2f}' if ideal else '-'} | {r.utilisation:.1%} | {r.units:g} | "
          f"{f'{r.wall_s / ratio:.2f}x' if ratio and r.runner.startswith('ours') else '-'} | "
          f"{r.note} |\n")
    print(out.getvalue())
    if args.markdown:
        args.markdown.write_text(out.getvalue(), encoding="utf-8")


if __name__ == "__main__":
    main()
