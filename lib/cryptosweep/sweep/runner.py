"""The sweep loop: ask -> journal -> submit -> gather -> journal -> tell, with resume.

Results are told as they complete; the strategies' base class decides in which order they are
observed (eval-id order unless the strategy does not depend on it).

Resume is deterministic replay: the strategy is rebuilt from the journaled config and seed and
asked again from the start; every evaluation the journal already holds as finished is told from
the journal instead of being run, so the strategy sees exactly the history it saw before the
interruption and proposes exactly the same evaluations afterwards.

Nothing is created or changed before everything that can be checked is (config, run name, seed,
size, parameters, data, the journal of a resume, the scheduler): a bad input leaves no folder
and touches no journal. The run folder is locked (:mod:`~cryptosweep.core.locking`) while this
process writes it. An infrastructure fault (disk full, I/O error: :mod:`~cryptosweep.core.faults`),
in a worker or here, stops the sweep with :class:`~cryptosweep.core.errors.InfrastructureError`
(exit 6) and leaves the evaluations it hit unfinished in the journal, for ``--resume``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptosweep.core.config import (
    SweepConfig,
    config_as_made,
    config_hash,
    load_config,
    resolve_seed,
    validate_config,
)
from cryptosweep.core.errors import (
    InfrastructureError,
    ResumeError,
    SweepFailedError,
    SweepInterrupted,
    UserError,
)
from cryptosweep.core.faults import infrastructure_fault
from cryptosweep.core.files import PRIVATE_MODE, write_json_atomic
from cryptosweep.core.locking import RunLock
from cryptosweep.core.reproducibility import setup_crypto_gpu_reproducibility
from cryptosweep.execution.checkpoints import checkpoint_spec, remove_checkpoints
from cryptosweep.execution.environment import system_info
from cryptosweep.execution.executors import Executor, Outcome, make_executor, parse_gpu_ids
from cryptosweep.execution.monitor import ResourceMonitor
from cryptosweep.execution.progress import Progress
from cryptosweep.records.journal import (
    DB_NAME,
    SCHEMA_VERSION,
    EvaluationRow,
    Journal,
    JournalInfo,
    inspect_journal,
)
from cryptosweep.strategies import EvalRequest, EvalResult, Strategy, make_strategy
from cryptosweep.sweep.finalize import finalize_run
from cryptosweep.sweep.preflight import available_cores, preflight

log = logging.getLogger(__name__)

MIN_EVALS_FOR_FAILURE_CHECK = 5
LOG_FILE = "sweep_output.log"


@dataclass(frozen=True)
class SweepResult:
    """What a finished sweep left behind."""

    run_dir: Path
    files: dict[str, Path]
    results: dict[str, Any]


def utc_stamp(now: float | None = None) -> str:
    return time.strftime("%Y%m%d_%H%M%S", time.gmtime(now if now is not None else time.time()))


# ------------------------------------------------------------------------------ the search loop


class SweepLoop:
    """Drives one strategy against one executor, journaling every step."""

    def __init__(
        self, config: SweepConfig, seed: int, journal: Journal, executor: Executor,
        show_progress: bool = True, use_gpu: bool = False,
    ) -> None:
        self.config, self.seed, self.journal, self.executor = config, seed, journal, executor
        self.show_progress, self.use_gpu = show_progress, use_gpu
        self.spec = config.objective_spec().to_payload()
        self._trial_ids: dict[int, int] = {}
        self._budgets: dict[int, float] = {}
        self._payloads: dict[int, dict[str, Any]] = {}
        self._finished = self._failed = 0  # every finished evaluation, journaled ones included

    def run(self) -> Strategy:
        strategy = make_strategy(self.config, self.seed)
        journal = {row.eval_id: row for row in self.journal.evaluations()}
        finished_before = sum(row.status in ("done", "failed") for row in journal.values())
        self._finished = finished_before
        self._failed = sum(row.status == "failed" for row in journal.values())
        if journal:
            log.info("resuming: %d evaluations in the journal, %d finished (%d failed)",
                     len(journal), finished_before, self._failed)
        progress = Progress(strategy.total_evaluations, self.show_progress, finished_before,
                            full_budget=float(self.config.full_budget_units))
        capacity = max(1, self.executor.capacity)
        try:
            while True:
                while self.executor.in_flight < capacity:
                    request = strategy.ask()
                    if request is None:
                        break
                    replayed = self._journal_or_submit(request, journal.get(request.eval_id))
                    if replayed is not None:  # finished before an interruption: told again
                        strategy.tell(replayed)
                        progress.observe(replayed.score, request.budget)
                if self.executor.in_flight == 0:
                    if strategy.finished:
                        break
                    raise RuntimeError(f"strategy {strategy.name} stalled with nothing running")
                for outcome in self.executor.wait():
                    if outcome.status == "infrastructure":
                        self._stop_for_infrastructure(outcome)
                    if outcome.status == "lost" and self._retry(outcome):
                        continue
                    strategy.tell(self._record(outcome))
                    progress.update(outcome.score, self._budgets[outcome.eval_id],
                                    failed=outcome.status != "done")
                    self._check_failures()
        finally:
            progress.close()
        return strategy

    def _journal_or_submit(
        self, request: EvalRequest, row: EvaluationRow | None
    ) -> EvalResult | None:
        """A finished journaled evaluation is returned as its result; anything else is run."""
        self._trial_ids[request.eval_id] = request.trial_id
        self._budgets[request.eval_id] = request.budget
        if row is not None:
            _check_replay(row, request)
            if row.status in ("done", "failed"):
                return EvalResult(row.eval_id, row.trial_id, row.status, row.score)  # type: ignore[arg-type]
        self._payloads[request.eval_id] = {
            "eval_id": request.eval_id, "params": request.params, "budget": request.budget,
            "seed": request.seed, "spec": self.spec, "use_gpu": self.use_gpu,
            "checkpoint": checkpoint_spec(self.config, self.journal.path.parent, request.trial_id,
                                          request.tags),
        }
        if row is not None:  # journaled but unfinished (interrupted): one more attempt
            self._submit(request.eval_id)
            return None
        self.journal.add_evaluation(
            request.eval_id, request.trial_id, request.params, request.seed, request.budget,
            request.tags, submitted_at=time.time(),
        )
        self.executor.submit({**self._payloads[request.eval_id], "attempt": 1})
        log.debug("eval %d submitted: trial %d, budget %g, seed %d", request.eval_id,
                  request.trial_id, request.budget, request.seed)
        return None

    def _submit(self, eval_id: int) -> int:
        attempt = self.journal.mark_submitted(eval_id, time.time())
        self.executor.submit({**self._payloads[eval_id], "attempt": attempt})
        log.debug("eval %d submitted again: attempt %d", eval_id, attempt)
        return attempt

    def _retry(self, outcome: Outcome) -> bool:
        """Re-run a trial whose worker died, with the same seed, while retries are left."""
        self.journal.mark_attempt_outcome(outcome.eval_id, "lost")
        attempts = sum(1 for eval_id, _, _ in self.journal.attempt_outcomes()
                       if eval_id == outcome.eval_id)
        if attempts > self.config.execution.max_retries:
            log.error("evaluation %d: worker died in all %d attempts", outcome.eval_id, attempts)
            return False
        log.warning("evaluation %d: %s; retrying (attempt %d of %d)", outcome.eval_id,
                    outcome.error, attempts + 1, self.config.execution.max_retries + 1)
        self._submit(outcome.eval_id)
        return True

    def _stop_for_infrastructure(self, outcome: Outcome) -> None:
        """A worker's evaluation hit an infrastructure fault: not a result. Its attempt is
        closed as such (if the journal can still be written) and the evaluation stays
        unfinished, so that a resume runs it again; the sweep stops."""
        with contextlib.suppress(Exception):
            self.journal.mark_attempt_outcome(outcome.eval_id, "infrastructure")
        raise InfrastructureError(
            f"evaluation {outcome.eval_id} could not be stored by its worker ({outcome.error}); "
            "it is not counted as a result"
        )

    def _check_failures(self) -> None:
        limit = self.config.execution.max_failure_fraction
        if self._finished >= MIN_EVALS_FOR_FAILURE_CHECK and self._failed > limit * self._finished:
            raise SweepFailedError(
                f"{self._failed} of {self._finished} evaluations failed, more than "
                f"execution.max_failure_fraction={limit:g}; stopping. Everything finished is in "
                f"the journal; see the failures in {LOG_FILE} and resume with --resume once fixed"
            )

    def _record(self, outcome: Outcome) -> EvalResult:
        self._finished += 1
        if outcome.status != "done":
            self._failed += 1
            log.warning("evaluation %d failed: %s", outcome.eval_id, outcome.error)
            outcome = dataclasses.replace(outcome, status="failed")
        else:
            log.debug("eval %d done: score %+.4f in %.2f s on %s (%s)", outcome.eval_id,
                      outcome.score, outcome.finished_at - outcome.started_at, outcome.worker,
                      outcome.device)
        self.journal.finish_evaluation(
            outcome.eval_id, status=outcome.status, score=outcome.score, metrics=outcome.metrics,
            error=outcome.error, worker=outcome.worker, device=outcome.device,
            started_at=outcome.started_at, finished_at=outcome.finished_at,
            returns=outcome.returns,
        )
        trial_id = self._trial_ids[outcome.eval_id]
        return EvalResult(outcome.eval_id, trial_id, outcome.status, outcome.score)  # type: ignore[arg-type]


def _check_replay(row: EvaluationRow, request: EvalRequest) -> None:
    same = (
        row.trial_id == request.trial_id and row.params == request.params
        and row.seed == request.seed and row.budget == request.budget
    )
    if not same:
        raise ResumeError(
            f"journal diverges from the strategy at evaluation {request.eval_id}: the run was "
            "made by another version of cryptosweep or its journal was edited"
        )


# --------------------------------------------------------------------------- runs and resume


class _RunLogHandler(logging.FileHandler):
    """The run's log file, private (0600: it may name paths, hosts and errors), and quiet when
    it cannot be written (a full disk): the failure is the sweep's to report, once, not a
    traceback from the logging module for every line."""

    def __init__(self, path: Path) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE_MODE)
        os.close(fd)
        with contextlib.suppress(OSError):
            os.chmod(path, PRIVATE_MODE)
        super().__init__(path, encoding="utf-8")
        self.failed = False

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        self.failed = True


def _attach_log_file(run_dir: Path, this_thread_only: bool = False) -> logging.Handler:
    handler = _RunLogHandler(run_dir / LOG_FILE)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    if this_thread_only:  # sweeps run side by side in threads: each logs its own lines
        thread = threading.get_ident()
        handler.addFilter(lambda record: record.thread == thread)
    package_logger = logging.getLogger("cryptosweep")
    package_logger.addHandler(handler)
    if package_logger.level == logging.NOTSET:  # the CLI's --log-level wins when it set one
        package_logger.setLevel(logging.INFO)
    return handler


def check_run_name(name: str) -> str:
    """A run name is one plain folder name: not empty, no ``/`` or ``\\``, not ``.`` or ``..``,
    no control character (a newline would split log lines and shell commands)."""
    plain = (name not in ("", ".", "..") and "/" not in name and "\\" not in name
             and name == name.strip() and all(ch.isprintable() for ch in name))
    if not plain or len(name.encode()) > 200:
        raise UserError(f"--run-name {name!r}: expected one plain folder name (letters, digits, "
                        "'_', '-', '.'; no '/', no '..', no control characters)")
    return name


def _run_folder(config: SweepConfig, log_dir: Path, run_name: str | None) -> tuple[Path, str]:
    """The new run's folder and time stamp; a folder that already holds a sweep is refused."""
    stamp = utc_stamp()
    run_dir = Path(log_dir) / (run_name or f"{config.name}_{stamp}")
    _refuse_existing(run_dir)
    return run_dir, stamp


