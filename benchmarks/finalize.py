"""The end of a sweep, before and after it moved onto the sweep's executor.

What it does: the holdout evaluation and the reproducibility re-run of each of the top-k (10
model fits with top_k 5), the baselines, the DSR and PBO, and the files. Before, it ran in the
driver process, one evaluation after another, after the workers had been shut down; now its
evaluations are tasks on the executor while it is still up (``cryptosweep.sweep.finalize``), and the
DSR/PBO are computed in the driver meanwhile.

How it is measured, on the bundled BTC/USDT candles with a template-like config
(``parameters/sweep_config_template.json``: Hyperband over LightGBM, XGBoost, CatBoost and torch,
``reporting.top_k`` 5) and W workers (default 2):

1. the search runs once on W dask workers and ends as it does now (``after, warm``: on the
   same workers, which have the candles and features cached from the search);
2. its run folder is copied, the end of the sweep undone in the copy (the journaled holdout
   and re-run results and the output files removed), and the copy resumed, alternately: with
   ``--workers 0`` (``before``: in the driver, one after another, as it used to run) and with
   W workers (``after, fresh workers``: a new cluster, whose workers first build the
   features), ``--repeats`` times each; the machine is shared, so the median counts.

Every results file must be byte-identical to the first (less timing and host); the benchmark
stops otherwise. The times are the end of the sweep only ("end of the sweep took" in the run's
log). ``--search-dir`` reuses the run folder of an earlier search (its end is undone first).

    .venv/bin/python benchmarks/finalize.py [--workers 2] [--top-k 5] [--config PATH] \\
        [--repeats 3] [--search-dir RUN_DIR] [--quiet-load 1.0] [--markdown FILE]
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import re
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

from cryptosweep.core.config_files import load_config
from cryptosweep.core.paths import REPOSITORY
from cryptosweep.sweep.opening import LOG_FILE
from cryptosweep.sweep.runner import run_sweep

# benchmarks/ is on sys.path (the script's folder)
from machine import machine_line

TOOK = re.compile(r"end of the sweep took ([0-9.]+) s")
STAMP = r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) "
STARTED = re.compile(STAMP + r".*end of the sweep: \d+ evaluation\(s\) on ", re.M)
DONE = re.compile(STAMP + r".*end of the sweep \d+/\d+: (\S+) done", re.M)
SEARCH = re.compile(r"search finished in ([0-9.]+) s")
OUTPUTS = ("sweep_results_*.json", "sweep_report_*.txt", "best_configs_*.json",
           "resource_usage_*.json")


def load_average() -> float:
    """The 1-minute load average: the machine may be shared, and its other processes take
    CPU from this benchmark's (see the note in benchmarks/RESULTS.md)."""
    with open("/proc/loadavg", encoding="utf-8") as handle:
        return float(handle.read().split()[0])


def wait_for_quiet(limit: float, patience_s: float = 600.0) -> None:
    """Wait until the machine's load average is below ``limit`` (or ``patience_s`` passed)."""
    deadline = time.monotonic() + patience_s
    while load_average() >= limit and time.monotonic() < deadline:
        time.sleep(5)


def last(pattern: re.Pattern[str], run_dir: Path) -> float:
    found = pattern.findall((run_dir / LOG_FILE).read_text(encoding="utf-8"))
    if not found:
        raise RuntimeError(f"{pattern.pattern!r} not in {run_dir / LOG_FILE}")
    return float(found[-1])


def task_seconds(run_dir: Path) -> dict[str, float]:
    """Each task's seconds in a run that ran them one after another (the gaps between the
    log's "done" lines), from its last end of the sweep."""
    text = (run_dir / LOG_FILE).read_text(encoding="utf-8")
    start = STARTED.findall(text)[-1]
    text = text[text.rindex(start):]

    def seconds(stamp: str) -> float:
        return time.mktime(time.strptime(stamp[:19], "%Y-%m-%d %H:%M:%S")) + int(stamp[20:]) / 1e3

    out, previous = {}, seconds(start)
    for stamp, task in DONE.findall(text):
        out[task] = seconds(stamp) - previous
        previous = seconds(stamp)
    return out


def lpt_makespan(durations: list[float], workers: int) -> float:
    """The longest-first schedule's wall time on ``workers`` (Graham 1969)."""
    loads = [0.0] * workers
    for duration in sorted(durations, reverse=True):
        loads[loads.index(min(loads))] += duration
    return max(loads)


def undo_the_end(run_dir: Path) -> None:
    """Leave a finished run as if it had been interrupted just before its end."""
    with sqlite3.connect(run_dir / "sweep.db") as db:
        db.execute("DELETE FROM extra_evaluations")
        db.execute("DELETE FROM returns WHERE kind = 'holdout'")
        db.execute("UPDATE meta SET value = '\"running\"' WHERE key = 'status'")
    db.close()
    for pattern in OUTPUTS:
        for path in run_dir.glob(pattern):
            path.unlink()


