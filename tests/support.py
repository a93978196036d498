"""Helpers the tests share: a tiny real sweep config, running the CLI, comparing results."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def tiny_config(**changes: Any) -> dict[str, Any]:
    """A real sweep on the bundled BTC sample, small enough to run in a few seconds."""
    config: dict[str, Any] = {
        "name": "tiny",
        "sweep_type": "random",
        "random": {"n_trials": 6},
        "hyperband": {"max_iter": 2},
        "parameter_ranges": {
            "lightgbm": {
                "num_leaves": {"type": "int", "low": 4, "high": 32, "log": True},
                "learning_rate": {"type": "float", "low": 0.05, "high": 0.3, "log": True},
                "min_data_in_leaf": {"type": "int", "low": 20, "high": 100},
            },
            "trading": {
                "threshold": {"type": "float", "low": 0.5, "high": 0.6},
                "holding_period": {"type": "int", "low": 4, "high": 24},
                "stop_loss": {"type": "float", "low": 0.02, "high": 0.06},
                "take_profit": {"type": "float", "low": 0.02, "high": 0.1},
            },
        },
        "objective": {"folds": 2, "rounds_per_unit": 5, "min_train_bars": 200},
        "execution": {"workers": 0},
        "reporting": {"top_k": 2},
        # The winner's neighbourhood is evaluated end to end where a test asks for it
        # (tests/sweep/test_runner.py's reference); elsewhere it only costs time.
        "deployment": {"neighbourhood": False},
    }
    for dotted, value in changes.items():
        node = config
        *parents, last = dotted.split("__")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return config


def cli(*args: str, cwd: Path | None = None, timeout: float = 300,
        **popen: Any) -> subprocess.CompletedProcess[str]:
    """Run ``python -m cryptosweep ARGS`` in a fresh interpreter."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-m", "cryptosweep", *args], cwd=cwd, capture_output=True, text=True,
        timeout=timeout, env=env, **popen,
    )


def cli_in_process(capsys: Any, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m cryptosweep ARGS`` through the CLI's ``main`` in this process, its exit
    code and output as :func:`cli` returns them: for refusals (exit 2 before anything runs),
    where an interpreter's start per call costs seconds and shows nothing. What only a real
    process shows (signals, a sweep's worker processes, the streams' encoding) uses :func:`cli`."""
    from cryptosweep.cli import main

    capsys.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        # Python's default filters, as a fresh interpreter has them (pytest's would hide
        # what a user sees): a warning is a line on stderr here too.
        warnings.resetwarnings()
        warnings.simplefilter("default")
        for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning,
                         ResourceWarning):
            warnings.simplefilter("ignore", category)
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse's usage errors
            code = exc.code if isinstance(exc.code, int) else 2
    out = capsys.readouterr()
    shown = "".join(warnings.formatwarning(w.message, w.category, w.filename, w.lineno)
                    for w in caught)
    return subprocess.CompletedProcess(list(args), code, out.out, out.err + shown)


def done_count(db: Path) -> int:
    """Finished evaluations in the journal ``db``, read through a connection closed before
    returning: ``with sqlite3.connect(...)`` only ends a transaction, and the connections it
    left open (freed by the garbage collector, if ever) kept the journal's ``-shm`` mapped,
    which stops the next writer from resetting it after a lost ``-wal``."""
    if not db.exists():
        return 0
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True,
                                                timeout=1)) as conn:
            return conn.execute(
                "SELECT COUNT(*) FROM evaluations WHERE status IN ('done', 'failed')"
            ).fetchone()[0]
    except sqlite3.OperationalError:  # the schema is not there yet
        return 0


def kill_when(db: Path, threshold: int, args: list[str]) -> int:
    """Start the CLI in its own process group; SIGKILL the group once ``threshold``
    evaluations are journaled as finished. Returns how many were finished at the kill."""
    process = subprocess.Popen(
        [sys.executable, "-m", "cryptosweep", *args], stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True,
    )
    deadline = time.monotonic() + 240
    try:
        while done_count(db) < threshold:
            assert process.poll() is None, "the sweep ended before it could be killed"
            assert time.monotonic() < deadline, "the sweep made no progress"
            time.sleep(0.01)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    return done_count(db)


def results_file(run_dir: Path) -> Path:
    (path,) = sorted(run_dir.glob("sweep_results_*.json"))
    return path


def deterministic_bytes(run_dir: Path) -> bytes:
    """The results file without its timing and host fields, as canonical bytes."""
    results = json.loads(results_file(run_dir).read_text())
    results.pop("run")
    for evaluation in results["evaluations"]:
        evaluation.pop("timing")
    return json.dumps(results, sort_keys=True, indent=1).encode()


#: Search ranges of one small configuration per model family, for the production tests.
FAMILY_RANGES: dict[str, dict[str, Any]] = {
    "lightgbm": {"num_leaves": {"type": "int", "low": 4, "high": 16},
                 "learning_rate": {"type": "float", "low": 0.1, "high": 0.3},
                 "bagging_fraction": {"type": "float", "low": 0.7, "high": 0.9}},
    "xgboost": {"max_depth": {"type": "int", "low": 2, "high": 4},
                "learning_rate": {"type": "float", "low": 0.1, "high": 0.3},
                "subsample": {"type": "float", "low": 0.7, "high": 0.9}},
    "catboost": {"depth": {"type": "int", "low": 3, "high": 4},
                 "learning_rate": {"type": "float", "low": 0.1, "high": 0.3}},
    "torch": {"hidden_units": {"type": "int", "low": 8, "high": 16},
              "learning_rate": {"type": "float", "low": 0.005, "high": 0.02},
              "dropout": {"type": "float", "low": 0.0, "high": 0.2},
              "batch_size": {"type": "categorical", "choices": [512]}},
}  # fmt: skip


def explore_config() -> dict[str, Any]:
    """The Hyperband sweep the explorer's tests explore and watch (22 evaluations, ~7 s), with
    the rounds fidelity: LightGBM samples columns (``feature_fraction``), so a promoted
    configuration that continued from its checkpoint is not the one trained from scratch
    (``docs/continuation.md``)."""
    config = tiny_config(objective__rounds_per_unit=5, objective__fidelity="rounds",
                         sweep_type="hyperband", hyperband={"max_iter": 9, "eta": 3})
    config["parameter_ranges"]["lightgbm"]["feature_fraction"] = {
        "type": "float", "low": 0.5, "high": 0.9}
    return config


EXPLORE_SEED = 5




def weekday_market_bars_per_year(stamps: Any) -> float:
    """Bars a year of a market closed at weekends, counted independently of the library: the
    bars between the first and the last Saturday noon (UTC) the stamps span, per week, times
    the weeks of a 365-day year (FX closes Friday evening and opens Sunday evening)."""
    import pandas as pd

    stamps = pd.DatetimeIndex(stamps)
    saturdays = pd.date_range(stamps[0], stamps[-1], freq="W-SAT").normalize()
    first, last = saturdays[0] + pd.Timedelta(hours=12), saturdays[-1] + pd.Timedelta(hours=12)
    inside = int(((stamps > first) & (stamps < last)).sum())
    return inside / ((last - first) / pd.Timedelta(weeks=1)) * 365 / 7
