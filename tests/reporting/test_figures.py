"""The analysis notebook's figures and tables, checked against the journal of a real (tiny)
sweep: every number a chart or table shows must be the one the run recorded."""

from __future__ import annotations

import copy
import html
import importlib.util
import json
import re
from datetime import datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import pytest

from cryptosweep.core import formatting
from cryptosweep.core.config_files import validate_config
from cryptosweep.judging import caveats
from cryptosweep.judging.overfitting import probability_of_backtest_overfitting
from cryptosweep.judging.verdict import verdict
from cryptosweep.records.journal import Journal
from cryptosweep.records.ranking import ranked
from cryptosweep.reporting import figures, tables
from cryptosweep.sweep.runner import run_sweep
from tests.support import tiny_config


class Run:
    """A finished run as the notebook sees it: the two JSON files and the journal."""

    def __init__(self, run_dir: Path) -> None:
        self.dir = run_dir
        (results,) = run_dir.glob("sweep_results_*.json")
        (usage,) = run_dir.glob("resource_usage_*.json")
        self.results: dict[str, Any] = json.loads(results.read_text())
        self.usage: dict[str, Any] = json.loads(usage.read_text())
        self.journal = Journal(run_dir / "sweep.db")
        self.rows = self.journal.evaluations()


def _sweep(tmp: Path, name: str, **changes: Any) -> Run:
    config = validate_config(tiny_config(objective__rounds_per_unit=3, **changes))
    result = run_sweep(config=config, seed=7, log_dir=tmp, run_name=name, show_progress=False)
    return Run(result.run_dir)


@pytest.fixture(scope="module")
def hb(tmp_path_factory: pytest.TempPathFactory):
    run = _sweep(tmp_path_factory.mktemp("figures"), "hb", sweep_type="hyperband",
                 hyperband__max_iter=4, hyperband__eta=2)
    yield run
    run.journal.close()


@pytest.fixture(scope="module")
def rnd(tmp_path_factory: pytest.TempPathFactory):
    run = _sweep(tmp_path_factory.mktemp("figures"), "rnd", random__n_trials=3)
    yield run
    run.journal.close()


def _check_common(fig: go.Figure) -> None:
    assert isinstance(fig, go.Figure)
    assert fig.layout.template == pio.templates["plotly_white"]
    assert fig.layout.title.text
    json.loads(fig.to_json())


def _full_budget(rows):
    done = [r for r in rows if r.status == "done" and r.score is not None]
    top = max(r.budget for r in done)
    return [r for r in done if r.budget == top], top


# ------------------------------------------------------------------------ optimisation history


def test_optimisation_history_matches_the_journal(hb: Run) -> None:
    fig = figures.optimisation_history(hb.results)
    _check_common(fig)
    full, top = _full_budget(hb.rows)
    (best,) = [t for t in fig.data if t.mode == "lines"]
    spent = np.cumsum([r.budget for r in hb.rows if r.status in ("done", "failed")])
    assert list(best.x) == pytest.approx(list(spent))
    assert best.x[-1] == pytest.approx(hb.results["budget_spent"])
    assert best.y[-1] == max(r.score for r in full)
    ys = [y for y in best.y if y is not None]
    assert ys == sorted(ys)  # best so far never gets worse
    # the step starts at the first full-budget evaluation
    first_full = min(r.eval_id for r in full)
    assert best.y[first_full] is not None and all(y is None for y in best.y[:first_full])
    # one faint marker per scored evaluation, one trace per budget
    markers = [t for t in fig.data if t.mode == "markers"]
    assert {t.name for t in markers} == {f"budget {r.budget:g}" for r in hb.rows}
    shown = {int(c[0]): (x, y) for t in markers
             for c, x, y in zip(t.customdata, t.x, t.y, strict=True)}
    assert shown == {r.eval_id: (pytest.approx(spent[r.eval_id]), r.score) for r in hb.rows}
    assert fig.layout.xaxis.title.text and fig.layout.yaxis.title.text
    assert top == 4.0


# ----------------------------------------------------------------------------- hyperband


