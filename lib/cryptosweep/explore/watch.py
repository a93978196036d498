"""A live view of a running sweep: ``explore.watch(run_dir)`` polls the run's journal and
redraws, every few seconds, the evaluations done and failed, the best score against compute,
the Hyperband rungs filled so far and the workers' busy timeline; it stops by itself when the
journal says the sweep is ``complete`` or ``failed``.

The journal is only ever read: each poll opens ``sweep.db`` with
:meth:`~cryptosweep.records.journal.Journal.open_readonly`, runs a few single-statement reads in
autocommit mode and closes it. In WAL mode a reader never blocks the writer, so the sweep's
writes never wait for the watcher, whoever started the sweep: cron, the CLI in another
process, or :func:`start_sweep` in a background thread of the same notebook. A journal that
does not exist yet, or is between two writes, is shown as such and polled again.
"""

from __future__ import annotations

import concurrent.futures
import html
import logging
import math
import sqlite3
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptosweep.core.config_files import config_as_made, validate_config
from cryptosweep.core.errors import ConfigError, UserError
from cryptosweep.core.paths import REPORTS_DIR, resolve
from cryptosweep.explore import plots
from cryptosweep.explore.render import show_figure
from cryptosweep.records.evaluations import EvaluationRow, configured
from cryptosweep.records.inspection import DB_NAME
from cryptosweep.records.integrity import JournalDamagedError
from cryptosweep.records.journal import Journal
from cryptosweep.records.ranking import ranked
from cryptosweep.records.results import evaluation_record, resource_usage
from cryptosweep.reporting import figures
from cryptosweep.strategies import make_strategy
from cryptosweep.strategies.hyperband import hyperband_brackets

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_INTERVAL_S",
    "BackgroundSweep",
    "Snapshot",
    "WatchedPlan",
    "Watcher",
    "start_sweep",
    "take_snapshot",
    "watch",
    "watched_plan",
]

DEFAULT_INTERVAL_S = 3.0
FINISHED_STATUSES = ("complete", "failed")


# ------------------------------------------------------------------------------ the plan


@dataclass(frozen=True)
class WatchedPlan:
    """What the sweep's config says it will run: the number of evaluations and, for Hyperband,
    the planned evaluations and resource of every (iteration, bracket, rung)."""

    total: int | None
    rungs: dict[tuple[int, int, int], tuple[int, float]] = field(default_factory=dict)
    full_budget: float | None = None  # one configuration's full budget (budget units)


def watched_plan(config: Mapping[str, Any], seed: int) -> WatchedPlan:
    """The plan of a journaled config (built the way the runner builds its strategy); an
    unknown total when the config cannot be read by this version."""
    try:
        parsed = validate_config(config_as_made(dict(config)), "journal config")
        total = make_strategy(parsed, int(seed)).total_evaluations
    except (UserError, ValueError, TypeError, KeyError):
        return WatchedPlan(None)
    rungs: dict[tuple[int, int, int], tuple[int, float]] = {}
    if parsed.sweep_type == "hyperband":
        settings = parsed.hyperband
        for iteration in range(settings.iterations):
            for bracket in hyperband_brackets(settings.max_iter, settings.eta):
                for i, rung in enumerate(bracket.rungs):
                    rungs[(iteration, bracket.s, i)] = (rung.n_configs, rung.resource)
    return WatchedPlan(total, rungs, float(parsed.full_budget_units))


# -------------------------------------------------------------------------- one snapshot


