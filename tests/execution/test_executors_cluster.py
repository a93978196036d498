"""A real dask cluster on loopback — `dask scheduler` and two `dask worker` processes — runs
the same sweep as the in-process executor, with byte-identical results."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support import cli, deterministic_bytes, results_file, tiny_config

pytestmark = pytest.mark.slow

DASK = str(Path(sys.executable).parent / "dask")


@pytest.fixture
def cluster(tmp_path):
    scheduler_file = tmp_path / "scheduler.json"
    env = {**os.environ, "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0"}
    processes = [subprocess.Popen(
        [DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
         "--scheduler-file", str(scheduler_file)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)]
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists():
            assert time.monotonic() < deadline, "the dask scheduler did not start"
            time.sleep(0.1)
        time.sleep(0.2)  # the file is written before it is flushed on some systems
        for name in ("w1", "w2"):
            processes.append(subprocess.Popen(
                [DASK, "worker", "--scheduler-file", str(scheduler_file), "--nthreads", "1",
                 "--nworkers", "1", "--no-dashboard", "--name", name,
                 "--host", "127.0.0.1"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env))
        address = json.loads(scheduler_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        from distributed import Client

        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=90)
        yield address
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def test_sweep_on_a_dask_cluster_equals_the_in_process_run(cluster, tmp_path, write_config):
    path = write_config(tiny_config(random__n_trials=6))
    local = cli("run", "--config", str(path), "--log-dir", str(tmp_path), "--run-name",
                "local", "--seed", "8", "--workers", "0")
    assert local.returncode == 0, local.stderr
    remote = cli("run", "--config", str(path), "--log-dir", str(tmp_path), "--run-name",
                 "remote", "--seed", "8", "--scheduler-address", cluster)
    assert remote.returncode == 0, remote.stderr
    assert f"dask scheduler {cluster}" in remote.stderr
    assert deterministic_bytes(tmp_path / "remote") == deterministic_bytes(tmp_path / "local")
    workers = {e["timing"]["worker"] for e in
               json.loads(results_file(tmp_path / "remote").read_text())["evaluations"]}
    assert len(workers) == 2 and all(w.startswith("tcp://127.0.0.1:") for w in workers)


def test_unreachable_scheduler_is_a_clear_error(tmp_path, write_config):
    done = cli("run", "--config", str(write_config(tiny_config())), "--log-dir",
               str(tmp_path / "logs"),
               "--scheduler-address", "tcp://127.0.0.1:9", timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith(
        "cryptosweep: error: --scheduler-address: cannot reach tcp://127.0.0.1:9")
    assert not (tmp_path / "logs").exists(), "no run folder for a sweep that could not start"


@pytest.fixture
def impostors():
    """Servers on loopback that are not dask schedulers: a plain HTTP server (dask's client
    waited on it for over ten minutes) and one that sends bytes dask read as an exabyte-long
    frame (it then tried to allocate 3.07 EiB)."""
    import http.server
    import socket
    import threading

    http_server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                  http.server.SimpleHTTPRequestHandler)
    garbage = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def answer_garbage() -> None:
        garbage.settimeout(0.2)
        while not stop.is_set():
            try:
                connection, _ = garbage.accept()
            except OSError:
                continue
            with connection:
                connection.sendall(b"\xff" * 7 + b"\x2f" + b"junk" * 10)
                time.sleep(0.5)

    threads = [threading.Thread(target=http_server.serve_forever, daemon=True),
               threading.Thread(target=answer_garbage, daemon=True)]
    for thread in threads:
        thread.start()
    try:
        yield {"http": f"tcp://127.0.0.1:{http_server.server_address[1]}",
               "garbage": f"tcp://127.0.0.1:{garbage.getsockname()[1]}"}
    finally:
        stop.set()
        http_server.shutdown()
        http_server.server_close()
        garbage.close()


@pytest.mark.parametrize(("kind", "expected"), [
    ("http", "something accepts connections there, but no dask scheduler spoke within 5 s"),
    ("garbage", "not a dask scheduler (it answered b'\\xff\\xff"),
    ("nonsense", "--scheduler-address 'nonsense': expected tcp://HOST:PORT"),
    ("http-url", "--scheduler-address 'http://127.0.0.1:8786': expected tcp://HOST:PORT"),
])
def test_a_scheduler_address_that_is_not_a_scheduler_is_one_line_within_seconds(
        impostors, capsys, tmp_path, write_config, kind, expected):
    from cryptosweep.cli import main

    address = impostors.get(kind, {"nonsense": "nonsense",
                                   "http-url": "http://127.0.0.1:8786"}.get(kind))
    started = time.monotonic()
    code = main(["run", "--config", str(write_config(tiny_config())), "--log-dir",
                 str(tmp_path / "logs"), "--scheduler-address", address])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and expected in lines[0], lines
    assert time.monotonic() - started < 60
    assert not (tmp_path / "logs").exists()


@pytest.mark.parametrize("address", [
    "tcp://alice:hook-s3cr3t-42@127.0.0.1:8786", "tls://alice:hook-s3cr3t-42@127.0.0.1:8786",
    "alice:hook-s3cr3t-42@127.0.0.1:8786", "tcp://127.0.0.1:8786?token=hook-s3cr3t-42",
])
def test_a_scheduler_address_with_a_password_is_refused_without_showing_it(
        capsys, tmp_path, write_config, address):
    """A password in --scheduler-address was echoed to stderr (and so to the nightly's log)
    behind a misleading 'Name or service not known'; dask takes no credentials in an
    address."""
    from cryptosweep.cli import main

    code = main(["run", "--config", str(write_config(tiny_config())), "--log-dir",
                 str(tmp_path / "logs"), "--scheduler-address", address])
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "127.0.0.1" in lines[0], lines
    assert "s3cr3t" not in captured.err + captured.out
    assert not (tmp_path / "logs").exists()


def _final_task(payload: dict) -> dict:
    """Stands in for an end-of-sweep evaluation (the executor runs any function): returns,
    raises what it is told, or kills its worker process on its first attempt."""
    marker = Path(payload["marker"]) if "marker" in payload else None
    if payload.get("die_once") and marker is not None and not marker.exists():
        marker.touch()
        os._exit(70)
    if payload.get("raise"):
        raise OSError(28, "No space left on device", payload["task"])
    return {"task": payload["task"]}


def test_end_of_sweep_tasks_on_dask_workers_report_failures_and_retry_dead_workers(tmp_path):
    """run_tasks on a LocalCluster of 2 workers: every task's outcome comes back (a raised
    error as the outcome's error, never a result); a task whose worker died runs again, up to
    max_retries times, then comes back as its KilledWorker."""
    from cryptosweep.execution.executors import make_executor

    with make_executor(2) as executor:
        payloads = [{"task": "a"}, {"task": "b"}, {"task": "full", "raise": True},
                    {"task": "dies", "die_once": True, "marker": str(tmp_path / "died")}]
        outcomes = {o.payload["task"]: o for o in executor.run_tasks(_final_task, payloads, 1)}
        assert sorted(outcomes) == ["a", "b", "dies", "full"]
        assert outcomes["a"].result["task"] == "a" and outcomes["a"].error is None
        assert isinstance(outcomes["full"].error, OSError) and outcomes["full"].result is None
        assert outcomes["full"].error.errno == 28
        assert outcomes["dies"].error is None and (tmp_path / "died").exists()
        again = [{"task": "dies again", "die_once": True, "marker": str(tmp_path / "again")}]
        (lost,) = executor.run_tasks(_final_task, again, 0)
        assert type(lost.error).__name__ == "KilledWorker" and lost.result is None


def test_a_cluster_slow_to_shut_down_does_not_fail_a_finished_run(caplog):
    """Two copies of the suite on 2 cores: a nanny did not end its worker within dask's
    timeout, and a sweep whose every result was written exited 1 with a traceback from the
    executor's close. Now its worker processes are killed, with a warning."""
    from cryptosweep.execution.executors import make_executor

    executor = make_executor(1)
    (nanny,) = executor.cluster.workers.values()
    worker = nanny.process.process
    close_cluster = executor.cluster.close

    def too_slow(*args, **kwargs):
        raise TimeoutError

    executor.cluster.close = too_slow
    try:
        with caplog.at_level("WARNING", logger="cryptosweep"):
            executor.close()
        deadline = time.monotonic() + 30
        while worker.is_alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not worker.is_alive()
        assert "did not shut down in time; 1 worker process(es) killed" in caplog.text
    finally:
        close_cluster()


def test_with_a_trial_timeout_the_capacity_follows_the_workers_that_are_up():
    """A worker ended for a timed-out trial takes a while to come back; meanwhile a second
    trial submitted to the one left waited behind its running trial and was lost with it when
    that one timed out too (a busy machine). Now the runner may submit only as many trials as
    there are threads up."""
    from cryptosweep.execution.executors import _exit_worker_process, make_executor

    with make_executor(2, trial_timeout=60.0) as executor:
        assert executor.capacity == 2
        (first, _) = sorted(executor.client.nthreads())
        executor.client.run(_exit_worker_process, workers=[first], wait=False)
        deadline = time.monotonic() + 90
        seen = []
        while time.monotonic() < deadline and not (1 in seen and seen[-1] == 2):
            seen.append(executor.capacity)
            time.sleep(0.02)
        assert 1 in seen, "the ended worker was never missing"
        assert seen[-1] == 2, "its nanny brought it back: the capacity with it"
    with make_executor(2) as executor:
        assert executor.capacity == 4  # without a timeout, two trials per thread may wait


WORKER_LOGS = """
import logging, sys
from cryptosweep.execution.executors import make_executor
from cryptosweep.execution.worker_logging import HEARTBEAT_FAILURE

def log(message):
    try:
        raise OSError("Stream is closed")
    except OSError:
        logging.getLogger("distributed.worker").exception(message)

if __name__ == "__main__":
    with make_executor(1) as executor:
        executor.client.run(log, HEARTBEAT_FAILURE)
        executor.client.run(log, "a worker fault, kept")
        (worker,) = executor.client.nthreads()
        executor.client.restart_workers([worker])  # as after a timed-out trial
        executor.client.run(log, HEARTBEAT_FAILURE)
        executor.client.run(log, "a fault of the new worker, kept")
"""


def test_local_workers_log_faults_but_not_the_heartbeat_of_a_shutdown(tmp_path):
    """An interrupted sweep printed a worker's "Failed to communicate with scheduler during
    heartbeat" traceback under its one line (once in eight suite runs): a worker busy with a
    trial closed after the scheduler, which lives in the sweep's process. Worker processes
    of a local cluster drop exactly that log, the ones their nannies start again too; every
    other log of theirs reaches the terminal."""
    script = tmp_path / "worker_logs.py"
    script.write_text(WORKER_LOGS)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "heartbeat" not in done.stderr, done.stderr[-3000:]
    assert done.stderr.count("a worker fault, kept") == 1, done.stderr[-3000:]
    assert done.stderr.count("a fault of the new worker, kept") == 1, done.stderr[-3000:]
    assert done.stderr.count("OSError: Stream is closed") == 2


def _broken_plugin() -> Any:
    from distributed.diagnostics.plugin import WorkerPlugin

    class Broken(WorkerPlugin):
        name = "broken"

        def setup(self, worker: Any) -> None:
            raise RuntimeError("cannot set up")

    return Broken()


def test_a_worker_plugin_that_cannot_be_set_up_costs_a_warning_not_the_run(monkeypatch,
                                                                           caplog):
    """The quiet shutdown is a nicety: its plugin failing on the workers (register_plugin
    raises) stopped the run and left the cluster running."""
    import cryptosweep.execution.worker_logging as worker_logging
    from cryptosweep.execution.executors import make_executor

    monkeypatch.setattr(worker_logging, "QuietShutdown", _broken_plugin)
    with caplog.at_level("WARNING", logger="cryptosweep"), make_executor(1) as executor:
        assert list(executor.client.run(abs, -1).values()) == [1]
    assert "shutdown may log a heartbeat traceback (RuntimeError: cannot set up)" in caplog.text
