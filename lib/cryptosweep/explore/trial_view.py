"""One trial in depth, and what-if on its trading parameters: the widgets of
:attr:`cryptosweep.explore.Explorer.trial_panel`.

Selecting a trial shows at once what the sweep recorded (parameters, per-fold metrics, equity
and drawdown of the journaled per-bar returns), then retrains its models with its recorded seed
(:func:`~cryptosweep.explore.whatif.trial_predictions`, seconds; cached for the session) and
draws its trades on a candlestick chart. From then on the sliders for the threshold, holding
period, stop loss and take profit (their ranges: the run's ``parameter_ranges.trading``)
backtest the cached predictions again on release and redraw the what-if equity, metrics and
trades: signals, backtest, metrics and redraw take milliseconds
(``benchmarks/explore_whatif.py``).

Retraining runs in a background thread once the panel is shown (or a trial is picked), so the
notebook stays usable; :meth:`TrialView.wait` waits for it. Every callback is an ordinary
method, so changing a widget's ``value`` from Python does what a click does. What cannot be
done — a folder that cannot be read, a trial that failed, data that changed since the sweep —
is said in the panel, never raised.
"""

from __future__ import annotations

import html
import threading
import time
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

import ipywidgets as widgets
import numpy as np

from cryptosweep.core.errors import UserError
from cryptosweep.explore.accounting import counted, record_what_if
from cryptosweep.explore.render import show_figure, show_message, table_html
from cryptosweep.explore.runs import RunInfo, RunReadError
from cryptosweep.explore.trial import (
    HOLDOUT,
    TrialRecord,
    block_labels,
    finished_evaluations,
    parameters_table,
    read_trial,
    trading_dimensions,
)
from cryptosweep.explore.trial_plots import (
    CANDLES_PER_WINDOW,
    equity_figure,
    fill_equity,
    trade_windows,
    trades_figure,
)
from cryptosweep.explore.whatif import (
    PREDICTIONS,
    Parity,
    PredictionCache,
    WhatIf,
    metrics_table,
    parity,
    training_steps,
    what_if,
)
from cryptosweep.trading.metrics import trial_sharpe
from cryptosweep.trading.objective import Predictions
from cryptosweep.trading.steps import Market, TradingParams, load_market

__all__ = ["TRADING_PARAMETERS", "TrialView"]

#: The trading parameters the sliders set: name → (label, readout format).
TRADING_PARAMETERS = {"threshold": ("threshold", ".3f"),
                      "holding_period": ("holding (bars)", "d"),
                      "stop_loss": ("stop loss", ".2%"),
                      "take_profit": ("take profit", ".2%")}
_SLIDER_STEPS = 100
_WIDE = widgets.Layout(width="640px")


def _slider(name: str, dimension: Mapping[str, Any] | None, value: Any) -> widgets.Widget:
    """A slider over the search range of trading parameter ``name`` that includes the trial's
    ``value``; continuous_update off: it reports on release."""
    label, readout = TRADING_PARAMETERS[name]
    common = {"description": label, "continuous_update": False, "disabled": True,
              "style": {"description_width": "110px"}, "layout": widgets.Layout(width="440px")}
    kind = (dimension or {}).get("type")
    if kind == "categorical":
        choices = list(dimension["choices"]) if dimension else [value]
        if value not in choices:
            choices = sorted([*choices, value])
        return widgets.SelectionSlider(options=choices, value=value, **common)
    low = (dimension or {}).get("low", value)
    high = (dimension or {}).get("high", value)
    low, high = min(low, value), max(high, value)
    if kind == "int" or name == "holding_period":
        step = int((dimension or {}).get("step") or 1)
        return widgets.IntSlider(min=int(low), max=max(int(high), int(low) + 1), step=step,
                                 value=int(value), **common)
    step = (dimension or {}).get("step") or (high - low) / _SLIDER_STEPS or 1e-3
    return widgets.FloatSlider(min=float(low), max=float(max(high, low + step)), step=step,
                               value=float(value), readout_format=readout, **common)


class _Panel(widgets.VBox):
    """A VBox that tells its view when the notebook shows it (then retraining may start)."""

    def __init__(self, children: Sequence[widgets.Widget], on_display: Any) -> None:
        super().__init__(children)
        self._on_display = on_display

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        self._on_display()
        return super()._repr_mimebundle_(**kwargs)