@dataclass(frozen=True)
class Snapshot:
    """The journal at one moment, read-only."""

    run_dir: Path
    taken_at: float
    status: str | None  # the journal's status; None while there is no readable journal
    note: str | None = None  # why the journal could not be read, when it could not
    config: Mapping[str, Any] | None = None
    seed: int | None = None
    rows: tuple[EvaluationRow, ...] = ()
    slots: int | None = None  # how many evaluations the sweep's executor runs at once

    @property
    def finished(self) -> bool:
        """The sweep has ended: the journal says ``complete`` or ``failed``."""
        return self.status in FINISHED_STATUSES

    def count(self, status: str) -> int:
        return sum(row.status == status for row in self.rows)

    @property
    def done(self) -> int:
        return self.count("done")

    @property
    def failed(self) -> int:
        return self.count("failed")

    @property
    def retried(self) -> int:
        return sum(row.attempts > 1 for row in self.rows)

    @property
    def compute(self) -> float:
        """Budget units of the finished evaluations (done and failed)."""
        return sum(row.budget for row in self.rows if row.status in ("done", "failed"))

    @property
    def best(self) -> float | None:
        """The best score so far (:func:`cryptosweep.records.ranking.ranked`)."""
        best = ranked(self.rows)
        return None if not best else float(best[0].score)  # type: ignore[arg-type]

    def best_at(self, full_budget: float) -> float | None:
        """The best score of an evaluation done at ``full_budget``; None before the first
        (a Hyperband sweep's low rungs are not comparable with it)."""
        best = ranked(row for row in self.rows if float(row.budget) == float(full_budget))
        return None if not best else float(best[0].score)  # type: ignore[arg-type]

    @property
    def running(self) -> int:
        """Evaluations running now: those the journal says were submitted, at most the
        executor's slots (the runner keeps a queue ahead of the workers)."""
        submitted = self.count("running")
        return submitted if self.slots is None else min(submitted, self.slots)

    def records(self) -> list[dict[str, Any]]:
        """The evaluations as results records, for the report's figure builders."""
        return [evaluation_record(row) for row in self.rows]

    def rungs(self, plan: WatchedPlan) -> list[dict[str, Any]]:
        """Per planned Hyperband rung with at least one journaled evaluation, or the first
        rung of a bracket: planned, done, failed and running evaluations, in plan order."""
        counts: dict[tuple[int, int, int], dict[str, int]] = {}
        for row in self.rows:
            tags = row.tags
            if not {"iteration", "bracket", "rung"} <= set(tags):
                continue
            key = (int(tags["iteration"]), int(tags["bracket"]), int(tags["rung"]))
            slot = counts.setdefault(key, {"done": 0, "failed": 0, "running": 0})
            if row.status in slot:
                slot[row.status] += 1
        out = []
        for key, (planned, resource) in plan.rungs.items():
            if key not in counts:
                continue
            out.append({"iteration": key[0], "bracket": key[1], "rung": key[2],
                        "resource": resource, "planned": planned, **counts[key]})
        return out

    def text(self, plan: WatchedPlan | None = None) -> str:
        """One line: status, evaluations finished of planned, failed, running, retried, best."""
        if self.status is None:
            return f"{self.run_dir.name}: {self.note or 'waiting for the journal'}"
        total = plan.total if plan is not None else None
        finished = self.done + self.failed
        full_budget = plan.full_budget if plan is not None else None
        best = self.best if full_budget is None else self.best_at(full_budget)
        queued = self.count("running") - self.running
        return (f"{self.run_dir.name}: {self.status} — {finished}"
                + (f" of {total}" if total else "") + f" evaluations finished "
                f"({self.done} done, {self.failed} failed, {self.retried} retried), "
                f"{self.running} running" + (f", {queued} queued" if queued else "")
                + f"; compute {self.compute:g} budget units; best at full budget: "
                + ("–" if best is None else f"{best:+.4f}"))


def take_snapshot(run_dir: str | Path, timeout: float = 1.0) -> Snapshot:
    """Read the journal of ``run_dir`` once, read-only. The status is read before the
    evaluations, so a snapshot that says ``complete`` holds every evaluation. A journal that
    is missing or unreadable gives a snapshot with ``status=None`` and a note."""
    run_dir = Path(run_dir)
    now = time.time()
    if not (run_dir / DB_NAME).is_file():
        return Snapshot(run_dir, now, None, f"waiting for the journal {run_dir / DB_NAME}")
    try:
        journal = Journal.open_readonly(run_dir, timeout=timeout)
        try:
            status = journal.get_meta("status", None)
            config = journal.get_meta("config", None)
            seed = journal.get_meta("seed", None)
            slots = journal.get_meta("slots", None)
            rows = tuple(configured(row) for row in journal.evaluations())
        finally:
            journal.close()
    except sqlite3.Error as exc:  # not created yet, or briefly locked: poll again
        return Snapshot(run_dir, now, None, f"journal not readable yet ({exc})")
    except JournalDamagedError as exc:  # rows that do not match their checksums
        return Snapshot(run_dir, now, None, str(exc))
    return Snapshot(run_dir, now, status if isinstance(status, str) else None,
                    None if isinstance(status, str) else "the journal has no status yet",
                    config, seed, rows, slots if isinstance(slots, int) else None)


# ------------------------------------------------------------------------------ a sweep


@dataclass(frozen=True)
class BackgroundSweep:
    """A sweep running in a background thread of this process (:func:`start_sweep`)."""

    run_dir: Path
    future: concurrent.futures.Future[Any]

    def done(self) -> bool:
        return self.future.done()

    def result(self, timeout: float | None = None) -> Any:
        """The :class:`~cryptosweep.sweep.runner.SweepResult` once it has finished (or its
        error)."""
        return self.future.result(timeout)


