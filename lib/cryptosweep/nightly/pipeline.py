"""The nightly job from start to notification, in one process: validate, pick GPUs, plan
(new run, resume, or report only), run ``notebooks/sweep.ipynb`` with papermill (the sweep
compares its winner with the deployed champion, ``MODELS_DIR/champion``), judge the sweep by
what it left, build the report, publish, act on the deployment gate's decision (train and
rotate in the new champion, or keep the old one), keep the reports folder tidy, notify.

``scheduled/nightly_sweep.sh`` only holds the lock (flock), sets the environment and starts
this (``python -m cryptosweep.nightly``); every decision is a function of this package.

Log lines go to stdout and, once the run folder exists, to its ``sweep_output.log`` (lines
logged before that are written there first), as ``<time> LEVEL nightly: message``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any

from cryptosweep.core.config import DEFAULT_SEED, SweepConfig, resolve_seed
from cryptosweep.core.config_files import load_config
from cryptosweep.core.errors import (
    EXIT_BUG,
    EXIT_OK,
    EXIT_REPORT,
    EXIT_SWEEP,
    EXIT_USAGE,
    FolderInUseError,
    InfrastructureError,
    ReportError,
    SweepInterrupted,
    UserError,
    sigterm_interrupts,
)
from cryptosweep.core.files import PRIVATE_MODE, output_problem, write_json_atomic
from cryptosweep.core.locking import hold_folder
from cryptosweep.core.paths import (
    KERNEL,
    MODELS_DIR,
    NOTEBOOKS,
    REPORTS_DIR,
    REPOSITORY,
    TEMPLATE_CONFIG_IN_REPOSITORY,
    resolve,
)
from cryptosweep.core.strict import whole_number
from cryptosweep.execution.executors import parse_gpu_ids
from cryptosweep.nightly.gpus import GPU_POLICIES, detect_gpus, resolve_gpus
from cryptosweep.nightly.notifications import NOTIFY_TIMEOUT_S, SUMMARY_FILE, build_summary, notify
from cryptosweep.nightly.promotion import (
    CHAMPION,
    DEMOTED,
    MAX_PENDING_ATTEMPTS,
    MODELS_FOLDER,
    NEW,
    OLD,
    PENDING,
    PREVIOUS,
    REJECTED,
    TRAINING_PREFIX,
    Pending,
    Promotion,
    champion_dir,
    decide_and_act,
    decision_of,
    manifest_digest,
    mark_pending,
    read_history,
    read_marker,
    read_pending,
    recover,
)
from cryptosweep.nightly.publishing import LATEST_LINK, latest_problem, publish
from cryptosweep.nightly.retention import housekeep
from cryptosweep.nightly.runs import RUN_PREFIX, RunState, check_sweep, plan_run, scan_runs
from cryptosweep.reporting.index_page import FIELD_FILE, INDEX_FILE, REPORT_FILE
from cryptosweep.reporting.notebook_imports import skip_iri_grammars
from cryptosweep.sweep.opening import LOG_FILE, utc_stamp

#: 100 years: more is no different, and a number of days too large for a float stopped the
#: housekeeping.
MAX_LOG_RETENTION_DAYS = 36500
#: The environment variables the job reads (``scheduled/README.md`` documents each).
SETTINGS_HELP = f"""settings (environment):
  SWEEP_CONFIG        config when no CONFIG argument (default {TEMPLATE_CONFIG_IN_REPOSITORY})
  SWEEP_SEED          master seed (default: the config's seed, else {DEFAULT_SEED})
  REPORTS_DIR         run folders, index.html, latest (default <repo>/{REPORTS_DIR})
  MODELS_DIR          champion/, champion.prev/, best_configs_latest.json,
                      best_configs_last_run.json, champions.jsonl, paper_trades.jsonl,
                      rejected/, demoted/ (default <repo>/{MODELS_DIR})
  GPU_IDS             GPUs to use, e.g. 0,1 (empty: CPU under "use", every GPU found otherwise)
  GPU_POLICY          use | fallback | require (default fallback)
  LOG_RETENTION_DAYS  gzip run logs older than this, at most {MAX_LOG_RETENTION_DAYS} (default 14)
  RUN_RETENTION       keep the newest N nightly run folders (default 30)
  SWEEP_TIMEOUT       seconds a notebook cell may take; 0 = no limit (default 0)
  NOTIFY_WEBHOOK_URL  POST the JSON summary here (Slack-compatible); never logged
  NOTIFY_COMMAND      run with `sh -c`, the JSON summary on stdin
  NOTIFY_TIMEOUT      seconds per notifier (default 5)
exit codes: 0 ok (whether the gate approved or rejected the winner), 2 config or data error,
3 GPU required but absent, 4 sweep failed, 5 report, publishing or promotion failed,
6 the machine failed the sweep (disk full, I/O error; the next run resumes it),
130/143 interrupted"""
CHECK_HELP = """python -m cryptosweep.nightly --check [CONFIG]: only the checks made before anything
is created or changed (settings, config, data, the environment variable data.update names,
the models folder's files); exit 0 or 2. nightly_sweep.sh makes them before it takes the lock."""
_SECRETS = ("NOTIFY_WEBHOOK_URL", "NOTIFY_COMMAND")
#: papermill's own progress lines; the notebook's output is what the log keeps.
_PAPERMILL_CHATTER = ("Executing Cell", "Ending Cell", "Executing notebook with kernel",
                      "Input Notebook:", "Output Notebook:", "Working directory:")


class NightlyFailure(Exception):  # noqa: N818 - the night's outcome, not a bug
    """The night stops here with ``exit_code`` and ``message`` (logged and notified)."""

    def __init__(self, exit_code: int, message: str) -> None:
        super().__init__(message)
        self.exit_code, self.message = exit_code, message


@dataclass(frozen=True)
class Notifiers:
    """Where the summary goes; read first, so that even a bad setting is notified."""

    webhook_url: str | None = field(default=None, repr=False)
    command: str | None = field(default=None, repr=False)
    timeout: float = NOTIFY_TIMEOUT_S
    problems: tuple[str, ...] = ()

    @classmethod
    def from_environment(cls, env: Mapping[str, str]) -> Notifiers:
        problems = []
        timeout = NOTIFY_TIMEOUT_S
        text = env.get("NOTIFY_TIMEOUT", "").strip()
        if text:
            try:
                timeout = float(text)
                if not 0 < timeout <= 600:
                    raise ValueError
            except ValueError:
                timeout = NOTIFY_TIMEOUT_S
                problems.append(f"NOTIFY_TIMEOUT must be seconds in (0, 600], got {text!r}; "
                                f"using {NOTIFY_TIMEOUT_S:g}")
        return cls(env.get("NOTIFY_WEBHOOK_URL") or None, env.get("NOTIFY_COMMAND") or None,
                   timeout, tuple(problems))


@dataclass(frozen=True)
class Settings:
    """The job's settings, from its environment and its one argument (see
    :data:`SETTINGS_HELP`). Relative ``CONFIG``: the working directory if it is there, else
    the repository; relative ``REPORTS_DIR``/``MODELS_DIR``: the repository."""

    config: Path
    seed: int | None
    reports_dir: Path
    models_dir: Path
    gpu_ids: str
    gpu_policy: str
    log_retention_days: int
    run_retention: int
    sweep_timeout: int

    @classmethod
    def from_environment(cls, env: Mapping[str, str], config: str | None = None) -> Settings:
        """Raises :class:`NightlyFailure` (exit 2) naming the first bad setting."""

        def whole(name: str, default: int, maximum: int | None = None) -> int:
            text = env.get(name, "").strip()
            if not text:
                return default
            try:
                value = whole_number(text)
            except ValueError:
                value = -1
            if value < 0:
                raise NightlyFailure(EXIT_USAGE, f"{name} must be a whole number, got {text!r}")
            if maximum is not None and value > maximum:
                raise NightlyFailure(EXIT_USAGE, f"{name} must be at most {maximum}, got "
                                     f"{text[:40]!r}")
            return value

        policy = env.get("GPU_POLICY", "").strip() or "fallback"
        if policy not in GPU_POLICIES:
            raise NightlyFailure(EXIT_USAGE, f"GPU_POLICY={policy!r}: expected one of "
                                 f"{', '.join(GPU_POLICIES)}")
        gpu_ids = env.get("GPU_IDS", "").strip()
        try:  # here, not when the GPUs are picked: that is after the models folder is locked
            parse_gpu_ids(gpu_ids)
        except UserError as exc:
            raise NightlyFailure(EXIT_USAGE, f"GPU_IDS: {exc}".replace("--gpu-ids: ", "")
                                 ) from None
        # An unset or empty SWEEP_CONFIG is the template; a CONFIG argument given empty (a
        # crontab's "$CONFIG" unset) ran the template too, without a word.
        name, text = (("CONFIG", config) if config is not None else
                      ("SWEEP_CONFIG", env.get("SWEEP_CONFIG") or TEMPLATE_CONFIG_IN_REPOSITORY))
        try:
            config_path = resolve(text, name)
        except UserError as exc:
            raise NightlyFailure(EXIT_USAGE, str(exc)) from None
        seed_text = env.get("SWEEP_SEED", "").strip()
        for name in ("REPORTS_DIR", "MODELS_DIR"):
            text = env.get(name) or ""
            if text != text.strip():  # " /srv/x" made a folder named " " in the repository
                raise NightlyFailure(EXIT_USAGE, f"{name}={text!r}: begins or ends with white "
                                     "space; write the path without it")
        folders = {name: _in_repository(env.get(name) or default)
                   for name, default in (("REPORTS_DIR", REPORTS_DIR), ("MODELS_DIR", MODELS_DIR))}
        for name, folder in folders.items():  # checked before anything is created
            problem = output_problem(folder, folder=True)
            if problem is not None:
                raise NightlyFailure(EXIT_USAGE, f"{name}={folder}: {problem}")
        problem = _nesting_problem(folders["REPORTS_DIR"], folders["MODELS_DIR"])
        if problem is not None:
            raise NightlyFailure(EXIT_USAGE, problem)
        problem = _reports_problem(folders["REPORTS_DIR"])
        if problem is not None:
            raise NightlyFailure(EXIT_USAGE, f"REPORTS_DIR={folders['REPORTS_DIR']}: {problem}")
        return cls(
            config=config_path,  # type: ignore[arg-type]
            seed=whole("SWEEP_SEED", 0) if seed_text else None,
            reports_dir=folders["REPORTS_DIR"],
            models_dir=folders["MODELS_DIR"],
            gpu_ids=gpu_ids,
            gpu_policy=policy,
            # Days become seconds as a float at the end of the night: beyond a float's range
            # housekeeping failed every night (a warning), compressing and deleting nothing.
            log_retention_days=whole("LOG_RETENTION_DAYS", 14, MAX_LOG_RETENTION_DAYS),
            run_retention=whole("RUN_RETENTION", 30),
            sweep_timeout=whole("SWEEP_TIMEOUT", 0),
        )


def _nesting_problem(reports_dir: Path, models_dir: Path) -> str | None:
    """Why one folder inside the other is damaged by the night (None when it is not). Inside
    a run folder of ``REPORTS_DIR`` (``nightly_*``, ``latest``), the models folder was deleted
    by the retention with its champion and trial ledger, and taken for the newest run, so that
    a killed sweep was never resumed; inside a folder the champion steps move or delete
    (``champion``, ``champion.prev``, ``.champion.*``, ``demoted``, ``rejected``), the reports
    folder went with them. The same folder, or one beside the other's entries, is harmless."""
    reports, models = reports_dir.resolve(), models_dir.resolve()
    if models != reports and models.is_relative_to(reports):
        entry = models.relative_to(reports).parts[0]
        if entry.startswith(RUN_PREFIX) or entry == LATEST_LINK:
            return (f"MODELS_DIR={models_dir} is inside {entry} of REPORTS_DIR={reports_dir}, "
                    f"a run folder's name (the retention deletes {RUN_PREFIX}* folders, with "
                    "the champion and the trial ledger): choose a MODELS_DIR outside the run "
                    "folders")
    if reports != models and reports.is_relative_to(models):
        entry = reports.relative_to(models).parts[0]
        if entry in (CHAMPION, PREVIOUS, DEMOTED, REJECTED, NEW, OLD) or entry.startswith(
                TRAINING_PREFIX):
            return (f"REPORTS_DIR={reports_dir} is inside {entry} of MODELS_DIR={models_dir}, "
                    "a folder the champion steps move or delete: choose a REPORTS_DIR outside "
                    "it")
    return None


def _reports_problem(reports_dir: Path) -> str | None:
    """What in the reports folder is in the way of what the night writes there, after its
    sweep (None when nothing is): ``latest`` that is not the night's link
    (:func:`~cryptosweep.nightly.publishing.latest_problem`), an ``index.html`` that is a
    folder. Found after the sweep, each ended every night in exit 5."""
    problem = latest_problem(reports_dir)
    if problem is None and (reports_dir / INDEX_FILE).is_dir():
        problem = f"{reports_dir / INDEX_FILE} is a folder, not the index page: move it away"
    return problem


def _in_repository(path: str) -> Path:
    candidate = Path(path).expanduser()
    return candidate if candidate.is_absolute() else REPOSITORY / candidate


class NightLog:
    """``<time> LEVEL nightly: message`` to a stream and, once attached, to the run's log."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.run_log: Path | None = None
        self._pending: list[str] = []

    def __call__(self, level: str, message: str) -> None:
        now = time.time()
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
        line = f"{stamp},{int(now % 1 * 1000):03d} {level} nightly: {message}"
        print(line, file=self.stream, flush=True)
        if self.run_log is None:
            self._pending.append(line)
            return
        with contextlib.suppress(OSError), open(self.run_log, "a", encoding="utf-8") as out:
            out.write(line + "\n")

    def attach(self, run_dir: Path) -> None:
        (run_dir / "notebooks").mkdir(parents=True, exist_ok=True)
        self.run_log = run_dir / LOG_FILE
        # Private (0600), as the sweep keeps it: it may name hosts, paths and errors.
        fd = os.open(self.run_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE_MODE)
        os.fchmod(fd, PRIVATE_MODE)
        with open(fd, "a", encoding="utf-8") as out:
            out.writelines(line + "\n" for line in self._pending)
        self._pending.clear()

    def lines(self, lines: list[str]) -> None:
        """Log ``LEVEL message`` lines (what the notifiers and housekeeping return)."""
        for line in lines:
            level, _, message = line.partition(" ")
            self(level, message)


class Night:
    """One nightly job. :meth:`run` returns its exit code and never raises. ``check_only``:
    only the checks made before anything is created or changed (``--check``)."""

    def __init__(self, settings: Settings | None, notifiers: Notifiers, log: NightLog,
                 settings_error: NightlyFailure | None = None, check_only: bool = False) -> None:
        self.settings, self.notifiers, self.log = settings, notifiers, log
        self.settings_error = settings_error
        self.check_only = check_only
        self.run_dir: Path | None = None
        self.promotion: Promotion | None = None
        #: an earlier run's champion step a kill had interrupted, finished tonight
        self.earlier_promotion: Promotion | None = None
        self.data_update: dict[str, object] | None = None
        self.field: dict[str, object] | None = None
        self.interrupted: str | None = None

    def run(self) -> int:
        message = ""
        try:
            with sigterm_interrupts(), _private_runtime():
                self._job()
            code = EXIT_OK
        except FolderInUseError as exc:  # the models folder, held by another process: as the
            # shell's "already running" (the reports folder's lock), nothing else to do
            self.log("INFO", f"already running: {exc}; nothing to do")
            return EXIT_OK
        except NightlyFailure as exc:
            code, message = exc.exit_code, exc.message
            self.log("ERROR", message)
        except KeyboardInterrupt as exc:
            # Not a failure: one line at the very end (_finish) says so, and the next night
            # resumes the run (the journal says running).
            interrupted = exc if isinstance(exc, SweepInterrupted) else SweepInterrupted()
            code = interrupted.exit_code
            message = f"interrupted ({interrupted.signal_name}), exit {code}; " + (
                f"the next night resumes {self.run_dir}" if self.run_dir is not None
                else "before a run folder was made; the next night starts again")
            self.interrupted = message
        except Exception as exc:  # a bug: say so, keep going to housekeeping and notification
            code, message = EXIT_BUG, f"stopped unexpectedly: {type(exc).__name__}: {exc}"
            self.log("ERROR", message)
            logging.getLogger(__name__).exception("nightly job failed")
        self._finish(code, message)
        return code

    # ---------------------------------------------------------------------------- the job

    def _job(self) -> None:
        for problem in self.notifiers.problems:
            self.log("WARNING", problem)
        if self.settings_error is not None:
            raise self.settings_error
        settings = self.settings
        assert settings is not None
        try:
            config = load_config(settings.config)
            seed = resolve_seed(settings.seed, config)
        except UserError as exc:
            raise NightlyFailure(EXIT_USAGE, f"invalid config or data: {exc}") from None
        self.log("INFO", f"start: config {settings.config}, seed {seed}, reports "
                         f"{settings.reports_dir}, models {settings.models_dir}")
        validated = self._validate(config)
        self._check_update(config)
        self._check_models()
        if self.check_only:
            self.log("INFO", f"check: {validated}; nothing created or changed")
            return
        # One night at a time on the models folder (the shell's lock is the reports folder's):
        # another nightly writing it, from another reports folder, would rotate champions into
        # this one's. Held by another process: FolderInUseError, "already running".
        with contextlib.ExitStack() as held:
            try:
                held.enter_context(hold_folder(settings.models_dir, MODELS_FOLDER))
            except InfrastructureError as exc:  # a file system without flock: one line
                raise NightlyFailure(exc.exit_code, str(exc)) from None
            self._night(config, seed, validated)

    def _night(self, config: SweepConfig, seed: int, validated: str) -> None:
        """The night once its checks passed and it holds the models folder."""
        settings = self.settings
        assert settings is not None
        try:
            self.log.lines(recover(settings.models_dir))  # before the sweep reads the champion
            pending = read_pending(settings.models_dir)
        except UserError as exc:
            raise NightlyFailure(EXIT_USAGE, str(exc)) from None
        if pending is not None:
            self._finish_pending(pending)
        self.log("INFO", f"validate: {validated}")

        detected, why = ([], "") if settings.gpu_policy == "use" else detect_gpus()
        gpus = resolve_gpus(settings.gpu_policy, settings.gpu_ids, detected, why)
        if gpus.exit_code:
            raise NightlyFailure(gpus.exit_code, gpus.message)
        self.log("INFO", gpus.message)

        try:
            plan = plan_run(settings.reports_dir, settings.config, seed)
        except UserError as exc:
            raise NightlyFailure(EXIT_USAGE, f"invalid config or data: {exc}") from None
        self.log("INFO", plan.reason)
        run_dir = plan.run_dir or settings.reports_dir / f"{RUN_PREFIX}{utc_stamp()}"
        self.run_dir = run_dir
        self.log.attach(run_dir)
        self.log("INFO", {"new": f"new run: {run_dir}", "resume": f"resuming the sweep: {run_dir}",
                          "report": f"report only: {run_dir}"}[plan.mode])
        if plan.mode == "new":
            self._update_candles(config)
        elif config.data.update is not None:
            self.log("INFO", "data update: skipped; the unfinished run goes on with the candles "
                             "it started with (tomorrow's update brings the new ones)")
        self._watch_champion(run_dir, config)
        if plan.mode != "report":
            self._sweep(run_dir, seed, gpus.ids, resume=plan.mode == "resume")
        try:  # from here on the run may be finished: its decision must not be lost
            mark_pending(settings.models_dir, run_dir)
        except (OSError, UserError) as exc:
            self.log("WARNING", f"champion: cannot record that {run_dir.name}'s decision is "
                                f"to be acted on ({exc}); a night stopped before its champion "
                                "step would not act on it")
        self._report(run_dir)
        try:
            link = publish(run_dir, settings.reports_dir)
        except (OSError, RuntimeError) as exc:
            raise NightlyFailure(EXIT_REPORT, f"publishing latest failed: {exc}") from None
        self.log("INFO", f"published: {link} -> {os.readlink(link)}")
        self._promote(run_dir)
        self.log("INFO", f"success: {run_dir / REPORT_FILE}")

    def _finish_pending(self, pending: Pending) -> None:
        """Act on the deployment gate's decision of a run whose champion step a kill
        interrupted (a training killed: nothing of it is in the history), before tonight's
        sweep compares its winner with the champion. Once: a step killed again (out of memory
        while training?) is given up, and a failure is a warning; tonight's sweep goes on.
        Whatever it comes to is in the notification (``earlier_champion_step``)."""
        settings = self.settings
        assert settings is not None
        run_dir = pending.run
        decided = decision_of(settings.models_dir, run_dir)
        if decided is not None:  # finished by the recovery (a rotation, a demotion) or before
            (settings.models_dir / PENDING).unlink(missing_ok=True)
            demoted = (decided.get("keep") or {}).get("demote")
            self._earlier(run_dir, bool(decided.get("promoted")), decided, (
                f"completed at the start of the night ({decided.get('decision')}"
                + ("; its champion deployed" if decided.get("promoted") else "")
                + ("; the champion demoted by its keep-gate" if demoted else "") + ")"))
            return
        state = RunState.of(run_dir)
        if pending.attempts == 0 and state.sweep_complete and not state.finished:
            runs = scan_runs(settings.reports_dir)
            if runs and runs[-1].path.resolve() == run_dir.resolve():
                self.log("INFO", f"champion: {run_dir.name} has no report yet; tonight builds "
                                 "it and acts on its decision then")
                return  # (plan_run: "report")
        why_not = ("that run is no longer there finished" if not state.finished
                   else f"it was interrupted {pending.attempts} times"
                   if pending.attempts >= MAX_PENDING_ATTEMPTS else None)
        if why_not is None:
            self.log("WARNING", f"champion: the step acting on {run_dir.name}'s decision was "
                                + ("interrupted" if pending.attempts else
                                   "never started (its night stopped after its report)")
                                + "; acting on it now")
            try:
                self._promote(run_dir)
            except NightlyFailure as exc:
                why_not = exc.message
            else:
                done, self.promotion = self.promotion, None
                assert done is not None
                self._earlier(run_dir, done.promoted, done.record, done.message)
                return
        (settings.models_dir / PENDING).unlink(missing_ok=True)
        self._earlier(run_dir, False, {"run": run_dir.name},
                      f"NOT acted on: {why_not}; tonight's sweep goes on")

    def _earlier(self, run_dir: Path, promoted: bool, record: dict[str, Any], what: str
                 ) -> None:
        """Log and keep for the notification what became of an interrupted champion step."""
        message = f"the interrupted champion step of {run_dir.name}: {what}"
        self.log("WARNING", f"champion: {message}")
        self.earlier_promotion = Promotion(promoted, record, message)

    def _check_update(self, config: SweepConfig) -> None:
        """What the candle update (:meth:`_update_candles`) needs from the config, the
        environment and the candle file (``data.path``, the base URL the variable
        ``data.update.base_url_env`` names, the exchange id, the file's interval:
        :func:`cryptosweep.marketdata.store.check_update_settings`), checked before anything
        is created, with ``--check`` too: exit 2 naming what is wrong. A file system the update
        cannot write is a warning, as a failing update is."""
        if config.data.update is None:
            return
        from cryptosweep.marketdata.store import check_update_settings

        try:
            check_update_settings(config)
        except InfrastructureError as exc:
            self.log("WARNING", f"data update: {exc}")
        except UserError as exc:
            raise NightlyFailure(exc.exit_code, f"data update: {exc}") from None

    def _check_models(self) -> None:
        """The models folder's files a user owns and the night reads (``champions.jsonl``,
        ``paper_trades.jsonl``, ``.promotion.json``, ``.decision.json``), checked before the
        sweep: a damaged one is exit 2 naming the file (and the line), instead of a promotion
        that fails after the whole sweep ran, every night."""
        from cryptosweep.nightly.field import read_ledger

        settings = self.settings
        assert settings is not None
        try:
            read_marker(settings.models_dir)
            read_pending(settings.models_dir)
            read_history(settings.models_dir)
            read_ledger(settings.models_dir)
        except UserError as exc:
            raise NightlyFailure(EXIT_USAGE, str(exc)) from None

    def _update_candles(self, config: SweepConfig) -> None:
        """``cryptosweep data update`` when the config has a ``data.update`` section: the new
        closed candles appended to ``data.path`` before the sweep reads it. A config or data
        problem stops the night (exit 2); an exchange that cannot be reached is a warning, and
        the sweep runs on the candles already stored."""
        if config.data.update is None:
            return
        from cryptosweep.marketdata.store import update_configured

        try:
            summary = update_configured(config)
        except InfrastructureError as exc:
            self.data_update = {"error": str(exc), "exit_code": exc.exit_code}
            self.log("WARNING", f"data update failed (exit {exc.exit_code}): {exc}; the sweep "
                                "runs on the candles already stored")
            return
        except UserError as exc:
            raise NightlyFailure(exc.exit_code, f"data update failed: {exc}") from None
        self.data_update = summary.to_dict()
        self.log("WARNING" if summary.warnings else "INFO", f"data update: {summary}")

    def _watch_champion(self, run_dir: Path, config: SweepConfig) -> None:
        """The champion in the field (:mod:`cryptosweep.nightly.field`), on tonight's candles,
        before the sweep compares its winner with it: its paper trades, its live track against
        validation, drift; the kill switch may demote it. Written to the run folder
        (:data:`FIELD_FILE`) for the index page and the summary. A failure here is a warning:
        it never stops the night."""
        from cryptosweep.nightly.field import watch_champion

        settings = self.settings
        assert settings is not None
        try:
            status = watch_champion(settings.models_dir, config.data.path,
                                    kill_switch=config.deployment.kill_switch)
        except Exception as exc:
            self.log("WARNING", f"champion in the field: not watched ({type(exc).__name__}: "
                                f"{exc})")
            return
        if status is None:
            self.log("INFO", "champion in the field: no champion deployed")
            return
        self.field = status
        with contextlib.suppress(OSError):
            write_json_atomic(run_dir / FIELD_FILE, status)
        self.log("WARNING" if status["state"] == "demoted" else "INFO", status["text"])

    def _promote(self, run_dir: Path) -> None:
        """The deployment gate's decision: train and rotate in the champion, or keep it."""
        settings = self.settings
        assert settings is not None
        self.log("INFO", f"champion: acting on the deployment gate's decision ({run_dir.name})")
        before = manifest_digest(champion_dir(settings.models_dir))
        try:
            self.promotion = decide_and_act(run_dir, settings.models_dir)
        except Exception as exc:
            unchanged = manifest_digest(champion_dir(settings.models_dir)) == before
            raise NightlyFailure(EXIT_REPORT, f"promotion failed: {type(exc).__name__}: {exc}"
                                 + ("; the champion is unchanged" if unchanged else "")
                                 ) from None
        self.log("INFO", f"champion: {self.promotion.message}")

    def _validate(self, config: object) -> str:
        from cryptosweep.sweep.preflight import preflight

        settings = self.settings
        assert settings is not None
        try:
            # The champion folder and trial ledger the sweep's end writes, as the sweep sees
            # them (its champion_dir is the models folder's, see _sweep).
            deployment = config.deployment.model_copy(  # type: ignore[attr-defined]
                update={"champion_dir": str(champion_dir(settings.models_dir))})
            config = config.model_copy(  # type: ignore[attr-defined]
                update={"deployment": deployment})
            # Every check `cryptosweep validate` and the sweep make (preflight). The night made
            # a few of them only: a holding period longer than the holdout passed --check
            # ("ok"), then made the run folder and failed in the sweep notebook.
            plan = preflight(config,  # type: ignore[arg-type]
                             local=not config.execution.scheduler_address)  # type: ignore[attr-defined]
        except UserError as exc:
            hint = ""
            if config.data.update is not None:  # type: ignore[attr-defined]
                # The update runs once these checks pass: a file too short for the sweep (the
                # docs' ">= 1 bar" to start from) was refused every night, never updated.
                hint = (f" (data.update: the night appends new candles to data.path only once "
                        f"its checks pass; if the file's bars are too few, run `cryptosweep data "
                        f"update --config {settings.config}` first)")
            raise NightlyFailure(EXIT_USAGE, f"invalid config or data: {exc}{hint}") from None
        return f"ok: {plan.describe(config)}"  # type: ignore[arg-type]

    def _sweep(self, run_dir: Path, seed: int, gpu_ids: list[int], resume: bool) -> None:
        import papermill
        from nbclient.exceptions import CellTimeoutError

        from cryptosweep.reporting.kernels import LocalKernelManager

        settings = self.settings
        assert settings is not None
        notebook = run_dir / "notebooks" / "sweep.ipynb"
        parameters = {
            "config_path": str(settings.config), "seed": seed,
            "gpu_ids": ",".join(map(str, gpu_ids)), "log_dir": str(settings.reports_dir),
            "run_name": run_dir.name, "show_progress": False,
            # Where the deployed champion is, for the gate's comparison (not in the hash).
            "overrides": [f"deployment.champion_dir={champion_dir(settings.models_dir)}"],
        }
        if resume:
            parameters["resume"] = str(run_dir)
        self.log("INFO", f"sweep: papermill notebooks/sweep.ipynb -> {notebook} (GPUs: "
                         f"{parameters['gpu_ids'] or 'none, CPU'})")
        status = 0
        kernels: list[Any] = []

        class Kernel(LocalKernelManager):  # the sweep notebook's kernel, for the signals
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                kernels.append(self)

        with _papermill_log(self.log), _signals_interrupt(kernels) as received:
            try:
                papermill.execute_notebook(
                    str(NOTEBOOKS / "sweep.ipynb"), str(notebook), parameters=parameters,
                    kernel_name=KERNEL, log_output=True, progress_bar=False,
                    kernel_manager_class=Kernel,
                    cwd=str(REPOSITORY), execution_timeout=settings.sweep_timeout or None,
                )
            except papermill.PapermillExecutionError:
                status = 1  # the notebook records the exception; check_sweep reads it
            except CellTimeoutError:
                # SWEEP_TIMEOUT ran out: nbclient interrupted the kernel (the sweep stopped as
                # after a Ctrl-C, its journal says running) and raised this, which ended the
                # night as "stopped unexpectedly", exit 1 and a traceback.
                if not received:
                    raise NightlyFailure(EXIT_SWEEP, self._timed_out(run_dir)) from None
            except Exception:
                if not received:  # else the signal reached the kernel too (a dead kernel)
                    raise
        if received:  # the sweep stopped itself cleanly; the journal says running
            raise SweepInterrupted(run_dir, received[0])
        code, message = check_sweep(run_dir, notebook, status)
        if code:
            raise NightlyFailure(code, message)
        self.log("INFO", message)

    def _timed_out(self, run_dir: Path) -> str:
        """The night's one line when a notebook cell ran past ``SWEEP_TIMEOUT``."""
        settings = self.settings
        assert settings is not None
        state = RunState.of(run_dir)
        message = (f"sweep timed out: a notebook cell ran past SWEEP_TIMEOUT="
                   f"{settings.sweep_timeout} s (journal status {state.status or 'none'})")
        if state.status == "running":
            message += (f"; the next nightly continues it (by hand: cryptosweep run --resume "
                        f"{run_dir.resolve()})")
        return message

    def _report(self, run_dir: Path) -> None:
        from cryptosweep.reporting.report import render_report, write_index

        settings = self.settings
        assert settings is not None
        self.log("INFO", f"report: cryptosweep report {run_dir}")
        try:
            self.log("INFO", f"wrote {render_report(run_dir, kernel=KERNEL)}")
            self.log("INFO", f"wrote {write_index(settings.reports_dir)}")
        except (ReportError, UserError) as exc:
            raise NightlyFailure(EXIT_REPORT, f"report failed (exit {EXIT_REPORT}): {exc}"
                                 ) from None

    # ------------------------------------------------------------------------------ the end

    def _finish(self, code: int, message: str) -> None:
        if self.check_only:  # nothing to tidy up; a failed check is notified
            if code != EXIT_OK:
                self.log.lines(notify(build_summary(None, code, message),
                                      self.notifiers.webhook_url, self.notifiers.command,
                                      self.notifiers.timeout))
                self.log("INFO", f"finished with exit code {code}")
            return
        settings = self.settings
        if settings is not None:
            try:
                self.log.lines(housekeep(settings.reports_dir, settings.log_retention_days,
                                         settings.run_retention, self.run_dir))
            except Exception as exc:  # housekeeping must never hide the night's outcome
                self.log("WARNING", f"housekeeping failed: {exc}")
        run_dir = self.run_dir if self.run_dir is not None and self.run_dir.is_dir() else None
        summary = build_summary(run_dir, code, message, promotion=self.promotion,
                                data_update=self.data_update, field=self.field,
                                earlier=self.earlier_promotion)
        if run_dir is not None:
            with contextlib.suppress(OSError):
                write_json_atomic(run_dir / SUMMARY_FILE, summary, private=True)
        self.log.lines(notify(summary, self.notifiers.webhook_url, self.notifiers.command,
                              self.notifiers.timeout))
        if self.interrupted is not None:  # the one line that says so, the last
            self.log("WARNING", self.interrupted)
            return
        self.log("INFO", f"finished with exit code {code}"
                         + (f" ({self.run_dir})" if self.run_dir else ""))
        if self.promotion is not None:  # the last line, for whoever ran `make sweep`
            self.log("INFO", self.promotion.message)


@contextlib.contextmanager
def _private_runtime() -> Iterator[None]:
    """Kernel connection files in a private temporary folder (and a writable HOME, which cron
    may not give); removed at the end."""
    work = Path(tempfile.mkdtemp(prefix="cryptosweep-nightly."))
    saved = {key: os.environ.get(key) for key in ("JUPYTER_RUNTIME_DIR", "HOME")}
    os.environ["JUPYTER_RUNTIME_DIR"] = str(work / "jupyter-runtime")
    home = os.environ.get("HOME")
    if not home or not os.access(home, os.W_OK):
        os.environ["HOME"] = str(work / "home")
        (work / "home").mkdir()
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(work, ignore_errors=True)


@contextlib.contextmanager
def _signals_interrupt(kernels: list[Any]) -> Iterator[list[str]]:
    """While the sweep notebook runs, SIGINT or SIGTERM interrupts its kernel (which runs in
    its own session, out of the terminal's reach) instead of this process: the sweep stops as
    after a Ctrl-C (the journal closed, the workers shut down), the notebook ends with the
    error, papermill shuts the kernel down in order. Yields the names of the signals received;
    a second signal, or one before the kernel runs, interrupts this process itself."""
    received: list[str] = []

    def interrupt(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        received.append(name)
        provisioner = getattr(kernels[-1], "provisioner", None) if kernels else None
        group = getattr(provisioner, "pgid", None)
        if len(received) == 1 and group:
            with contextlib.suppress(OSError):
                os.killpg(group, signal.SIGINT)  # as jupyter_client's interrupt_kernel does
                return
        raise SweepInterrupted(None, name)

    previous = {signum: signal.signal(signum, interrupt)
                for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def _papermill_log(log: NightLog) -> Iterator[None]:
    """The sweep notebook's output (papermill's ``log_output``) as nightly log lines."""

    class Forward(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            for line in record.getMessage().rstrip().splitlines():
                if line.strip() and not line.startswith(_PAPERMILL_CHATTER):
                    print(line, file=log.stream, flush=True)

    logger = logging.getLogger("papermill")
    handler = Forward(logging.INFO)
    logger.addHandler(handler)
    level, propagate = logger.level, logger.propagate
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


def main(argv: list[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """``python -m cryptosweep.nightly [CONFIG]``: the whole nightly job (see the module
    docstring); its exit code."""
    skip_iri_grammars()  # the sweep notebook, through papermill
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("-h", "--help"):
        # The docstring's first paragraph, without its reST quotes: its first line alone
        # stopped mid-sentence ("... validate, pick GPUs, plan").
        summary = __doc__.split("\n\n")[0].replace("``", "")
        print(f"usage: nightly_sweep.sh [CONFIG]\n\n{summary}\n\n{CHECK_HELP}"
              f"\n\n{SETTINGS_HELP}")
        return EXIT_OK
    check_only = bool(args) and args[0] == "--check"
    if check_only:
        args.pop(0)
    log = NightLog(sys.stdout)
    if len(args) > 1 or (args and args[0].startswith("-")):
        log("ERROR", "usage: nightly_sweep.sh [CONFIG]  (python -m cryptosweep.nightly "
                     "[--check] [CONFIG])")
        return EXIT_USAGE
    environment = dict(os.environ if env is None else env)
    notifiers = Notifiers.from_environment(environment)
    for secret in _SECRETS:  # no child process (kernel, workers) ever sees them
        os.environ.pop(secret, None)
    try:
        settings, error = Settings.from_environment(environment, args[0] if args else None), None
    except NightlyFailure as exc:
        settings, error = None, exc
    return Night(settings, notifiers, log, error, check_only).run()
