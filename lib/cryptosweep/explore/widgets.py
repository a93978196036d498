"""The explorer's widgets and callbacks: a reports folder's runs, two runs side by side, a
run's trials as a filterable, sortable table with parameter-against-score charts, and one trial
in depth with what-if on its trading parameters (:mod:`cryptosweep.explore.trial_view`).

:class:`Explorer` holds the widgets and the state; ``notebooks/explore.ipynb`` only lays its
panels out. Every callback is an ordinary method, so changing a widget's ``value`` from Python
does what a click in JupyterLab does (the tests drive it that way). Whatever cannot be read —
a missing reports folder, a half-written run, one from another version — is shown as a
sentence in the panel, never raised.
"""

from __future__ import annotations

import html
import math
import time
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import pandas as pd

from cryptosweep.core.errors import ConfigError
from cryptosweep.core.paths import REPORTS_DIR, resolve
from cryptosweep.explore import plots
from cryptosweep.explore.accounting import record_unlock
from cryptosweep.explore.render import frame_html, show_figure, show_message
from cryptosweep.explore.runs import (
    NOT_A_RUN,
    RunComparison,
    RunInfo,
    RunReadError,
    TrialFilter,
    compare_runs,
    filter_trials,
    inspect_run,
    list_runs,
    load_results,
    parameter_columns,
    read_evaluations,
    runs_frame,
    sort_trials,
    trials_table,
)
from cryptosweep.explore.trial_view import TrialView
from cryptosweep.explore.watch import DEFAULT_INTERVAL_S, Watcher, take_snapshot, watch

__all__ = ["Explorer", "frame_html"]

DEFAULT_MAX_ROWS = 200


def _set_range(slider: widgets.FloatRangeSlider, low: float, high: float) -> None:
    """Give ``slider`` the bounds [low, high] and select all of it (bounds set in the order
    the slider's validation accepts)."""
    if high <= low:
        high = low + 1e-9
    if low > slider.max:
        slider.max, slider.min = high, low
    else:
        slider.min, slider.max = low, high
    slider.step = (high - low) / 200
    slider.value = (low, high)


def _choose_all(select: widgets.SelectMultiple, options: list[tuple[str, Any]]) -> None:
    """New ``options`` for ``select``, all of them selected, sent to the page as one update:
    JupyterLab's view of a SelectMultiple fails when it gets fewer options while the old
    selection still points past them."""
    with select.hold_sync():
        select.value = ()
        select.options = options
        select.value = tuple(value for _, value in options)


