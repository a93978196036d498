"""Scheduling overhead per trial and worker utilisation: ours against Optuna and Ray Tune.

The same trials everywhere: a search space of 8 dimensions (4 LightGBM + 4 trading), random
configurations, and a worker function that does no work (*trivial*) or ``time.sleep(1)``
(*1-second*; ``--spin`` busy-loops instead). Sleep is what measures scheduling: a busy loop on
a 2-core machine would also measure the fight for the cores between the trials and the
schedulers' own processes.

Ours goes through the real machinery: :class:`cryptosweep.sweep.runner.SweepLoop` with a
``RandomSearch`` strategy, journaling every step into a real :class:`Journal` (SQLite, WAL,
``synchronous=NORMAL``, one transaction per trial, a checksum per row, a WAL checkpoint every 5
s) and counting every finished trial in the run's trial ledger (``SearchLedger``: one
transaction per trial, before the journal's) in a temp dir, against the real
executors -- ``InProcessExecutor`` and a dask ``LocalCluster`` of 2 single-threaded worker
processes built by ``make_executor(2)``. The only substitution is the worker function: the
executor subclasses below send :func:`bench_evaluation` (same payload in, same dict shape out
as ``run_evaluation``) instead of ``run_evaluation``. It is sent to dask *by reference* as
``overhead.bench_evaluation``: this folder is put on ``sys.path`` and ``PYTHONPATH`` before the
cluster starts, so the worker processes import it (cloudpickle would send a function of
``__main__`` *by value*, which works too but ships the code with every task; the sizes are
printed).

Peers, on the same trials, in the same run:

* Optuna ``study.optimize`` with ``RandomSampler``: ``n_jobs=1`` against our in-process loop
  (in-memory storage, and SQLite ``RDBStorage`` -- the journaled like-for-like), ``n_jobs=2``
  against our 2-worker cluster;
* Ray Tune ``tune.Tuner`` with ``max_concurrent_trials=2`` on ``ray.init(num_cpus=2,
  include_dashboard=False)``, ``BasicVariantGenerator`` (random), ``reuse_actors=True``; and
  ``--ray-no-reuse N`` (default 10) trivial trials with Ray's default ``reuse_actors=False``,
  where every trial starts a fresh actor (seconds per trial on 2 cores).
* "dask alone": the same tasks through the bare ``distributed`` client of our cluster, without
  our loop and journal -- the floor our dask path stands on.

Definitions: ideal = n_trials x trial_time / workers; overhead per trial = (wall - ideal) /
n_trials; utilisation = time the workers spent inside the trial function / (workers x wall).
Wall is the search only (``SweepLoop.run``, ``study.optimize``, ``tuner.fit``); starting the
cluster (and for dask and Ray one warm-up that imports this module in the workers) is reported
as *startup*.

    .venv/bin/python benchmarks/overhead.py [--inproc-trials 2000] [--trials 200] \\
        [--sleep-trials 20] [--markdown benchmarks/overhead_results.md]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import cProfile
import importlib
import io
import logging
import os
import pstats
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptosweep.execution.executors import DaskExecutor, InProcessExecutor
from cryptosweep.execution.worker import Outcome, worker_name
from machine import (  # benchmarks/ is on sys.path (the script's folder)
    BENCHMARK_RANGES,
    filesystem,
    machine_line,
)

HERE = Path(__file__).resolve().parent
SEED = 20261127
WORKERS = 2
CONFIG: dict[str, Any] = {
    "name": "overhead",
    "sweep_type": "random",
    "hyperband": {"max_iter": 1},
    "parameter_ranges": copy.deepcopy(BENCHMARK_RANGES),
    "objective": {"models": ["lightgbm"]},
}


# ------------------------------------------------------------------ the worker function (all)


def bench_evaluation(payload: dict[str, Any], seconds: float = 0.0, spin: bool = False,
                     returns_bars: int = 0) -> dict[str, Any]:
    """Stands in for :func:`cryptosweep.execution.executors.run_evaluation`: the same payload in,
    the
    same dict out, after ``seconds`` of sleep (or of a busy loop with ``spin``)."""
    started = time.time()
    if seconds > 0:
        if spin:
            end = time.perf_counter() + seconds
            while time.perf_counter() < end:
                pass
        else:
            time.sleep(seconds)
    score = (payload["seed"] % 100_003) / 100_003
    return {
        "eval_id": payload["eval_id"],
        "status": "done",
        "score": score,
        "metrics": {"score": score, "sharpe": score, "n_trades": 0},
        "error": None,
        "worker": worker_name(),
        "device": "cpu",
        "started_at": started,
        "finished_at": time.time(),
        "returns": [0.0] * returns_bars if returns_bars else None,
    }


def ray_trainable(config: dict[str, Any]) -> None:
    """Ray Tune function trainable running the same trial."""
    from ray import tune

    seed = hash(tuple(sorted((k, v) for k, v in config.items()))) % 2**31
    out = bench_evaluation({"eval_id": 0, "seed": seed}, config["seconds"], config["spin"])
    tune.report({"score": out["score"], "started_at": out["started_at"],
                 "finished_at": out["finished_at"]})


# ------------------------------------------------------------ our executors, function swapped


class BenchInProcessExecutor(InProcessExecutor):
    """``InProcessExecutor`` running ``fn`` instead of ``run_evaluation``."""

    def __init__(self, fn: Callable[..., dict[str, Any]], *args: Any) -> None:
        super().__init__()
        self.fn, self.args = fn, args

    def wait(self) -> list[Outcome]:
        return [Outcome.from_dict(self.fn(self._queue.popleft(), *self.args))]


class BenchDaskExecutor(DaskExecutor):
    """``DaskExecutor`` (from ``make_executor``) submitting ``fn`` instead of ``run_evaluation``."""

    def __init__(self, base: DaskExecutor, fn: Callable[..., dict[str, Any]], *args: Any) -> None:
        super().__init__(base.client, base.cluster, base.description, base.trial_timeout)
        self.fn, self.args = fn, args
        self.waited = 0.0  # seconds the loop spent blocked in wait()

    def wait(self) -> list[Outcome]:
        started = time.perf_counter()
        try:
            return super().wait()
        finally:
            self.waited += time.perf_counter() - started

    def submit(self, payload: dict[str, Any]) -> None:
        future = self.client.submit(
            self.fn, payload, *self.args, key=f"eval-{payload['eval_id']}-{payload['attempt']}",
            pure=False,
        )
        self._futures[future] = (payload["eval_id"], time.time())


# ----------------------------------------------------------------------------- measurements


@dataclass
class Timing:
    """One search: wall seconds, seconds inside the trial function (all trials), seconds from
    the start of the search to the start of its first trial, the journal's transactions."""

    wall: float
    busy: float
    first: float
    calls: list[float] = field(default_factory=list)
    commits: int = 0  # transactions the journal committed


