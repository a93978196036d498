"""What a person tries in the explorer and every look at a holdout are counted in the ledger."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from pathlib import Path

import pytest

from cryptosweep.explore.accounting import record_unlock, record_what_if
from cryptosweep.records.ledger import Market, TrialLedger, config_key, record_look_beside


def _finished_run(explore_reports: Path, tmp_path: Path) -> Path:
    def readable(folder: Path) -> bool:
        try:
            results = json.loads(next(folder.glob("sweep_results_*.json")).read_text())
        except (StopIteration, ValueError):
            return False
        return bool(results.get("best")) and "holdout_first_bar" in (results.get("data") or {})

    source = next(p for p in sorted(explore_reports.iterdir()) if p.is_dir() and readable(p))
    run = tmp_path / source.name
    shutil.copytree(source, run)
    for ledger in run.glob("trials.db*"):
        ledger.unlink()
    return run


def test_what_ifs_are_trials_and_unlocks_are_looks(explore_reports, tmp_path):
    run = _finished_run(explore_reports, tmp_path)
    results = json.loads(next(run.glob("sweep_results_*.json")).read_text())
    best = results["best"]
    path = record_what_if(run, {**best["params"], "trading": {
        **best["params"]["trading"], "threshold": 0.61}}, best["seed"], best["budget"], 0.01)
    assert path == str(run / "trials.db")
    market = Market.of(results["data"])
    with TrialLedger(path) as ledger:
        before = ledger.trials_on(market, 30).n_trials
    record_what_if(run, {**best["params"], "trading": {
        **best["params"]["trading"], "threshold": 0.62}}, best["seed"], best["budget"], 0.02)
    with TrialLedger(path) as ledger:
        assert ledger.trials_on(market, 30).n_trials == before + 1
    assert record_unlock(run) == (True, str(run / "trials.db"))
    with TrialLedger(path) as ledger:
        looks = ledger.looks_at(Market.of(results["data"], "holdout"))
    assert [(look["source"], look["what"]) for look in looks] == [("explorer", "unlock")]
    # Unlocked, a what-if shows its holdout score: each one is a look at the holdout too.
    tried = {**best["params"], "trading": {**best["params"]["trading"], "threshold": 0.63}}
    record_what_if(run, tried, best["seed"], best["budget"], 0.03, holdout_shown=True)
    with TrialLedger(path) as ledger:
        looks = ledger.looks_at(Market.of(results["data"], "holdout"))
    assert [look["what"] for look in looks][1:] == [
        f"what-if {config_key(tried)} seed {best['seed']}"]
    # Recorded with the probe of the run's candles, as the sweep's rows are: the same market
    # whatever its file is called (records.ledger).
    with sqlite3.connect(path) as db:
        probes = {row[0] for row in db.execute("SELECT probe_id FROM trials UNION ALL "
                                               "SELECT probe_id FROM looks")}
    assert None not in probes and len(probes) == 2  # development bars, holdout bars


def test_a_look_from_production_is_recorded_beside_the_source(explore_reports, tmp_path):
    run = _finished_run(explore_reports, tmp_path)
    TrialLedger(run / "trials.db").close()
    best_configs = next(run.glob("best_configs_*.json"))
    entry = json.loads(best_configs.read_text())["configurations"][1]
    assert record_look_beside(best_configs, run.name, "train", "--rank 2", entry["data"]) == (
        run / "trials.db")
    assert record_look_beside(tmp_path / "elsewhere.json", run.name, "train", "x",
                              entry["data"]) is None


@pytest.mark.parametrize(("trading", "expected"), [
    ((-0.5, 10, 0.04, 0.07), "threshold: values must be in (0, 1)"),
    ((float("nan"), 10, 0.04, 0.07), "threshold: values must be finite numbers, got nan"),
    ((0.5, 10, 2.0, 0.07), "stop_loss: values must be in (0, 1)"),
    ((0.5, 10**9, 0.04, 0.07), "holding_period: values must be in [1, 1e+06]"),
    # "no stop loss" as None: a pydantic ValidationError of four lines, not a ConfigError
    ((0.5, 10, None, 0.07), "stop_loss: values must be numbers, got None"),
])
def test_a_what_if_outside_what_a_config_allows_is_refused_not_scored(trading, expected):
    """A threshold of -0.5 scored -3.75 on 242 trades; NaN, a 200 % stop loss and a
    billion-bar holding period were scored too."""
    from cryptosweep.core.errors import ConfigError
    from cryptosweep.explore.whatif import what_if
    from cryptosweep.trading.steps import TradingParams

    with pytest.raises(ConfigError, match=re.escape(expected)):
        what_if([], TradingParams(*trading), spec=None)  # type: ignore[arg-type]


def _explorer_looks(run: Path) -> list[str]:
    if not (run / "trials.db").is_file():
        return []
    with sqlite3.connect(run / "trials.db") as db:
        return [what for (what,) in db.execute(
            "SELECT what FROM looks WHERE source = 'explorer'")]


def test_an_unlock_shows_only_the_holdout_whose_look_it_recorded(explore_reports, tmp_path):
    """Unlocking night2 showed night1's holdout too (runs table, comparison, trial panel) with
    no look recorded in night1's ledger; an unlock with no run, or of a run that has no results
    yet, recorded nothing and still showed every holdout from then on; a second unlock of the
    same run counted a second look."""
    from cryptosweep.explore import Explorer
    from cryptosweep.explore.runs import runs_frame

    reports = tmp_path / "reports"
    for name in ("night1", "night2", "running"):
        shutil.copytree(explore_reports / name, reports / name)
        for ledger in (reports / name).glob("trials.db*"):
            ledger.unlink()
    ui = Explorer(reports, run="running")
    assert "nothing recorded" in ui.unlock_holdout()
    assert not ui.holdout_unlocked and not ui.unlock_button.disabled
    ui.run_picker.value = "night2"
    assert not ui.holdout_unlocked and not ui.trial.holdout_unlocked
    assert ui.comparison is not None
    assert set(ui.comparison.summary.loc["holdout Sharpe", ["night1", "night2"]]) == {"locked"}

    assert ui.unlock_holdout() == str(reports / "night2" / "trials.db")
    assert ui.holdout_unlocked and ui.trial.holdout_unlocked and ui.unlock_button.disabled
    holdout = ui.comparison.summary.loc["holdout Sharpe"]
    assert holdout["night1"] == "locked" and isinstance(holdout["night2"], float)
    column = runs_frame(ui.runs, show_holdout={"night2"}).set_index("run")["holdout"]
    assert column["night1"] == "locked" and isinstance(column["night2"], float)
    assert ui.runs_table.value.count("locked") == 2  # night1 and running

    ui.run_picker.value = "night1"
    assert not ui.holdout_unlocked and not ui.trial.holdout_unlocked
    assert not ui.unlock_button.disabled
    assert _explorer_looks(reports / "night1") == []
    ui.unlock_holdout()
    ui.unlock_holdout()  # the button is disabled; a second call is not a second look
    assert _explorer_looks(reports / "night1") == ["unlock"]
    assert _explorer_looks(reports / "night2") == ["unlock"]
    assert set(ui.comparison.summary.loc["holdout Sharpe", ["night1", "night2"]]) != {"locked"}


def test_a_ledger_that_cannot_be_written_is_said_and_keeps_the_holdout_locked(explore_reports,
                                                                               tmp_path):
    """A damaged ledger: the unlock raised sqlite3's DatabaseError, and a what-if's count died
    with a thread's traceback while the panel showed the what-if as if it counted. A run
    folder copied from the machine whose models folder held its ledger: the explorer created
    that machine's folders here, and a new ledger in them that nothing reads."""
    from cryptosweep.explore import Explorer
    from cryptosweep.explore.accounting import counted

    run = _finished_run(explore_reports, tmp_path)
    best = json.loads(next(run.glob("sweep_results_*.json")).read_text())["best"]
    (run / "trials.db").write_bytes(b"not a database" * 100)
    recorded, where = record_unlock(run)
    assert not recorded and "cannot be written (file is not a database)" in where
    ui = Explorer(run.parent, run=run.name)
    assert "the holdout stays locked" in ui.unlock_holdout()
    assert not ui.holdout_unlocked and "nothing unlocked" in ui.unlock_note.value
    told: list[str] = []
    counted(record_what_if, told.append)(run, best["params"], best["seed"], best["budget"], 0.1)
    assert len(told) == 1 and "was not counted as a trial" in told[0]

    (run / "trials.db").unlink()
    results_path = next(run.glob("sweep_results_*.json"))
    results = json.loads(results_path.read_text())
    elsewhere = tmp_path / "server" / "models" / "trials.db"
    results["config"]["deployment"]["ledger"] = str(elsewhere)
    results_path.write_text(json.dumps(results))
    recorded, where = record_unlock(run)
    assert not recorded and "a run folder copied from another machine?" in where
    counted(record_what_if, told.append)(run, best["params"], best["seed"], best["budget"], 0.1)
    assert len(told) == 2
    assert not (tmp_path / "server").exists()


def test_a_what_if_on_a_run_still_running_counts_in_the_ledger_its_sweep_will_use(
        explore_reports, tmp_path):
    """A run without results yet (still running, or stopped): record_what_if found no results
    file and recorded nothing, without a word, though the panel scored the what-if."""
    from cryptosweep.explore.runs import read_evaluations
    from cryptosweep.records.ledger import run_key

    run = tmp_path / "running"
    shutil.copytree(explore_reports / "running", run)
    for ledger in run.glob("trials.db*"):
        ledger.unlink()
    assert not list(run.glob("sweep_results_*.json"))
    done = next(e for e in read_evaluations(run) if e["status"] == "done")
    assert record_what_if(run, done["params"], done["seed"], done["budget"], 0.1) == str(
        run / "trials.db")
    with sqlite3.connect(f"file:{run / 'sweep.db'}?mode=ro&immutable=1", uri=True) as db:
        (created_at,) = db.execute("SELECT value FROM meta WHERE key = 'created_at'").fetchone()
    with sqlite3.connect(run / "trials.db") as db:
        rows = db.execute("SELECT run, kind FROM trials").fetchall()
    assert rows == [(run_key("running", json.loads(created_at)), "explorer")]