class Explorer:
    """The explorer of one reports folder.

    Panels (each an ipywidgets box): :attr:`runs_panel` (pick a run; every run's date, state,
    strategy, best, holdout, DSR, PBO, reproducibility and gate), :attr:`compare_panel` (two
    finished runs side by side), :attr:`trials_panel` (the selected run's evaluations,
    filtered and sorted, and parameters against score for the rows the filter keeps) and
    :attr:`trial_panel` (one evaluation in depth and what-if on its trading parameters:
    :attr:`trial`, a :class:`~cryptosweep.explore.trial_view.TrialView`; its models are
    retrained once the panel is shown or a trial is picked).

    State for further work in the notebook: :attr:`runs`, :attr:`trials` (every evaluation of
    the selected run), :attr:`shown` (what the filter keeps, sorted), :attr:`comparison`, and
    :attr:`figures` (the plotly figures currently drawn, by name).
    """

    def __init__(self, reports_dir: str | Path = REPORTS_DIR, run: str | None = None,
                 compare_with: str | None = None, max_rows: int = DEFAULT_MAX_ROWS) -> None:
        resolved = resolve(reports_dir)  # the same relative path from the root or notebooks/
        self.reports_dir = Path(reports_dir) if resolved is None else resolved
        self.max_rows = max_rows
        self.runs: list[RunInfo] = []
        self.run: RunInfo | None = None
        self.trials: pd.DataFrame = trials_table([])
        self.shown: pd.DataFrame = self.trials
        self.metric = "score"
        self.comparison: RunComparison | None = None
        self.figures: dict[str, Any] = {"parameters": None, "compare": None}
        #: The runs whose holdout is shown: (folder, creation time) → the ledger that holds
        #: the look (:meth:`unlock_holdout`); every other run's holdout stays locked.
        self.unlocked: dict[tuple[Path, float | None], str] = {}
        self._quiet = False
        self._build()
        run, compare_with = (_linked(self.reports_dir, name) for name in (run, compare_with))
        self.refresh(run, compare_with)
        names = [r.name for r in self.runs]
        for what, name in (("run", run), ("compare_with", compare_with)):
            if name is not None and name not in names:  # it showed the newest without a word
                listed = ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
                raise ConfigError(f"{what} {name!r}: no such run in {self.reports_dir} "
                                  f"(its runs: {listed or 'none'})")

    # -------------------------------------------------------------------------- layout

    def _build(self) -> None:
        wide = widgets.Layout(width="560px")
        self.header = widgets.HTML()
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh",
                                             tooltip="re-read the reports folder")
        self.run_picker = widgets.Dropdown(description="Run", layout=wide)
        self.run_details = widgets.HTML()
        self.runs_table = widgets.HTML()
        self.unlock_button = widgets.Button(
            description="Unlock the holdout", icon="unlock",
            tooltip="show holdout scores; the look is recorded in the run's trial ledger and "
                    "counted in the next report")
        self.unlock_note = widgets.HTML()
        self.runs_panel = widgets.VBox([
            self.header, widgets.HBox([self.run_picker, self.refresh_button,
                                       self.unlock_button]),
            self.unlock_note, self.run_details, self.runs_table,
        ])

        self.compare_first = widgets.Dropdown(description="Compare", layout=wide)
        self.compare_second = widgets.Dropdown(description="with", layout=wide)
        self.compare_table = widgets.HTML()
        self.compare_parameters = widgets.HTML()
        self.compare_chart = widgets.Output()
        self.compare_panel = widgets.VBox([
            self.compare_first, self.compare_second, self.compare_table,
            self.compare_parameters, self.compare_chart,
        ])

        self.family_filter = widgets.SelectMultiple(description="Family", rows=4)
        self.budget_filter = widgets.SelectMultiple(description="Budget", rows=4)
        self.status_filter = widgets.SelectMultiple(description="Status", rows=4)
        self.score_filter = widgets.FloatRangeSlider(description="Score", min=0.0, max=1.0,
                                                     value=(0.0, 1.0), readout_format=".3f",
                                                     continuous_update=False,
                                                     layout=widgets.Layout(width="420px"))
        self.retried_only = widgets.Checkbox(description="retried only", value=False)
        self.sort_by = widgets.Dropdown(description="Sort by", options=["score"], value="score")
        self.descending = widgets.Checkbox(description="descending", value=True)
        self.trials_summary = widgets.HTML()
        self.trials_html = widgets.HTML()
        self.parameter_chart = widgets.Output()
        self.trials_panel = widgets.VBox([
            widgets.HBox([self.family_filter, self.budget_filter, self.status_filter]),
            widgets.HBox([self.score_filter, self.retried_only, self.sort_by,
                          self.descending]),
            self.trials_summary, self.trials_html, self.parameter_chart,
        ])

        self.trial = TrialView()
        self.trial_panel = self.trial.panel

        self.refresh_button.on_click(lambda _: self.refresh())
        self.unlock_button.on_click(lambda _: self.unlock_holdout())
        self.run_picker.observe(self._on_run, names="value")
        for picker in (self.compare_first, self.compare_second):
            picker.observe(self._on_compare, names="value")
        for control in (self.family_filter, self.budget_filter, self.status_filter,
                        self.score_filter, self.retried_only, self.sort_by, self.descending):
            control.observe(self._on_filter, names="value")

    def _ipython_display_(self) -> None:
        from IPython.display import display

        self.trial.activate()
        display(widgets.VBox([self.runs_panel, self.compare_panel, self.trials_panel,
                              self.trial_panel]))

    # ---------------------------------------------------------------------------- runs

    @staticmethod
    def _key(run: RunInfo) -> tuple[Path, float | None]:
        return run.path.resolve(), run.created_at

    def is_unlocked(self, run: RunInfo | None) -> bool:
        """Whether the holdout of ``run`` is shown (its look recorded in this session)."""
        return run is not None and self._key(run) in self.unlocked

    @property
    def holdout_unlocked(self) -> bool:
        """Whether the selected run's holdout is shown."""
        return self.is_unlocked(self.run)

    def unlock_holdout(self) -> str:
        """Show the chosen run's holdout from now on, in every panel, and record the look in
        its trial ledger (:func:`cryptosweep.explore.accounting.record_unlock`); returns where
        it was recorded, or why nothing was. Until then no panel holds anything of that run's
        holdout (the runs table and the comparison say ``locked``; the trial panel has no
        holdout period, row, curve or score), and every other run's stays locked until it is
        unlocked in turn: each look is recorded in the ledger of the run looked at, once per
        run and explorer. The trial on display stays, with its what-if, now with its
        holdout."""
        run = self.run
        if run is None:
            return "no run chosen: nothing recorded"
        if self._key(run) in self.unlocked:  # already shown: no second look
            return self.unlocked[self._key(run)]
        recorded, where = record_unlock(run.path)
        if not recorded:
            self.unlock_note.value = f"<i>nothing unlocked: {html.escape(where)}</i>"
            return where
        self.unlocked[self._key(run)] = where
        self._show_lock()
        self.trial.show_holdout()
        self._draw_runs_table()
        self.run_details.value = self._details(run)
        self.compare(self.compare_first.value, self.compare_second.value)
        return where

    def _show_lock(self) -> None:
        """The unlock button and its note for the selected run."""
        where = self.unlocked.get(self._key(self.run)) if self.run is not None else None
        self.unlock_button.disabled = where is not None
        self.unlock_note.value = ("" if where is None else
                                  f"<i>holdout of {html.escape(self.run.name)} unlocked; the "
                                  f"look is recorded ({html.escape(where)})</i>")

    def _draw_runs_table(self) -> None:
        shown = {r.name for r in self.runs if self.is_unlocked(r)}
        self.runs_table.value = frame_html(runs_frame(self.runs, show_holdout=shown),
                                           index=False) if self.runs else ""

    def refresh(self, run: str | None = None, compare_with: str | None = None) -> None:
        """Re-read the reports folder and select ``run`` (else the current one, else the newest
        readable run). Compare ``compare_with`` → ``run`` when both are complete runs (by
        default the pair being compared); otherwise ``run`` (or the newest complete run) and
        the complete run before it (or after it), the earlier one first: changes read from
        the first to the second."""
        previous = run or (self.run.name if self.run else None)
        if run is None and compare_with is None:  # keep the pair being compared
            run, compare_with = self.compare_second.value, self.compare_first.value
        try:
            self.runs = _list_runs(self.reports_dir)
            problem = None
        except RunReadError as exc:
            self.runs, problem = [], str(exc)
        readable = [r for r in self.runs if r.readable]
        complete = [r for r in self.runs if r.complete]
        if problem:
            self.header.value = f"<b>{html.escape(problem)}</b>"
        else:
            self.header.value = (
                f"<b>{len(self.runs)} run(s)</b> in {html.escape(str(self.reports_dir))} "
                f"({len(complete)} complete); read {time.strftime('%H:%M:%S')}")
        self._draw_runs_table()
        names = [r.name for r in self.runs]
        choice = previous if previous in names else (readable[0].name if readable else None)
        self._quiet = True
        try:
            self.run_picker.options = [(r.label, r.name) for r in self.runs]
            self.run_picker.value = choice
            options = [(r.label, r.name) for r in complete]
            done = [r.name for r in complete]  # newest first
            if run in done and compare_with in done:
                first, second = compare_with, run
            else:
                second = run if run in done else (done[0] if done else None)
                first = _neighbour(done, second)
                if first is not None and second is not None \
                        and done.index(first) < done.index(second):
                    first, second = second, first  # the earlier run first
            self.compare_first.options = options
            self.compare_second.options = options
            self.compare_first.value, self.compare_second.value = first, second
        finally:
            self._quiet = False
        self.select_run(choice)
        self.compare(first, second)

    def _on_run(self, change: dict[str, Any]) -> None:
        if not self._quiet:
            self.select_run(change["new"])

    def select_run(self, name: str | None) -> None:
        """Show run ``name``: its state, its evaluations in the trials panel, and its winner
        in the trial panel."""
        self.run = next((r for r in self.runs if r.name == name), None)
        self._show_lock()
        self.trial.holdout_unlocked = self.holdout_unlocked  # this run's, not the last one's
        if self.run is None:
            self.run_details.value = "<i>no run to show</i>" if self.runs else ""
            self._set_trials(trials_table([]), "no run selected")
            self.trial.show_run(None, [], "no run selected")
            return
        self.run_details.value = self._details(self.run)
        try:
            evaluations = read_evaluations(self.run.path)
        except RunReadError as exc:
            self._set_trials(trials_table([]), str(exc))
            self.trial.show_run(None, [], str(exc))
            return
        self.metric = next((str(e["metrics"]["metric"]) for e in evaluations
                            if (e.get("metrics") or {}).get("metric")), "score")
        self._set_trials(trials_table(evaluations), None)
        self.trial.show_run(self.run, evaluations)

    def _details(self, run: RunInfo) -> str:
        summary = run.summary or {}
        if run.complete:
            parts = [f"strategy {summary.get('strategy')}"] + [
                f"{label} {value:+.3f}" if label in ("best", "holdout") else f"{label} {value:.2f}"
                for label, value in (("best", summary.get("best")),
                                     ("holdout", summary.get("holdout")
                                      if self.holdout_unlocked else None),
                                     ("DSR", summary.get("dsr")), ("PBO", summary.get("pbo")))
                if value is not None]
            if summary.get("status"):
                parts.append(f"reproducibility {summary['status']}")
            if run.gate:
                parts.append(f"gate: {run.gate}")
            text = f"<b>{html.escape(run.name)}</b>: complete — {html.escape(', '.join(parts))}"
        elif run.state == "running":
            text = (f"<b>{html.escape(take_snapshot(run.path).text())}</b> "
                    f"<i>({html.escape(run.note or '')}; explore.watch shows it live)</i>")
        else:
            text = f"<b>{html.escape(run.name)}</b>: {html.escape(run.state)}"
        if run.note and run.state != "running":
            text += f"<br><i>{html.escape(run.note)}</i>"
        return text

    @property
    def run_dir(self) -> Path | None:
        """The selected run's folder."""
        return None if self.run is None else self.run.path

    def watch(self, interval: float = DEFAULT_INTERVAL_S, timeout: float | None = None
              ) -> Watcher | None:
        """The live view of the selected run (see :func:`cryptosweep.explore.watch`)."""
        return None if self.run is None else watch(self.run.path, interval, timeout)

    # -------------------------------------------------------------------------- trials

    def _set_trials(self, trials: pd.DataFrame, problem: str | None) -> None:
        self.trials = trials
        self._quiet = True
        try:
            families = sorted(trials["family"].dropna().unique()) if not trials.empty else []
            budgets = sorted(trials["budget"].unique()) if not trials.empty else []
            statuses = sorted(trials["status"].unique()) if not trials.empty else []
            _choose_all(self.family_filter, [(str(f), f) for f in families])
            _choose_all(self.budget_filter, [(f"{b:g}", float(b)) for b in budgets])
            _choose_all(self.status_filter, [(str(s), s) for s in statuses])
            scores = trials["score"].dropna() if not trials.empty else pd.Series(dtype=float)
            self.score_filter.disabled = scores.empty
            if not scores.empty:
                _set_range(self.score_filter, float(scores.min()), float(scores.max()))
            columns = ["score", "eval_id"] + [c for c in trials.columns if c != "score"]
            self.sort_by.options = columns
            self.sort_by.value = "score"
            self.descending.value = True
            self.retried_only.value = False
        finally:
            self._quiet = False
        if problem is not None:
            self.trials_summary.value = f"<b>{html.escape(problem)}</b>"
            self.trials_html.value = ""
            self.shown = trials
            self.figures["parameters"] = None
            show_message(self.parameter_chart, problem)
            return
        self.update_trials()

    def current_filter(self) -> TrialFilter:
        """The filter the widgets describe; a score range at the slider's bounds is open, so
        that no score is lost to the slider's rounding."""
        low, high = self.score_filter.value
        score_range = None
        if not self.score_filter.disabled:
            score_range = (-math.inf if low <= self.score_filter.min else low,
                           math.inf if high >= self.score_filter.max else high)
            if score_range == (-math.inf, math.inf):
                score_range = None
        return TrialFilter(
            families=frozenset(self.family_filter.value),
            budgets=frozenset(float(b) for b in self.budget_filter.value),
            statuses=frozenset(self.status_filter.value),
            score_range=score_range,
            retried_only=bool(self.retried_only.value),
        )

    def _on_filter(self, change: dict[str, Any]) -> None:
        if not self._quiet:
            self.update_trials()

    def update_trials(self) -> None:
        """Apply the filter and the sort to the run's trials; redraw the table and the
        parameter-against-score chart."""
        kept = filter_trials(self.trials, self.current_filter())
        self.shown = sort_trials(kept, self.sort_by.value, bool(self.descending.value))
        total = len(self.trials)
        failed = int(self.trials["failed"].sum()) if "failed" in self.trials else 0
        retried = int(self.trials["retried"].sum()) if "retried" in self.trials else 0
        more = (f"; the first {self.max_rows} shown" if len(self.shown) > self.max_rows else "")
        self.trials_summary.value = (
            f"<b>{len(self.shown)} of {total} evaluations</b> kept by the filter "
            f"({failed} failed, {retried} retried in the run){more}; sorted by "
            f"{html.escape(str(self.sort_by.value))}"
            + (" descending" if self.descending.value else " ascending"))
        self.trials_html.value = frame_html(self.shown, self.max_rows)
        figure = plots.parameter_scores(self.shown, parameter_columns(self.shown), self.metric)
        self.figures["parameters"] = figure
        show_figure(self.parameter_chart, figure, "no scored evaluation kept by the filter")

    # ------------------------------------------------------------------------- compare

    def _on_compare(self, change: dict[str, Any]) -> None:
        if not self._quiet:
            self.compare(self.compare_first.value, self.compare_second.value)

    def compare(self, first: str | None, second: str | None) -> RunComparison | None:
        """Put runs ``first`` and ``second`` side by side (both must be complete)."""
        self.comparison = None
        self.figures["compare"] = None
        if first is None or second is None:
            message = "two complete runs are needed to compare"
            self.compare_table.value = f"<i>{message}</i>"
            self.compare_parameters.value = ""
            show_message(self.compare_chart, message)
            return None
        runs = {r.name: r for r in self.runs}
        try:
            comparison = compare_runs(
                load_results(runs[first].path), load_results(runs[second].path),
                show_holdout=(self.is_unlocked(runs[first]), self.is_unlocked(runs[second])))
        except (RunReadError, KeyError) as exc:
            message = str(exc) if isinstance(exc, RunReadError) else f"unknown run {exc}"
        except (AttributeError, TypeError, ValueError) as exc:  # a field of another type
            message = (f"{first} and {second} cannot be compared: a results file holds what "
                       f"this version does not write ({type(exc).__name__}: {exc})")
        else:
            message = None
        if message is not None:
            self.compare_table.value = f"<b>{html.escape(message)}</b>"
            self.compare_parameters.value = ""
            show_message(self.compare_chart, message)
            return None
        self.comparison = comparison
        self.compare_table.value = "<b>Figures of merit</b>" + frame_html(comparison.summary)
        self.compare_parameters.value = ("<b>Parameters of the winners</b>"
                                         + frame_html(comparison.parameters))
        figure = plots.best_score_curves(comparison.curves, self.metric)
        self.figures["compare"] = figure
        show_figure(self.compare_chart, figure, "no finished evaluation in either run")
        return comparison


