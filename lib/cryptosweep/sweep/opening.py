"""Opening a run: a new run folder, or the resume of one, with everything checked first.

Nothing is created or changed before everything that can be checked is (config, run name, seed,
size, parameters, data, the journal of a resume, the scheduler): a bad input leaves no folder
and touches no journal. The run folder is locked (:mod:`~cryptosweep.core.locking`) while this
process writes it. :func:`open_new_run` and :func:`open_resume` give an :class:`OpenRun`: the
run's config, seed, folder, journal, lock, data plan and executor.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptosweep.core.config import SweepConfig, config_hash, named_differences, resolve_seed
from cryptosweep.core.config_files import config_as_made, load_config, validate_config
from cryptosweep.core.errors import InfrastructureError, ResumeError, UserError
from cryptosweep.core.faults import infrastructure_fault
from cryptosweep.core.files import PRIVATE_MODE
from cryptosweep.core.locking import RunLock
from cryptosweep.core.vocabulary import MULTI_FIDELITY_DEFAULT
from cryptosweep.execution.checkpoints import CHECKPOINT_DIR, continues_training
from cryptosweep.execution.executors import Executor, make_executor
from cryptosweep.records.inspection import (
    DB_NAME,
    JournalInfo,
    inspect_journal,
    never_written,
)
from cryptosweep.records.integrity import JournalDamagedError, describe_damage
from cryptosweep.records.journal import Journal
from cryptosweep.records.schema import SCHEMA_VERSION
from cryptosweep.sweep.preflight import SweepPlan, available_cores, preflight

log = logging.getLogger(__name__)

LOG_FILE = "sweep_output.log"
#: The longest run name, in bytes of UTF-8 (a folder name must stay under 255 bytes).
MAX_RUN_NAME_BYTES = 200


def utc_stamp(now: float | None = None) -> str:
    return time.strftime("%Y%m%d_%H%M%S", time.gmtime(now if now is not None else time.time()))


@dataclass
class OpenRun:
    """A run folder opened for writing: locked, its journal open, its executor started."""

    config: SweepConfig
    seed: int
    run_dir: Path
    stamp: str
    journal: Journal
    lock: RunLock
    plan: SweepPlan
    executor: Executor
    #: the data description the journal held before (a resume), None for a new run
    recorded_data: dict[str, Any] | None = None
    #: what the run's log should say first (a resume's repairs, a lost WAL)
    notes: tuple[str, ...] = ()
    #: a resume: ``config`` was rebuilt from the journal (or a --config checked against it)
    resumed: bool = False

    def close(self) -> None:
        self.executor.close()
        self.journal.close()
        self.lock.release()


def open_new_run(config: SweepConfig, seed: int | None, log_dir: str | Path,
                 run_name: str | None, scheduler_address: str | None,
                 start: Callable[[SweepConfig], Executor]) -> OpenRun:
    """A new run: its folder and time stamp chosen, the config checked (bad data, an
    unreachable scheduler or absent GPUs fail before any folder exists), the executor started
    by ``start``, then the folder made, locked and its journal created."""
    seed = resolve_seed(seed, config)
    address = scheduler_address or config.execution.scheduler_address
    run_dir, stamp = _run_folder(config, Path(log_dir), run_name)
    plan = preflight(config, local=not address)
    executor = start(config)
    try:
        journal, lock = infrastructure_checked(lambda: _new_run(config, seed, run_dir, stamp),
                                               None)
    except BaseException:
        executor.close()
        raise
    return OpenRun(config, seed, run_dir, stamp, journal, lock, plan, executor)


def open_resume(resume: str | Path, config: SweepConfig | None, seed: int | None,
                overrides: Sequence[str], scheduler_address: str | None,
                start: Callable[[SweepConfig], Executor]) -> OpenRun:
    """The resume of a run: its journal checked read-only, the config and seed it was started
    with (execution settings may change), the folder locked, the data unchanged, the executor
    started by ``start`` and the journal opened for writing. Damaged rows the replay does not
    need are removed then (:meth:`~cryptosweep.records.journal.Journal.repair`), so that the
    resume runs them again with their seeds; everything before is read-only."""
    resumed = inspect_journal(resume, repair=True)
    config, seed = _resume_config(resumed, config, seed, overrides)
    check_candles_in_place(resumed.run_dir, config)
    _check_repairable(resumed, config)
    address = scheduler_address or config.execution.scheduler_address
    lock = RunLock.acquire(resumed.run_dir)
    try:
        plan = preflight(config, local=not address)
        _check_same_data(resumed, plan.data)
        executor = start(config)
        try:
            journal = infrastructure_checked(lambda: _open_repaired(resumed), resumed.run_dir)
        except BaseException:
            executor.close()
            raise
        try:  # when each session began: the report tells a resumed run's pause from its work
            infrastructure_checked(lambda: journal.set_meta(resumed_at=[
                *journal.get_meta("resumed_at", []), time.time()]), resumed.run_dir)
        except BaseException:
            journal.close()
            executor.close()
            raise
    except BaseException:
        lock.release()
        raise
    notes = []
    if resumed.lost_wal:
        notes.append(f"journal {resumed.db} {resumed.lost_wal}; the resume keeps those and runs "
                     "what was lost again, with the same seeds")
    if resumed.damage:
        notes.append(f"journal {resumed.db} had {describe_damage(resumed.damage, limit=10)}; "
                     "removed: the resume runs them again with their recorded seeds")
    return OpenRun(config, seed, resumed.run_dir, resumed.timestamp, journal, lock, plan,
                   executor, recorded_data=resumed.data, notes=tuple(notes), resumed=True)


def _open_repaired(resumed: JournalInfo) -> Journal:
    journal = Journal(resumed.db)
    try:
        if resumed.damage:
            journal.repair(resumed.damage)
    except BaseException:
        journal.close()
        raise
    return journal


def _check_repairable(resumed: JournalInfo, config: SweepConfig) -> None:
    """Refuse, before anything changes, a repair whose re-run could not give the recorded
    result: an evaluation that may have continued from a checkpoint (a promoted Hyperband rung,
    or a row too damaged to tell), or a reproducibility re-run, once the run's checkpoints are
    gone (removed at its end)."""
    if (not resumed.damage or not continues_training(config)
            or (resumed.run_dir / CHECKPOINT_DIR).is_dir()):
        return
    tags = _intact_tags(resumed)
    needs = [d for d in resumed.damage
             if (d.reruns_evaluation is not None
                 and (tags.get(d.reruns_evaluation) or {"previous_budget": "?"}).get(
                     "previous_budget") is not None)
             or (d.table == "extra_evaluations" and d.key[0] == "repro")]
    if needs:
        raise JournalDamagedError(
            f"--resume: journal {resumed.db} has {describe_damage(needs)}; re-running it needs "
            f"the run's model checkpoints ({CHECKPOINT_DIR}/), removed at the end of the run, "
            "so it could not give the recorded result: restore a backup copy of the run "
            "folder, or start a new run")


def _intact_tags(resumed: JournalInfo) -> dict[int, dict[str, Any]]:
    """``eval_id`` → tags of the evaluations whose own row is intact (read-only)."""
    damaged = {d.key for d in resumed.damage if d.table == "evaluations"}
    journal = Journal(resumed.db, read_only=True)
    try:
        with journal._lock:
            rows = journal._conn.execute("SELECT eval_id, tags FROM evaluations").fetchall()
    finally:
        journal.close()
    return {eval_id: json.loads(tags) for eval_id, tags in rows if eval_id not in damaged}


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


def attach_log_file(run_dir: Path, this_thread_only: bool = False) -> logging.Handler:
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


#: What :func:`check_run_name` accepts, as its refusal says it.
RUN_NAME_RULE = ("printable characters, spaces, '#', '?', '%' and non-ASCII letters "
                 "included; not '.' or '..', no '/' or '\\', no space at either end, no "
                 f"control characters, at most {MAX_RUN_NAME_BYTES} bytes in UTF-8")


def check_run_name(name: str) -> str:
    """A run name is one plain folder name: printable characters (``#``, ``?``, ``%``, spaces
    and non-ASCII letters included: the index links to it URL-quoted), not empty, not ``.`` or
    ``..``, no ``/`` or ``\\``, no space at either end, no control character (a newline would
    split log lines and shell commands), at most :data:`MAX_RUN_NAME_BYTES` bytes in UTF-8."""
    plain = (name not in ("", ".", "..") and "/" not in name and "\\" not in name
             and name == name.strip() and all(ch.isprintable() for ch in name))
    if not plain or len(name.encode()) > MAX_RUN_NAME_BYTES:
        raise UserError(f"--run-name {name!r}: expected one plain folder name ({RUN_NAME_RULE})")
    return name


def _run_folder(config: SweepConfig, log_dir: Path, run_name: str | None) -> tuple[Path, str]:
    """The new run's folder and time stamp; a folder that already holds a sweep is refused."""
    stamp = utc_stamp()
    run_dir = Path(log_dir) / (run_name or f"{config.name}_{stamp}")
    _refuse_existing(run_dir)
    return run_dir, stamp