def test_promotion_chart_mark_exactly_the_promoted_trials(hb: Run) -> None:
    fig = figures.promotion_chart(hb.results)
    _check_common(fig)
    summary = hb.results["strategy"]["brackets"]
    assert fig.layout.xaxis.type == "log"
    markers = [t for t in fig.data if t.mode == "markers" and t.showlegend is False]
    lines = [t for t in fig.data if t.mode == "lines" and t.showlegend is False]
    assert len(markers) == len(summary)
    # the legend: one entry per bracket and one per marker shape, no repeats
    legend = [t.name for t in fig.data if t.showlegend is not False]
    brackets = sorted({b["bracket"] for b in summary}, reverse=True)
    assert legend == [f"bracket {s}" for s in brackets] + [
        "promoted to the next rung", "stopped at this rung", "at the bracket's last rung"]
    resources = sorted({float(r["resource"]) for b in summary for r in b["rungs"]})
    assert list(fig.layout.xaxis.tickvals) == resources  # no tick between the rungs
    evaluated, promoted_marks, links = set(), set(), set()
    for trace in markers:
        for x, y, symbol in zip(trace.x, trace.y, trace.marker.symbol, strict=True):
            evaluated.add((trace.name, x, y))
            if symbol == "circle":
                promoted_marks.add((trace.name, x, y))
    for trace in lines:
        points = list(zip(trace.x, trace.y, strict=True))
        for start in range(0, len(points), 3):
            (x0, y0), (x1, y1), gap = points[start:start + 3]
            assert y0 == y1 and x1 > x0 and gap == (None, None)
            links.add((trace.name.removesuffix(": promoted"), x0, y0))
    expected_evaluated, expected_promoted = set(), set()
    for b in summary:
        name = f"iteration {b['iteration']}, bracket {b['bracket']}"
        for rung in b["rungs"]:
            expected_evaluated |= {(name, rung["resource"], t) for t in rung["trial_ids"]}
            expected_promoted |= {(name, rung["resource"], t) for t in rung["promoted"]}
    assert expected_promoted  # the tiny sweep does promote
    assert evaluated == expected_evaluated
    assert promoted_marks == expected_promoted == links
    # and the summary agrees with the journal: one point per evaluation
    journal = {(f"iteration {r.tags['iteration']}, bracket {r.tags['bracket']}", r.budget,
                r.trial_id) for r in hb.rows}
    assert journal == evaluated and len(hb.rows) == len(evaluated)


def test_promotion_chart_is_none_for_other_strategies(rnd: Run) -> None:
    assert figures.promotion_chart(rnd.results) is None


# ---------------------------------------------------------------------- optuna-based figures


def test_optuna_study_holds_the_full_budget_trials_of_the_main_family(hb: Run) -> None:
    study = figures.optuna_study(hb.results, hb.journal)
    full, top = _full_budget(hb.rows)
    assert study.user_attrs == {"family": "lightgbm", "budget": top}
    assert {t.user_attrs["eval_id"]: t.value for t in study.trials} == {
        r.eval_id: r.score for r in full}
    row = {r.eval_id: r for r in full}[study.trials[0].user_attrs["eval_id"]]
    assert study.trials[0].params == {
        **{f"lightgbm.{k}": v for k, v in row.params["entry_model"].items()},
        **{f"trading.{k}": v for k, v in row.params["trading"].items()}}


def test_parallel_coordinates(hb: Run) -> None:
    fig = figures.parallel_coordinates(hb.results, hb.journal)
    _check_common(fig)
    full, _ = _full_budget(hb.rows)
    study = figures.optuna_study(hb.results, hb.journal)
    assert len(fig.data) == len(full) + 1  # a line per trial and the colour bar
    labels = [text.replace("<br>", "") for text in fig.layout.xaxis.ticktext]
    assert labels[0] == "Objective Value"
    assert sorted(labels[1:]) == sorted(study.trials[0].params)  # full names, not cut
    # each line is one trial: its objective value is the journal's score of that evaluation
    shown = sorted(float(t.customdata[0][1]) for t in fig.data if t.mode == "lines")
    assert shown == pytest.approx(sorted(r.score for r in full), rel=1e-2)


def test_parameter_importances_are_deterministic(hb: Run) -> None:
    fig = figures.parameter_importances(hb.results, hb.journal, min_trials=2)
    _check_common(fig)
    (bars,) = fig.data
    params = figures.optuna_study(hb.results, hb.journal).trials[0].params
    assert set(bars.y) == set(params)
    assert sum(bars.x) == pytest.approx(1.0)
    method = figures.importance_evaluator()[1]  # fANOVA when scikit-learn is installed
    assert method in fig.layout.title.text
    assert method == "fANOVA, seed 0" or importlib.util.find_spec("sklearn") is None
    again = figures.parameter_importances(hb.results, hb.journal, min_trials=2)
    assert again.data[0].x == bars.x and again.data[0].y == bars.y