def _refuse_existing(run_dir: Path) -> None:
    if (run_dir / DB_NAME).exists():
        raise UserError(
            f"run folder {run_dir} already holds a sweep; resume it with --resume {run_dir} "
            "or choose another --run-name"
        )


def _new_run(config: SweepConfig, seed: int, run_dir: Path, stamp: str
             ) -> tuple[Journal, RunLock]:
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--log-dir: cannot create {run_dir}: {exc.strerror}") from None
    lock = RunLock.acquire(run_dir)
    try:
        _refuse_existing(run_dir)  # made by whoever held the lock a moment ago
        # Private, like the log: SQLite gives its -wal and -shm files the journal's mode.
        os.close(os.open(run_dir / DB_NAME, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE))
        journal = Journal(run_dir / DB_NAME)
        journal.set_meta(
            config=config.canonical(), config_hash=config.results_hash(), seed=seed,
            timestamp=stamp, created_at=time.time(), status="running",
            schema_version=SCHEMA_VERSION,
        )
    except BaseException:
        lock.release()
        raise
    return journal, lock


def _resume_config(journal: JournalInfo, config: SweepConfig | None, seed: int | None,
                   overrides: Sequence[str] = ()) -> tuple[SweepConfig, int]:
    """The config and seed to resume with. ``config`` (``--config``), or ``overrides``
    (``--set``) applied to the journaled config, may change how the run executes, never what
    it computes."""
    path = journal.db
    stored = validate_config(config_as_made(journal.config), f"journal {path}")
    if config is None and overrides:
        config = load_config(raw=stored.canonical(), overrides=list(overrides))
    if config is not None:
        # Recomputed from both configs (not read from the journal), so that a run whose hash
        # was taken by an older rule still compares by what decides its results.
        if config_hash(config.canonical()) != config_hash(stored.canonical()):
            raise ResumeError(
                f"--resume {path.parent}: the given config differs from the one this run was "
                "started with in what decides its results; resume without --config/--set, or "
                "start a new run (only execution settings such as execution.workers may change)"
            )
        if config.canonical() != stored.canonical():
            log.info("resuming with the given config's execution settings")
        stored = config
    if seed is not None and seed != journal.seed:
        raise ResumeError(
            f"--resume {path.parent}: --seed {seed} differs from the run's seed {journal.seed}"
        )
    return stored, journal.seed


