"""Where evaluations run: in-process, a dask ``LocalCluster``, dask-cuda's ``LocalCUDACluster``
(one worker per GPU), or an existing dask scheduler.

Every executor runs the same worker function, :func:`run_evaluation`, on a plain-JSON payload
and returns an :class:`Outcome`; the runner never sees which executor it was. Results do not
depend on the executor: trial seeds come with the payload, thread counts are fixed per trial.

The end of a sweep runs on the same executor while it is still up: :meth:`Executor.run_tasks`
runs :func:`run_final_task` (holdout evaluations, reproducibility re-runs, the baselines, the
champion's re-evaluation) and yields each :class:`TaskOutcome` as it finishes.
"""

from __future__ import annotations

import ast
import contextlib
import logging
import math
import os
import signal
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from cryptosweep.core.errors import ConfigError, GPUUnavailableError, UserError
from cryptosweep.core.faults import infrastructure_fault
from cryptosweep.execution.cluster_logging import import_distributed, silenced_cluster_loggers
from cryptosweep.execution.worker import Outcome, TaskOutcome, run_evaluation

log = logging.getLogger(__name__)
#: The scheduler of a local cluster without a dashboard: ``dashboard_address=None`` alone still
#: starts its HTTP server on port 8787 ("Port 8787 is already in use" in every second run).
NO_DASHBOARD = {"dashboard": False, "dashboard_address": "127.0.0.1:0"}


class Executor(ABC):
    """Runs payloads; ``slots`` is how many run at once, ``capacity`` how many the runner may
    keep submitted (a small queue ahead keeps workers from waiting on the runner)."""

    slots: int = 1
    description: str = ""

    @property
    def capacity(self) -> int:
        return 2 * self.slots

    @abstractmethod
    def submit(self, payload: dict[str, Any]) -> None: ...

    @abstractmethod
    def wait(self) -> list[Outcome]:
        """Block until at least one submitted payload has finished; return those finished."""

    @property
    @abstractmethod
    def in_flight(self) -> int: ...

    def run_tasks(self, function: Callable[[dict[str, Any]], Any],
                  payloads: list[dict[str, Any]], max_retries: int = 0
                  ) -> Iterator[TaskOutcome]:
        """Run ``function`` on every payload and yield each :class:`TaskOutcome` as it
        finishes. Here: one after another in this process, when the iterator is advanced (the
        order of ``payloads``); executors with workers start them all at once."""
        def sequential() -> Iterator[TaskOutcome]:
            for payload in payloads:
                try:
                    yield TaskOutcome(payload, function(payload))
                except Exception as exc:  # the caller decides what a failure means
                    yield TaskOutcome(payload, error=exc)

        return sequential()

    def close(self) -> None:  # noqa: B027 - nothing to release by default
        """Release workers and connections."""

    def view(self, name: str) -> Executor:
        """An executor for one of several sweeps run at once on this one's workers (the
        windows of a walk-forward): its tasks' keys start with ``name``, it waits for its own
        tasks only, and closing it cancels those without closing the shared workers. Here
        (in-process): a fresh in-process executor, so such sweeps run one after another."""
        return InProcessExecutor()

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class InProcessExecutor(Executor):
    """Runs each payload in this process, one at a time, when the runner waits for it.

    It cannot pre-empt a running trial, so ``execution.trial_timeout`` is not enforced here.
    """

    description = "in-process"

    def __init__(self, trial_timeout: float | None = None) -> None:
        self._queue: deque[dict[str, Any]] = deque()
        if trial_timeout is not None:
            log.warning("execution.trial_timeout is enforced only with dask workers "
                        "(--workers 1 or more), not in-process")

    @property
    def capacity(self) -> int:
        return 1

    def submit(self, payload: dict[str, Any]) -> None:
        self._queue.append(payload)

    def wait(self) -> list[Outcome]:
        return [Outcome.from_dict(run_evaluation(self._queue.popleft()))]

    @property
    def in_flight(self) -> int:
        return len(self._queue)


#: With a trial timeout, how often (seconds) a dask executor asks the scheduler which submitted
#: trials a worker has taken, while some have not started.
START_POLL = 0.5

#: The longest a dask executor waits for the worker processes it ended (timed-out trials) to
#: leave the scheduler before it hands out more trials.
EXIT_WAIT = 10.0