def deterministic_bytes(run_dir: Path) -> bytes:
    """The results file without its timing and host fields (as the tests compare it)."""
    (path,) = sorted(run_dir.glob("sweep_results_*.json"))
    results = json.loads(path.read_text())
    results.pop("run")
    for evaluation in results["evaluations"]:
        evaluation.pop("timing")
    return json.dumps(results, sort_keys=True, indent=1).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--config", type=Path,
                        default=REPOSITORY / "parameters" / "sweep_config_template.json")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--search-dir", type=Path)
    parser.add_argument("--quiet-load", type=float, help="before each run, wait (up to 10 "
                        "min) until the 1-minute load average is below this")
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    # The re-runs of promoted trials continue from their checkpoints: keep them to resume.
    config = load_config(args.config, [f"reporting.top_k={args.top_k}",
                                       "reporting.keep_checkpoints=true"])
    started = time.strftime("%Y-%m-%d", time.gmtime())
    with tempfile.TemporaryDirectory(prefix="cryptosweep-bench-finalize.") as tmp:
        base = Path(tmp)
        if args.search_dir is None:
            searched = run_sweep(config=config, workers=args.workers, log_dir=base,
                                 run_name="search", show_progress=False).run_dir
            search_s, warm_s = last(SEARCH, searched), last(TOOK, searched)
            print(f"search {search_s:.1f} s; end of the sweep on the warm workers "
                  f"{warm_s:.1f} s", flush=True)
        else:
            searched, search_s, warm_s = base / "search", None, None
            shutil.copytree(args.search_dir, searched)
            undo_the_end(searched)
        reference: bytes | None = None
        sequential: list[dict[str, float]] = []
        timings: dict[str, list[float]] = {"before": [], "after": []}
        loads: dict[str, list[float]] = {"before": [], "after": []}
        for repeat in range(args.repeats):
            for name, workers in (("before", 0), ("after", args.workers)):
                copy = base / f"{name}_{repeat}"
                shutil.copytree(searched, copy)
                undo_the_end(copy)
                if args.quiet_load is not None:
                    wait_for_quiet(args.quiet_load)
                load = load_average()
                run_sweep(resume=copy, workers=workers, show_progress=False)
                timings[name].append(last(TOOK, copy))
                loads[name].append((load + load_average()) / 2)
                print(f"{name} #{repeat + 1}: end of the sweep {timings[name][-1]:.1f} s "
                      f"(load average {loads[name][-1]:.1f})", flush=True)
                got = deterministic_bytes(copy)
                reference = reference or got
                if got != reference:
                    sys.exit(f"{name} #{repeat + 1}: the results differ from the first run's")
                results = json.loads(next(copy.glob("sweep_results_*.json")).read_text())
                if name == "before":
                    sequential.append(task_seconds(copy))
                shutil.rmtree(copy)

    before = statistics.median(timings["before"])
    out = io.StringIO()
    out.write(f"{machine_line()} Date: {started}.\n")
    out.write(f"Config: {args.config.name} with reporting.top_k {args.top_k} "
              f"({results['counts']['evaluations']} evaluations, models "
              f"{', '.join(config.objective.models)})"
              + (f"; search {search_s:.1f} s on {args.workers} workers" if search_s else "")
              + f". {args.repeats} alternating repeats; every results file byte-identical "
              "(checked).\n\n")
    out.write("| end of the sweep | workers | median wall s | all runs s (load average) | "
              "vs before |\n|---|---:|---:|---|---:|\n")
    rows = [("before: in the driver, one after another", "0 (driver)", timings["before"],
             loads["before"]),
            ("after: on fresh workers (a resume)", args.workers, timings["after"],
             loads["after"])]
    if warm_s is not None:
        rows.insert(1, ("after: on the sweep's own workers, warm", args.workers, [warm_s],
                        [float("nan")]))
    for label, workers, seconds, load in rows:
        median = statistics.median(seconds)
        runs = ", ".join(f"{s:.1f} ({a:.1f})" for s, a in zip(seconds, load, strict=True))
        out.write(f"| {label} | {workers} | {median:.1f} | {runs} | "
                  f"{median / before:.2f}x |\n")
    tasks = {task: statistics.median(run[task] for run in sequential) for task in sequential[0]}
    bound = lpt_makespan(list(tasks.values()), args.workers)
    out.write("\nThe tasks' own seconds, one after another (median of the 'before' runs): "
              + ", ".join(f"{task} {seconds:.1f}" for task, seconds in
                          sorted(tasks.items(), key=lambda item: -item[1]))
              + f"; sum {sum(tasks.values()):.1f} s. Longest first on {args.workers} workers "
              f"with a core each, they would take {bound:.1f} s "
              f"({bound / sum(tasks.values()):.2f}x).\n")
    print(out.getvalue())
    if args.markdown:
        args.markdown.write_text(out.getvalue(), encoding="utf-8")


if __name__ == "__main__":
    main()