def start_sweep(config_path: str | Path | None = None, *, log_dir: str | Path = REPORTS_DIR,
                run_name: str | None = None, **options: Any) -> BackgroundSweep:
    """Start :func:`cryptosweep.sweep.runner.run_sweep` in a background thread and return at once,
    with the run folder to :func:`watch`. ``options`` are run_sweep's (``seed``, ``workers``,
    ``overrides``, ``resume``, ...); the progress bar is off (the watcher shows progress).
    Relative paths are read as the explorer reads its reports folder
    (:func:`~cryptosweep.core.paths.resolve`: the working directory, else the repository), so
    that from a kernel in ``notebooks/`` the run lands in the reports folder the explorer
    lists, not in ``notebooks/reports``."""
    from cryptosweep.sweep.opening import utc_stamp
    from cryptosweep.sweep.runner import run_sweep

    config_path = resolve(config_path, "config_path")
    log_dir = resolve(log_dir, "log_dir") or Path(REPORTS_DIR)
    resume = resolve(options.get("resume"), "resume")
    if resume is not None:
        options["resume"] = resume
        run_dir = resume.parent if resume.name == DB_NAME else resume
    else:
        run_name = run_name or f"explore_{utc_stamp()}"
        run_dir = Path(log_dir) / run_name
    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="cryptosweep-sweep")
    future = pool.submit(run_sweep, config_path, log_dir=log_dir, run_name=run_name,
                         **{"show_progress": False, **options})
    pool.shutdown(wait=False)
    return BackgroundSweep(run_dir, future)


# ------------------------------------------------------------------------------ watching