def test_parameter_importances_say_what_they_rest_on_and_need_enough_trials(hb: Run) -> None:
    full, top = _full_budget(hb.rows)
    basis = figures.importance_basis(hb.results, hb.journal)
    assert basis == (f"{len(full)} lightgbm trials at the full budget ({top:g}) of {len(full)} "
                     f"there (lightgbm {len(full)})")
    fig = figures.parameter_importances(hb.results, hb.journal, min_trials=len(full))
    assert basis in fig.layout.title.text
    assert figures.parameter_importances(hb.results, hb.journal, min_trials=len(full) + 1) is None
    # the run's reporting.min_importance_trials (default 20) applies when none is given
    assert hb.results["config"]["reporting"]["min_importance_trials"] > len(full)
    assert figures.parameter_importances(hb.results, hb.journal) is None


def test_parameter_figures_need_two_distinct_trials(hb: Run, tmp_path: Path) -> None:
    journal = Journal(tmp_path / "sweep.db")
    journal.set_meta(config=hb.results["config"])
    row = ranked(hb.rows)[0]
    for eval_id, score in ((0, 1.0), (1, 1.0)):
        journal.add_evaluation(eval_id, eval_id, row.params, row.seed, row.budget, {})
        assert figures.parallel_coordinates(None, journal) is None  # 0, then 1 trial
        assert figures.parameter_importances(None, journal, min_trials=2) is None
        journal.finish_evaluation(eval_id, status="done", score=score, metrics={}, error=None,
                                worker=None, device=None, started_at=None, finished_at=None)
    assert figures.parallel_coordinates(None, journal) is not None
    assert figures.parameter_importances(None, journal, min_trials=2) is None  # equal scores
    journal.close()


# ------------------------------------------------------------------------------ equity curves


def test_equity_curves_compound_the_stored_returns(hb: Run) -> None:
    ids = [item["eval_id"] for item in hb.results["top_k"]]
    stored = hb.journal.get_returns("validation")
    fig = figures.equity_curves(hb.journal, ids)
    _check_common(fig)
    assert len(fig.data) == 2 * len(ids) + 4  # and buy-and-hold and flat, in both panels
    equity = [t for t in fig.data if t.yaxis == "y" and t.name.startswith("eval")]
    drawdown = [t for t in fig.data if t.yaxis == "y2" and t.name.startswith("eval")]
    assert [t.name for t in equity] == [f"eval {ids[0]} (winner)"] + [
        f"eval {i}" for i in ids[1:]]
    for eval_id, eq, dd in zip(ids, equity, drawdown, strict=True):
        returns = stored[eval_id]
        assert len(eq.y) == len(returns) and (eq.x0, eq.dx) == (0, 1)  # bar index
        assert eq.y[-1] == pytest.approx(np.prod(1.0 + returns), rel=1e-6)  # float32
        assert max(dd.y) <= 0.0 and dd.fill is None  # lines, not stacked fills
    flat = [t for t in fig.data if t.name == "flat (no position)"]
    assert [list(t.y) for t in flat] == [[1.0, 1.0], [0.0, 0.0]]
    assert list(flat[0].x) == [0, len(stored[ids[0]]) - 1]
    assert fig.layout.xaxis2.title.text and fig.layout.yaxis.title.text


def test_holdout_equity_agrees_with_the_holdout_metrics(hb: Run) -> None:
    top = hb.results["top_k"]
    fig = figures.equity_curves(hb.journal, [item["eval_id"] for item in top], kind="holdout")
    _check_common(fig)
    curves = [t for t in fig.data if t.name.startswith("eval")]
    for item, eq, dd in zip(top, curves[::2], curves[1::2], strict=True):
        assert eq.y[-1] - 1.0 == pytest.approx(item["holdout"]["holdout_total_return"], abs=1e-6)
        assert -min(dd.y) == pytest.approx(item["holdout"]["holdout_max_drawdown"], abs=1e-6)
    hold = hb.results["baselines"]["buy_and_hold"]["holdout"]
    eq, dd = [t for t in fig.data if t.name == "buy-and-hold"]
    assert eq.showlegend and not dd.showlegend and (eq.x0, eq.dx) == (curves[0].x0, curves[0].dx)
    assert len(eq.y) == len(curves[0].y) == hold["holdout_bars"]
    assert eq.y[-1] - 1.0 == pytest.approx(hold["holdout_total_return"], abs=1e-6)
    assert -min(dd.y) == pytest.approx(hold["holdout_max_drawdown"], abs=1e-6)


