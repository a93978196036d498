"""Faults: a worker process killed mid-trial is retried with the same seed and gives the same
result; a trial past its timeout is failed and its worker restarted; too many failures stop
the sweep with exit code 4, keeping what finished."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time

import psutil
import pytest

from cryptosweep.core.config_files import load_config
from cryptosweep.core.errors import SweepFailedError
from cryptosweep.execution.executors import InProcessExecutor
from cryptosweep.records.journal import Journal
from cryptosweep.sweep.loop import SweepLoop
from tests.support import cli, deterministic_bytes, done_count, results_file, tiny_config

pytestmark = pytest.mark.slow


def dask_worker_processes(parent: int) -> list[psutil.Process]:
    """The worker processes a LocalCluster spawned below the CLI process."""
    try:
        children = psutil.Process(parent).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    return [p for p in children if "multiprocessing" in " ".join(p.cmdline())
            and "resource_tracker" not in " ".join(p.cmdline())]


def test_killed_worker_is_retried_with_the_same_seed_and_result(tmp_path, write_config):
    config = tiny_config(random__n_trials=8, objective__rounds_per_unit=40)
    path = write_config(config)
    reference = cli("run", "--config", str(path), "--log-dir", str(tmp_path), "--run-name",
                    "ref", "--seed", "4", "--workers", "0")
    assert reference.returncode == 0, reference.stderr
    process = subprocess.Popen(
        [sys.executable, "-m", "cryptosweep", "run", "--config", str(path), "--log-dir",
         str(tmp_path), "--run-name", "killed", "--seed", "4", "--workers", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    db = tmp_path / "killed" / "sweep.db"
    deadline = time.monotonic() + 120
    while done_count(db) < 1 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)
    victims = dask_worker_processes(process.pid)
    assert victims and process.poll() is None, "no worker to kill"
    victims[0].send_signal(signal.SIGKILL)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    assert "worker died" in stderr and "retrying" in stderr
    assert deterministic_bytes(tmp_path / "killed") == deterministic_bytes(tmp_path / "ref")
    with sqlite3.connect(db) as conn:
        lost = conn.execute("SELECT COUNT(*) FROM attempts WHERE outcome = 'lost'").fetchone()[0]
        done = conn.execute(
            "SELECT eval_id, COUNT(*) FROM attempts WHERE outcome = 'done' GROUP BY eval_id"
        ).fetchall()
    assert lost >= 1
    assert all(count == 1 for _, count in done) and len(done) == 8
    run = json.loads(results_file(tmp_path / "killed").read_text())["run"]
    assert run["retried"] >= 1


def test_trial_past_its_timeout_is_failed_and_the_sweep_goes_on(tmp_path, write_config):
    # The timeout counts from when a worker takes the trial: a LightGBM trial on a worker
    # restarted after a torch timeout (its features built anew) must still pass, under load.
    # Seed 3 draws lightgbm, torch, lightgbm, torch, lightgbm: the last one runs on the worker
    # restarted after trial 1's timeout, while trial 3 times out on the other.
    # 30 s: a LightGBM trial here takes about a second (a fresh worker builds its features
    # first), twenty times that when two copies of the suite share 2 cores; the torch
    # trials take many minutes.
    config = tiny_config(random__n_trials=5, execution__trial_timeout=30.0,
                         execution__max_failure_fraction=1.0)
    config["parameter_ranges"]["torch"] = {  # a wide 2-layer MLP for 600 epochs: far past 30 s
        "hidden_units": {"type": "categorical", "choices": [1024]},
        "layers": {"type": "categorical", "choices": [2]},
    }
    config["objective"]["models"] = ["lightgbm", "torch"]
    config["objective"]["rounds_per_unit"] = 300
    config["parameter_ranges"]["lightgbm"]["num_leaves"] = {
        "type": "categorical", "choices": [4]}
    config["parameter_ranges"]["lightgbm"]["learning_rate"] = {
        "type": "categorical", "choices": [0.3]}
    done = cli("run", "--config", str(write_config(config)), "--log-dir", str(tmp_path),
               "--run-name", "timeout", "--workers", "2", "--seed", "3")
    assert done.returncode == 0, done.stderr
    evaluations = json.loads(results_file(tmp_path / "timeout").read_text())["evaluations"]
    by_model = {e["params"]["model"] for e in evaluations}
    assert by_model == {"lightgbm", "torch"}, "the seed must draw both families"
    for evaluation in evaluations:
        if evaluation["params"]["model"] == "torch":
            assert evaluation["status"] == "failed"
            assert "timed out after 30 s" in evaluation["error"]
        else:
            assert evaluation["status"] == "done"
    # A trial queued behind a timed-out one on the worker being ended (when the other worker
    # is still restarting, on a busy machine) is lost with it: it is run again, once, and its
    # result is recorded as any other's; the ending itself is never a trial's result.
    with sqlite3.connect(tmp_path / "timeout" / "sweep.db") as db:
        attempts = db.execute("SELECT eval_id, outcome FROM attempts ORDER BY eval_id, attempt"
                              ).fetchall()
    for eval_id in {eval_id for eval_id, _ in attempts}:
        outcomes = [outcome for e, outcome in attempts if e == eval_id]
        assert outcomes[-1] in ("done", "failed") and set(outcomes[:-1]) <= {"lost"}
        assert len(outcomes) <= 2, f"evaluation {eval_id} lost more than once: {outcomes}"


def test_too_many_failures_stop_the_sweep_with_exit_4_keeping_the_journal(tmp_path,
                                                                           write_config):
    config = tiny_config(random__n_trials=12)
    config["parameter_ranges"]["lightgbm"] = {  # rf without any subsampling: every trial fails
        "boosting": {"type": "categorical", "choices": ["rf"]},
        "bagging_fraction": {"type": "categorical", "choices": [1.0]},
        "feature_fraction": {"type": "categorical", "choices": [1.0]},
    }
    done = cli("run", "--config", str(write_config(config)), "--log-dir", str(tmp_path),
               "--run-name", "bad", "--workers", "0")
    assert done.returncode == 4
    lines = done.stderr.strip().splitlines()
    assert "execution.max_failure_fraction=0.5" in lines[-1] and "Traceback" not in done.stderr
    db = tmp_path / "bad" / "sweep.db"
    assert done_count(db) == 5
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key='status'").fetchone()[0] == (
            '"failed"')


def _failing_config(n_trials: int) -> dict:
    config = tiny_config(random__n_trials=n_trials)
    config["parameter_ranges"]["lightgbm"] = {  # rf without any subsampling: every trial fails
        "boosting": {"type": "categorical", "choices": ["rf"]},
        "bagging_fraction": {"type": "categorical", "choices": [1.0]},
        "feature_fraction": {"type": "categorical", "choices": [1.0]},
    }
    return config


class _StopAfter(InProcessExecutor):
    """In-process trials, interrupted (as by Ctrl-C) once ``n`` have finished."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n, self.finished = n, 0

    def wait(self):
        if self.finished == self.n:
            raise KeyboardInterrupt
        self.finished += 1
        return super().wait()