def timing(t0: float, wall: float, spans: Iterable[tuple[float, float]],
           calls: list[float] | None = None) -> Timing:
    """``t0``: ``time.time()`` at the start; ``spans``: (started_at, finished_at) per trial."""
    spans = list(spans)
    return Timing(wall, sum(end - start for start, end in spans),
                  min(start for start, _ in spans) - t0, calls or [])


@dataclass
class Row:
    group: str  # "in-process" | "2 workers"
    runner: str
    trials: int
    trial_s: float
    workers: int
    startup_s: float
    run: Timing
    note: str = ""
    baseline: bool = False  # ours: the row the peers of its group are compared with

    @property
    def wall_s(self) -> float:
        return self.run.wall

    @property
    def busy_s(self) -> float:
        return self.run.busy

    @property
    def steady_ms(self) -> float:
        """Overhead per trial once the first trial has started."""
        return (self.wall_s - self.run.first - self.ideal_s) / self.trials * 1e3

    @property
    def ideal_s(self) -> float:
        return self.trials * self.trial_s / self.workers

    @property
    def overhead_ms(self) -> float:
        return (self.wall_s - self.ideal_s) / self.trials * 1e3

    @property
    def utilisation(self) -> float:
        return self.busy_s / (self.workers * self.wall_s)