def _check_same_data(journal: JournalInfo, data: dict[str, Any]) -> None:
    recorded = journal.data
    if recorded is not None and recorded["sha256"] != data["sha256"]:
        raise ResumeError(
            f"--resume {journal.run_dir}: the data at {data['path']} changed since the run "
            "started (its SHA-256 differs); start a new run on the new data"
        )


def run_sweep(
    config_path: str | Path | None = None,
    *,
    config: SweepConfig | None = None,
    seed: int | None = None,
    overrides: Sequence[str] = (),
    data_path: str | Path | None = None,
    log_dir: str | Path = "sweep_logs",
    run_name: str | None = None,
    gpu_ids: str | Sequence[int] | None = None,
    workers: int | None = None,
    scheduler_address: str | None = None,
    resume: str | Path | None = None,
    show_progress: bool = True,
    executor: Executor | None = None,
) -> SweepResult:
    """Run (or resume) a sweep end to end and write its run folder.

    The CLI and ``notebooks/sweep.ipynb`` are thin layers over this function. Results do not
    depend on ``workers``, ``gpu_ids`` or ``scheduler_address``: only on config, seed and
    software. The master seed is ``seed`` when given, else the config's ``seed``, else
    :data:`~cryptosweep.core.config.DEFAULT_SEED` (:func:`~cryptosweep.core.config.resolve_seed`).

    Everything is checked before anything is created or changed (:func:`preflight`, the
    journal of a resume read-only, the scheduler); the run folder is locked while this process
    writes it. An interruption (SIGINT, or SIGTERM turned into :class:`SweepInterrupted` by the
    caller) ends in :class:`SweepInterrupted` carrying the run folder to resume; a full disk or
    an I/O error in :class:`~cryptosweep.core.errors.InfrastructureError`.

    ``executor``: run on this executor instead of starting one (``workers``,
    ``scheduler_address`` are then unused; ``gpu_ids`` still says whether trials use GPUs);
    it is closed at the end, so pass a :meth:`~cryptosweep.execution.executors.Executor.view` of a
    shared one (the walk-forward's windows). Such a sweep logs only its own thread's lines.
    """
    gpu_ids = parse_gpu_ids(gpu_ids) if isinstance(gpu_ids, str) else gpu_ids
    given = executor
    if run_name is not None:
        check_run_name(run_name)
    if config is None and (config_path is not None or data_path is not None
                           or (overrides and resume is None)):
        config = load_config(config_path, list(overrides), data_path)
        overrides = ()
    if resume is not None:
        resumed = inspect_journal(resume)
        config, seed = _resume_config(resumed, config, seed, overrides)
        address = scheduler_address or config.execution.scheduler_address
        lock = RunLock.acquire(resumed.run_dir)
        try:
            plan = preflight(config, local=not address)
            _check_same_data(resumed, plan.data)
            executor = given if given is not None else start_executor(
                config, gpu_ids, workers, scheduler_address)
            try:
                journal = _infrastructure_checked(lambda: Journal(resumed.db), resumed.run_dir)
            except BaseException:
                executor.close()
                raise
        except BaseException:
            lock.release()
            raise
        run_dir, stamp = resumed.run_dir, resumed.timestamp
    else:
        if config is None:
            raise UserError("no config given: pass --config PATH (or --resume RUN_DIR)")
        seed = resolve_seed(seed, config)
        address = scheduler_address or config.execution.scheduler_address
        run_dir, stamp = _run_folder(config, Path(log_dir), run_name)
        # Bad data, an unreachable scheduler or absent GPUs fail before any folder exists.
        plan = preflight(config, local=not address)
        executor = given if given is not None else start_executor(
            config, gpu_ids, workers, scheduler_address)
        try:
            journal, lock = _infrastructure_checked(
                lambda: _new_run(config, seed, run_dir, stamp), None)
        except BaseException:
            executor.close()
            raise
    assert seed is not None and executor is not None
    try:
        handler = _infrastructure_checked(
            lambda: _attach_log_file(run_dir, this_thread_only=given is not None), run_dir)
    except BaseException:
        executor.close()
        journal.close()
        lock.release()
        raise
    try:
        if resume is None or resumed.data != plan.data:  # (a newer version describes the same
            journal.set_meta(data=plan.data)  # candles with more: bar interval, fold dates, ...)
        log.info("sweep: %s", plan.describe(config))
        return _execute(config, seed, run_dir, journal, stamp, executor, bool(gpu_ids),
                        show_progress)
    except KeyboardInterrupt as exc:
        interrupted = SweepInterrupted(run_dir, getattr(exc, "signal_name", "SIGINT"))
        # Into the run's log only: the caller shows the exception itself, once.
        handler.handle(log.makeRecord(log.name, logging.WARNING, __file__, 0, str(interrupted),
                                      (), None))
        raise interrupted from None
    except Exception as exc:
        fault = exc if isinstance(exc, InfrastructureError) else None
        why = str(exc) if fault else infrastructure_fault(exc)
        if why is None:
            raise
        raise InfrastructureError(_infrastructure_message(why, run_dir)) from None
    finally:
        logging.getLogger("cryptosweep").removeHandler(handler)
        handler.close()
        executor.close()  # _execute closed it already, unless it failed before
        journal.close()
        lock.release()


