"""Hyperband, BOHB and Bayesian search are as reproducible as random search: a run on 2 dask
workers, SIGKILLed at a random point and resumed, gives the in-process run's results."""

from __future__ import annotations

import json
import random
import sqlite3
from pathlib import Path

import pytest

from tests.support import cli, deterministic_bytes, kill_when, results_file, tiny_config

pytestmark = pytest.mark.slow

SWEEPS = {
    # R=4, eta=2: brackets (4,1)(2,2)(1,4) | (3,2)(1,4) | (3,4): 14 evaluations. Hyperband with
    # the rounds fidelity (promotions continue from checkpoints), BOHB with the default (folds).
    "hyperband": {"sweep_type": "hyperband", "hyperband": {"max_iter": 4, "eta": 2},
                  "objective": {"fidelity": "rounds"}},
    "bohb": {"sweep_type": "hyperband",
             "hyperband": {"max_iter": 4, "eta": 2, "sampler": "tpe", "iterations": 2}},
    "bayesian": {"sweep_type": "bayesian", "bayesian": {"n_trials": 10, "batch_size": 4},
                 "hyperband": {"max_iter": 2}},
}


def reference_run(name: str, config: dict, tmp_path_factory: pytest.TempPathFactory
                  ) -> tuple[str, Path, Path]:
    """The uninterrupted in-process run (seed 21) of ``config``: its name, config file and
    run folder."""
    base = tmp_path_factory.mktemp(name.replace(" ", "_"))
    path = base / "sweep.json"
    path.write_text(json.dumps(config))
    done = cli("run", "--config", str(path), "--log-dir", str(base), "--run-name", "ref",
               "--seed", "21")
    assert done.returncode == 0, done.stderr
    return name, path, base / "ref"


@pytest.fixture(scope="module", params=list(SWEEPS))
def sweep(request, tmp_path_factory):
    config = tiny_config(objective__rounds_per_unit=3)
    for section, values in SWEEPS[request.param].items():  # merged into tiny's sections
        config[section] = ({**config[section], **values} if isinstance(values, dict)
                           and isinstance(config.get(section), dict) else values)
    return reference_run(request.param, config, tmp_path_factory)


def test_two_workers_killed_and_resumed_give_the_in_process_results(sweep, tmp_path):
    """One run on 2 dask workers, SIGKILLed at a random point and resumed (on 2 workers
    again), ends byte-identical to the uninterrupted in-process run: both claims in one run
    (a worker-count difference or a resume difference would each show)."""
    name, path, reference = sweep
    total = len(json.loads(results_file(reference).read_text())["evaluations"])
    kill_at = random.randint(1, total - 2)
    run_dir = tmp_path / "killed"
    finished = kill_when(run_dir / "sweep.db", kill_at, [
        "run", "--config", str(path), "--log-dir", str(tmp_path), "--run-name", "killed",
        "--seed", "21", "--workers", "2"])
    assert finished < total, f"{name}: killed too late"
    with sqlite3.connect(run_dir / "sweep.db") as db:
        before = {r[0] for r in db.execute(
            "SELECT eval_id FROM evaluations WHERE status IN ('done', 'failed')")}
    resumed = cli("run", "--resume", str(run_dir), "--workers", "2")
    assert resumed.returncode == 0, resumed.stderr
    assert deterministic_bytes(run_dir) == deterministic_bytes(reference), (
        f"{name}: resumed after {finished} evaluations differs from the uninterrupted run")
    with sqlite3.connect(run_dir / "sweep.db") as db:
        for eval_id, n_attempts, n_finished in db.execute(
                "SELECT eval_id, COUNT(*), SUM(outcome IS NOT NULL) FROM attempts "
                "GROUP BY eval_id"):
            assert n_finished == 1
            assert eval_id not in before or n_attempts == 1, f"eval {eval_id} ran twice"


def test_results_name_the_strategy_and_spend_the_planned_budget(sweep):
    name, _, reference = sweep
    results = json.loads(results_file(reference).read_text())
    # The text report says whether promotions continued (the rounds fidelity) or not.
    (report,) = reference.glob("sweep_report_*.txt")
    assert ("promotions continued from checkpoints" if name == "hyperband"
            else "every evaluation trained from scratch") in report.read_text()
    assert results["strategy"]["name"] == ("hyperband" if name != "bayesian" else "bayesian")
    budgets = sorted({e["budget"] for e in results["evaluations"]})
    if name == "bayesian":
        assert budgets == [2.0] and results["counts"]["evaluations"] == 10
    else:
        assert budgets == [1.0, 2.0, 4.0]
        assert results["counts"]["evaluations"] == 14 * (2 if name == "bohb" else 1)
        assert results["budget_spent"] == 34 * (2 if name == "bohb" else 1)
        compute = results["compute_spent"]
        assert len(compute["per_bracket"]) == 3 * (2 if name == "bohb" else 1)
        assert sum(compute["per_bracket"].values()) == compute["total"]
        promoted = [e for e in results["evaluations"] if e["tags"]["previous_budget"]]
        assert promoted
        if name == "hyperband":  # rounds: promotions continue, only the increments are trained
            assert results["config"]["objective"].get("fidelity", "rounds") == "rounds"
            assert compute["total"] < results["budget_spent"]
            assert all(e["metrics"]["continued"] for e in promoted if e["status"] == "done")
        else:  # the default, folds: a promotion evaluates other folds, from scratch
            assert results["config"]["objective"]["fidelity"] == "folds"
            assert not any(e["metrics"]["continued"] for e in promoted if e["status"] == "done")
            assert_each_rung_trained_afresh(results, reference)