def test_buy_and_hold_beside_the_validation_curves_is_its_per_fold_round_trips(hb: Run) -> None:
    """The journaled buy-and-hold returns are the results' baseline, fold by fold: each test
    block's returns compound to that block's recorded total return."""
    hold = hb.journal.get_baseline_returns("validation")["buy_and_hold"]
    folds = hb.results["data"]["folds"]
    assert len(hold) == sum(block["stop"] - block["start"] for block in folds)
    recorded = hb.results["baselines"]["buy_and_hold"]["folds"]
    edges = np.cumsum([0] + [block["stop"] - block["start"] for block in folds])
    for k, fold in enumerate(recorded):
        block = hold[edges[k]:edges[k + 1]]
        assert np.prod(1.0 + block) - 1.0 == pytest.approx(fold["total_return"], abs=1e-12)
    assert "returns" not in hb.results["baselines"]["buy_and_hold"]  # journaled, not in JSON
    assert not hb.journal.get_baseline_returns("validation")["flat"].any()
    times, marks = figures.out_of_sample_times(hb.results, "validation")
    ids = [item["eval_id"] for item in hb.results["top_k"]]
    fig = figures.equity_curves(hb.journal, ids, bar_times=times, markers=marks)
    eq = next(t for t in fig.data if t.name == "buy-and-hold")
    assert eq.x0 == fig.data[0].x0 and eq.y[-1] == pytest.approx(np.prod(1.0 + hold), rel=1e-6)


def test_equity_curves_on_dates_with_fold_and_holdout_markers(hb: Run) -> None:
    data = hb.results["data"]
    ids = [item["eval_id"] for item in hb.results["top_k"]]
    times, marks = figures.out_of_sample_times(hb.results, "validation")
    n = len(hb.journal.get_returns("validation")[ids[0]])
    assert len(times) == n == sum(b["stop"] - b["start"] for b in data["folds"])
    assert np.all(np.diff(times) > np.timedelta64(0, "ms"))
    # the sample has no gaps: each bar's time is exact, block edges are the recorded bars
    assert str(times[0])[:19] == data["folds"][0]["first_bar"][:19]
    assert str(times[-1])[:19] == data["folds"][-1]["last_bar"][:19]
    assert [label for _, label in marks] == [
        f"fold {k + 1}" for k in range(len(data["folds"]))] + ["holdout starts"]
    fig = figures.equity_curves(hb.journal, ids, bar_times=times, markers=marks)
    winner = fig.data[0]
    assert fig.layout.xaxis.type == "date" and fig.layout.xaxis2.title.text == "time (UTC)"
    assert winner.x0 == data["folds"][0]["first_bar"][:19].replace("T", " ")
    assert winner.dx == 3600 * 1000  # hourly bars, in ms
    assert [a.text for a in fig.layout.annotations] == [label for _, label in marks]
    assert len(fig.layout.shapes) == 2 * len(marks)  # a line in each panel
    holdout_times, holdout_marks = figures.out_of_sample_times(hb.results, "holdout")
    assert len(holdout_times) == data["holdout_bars"]
    assert holdout_marks == [marks[-1]]
    assert figures.fold_dates(hb.results)[0] == (f"{data['folds'][0]['first_bar'][:10]} – "
                                                 f"{data['folds'][0]['last_bar'][:10]}")
    assert figures.out_of_sample_times({"data": {}}, "holdout") == (None, [])


def test_bar_times_of_a_block_with_gaps_are_spread_between_its_ends() -> None:
    results = {"data": {"bar_interval": "1h", "folds": [
        {"start": 0, "stop": 4, "first_bar": "2022-01-01T00:00:00+00:00",
         "last_bar": "2022-01-01T03:00:00+00:00"},
        {"start": 4, "stop": 7, "first_bar": "2022-01-01T04:00:00+00:00",
         "last_bar": "2022-01-01T10:00:00+00:00"}]}}  # 3 bars over 6 hours: a gap
    times, _ = figures.out_of_sample_times(results)
    assert [str(t)[11:16] for t in times] == ["00:00", "01:00", "02:00", "03:00",
                                               "04:00", "07:00", "10:00"]


def test_equity_curves_without_returns(hb: Run) -> None:
    top = [item["eval_id"] for item in hb.results["top_k"]]
    other = next(r.eval_id for r in hb.rows if r.eval_id not in top)
    assert figures.equity_curves(hb.journal, [other], kind="holdout") is None
    with pytest.raises(ValueError, match=f"eval\\(s\\) \\[{other}\\]"):
        figures.equity_curves(hb.journal, [top[0], other], kind="holdout")
    with pytest.raises(ValueError, match="kind"):
        figures.equity_curves(hb.journal, top, kind="train")


# -------------------------------------------------------------------------------- overfitting