def _infrastructure_message(why: str, run_dir: Path) -> str:
    return (f"the machine failed the sweep: {why}. Nothing was recorded as a trial result and "
            f"the journal is consistent; fix the cause (free disk space), then resume with: "
            f"cryptosweep run --resume {run_dir}")


def _infrastructure_checked(make: Callable[[], Any], run_dir: Path | None) -> Any:
    """``make()``, with an infrastructure fault turned into :class:`InfrastructureError`."""
    try:
        return make()
    except Exception as exc:
        why = infrastructure_fault(exc)
        if why is None:
            raise
        if run_dir is None:
            raise InfrastructureError(f"the machine failed the sweep before it started: {why}"
                                      ) from None
        raise InfrastructureError(_infrastructure_message(why, run_dir)) from None


def start_executor(
    config: SweepConfig, gpu_ids: Sequence[int] | None, workers: int | None,
    scheduler_address: str | None,
) -> Executor:
    """The executor a sweep (or a walk-forward's windows) runs on: ``workers`` (else the
    config's ``execution.workers``, else one per core), ``scheduler_address`` or ``gpu_ids``
    (:func:`~cryptosweep.execution.executors.make_executor`)."""
    n_workers = workers if workers is not None else config.execution.workers
    if n_workers is None:
        n_workers = available_cores()
    address = scheduler_address or config.execution.scheduler_address
    executor = make_executor(n_workers, address, list(gpu_ids) if gpu_ids else None,
                             config.execution.trial_timeout, config.gpu_settings.trials_per_gpu)
    if not gpu_ids and not address:
        log.info("no --gpu-ids given: trials run on CPU (%s)", executor.description)
    return executor