class DaskExecutor(Executor):
    """Runs payloads on a dask cluster through a ``distributed.Client``.

    A worker process that dies mid-trial makes its trial come back as ``lost`` (the scheduler
    is told to allow no silent re-runs, so that the runner counts and journals every retry).
    With ``trial_timeout``, a trial running longer is recorded as failed and its worker
    process is ended, and restarted by its nanny (a C++ learner cannot be interrupted any
    other way);
    the runner then submits no more trials than there are threads on the workers up at the
    time (:attr:`capacity`), and a trial's time counts from when a worker took it (one waiting
    for a restarting worker is not charged).
    """

    def __init__(self, client: Any, cluster: Any = None, description: str = "dask",
                 trial_timeout: float | None = None, key_prefix: str = "",
                 owns_client: bool = True) -> None:
        self.client, self.cluster, self.description = client, cluster, description
        self.trial_timeout = trial_timeout
        self._closed = False
        self.key_prefix, self.owns_client = key_prefix, owns_client
        self._futures: dict[Any, tuple[int, float]] = {}
        self._started: dict[Any, float] = {}  # trial timeout: when a worker took each future
        self._tasks: set[Any] = set()
        n_threads = sum(self.client.nthreads().values())
        self.slots = max(1, n_threads)

    @property
    def capacity(self) -> int:
        """Twice the slots; with ``trial_timeout``, the threads of the workers up now (at most
        the slots, at least 1): while a worker ended for a timed-out trial is restarting, no
        trial waits in the queue of a busy worker that may be ended next (it would come back
        ``lost`` and spend one of its attempts)."""
        if not self.trial_timeout:
            return 2 * self.slots
        return max(1, min(self.slots, sum(self.client.nthreads().values())))

    def submit(self, payload: dict[str, Any]) -> None:
        future = self.client.submit(
            run_evaluation, payload,
            key=f"{self.key_prefix}eval-{payload['eval_id']}-{payload['attempt']}",
            pure=False,
        )
        self._futures[future] = (payload["eval_id"], time.time())

    def wait(self) -> list[Outcome]:
        from distributed import wait as dask_wait

        while True:
            try:
                done, _ = dask_wait(list(self._futures), timeout=self._wait_timeout(),
                                    return_when="FIRST_COMPLETED")
            except TimeoutError:
                done = set()
            outcomes = [self._outcome(f) for f in sorted(done, key=lambda f: self._futures[f])]
            outcomes += self._expire_overdue()
            if outcomes:
                return outcomes

    def _wait_timeout(self) -> float | None:
        """How long to wait for the next outcome: until the oldest started trial is overdue,
        and at most :data:`START_POLL` seconds while some trial has not started yet."""
        if not self.trial_timeout or not self._futures:
            return None
        self._note_starts()
        limit = (min(self._started.values()) + self.trial_timeout - time.time()
                 if self._started else math.inf)
        if len(self._started) < len(self._futures):
            limit = min(limit, START_POLL)
        return max(0.05, limit)

    def _note_starts(self) -> None:
        """A trial's timeout counts from when a worker took it (the scheduler's
        ``processing``), not from its submission: a trial waiting for a worker that is being
        restarted (after another trial's timeout) is not charged for the wait."""
        waiting = [f for f in self._futures if f not in self._started]
        if not waiting:
            return
        taken = {key for keys in self.client.processing().values() for key in keys}
        now = time.time()
        for future in waiting:
            if future.key in taken:
                self._started[future] = now

    def _outcome(self, future: Any) -> Outcome:
        from distributed.scheduler import KilledWorker

        eval_id, _ = self._futures.pop(future)
        self._started.pop(future, None)
        try:
            return Outcome.from_dict(future.result())
        except KilledWorker as exc:
            return _failure(eval_id, "lost", f"worker died during the trial: {exc}")
        except Exception as exc:  # the task machinery itself failed
            fault = infrastructure_fault(exc)
            if fault is not None:
                return _failure(eval_id, "infrastructure", fault)
            return _failure(eval_id, "failed", f"worker failure: {type(exc).__name__}: {exc}")

    def _expire_overdue(self) -> list[Outcome]:
        if not self.trial_timeout:
            return []
        self._note_starts()
        now = time.time()
        overdue = [f for f, started in self._started.items()
                   if now - started > self.trial_timeout and not f.done()]
        if not overdue:
            return []
        processing = self.client.processing()
        workers = {w for f in overdue for w, keys in processing.items() if f.key in keys}
        outcomes = []
        for future in overdue:
            eval_id, _ = self._futures.pop(future)
            del self._started[future]
            future.cancel()
            outcomes.append(_failure(
                eval_id, "failed",
                f"timed out after {self.trial_timeout:g} s (execution.trial_timeout)"))
        if workers:
            log.warning("ending worker process(es) %s to stop timed-out trial(s); their "
                        "nannies start fresh ones", sorted(workers))
            self.client.run(_exit_worker_process, workers=sorted(workers), wait=False)
            self._await_exits(workers)
        return outcomes

    def _await_exits(self, ended: set[str]) -> None:
        """Wait (at most :data:`EXIT_WAIT` seconds) until the scheduler no longer lists the
        ended worker processes, so that the next trials are not handed to a dying worker
        (they would come back ``lost`` and be submitted again)."""
        deadline = time.time() + EXIT_WAIT
        while set(self.client.nthreads()) & ended and time.time() < deadline:
            time.sleep(0.05)

    @property
    def in_flight(self) -> int:
        return len(self._futures)

    def run_tasks(self, function: Callable[[dict[str, Any]], Any],
                  payloads: list[dict[str, Any]], max_retries: int = 0
                  ) -> Iterator[TaskOutcome]:
        """Submit every payload now (each ``payload["task"]`` names it; the first ones start
        first) and yield outcomes in completion order. A task whose worker process died is
        submitted again, up to ``max_retries`` times (it is deterministic: the same inputs give
        the same result); after that its outcome carries the
        :class:`~distributed.scheduler.KilledWorker`."""
        from distributed import as_completed

        attempts: dict[Any, tuple[dict[str, Any], int]] = {}

        order = {payload["task"]: len(payloads) - i for i, payload in enumerate(payloads)}

        def submit(payload: dict[str, Any], attempt: int) -> Any:
            future = self.client.submit(function, payload, pure=False,
                                        key=f"{self.key_prefix}final-{payload['task']}-{attempt}",
                                        priority=order[payload["task"]])
            attempts[future] = (payload, attempt)
            self._tasks.add(future)
            return future

        pending = as_completed([submit(payload, 1) for payload in payloads])

        def completed() -> Iterator[TaskOutcome]:
            from distributed.scheduler import KilledWorker

            for future in pending:
                payload, attempt = attempts.pop(future)
                self._tasks.discard(future)
                try:
                    result = future.result()
                except KilledWorker as exc:
                    if attempt <= max_retries:
                        log.warning("%s: worker died (%s); running it again (attempt %d of %d)",
                                    payload["task"], exc, attempt + 1, max_retries + 1)
                        pending.add(submit(payload, attempt + 1))
                        continue
                    yield TaskOutcome(payload, error=exc)
                except Exception as exc:  # raised by the task: the caller decides
                    yield TaskOutcome(payload, error=exc)
                else:
                    yield TaskOutcome(payload, result)

        return completed()

    def close(self) -> None:
        """Cancel what is in flight and release the client and cluster (once)."""
        if self._closed:
            return
        self._closed = True
        for future in list(self._futures) + list(self._tasks):
            future.cancel()
        self._futures.clear()
        self._tasks.clear()
        if not self.owns_client:
            return
        try:
            with silenced_cluster_loggers():
                self.client.close()
                if self.cluster is not None:
                    self.cluster.close()
        except TimeoutError:
            # Every result is journaled by now: a cluster slow to stop (a nanny that does not
            # end its worker in time on a busy machine) is no reason to fail the run.
            killed = _kill_worker_processes(self.cluster)
            log.warning("the dask cluster did not shut down in time; %d worker process(es) "
                        "killed", killed)

    def view(self, name: str) -> Executor:
        """A view on this executor's client (see :meth:`Executor.view`)."""
        return DaskExecutor(self.client, None, f"{self.description} ({name})",
                            self.trial_timeout, key_prefix=f"{self.key_prefix}{name}-",
                            owns_client=False)