# R=4, eta=2 (14 evaluations) with the bars fidelity: the lower rungs evaluate each fold's most
# recent bars, never from checkpoints. The folds fidelity (the lower rungs evaluate the most
# recent folds) is BOHB's above: its kill and resume are that sweep's.
FIDELITY_SWEEP = {"sweep_type": "hyperband", "hyperband": {"max_iter": 4, "eta": 2}}


@pytest.fixture(scope="module")
def bars_sweep(tmp_path_factory):
    config = tiny_config(objective__rounds_per_unit=3, objective__fidelity="bars")
    config.update(FIDELITY_SWEEP)
    return reference_run("bars", config, tmp_path_factory)


def test_the_bars_fidelity_gives_the_same_results_on_two_workers_and_after_a_kill(
        bars_sweep, tmp_path):
    """As for each strategy above: 2 dask workers, SIGKILLed and resumed on 2 workers, equal
    the in-process run."""
    test_two_workers_killed_and_resumed_give_the_in_process_results(bars_sweep, tmp_path)


def test_the_bars_fidelity_is_recorded_and_trains_every_evaluation_afresh(bars_sweep):
    _, _, reference = bars_sweep
    results = json.loads(results_file(reference).read_text())
    assert results["config"]["objective"]["fidelity"] == "bars"
    assert_each_rung_trained_afresh(results, reference)


def assert_each_rung_trained_afresh(results: dict, reference: Path) -> None:
    """A fidelity other than rounds (R=4, eta=2, 2 folds): every rung trains the full budget's
    rounds from scratch on its share (folds: the most recent folds; bars: every fold's most
    recent bars), its compute the budget it spent."""
    name = results["config"]["objective"]["fidelity"]
    done = [e for e in results["evaluations"] if e["status"] == "done"]
    assert sorted({e["budget"] for e in done}) == [1.0, 2.0, 4.0]
    rounds = {e["metrics"]["rounds"] for e in done}
    assert rounds == {12}  # the full budget's rounds (4 units x 3) at every rung
    for evaluation in done:
        fidelity, budget = evaluation["metrics"]["fidelity"], evaluation["budget"]
        assert fidelity["kind"] == name and fidelity["share"] == budget / 4
        assert not evaluation["metrics"]["continued"]
        if name == "folds":  # 2 folds: ceil(2 x r / 4)
            assert fidelity["folds_evaluated"] == ([1] if budget < 4 else [0, 1])
        else:
            assert fidelity["folds_evaluated"] == [0, 1]
    assert results["compute_spent"]["total"] == results["budget_spent"]
    assert not (reference / "checkpoints").exists()
    assert results["overfitting"]["pbo"] is not None, results["overfitting"]["why_not"]


# Random search with the entry threshold searched inside each trial (3 thresholds each).
INNER_THRESHOLDS = 3


@pytest.fixture(scope="module")
def inner_sweep(tmp_path_factory):
    config = tiny_config(objective__rounds_per_unit=3,
                         objective__threshold_search=INNER_THRESHOLDS)
    return reference_run("inner threshold search", config, tmp_path_factory)


def test_the_inner_threshold_search_gives_the_same_results_on_two_workers_and_after_a_kill(
        inner_sweep, tmp_path):
    """As for each strategy above: 2 dask workers, SIGKILLed and resumed on 2 workers, equal
    the in-process run."""
    test_two_workers_killed_and_resumed_give_the_in_process_results(inner_sweep, tmp_path)


def test_the_inner_threshold_search_is_counted_and_its_choice_is_what_follows(inner_sweep):
    """Every inner evaluation is a trial for the DSR; the holdout, the re-scores and the best
    configs use the threshold each trial chose, fixed."""
    from cryptosweep.core.config_files import validate_config
    from cryptosweep.trading.objective import evaluate_holdout

    _, path, reference = inner_sweep
    results = json.loads(results_file(reference).read_text())
    done = [e for e in results["evaluations"] if e["status"] == "done"]
    assert len(done) == 6
    for evaluation in done:
        search = evaluation["metrics"]["threshold_search"]
        assert len(search["evaluations"]) == INNER_THRESHOLDS
        assert evaluation["params"]["trading"]["threshold"] == search["chosen"]
    ledger = results["statistics"]["ledger"]
    leaders, seeds = len(results["top_k"]), results["statistics"]["rescore"]["seeds"]
    # 6 trials x 3 thresholds, and each leader's seeds beyond its own.
    assert ledger["n_trials"] == 6 * INNER_THRESHOLDS + leaders * (seeds - 1)
    assert ledger["n_inner"] == 6 * (INNER_THRESHOLDS - 1)
    assert results["statistics"]["selection"]["dsr"]["n_trials"] == ledger["n_trials"]
    report = next(reference.glob("sweep_report_*.txt")).read_text()
    assert f"{ledger['n_inner']} of the trials from inner threshold searches" in report

    spec = validate_config(json.loads(path.read_text()), "test").objective_spec()
    winner = results["top_k"][0]
    chosen = winner["metrics"]["threshold_search"]["chosen"]
    assert winner["params"]["trading"]["threshold"] == chosen
    holdout = evaluate_holdout(winner["params"], winner["budget"], winner["seed"], spec)
    assert winner["holdout"]["holdout_sharpe"] == holdout["holdout_sharpe"]
    best = json.loads(next(reference.glob("best_configs_*.json")).read_text())
    assert best["trading_params"]["threshold"] == chosen
    assert best["configurations"][0]["params"] == winner["params"]
    (check,) = results["reproducibility_check"]
    assert check["status"] == "PASS"