def _execute(
    config: SweepConfig, seed: int, run_dir: Path, journal: Journal, stamp: str,
    executor: Executor, use_gpu: bool, show_progress: bool,
) -> SweepResult:
    repro = setup_crypto_gpu_reproducibility(seed, config.gpu_settings.deterministic)
    now = utc_stamp()
    info = system_info(config.results_hash())
    info.update(seed=seed, not_set=repro.not_set, notes=repro.notes, run_dir=str(run_dir))
    write_json_atomic(run_dir / f"gpu_repro_{now}.json", info)
    log.info("run %s: %s sweep, seed %d, on %s", run_dir.name, config.sweep_type, seed,
             executor.description)
    monitor = ResourceMonitor(journal).start()
    started = time.time()
    with executor:
        try:
            strategy = SweepLoop(config, seed, journal, executor, show_progress,
                                 use_gpu=use_gpu).run()
        except SweepFailedError:
            journal.set_meta(status="failed")
            raise
        finally:
            monitor.stop()  # its last sample is in resource_usage_*.json, written next
        log.info("search finished in %.1f s; evaluating the top %d on the holdout",
                 time.time() - started, config.reporting.top_k)
        # On the executor while it is up: its workers already hold the data.
        finalizing = time.time()
        files, results = finalize_run(config, seed, run_dir, journal, stamp, strategy,
                                      executor, use_gpu)
        log.info("end of the sweep took %.1f s", time.time() - finalizing)
    if not results["counts"]["done"]:
        # Its files are written (the report shows why), but there is no winner.
        journal.set_meta(status="failed", finished_at=time.time())
        reasons = sorted({e["error"] for e in results["evaluations"] if e.get("error")})
        raise SweepFailedError(
            f"no evaluation succeeded ({results['counts']['failed']} failed); first reason: "
            f"{reasons[0] if reasons else 'none recorded'}; see {files['report']}"
        )
    journal.set_meta(status="complete", finished_at=time.time())
    if not config.reporting.keep_checkpoints:
        freed = remove_checkpoints(run_dir)
        if freed:
            log.info("removed the run's checkpoints (%.1f MB; reporting.keep_checkpoints keeps "
                     "them)", freed / 2**20)
    log.info("run folder: %s", run_dir)
    return SweepResult(run_dir=run_dir, files=files, results=results)