def _kill_worker_processes(cluster: Any) -> int:
    """SIGKILL the worker processes of a local cluster's nannies that are still alive (after
    its close timed out); how many were."""
    killed = 0
    for nanny in list(getattr(cluster, "workers", {}).values()):
        process = getattr(getattr(nanny, "process", None), "process", None)
        pid = getattr(process, "pid", None)
        if pid is not None and process.is_alive():
            with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
                os.kill(pid, signal.SIGKILL)
                killed += 1
    return killed


async def _exit_worker_process() -> None:  # pragma: no cover - runs in (and ends) a worker
    """Runs on a worker's event loop (not its busy task thread) and ends the process at once
    (a coroutine, as dask requires for a fire-and-forget ``Client.run``)."""
    os._exit(70)


def worker_died(exc: BaseException) -> bool:
    """Whether ``exc`` is dask's ``KilledWorker``: the task's worker process died on every
    attempt (:meth:`DaskExecutor.run_tasks`), which says nothing the task computed."""
    try:
        from distributed.scheduler import KilledWorker
    except ImportError:  # pragma: no cover - distributed is a dependency
        return False
    return isinstance(exc, KilledWorker)


def _failure(eval_id: int, status: str, error: str) -> Outcome:
    now = time.time()
    return Outcome(eval_id=eval_id, status=status, score=None, metrics=None, error=error,
                   worker="?", device="?", started_at=now, finished_at=now)