def _list_runs(reports_dir: Path) -> list[RunInfo]:
    """:func:`~cryptosweep.explore.runs.list_runs`, with an empty folder as a problem too (a
    run folder given for its reports folder said so, as if no sweep had run)."""
    runs = list_runs(reports_dir)
    if not runs:
        if inspect_run(reports_dir).state != NOT_A_RUN:
            raise RunReadError(f"{reports_dir} is a run folder, not a reports folder: "
                               f"Explorer({str(reports_dir.parent)!r}, run={reports_dir.name!r})")
        raise RunReadError(f"no run folders in {reports_dir} yet (make sweep writes one)")
    return runs


def _linked(reports_dir: Path, name: Any) -> Any:
    """The run a link in the reports folder names (``latest``, which the nightly keeps; runs
    are listed by their own names, links skipped), else ``name`` as it is."""
    if not isinstance(name, str) or not name or "/" in name:
        return name
    link = reports_dir / name
    if link.is_symlink() and link.resolve().parent == reports_dir.resolve():
        return link.resolve().name
    return name


def _neighbour(names: list[str], name: str | None) -> str | None:
    """The run listed after ``name`` (newest first: the one before it in time), else the one
    listed before it; None when there is no other."""
    if name is None:
        return None
    i = names.index(name)
    return names[i + 1] if i + 1 < len(names) else (names[i - 1] if i > 0 else None)
