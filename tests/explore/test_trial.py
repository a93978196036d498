"""One trial in depth and what-if on its trading parameters, on the real Hyperband run of
``explore_reports`` (``night1``): the retrained predictions give the journal's per-bar returns
bit for bit, every table and figure of the trial panel is checked against the journal (read
with plain SQL) and against the objective's own backtest of the cached predictions, and what
cannot be done is said in the panel."""

from __future__ import annotations

import base64
import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
import pytest

from cryptosweep.explore import Explorer
from cryptosweep.explore.runs import RunReadError
from cryptosweep.explore.trial import read_trial
from cryptosweep.explore.whatif import PREDICTIONS, metrics_table, what_if
from cryptosweep.records.integrity import unpack_returns
from cryptosweep.records.ledger import Market, TrialLedger
from cryptosweep.trading.metrics import METRIC_NAMES, performance
from cryptosweep.trading.objective import configuration_predictions
from cryptosweep.trading.steps import TradingParams, backtest_bars, load_market
from tests.explore.test_runs import journal

pytestmark = pytest.mark.slow


def journaled_returns(run_dir: Path, kind: str) -> dict[int, np.ndarray]:
    """Per-bar returns of ``kind`` straight from ``sweep.db`` with plain SQL."""
    conn = sqlite3.connect(f"file:{run_dir / 'sweep.db'}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT eval_id, n, data FROM returns WHERE kind = ?",
                            (kind,)).fetchall()
    finally:
        conn.close()
    return {eval_id: unpack_returns(n, data) for eval_id, n, data in rows}


def journaled_holdouts(run_dir: Path) -> dict[int, dict[str, Any]]:
    conn = sqlite3.connect(f"file:{run_dir / 'sweep.db'}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT eval_id, metrics FROM extra_evaluations "
                            "WHERE kind = 'holdout'").fetchall()
    finally:
        conn.close()
    return {eval_id: json.loads(metrics) for eval_id, metrics in rows}


def journal_meta(run_dir: Path, key: str) -> Any:
    conn = sqlite3.connect(f"file:{run_dir / 'sweep.db'}?mode=ro", uri=True)
    try:
        return json.loads(conn.execute("SELECT value FROM meta WHERE key = ?",
                                       (key,)).fetchone()[0])
    finally:
        conn.close()


def set_journal_meta(run_dir: Path, key: str, value: Any) -> None:
    conn = sqlite3.connect(run_dir / "sweep.db")
    try:
        with conn:
            conn.execute("UPDATE meta SET value = ? WHERE key = ?", (json.dumps(value), key))
    finally:
        conn.close()


def values(array: Any) -> np.ndarray:
    """A figure array as numbers: plotly's typed-array form decoded, or a list."""
    if isinstance(array, dict):
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype="<" + array["dtype"])
    return np.asarray(array)


def trace(figure: dict[str, Any], meta: str) -> dict[str, Any]:
    (found,) = [t for t in figure["data"] if t.get("meta") == meta]
    return found


