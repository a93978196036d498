"""Run (or resume) a walk-forward optimisation: every window's sweep and out-of-sample trade,
windows side by side on one executor, then the combined results.

A walk-forward folder holds its manifest (:data:`MANIFEST`: config, master seed, windows and
each window's status, written atomically), one normal run folder per window
(``window_00``, ...: journal, report and reproducibility record, plus the window's
out-of-sample record :data:`WINDOW_RECORD`), and the combined
``walkforward_results_<ts>.json`` and ``walkforward_report_<ts>.txt``.

Windows run at once, one driver thread each, every window on a view of the one executor
(:meth:`~cryptosweep.execution.executors.Executor.view`: its own task keys, closing it leaves the
shared
workers up); in-process (``workers: 0``) they run one after another. Each window's sweep is
deterministic by itself (its seed comes from the master seed and its index), so the results
do not depend on the workers or on the order windows finish in.

Resume reads finished windows back from their records (never re-run), resumes a window whose
sweep was interrupted from its journal (:func:`~cryptosweep.sweep.runner.run_sweep` resume), and
runs the others. Before anything is written (the manifest included) the manifest and every
window's files are checked (:func:`_check_manifest`, :func:`_check_windows`): a damaged or
foreign one is one :class:`~cryptosweep.core.errors.ResumeError` naming the file (exit 2).
A new walk-forward starts only in a new or empty folder, its ``run_name`` one plain folder name
(:func:`~cryptosweep.sweep.opening.check_run_name`). The process writing a walk-forward holds
its folder's lock (:class:`~cryptosweep.core.locking.RunLock`, taken after a resume's checks and
before anything is written): a second resume of it is refused, nothing changed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cryptosweep.core.config import (
    MAX_SEED,
    SweepConfig,
    config_hash,
    named_differences,
    resolve_seed,
)
from cryptosweep.core.config_files import config_as_made, load_config, validate_config
from cryptosweep.core.errors import ResumeError, SweepFailedError, SweepInterrupted, UserError
from cryptosweep.core.files import finite_or_none, write_json_atomic, write_text_atomic
from cryptosweep.core.formatting import signed
from cryptosweep.core.locking import LOCK_NAME, RunLock
from cryptosweep.core.paths import WALKFORWARD_LOG_DIR
from cryptosweep.execution.executors import Executor, InProcessExecutor
from cryptosweep.records.evaluations import configured
from cryptosweep.records.inspection import DB_NAME, inspect_journal, never_written
from cryptosweep.records.journal import Journal
from cryptosweep.records.ranking import ranked
from cryptosweep.records.results import RESULTS_PREFIX
from cryptosweep.sweep.evidence import inner_trials
from cryptosweep.sweep.opening import (
    check_candles_in_place,
    check_run_name,
    check_same_fidelity,
    start_executor,
    utc_stamp,
)
from cryptosweep.sweep.runner import checked_arguments, run_sweep
from cryptosweep.trading.baselines import BASELINES
from cryptosweep.trading.metrics import trial_sharpe
from cryptosweep.trading.objective import data_fingerprint
from cryptosweep.walkforward.analysis import annualised_return
from cryptosweep.walkforward.combine import build_results
from cryptosweep.walkforward.layout import WindowPlan, plan, window_dir_name
from cryptosweep.walkforward.process import ProcessState, step, traded_score
from cryptosweep.walkforward.segment import trade_segment
from cryptosweep.walkforward.text import text_report

log = logging.getLogger(__name__)

MANIFEST = "walkforward.json"
MANIFEST_SCHEMA = "cryptosweep.walkforward_manifest"
WINDOW_RECORD = "walkforward_window.json"
#: A window record's ``record_version``. 2: ``trial_sharpes`` holds every threshold an inner
#: threshold search tried, and None for a configuration whose returns never vary (as the
#: trial ledger). A record without it (written before) is made again from its window's
#: sweep on resume (the segment's trade only; the sweep is read back), so that one
#: walk-forward never counts its windows' designs two ways.
RECORD_VERSION = 2
SCHEMA_VERSION = 1
#: What a window's status in the manifest may be.
WINDOW_STATUSES = ("pending", "running", "done")
#: What a window's record holds (:func:`_window_record`); a record without them is damaged.
RECORD_KEYS = ("layout", "winner", "deployment", "in_sample", "trial_sharpes", "evaluations",
               "out_of_sample")


@dataclass(frozen=True)
class WalkForwardResult:
    """What a finished walk-forward left behind."""

    run_dir: Path
    files: dict[str, Path]
    results: dict[str, Any]


def run_walkforward(
    config_path: str | Path | None = None,
    *,
    config: SweepConfig | None = None,
    seed: int | None = None,
    overrides: Sequence[str] = (),
    data_path: str | Path | None = None,
    log_dir: str | Path = WALKFORWARD_LOG_DIR,
    run_name: str | None = None,
    gpu_ids: str | Sequence[int] | None = None,
    workers: int | None = None,
    scheduler_address: str | None = None,
    resume: str | Path | None = None,
) -> WalkForwardResult:
    """Run (or ``resume``) the walk-forward of a config with a ``walk_forward`` section (see
    the module docstring). Every check (config, data, the windows' layout, each window's
    sweep) is made before anything is created; the master seed follows
    :func:`~cryptosweep.core.config.resolve_seed`. An interruption ends in
    :class:`~cryptosweep.core.errors.SweepInterrupted` carrying the walk-forward folder."""
    overrides, gpu_ids = checked_arguments(workers, overrides, gpu_ids, run_name)
    if run_name is not None:
        if resume is not None:
            raise UserError(f"walkforward: --run-name has no effect on --resume (the "
                            f"walk-forward keeps its folder: {resume}); resume without "
                            "--run-name")
        check_run_name(run_name)
    if config is None and (config_path is not None or data_path is not None
                           or (overrides and resume is None)):
        config = load_config(config_path, list(overrides), data_path)
    found: list[_WindowFiles] = []  # what each window's folder holds (checked)
    existed = False  # a new walk-forward's folder existed (empty)
    # Unwound on every way out: the folder's lock (core.locking: one writer at a time) and the
    # executor (closing it twice is harmless).
    with contextlib.ExitStack() as held:
        if resume is not None:
            wf_dir, manifest, config, seed = _open_resume(Path(resume), config, seed,
                                                          overrides)
            check_candles_in_place(wf_dir, config, "walk-forward")
            plans = plan(config, seed)
            if [p.as_dict() for p in plans] != [w["layout"] for w in manifest["windows"]]:
                raise ResumeError(f"--resume {wf_dir}: the windows no longer fall on the same "
                                  "bars (the data changed); start a new walk-forward")
            recorded = manifest.get("data_sha256")  # (none in a walk-forward begun before)
            if recorded is not None and data_fingerprint(config.data.path) != recorded:
                # The windows finished would be read back on the old candles, the others run
                # on these: one result of two markets.
                raise ResumeError(f"--resume {wf_dir}: the candles changed since the "
                                  "walk-forward started (their digest differs, on the same "
                                  "bars); start a new walk-forward")
            found = _check_windows(plans, wf_dir)  # before the lock file: refused, unchanged
            # One writer: a second resume stops here, unchanged; then the windows again, under
            # the lock (a writer that held it may have moved on since).
            held.enter_context(RunLock.acquire(wf_dir))
            found = _check_windows(plans, wf_dir)
        else:
            if config is None:
                raise UserError("no config given: pass --config PATH (or --resume "
                                "WALKFORWARD_DIR)")
            seed = resolve_seed(seed, config)
            plans = plan(config, seed)
            stamp = utc_stamp()
            wf_dir = Path(log_dir) / (run_name or f"{config.name}_walkforward_{stamp}")
            existed = _check_new_folder(wf_dir)
            # Before the executor and the folder: it reads every candle (their digest), and a
            # Ctrl-C or a data error there must leave nothing started and no folder locked.
            manifest = _new_manifest(config, seed, plans, stamp)
        executor = start_executor(config, gpu_ids, workers, scheduler_address)
        held.callback(executor.close)
        if resume is None:
            try:
                wf_dir.mkdir(parents=True, exist_ok=existed)
                held.enter_context(RunLock.acquire(wf_dir))
            except FileExistsError:
                raise UserError(f"walk-forward folder {wf_dir} was created by someone else "
                                "meanwhile; choose another --run-name") from None
            except OSError as exc:
                raise UserError(f"--log-dir: cannot create {wf_dir}: {exc.strerror}") from None
            found = [_WindowFiles() for _ in plans]
        return _walk_forward(wf_dir, manifest, config, seed, plans, found, executor,
                             bool(gpu_ids))


def _walk_forward(wf_dir: Path, manifest: dict[str, Any], config: SweepConfig, seed: int,
                  plans: list[WindowPlan], found: list[_WindowFiles], executor: Executor,
                  use_gpu: bool) -> WalkForwardResult:
    """The walk-forward itself, its folder locked and checked: the manifest, the windows, the
    process between them and the combined results."""
    # A resume of a finished walk-forward runs again ("complete" stayed there while it ran,
    # and after it stopped half-way).
    book = _Manifest(wf_dir / MANIFEST, {**manifest, "status": "running"})
    book.write()
    log.info("walk-forward %s: %d windows, seed %d, on %s", wf_dir.name, len(plans), seed,
             executor.description)
    with executor:
        records = _run_windows(plans, found, wf_dir, executor, book, config, use_gpu)
        records = _run_process(plans, records, executor.view("process"), config, use_gpu)
    results = build_results(config, seed, [p.as_dict() for p in plans], records,
                            _run_block(wf_dir, manifest))
    stamp = manifest["timestamp"]  # the folder's: the same file names after a resume
    files = {"results": wf_dir / f"walkforward_results_{stamp}.json",
             "report": wf_dir / f"walkforward_report_{stamp}.txt"}
    write_json_atomic(files["results"], results)
    write_text_atomic(files["report"], text_report(results))
    book.update(status="complete", finished_at=time.time())
    for name, path in files.items():
        log.info("wrote %s: %s", name, path)
    return WalkForwardResult(run_dir=wf_dir, files=files, results=results)


# ------------------------------------------------------------------------------ the manifest


class _Manifest:
    """The walk-forward's manifest, updated from the windows' threads under a lock."""

    def __init__(self, path: Path, content: dict[str, Any]) -> None:
        self.path, self.content, self.lock = path, content, threading.Lock()

    def write(self) -> None:
        with self.lock:
            write_json_atomic(self.path, self.content)

    def update(self, **fields: Any) -> None:
        with self.lock:
            self.content.update(fields)
            write_json_atomic(self.path, self.content)

    def window_status(self, index: int, status: str) -> None:
        with self.lock:
            self.content["windows"][index]["status"] = status
            write_json_atomic(self.path, self.content)


def _new_manifest(config: SweepConfig, seed: int, plans: list[WindowPlan], stamp: str
                  ) -> dict[str, Any]:
    return {
        "schema": MANIFEST_SCHEMA, "schema_version": SCHEMA_VERSION,
        "config": config.canonical(), "config_hash": config.results_hash(), "seed": seed,
        "data_sha256": data_fingerprint(config.data.path),
        "timestamp": stamp, "created_at": time.time(), "status": "running",
        "windows": [{"layout": p.as_dict(), "status": "pending"} for p in plans],
    }


def _open_resume(path: Path, config: SweepConfig | None, seed: int | None,
                 overrides: Sequence[str] = ()) -> tuple[Path, dict[str, Any], SweepConfig, int]:
    """The folder, manifest, config and seed to resume with. ``config`` (``--config``), or
    ``overrides`` (``--set``) applied to the manifest's config, may change how the windows run
    (``execution``), never what they compute (as a sweep's resume)."""
    wf_dir = path.parent if path.name == MANIFEST else path
    if not (wf_dir / MANIFEST).is_file():
        raise ResumeError(f"--resume {path}: no {MANIFEST} there (not a walk-forward folder)")
    try:
        manifest = json.loads((wf_dir / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ResumeError(f"--resume {path}: cannot read {MANIFEST}: {exc}") from None
    _check_manifest(manifest, path)
    stored = validate_config(manifest["config"], f"{wf_dir / MANIFEST}")
    if config is None and overrides:
        config = load_config(raw=stored.canonical(), overrides=list(overrides), stored=True)
    if config is not None:
        check_same_fidelity(path, config, stored)
        if config_hash(config.canonical()) != config_hash(stored.canonical()):
            raise ResumeError(
                f"--resume {path}: the given config differs from the one this walk-forward was "
                "started with in what decides its results ("
                f"{named_differences(config.canonical(), stored.canonical())}); resume "
                "without --config/--set, or start a new walk-forward (only execution settings "
                "such as execution.workers may change)")
        before = _process_settings(stored)
        changed = [key for key, value in _process_settings(config).items()
                   if value != before[key]]
        if changed:
            raise ResumeError(
                f"--resume {path}: the given config changes {', '.join(changed)}, which "
                "decided the finished windows' gates and decides what every segment trades "
                "(a walk-forward's process, unlike a sweep's results); resume without "
                "changing it, or start a new walk-forward")
        stored = config
    if seed is not None and seed != manifest["seed"]:
        raise ResumeError(f"--resume {path}: --seed {seed} differs from the walk-forward's "
                          f"seed {manifest['seed']}")
    return wf_dir, manifest, stored, int(manifest["seed"])


def _process_settings(config: SweepConfig) -> dict[str, Any]:
    """The settings a sweep's results hash leaves out (:data:`~cryptosweep.core.config
    .EXECUTION_ONLY`: they judge a sweep's results after it) but a walk-forward's results
    depend on: each window's gate (``deployment``, its CPCV criterion ``evidence.cpcv``, its
    holdout trades ``reporting.min_trades``) decides what trades its segment, the keep-gate
    demotes, and the verdict counts trades. A resume that changed them would keep the
    finished windows' decisions made under the old ones and judge the rest under the new."""
    canonical = config.canonical()
    return {"deployment": canonical["deployment"],
            "evidence.cpcv": canonical["evidence"]["cpcv"],
            "reporting.min_trades": canonical["reporting"]["min_trades"]}


def _check_new_folder(wf_dir: Path) -> bool:
    """Refuse (:class:`UserError`) a new walk-forward's folder that exists and is not an empty
    folder (a sweep's run folder, another walk-forward, anything else): nothing in it may be
    overwritten. True when it exists (empty)."""
    if (wf_dir / MANIFEST).exists():
        raise UserError(f"{wf_dir} already holds a walk-forward; resume it with --resume "
                        f"{wf_dir} or choose another --run-name")
    if not wf_dir.exists() and not wf_dir.is_symlink():
        return False
    if not wf_dir.is_dir():
        raise UserError(f"walk-forward folder {wf_dir} exists and is not a folder; choose "
                        "another --run-name")
    try:
        held = sorted(entry.name for entry in wf_dir.iterdir())
    except OSError as exc:
        raise UserError(f"walk-forward folder {wf_dir} cannot be read ({exc.strerror}); "
                        "choose another --run-name") from None
    if held and held != [LOCK_NAME]:  # (a lone lock: killed before its manifest was written)
        what = (f"a sweep run: {DB_NAME}" if DB_NAME in held
                else ", ".join(held[:3]) + (", ..." if len(held) > 3 else ""))
        raise UserError(f"walk-forward folder {wf_dir} already exists and is not empty ({what}); "
                        "a walk-forward starts in a new or empty folder: choose another "
                        "--run-name or --log-dir")
    return True


def _check_manifest(manifest: Any, path: Path) -> None:
    """Refuse (:class:`ResumeError`, one line naming the file and what is wrong) a manifest
    that is not one this version wrote as it wrote it: what the resume reads from it (config,
    seed, time stamp, windows) must be there and of its kind."""

    def damaged(what: str) -> ResumeError:
        return ResumeError(f"--resume {path}: {MANIFEST} is damaged ({what}); restore it from a "
                           "backup copy, or start a new walk-forward")

    if not isinstance(manifest, dict):
        raise damaged(f"a JSON {type(manifest).__name__}, not an object")
    if manifest.get("schema") != MANIFEST_SCHEMA:
        raise ResumeError(f"--resume {path}: {MANIFEST} is not a walk-forward manifest")
    if manifest.get("schema_version") != SCHEMA_VERSION:
        raise ResumeError(f"--resume {path}: {MANIFEST} has schema_version "
                          f"{manifest.get('schema_version')!r}; this version resumes "
                          f"{SCHEMA_VERSION}: start a new walk-forward")
    if not isinstance(manifest.get("config"), dict):
        raise damaged("no config object")
    if not isinstance(manifest.get("data_sha256", ""), str):
        raise damaged(f"data_sha256 {manifest['data_sha256']!r:.40} is not a digest")
    seed = manifest.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise damaged(f"seed {seed!r} is not a whole number in [0, {MAX_SEED}]")
    stamp = manifest.get("timestamp")
    if not isinstance(stamp, str) or not re.fullmatch(r"\d{8}_\d{6}", stamp):
        raise damaged(f"timestamp {stamp!r} is not a UTC time stamp YYYYMMDD_HHMMSS")
    created = manifest.get("created_at")
    if isinstance(created, bool) or not isinstance(created, int | float):
        raise damaged(f"created_at {created!r} is not a time")
    windows = manifest.get("windows")
    if not isinstance(windows, list) or not windows:
        raise damaged(f"windows is {windows!r}, not a list of windows")
    for index, window in enumerate(windows):
        if (not isinstance(window, dict) or not isinstance(window.get("layout"), dict)
                or window.get("status") not in WINDOW_STATUSES):
            raise damaged(f"window {index} is not a layout and a status "
                          f"({'/'.join(WINDOW_STATUSES)})")


@dataclass(frozen=True)
class _WindowFiles:
    """What a window's folder held when the walk-forward started (checked): its record
    (finished), or its completed sweep's results, or a journal to resume; all None: run it."""

    record: dict[str, Any] | None = None
    results: dict[str, Any] | None = None
    journal: bool = False


def _check_windows(plans: list[WindowPlan], wf_dir: Path) -> list[_WindowFiles]:
    """Every window's files read and checked before anything is written (read-only): a
    record that is not valid JSON or belongs to other bars, a journal that is not an intact
    cryptosweep journal of this window's sweep, a completed sweep's unreadable results: one
    :class:`ResumeError` naming the file."""
    found = []
    for window_plan in plans:
        name = window_dir_name(window_plan.window.index)
        window_dir = wf_dir / name
        if (window_dir.exists() or window_dir.is_symlink()) and not window_dir.is_dir():
            # (was found only when its sweep made the folder, the manifest already written:
            # "--log-dir: cannot create ...: File exists", on a resume given no --log-dir)
            raise ResumeError(f"--resume {wf_dir}: {window_dir} is not a folder (the run "
                              f"folder of {name}); move it away to run {name} again, or "
                              "restore the folder from a backup copy")
        record_path = window_dir / WINDOW_RECORD
        if record_path.is_file():
            record = _read_json(record_path, wf_dir, "the window's record")
            missing = ([key for key in RECORD_KEYS if key not in record]
                       if isinstance(record, dict) else None)
            if missing is None or missing:
                raise ResumeError(
                    f"--resume {wf_dir}: {record_path} is damaged (" + (
                        "not a JSON object" if missing is None
                        else f"no {', '.join(missing)}") + f"); delete it to run {name} again "
                    "(its sweep is kept), or restore it from a backup copy")
            if record["layout"] != window_plan.as_dict():
                raise ResumeError(
                    f"--resume {wf_dir}: {record_path} is the record of other bars than "
                    f"{name}'s in {MANIFEST}; delete it to run {name} again, or restore it "
                    "from a backup copy")
            problem = _record_problem(record, window_plan)
            if problem is not None:
                raise ResumeError(f"--resume {wf_dir}: {record_path} is damaged ({problem}); "
                                  f"delete it to run {name} again (its sweep is kept), or "
                                  "restore it from a backup copy")
            if record.get("record_version") == RECORD_VERSION:
                found.append(_WindowFiles(record=record))
                continue  # else (written before): made again from its sweep, below
        if not (window_dir / DB_NAME).exists() or never_written(window_dir):
            # (never written: killed while its sweep created the journal; nothing was
            # recorded, and a new sweep takes such a folder)
            found.append(_WindowFiles())
            continue
        info = inspect_journal(window_dir, purpose=f"--resume {wf_dir}", repair=True)
        stored = validate_config(config_as_made(info.config), f"journal {info.db}")
        check_same_fidelity(window_dir, window_plan.sweep_config, stored)
        if (config_hash(stored.canonical()) != config_hash(window_plan.sweep_config.canonical())
                or info.seed != window_plan.seed):
            raise ResumeError(
                f"--resume {wf_dir}: {info.db} is the journal of another sweep than {name}'s "
                f"(its config or seed differs from {MANIFEST}'s); move {name} away to run it "
                "again")
        results_path = window_dir / f"{RESULTS_PREFIX}{info.timestamp}.json"
        results = None
        if info.status == "complete" and results_path.is_file():
            results = _read_json(results_path, wf_dir, "the window's sweep results")
            if not isinstance(results, dict):
                raise ResumeError(f"--resume {wf_dir}: {results_path} is damaged (not a JSON "
                                  "object); delete it to run the sweep's end again")
        found.append(_WindowFiles(results=results, journal=True))
    return found


def _record_problem(record: dict[str, Any], window_plan: WindowPlan) -> str | None:
    """What in a window record is not of the kind this version writes (a file edited by hand:
    the process and the combined results read these, and a wrong one was a traceback after
    the manifest was rewritten), or None."""
    bars = window_plan.window.out_of_sample_bars
    metric = window_plan.sweep_config.objective.metric

    def number(value: Any, none: bool = False) -> bool:
        return (value is None and none) or (isinstance(value, int | float)
                                            and not isinstance(value, bool))

    def numbers(value: Any, length: int | None = None, none: bool = False) -> bool:
        return (isinstance(value, list) and all(number(v, none) for v in value)
                and (length is None or len(value) == length))

    oos = record["out_of_sample"]
    if not isinstance(oos, dict):
        return "out_of_sample is not an object"
    baselines = oos.get("baselines") if isinstance(oos.get("baselines"), dict) else {}
    blocks = {"out_of_sample": oos} | {f"out_of_sample.baselines.{name}": baselines.get(name)
                                       for name in BASELINES}
    for where, block in blocks.items():
        if not isinstance(block, dict) or not numbers(block.get("returns"), bars):
            return f"{where}.returns is not {bars} numbers, one per bar of the segment"
        scores = block.get("metrics")
        if not isinstance(scores, dict) or not (number(scores.get(metric), none=True)
                                                and number(scores.get("trades"))
                                                and number(scores.get("total_return"))):
            return f"{where}.metrics holds no {metric}, trades and total_return"
    if not (numbers(oos.get("positions"), bars) and numbers(oos.get("trades"))
            and isinstance(oos.get("first_bar"), str) and isinstance(oos.get("last_bar"), str)):
        return "out_of_sample's positions, trades or bars are not what a trade records"
    in_sample = record["in_sample"]
    if not (isinstance(in_sample, dict) and number(in_sample.get("score"), none=True)
            and number(in_sample.get("annual_return"), none=True)):
        return "in_sample holds no score and annual_return"
    if not numbers(record["trial_sharpes"], none=True):
        return "trial_sharpes is not a list of numbers"
    winner = record["winner"]
    if winner is not None and not (isinstance(winner, dict)
                                   and isinstance(winner.get("params"), dict)
                                   and number(winner.get("budget"))
                                   and number(winner.get("seed"))):
        return "winner is not a configuration with its params, budget and seed"
    if record["deployment"] is not None and not isinstance(record["deployment"], dict):
        return "deployment is not an object"
    return None


def _read_json(path: Path, wf_dir: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ResumeError(f"--resume {wf_dir}: {path} ({what}) cannot be read "
                          f"({exc.strerror})") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise ResumeError(f"--resume {wf_dir}: {path} ({what}) is damaged (not valid JSON: "
                          f"{' '.join(str(exc).split())[:200]}); restore it from a backup "
                          "copy, or delete it to compute it again") from None


def _run_block(wf_dir: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """How this walk-forward ran (left out when results are compared)."""
    import socket

    finished = time.time()
    return {"name": wf_dir.name, "run_dir": str(wf_dir), "timestamp": manifest["timestamp"],
            "created_at": manifest["created_at"], "finished_at": finished,
            "wall_time_s": finished - manifest["created_at"], "host": socket.gethostname()}


# ------------------------------------------------------------------------------ the windows


def _run_windows(plans: list[WindowPlan], found: list[_WindowFiles], wf_dir: Path,
                 executor: Executor, book: _Manifest, config: SweepConfig, use_gpu: bool
                 ) -> list[dict[str, Any]]:
    def one(window_plan: WindowPlan) -> dict[str, Any]:
        return _run_window(window_plan, found[window_plan.window.index], wf_dir, executor, book,
                           config, use_gpu)

    if isinstance(executor, InProcessExecutor) or len(plans) == 1:
        try:
            return [one(p) for p in plans]
        except KeyboardInterrupt as exc:
            raise SweepInterrupted(wf_dir, getattr(exc, "signal_name", "SIGINT"),
                                   "walkforward") from None
    pool = ThreadPoolExecutor(max_workers=len(plans), thread_name_prefix="walkforward")
    try:
        futures = [pool.submit(one, p) for p in plans]
        records = [future.result() for future in futures]
    except KeyboardInterrupt as exc:
        pool.shutdown(wait=False, cancel_futures=True)
        raise SweepInterrupted(wf_dir, getattr(exc, "signal_name", "SIGINT"),
                               "walkforward") from None
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return records


def _run_window(window_plan: WindowPlan, files: _WindowFiles, wf_dir: Path, executor: Executor,
                book: _Manifest, config: SweepConfig, use_gpu: bool) -> dict[str, Any]:
    """One window: its record when it is finished; else its sweep (new or resumed, or read
    back when complete), the winner's trade on the segment, and its record. ``files``: what
    :func:`_check_windows` found in its folder."""
    index = window_plan.window.index
    name = window_dir_name(index)
    window_dir = wf_dir / name
    record_path = window_dir / WINDOW_RECORD
    if files.record is not None:
        log.info("%s: finished before; read back", name)
        book.window_status(index, "done")  # killed between its record and the manifest
        return files.record
    book.window_status(index, "running")
    gpu_ids = [0] if use_gpu else None  # the view decides the device; this only says "GPU"
    results = files.results
    if results is None:
        try:
            if files.journal:
                log.info("%s: resuming its sweep", name)
                swept = run_sweep(config=window_plan.sweep_config, resume=window_dir,
                                  executor=executor.view(name), gpu_ids=gpu_ids,
                                  show_progress=False)
            else:
                swept = run_sweep(config=window_plan.sweep_config, seed=window_plan.seed,
                                  log_dir=wf_dir, run_name=name, executor=executor.view(name),
                                  gpu_ids=gpu_ids, show_progress=False)
        except SweepFailedError as exc:
            raise _window_failed(exc, window_dir, wf_dir) from None
        results = swept.results
    record = _window_record(window_plan, results, window_dir, executor.view(f"{name}-trade"),
                            config, use_gpu)
    write_json_atomic(record_path, record)
    book.window_status(index, "done")
    # The winner's numbers; what the process trades on the segment (this winner, the last
    # approved one, or nothing) is decided after, by the gate (_run_process).
    log.info("%s: its winner: in-sample %s %s, on the out-of-sample segment %s (traded "
             "there only as the gate decides)", name, record["in_sample"]["metric"],
             signed(record["in_sample"]["score"]),
             signed(record["out_of_sample"]["metrics"][record["in_sample"]["metric"]]))
    return record


def _window_failed(exc: SweepFailedError, window_dir: Path, wf_dir: Path) -> SweepFailedError:
    """A window's sweep that stopped itself (no evaluation succeeded, too many failed), said
    as a walk-forward's: which window, that the walk-forward stopped, and the way on. The
    sweep's own words ("resume with --resume") named no command, and a ``walkforward
    --resume`` reads the failed evaluations back from the window's journal: one that failed
    them all failed again, every time."""
    return SweepFailedError(
        f"walk-forward window {window_dir.name}: {exc}. The walk-forward stopped (the windows "
        f"finished are kept); once the cause is fixed, resume it: cryptosweep walkforward "
        f"--resume {wf_dir} (the window's sweep resumes from its journal, its failed "
        f"evaluations stay failed: to run them again, move {window_dir} away first)")


def _window_record(window_plan: WindowPlan, results: dict[str, Any], window_dir: Path,
                   executor: Executor, config: SweepConfig, use_gpu: bool) -> dict[str, Any]:
    """The window's winner, its in-sample numbers (from its journal) and its out-of-sample
    trade (on the executor)."""
    metric = config.objective.metric
    periods = float((results.get("data") or {}).get("periods_per_year") or 0.0)
    best = results.get("best")
    decision = (results.get("deployment") or {}).get("decision")
    traded = best is not None  # what the process trades is decided later (_run_process)
    journal = Journal.open_existing(window_dir)
    try:
        returns = journal.get_returns("validation")
        rows = journal.evaluations()
    finally:
        journal.close()
    competing = [configured(row) for row in ranked(rows) if row.eval_id in returns]
    candidates = [row.eval_id for row in competing]
    # Each threshold an inner threshold search backtested is a configuration tried, as the
    # window's own ledger counts it (N was the trials alone: k times too few with k values).
    inner = [trial.sharpe for trial in inner_trials(competing)]
    winner_returns = returns.get(best["eval_id"]) if best else None
    payload = {
        "task": f"oos-{window_plan.window.index}", "spec": window_plan.trade_spec,
        "params": best["params"] if traded else None,
        "budget": best["budget"] if traded else 0.0, "seed": best["seed"] if traded else 0,
        "cutoff": window_plan.window.is_stop - window_plan.window.is_start,
        "segment": [window_plan.window.oos_start - window_plan.window.is_start,
                    window_plan.window.oos_stop - window_plan.window.is_start],
        "use_gpu": use_gpu,
    }
    with executor:
        (outcome,) = list(executor.run_tasks(trade_segment, [payload],
                                             config.execution.max_retries))
    if outcome.error is not None:
        raise outcome.error
    winner = None
    if best is not None:
        winner = {key: best.get(key) for key in ("eval_id", "trial_id", "params", "budget",
                                                 "seed", "score")}
        winner["holdout"] = best.get("holdout")
    return finite_or_none({  # strict JSON, as it is read back
        "layout": window_plan.as_dict(),
        "winner": winner,
        "deployment": ({"decision": decision,
                        "reason": results["deployment"].get("reason"),
                        "champion": results["deployment"].get("champion")}
                       if results.get("deployment") else None),
        "in_sample": {
            "metric": metric, "score": best["score"] if best else None,
            "annual_return": (annualised_return(winner_returns, periods)
                              if winner_returns is not None and periods else None),
            "bars": len(winner_returns) if winner_returns is not None else 0,
        },
        "trial_sharpes": [trial_sharpe(np.asarray(returns[e])) for e in candidates] + inner,
        "evaluations": results["counts"]["evaluations"],
        "out_of_sample": outcome.result,
        "record_version": RECORD_VERSION,
    })


# ------------------------------------------------------------------------------ the process


def _run_process(plans: list[WindowPlan], records: list[dict[str, Any]], executor: Executor,
                 config: SweepConfig, use_gpu: bool) -> list[dict[str, Any]]:
    """The gate and the champion rules between windows (:mod:`.process`), in time order: each
    record gains ``process`` (what traded its segment and why) and ``traded`` (that trade:
    the winner's, from the record; the champion's, trained on its own window's in-sample bars
    and traded here as a task; or flat)."""
    settings, deployment = config.walk_forward, config.deployment
    assert settings is not None
    metric = config.objective.metric
    state = ProcessState()
    out = []
    with executor:
        for index, record in enumerate(records):
            decision = step(state, index, record, trade_rejected=settings.trade_rejected,
                            metric=metric, min_score=deployment.min_holdout_score,
                            demote_after=deployment.demote_after)
            if decision["trades"] == "winner":
                traded = record["out_of_sample"]
            else:
                champion = (records[decision["champion_window"]]
                            if decision["trades"] == "champion" else None)
                traded = _trade_champion(plans, decision["champion_window"], champion,
                                         plans[index], executor, config, use_gpu)
            score = traded["metrics"][metric]  # None: not finite (a Calmar ratio)
            traded_score(state, decision, None if score is None else float(score))
            out.append({**record, "process": decision, "traded": traded})
    return out


def _trade_champion(plans: list[WindowPlan], champion_window: int | None,
                    champion: dict[str, Any] | None, window_plan: WindowPlan,
                    executor: Executor, config: SweepConfig, use_gpu: bool) -> dict[str, Any]:
    """The champion of window ``champion_window`` (trained on that window's in-sample bars,
    its recorded seed and budget) traded on ``window_plan``'s segment; flat without one."""
    window = window_plan.window
    if champion is None or champion_window is None:
        origin, params, budget, seed = window, None, 0.0, 0
    else:
        origin = plans[champion_window].window
        winner = champion["winner"]
        params, budget, seed = winner["params"], winner["budget"], winner["seed"]
    spec = json.loads(json.dumps(plans[origin.index].trade_spec))
    spec["data"]["end"] = window_plan.trade_spec["data"]["end"]
    payload = {"task": f"process-{window.index}", "spec": spec, "params": params,
               "budget": budget, "seed": seed, "cutoff": origin.is_stop - origin.is_start,
               "segment": [window.oos_start - origin.is_start, window.oos_stop - origin.is_start],
               "use_gpu": use_gpu}
    (outcome,) = list(executor.run_tasks(trade_segment, [payload], config.execution.max_retries))
    if outcome.error is not None:
        raise outcome.error
    return outcome.result