class TrialView:
    """The trial panel of an explorer: pick an evaluation of the selected run, see it in depth
    and move its trading parameters.

    State for further work in the notebook: :attr:`record` (what the sweep recorded),
    :attr:`predictions` (per fold and holdout), :attr:`whatif` (the backtest the sliders
    describe), :attr:`parity` (whether the trial's own parameters give the journal's returns),
    :attr:`figures` (``equity`` and ``trades``: plotly figure dicts in JSON form) and
    :attr:`timings` (seconds of the last what-if: ``backtest``, ``tables``, ``equity``,
    ``trades``, ``total``).
    """

    def __init__(self, cache: PredictionCache = PREDICTIONS, background: bool = True) -> None:
        self.cache = cache
        self.background = background
        self.holdout_unlocked = False  # set by the explorer's unlock (recorded)
        self._accounting: list[threading.Thread] = []  # what-ifs being counted in the ledger
        self.uncounted: str | None = None  # why the last what-if could not be counted
        self.active = False
        self.run: RunInfo | None = None
        self.record: TrialRecord | None = None
        self.predictions: list[Predictions] | None = None
        self.market: Market | None = None
        self.own: WhatIf | None = None
        self.whatif: WhatIf | None = None
        self.parity: Parity | None = None
        self.problem: str | None = None
        self.figures: dict[str, Any] = {"equity": None, "trades": None}
        self.timings: dict[str, float] = {}
        self.sliders: dict[str, widgets.Widget] = {}
        self._dimensions: dict[str, dict[str, Any]] | None = None
        self._generation = 0
        self._thread: threading.Thread | None = None
        self._lock = threading.RLock()
        self._quiet = False
        self._build()

    # -------------------------------------------------------------------------- layout

    def _build(self) -> None:
        self.trial_picker = widgets.Dropdown(description="Trial", layout=_WIDE)
        self.status = widgets.HTML()
        self.parameters_html = widgets.HTML()
        self.slider_box = widgets.VBox()
        self.reset_button = widgets.Button(description="the trial's own", icon="undo",
                                           tooltip="set the sliders to the trial's own "
                                                   "trading parameters", disabled=True)
        self.whatif_summary = widgets.HTML()
        self.metrics_html = widgets.HTML()
        self.equity_chart = widgets.Output()
        self.period_picker = widgets.Dropdown(description="Period", layout=_WIDE)
        self.window_picker = widgets.SelectionSlider(
            description="From (UTC)", options=[("–", 0)], continuous_update=False,
            style={"description_width": "80px"}, layout=widgets.Layout(width="640px"))
        self.trades_chart = widgets.Output()
        for widget, name in ((self.equity_chart, "equity"), (self.trades_chart, "trades"),
                             (self.whatif_summary, "summary"), (self.status, "status")):
            widget.add_class(f"cs-trial-{name}")  # names a page (and its tests) can find
        self.panel = _Panel([
            self.trial_picker, self.status,
            widgets.HBox([self.parameters_html,
                          widgets.VBox([widgets.HTML("<b>What-if</b>: trading parameters of "
                                                     "the backtest (on release)"),
                                        self.slider_box, self.reset_button])]),
            self.whatif_summary, self.equity_chart, self.metrics_html,
            self.period_picker, self.window_picker, self.trades_chart,
        ], self.activate)
        self.panel.add_class("cs-trial-panel")
        self.trial_picker.observe(self._on_trial, names="value")
        self.reset_button.on_click(lambda _: self.reset())
        self.period_picker.observe(self._on_window, names="value")
        self.window_picker.observe(self._on_window, names="value")

    def activate(self) -> None:
        """The panel is shown: retrain the selected trial now if it is not trained yet."""
        if not self.active:
            self.active = True
            if self.record is not None and self.predictions is None and self.problem is None:
                self._start_training(self._generation, self.record)

    # ---------------------------------------------------------------------------- runs

    def show_run(self, run: RunInfo | None, evaluations: Sequence[Mapping[str, Any]],
                 problem: str | None = None) -> None:
        """The evaluations of ``run`` to pick from (finished ones, the run's winner first,
        selected); ``problem``: why there are none."""
        self.run = run
        choices = finished_evaluations(evaluations) if run is not None else []
        self._quiet = True
        try:
            self.trial_picker.options = [(_label(e), int(e["eval_id"])) for e in choices]
            self.trial_picker.value = int(choices[0]["eval_id"]) if choices else None
        finally:
            self._quiet = False
        if not choices:
            self._clear(problem or ("no run selected" if run is None else
                                    f"{run.name} has no finished evaluation to show yet"))
            return
        self.select(int(choices[0]["eval_id"]), train=self.active)

    def _on_trial(self, change: dict[str, Any]) -> None:
        if not self._quiet and change["new"] is not None:
            self.active = True  # picked in the page: the panel is shown
            self.select(int(change["new"]))

    def _clear(self, problem: str) -> None:
        with self._lock:
            self._generation += 1
            self.record = self.predictions = self.own = self.whatif = self.parity = None
            self.problem = problem
            self.figures = {"equity": None, "trades": None}
        self.status.value = f"<b>{html.escape(problem)}</b>"
        for text in (self.parameters_html, self.whatif_summary, self.metrics_html):
            text.value = ""
        self._enable(False)
        _message(self.equity_chart, problem)
        _message(self.trades_chart, problem)

    # --------------------------------------------------------------------------- trial

    def select(self, eval_id: int, train: bool = True) -> TrialRecord | None:
        """Show evaluation ``eval_id`` of the run: what the sweep recorded at once, then (with
        ``train``) its retrained predictions, trades and what-if (in the background when the
        view was made with ``background=True``; :meth:`wait` waits)."""
        if self.run is None:
            self._clear("no run selected")
            return None
        if self.trial_picker.value != eval_id and eval_id in dict(self.trial_picker.options
                                                                  ).values():
            self._quiet = True
            try:
                self.trial_picker.value = eval_id
            finally:
                self._quiet = False
        try:
            record = read_trial(self.run.path, eval_id)
        except RunReadError as exc:
            self._clear(str(exc))
            return None
        with self._lock:
            self._generation += 1
            generation = self._generation
            self.record, self.problem = record, None
            self.predictions = self.own = self.whatif = self.parity = None
        self._set_sliders(record)
        self.parameters_html.value = ("<b>Parameters</b>"
                                      + table_html(parameters_table(record)))
        self.whatif_summary.value = ""
        self._draw_as_swept(record)
        self.figures["trades"] = None
        cached = self.cache.cached(record)
        if cached is not None:
            self._ready(generation, record, cached)
        elif train:
            self._start_training(generation, record)
        else:
            self.status.value = f"<b>{html.escape(record.label)}</b>"
            _message(self.trades_chart, "its trades appear once its models are retrained")
        return record

    def _draw_as_swept(self, record: TrialRecord) -> None:
        """The metrics table and the equity chart of what the sweep journaled (no what-if
        yet); the holdout's rows and curves only once it is unlocked."""
        self.metrics_html.value = self._metrics_html(record, None)
        lengths = self._shown(_lengths(record))
        self.figures["equity"] = equity_figure(
            record.returns, record.data, lengths, _equity_title(record, None)) \
            if any(lengths.values()) else None
        _figure(self.equity_chart, self.figures["equity"],
                "no per-bar returns journaled for this evaluation")

    def _start_training(self, generation: int, record: TrialRecord) -> None:
        steps = training_steps(record)
        replay = ""
        if record.rungs and record.metrics.get("continued"):
            budgets = " → ".join(f"{float(e['budget']):g}"
                                 for e in (*record.rungs, record.evaluation))
            replay = f", replaying its rungs {budgets}"
        message = (f"training the trial's models with its recorded seed {record.seed} "
                   f"({steps} models{replay})...")
        self.status.value = f"<b>{html.escape(record.label)}</b>: <i>{html.escape(message)}</i>"
        _message(self.trades_chart, message)
        if self.background:
            self._thread = threading.Thread(target=self._train, args=(generation, record),
                                            name=f"retrain eval {record.eval_id}", daemon=True)
            self._thread.start()
        else:
            self._train(generation, record)

    def _train(self, generation: int, record: TrialRecord) -> None:
        started = time.perf_counter()
        try:
            predictions = self.cache.get(record)
        except UserError as exc:
            self._failed(generation, str(exc))
            return
        except Exception as exc:  # a bug or a library error: said in the panel, kept in full
            self._failed(generation, f"retraining failed: {type(exc).__name__}: {exc}",
                         traceback.format_exc())
            return
        self.timings["training"] = time.perf_counter() - started
        self._ready(generation, record, predictions)

    def _failed(self, generation: int, message: str, details: str | None = None) -> None:
        with self._lock:
            if generation != self._generation:
                return
            self.problem = message
        self.status.value = (f"<b>{html.escape(message)}</b>"
                             + (f"<details><pre>{html.escape(details)}</pre></details>"
                                if details else ""))
        _message(self.trades_chart, message)

    def _ready(self, generation: int, record: TrialRecord, predictions: list[Predictions]
               ) -> None:
        market = load_market(record.spec)
        own = what_if(predictions, record.trading, record.spec, market)
        check = parity(record, own, show_holdout=self.holdout_unlocked)
        with self._lock:
            if generation != self._generation:
                return
            self.predictions, self.market, self.own, self.parity = predictions, market, own, check
        mark = "✔" if check.ok else "✘"
        self.status.value = (f"<b>{html.escape(record.label)}</b><br>{mark} "
                             + (html.escape(check.text) if check.ok else
                                f"<b style='color:#d62728'>{html.escape(check.text)}</b>"))
        labels = block_labels(record.data, len(own.folds),
                              own.holdout is not None and self.holdout_unlocked)
        self._quiet = True
        try:
            self.period_picker.options = list(zip(labels, range(len(labels)), strict=True))
            self.period_picker.value = len(labels) - 1  # the holdout, else the last fold
            self._set_windows(own)
        finally:
            self._quiet = False
        self._enable(True)
        self.update_what_if()

    def show_holdout(self) -> None:
        """Show the holdout from now on (the explorer's unlock, which records the look): its
        period, equity, metrics and what-if score, redrawn at once for the trial on display.
        Until then no widget, table or figure of the panel holds anything of the holdout."""
        self.holdout_unlocked = True
        with self._lock:
            generation, record, predictions = self._generation, self.record, self.predictions
            self.figures["equity"] = None
            if record is None:
                return
            if predictions is None:  # still training, or it failed: what the sweep recorded
                self._draw_as_swept(record)
                return
        self._ready(generation, record, predictions)

    def _shown(self, lengths: dict[str, int]) -> dict[str, int]:
        """The sequences to draw: the holdout only once it is unlocked."""
        return lengths if self.holdout_unlocked else {
            kind: n for kind, n in lengths.items() if kind != HOLDOUT}

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the retraining in progress (if any) and for the what-ifs being counted;
        True when none is left running."""
        for counting in self._accounting:
            counting.join(timeout)
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    # ------------------------------------------------------------------------ sliders

    def _set_sliders(self, record: TrialRecord) -> None:
        dimensions = trading_dimensions(record.config)
        own = record.params["trading"]
        self._quiet = True
        try:
            if dimensions != self._dimensions or not self.sliders:
                self.sliders = {name: _slider(name, dimensions.get(name), own[name])
                                for name in TRADING_PARAMETERS}
                for name, slider in self.sliders.items():
                    slider.observe(self._on_trading, names="value")
                    slider.add_class(f"cs-whatif-{name}")
                self.slider_box.children = tuple(self.sliders.values())
                self._dimensions = dimensions
            for name, slider in self.sliders.items():
                _set_value(slider, own[name])
        finally:
            self._quiet = False
        self._enable(False)

    def _enable(self, on: bool) -> None:
        for control in (*self.sliders.values(), self.reset_button, self.period_picker,
                        self.window_picker):
            control.disabled = not on

    def trading(self) -> TradingParams:
        """The trading parameters the sliders describe."""
        values = {name: slider.value for name, slider in self.sliders.items()}
        return TradingParams(threshold=float(values["threshold"]),
                             holding_period=int(values["holding_period"]),
                             stop_loss=float(values["stop_loss"]),
                             take_profit=float(values["take_profit"]))

    def _on_trading(self, change: dict[str, Any]) -> None:
        if not self._quiet:
            self.update_what_if()

    def reset(self) -> None:
        """Sliders back to the trial's own trading parameters."""
        if self.record is None:
            return
        self._quiet = True
        try:
            for name, slider in self.sliders.items():
                _set_value(slider, self.record.params["trading"][name])
        finally:
            self._quiet = False
        self.update_what_if()

    def update_what_if(self) -> WhatIf | None:
        """Backtest the cached predictions with the sliders' trading parameters and redraw the
        what-if: equity and drawdown first (the page starts drawing it at once), then the
        metrics and the trades. Milliseconds (:attr:`timings`)."""
        with self._lock:
            record, predictions, own = self.record, self.predictions, self.own
            if record is None or predictions is None or own is None or self.market is None:
                return None
            started = time.perf_counter()
            trading = self.trading()
            whatif = own if trading == own.trading else what_if(predictions, trading,
                                                                 record.spec, self.market)
            self.whatif = whatif
            backtested = time.perf_counter()
            if self.figures["equity"] is None:
                self.figures["equity"] = equity_figure(
                    record.returns, record.data, self._shown(_lengths(record, whatif)), "")
            fill_equity(self.figures["equity"], whatif, _equity_title(record, whatif))
            _figure(self.equity_chart, self.figures["equity"])
            drawn = time.perf_counter()
            self.whatif_summary.value = _summary(record, whatif, self.holdout_unlocked)
            self.metrics_html.value = self._metrics_html(record, whatif)
            tabled = time.perf_counter()
            self._draw_trades()
            done = time.perf_counter()
            self.timings.update(backtest=backtested - started, equity=drawn - backtested,
                                tables=tabled - drawn, trades=done - tabled,
                                total=done - started)
        if whatif is not own and self.run is not None:
            self._count_try(record, whatif)
        return whatif

    def _count_try(self, record: TrialRecord, whatif: WhatIf) -> None:
        """A what-if is a trial: recorded in the run's ledger (off the slider's path)."""
        trading = whatif.trading
        params = {**record.params, "trading": {
            "threshold": trading.threshold, "holding_period": trading.holding_period,
            "stop_loss": trading.stop_loss, "take_profit": trading.take_profit}}
        # As every trial's: equal-up-to-rounding returns have none (not a Sharpe of 1e16)
        sharpe = trial_sharpe(np.asarray(whatif.validation_returns, dtype=float))
        run_dir = self.run.path
        self.uncounted = None
        thread = threading.Thread(
            target=counted(record_what_if, self._not_counted),
            args=(run_dir, params, int(record.seed), float(record.evaluation["budget"]), sharpe),
            kwargs={"holdout_shown": self.holdout_unlocked}, name="count what-if", daemon=True)
        thread.start()
        self._accounting.append(thread)

    def _not_counted(self, message: str) -> None:
        self.uncounted = message
        self.whatif_summary.value += (f"<br><b style='color:#d62728'>{html.escape(message)}"
                                      "</b>")

    # ------------------------------------------------------------------------- trades

    def _set_windows(self, whatif: WhatIf) -> None:
        block = whatif.blocks[self.period_picker.value]
        windows = trade_windows(block.times)
        first_trade = next((start for _, start in windows
                            if any(start <= t.entry_bar < start + CANDLES_PER_WINDOW
                                   for t in block.result.trades)), 0)
        self.window_picker.options = windows
        self.window_picker.value = first_trade

    def _on_window(self, change: dict[str, Any]) -> None:
        if self._quiet or self.whatif is None:
            return
        if change["owner"] is self.period_picker:
            self._quiet = True
            try:
                self._set_windows(self.whatif)
            finally:
                self._quiet = False
        with self._lock:
            self._draw_trades()

    def _draw_trades(self) -> None:
        whatif, market = self.whatif, self.market
        if whatif is None or market is None or self.period_picker.value is None:
            return
        block = whatif.blocks[self.period_picker.value]
        start = int(self.window_picker.value)
        shown = sum(1 for t in block.result.trades
                    if t.entry_bar < start + CANDLES_PER_WINDOW and t.exit_bar >= start)
        own = " (the trial's own parameters)" if whatif is self.own else " (what-if)"
        title = (f"Trades on {block.name}{own}: {len(block.result.trades)} in the period, "
                 f"{shown} in these {min(CANDLES_PER_WINDOW, len(block.bars) - start)} candles")
        figure = trades_figure(market, block, start, whatif.trading, title=title)
        if figure != self.figures["trades"]:  # the page redraws only a changed chart
            self.figures["trades"] = figure
            _figure(self.trades_chart, figure)

    # -------------------------------------------------------------------------- text

    def _metrics_html(self, record: TrialRecord, whatif: WhatIf | None) -> str:
        heading = ("<b>Metrics per block</b>: as swept (the journal's)"
                   + (" and the what-if" if whatif is not None else ""))
        return heading + table_html(metrics_table(record, whatif,
                                                  show_holdout=self.holdout_unlocked))


