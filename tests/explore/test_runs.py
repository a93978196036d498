"""The explorer's reading of run folders and its widgets' callbacks, on real runs
(``explore_reports`` in conftest): every table and figure is checked against the journal read
with plain SQL and against the results files."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from cryptosweep.core.paths import REPOSITORY
from cryptosweep.explore import Explorer
from cryptosweep.explore.runs import (
    TrialFilter,
    compare_runs,
    filter_trials,
    list_runs,
    load_results,
    read_evaluations,
    runs_frame,
    sort_trials,
    trials_table,
)
from cryptosweep.records.journal import Journal
from cryptosweep.reporting.report import run_summaries
from tests.support import results_file

pytestmark = pytest.mark.slow



def _search_best(results: dict) -> dict:
    """The search's own best at the full budget (the winner is chosen by re-scoring)."""
    return next(item for item in results["top_k"] if item.get("search_rank", 1) == 1)

def journal(run_dir: Path) -> list[dict[str, Any]]:
    """The run's evaluations straight from ``sweep.db`` with plain SQL: the oracle."""
    conn = sqlite3.connect(f"file:{run_dir / 'sweep.db'}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT e.eval_id, e.trial_id, t.params, e.budget, e.status, e.score, e.metrics, "
            "(SELECT COUNT(*) FROM attempts a WHERE a.eval_id = e.eval_id) "
            "FROM evaluations e JOIN trials t USING (trial_id) ORDER BY e.eval_id").fetchall()
    finally:
        conn.close()
    return [{"eval_id": r[0], "trial_id": r[1], "params": json.loads(r[2]), "budget": r[3],
             "status": r[4], "score": r[5], "metrics": json.loads(r[6]) if r[6] else None,
             "attempts": r[7]} for r in rows]


def flat_params(params: dict[str, Any]) -> dict[str, Any]:
    family = params["model"]
    return {**{f"{family}.{k}": v for k, v in params["entry_model"].items()},
            **{f"trading.{k}": v for k, v in params["trading"].items()}}


def plotted_points(figure: Any) -> set[tuple[int, str, Any, float]]:
    """(eval id, parameter, x, score) of every marker of a parameters-against-score figure."""
    return {(int(eval_id), trace.meta, x, y) for trace in figure.data
            for eval_id, x, y in zip(trace.customdata, trace.x, trace.y, strict=True)}


def expected_points(rows: list[dict[str, Any]]) -> set[tuple[int, str, Any, float]]:
    return {(row["eval_id"], name, value, row["score"]) for row in rows
            if row["score"] is not None for name, value in flat_params(row["params"]).items()}


def html_eval_ids(table_html: str) -> list[int]:
    """The index cells (eval ids) of a table rendered by the explorer, in row order."""
    body = table_html.split("<tbody>", 1)[1]
    return [int(x) for x in re.findall(r"<tr>\s*<th>(\d+)</th>", body)]


# ------------------------------------------------------------------------------- folders


def test_every_run_folder_is_listed_with_what_is_wrong_with_it(explore_reports):
    runs = {run.name: run for run in list_runs(explore_reports)}
    assert set(runs) == {"night1", "night2", "half_written", "other_version", "running",
                         "incomplete"}, "the latest link is not a run of its own"
    assert {name: run.state for name, run in runs.items()} == {
        "night1": "complete", "night2": "complete", "half_written": "unreadable",
        "other_version": "other version", "running": "running", "incomplete": "incomplete"}
    assert "not complete JSON" in runs["half_written"].note
    assert "another version" in runs["other_version"].note
    assert "cryptosweep.sweep_results/0" in runs["other_version"].note
    assert "--resume" in runs["running"].note
    assert "no sweep_results_*.json" in runs["incomplete"].note
    for name in ("night1", "night2"):
        results = json.loads(results_file(explore_reports / name).read_text())
        summary = runs[name].summary
        assert summary is not None, "a complete run carries its row of the index"
        assert summary["best"] == results["best"]["score"]
        assert summary["holdout"] == results["best"]["holdout"]["holdout_sharpe"]
        gate = next(c for c in results["deployment"]["criteria"] if c["name"] == "dsr")
        assert summary["dsr"] == gate["value"]  # the DSR the gate judged
        assert summary["pbo"] == results["overfitting"]["pbo"]["pbo"]
    frame = runs_frame(list_runs(explore_reports))
    night2 = frame.set_index("run").loc["night2"]
    assert night2["strategy"] == "random" and night2["state"] == "complete"
    created = [run.created_at for run in list_runs(explore_reports)]
    assert created == sorted(created, reverse=True), "newest first"