def test_overfitting_figure_from_results_and_from_a_pbo_result(hb: Run) -> None:
    pbo = hb.results["overfitting"]["pbo"]
    fig = figures.overfitting_figure(pbo)
    _check_common(fig)
    (bars,) = fig.data
    assert np.repeat(bars.x, bars.y).tolist() == sorted(pbo["logits"])  # every logit, counted
    assert f"PBO = {pbo['pbo']:.3f}" in fig.layout.title.text
    assert [(s.x0, s.x1) for s in fig.layout.shapes] == [(0.0, 0.0)]

    returns = hb.journal.get_returns("validation")
    matrix = np.column_stack([returns[r.eval_id] for r in _full_budget(hb.rows)[0]])
    result = probability_of_backtest_overfitting(matrix, n_splits=4)
    fig = figures.overfitting_figure(result)
    _check_common(fig)
    assert np.repeat(fig.data[0].x, fig.data[0].y).tolist() == sorted(result.logits)
    assert f"PBO = {result.pbo:.3f}" in fig.layout.title.text
    assert figures.overfitting_figure(None) is None


def test_pbo_and_the_effective_count_say_how_many_bars_they_rest_on(hb: Run) -> None:
    """The PBO and the clustering rest on the bars every configuration was scored on (with
    Hyperband's folds fidelity only the most recent fold: 1,520 of 6,083 bars on the demo),
    which the report did not say."""
    from cryptosweep.judging.explained import explained

    returns = hb.journal.get_returns("validation")
    last: dict[int, Any] = {}
    for row in hb.rows:
        if row.status == "done" and row.eval_id in returns and (
                row.trial_id not in last or row.budget >= last[row.trial_id].budget):
            last[row.trial_id] = row
    shortest = min(len(returns[row.eval_id]) for row in last.values())
    pbo = hb.results["overfitting"]["pbo"]
    assert pbo["n_bars"] == shortest
    said = {row.name: row.meaning for row in explained(hb.results)}
    assert f"on the {shortest} most recent validation bars" in said[
        "probability of backtest overfitting"]
    effective = hb.results["statistics"]["selection"]["effective_trials"]
    assert f"on the {effective['n_bars']} most recent validation bars" in next(
        meaning for name, meaning in said.items() if name.startswith("DSR with the effective"))


def test_dsr_bar(hb: Run) -> None:
    dsr = hb.results["overfitting"]["dsr"]
    fig = figures.dsr_bars(dsr)
    _check_common(fig)
    assert list(fig.data[0].x) == [dsr["dsr"], dsr["psr"]]
    assert f"{dsr['dsr']:.3f}" in fig.layout.title.text
    assert tuple(fig.layout.xaxis.range) == (0, 1)
    assert figures.dsr_bars(None) is None
    assert figures.dsr_bars({"dsr": None, "why_not": "constant returns"}) is None


# ---------------------------------------------------------------------------------- resources


def test_resource_timeline_host_only(hb: Run) -> None:
    fig = figures.resource_timeline(hb.usage)
    _check_common(fig)
    host = [s for s in hb.usage["samples"] if s["source"] == "host"]
    assert host and not any(s["source"].startswith("gpu") for s in hb.usage["samples"])
    assert "yaxis3" not in fig.layout.to_plotly_json()  # no GPU panels without GPU samples
    assert not any("gpu" in t.name for t in fig.data)
    (cpu,) = [t for t in fig.data if t.name == "CPU %"]
    assert list(cpu.y) == [s["cpu_percent"] for s in host]
    (memory,) = [t for t in fig.data if t.name == "memory used"]
    assert list(memory.y) == pytest.approx([s["memory_used_mib"] / 1024 for s in host])
    assert figures.resource_timeline({"samples": []}) is None


def test_resource_timeline_with_gpus() -> None:
    samples = [{"ts": 1_800_000_000.0 + i, "source": "host", "cpu_percent": 10.0 * i,
                "memory_used_mib": 1024 * i, "memory_total_mib": 4096} for i in range(3)]
    samples += [{"ts": 1_800_000_000.0 + i, "source": f"gpu{g}", "gpu_percent": 50 + g,
                 "memory_used_mib": 2048 * g} for i in range(3) for g in (0, 1)]
    fig = figures.resource_timeline({"samples": samples})
    _check_common(fig)
    assert "yaxis4" in fig.layout.to_plotly_json()
    names = [t.name for t in fig.data]
    assert {"gpu0 utilisation %", "gpu1 utilisation %", "gpu0 memory used",
            "gpu1 memory used"} <= set(names)
    (util1,) = [t for t in fig.data if t.name == "gpu1 utilisation %"]
    assert list(util1.y) == [51] * 3 and util1.yaxis == "y3"