def _figure(output: widgets.Output, figure: Mapping[str, Any] | None, empty: str = "") -> None:
    """Draw ``figure`` into ``output``, which keeps the figure's height while the page swaps
    the old chart for the new one (so the notebook does not reflow at every redraw)."""
    height = ((figure or {}).get("layout") or {}).get("height")
    output.layout.min_height = f"{int(height)}px" if height else None
    show_figure(output, figure, empty or "nothing to draw")


def _message(output: widgets.Output, message: str) -> None:
    output.layout.min_height = None
    show_message(output, message)


def _set_value(slider: widgets.Widget, value: Any) -> None:
    slider.value = int(value) if isinstance(slider, widgets.IntSlider) else value


def _label(evaluation: Mapping[str, Any]) -> str:
    params = evaluation.get("params") or {}
    metric = (evaluation.get("metrics") or {}).get("metric", "score")
    return (f"eval {evaluation['eval_id']} · trial {evaluation['trial_id']} · "
            f"{params.get('model')} · budget {float(evaluation['budget']):g} · {metric} "
            f"{float(evaluation['score']):+.3f}")


def _lengths(record: TrialRecord, whatif: WhatIf | None = None) -> dict[str, int]:
    """Bars of the validation and holdout sequences: from the run's dated blocks, else the
    journaled returns, else the what-if."""
    data = record.data or {}
    lengths = {}
    folds, holdout = data.get("folds"), data.get("holdout")
    if folds:
        lengths["validation"] = sum(int(b["stop"]) - int(b["start"]) for b in folds)
    if holdout:
        lengths[HOLDOUT] = int(holdout["stop"]) - int(holdout["start"])
    for kind, returns in record.returns.items():
        lengths.setdefault(kind, len(returns))
    if whatif is not None:
        lengths.setdefault("validation", len(whatif.validation_returns))
        if whatif.holdout is not None:
            lengths.setdefault(HOLDOUT, len(whatif.holdout.bars))
    return lengths