def test_failures_finished_before_a_resume_still_count(tmp_path):
    """After an interruption, the failure check counts the journal's failures too: 3 failed
    before, 2 more after the resume make 5 of 5, and the sweep stops there (it used to count
    only the resumed process's own evaluations and run on)."""
    config = load_config(raw=_failing_config(6))
    journal = Journal(tmp_path / "sweep.db")
    with pytest.raises(KeyboardInterrupt):
        SweepLoop(config, 1, journal, _StopAfter(3)).run()
    assert done_count(tmp_path / "sweep.db") == 3
    with pytest.raises(SweepFailedError, match="5 of 5 evaluations failed"):
        SweepLoop(config, 1, journal, InProcessExecutor()).run()
    assert done_count(tmp_path / "sweep.db") == 5
    journal.close()


def test_a_run_where_every_evaluation_failed_exits_4_and_its_report_still_renders(
        tmp_path, write_config):
    """No successful evaluation is not a success (exit 4 with the reason), but the run's
    files are written and ``cryptosweep report`` renders them (its cells once called
    ``.show()`` on figures that do not exist for such a run)."""
    config = _failing_config(3)
    config["execution"]["max_failure_fraction"] = 1.0
    done = cli("run", "--config", str(write_config(config)), "--log-dir", str(tmp_path),
               "--run-name", "all_failed")
    assert done.returncode == 4, done.stderr[-2000:]
    assert "no evaluation succeeded (3 failed)" in done.stderr.strip().splitlines()[-1]
    run_dir = tmp_path / "all_failed"
    results = json.loads(results_file(run_dir).read_text())
    assert results["counts"] == {"evaluations": 3, "done": 0, "failed": 3}
    report = cli("report", str(run_dir))
    assert report.returncode == 0, report.stderr[-3000:]
    assert (run_dir / "report.html").is_file()
