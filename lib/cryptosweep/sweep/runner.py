"""Running a sweep end to end: open the run (:mod:`.opening`), drive the search loop
(:mod:`.loop`) on the executor, then the end of the sweep (:mod:`.finalize`) while the executor
is still up, and the run folder's last state.

An infrastructure fault (disk full, I/O error: :mod:`~cryptosweep.core.faults`), in a worker or
here, stops the sweep with :class:`~cryptosweep.core.errors.InfrastructureError` (exit 6) and
leaves the evaluations it hit unfinished in the journal, for ``--resume``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptosweep.core.config import SweepConfig
from cryptosweep.core.config_files import load_config
from cryptosweep.core.errors import (
    ConfigError,
    InfrastructureError,
    SweepFailedError,
    SweepInterrupted,
    UserError,
)
from cryptosweep.core.faults import infrastructure_fault
from cryptosweep.core.files import write_json_atomic
from cryptosweep.core.paths import SWEEP_LOG_DIR
from cryptosweep.core.reproducibility import setup_crypto_gpu_reproducibility
from cryptosweep.core.settings import MAX_WORKERS
from cryptosweep.core.strict import flag
from cryptosweep.execution.checkpoints import remove_checkpoints
from cryptosweep.execution.environment import system_info
from cryptosweep.execution.executors import Executor, parse_gpu_ids
from cryptosweep.execution.monitor import ResourceMonitor
from cryptosweep.records.journal import Journal
from cryptosweep.sweep.evidence import SearchLedger
from cryptosweep.sweep.finalize import finalize_run
from cryptosweep.sweep.loop import SweepLoop
from cryptosweep.sweep.opening import (
    OpenRun,
    attach_log_file,
    check_run_name,
    infrastructure_checked,
    infrastructure_message,
    open_new_run,
    open_resume,
    start_executor,
    utc_stamp,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepResult:
    """What a finished sweep left behind."""

    run_dir: Path
    files: dict[str, Path]
    results: dict[str, Any]


def run_sweep(
    config_path: str | Path | None = None,
    *,
    config: SweepConfig | None = None,
    seed: int | None = None,
    overrides: Sequence[str] = (),
    data_path: str | Path | None = None,
    log_dir: str | Path = SWEEP_LOG_DIR,
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

    Everything is checked before anything is created or changed (:mod:`.opening`); the run
    folder is locked while this process writes it. An interruption (SIGINT, or SIGTERM turned
    into :class:`SweepInterrupted` by the caller) ends in :class:`SweepInterrupted` carrying the
    run folder to resume; a full disk or an I/O error in
    :class:`~cryptosweep.core.errors.InfrastructureError`.

    ``executor``: run on this executor instead of starting one (``workers``,
    ``scheduler_address`` are then unused; ``gpu_ids`` still says whether trials use GPUs);
    it is closed at the end, so pass a :meth:`~cryptosweep.execution.executors.Executor.view`
    of a shared one (the walk-forward's windows). Such a sweep logs only its own thread's lines.
    """
    overrides, gpu_ids = checked_arguments(workers, overrides, gpu_ids, run_name)
    show_progress = flag(show_progress, "show_progress")
    given = executor
    if run_name is not None:
        check_run_name(run_name)
    if config is None and (config_path is not None or data_path is not None
                           or (overrides and resume is None)):
        config = load_config(config_path, list(overrides), data_path)
        overrides = ()

    def start(chosen: SweepConfig) -> Executor:
        if given is not None:
            return given
        return start_executor(chosen, gpu_ids, workers, scheduler_address)

    if resume is not None:
        opened = open_resume(resume, config, seed, overrides, scheduler_address, start)
    elif config is None:
        raise UserError("no config given: pass --config PATH (or --resume RUN_DIR)")
    else:
        opened = open_new_run(config, seed, log_dir, run_name, scheduler_address, start)
    return _run_opened(opened, bool(gpu_ids), show_progress, this_thread_only=given is not None)