def test_the_gate_column_is_the_deployment_gates_decision(explore_reports):
    # before the fix the column read results["gate"], which no results file has: always "–"
    runs = {run.name: run for run in list_runs(explore_reports)}
    frame = runs_frame(runs.values()).set_index("run")
    for name in ("night1", "night2"):
        decision = json.loads(results_file(explore_reports / name).read_text())[
            "deployment"]["decision"]
        assert decision in ("approved", "rejected")
        assert runs[name].gate == decision and frame.loc[name, "gate"] == decision
    summary = compare_runs(load_results(explore_reports / "night1"),
                           load_results(explore_reports / "night2")).summary
    assert summary.loc["gate"].tolist()[:2] == [runs["night1"].gate, runs["night2"].gate]


def test_the_index_skips_a_results_file_of_another_version(explore_reports):
    # before the fix one older results file (no "run" key) made the whole index fail
    names = {row["run"] for row in run_summaries(explore_reports)}
    assert {"night1", "night2"} <= names and "other_version" not in names


def test_reading_a_folder_that_cannot_be_opened_says_why(explore_reports, tmp_path):
    from cryptosweep.explore import RunReadError

    for name, words in (("half_written", "not complete JSON"),
                        ("other_version", "another version")):
        with pytest.raises(RunReadError, match=words):
            read_evaluations(explore_reports / name)
    with pytest.raises(RunReadError, match="no sweep_results"):
        load_results(explore_reports / "incomplete")
    with pytest.raises(RunReadError, match="not found"):
        list_runs(tmp_path / "missing")
    assert len(read_evaluations(explore_reports / "running")) == len(
        journal(explore_reports / "running")), "a running sweep's journal is read as it is"


def test_a_relative_reports_folder_is_found_from_the_repository_and_from_notebooks(
        tmp_path, monkeypatch):
    (tmp_path / "reports").mkdir()
    monkeypatch.chdir(tmp_path)  # papermill: the working directory has it
    assert Explorer("reports").reports_dir == tmp_path / "reports"
    monkeypatch.chdir(REPOSITORY / "notebooks")  # JupyterLab: notebooks/ has no reports/
    assert Explorer("reports").reports_dir == REPOSITORY / "reports"
    assert (REPOSITORY / "notebooks" / "explore.ipynb").is_file()


# -------------------------------------------------------------------------------- trials


def test_the_trials_table_is_the_journal(explore_reports):
    run_dir = explore_reports / "night1"
    rows = journal(run_dir)
    table = trials_table(read_evaluations(run_dir))
    assert list(table.index) == [row["eval_id"] for row in rows]
    for row in rows:
        line = table.loc[row["eval_id"]]
        assert line["trial_id"] == row["trial_id"] and line["budget"] == row["budget"]
        assert line["status"] == row["status"] and line["family"] == row["params"]["model"]
        assert line["score"] == row["score"]
        for name, value in flat_params(row["params"]).items():
            assert line[name] == value
        metrics = row["metrics"]
        for i, fold in enumerate(metrics["folds"], start=1):
            assert line[f"fold_{i}_sharpe"] == fold["sharpe"]
        assert line["worst_drawdown"] == max(f["max_drawdown"] for f in metrics["folds"])
        assert line["trades"] == metrics["n_trades"]
        assert line["attempts"] == row["attempts"] and not line["retried"]
        assert not line["failed"]
    assert sorted(table["rung"].unique()) == [0, 1, 2], "Hyperband's rungs are columns"