def _refuse_existing(run_dir: Path, locked: bool = False) -> None:
    """Refuse a folder that holds a sweep. One whose journal was never written (the run was
    killed while creating it: :func:`never_written`) holds nothing: a new run may take it,
    and removes that empty journal once it holds the folder's lock (``locked``)."""
    db = run_dir / DB_NAME
    if never_written(db):
        if locked:
            for leftover in (db.with_name(db.name + suffix)
                             for suffix in ("-journal", "-wal", "-shm", "")):
                leftover.unlink(missing_ok=True)
        return
    if db.exists():
        try:
            inspect_journal(run_dir, writable=False, repair=True)
        except ResumeError as exc:  # one that resume would refuse as not a journal at all
            if "not a cryptosweep journal" not in str(exc):
                raise UserError(
                    f"run folder {run_dir} already holds a sweep; resume it with --resume "
                    f"{run_dir} or choose another --run-name"
                ) from None
            why = str(exc).split(": ", 1)[-1]
            raise UserError(
                f"run folder {run_dir} holds a {DB_NAME} that cannot be resumed ({why}); "
                "choose another --run-name, or move that folder away"
            ) from None
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
        _refuse_existing(run_dir, locked=True)  # made by whoever held the lock a moment ago
        # Private, like the log: SQLite gives its -wal and -shm files the journal's mode.
        os.close(os.open(run_dir / DB_NAME, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE))
        journal = Journal(run_dir / DB_NAME)
        journal.set_meta(
            config=config.canonical(), config_hash=config.results_hash(), seed=seed,
            timestamp=stamp, created_at=time.time(), status="running",
            schema_version=SCHEMA_VERSION,
        )
        journal.checkpoint()  # the schema and the run in the database: a lost WAL keeps them
    except BaseException:
        lock.release()
        raise
    return journal, lock