def checked_arguments(workers: Any, overrides: Any, gpu_ids: Any, run_name: Any
                      ) -> tuple[tuple[str, ...], list[int] | None]:
    """What the CLI's parser checks of its flags, for callers of :func:`run_sweep` and
    :func:`~cryptosweep.walkforward.driver.run_walkforward` (the notebooks' parameters, which
    papermill may read as numbers): a ``ConfigError`` naming the argument (a negative
    ``workers`` made a run folder and then waited for ever). Returns ``overrides`` (None: none)
    and ``gpu_ids`` as a list of indices (``"0,1"``, ``0`` or ``[0, 1]``; None or ``""``:
    the CPU; a bare ``0`` was taken for "no GPU")."""
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or not 0 <= workers <= MAX_WORKERS):
        raise ConfigError(f"workers: expected a whole number in [0, {MAX_WORKERS}] (0: the "
                          f"trials run in this process), got {workers!r}")
    overrides = () if overrides is None else overrides
    if isinstance(overrides, str | bytes | Mapping) or not all(isinstance(o, str)
                                                              for o in overrides):
        raise ConfigError(f"overrides: expected a list of 'dotted.key=value' strings, got "
                          f"{overrides!r}")
    if run_name is not None and not isinstance(run_name, str):
        raise ConfigError(f"run_name: expected a folder name (text), got {run_name!r}")
    if gpu_ids is None or isinstance(gpu_ids, str):
        ids = parse_gpu_ids(gpu_ids or "")
    elif isinstance(gpu_ids, int) and not isinstance(gpu_ids, bool):
        ids = [gpu_ids]
    elif isinstance(gpu_ids, list | tuple) and all(
            isinstance(i, int) and not isinstance(i, bool) for i in gpu_ids):
        ids = list(gpu_ids) or None
    else:
        raise ConfigError(f"gpu_ids: expected GPU indices like \"0,1\", 0 or [0, 1], got "
                          f"{gpu_ids!r}")
    if ids is not None and (any(i < 0 for i in ids) or len(set(ids)) != len(ids)):
        raise ConfigError(f"gpu_ids: expected distinct non-negative indices, got {gpu_ids!r}")
    return tuple(overrides), ids


def _run_opened(opened: OpenRun, use_gpu: bool, show_progress: bool,
                this_thread_only: bool) -> SweepResult:
    """Run an opened run to its end; the executor, journal and lock are released whatever
    happens."""
    run_dir, journal = opened.run_dir, opened.journal
    try:
        handler = infrastructure_checked(
            lambda: attach_log_file(run_dir, this_thread_only=this_thread_only), run_dir)
    except BaseException:
        opened.close()
        raise
    try:
        for note in opened.notes:
            log.warning("%s", note)
        if opened.recorded_data != opened.plan.data:  # (a newer version describes the same
            journal.set_meta(data=opened.plan.data)  # candles with more: bar interval, dates)
        # How many evaluations run at once (the live view's "running"; not in the results).
        journal.set_meta(slots=opened.executor.slots)
        log.info("sweep: %s", opened.plan.describe(opened.config, as_written=not opened.resumed))
        return _execute(opened.config, opened.seed, run_dir, journal, opened.stamp,
                        opened.executor, use_gpu, show_progress)
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
        raise InfrastructureError(infrastructure_message(why, run_dir)) from None
    finally:
        logging.getLogger("cryptosweep").removeHandler(handler)
        handler.close()
        opened.close()  # _execute closed the executor already, unless it failed before


def _execute(
    config: SweepConfig, seed: int, run_dir: Path, journal: Journal, stamp: str,
    executor: Executor, use_gpu: bool, show_progress: bool,
) -> SweepResult:
    repro = setup_crypto_gpu_reproducibility(seed, config.gpu_settings.deterministic,
                                             seed_torch="torch" in config.objective.models)
    now = utc_stamp()
    info = system_info(config.results_hash())
    info.update(seed=seed, not_set=repro.not_set, notes=repro.notes, run_dir=str(run_dir))
    write_json_atomic(run_dir / f"gpu_repro_{now}.json", info)
    log.info("run %s: %s sweep, seed %d, on %s", run_dir.name, config.sweep_type, seed,
             executor.description)
    monitor = ResourceMonitor(journal).start()
    started = time.time()
    with executor:
        ledger = None
        try:
            ledger = SearchLedger(config, run_dir, journal)
            strategy = SweepLoop(config, seed, journal, executor, show_progress,
                                 use_gpu=use_gpu, ledger=ledger).run()
        except SweepFailedError:
            journal.set_meta(status="failed")
            raise
        finally:
            if ledger is not None:
                ledger.close()
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