def equity_and_drawdown(returns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The oracle: compounded equity and the fall from its running peak (the start counts)."""
    equity = np.cumprod(1.0 + returns)
    peak = np.maximum.accumulate(np.concatenate([[1.0], equity]))[1:]
    return equity.astype("float32"), (equity / peak - 1.0).astype("float32")


@pytest.fixture(scope="module")
def continued(explore_reports) -> dict[str, Any]:
    """A top-k evaluation of night1 that continued from its previous rung's checkpoint (so its
    holdout is journaled and its folds' models are not those trained from scratch)."""
    run_dir = explore_reports / "night1"
    holdouts = journaled_holdouts(run_dir)
    rows = [row for row in journal(run_dir)
            if row["eval_id"] in holdouts and row["metrics"]["continued"]]
    assert rows, "the fixture run has a top-k evaluation that continued from a checkpoint"
    return rows[0]


@pytest.fixture(scope="module")
def view(explore_reports, continued):
    """The explorer on night1 with the continued evaluation picked in its trial panel (as a
    click does), retrained in the foreground."""
    ui = Explorer(explore_reports, run="night1")
    ui.trial.background = False
    ui.trial.trial_picker.value = continued["eval_id"]
    assert ui.trial.predictions is not None, ui.trial.status.value
    return ui.trial


@pytest.fixture(scope="module")
def unlocked(explore_reports, continued, view):
    """Another explorer's trial panel on the same evaluation (its predictions from the
    session's cache), with the holdout shown (the unlock without recording a look in the
    shared run's ledger): what the holdout rows and curves hold is checked on it. The
    what-ifs its tests make are counted in night1's ledger, as any explorer's are (trials and
    looks, from background threads): waited for before the module ends."""
    ui = Explorer(explore_reports, run="night1")
    ui.trial.background = False
    ui.trial.show_holdout()
    ui.trial.trial_picker.value = continued["eval_id"]
    assert ui.trial.predictions is view.predictions, ui.trial.status.value
    yield ui.trial
    ui.trial.wait(60)


def test_retrained_predictions_give_the_sweeps_per_bar_returns_bit_for_bit(
        explore_reports, continued, view):
    run_dir = explore_reports / "night1"
    eval_id = continued["eval_id"]
    own = what_if(view.predictions, TradingParams.from_params(continued["params"]),
                  view.record.spec)
    validation = journaled_returns(run_dir, "validation")[eval_id]
    holdout = journaled_returns(run_dir, "holdout")[eval_id]
    assert own.validation_returns.tobytes() == validation.tobytes()
    assert own.holdout.result.returns.tobytes() == holdout.tobytes()
    assert view.parity.validation is True and view.parity.holdout is True
    assert "bit for bit" in view.status.value and "NOT" not in view.status.value
    assert "replaying its rungs" not in view.status.value  # done: the status says the result
    # the rungs were replayed: the same configuration trained from scratch is another model
    scratch = configuration_predictions(continued["params"], continued["budget"],
                                        view.record.seed, view.record.spec)
    fresh = what_if(scratch, own.trading, view.record.spec)
    assert fresh.validation_returns.tobytes() != validation.tobytes()
    assert fresh.holdout.result.returns.tobytes() == holdout.tobytes(), (
        "the holdout model is trained from scratch, as the sweep trains it")


def test_the_trial_panel_shows_what_the_journal_recorded(explore_reports, continued,
                                                         unlocked):
    view = unlocked
    run_dir = explore_reports / "night1"
    eval_id = continued["eval_id"]
    assert view.trial_picker.value == eval_id
    params = view.parameters_html.value
    for name, value in {**continued["params"]["entry_model"],
                        **continued["params"]["trading"]}.items():
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        assert f"<td>{shown}</td>" in params, name
    swept = metrics_table(view.record, None, show_holdout=True).xs("as swept",
                                                                    level="source")
    folds = continued["metrics"]["folds"]
    for k, fold in enumerate(folds):
        row = swept.iloc[k + 1]  # after the score
        assert row.name.startswith(f"fold {k + 1} · ")
        assert [row[m] for m in METRIC_NAMES] == [fold[m] for m in METRIC_NAMES]
    holdout = journaled_holdouts(run_dir)[eval_id]
    assert swept.iloc[-1].name.startswith("holdout · ")
    assert [swept.iloc[-1][m] for m in METRIC_NAMES] == [holdout[f"holdout_{m}"]
                                                         for m in METRIC_NAMES]
    assert swept.iloc[0]["sharpe"] == continued["score"]

    figure = view.figures["equity"]
    go.Figure(figure)  # a valid plotly figure
    data = journal_meta(run_dir, "data")
    for kind in ("validation", "holdout"):
        returns = journaled_returns(run_dir, kind)[eval_id]
        equity, drawdown = equity_and_drawdown(returns)
        assert values(trace(figure, f"as swept {kind} equity")["y"]).tobytes() == \
            equity.tobytes()
        assert values(trace(figure, f"as swept {kind} drawdown")["y"]).tobytes() == \
            drawdown.tobytes()
        first = data["folds"][0] if kind == "validation" else data["holdout"]
        assert trace(figure, f"as swept {kind} equity")["x0"] == \
            first["first_bar"][:19].replace("T", " ")
        assert trace(figure, f"as swept {kind} equity")["dx"] == 3_600_000  # hourly bars
    marks = {shape["x0"] for shape in figure["layout"]["shapes"]}
    assert marks == {block["first_bar"][:19].replace("T", " ")
                     for block in (*data["folds"], data["holdout"])}


def test_moving_the_sliders_backtests_the_cached_predictions_again(unlocked):
    view = unlocked
    record, trainings = view.record, PREDICTIONS.trainings
    market = load_market(record.spec)
    moved = {"threshold": 0.52, "holding_period": 6, "stop_loss": 0.03, "take_profit": 0.05}
    for name, value in moved.items():
        view.sliders[name].value = value  # a release in the page
    trading = TradingParams(**moved)
    assert view.whatif.trading == trading
    assert PREDICTIONS.trainings == trainings, "no retraining: the cached predictions"
    oracle = [backtest_bars(market, block.bars, block.proba, trading, record.spec.objective)
              for block in view.predictions]
    figure = view.figures["equity"]
    for kind, returns in (("validation", np.concatenate([r.returns for r in oracle[:-1]])),
                          ("holdout", oracle[-1].returns)):
        equity, drawdown = equity_and_drawdown(returns)
        assert values(trace(figure, f"what-if {kind} equity")["y"]).tobytes() == \
            equity.tobytes()
        assert values(trace(figure, f"what-if {kind} drawdown")["y"]).tobytes() == \
            drawdown.tobytes()
    metrics = [performance(r.returns, r.trades, r.positions,
                           periods_per_year=market.periods_per_year) for r in oracle]
    table = metrics_table(record, view.whatif, show_holdout=True).xs("what-if",
                                                                      level="source")
    assert table.iloc[0]["sharpe"] == pytest.approx(np.mean([m["sharpe"] for m in metrics[:-1]]),
                                                    abs=0, rel=1e-15)
    for row, expected in zip(table.iloc[1:].itertuples(index=False), metrics, strict=True):
        assert list(row) == [expected[m] for m in METRIC_NAMES]
    assert "threshold 0." in view.whatif_summary.value and "→ 0.520" in view.whatif_summary.value
    assert view.timings["total"] > 0
    view.reset()
    assert view.whatif is view.own and view.whatif.trading == record.trading
    assert "the trial&#x27;s own trading parameters" in view.whatif_summary.value


def test_the_trades_chart_draws_the_backtests_trades_in_a_window_of_candles(view):
    market = load_market(view.record.spec)
    view.sliders["stop_loss"].value = 0.02  # tight stops: exits of every kind
    whatif = view.whatif
    labels = [label for label, _ in view.period_picker.options]
    assert [label.split(" · ")[0] for label in labels] == ["fold 1", "fold 2"]
    assert ", holdout " not in view.whatif_summary.value  # validation only until unlocked
    view.show_holdout()  # the explorer's unlock
    whatif = view.whatif
    labels = [label for label, _ in view.period_picker.options]
    assert [label.split(" · ")[0] for label in labels] == ["fold 1", "fold 2", "holdout"]
    assert ", holdout " in view.whatif_summary.value
    for period in range(len(labels)):
        view.period_picker.value = period
        block = whatif.blocks[period]
        oracle = backtest_bars(market, block.bars, view.predictions[period].proba,
                               whatif.trading, view.record.spec.objective)
        assert [t.entry_bar for t in block.result.trades] == \
            [t.entry_bar for t in oracle.trades]
        for _, start in view.window_picker.options[:3]:
            view.window_picker.value = start
            figure = view.figures["trades"]
            go.Figure(figure)  # a valid plotly figure
            candles = trace(figure, "candles")
            bars = block.bars[start:start + 336]
            assert len(candles["x"]) == len(bars) <= 336
            assert values(candles["close"]).tobytes() == market.close[bars].tobytes()
            shown = [(i, t) for i, t in enumerate(oracle.trades)
                     if t.entry_bar < start + 336 and t.exit_bar >= start]
            entries = [int(i) for side in ("long", "short")
                       for i in trace(figure, f"{side} entries")["customdata"]]
            assert sorted(entries) == [i for i, _ in shown]
            exits = trace(figure, "exits")
            assert values(exits["y"]).tolist() == [t.exit_price for _, t in shown]
            assert exits["x"] == [str(block.times[t.exit_bar].tz_convert(None))
                                  .replace(" ", "T") for _, t in shown]
            stops = [y for y in trace(figure, "stop-loss levels")["y"] if y is not None][::2]
            targets = [y for y in trace(figure, "take-profit levels")["y"] if y is not None][::2]
            for (_, t), stop, target in zip(shown, stops, targets, strict=True):
                assert stop == pytest.approx(t.entry_price * (1 - t.side * 0.02), rel=1e-12)
                assert target == pytest.approx(
                    t.entry_price * (1 + t.side * whatif.trading.take_profit), rel=1e-12)
                if t.exit_reason == "stop":  # filled at the stop, or worse through a gap
                    assert t.side * (t.exit_price - stop) <= 1e-9 * stop
                if t.exit_reason == "take_profit":
                    assert t.side * (t.exit_price - target) >= -1e-9 * target
    assert {t.exit_reason for b in whatif.blocks for t in b.result.trades} >= {"stop", "time"}
    view.reset()


def widget_state(root: widgets.Widget) -> str:
    """Everything ``root`` and the widgets inside it hold (values, options, labels, drawn
    outputs: what the page can show), as one text."""
    seen: set[int] = set()
    parts: list[str] = []
    stack = [root]
    while stack:
        widget = stack.pop()
        if id(widget) in seen:
            continue
        seen.add(id(widget))
        stack.extend(getattr(widget, "children", ()))
        state = widget.get_state()
        parts.append(json.dumps({key: value for key, value in state.items()
                                 if key not in ("children", "layout", "style")},
                                default=str, ensure_ascii=False))
    return "\n".join(parts)


def explorer_state(ui: Explorer) -> str:
    return "\n".join(widget_state(panel) for panel in (
        ui.runs_panel, ui.compare_panel, ui.trials_panel, ui.trial_panel))


def test_the_explorer_shows_nothing_of_the_holdout_until_it_is_unlocked(
        explore_reports, continued, tmp_path):
    """The attack: with the holdout locked, the trial panel's equity chart held the sweep's
    holdout curves (and the what-if's after a slider moved) and its metrics table the
    holdout's rows, as swept and what-if; no look was recorded."""
    run_dir = tmp_path / "reports" / "night1"
    shutil.copytree(explore_reports / "night1", run_dir)
    for ledger in run_dir.glob("trials.db*"):
        ledger.unlink()
    results = json.loads(next(run_dir.glob("sweep_results_*.json")).read_text())
    holdout_market = Market.of(results["data"], "holdout")
    holdout = journaled_holdouts(run_dir)[continued["eval_id"]]
    holdout_numbers = [f"{holdout[f'holdout_{m}']:.4g}" for m in ("sharpe", "total_return")]

    ui = Explorer(run_dir.parent, run="night1")
    ui.trial.background = False
    view_of = ui.trial

    def holdout_shown() -> list[str]:
        """What of the holdout the trial panel holds, and its numbers anywhere."""
        text = widget_state(ui.trial_panel)
        found = [line for line in text.splitlines() if "holdout" in line.lower()]
        metas = [str(t.get("meta")) for t in (view_of.figures["equity"] or {}).get("data", [])]
        found += [meta for meta in metas if "holdout" in meta]
        everything = explorer_state(ui)
        found += [number for number in holdout_numbers if number in everything]
        return found

    # the winner as the explorer opens it (not retrained yet: the panel is not shown)
    assert view_of.record is not None and view_of.predictions is None
    assert view_of.record.returns.get("holdout") is not None, "its holdout is journaled"
    assert holdout_shown() == []
    # a trial picked, retrained, a what-if slider moved
    view_of.trial_picker.value = continued["eval_id"]
    assert view_of.predictions is not None, view_of.status.value
    assert holdout_shown() == []
    threshold = view_of.sliders["threshold"]
    threshold.value = threshold.min if threshold.value != threshold.min else threshold.max
    assert view_of.whatif is not view_of.own
    assert holdout_shown() == []
    assert [t["meta"] for t in view_of.figures["equity"]["data"]] == [
        "as swept validation equity", "as swept validation drawdown",
        "what-if validation equity", "what-if validation drawdown"]
    assert metrics_table(view_of.record, view_of.whatif).index.get_level_values(
        "block").str.startswith("holdout").sum() == 0
    view_of.wait()
    with TrialLedger(run_dir / "trials.db") as ledger:
        assert ledger.looks_at(holdout_market) == []

    ui.unlock_holdout()
    assert view_of.record.eval_id == continued["eval_id"], "the trial on display stays"
    assert view_of.whatif.trading.threshold == threshold.value, "and its what-if"
    shown = holdout_shown()
    for what in ("holdout ·", "as swept holdout equity", "what-if holdout equity",
                 *holdout_numbers):
        assert any(what in line for line in shown), what
    table = metrics_table(view_of.record, view_of.whatif, show_holdout=True)
    assert [row for row in table.index if row[0].startswith("holdout")] == [
        (table.index[-1][0], "as swept"), (table.index[-1][0], "what-if")]
    assert f"<td>{holdout_numbers[0]}</td>" in view_of.metrics_html.value
    # The unlock shows the what-if on display with its holdout: a look too, counted by a
    # thread of its own (the assertion raced it: it saw the unlock alone, or both, by load).
    view_of.wait()
    with TrialLedger(run_dir / "trials.db") as ledger:
        looks = ledger.looks_at(holdout_market)
    assert [(look["source"], look["what"].split()[0]) for look in looks] == [
        ("explorer", "unlock"), ("explorer", "what-if")]
    # Unlocked, a what-if shows its holdout score: the panel records it as a look too (58f2c4a
    # tested record_what_if alone, not that the panel passes holdout_shown).
    threshold.value = threshold.max if threshold.value != threshold.max else threshold.min
    view_of.wait()
    with TrialLedger(run_dir / "trials.db") as ledger:
        looks = [look["what"] for look in ledger.looks_at(holdout_market)]
    assert looks[0] == "unlock" and len(looks) == 3, looks
    assert all(what.startswith("what-if ") and what.endswith(f" seed {view_of.record.seed}")
               for what in looks[1:]) and looks[1] != looks[2], looks


def test_what_a_notebook_cell_shows_of_the_explorers_state_holds_no_holdout_number(
        explore_reports, continued, view):
    """``ui.run``, ``ui.trial.record`` and ``ui.trial.whatif`` typed in a cell (the state the
    docs point to) showed the holdout's score, its metrics and its backtest while it was
    locked: the run's summary, the record's holdout metrics and returns, the what-if's holdout
    block were in their reprs."""
    ui = Explorer(explore_reports, run="night1")
    assert ui.run is not None and ui.run.summary and ui.run.summary.get("holdout") is not None
    holdout = journaled_holdouts(explore_reports / "night1")[continued["eval_id"]]
    numbers = [repr(ui.run.summary["holdout"]), repr(holdout["holdout_sharpe"]),
               repr(view.whatif.holdout.metrics["sharpe"])]
    for shown in (repr(ui.run), repr(ui.runs), repr(view.record), repr(view.whatif),
                  repr(view.own)):
        assert "holdout_sharpe" not in shown and "name='holdout'" not in shown
        assert not [number for number in numbers if number in shown]
    assert "night1" in repr(ui.run) and repr(continued["eval_id"]) in repr(view.record)
    assert repr(view.whatif.score) in repr(view.whatif)


def test_predictions_are_cached_for_the_session(explore_reports, continued, view):
    trainings = PREDICTIONS.trainings
    other = Explorer(explore_reports, run="night1")
    other.trial.background = False
    other.trial.trial_picker.value = continued["eval_id"]
    assert other.trial.predictions is view.predictions
    assert PREDICTIONS.trainings == trainings
    assert "training" not in other.trial.status.value and "bit for bit" in other.trial.status.value


def test_what_cannot_be_retrained_or_read_is_said_in_the_panel(explore_reports, continued,
                                                                tmp_path):
    run_dir = tmp_path / "changed"
    shutil.copytree(explore_reports / "night1", run_dir)
    data = journal_meta(run_dir, "data")
    data["sha256"] = "0" * 64
    set_journal_meta(run_dir, "data", data)
    ui = Explorer(tmp_path, run="changed")
    ui.trial.background = False
    ui.trial.trial_picker.value = continued["eval_id"]
    assert ui.trial.predictions is None and ui.trial.problem is not None
    assert "changed since the sweep" in ui.trial.status.value
    assert all(slider.disabled for slider in ui.trial.sliders.values())
    assert ui.trial.figures["equity"] is not None, "what the journal recorded is still shown"

    config = journal_meta(run_dir, "config")
    config["data"]["path"] = str(tmp_path / "gone.csv")
    set_journal_meta(run_dir, "config", config)
    ui.trial.select(continued["eval_id"])
    assert "is not here" in ui.trial.status.value

    for name, says in (("half_written", "not complete JSON"),
                       ("other_version", "another version")):
        explorer = Explorer(explore_reports, run=name)
        assert says in explorer.trial.status.value
        assert explorer.trial.record is None and not explorer.trial.trial_picker.options
    with pytest.raises(RunReadError, match="has no evaluation 999"):
        read_trial(explore_reports / "night1", 999)


def test_the_blocks_of_a_folds_fidelity_rung_are_labelled_as_the_most_recent_folds():
    from cryptosweep.explore.trial import block_labels

    data = {"folds": [{"first_bar": f"2022-0{k + 1}-01T00:00:00+00:00",
                       "last_bar": f"2022-0{k + 1}-28T23:00:00+00:00"} for k in range(4)],
            "holdout": None}
    assert block_labels(data, 4, False)[0] == "fold 1 · 2022-01-01 – 2022-01-28"
    assert block_labels(data, 1, False) == ["fold 4 · 2022-04-01 – 2022-04-28"]
    assert block_labels(None, 2, False) == ["fold 1", "fold 2"]