def _timed(journal: Any, names: tuple[str, ...]) -> list[float]:
    """Record the duration of every call of ``store``'s methods ``names`` (one transaction
    each) into the returned list."""
    calls: list[float] = []
    for name in names:
        method = getattr(journal, name)

        def wrapper(*args: Any, _method: Any = method, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return _method(*args, **kwargs)
            finally:
                calls.append(time.perf_counter() - started)

        setattr(journal, name, wrapper)
    return calls


JOURNAL_CALLS = ("add_evaluation", "mark_submitted", "finish_evaluation")
#: The journal's own level first; FULL (one fsync per commit) and OFF for comparison.
SYNC_MODES = ("NORMAL", "FULL", "OFF")
#: The in-process loop without its trial ledger: what counting every trial costs.
NO_LEDGER = "without its trial ledger"


def run_ours(executor: Any, n_trials: int, tmp: Path, synchronous: str = "NORMAL",
             profile: cProfile.Profile | None = None, ledger: bool = True) -> Timing:
    """One sweep through ``SweepLoop`` into a fresh journal (``ledger``: counting its trials in
    a trial ledger as the runner's loop does; without it, the ledger's share shows)."""
    from cryptosweep.core.config_files import validate_config
    from cryptosweep.records.journal import Journal
    from cryptosweep.sweep.evidence import SearchLedger
    from cryptosweep.sweep.loop import SweepLoop
    from cryptosweep.trading.objective import check_spec

    config = validate_config({**CONFIG, "random": {"n_trials": n_trials}})
    folder = Path(tempfile.mkdtemp(dir=tmp))
    journal = Journal(folder / "sweep.db")
    if synchronous != "NORMAL":
        journal._conn.execute(f"PRAGMA synchronous={synchronous}")
    calls = _timed(journal, JOURNAL_CALLS)
    # The trial ledger the runner gives the loop (the run folder's: no models folder here).
    journal.set_meta(created_at=time.time(), data=check_spec(config.objective_spec()))
    counter = SearchLedger(config, folder, journal) if ledger else None
    loop = SweepLoop(config, SEED, journal, executor, show_progress=False, ledger=counter)
    t0, started = time.time(), time.perf_counter()
    if profile is not None:
        profile.enable()
    loop.run()
    if counter is not None:
        counter.close()
    if profile is not None:
        profile.disable()
    wall = time.perf_counter() - started
    commits = journal.commits
    rows = journal.evaluations()
    journal.close()
    assert len(rows) == n_trials and all(r.status == "done" for r in rows), "sweep incomplete"
    out = timing(t0, wall, ((r.started_at, r.finished_at) for r in rows), calls)  # type: ignore[misc]
    out.commits = commits
    return out


def median_run(runs: list[Timing]) -> Timing:
    return sorted(runs, key=lambda r: r.wall)[len(runs) // 2]


def spread(runs: list[Timing], n_trials: int) -> str:
    walls = ", ".join(f"{r.wall / n_trials * 1e3:.2f}" for r in runs)
    return f"median of {len(runs)}: {walls} ms/trial" if len(runs) > 1 else ""


def strategy_cost(n_trials: int) -> float:
    """Seconds per ask + tell of the ``RandomSearch`` strategy alone (no journal, no trial)."""
    from cryptosweep.core.config_files import validate_config
    from cryptosweep.strategies import EvalResult, make_strategy

    strategy = make_strategy(validate_config({**CONFIG, "random": {"n_trials": n_trials}}), SEED)
    started = time.perf_counter()
    while (request := strategy.ask()) is not None:
        strategy.tell(EvalResult(request.eval_id, request.trial_id, "done", 0.5))
    return (time.perf_counter() - started) / n_trials


def fsync_cost(tmp: Path, n: int = 200) -> float:
    """Seconds per empty-ish committed transaction in WAL + synchronous=FULL (one fsync)."""
    conn = sqlite3.connect(tmp / "fsync.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE t (x INTEGER)")
    started = time.perf_counter()
    for i in range(n):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t VALUES (?)", (i,))
        conn.execute("COMMIT")
    elapsed = (time.perf_counter() - started) / n
    conn.close()
    return elapsed


def dask_alone(client: Any, fn: Callable[..., dict[str, Any]], n_trials: int, in_flight: int
               ) -> Timing:
    """The same tasks through a bare ``distributed`` client (``wait(FIRST_COMPLETED)``, as
    ``DaskExecutor.wait`` does, ``in_flight`` at a time), without our loop and journal."""
    from distributed import wait

    def submit(i: int) -> Any:
        return client.submit(fn, {"eval_id": i, "seed": i}, key=f"alone-{i}", pure=False)

    t0, started = time.time(), time.perf_counter()
    futures = {submit(i) for i in range(min(in_flight, n_trials))}
    submitted, spans = len(futures), []
    while futures:
        done, _ = wait(list(futures), return_when="FIRST_COMPLETED")
        for future in done:
            out = future.result()
            spans.append((out["started_at"], out["finished_at"]))
            futures.discard(future)
            if submitted < n_trials:
                futures.add(submit(submitted))
                submitted += 1
    return timing(t0, time.perf_counter() - started, spans)


def optuna_run(n_trials: int, n_jobs: int, seconds: float, spin: bool,
               storage: str | None = None) -> tuple[float, Timing]:
    import optuna

    from cryptosweep.core.config_files import validate_config
    from cryptosweep.strategies.optuna_space import quiet_optuna, suggest_point
    from cryptosweep.strategies.space import SearchSpace

    space = SearchSpace.from_config(validate_config(CONFIG))
    spans: list[tuple[float, float]] = []

    def objective(trial: optuna.Trial) -> float:
        suggest_point(trial, space)
        out = bench_evaluation({"eval_id": trial.number, "seed": trial.number}, seconds, spin)
        spans.append((out["started_at"], out["finished_at"]))
        return out["score"]

    with quiet_optuna():
        started = time.perf_counter()
        study = optuna.create_study(direction="maximize", storage=storage,
                                    sampler=optuna.samplers.RandomSampler(seed=SEED))
        startup = time.perf_counter() - started
        t0, started = time.time(), time.perf_counter()
        study.optimize(objective, n_trials=n_trials, n_jobs=n_jobs)
        wall = time.perf_counter() - started
    assert len(spans) == n_trials
    return startup, timing(t0, wall, spans)


def ray_param_space(seconds: float, spin: bool) -> dict[str, Any]:
    from ray import tune

    from cryptosweep.core.config_files import validate_config
    from cryptosweep.core.settings import FloatDimension
    from cryptosweep.strategies.space import SearchSpace

    space = SearchSpace.from_config(validate_config(CONFIG))
    out: dict[str, Any] = {"seconds": seconds, "spin": spin}
    for prefix, dims in (("lightgbm", space.families["lightgbm"]), ("trading", space.trading)):
        for name, dim in dims.items():
            if isinstance(dim, FloatDimension):
                out[f"{prefix}.{name}"] = (tune.loguniform if dim.log else tune.uniform)(
                    dim.low, dim.high)
            else:
                out[f"{prefix}.{name}"] = (tune.lograndint if dim.log else tune.randint)(
                    dim.low, dim.high + 1)
    return out


def ray_run(trainable: Any, n_trials: int, seconds: float, spin: bool, tmp: Path,
            reuse_actors: bool = True) -> Timing:
    from ray import tune

    tuner = tune.Tuner(
        trainable, param_space=ray_param_space(seconds, spin),
        tune_config=tune.TuneConfig(num_samples=n_trials, max_concurrent_trials=WORKERS,
                                    reuse_actors=reuse_actors, metric="score", mode="max"),
        run_config=tune.RunConfig(storage_path=str(tmp / "ray_results"), verbose=0),
    )
    t0, started = time.time(), time.perf_counter()
    results = tuner.fit()
    wall = time.perf_counter() - started
    assert len(results) == n_trials and results.num_errors == 0, "ray trials failed"
    return timing(t0, wall, ((r.metrics["started_at"], r.metrics["finished_at"])
                             for r in results))


# ------------------------------------------------------------------------------- environment


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    for name in ("distributed", "ray", "ray.tune", "ray.train"):
        logging.getLogger(name).setLevel(logging.ERROR)
    yield


# ----------------------------------------------------------------------------------- report


def _trial(r: Row) -> str:
    return "trivial" if r.trial_s == 0 else f"{r.trial_s:g} s"


def _name(r: Row) -> str:
    return f"{r.runner} ({r.note})" if r.note else r.runner


def fmt_table(rows: list[Row]) -> str:
    lines = [
        "| group | runner | trials | trial | workers | startup s | wall s | ideal s "
        "| 1st trial after s | overhead ms/trial | steady ms/trial | utilisation |",
        "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r.group} | {_name(r)} | {r.trials} | {_trial(r)} | {r.workers} "
            f"| {r.startup_s:.2f} | {r.wall_s:.2f} | {r.ideal_s:.2f} | {r.run.first:.3f} "
            f"| {r.overhead_ms:.2f} | {r.steady_ms:.2f} | {r.utilisation:.1%} |"
        )
    return "\n".join(lines)


def fmt_ratios(rows: list[Row]) -> str:
    lines = ["| setting | peer | peer / ours overhead | peer / ours steady | ours util. "
             "| peer util. |", "| --- | --- | ---: | ---: | ---: | ---: |"]
    for r in rows:
        ours = next((o for o in rows if o.baseline and o.group == r.group
                     and o.trial_s == r.trial_s), None)
        if r.baseline or r.runner.startswith("ours") or ours is None:
            continue
        ratio = r.overhead_ms / ours.overhead_ms if ours.overhead_ms > 0 else float("inf")
        steady = r.steady_ms / ours.steady_ms if ours.steady_ms > 0 else float("inf")
        lines.append(f"| {ours.runner}, {_trial(r)} | {_name(r)} | {ratio:.2f}x | {steady:.2f}x "
                     f"| {ours.utilisation:.1%} | {r.utilisation:.1%} |")
    return "\n".join(lines)


def top_profile(profile: cProfile.Profile, n_trials: int, limit: int = 14) -> str:
    stats = pstats.Stats(profile)
    entries = []
    for (file, line, func), (_, ncalls, tottime, cumtime, _) in stats.stats.items():  # type: ignore[attr-defined]
        where = f"{Path(file).name}:{line}({func})" if line else func
        entries.append((tottime, cumtime, ncalls, where))
    entries.sort(reverse=True)
    out = [f"{'self ms/trial':>14} {'cum ms/trial':>13} {'calls/trial':>12}  function"]
    for tottime, cumtime, ncalls, where in entries[:limit]:
        out.append(f"{tottime / n_trials * 1e3:14.4f} {cumtime / n_trials * 1e3:13.4f} "
                   f"{ncalls / n_trials:12.1f}  {where}")
    return "\n".join(out)


# -------------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inproc-trials", type=int, default=2000)
    parser.add_argument("--trials", type=int, default=200, help="trivial trials on 2 workers "
                        "(and for Optuna with SQLite storage)")
    parser.add_argument("--sleep-trials", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3,
                        help="interleaved repeats of the in-process runs (median counts)")
    parser.add_argument("--trial-seconds", type=float, default=1.0)
    parser.add_argument("--spin", action="store_true", help="busy loop instead of sleep")
    parser.add_argument("--returns-bars", type=int, default=5000,
                        help="per-bar returns journaled in the extra in-process row (0: skip)")
    parser.add_argument("--ray-no-reuse", type=int, default=10,
                        help="also run this many trivial trials with reuse_actors=False")
    parser.add_argument("--no-ray", action="store_true")
    parser.add_argument("--markdown", type=Path, help="also write the report to this file")
    args = parser.parse_args()

    # Make this module importable as `overhead` by the dask and Ray worker processes.
    sys.path.insert(0, str(HERE))
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(HERE), *filter(None, [os.environ.get("PYTHONPATH")])])
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    module = importlib.import_module("overhead")
    fn = module.bench_evaluation
    logging.basicConfig(level=logging.WARNING)
    t_total = time.perf_counter()
    load_before = os.getloadavg()[0]
    rows: list[Row] = []
    notes: list[str] = []
    sleep = args.trial_seconds
    spin = args.spin

    with tempfile.TemporaryDirectory(prefix="cs_overhead_") as tmp_name, quiet():
        tmp = Path(tmp_name)
        import cloudpickle

        notes.append(
            f"pickled worker function: by reference `overhead.bench_evaluation` "
            f"{len(cloudpickle.dumps(fn))} bytes; the same function from `__main__` is pickled "
            f"by value by cloudpickle: {len(cloudpickle.dumps(bench_evaluation))} bytes")

        # --- ours, in-process: the real loop and journal, and the same with less fsync;
        # interleaved repeats, the median run of each kind counts (the disk is shared).
        n = args.inproc_trials
        run_ours(BenchInProcessExecutor(fn), 20, tmp)  # warm-up: imports, first trial
        runs: dict[str, list[Timing]] = {}
        for _ in range(args.repeats):
            for sync in SYNC_MODES:
                runs.setdefault(sync, []).append(
                    run_ours(BenchInProcessExecutor(fn), n, tmp, synchronous=sync))
            runs.setdefault(NO_LEDGER, []).append(
                run_ours(BenchInProcessExecutor(fn), n, tmp, ledger=False))
        split = {sync: median_run(results) for sync, results in runs.items()}
        rows.append(Row("in-process", "ours InProcessExecutor", n, 0.0, 1, 0.0, split["NORMAL"],
                        note=spread(runs["NORMAL"], n), baseline=True))
        rows.append(Row("in-process", "ours InProcessExecutor", n, 0.0, 1, 0.0, split[NO_LEDGER],
                        note=f"{NO_LEDGER}, {spread(runs[NO_LEDGER], n)}"))
        ask_tell = strategy_cost(n)
        fsync = fsync_cost(tmp)
        profile = cProfile.Profile()
        n_prof = min(n, 500)
        run_ours(BenchInProcessExecutor(fn), n_prof, tmp, profile=profile)
        if args.returns_bars:
            n_ret = min(n, 500)
            run = run_ours(BenchInProcessExecutor(fn, 0.0, False, args.returns_bars), n_ret, tmp)
            rows.append(Row("in-process", "ours InProcessExecutor", n_ret, 0.0, 1, 0.0, run,
                            note=f"+{args.returns_bars}-bar returns journaled per trial"))

        # --- Optuna, one thread
        optuna_runs = [optuna_run(n, 1, 0.0, spin) for _ in range(args.repeats)]
        run = median_run([r for _, r in optuna_runs])
        rows.append(Row("in-process", "Optuna n_jobs=1", n, 0.0, 1, optuna_runs[0][0], run,
                        note="in-memory storage" + (", " + spread([r for _, r in optuna_runs], n)
                                                    if args.repeats > 1 else "")))
        db = f"sqlite:///{tmp / 'optuna.db'}"
        startup, run = optuna_run(args.trials, 1, 0.0, spin, storage=db)
        rows.append(Row("in-process", "Optuna n_jobs=1", args.trials, 0.0, 1, startup, run,
                        note="SQLite RDBStorage"))

        # --- ours, dask LocalCluster of 2 worker processes (built by make_executor)
        from cryptosweep.execution.executors import make_executor

        started = time.perf_counter()
        base = make_executor(WORKERS)
        assert isinstance(base, DaskExecutor)
        base.client.run(importlib.import_module, "overhead")  # workers can import it: check
        startup = time.perf_counter() - started
        executor = BenchDaskExecutor(base, fn)
        try:
            run = run_ours(executor, args.trials, tmp)
            rows.append(Row("2 workers", "ours dask LocalCluster", args.trials, 0.0, WORKERS,
                            startup, run, baseline=True))
            dask_split = (run, executor.waited)
            run = dask_alone(base.client, fn, args.trials, executor.capacity)
            rows.append(Row("2 workers", "dask alone", args.trials, 0.0, WORKERS, startup, run,
                            note=f"bare client, {executor.capacity} in flight, no loop/journal"))
            executor.args = (sleep, spin)
            run = run_ours(executor, args.sleep_trials, tmp)
            rows.append(Row("2 workers", "ours dask LocalCluster", args.sleep_trials, sleep,
                            WORKERS, startup, run, baseline=True))
        finally:
            executor.close()

        # --- Optuna, two threads
        for count, seconds in ((args.trials, 0.0), (args.sleep_trials, sleep)):
            startup, run = optuna_run(count, WORKERS, seconds, spin)
            rows.append(Row("2 workers", "Optuna n_jobs=2", count, seconds, WORKERS, startup,
                            run))

        # --- Ray Tune, 2 concurrent trials on a local Ray of 2 CPUs
        if not args.no_ray:
            import ray

            started = time.perf_counter()
            ray.init(num_cpus=WORKERS, include_dashboard=False, log_to_driver=False,
                     logging_level=logging.ERROR, object_store_memory=256 * 2**20)
            ray_run(module.ray_trainable, WORKERS, 0.0, spin, tmp)  # warm-up: worker imports
            startup = time.perf_counter() - started
            try:
                for count, seconds in ((args.trials, 0.0), (args.sleep_trials, sleep)):
                    run = ray_run(module.ray_trainable, count, seconds, spin, tmp)
                    rows.append(Row("2 workers", "Ray Tune", count, seconds, WORKERS, startup,
                                    run, note="reuse_actors=True"))
                if args.ray_no_reuse:
                    run = ray_run(module.ray_trainable, args.ray_no_reuse, 0.0, spin, tmp,
                                  reuse_actors=False)
                    rows.append(Row("2 workers", "Ray Tune", args.ray_no_reuse, 0.0, WORKERS,
                                    startup, run, note="reuse_actors=False, Ray's default"))
            finally:
                ray.shutdown()

    per = 1e3 / n
    report = io.StringIO()
    p = report.write
    p(machine_line() + "\n")
    p(f"Journal on {filesystem(Path(tempfile.gettempdir()))}. Trials: "
      f"{'busy loop' if spin else 'time.sleep'} of {sleep:g} s, or trivial (return at once). "
      f"Load average before / after: {load_before:.2f} / {os.getloadavg()[0]:.2f}. "
      f"Total run {time.perf_counter() - t_total:.0f} s.\n\n")
    p(fmt_table(rows) + "\n\n")
    p("Ratios (overhead per trial of the peer / ours; >1: ours is lighter):\n\n")
    p(fmt_ratios(rows) + "\n\n")
    p(f"Split of our in-process overhead per trial ({n} trivial trials, median run of "
      f"{args.repeats} per mode; ms/trial; the journal committed "
      f"{split['NORMAL'].commits / n:g} transaction(s) per trial):\n\n")
    p("| synchronous | loop total | in the journal | rest of the loop "
      "| transaction median | p99 | max |\n")
    p("| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
    for sync in SYNC_MODES:
        w, calls = split[sync].wall, split[sync].calls
        j = sum(calls)
        q = sorted(calls)
        p(f"| {sync}{' (ours)' if sync == 'NORMAL' else ''} | {w * per:.3f} | {j * per:.3f} "
          f"| {(w - j) * per:.3f} | {q[len(q) // 2] * 1e3:.3f} | {q[int(len(q) * 0.99)] * 1e3:.3f} "
          f"| {q[-1] * 1e3:.1f} |\n")
    fsync_share = (sum(split["FULL"].calls) - sum(split["NORMAL"].calls)) * per
    p(f"\nWhat an fsync per commit would add (FULL - NORMAL journal time): {fsync_share:.3f} "
      f"ms/trial; one bare "
      f"committed transaction with WAL+FULL on this disk: {fsync * 1e3:.3f} ms (mean of 200). "
      f"RandomSearch ask+tell alone: {ask_tell * 1e3:.3f} ms/trial.\n\n")
    run, waited = dask_split
    per_dask = 1e3 / args.trials
    p(f"Our dask loop, {args.trials} trivial trials: {run.wall * per_dask:.2f} ms/trial = "
      f"blocked in `DaskExecutor.wait` {waited * per_dask:.2f} + journal "
      f"{sum(run.calls) * per_dask:.2f} + the rest "
      f"{(run.wall - waited - sum(run.calls)) * per_dask:.2f} (strategy, payloads, submit).\n\n")
    p(f"Profile of the in-process loop ({n_prof} trivial trials, synchronous=NORMAL; cProfile "
      "inflates Python-heavy parts), top functions by self time:\n\n```\n")
    p(top_profile(profile, n_prof) + "\n```\n\n")
    for note in notes:
        p(f"- {note}\n")
    text = report.getvalue()
    print(text)
    if args.markdown:
        args.markdown.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