def test_filtering_and_sorting_keep_exactly_the_matching_evaluations(explore_reports):
    rows = journal(explore_reports / "night1")
    table = trials_table(read_evaluations(explore_reports / "night1"))
    top = max(row["budget"] for row in rows)
    scores = sorted(row["score"] for row in rows)
    low, high = scores[3], scores[-3]
    kept = filter_trials(table, TrialFilter(budgets=frozenset({top, 1.0}),
                                            score_range=(low, high)))
    assert sorted(kept.index) == [row["eval_id"] for row in rows
                                  if row["budget"] in (top, 1.0) and low <= row["score"] <= high]
    assert filter_trials(table, TrialFilter(statuses=frozenset({"failed"}))).empty
    assert filter_trials(table, TrialFilter(retried_only=True)).empty
    assert len(filter_trials(table, TrialFilter())) == len(rows)
    ordered = sort_trials(table, "trading.threshold", descending=False)
    thresholds = list(ordered["trading.threshold"])
    assert thresholds == sorted(thresholds)
    by_score = sort_trials(table, "score")
    assert list(by_score["score"]) == sorted(table["score"], reverse=True)


def test_two_runs_side_by_side(explore_reports):
    first = json.loads(results_file(explore_reports / "night1").read_text())
    second = json.loads(results_file(explore_reports / "night2").read_text())
    comparison = compare_runs(first, second)
    summary = comparison.summary
    assert list(summary.columns) == ["night1", "night2", "change"]
    assert summary.loc["best (validation)", "night1"] == first["best"]["score"]
    assert summary.loc["best (validation)", "change"] == pytest.approx(
        second["best"]["score"] - first["best"]["score"])
    assert summary.loc["holdout Sharpe", "night2"] == second["best"]["holdout"]["holdout_sharpe"]
    gate = next(c for c in first["deployment"]["criteria"] if c["name"] == "dsr")
    assert summary.loc["DSR", "night1"] == gate["value"]  # the one the gate judged
    assert summary.loc["PBO", "night2"] == second["overfitting"]["pbo"]["pbo"]
    assert summary.loc["strategy", "change"] == "changed"
    params_a, params_b = (flat_params(first["best"]["params"]),
                          flat_params(second["best"]["params"]))
    shifts = comparison.parameters
    assert set(shifts.index) == {"model", *params_a, *params_b}
    assert set(params_a) - set(params_b) == {"lightgbm.feature_fraction"}, "night2 has none"
    for name, value in params_a.items():
        if name not in params_b:  # searched in one run only: no change to compute
            assert shifts.loc[name, "night2"] is None and shifts.loc[name, "change"] is None
            continue
        assert shifts.loc[name, "change"] == pytest.approx(params_b[name] - value)
        assert shifts.loc[name, "relative change"] == pytest.approx(
            (params_b[name] - value) / abs(value))
    for name, results in (("night1", first), ("night2", second)):
        compute, best = comparison.curves[name]
        assert compute[-1] == results["budget_spent"]
        assert best[-1] == _search_best(results)["score"]


# ------------------------------------------------------------------------------- widgets


