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

from conftest import cli, deterministic_bytes, done_count, results_file, tiny_config

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
    config = tiny_config(random__n_trials=6, execution__trial_timeout=8.0,
                         execution__max_failure_fraction=1.0)
    config["parameter_ranges"]["torch"] = {  # a 2-layer MLP for 600 epochs: far past 8 s
        "hidden_units": {"type": "categorical", "choices": [256]},
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
            assert "timed out after 8 s" in evaluation["error"]
        else:
            assert evaluation["status"] == "done"


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