def check_same_fidelity(where: Path, config: SweepConfig, stored: SweepConfig) -> None:
    """Refuse (:class:`ResumeError`) to resume ``stored`` (a run's or a walk-forward's config)
    with a ``config`` of another ``objective.fidelity``, saying how to resume it."""
    if config.objective.fidelity != stored.objective.fidelity:
        raise ResumeError(
            f"--resume {where}: objective.fidelity {config.objective.fidelity} differs "
            f"from the run's {stored.objective.fidelity} (its evaluations were measured "
            "with it; a Hyperband or BOHB config that names none gets "
            f"{MULTI_FIDELITY_DEFAULT}); resume without --config/--set, name "
            f"objective.fidelity: {stored.objective.fidelity} in the config, or start a new run"
        )


def _resume_config(journal: JournalInfo, config: SweepConfig | None, seed: int | None,
                   overrides: Sequence[str] = ()) -> tuple[SweepConfig, int]:
    """The config and seed to resume with. ``config`` (``--config``), or ``overrides``
    (``--set``) applied to the journaled config, may change how the run executes, never what
    it computes."""
    path = journal.db
    stored = validate_config(config_as_made(journal.config), f"journal {path}")
    if config is None and overrides:
        config = load_config(raw=stored.canonical(), overrides=list(overrides), stored=True)
    if config is not None:
        check_same_fidelity(path.parent, config, stored)
        # Recomputed from both configs (not read from the journal), so that a run whose hash
        # was taken by an older rule still compares by what decides its results.
        if config_hash(config.canonical()) != config_hash(stored.canonical()):
            raise ResumeError(
                f"--resume {path.parent}: the given config differs from the one this run was "
                "started with in what decides its results ("
                f"{named_differences(config.canonical(), stored.canonical())}); resume without "
                "--config/--set, or start a new run (only execution settings such as "
                "execution.workers may change)"
            )
        if (seed is None and config.seed is not None and config.seed != stored.seed
                and config.seed != journal.seed):
            # The seed is out of the hash (it may come from --seed), but a config that names
            # another one asks for it: it was ignored, and recorded in the results' config.
            raise ResumeError(
                f"--resume {path.parent}: the given config's seed {config.seed} differs from "
                f"the run's seed {journal.seed}; resume without --config/--set seed, or "
                "start a new run"
            )
        if config.canonical() != stored.canonical():
            log.info("resuming with the given config's execution settings")
        stored = config
    if seed is not None and seed != journal.seed:
        raise ResumeError(
            f"--resume {path.parent}: --seed {seed} differs from the run's seed {journal.seed}"
        )
    return stored, journal.seed