def test_explorer_callbacks_redraw_tables_and_figures_from_the_journal(explore_reports):
    ui = Explorer(explore_reports)
    assert ui.run_picker.value == "night2", "the newest run that can be opened"
    assert (ui.compare_first.value, ui.compare_second.value) == ("night1", "night2")
    assert ui.comparison is not None and ui.comparison.first == "night1"
    assert "night1" in ui.runs_table.value and "other version" in ui.runs_table.value

    ui.run_picker.value = "night1"  # what choosing it in JupyterLab does
    rows = journal(explore_reports / "night1")
    assert plotted_points(ui.figures["parameters"]) == expected_points(rows)
    by_score = sorted(rows, key=lambda row: (-row["score"], row["eval_id"]))
    assert html_eval_ids(ui.trials_html.value) == [row["eval_id"] for row in by_score]

    top = max(row["budget"] for row in rows)
    ui.budget_filter.value = (top,)
    at_top = [row for row in rows if row["budget"] == top]
    assert plotted_points(ui.figures["parameters"]) == expected_points(at_top)
    assert sorted(html_eval_ids(ui.trials_html.value)) == [row["eval_id"] for row in at_top]

    ui.budget_filter.value = tuple(ui.budget_filter.options[i][1]
                                   for i in range(len(ui.budget_filter.options)))
    median = sorted(row["score"] for row in rows)[len(rows) // 2]
    ui.score_filter.value = (median, ui.score_filter.max)  # moving the slider
    kept = [row for row in rows if row["score"] >= median]
    assert plotted_points(ui.figures["parameters"]) == expected_points(kept)

    ui.sort_by.value = "trading.threshold"
    ui.descending.value = False
    shown = html_eval_ids(ui.trials_html.value)
    assert shown == [row["eval_id"] for row in sorted(
        kept, key=lambda row: (row["params"]["trading"]["threshold"], row["eval_id"]))]

    ui.compare_first.value, ui.compare_second.value = "night2", "night1"
    assert ui.comparison.first == "night2" and ui.comparison.second == "night1"
    curves = {trace.name: (list(trace.x), list(trace.y)) for trace in ui.figures["compare"].data}
    for name in ("night1", "night2"):
        results = json.loads(results_file(explore_reports / name).read_text())
        assert curves[name][0][-1] == results["budget_spent"]
        assert curves[name][1][-1] == _search_best(results)["score"]

    ui.refresh_button.click()  # re-reads the folder, keeps what is shown
    assert ui.run_picker.value == "night1" and ui.comparison.first == "night2"
    ui.run_picker.value = "half_written"  # says so, raises nothing
    assert "not complete JSON" in ui.run_details.value
    assert "not complete JSON" in ui.trials_summary.value and ui.figures["parameters"] is None
    ui.run_picker.value = "running"
    assert "running" in ui.run_details.value
    assert len(ui.trials) == len(journal(explore_reports / "running"))
    ui.compare_second.value = "night2"
    ui.compare_first.value = "night2"
    assert ui.comparison.first == "night2 (1)", "a run compared with itself is labelled"


def test_a_run_that_is_not_there_is_refused_naming_it(explore_reports):
    """`-p run nosuch` (a typo) opened the newest run without a word: another run's trials
    read as the one asked for."""
    from cryptosweep.core.errors import ConfigError

    with pytest.raises(ConfigError, match=r"run 'nigth1': no such run in .*night2"):
        Explorer(explore_reports, run="nigth1")
    with pytest.raises(ConfigError, match=r"compare_with 3: no such run"):
        Explorer(explore_reports, run="night1", compare_with=3)  # type: ignore[arg-type]
    assert Explorer(explore_reports, run="night1").run_picker.value == "night1"


def test_explorer_of_a_missing_or_empty_folder_says_so(tmp_path):
    missing = Explorer(tmp_path / "nowhere")
    assert "reports folder not found" in missing.header.value
    assert missing.run is None and missing.trials.empty and missing.comparison is None
    (tmp_path / "empty").mkdir()
    empty = Explorer(tmp_path / "empty")
    assert "no run folders" in empty.header.value
    assert "two complete runs" in empty.compare_table.value


# ------------------------------------------------------------------------ read-only journal


def test_a_read_only_journal_never_holds_a_lock_the_sweep_would_wait_for(tmp_path):
    db = tmp_path / "sweep.db"
    journal = Journal(db)
    journal.set_meta(status="running", config={})
    reader = Journal.open_readonly(tmp_path)
    writer = sqlite3.connect(db, timeout=0, isolation_level=None)  # busy = error at once
    try:
        assert reader.get_meta("status") == "running" and reader.evaluations() == []
        writer.execute("BEGIN IMMEDIATE")  # the reader holds nothing between its reads ...
        writer.execute("UPDATE meta SET value = '\"complete\"' WHERE key = 'status'")
        assert reader.get_meta("status") == "running"  # ... and reads while a write is open
        writer.execute("COMMIT")
        assert reader.get_meta("status") == "complete"
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            reader.set_meta(status="x")
    finally:
        writer.close()
        reader.close()
        journal.close()
    with pytest.raises(sqlite3.OperationalError):
        Journal.open_readonly(tmp_path / "nothing")


def test_a_results_file_with_a_field_of_another_type_spoils_only_its_own_run(explore_reports,
                                                                            tmp_path):
    """One results file whose ``best`` was not an object (damaged, or edited by hand) raised an
    AttributeError out of the index's summaries: the explorer could not be opened on the
    whole reports folder; and comparing that run raised too."""
    reports = tmp_path / "reports"
    shutil.copytree(explore_reports / "night2", reports / "night2")
    shutil.copytree(explore_reports / "night2", reports / "odd")
    path = next((reports / "odd").glob("sweep_results_*.json"))
    results = json.loads(path.read_text())
    results["best"] = ["not", "an", "object"]
    results["run"]["created_at"] += 3600  # the newest: compared by default
    path.write_text(json.dumps(results))
    ui = Explorer(reports)
    summaries = {run.name: run.summary for run in ui.runs}
    assert summaries["odd"] is None and summaries["night2"]["best"] is not None
    assert ui.comparison is None and "cannot be compared" in ui.compare_table.value
    ui.run_picker.value = "night2"
    assert len(ui.trials) == 6


def test_reading_a_finished_run_leaves_its_folder_as_it_was(explore_reports, tmp_path):
    """Every read of a finished run's journal (mode=ro) created sweep.db-wal and sweep.db-shm
    in its folder and left them there, and a folder that cannot be written (another user's
    reports, a read-only mount) could not be read at all: 'unable to open database file', the
    run listed as unreadable. Now a journal without a -wal file is read as immutable."""
    from cryptosweep.explore import read_trial, take_snapshot
    from cryptosweep.explore.runs import inspect_run

    run = tmp_path / "reports" / "night2"
    shutil.copytree(explore_reports / "night2", run)
    for left in run.glob("sweep.db-*"):  # left by an earlier reader: empty
        assert left.stat().st_size == 0 or left.name.endswith("-shm")
        left.unlink()
    before = sorted(p.name for p in run.iterdir())
    assert inspect_run(run).state == "complete"
    evaluations = read_evaluations(run)
    read_trial(run, evaluations[0]["eval_id"])
    assert take_snapshot(run).status == "complete"
    Explorer(run.parent)
    assert sorted(p.name for p in run.iterdir()) == before


def test_a_fold_fidelity_evaluation_s_folds_are_in_their_own_columns():
    """Below the full budget, objective.fidelity: folds (Hyperband's and BOHB's default)
    evaluates the most recent folds: a budget-1 evaluation's one fold is fold 3 of 3, and the
    trials table put its Sharpe ratio under fold_1_sharpe, beside other rows' first fold."""
    def evaluation(eval_id: int, budget: float, sharpes: list[float],
                   evaluated: list[int]) -> dict[str, Any]:
        return {"eval_id": eval_id, "trial_id": eval_id, "budget": budget, "status": "done",
                "score": sum(sharpes) / len(sharpes),
                "params": {"model": "lightgbm", "entry_model": {}, "trading": {}},
                "metrics": {"metric": "sharpe", "folds": [{"sharpe": s} for s in sharpes],
                            "fidelity": {"kind": "folds", "folds_evaluated": evaluated}}}

    table = trials_table([evaluation(0, 1.0, [0.3], [2]),
                          evaluation(1, 3.0, [0.1, 0.2, 0.3], [0, 1, 2])])
    folds = [c for c in table.columns if c.startswith("fold_")]
    assert folds == ["fold_1_sharpe", "fold_2_sharpe", "fold_3_sharpe"]
    assert table.loc[0, "fold_3_sharpe"] == 0.3 and table.loc[0, folds[:2]].isna().all()
    assert table.loc[1, folds].tolist() == [0.1, 0.2, 0.3]


def test_runs_scored_with_other_metrics_are_not_subtracted(explore_reports):
    """night1 scored by Sharpe ratio, a run scored by total return: the comparison gave the
    change of 'best (validation)' as one less the other, and did not say what either was."""
    first = json.loads(results_file(explore_reports / "night1").read_text())
    second = json.loads(results_file(explore_reports / "night2").read_text())
    second["config"]["objective"]["metric"] = "total_return"
    summary = compare_runs(first, second).summary
    assert summary.loc["metric"].tolist() == ["sharpe", "total_return", "changed"]
    assert summary.loc["best (validation)", "change"] is None
    assert compare_runs(first, first).summary.loc["best (validation)", "change"] == 0.0


def test_the_latest_link_and_a_run_folder_given_for_the_reports_folder(explore_reports):
    """run='latest' (the link the nightly keeps, and the fixture's) was 'no such run'; a run
    folder given as the reports folder said 'no run folders in ... yet', as if no sweep had
    run."""
    assert Explorer(explore_reports, run="latest").run.name == "night2"
    header = Explorer(explore_reports / "night1").header.value
    assert "is a run folder, not a reports folder" in header and "run=&#x27;night1&#x27;" in header