def test_worker_gantt_has_one_bar_per_evaluation(hb: Run) -> None:
    fig = figures.worker_gantt(hb.usage, hb.results)
    _check_common(fig)
    assert [t.name for t in fig.data] == ["done"]
    bars = {}
    for trace in fig.data:
        for y, base, width, custom in zip(trace.y, trace.base, trace.x, trace.customdata,
                                          strict=True):
            bars[int(custom[0])] = (y, base, width, custom[1], custom[2])
    timed = [r for r in hb.rows if r.started_at is not None]
    assert len(timed) == len(hb.rows) == len(bars)
    epoch = datetime(1970, 1, 1)
    for row in timed:
        worker, base, width, start, end = bars[row.eval_id]
        assert worker == str(row.worker)
        assert (start, end) == (row.started_at, row.finished_at)
        assert (base - epoch).total_seconds() == pytest.approx(row.started_at, abs=1e-5)
        finish = base + timedelta(milliseconds=width)
        assert (finish - epoch).total_seconds() == pytest.approx(row.finished_at, abs=1e-5)
    assert fig.layout.xaxis.type == "date"


def test_worker_gantt_rows_and_status_colours() -> None:
    usage = {"timeline": [
        {"eval_id": 0, "worker": "w1", "start": 100.0, "end": 101.5},
        {"eval_id": 1, "worker": "w2", "start": 100.2, "end": 103.0, "status": "failed"},
        {"eval_id": 2, "worker": "w1", "start": 101.6, "end": 102.0},
    ]}
    fig = figures.worker_gantt(usage)
    _check_common(fig)
    assert sorted(t.name for t in fig.data) == ["evaluation", "failed"]
    assert list(fig.layout.yaxis.tickvals) == ["w1", "w2"]
    assert sum(len(t.x) for t in fig.data) == 3
    assert figures.worker_gantt({"timeline": []}) is None


# ------------------------------------------------------------------------------ all of them


def test_every_figure_of_a_random_run_serialises(rnd: Run) -> None:
    ids = [item["eval_id"] for item in rnd.results["top_k"]]
    overfitting = rnd.results.get("overfitting") or {}
    built = {
        "history": figures.optimisation_history(rnd.results),
        "parallel": figures.parallel_coordinates(rnd.results, rnd.journal),
        "importances": figures.parameter_importances(rnd.results, rnd.journal, min_trials=2),
        "equity": figures.equity_curves(rnd.journal, ids),
        "holdout": figures.equity_curves(rnd.journal, ids, "holdout"),
        "pbo": figures.overfitting_figure(overfitting.get("pbo")),
        "dsr": figures.dsr_bars(overfitting.get("dsr")),
        "resources": figures.resource_timeline(rnd.usage),
        "gantt": figures.worker_gantt(rnd.usage, rnd.results),
    }
    for name in ("history", "parallel", "importances", "equity", "holdout", "resources",
                 "gantt"):
        _check_common(built[name])
    for fig in built.values():  # overfitting figures only when the run has them
        if fig is not None:
            _check_common(fig)
    # all evaluations of a random search are at the full budget
    (best,) = [t for t in built["history"].data if t.mode == "lines"]
    assert best.y[0] == rnd.rows[0].score and best.y[-1] == max(r.score for r in rnd.rows)


# ------------------------------------------------------------------------- tables (HTML)