class Watcher:
    """Polls a run's journal every ``interval`` seconds in a daemon thread and redraws its
    widget, until the sweep has ended (the journal says ``complete`` or ``failed``, or the
    :class:`BackgroundSweep` it watches has returned), ``timeout`` seconds have passed, or
    :meth:`stop` is called. ``history`` keeps ``(time, done, failed)`` of every poll."""

    def __init__(self, target: str | Path | BackgroundSweep,
                 interval: float = DEFAULT_INTERVAL_S, timeout: float | None = None,
                 widget: bool = True) -> None:
        _check_seconds("interval", interval, positive=True)
        if timeout is not None:
            _check_seconds("timeout", timeout, positive=False)
        self.sweep = target if isinstance(target, BackgroundSweep) else None
        self.run_dir = Path(target.run_dir if isinstance(target, BackgroundSweep) else target)
        self.interval, self.timeout = float(interval), timeout
        self.history: list[tuple[float, int, int]] = []
        self.last: Snapshot | None = None
        self.plan: WatchedPlan | None = None
        self.reason: str | None = None  # why it stopped
        self.error: BaseException | None = None
        self.last_change = time.time()  # when the counts or the status last changed
        self._progress: tuple[Any, ...] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = time.monotonic()
        self._view = _WatchView() if widget else None

    # -------------------------------------------------------------------- polling

    def poll(self) -> Snapshot:
        """Read the journal once, record it and redraw."""
        snapshot = take_snapshot(self.run_dir)
        if self.plan is None and snapshot.config is not None and snapshot.seed is not None:
            self.plan = watched_plan(snapshot.config, snapshot.seed)
        progress = (snapshot.done, snapshot.failed, snapshot.count("running"), snapshot.status)
        if progress != self._progress:
            self._progress, self.last_change = progress, snapshot.taken_at
        self.last = snapshot
        self.history.append((snapshot.taken_at, snapshot.done, snapshot.failed))
        self._draw(snapshot)
        return snapshot

    def _draw(self, snapshot: Snapshot) -> None:
        if self._view is None:
            return
        idle = snapshot.taken_at - self.last_change
        quiet = (f"nothing has changed for {idle:.0f} s (an interrupted sweep stays "
                 "'running' until it is resumed)") if idle >= max(60.0, 5 * self.interval) \
            else None
        self._view.draw(snapshot, self.plan or WatchedPlan(None), self.reason or quiet)

    def _ended(self, snapshot: Snapshot) -> str | None:
        if snapshot.finished:
            return f"the sweep is {snapshot.status}: watching stopped"
        if self.sweep is not None and self.sweep.done():
            error = self.sweep.future.exception()
            return ("the sweep returned" if error is None else f"the sweep raised {error!r}"
                    ) + ": watching stopped"
        if self.timeout is not None and time.monotonic() - self._started >= self.timeout:
            return f"watched for {self.timeout:g} s: watching stopped"
        if self._stop.is_set():
            return "watching stopped"
        return None

    def start(self) -> Watcher:
        """Poll once now; keep polling in a daemon thread unless the sweep has already ended."""
        self._started = time.monotonic()
        if self._finish_if_ended(self.poll()):
            return self
        self._thread = threading.Thread(target=self._loop, name="cryptosweep-watch",
                                        daemon=True)
        self._thread.start()
        return self

    def _finish_if_ended(self, snapshot: Snapshot) -> bool:
        reason = self._ended(snapshot)
        if reason is None:
            return False
        if not snapshot.finished and self.sweep is not None and self.sweep.done():
            snapshot = self.poll()  # the journal as the sweep left it when it returned
            reason = self._ended(snapshot) or reason
        self.reason = reason
        self._draw(snapshot)
        return True

    def _loop(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                if self._finish_if_ended(self.poll()):
                    return
            if self.last is not None:
                self._finish_if_ended(self.last)
        except Exception as exc:  # a bug here must not go unseen, nor touch the sweep
            self.error, self.reason = exc, f"the watcher failed: {exc!r}"
            log.exception("watching %s failed", self.run_dir)
            if self._view is not None:
                self._view.show_error(self.reason)

    def stop(self) -> None:
        """Stop polling (the sweep itself is not touched)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def join(self, timeout: float | None = None) -> bool:
        """Wait until the watcher has stopped by itself; True when it has."""
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def widget(self) -> Any:
        """The live widget (a VBox: status line, best score against compute, rungs filled,
        workers' timeline); None for a watcher made with ``widget=False``."""
        return None if self._view is None else self._view.box

    @property
    def figures(self) -> dict[str, Any]:
        """The plotly figures last drawn, by name (``history``, ``rungs``, ``workers``)."""
        return {} if self._view is None else dict(self._view.figures)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        if self._view is not None:
            display(self._view.box)


def _check_seconds(name: str, value: Any, *, positive: bool) -> None:
    """``value`` must be a finite number of seconds, above 0 (``positive``) or at least 0: a
    NaN interval polled the journal in a busy loop (20,000 reads in half a second), text
    raised a TypeError from a comparison."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not number or not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise ConfigError(f"watch: {name} must be a finite number of seconds "
                          f"{'above 0' if positive else 'of at least 0'}, got {value!r}")


def watch(target: str | Path | BackgroundSweep, interval: float = DEFAULT_INTERVAL_S,
          timeout: float | None = None) -> Watcher:
    """Watch a sweep: a run folder (started by cron, the CLI or anything else) or a
    :class:`BackgroundSweep` of this process. Returns the started :class:`Watcher`; as the
    last expression of a notebook cell it shows its live widget."""
    return Watcher(target, interval, timeout).start()


# ------------------------------------------------------------------------------ the view


class _WatchView:
    """The watcher's widget: a status line and three charts. Charts are plotly mime bundles
    in :class:`ipywidgets.Output` widgets (rendered offline by plotly's JupyterLab extension),
    set through ``outputs`` so that the poller thread can redraw them."""

    def __init__(self) -> None:
        import ipywidgets as widgets

        self.status = widgets.HTML()
        self.history = widgets.Output()
        self.rungs = widgets.Output()
        self.workers = widgets.Output()
        self.figures: dict[str, Any] = {}
        self.drawn: tuple[Any, ...] | None = None  # what the charts show: no redraw without news
        self.box = widgets.VBox([self.status, self.history, self.rungs, self.workers])

    def draw(self, snapshot: Snapshot, plan: WatchedPlan, note: str | None) -> None:
        """The status line every time; the charts only when an evaluation changed status (a
        chart redrawn in the page for nothing would flicker every few seconds)."""
        line = html.escape(snapshot.text(plan))
        note_html = f"<br><i>{html.escape(note)}.</i>" if note else ""
        self.status.value = f"<b>Live view</b> — {line}{note_html}"
        content = (snapshot.status, plan.total,
                   tuple((row.eval_id, row.status, row.attempts) for row in snapshot.rows))
        if content == self.drawn:
            return
        self.drawn = content
        records = snapshot.records()
        config = snapshot.config or {}
        self.figures = {
            "history": figures.optimisation_history({"evaluations": records, "config": config}),
            "rungs": plots.rung_fill(snapshot.rungs(plan)),
            "workers": figures.worker_gantt(resource_usage(list(snapshot.rows), []),
                                            {"evaluations": records}),
        }
        show_figure(self.history, self.figures["history"], "no finished evaluation yet")
        show_figure(self.rungs, self.figures["rungs"],
                    "no Hyperband rungs" if not plan.rungs else "no rung started yet")
        show_figure(self.workers, self.figures["workers"], "no finished evaluation yet")

    def show_error(self, message: str) -> None:
        self.status.value += f"<br><b style='color:#d62728'>{html.escape(message)}</b>"