def check_candles_in_place(run_dir: Path, config: SweepConfig, what: str = "run") -> None:
    """Refuse (:class:`ResumeError`) a resume whose candles (its data's, or an evidence
    market's) are no longer where the ``what`` (a run, a walk-forward) read them (a project
    moved or renamed): it keeps the data it started with, so the way on is to put them back
    (the data's SHA-256 is then checked; an evidence market whose candles changed is scored
    again), which a bare "no such file" did not say."""
    places = [("candles", config.data.path, f"their SHA-256 is checked against the {what}'s")
              ] + [(f"evidence market {market.name}'s candles", market.data.path,
                    "if they changed, the market is scored again")
                   for market in config.evidence.markets]
    for which, path, then in places:
        if path is not None and not Path(path).exists():
            raise ResumeError(
                f"--resume {run_dir}: the {what}'s {which} are not at {path} any more (moved "
                f"or deleted?); a {what} resumes only on the candles it started with: put them "
                f"back at that path ({then}), or start a new {what}"
            )


def _check_same_data(journal: JournalInfo, data: dict[str, Any]) -> None:
    recorded = journal.data
    if recorded is not None and recorded["sha256"] != data["sha256"]:
        raise ResumeError(
            f"--resume {journal.run_dir}: the data at {data['path']} changed since the run "
            "started (its SHA-256 differs); start a new run on the new data"
        )
    before = (recorded or {}).get("periods_per_year")
    now = data.get("periods_per_year")
    if before is not None and now is not None and not math.isclose(before, now, rel_tol=1e-9):
        # A data range of a market closed at weekends was annualised with its own candles
        # before 2026-12-07 and with the whole file's since; a whole file's bars were counted
        # from the first open to the last close before 2026-12-08 and over whole weeks since
        # (EURUSD hourly: 6,201, now 6,199): resumed, its trials would be ranked on two scales.
        raise ResumeError(
            f"--resume {journal.run_dir}: the run annualised its bars with {before:,.1f} a "
            f"year, this version counts {now:,.1f} for the same candles (a market closed at "
            "weekends is now annualised as its whole file, its bars counted over whole "
            "weeks); resuming would rank its trials on two scales: start a new run"
        )


def infrastructure_message(why: str, run_dir: Path) -> str:
    return (f"the machine failed the sweep: {why}. Nothing was recorded as a trial result and "
            f"the journal is consistent; fix the cause (free disk space), then resume with: "
            f"cryptosweep run --resume {run_dir}")


def infrastructure_checked(make: Callable[[], Any], run_dir: Path | None) -> Any:
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
        raise InfrastructureError(infrastructure_message(why, run_dir)) from None