def parse_gpu_ids(text: str) -> list[int] | None:
    """``"0,1,3"`` → ``[0, 1, 3]``; empty → ``None`` (CPU). Bad input is a :class:`UserError`."""
    if not text.strip():
        return None
    try:
        ids = [int(part) for part in text.split(",")]
    except ValueError:
        raise UserError(f"--gpu-ids: expected comma-separated GPU indices like 0,1, got {text!r}"
                        ) from None
    if any(i < 0 for i in ids) or len(set(ids)) != len(ids):
        raise UserError(f"--gpu-ids: expected distinct non-negative indices, got {text!r}")
    return ids


def cuda_device_count() -> int:
    """GPUs usable by this process (0 without a driver or a CUDA build of torch)."""
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except ImportError:  # pragma: no cover
        return 0


def make_executor(
    workers: int, scheduler_address: str | None = None, gpu_ids: list[int] | None = None,
    trial_timeout: float | None = None, trials_per_gpu: int = 1,
) -> Executor:
    """The executor for these settings.

    ``gpu_ids`` → dask-cuda ``LocalCUDACluster`` with one worker per GPU running
    ``trials_per_gpu`` trials at once (a GPU asked for but absent raises
    :class:`GPUUnavailableError`); ``scheduler_address`` → that cluster;
    ``workers == 0`` → in-process; else a ``LocalCluster`` of ``workers`` single-threaded
    processes. Local worker processes ignore SIGINT: a Ctrl-C reaches this process only, which
    shuts them down. A scheduler address is checked before dask connects to it
    (:func:`~cryptosweep.execution.scheduler.check_scheduler_address`).

    A trial's share of GPU memory (``gpu_settings.memory_fraction``) is applied by the
    frameworks inside the trial (:class:`~cryptosweep.core.reproducibility.ReproducibilityManager`),
    not here: dask-cuda's ``device_memory_limit`` is a spill threshold for dask's own data.
    """
    if scheduler_address:
        import_distributed()
        from distributed import Client

        from cryptosweep.execution.scheduler import check_scheduler_address

        address = check_scheduler_address(scheduler_address)
        try:
            client = Client(address, timeout="10s")
        except OSError as exc:
            raise UserError(
                f"--scheduler-address: cannot reach {scheduler_address}: {exc}"
            ) from None
        except Exception as exc:  # whatever else dask raises: still the address's fault
            raise UserError(f"--scheduler-address {scheduler_address}: dask could not connect "
                            f"({type(exc).__name__}: {exc})") from None
        return DaskExecutor(client, description=f"dask scheduler {scheduler_address}",
                            trial_timeout=trial_timeout)
    if gpu_ids:
        available = cuda_device_count()
        missing = [g for g in gpu_ids if g >= available]
        if missing:
            raise GPUUnavailableError(
                f"--gpu-ids {','.join(map(str, gpu_ids))}: GPU(s) {missing} not available "
                f"(this machine has {available} usable CUDA device(s))"
            )
        import_distributed()
        from dask_cuda import LocalCUDACluster

        check_spawn_safe()
        # CUDA's default order is "fastest first"; NVML's is the PCI bus. Make them agree, so
        # the GPU index a trial records is the one the monitor samples.
        os.environ.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
        with _no_silent_reruns(), _workers_ignore_sigint():
            cluster = LocalCUDACluster(
                CUDA_VISIBLE_DEVICES=",".join(map(str, gpu_ids)),
                threads_per_worker=trials_per_gpu, dashboard_address=None,
                scheduler_kwargs=NO_DASHBOARD,
            )
        return DaskExecutor(
            _local_client(cluster), cluster,
            description=f"dask-cuda LocalCUDACluster on GPUs {gpu_ids}",
            trial_timeout=trial_timeout,
        )
    if workers == 0:
        return InProcessExecutor(trial_timeout)
    import_distributed()
    from distributed import LocalCluster

    check_spawn_safe()
    with _no_silent_reruns(), _workers_ignore_sigint():
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
            scheduler_kwargs=NO_DASHBOARD, silence_logs=logging.ERROR,
        )
    return DaskExecutor(
        _local_client(cluster), cluster,
        description=f"dask LocalCluster of {workers} CPU worker(s)",
        trial_timeout=trial_timeout,
    )