class _Cells(HTMLParser):
    """The text of every cell of every table row, tags dropped, ``<br>`` as a newline."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "br" and self._cell is not None:
            self._cell.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _rows(page: str) -> list[list[str]]:
    parser = _Cells()
    parser.feed(page)
    return parser.rows


def test_top_k_table_shows_what_a_person_needs(hb: Run) -> None:
    page = tables.top_k_table(hb.results)
    header, *rows = _rows(page)
    assert header[:6] == ["rank", "eval", "family", "validation Sharpe ± sd",
                          "validation trades", "holdout Sharpe"]
    assert header[6:11] == ["holdout max DD", "holdout hit rate", "holdout exposure",
                            "DSR (full-budget N)", "folds"]
    top = hb.results["top_k"]
    rows, baselines = rows[: len(top)], rows[len(top):]
    assert [r[2] for r in baselines] == ["flat", "buy-and-hold"]  # the run's own
    assert [int(r[1]) for r in rows] == [item["eval_id"] for item in top]
    min_trades = hb.results["config"]["reporting"]["min_trades"]
    for row, item in zip(rows, top, strict=True):
        spread = caveats.fold_stability(caveats.fold_scores(item["metrics"], "sharpe")).spread
        assert row[3] == f"{item['score']:+.2f} ± {spread:.2f}"
        assert row[4] == str(item["metrics"]["n_trades"])
        holdout = item["holdout"]
        trades = holdout["holdout_trades"]
        mark = "†" if trades < min_trades else ""
        assert row[5] == f"{holdout['holdout_sharpe']:+.2f} ({trades} trades{mark})"
        assert row[6] == f"{100 * holdout['holdout_max_drawdown']:.1f}%"
        assert row[9] == f"{item['dsr']['dsr']:.2f}"
        params = {**item["params"]["trading"], **item["params"]["entry_model"]}
        assert row[11].split("\n") == (
            formatting.param_lines(item["params"]["trading"])
            + formatting.param_lines(item["params"]["entry_model"]))
        assert all(" = " in line for line in row[11].split("\n")) and len(params) == len(
            row[11].split("\n"))
    assert tables.top_k_table({**hb.results, "top_k": []}) is None


def test_fold_table_shows_every_fold_and_marks_small_samples(hb: Run) -> None:
    results = copy.deepcopy(hb.results)
    results["config"]["reporting"]["min_trades"] = 10 ** 6  # every fold is a small sample
    header, *rows = _rows(tables.fold_table(results, ["a", "b"]))
    folds = len(results["top_k"][0]["metrics"]["folds"])
    assert header == ["rank", "eval", "fold 1 (a)", "fold 2 (b)"][: 2 + folds] + [
        f"fold {k + 1}" for k in range(2, folds)] + ["mean", "sd", "carried by one fold?"]
    top = results["top_k"]
    assert [r[0] for r in rows[len(top):]] == ["flat", "buy-and-hold"]  # the run's own
    for row, item in zip(rows[: len(top)], top, strict=True):
        for k, fold in enumerate(item["metrics"]["folds"]):
            assert row[2 + k] == f"{fold['sharpe']:+.2f}\n{fold['trades']} trades†"
        assert row[2 + folds] == f"{item['score']:+.2f}"
    lenient = copy.deepcopy(hb.results)
    lenient["config"]["reporting"]["min_trades"] = 0
    assert "†" not in "".join(c for r in _rows(tables.fold_table(lenient))[1:] for c in r)
    carried = copy.deepcopy(hb.results)
    carried["top_k"][0]["metrics"]["folds"] = [{"sharpe": s, "trades": 40}
                                               for s in (-0.31, 4.77, -0.87, -1.31)]
    row = _rows(tables.fold_table(carried))[1]
    assert row[-1].startswith("fold 2 (+4.77) carries the mean +0.57")


def test_verdict_block_leads_with_the_decision_and_its_numbers(hb: Run) -> None:
    decided = verdict(hb.results)
    page = tables.verdict_block(hb.results)
    assert page.startswith(tables.STYLE + '<div id="verdict" class="cs-verdict')
    text = re.sub(r"<[^>]+>", " ", page)
    for part in (decided.label, html.escape(decided.reason), formatting.signed(
            decided.holdout_score), formatting.share(decided.dsr), formatting.share(decided.pbo)):
        assert part in text
    assert page.index(decided.label) < page.index("criterion")


def test_the_gates_criteria_read_as_the_text_report_says_them() -> None:
    """The report's criteria table named the gate's criteria by their keys (``stress 0.228
    0 pass``, ``holdout_test 0.188 0.05 fail``), where the text report and the nightly's log
    say ``holdout Sharpe at 2x costs +0.23 >= 0``: a new user reading the first block of
    report.html could not tell what was tested or which way its threshold goes."""
    criteria = [
        {"name": "holdout_test", "value": 0.188, "threshold": 0.05, "passed": False,
         "text": "holdout vs random entries p 0.188 > 0.05"},
        {"name": "stress", "value": 0.228, "threshold": 0.0, "passed": True,
         "text": "holdout Sharpe at 2x costs +0.23 >= 0"},
        {"name": "pbo", "value": 0.68, "threshold": 0.5, "passed": False},  # older results
    ]
    best = {"eval_id": 1, "rank": 1, "score": 0.1,
            "holdout": {"holdout_sharpe": 0.75, "holdout_trades": 9}}
    results = {"config": {"objective": {"metric": "sharpe"}, "reporting": {"min_trades": 30}},
               "best": best, "top_k": [best], "run": {"name": "night"},
               "deployment": {"decision": "rejected", "reason": "Rejected: PBO 0.68 > 0.5.",
                              "criteria": criteria}}
    rows = _rows(tables.verdict_block(results))
    assert [row[0] for row in rows[1:]] == [
        "holdout vs random entries p 0.188 > 0.05", "holdout Sharpe at 2x costs +0.23 >= 0",
        "pbo"]


def test_a_hand_edited_results_file_cannot_put_markup_on_the_page(hb: Run) -> None:
    """Every string of a results file reaches the page escaped: a metric, an eval id or a
    rank edited into markup (the report reads whatever JSON object the folder holds) is text,
    never an element (found by planting '<x-evil>' in each field of a real run's results)."""
    results = copy.deepcopy(hb.results)
    evil = "<x-evil>"
    results["config"]["objective"]["metric"] = evil
    results["top_k"][0]["eval_id"] = results["top_k"][0]["rank"] = evil
    results["reproducibility_check"] = [{"eval_id": evil, "status": "PASS"}]
    pages = [tables.verdict_block(results), tables.top_k_table(results),
             tables.reproducibility_table(results)]
    pages.append(tables.fold_table(results | {"config": hb.results["config"]}))
    for page in pages:
        assert page and evil not in page and html.escape(evil) in page


def test_summary_and_environment_tables(hb: Run) -> None:
    summary = dict(_rows(tables.summary_table(hb.results)))
    counts = hb.results["counts"]
    assert summary["run"] == "hb" and summary["seed"] == "7"
    assert summary["config hash"] == hb.results["config_hash"]
    assert summary["evaluations"].startswith(f"{counts['evaluations']} ({counts['done']} done")
    assert summary["strategy"].startswith("hyperband (max_iter 4, eta 2")
    environment = json.loads(next(hb.dir.glob("gpu_repro_*.json")).read_text())
    machine = dict(_rows(tables.environment_table(environment)))
    assert machine["python"] == environment["python"]
    assert "plotly" in machine["packages"]


def test_baselines_are_rows_beside_the_top_k(hb: Run) -> None:
    results = copy.deepcopy(hb.results)
    folds = len(results["top_k"][0]["metrics"]["folds"])
    hold = {"sharpe": 0.8, "trades": 1, "max_drawdown": 0.2, "hit_rate": 1.0, "exposure": 1.0}
    results["baselines"] = {
        "flat": {"metric": "sharpe", "score": 0.0, "folds": [{"sharpe": 0.0, "trades": 0}] * folds,
                 "holdout": {"holdout_sharpe": 0.0, "holdout_trades": 0}},
        "buy_and_hold": {"metric": "sharpe", "score": 0.5,
                         "folds": [{"sharpe": 0.5, "trades": 1}] * folds,
                         "holdout": {f"holdout_{k}": v for k, v in hold.items()}},
    }
    rows = _rows(tables.top_k_table(results))[1:]
    assert [r[2] for r in rows[-2:]] == ["flat", "buy-and-hold"]
    assert rows[-1][5] == "+0.80 (1 trades)", "a baseline is never a small sample"
    assert rows[-1][6] == "20.0%" and rows[-1][10] == "baseline"
    folds_rows = _rows(tables.fold_table(results))[1:]
    assert [r[0] for r in folds_rows[-2:]] == ["flat", "buy-and-hold"]
    assert folds_rows[-1][2] == "+0.50\n1 trades"
    bare = {**hb.results, "baselines": None}
    assert len(_rows(tables.top_k_table(bare))) == len(hb.results["top_k"]) + 1
    # A run's own baselines and the edge of each configuration over them.
    own = _rows(tables.top_k_table(hb.results))[1:]
    assert [r[2] for r in own[-2:]] == ["flat", "buy-and-hold"]
    for row, item in zip(own, hb.results["top_k"], strict=False):
        assert row[2] == item["params"]["model"] + (" no edge" if item["edge"]["label"] else "")


def test_the_text_report_leads_with_the_verdict_and_marks_small_samples(hb: Run) -> None:
    from cryptosweep.records.results import text_report

    results = copy.deepcopy(hb.results)
    results["config"]["reporting"]["min_trades"] = 10 ** 6
    lines = text_report(results).splitlines()
    decided = verdict(results)
    assert lines[:3] == [f"VERDICT: {decided.label} ({decided.basis})", f"  {decided.reason}",
                         f"  {decided.headline()}"]
    winner = next(line for line in lines if line.startswith("  #1 eval"))
    folds = [f"{f['sharpe']:+.2f}†" for f in results["best"]["metrics"]["folds"]]
    assert f"(folds {' '.join(folds)})" in winner and "trades, small sample)" in winner
    params = next(line for line in lines if line.startswith("      trading: "))
    assert params == "      trading: " + ", ".join(
        formatting.param_lines(results["best"]["params"]["trading"]))
    assert (next(hb.dir.glob("sweep_report_*.txt")).read_text().splitlines()[0]
            == f"VERDICT: {verdict(hb.results).label} ({verdict(hb.results).basis})")
