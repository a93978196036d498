"""What ``explore.watch`` costs the sweep it watches, and what one poll costs the watcher.

The sweep is the real CLI (``python -m cryptosweep run``) in its own process on
``parameters/demo.yaml`` made smaller (``--set hyperband.iterations=1``, in-process trials:
``--workers 0``), the way cron or a terminal starts one; the watcher runs in this process, as it
would in a notebook, with its widget drawing every poll. Three variants, interleaved
``--repeats`` times so that drift of a shared machine hits them alike:

* *unwatched*;
* *watched every 3 s* (the default interval);
* *watched every 0.1 s* (30x more often: a stress case).

The sweep's time is ``run.wall_time_s`` of its results file (the sweep itself, without the
interpreter's start); the results must be byte-identical (timing aside) in every variant. A
poll is timed on the finished journal: :func:`cryptosweep.explore.take_snapshot` alone (the
read-only SQLite reads) and :meth:`Watcher.poll` (reads + the three figures).

    .venv/bin/python benchmarks/explore_watch.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cryptosweep.explore import take_snapshot
from cryptosweep.explore.watch import Watcher
from machine import machine_line

REPO = Path(__file__).resolve().parents[1]
SWEEP = ["--config", str(REPO / "parameters" / "demo.yaml"), "--set", "hyperband.iterations=1",
         "--workers", "0", "--seed", "11", "--no-progress"]
VARIANTS = {"unwatched": None, "watched every 3 s": 3.0, "watched every 0.1 s": 0.1}


def results_of(run_dir: Path) -> dict:
    (path,) = run_dir.glob("sweep_results_*.json")
    return json.loads(path.read_text())


def deterministic(results: dict) -> str:
    results = dict(results)
    results.pop("run")
    results["evaluations"] = [{k: v for k, v in e.items() if k != "timing"}
                              for e in results["evaluations"]]
    return json.dumps(results, sort_keys=True)


def one_sweep(base: Path, name: str, interval: float | None) -> tuple[float, int, str]:
    """The sweep's wall time, the watcher's polls, and its deterministic results."""
    run_dir = base / name
    process = subprocess.Popen([sys.executable, "-m", "cryptosweep", "run", *SWEEP,
                                "--log-dir", str(base), "--run-name", name],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    watcher = Watcher(run_dir, interval).start() if interval else None
    _, stderr = process.communicate(timeout=1800)
    if process.returncode != 0:
        raise SystemExit(f"sweep {name} failed: {stderr[-2000:]}")
    polls = 0
    if watcher is not None:
        if not watcher.join(timeout=max(30.0, 3 * interval)):
            raise SystemExit(f"the watcher of {name} did not stop by itself")
        polls = len(watcher.history)
    results = results_of(run_dir)
    return float(results["run"]["wall_time_s"]), polls, deterministic(results)


def poll_cost(run_dir: Path, n: int = 30) -> tuple[float, float]:
    """Median seconds of a snapshot alone and of a watcher poll with its figures."""
    snapshots, polls = [], []
    watcher = Watcher(run_dir, interval=1.0)
    for _ in range(n):
        start = time.perf_counter()
        take_snapshot(run_dir)
        snapshots.append(time.perf_counter() - start)
        start = time.perf_counter()
        watcher.poll()
        polls.append(time.perf_counter() - start)
    return statistics.median(snapshots), statistics.median(polls)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    walls: dict[str, list[float]] = {name: [] for name in VARIANTS}
    polls: dict[str, list[int]] = {name: [] for name in VARIANTS}
    outputs: set[str] = set()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        for repeat in range(args.repeats):
            for i, (variant, interval) in enumerate(VARIANTS.items()):
                wall, n_polls, output = one_sweep(base, f"r{repeat}_{i}", interval)
                walls[variant].append(wall)
                polls[variant].append(n_polls)
                outputs.add(output)
                print(f"repeat {repeat + 1}: {variant}: {wall:.2f} s, {n_polls} polls",
                      flush=True)
        snapshot_s, poll_s = poll_cost(base / "r0_0")
        evaluations = len(json.loads(next(iter(outputs)))["evaluations"])
    baseline = statistics.median(walls["unwatched"])
    print()
    print(machine_line())
    print(f"Sweep: parameters/demo.yaml with hyperband.iterations=1 ({evaluations} "
          f"evaluations), in-process trials, {args.repeats} repeats interleaved; results "
          + ("byte-identical (timing aside) in every run." if len(outputs) == 1
             else f"DIFFER ({len(outputs)} distinct)."))
    print()
    print("| variant | sweep wall, median (s) | runs (s) | ratio to unwatched | polls |")
    print("| --- | ---: | --- | ---: | ---: |")
    for variant in VARIANTS:
        median = statistics.median(walls[variant])
        print(f"| {variant} | {median:.2f} | {', '.join(f'{w:.2f}' for w in walls[variant])} "
              f"| {median / baseline:.3f} | {statistics.median(polls[variant]):.0f} |")
    print()
    print(f"One poll of the finished journal ({evaluations} evaluations): snapshot "
          f"{snapshot_s * 1000:.1f} ms, with the three figures {poll_s * 1000:.1f} ms (median "
          "of 30).")
    if len(outputs) != 1:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