def _local_client(cluster: Any) -> Any:
    """A client of a cluster this process started, whose workers log no heartbeat failure
    when it shuts down (:class:`~cryptosweep.execution.worker_logging.QuietShutdown`). A
    cluster whose client cannot start is closed, not left running; a plugin that cannot be
    set up costs only the quiet shutdown (a warning), never the run."""
    from distributed import Client

    from cryptosweep.execution.worker_logging import QuietShutdown

    try:
        client = Client(cluster)
    except BaseException:
        with contextlib.suppress(Exception), silenced_cluster_loggers():
            cluster.close()
        raise
    try:
        client.register_plugin(QuietShutdown())
    except Exception as exc:
        log.warning("dask workers: their shutdown may log a heartbeat traceback (%s: %s)",
                    type(exc).__name__, exc)
    return client


def _no_silent_reruns() -> Any:
    """Scheduler config: a task whose worker dies fails at once (``KilledWorker``) instead of
    being re-run behind our back, so every retry is the runner's, journaled and counted."""
    import dask

    return dask.config.set({"distributed.scheduler.allowed-failures": 0})


@contextlib.contextmanager
def _workers_ignore_sigint() -> Iterator[None]:
    """Start worker processes with SIGINT ignored (a disposition children inherit), so that a
    Ctrl-C in the terminal stops the sweep once, in this process, instead of printing every
    worker's ``KeyboardInterrupt``. Only the main thread can change it; elsewhere, a no-op."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def check_spawn_safe() -> None:
    """Fail at once, with what to do, where starting worker processes would hang.

    Worker processes are started by *spawning* a fresh interpreter that re-imports the main
    module. A script that starts a sweep at its top level, outside an
    ``if __name__ == "__main__":`` guard, would start it again in every worker (they fail to
    bootstrap and the sweep waits for them forever); a script read from standard input
    (``python -``) cannot be re-imported at all. Notebooks, ``python -c`` and the
    ``cryptosweep`` command are unaffected.
    """
    main = sys.modules.get("__main__")
    main_file = getattr(main, "__file__", None)
    if main is None or main_file is None or getattr(main, "__spec__", None) is not None:
        return  # interactive, a notebook kernel, -c, or -m: nothing to re-import
    if not Path(main_file).is_file():
        raise ConfigError(
            f"cannot start worker processes from a script read from {main_file}: save it to a "
            "file with the sweep under `if __name__ == \"__main__\":`, or run in-process "
            "(workers=0 / --workers 0)"
        )
    line = _main_call_line(main_file)
    if line is not None and not _guarded(Path(main_file), line):
        raise ConfigError(
            f"{main_file}, line {line}: a sweep started at the top level of a script would be "
            "started again by every worker process; put it under `if __name__ == \"__main__\":`"
            " (or run in-process with workers=0)"
        )


def _main_call_line(main_file: str) -> int | None:
    """The line of the main script's top-level code that this call comes from."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_filename == main_file and frame.f_code.co_name == "<module>":
            return frame.f_lineno
        frame = frame.f_back  # type: ignore[assignment]
    return None


def _guarded(script: Path, line: int) -> bool:
    """Whether ``line`` of ``script`` lies inside an ``if`` that tests ``__name__``."""
    try:
        tree = ast.parse(script.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return True  # cannot tell: let dask try
    for node in tree.body:
        end = getattr(node, "end_lineno", node.lineno)
        if node.lineno <= line <= end:
            return isinstance(node, ast.If) and any(
                isinstance(name, ast.Name) and name.id == "__name__"
                for name in ast.walk(node.test))
    return True