def _equity_title(record: TrialRecord, whatif: WhatIf | None) -> str:
    swept = record.evaluation.get("score")
    text = (f"Equity and drawdown of eval {record.eval_id}: as swept, validation "
            f"{record.metric} {float(swept):+.3f}" if swept is not None else
            f"Equity and drawdown of eval {record.eval_id}")
    if whatif is not None:
        text += f"; what-if {whatif.score:+.3f}"
    return text


def _summary(record: TrialRecord, whatif: WhatIf, show_holdout: bool = True) -> str:
    own = record.params["trading"]
    now = {"threshold": whatif.trading.threshold,
           "holding_period": whatif.trading.holding_period,
           "stop_loss": whatif.trading.stop_loss, "take_profit": whatif.trading.take_profit}
    changed = [f"{TRADING_PARAMETERS[name][0]} {_fmt(name, own[name])} → {_fmt(name, value)}"
               for name, value in now.items() if value != own[name]]
    what = ("the trial's own trading parameters" if not changed else
            "changed: " + ", ".join(changed))
    swept = record.evaluation.get("score")
    score = (f"validation {record.metric} {whatif.score:+.3f}"
             + (f" (as swept {float(swept):+.3f})" if swept is not None else "")
             + (f" — {whatif.penalty}" if whatif.penalty else ""))
    if whatif.holdout is not None and show_holdout:
        score += f", holdout {whatif.metric} {whatif.holdout.metrics[whatif.metric]:+.3f}"
    return (f"<b>What-if</b> ({html.escape(what)}): {html.escape(score)}.<br><i>The models are "
            "the trial's (trained on the labels of its own barriers); the sliders change only "
            "the trading rules of the backtest.</i>")


def _fmt(name: str, value: Any) -> str:
    spec = TRADING_PARAMETERS[name][1]
    return format(int(value), "d") if spec == "d" else format(float(value), spec)
