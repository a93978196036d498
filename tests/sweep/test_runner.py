"""A real sweep from the CLI on the bundled BTC sample: run folder, determinism, workers."""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from cryptosweep.core.files import file_sha256
from cryptosweep.judging.selection import gate_dsr
from cryptosweep.production.model import manifest_digest
from cryptosweep.records.integrity import EVAL_COLUMNS, row_checksum, unpack_returns
from tests.support import cli, deterministic_bytes, results_file, tiny_config

pytestmark = pytest.mark.slow

RUN_FILES = ("sweep_output.log", "sweep.db", "gpu_repro_*.json", "sweep_results_*.json",
             "sweep_report_*.txt", "best_configs_*.json", "resource_usage_*.json")


def run(config_path: Path, log_dir: Path, name: str, *extra: str) -> Path:
    done = cli("run", "--config", str(config_path), "--log-dir", str(log_dir),
               "--run-name", name, *extra)
    assert done.returncode == 0, done.stderr
    run_dir = log_dir / name
    assert done.stdout.strip() == str(run_dir)
    return run_dir


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted in-process run of the tiny config with seed 11 (the winner's
    neighbourhood evaluated too)."""
    base = tmp_path_factory.mktemp("reference")
    config_path = base / "sweep.json"
    config_path.write_text(json.dumps(tiny_config(deployment__neighbourhood=True)))
    return config_path, run(config_path, base / "logs", "ref", "--seed", "11")


def test_run_folder_holds_every_output_file(reference):
    _, run_dir = reference
    for pattern in RUN_FILES:
        assert list(run_dir.glob(pattern)), f"{pattern} missing from {run_dir}"
    results = json.loads(results_file(run_dir).read_text())
    assert results["counts"] == {"evaluations": 6, "done": 6, "failed": 0}
    assert results["seed"] == 11 and len(results["top_k"]) == 2
    checks = results["reproducibility_check"]  # the winner's deployed path, replayed
    assert [c["eval_id"] for c in checks] == [results["best"]["eval_id"]]
    assert all(c["status"] == "PASS" for c in checks)
    overfitting = results["overfitting"]
    assert overfitting["n_configurations"] == 6
    assert 0.0 <= overfitting["dsr"]["dsr"] <= 1.0 and overfitting["dsr"]["n_trials"] == 6
    search_best = next(item for item in results["top_k"] if item["search_rank"] == 1)
    assert overfitting["dsr"] == search_best["dsr"]
    # Score what you deploy: the top-k re-scored from scratch with 3 seeds, the winner is the
    # best mean, and every seed counts against it in the ledger.
    means = [item["rescore"]["mean"] for item in results["top_k"]]
    assert means == sorted(means, reverse=True)
    assert all(item["rescore"]["n_seeds"] == 3 for item in results["top_k"])
    statistics = results["statistics"]
    assert statistics["ledger"]["n_trials"] == 6 + 2 * 2 + len(
        (statistics.get("neighbourhood") or {}).get("neighbours", []))
    assert statistics["selection"]["dsr"]["n_trials"] == statistics["ledger"]["n_trials"]
    # The effective count clusters the search's series (the re-scores' seeds are near copies
    # of their configuration, in its cluster); the neighbours count one each beside them.
    effective = statistics["selection"]["effective_trials"]
    assert effective["n_clustered"] == 6
    assert effective["n_unclustered"] == len(statistics["neighbourhood"]["neighbours"])
    assert statistics["selection"]["dsr_effective"]["n_trials"] == (
        effective["n_effective"] + effective["n_unclustered"])
    assert statistics["holdout_looks"] == 1
    neighbourhood = statistics["neighbourhood"]  # each parameter one step away, from scratch
    assert neighbourhood["neighbours"] and neighbourhood["label"] in ("plateau", "spike")
    assert 0 < statistics["holdout"]["permutation"]["p_value"] <= 1
    assert 0.0 <= overfitting["pbo"]["pbo"] <= 1.0
    assert len(overfitting["pbo"]["logits"]) == overfitting["pbo"]["n_combinations"] == 12870
    assert all("holdout_sharpe" in item["holdout"] for item in results["top_k"])
    (best_path,) = run_dir.glob("best_configs_*.json")
    best = json.loads(best_path.read_text())
    assert best["configurations"][0]["eval_id"] == results["best"]["eval_id"]
    assert best["trading_params"] == results["best"]["params"]["trading"]
    assert best["entry_model"]["family"] == "lightgbm"
    assert best["entry_model"]["params"] == results["best"]["params"]["entry_model"]
    assert best["entry_model"]["framework_params"]["deterministic"] is True
    (repro_path,) = run_dir.glob("gpu_repro_*.json")
    repro = json.loads(repro_path.read_text())
    assert repro["seed"] == 11 and repro["config_hash"] == results["config_hash"]
    assert repro["packages"]["lightgbm"] and "gpus" in repro
    with sqlite3.connect(run_dir / "sweep.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT COUNT(*) FROM evaluations WHERE status='done'").fetchone()[0] == 6
        blobs = db.execute("SELECT eval_id, n, data FROM returns WHERE kind='validation'")
        stored = {eval_id: unpack_returns(n, data).tobytes() for eval_id, n, data in blobs}
        holdout = dict(db.execute("SELECT eval_id, n FROM returns WHERE kind='holdout'"))
    assert sorted(stored) == list(range(6))
    for evaluation in results["evaluations"]:  # per-bar OOS returns kept, bit for bit
        digest = hashlib.sha256(stored[evaluation["eval_id"]]).hexdigest()
        assert digest == evaluation["metrics"]["returns_sha256"]
    assert sorted(holdout) == sorted(item["eval_id"] for item in results["top_k"])
    assert set(holdout.values()) == {results["data"]["holdout_bars"]}


def test_the_runs_last_line_is_its_verdict(tmp_path):
    # before the fix `cryptosweep run` ended with the run folder, the verdict only in a file
    config_path = tmp_path / "sweep.json"
    config_path.write_text(json.dumps(tiny_config()))
    done = subprocess.run(
        [sys.executable, "-m", "cryptosweep", "run", "--config", str(config_path), "--log-dir",
         str(tmp_path / "logs"), "--run-name", "r", "--seed", "11"], stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, timeout=300,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert done.returncode == 0, done.stdout
    lines = done.stdout.strip().splitlines()
    report = next((tmp_path / "logs" / "r").glob("sweep_report_*.txt")).read_text()
    heading, reason = report.splitlines()[:2]
    assert lines[-1] == f"{heading}: {reason.strip()}"
    assert lines[-1].startswith("VERDICT: ") and str(tmp_path / "logs" / "r") in lines[-2]


def test_baselines_edge_and_deployment_decision_in_every_output(reference):
    """Flat and buy-and-hold on the trials' own test blocks and holdout, each top-k entry's
    edge over them, and the gate's decision: in the results, the best configs and the first
    lines of the text report, all from the same block."""
    _, run_dir = reference
    results = json.loads(results_file(run_dir).read_text())
    baselines = results["baselines"]
    folds = len(results["data"]["folds"])
    for name in ("flat", "buy_and_hold"):
        assert len(baselines[name]["folds"]) == folds
        assert baselines[name]["holdout"]["holdout_bars"] == results["data"]["holdout_bars"]
    assert baselines["flat"]["score"] == 0.0
    assert all(fold["trades"] == 1 for fold in baselines["buy_and_hold"]["folds"])
    for item in results["top_k"]:
        positive = item["score"] > 0 and item["holdout"]["holdout_sharpe"] > 0
        assert item["edge"]["beats_flat"] is positive
        assert item["edge"]["label"] == (None if positive else "no edge")
    deployment = results["deployment"]
    assert deployment["decision"] in ("approved", "rejected") and deployment["champion"] is None
    assert [c["name"] for c in deployment["criteria"]] == [
        "reproducible", "dsr", "pbo", "holdout_score", "holdout_trades", "holdout_test",
        "stress"]
    dsr = next(c for c in deployment["criteria"] if c["name"] == "dsr")
    selection = results["statistics"]["selection"]
    assert selection["trial_count"] == "effective"  # the default, recorded with the run
    # SR0 from the variance of a Sharpe ratio without skill (the default), recorded with it.
    assert selection["dsr_variance"] == "no_skill"
    assert selection["dsr_effective"]["sharpe_variance"] == pytest.approx(
        1 / (selection["dsr_effective"]["n_obs"] - 1), rel=1e-12)
    assert dsr["value"] == selection["dsr_effective"]["dsr"] == gate_dsr(results)["dsr"]
    assert dsr["threshold"] == 0.95
    (best_path,) = run_dir.glob("best_configs_*.json")
    best = json.loads(best_path.read_text())
    assert best["deployment"] == deployment and best["baselines"] == baselines
    assert best["configurations"][0]["edge"] == results["best"]["edge"]
    report = next(run_dir.glob("sweep_report_*.txt")).read_text().splitlines()
    verdict = "DEPLOYABLE" if deployment["decision"] == "approved" else "NOT DEPLOYABLE"
    assert report[0] == f"VERDICT: {verdict} (deployment gate)"
    assert report[1] == f"  {deployment['reason']}"
    first_blank = report.index("")
    assert report[first_blank - len(deployment["criteria"]):first_blank] == [
        f"  [{'pass' if c['passed'] else 'FAIL'}] {c['text']}" for c in deployment["criteria"]]
    assert any(line.startswith("  buy-and-hold") for line in report)
    log = (run_dir / "sweep_output.log").read_text()
    assert "end of the sweep: 7 evaluation(s) on in-process: " in log


def _champion_of(run_dir: Path, folder: Path) -> Path:
    """A model folder whose manifest (production's format) deploys ``run_dir``'s winner:
    its best-configs entry, seed and rounds, and the objective settings it was made with."""
    results = json.loads(results_file(run_dir).read_text())
    winner = results["best"]
    spec = {"data": results["config"]["data"], "objective": results["config"]["objective"]}
    folder.mkdir(parents=True)
    (folder / "model.txt").write_text("the model\n")
    _save_manifest(folder, {
        "format": "cryptosweep-model/1", "family": winner["params"]["model"],
        "seed": winner["seed"], "rounds": winner["metrics"]["rounds"],
        "configuration": winner, "objective_spec": spec,
        "data": {"bar_interval": results["data"]["bar_interval"]}, "model_file": "model.txt",
        "files": {"model.txt": file_sha256(folder / "model.txt")}})
    return folder


def _save_manifest(folder: Path, manifest: dict) -> None:
    """``manifest.json`` as a save writes it: with the digest of its content."""
    manifest = {key: value for key, value in manifest.items() if key != "digest"}
    (folder / "manifest.json").write_text(json.dumps({**manifest,
                                                      "digest": manifest_digest(manifest)}))


def _judged_against(reference: tuple[Path, Path], tmp_path: Path, name: str,
                    champion: Path) -> dict:
    """The reference run, resumed in a copy with ``deployment.champion_dir``: only the
    champion's re-evaluation runs (everything else is journaled), then the gate decides."""
    _, run_dir = reference
    copy = tmp_path / name
    copy.mkdir()
    (copy / "sweep.db").write_bytes((run_dir / "sweep.db").read_bytes())
    done = cli("run", "--resume", str(copy), "--set", f"deployment.champion_dir={champion}")
    assert done.returncode == 0, done.stderr
    log = (copy / "sweep_output.log").read_text()
    return {"results": json.loads(results_file(copy).read_text()), "log": log}


def test_the_champion_is_re_evaluated_on_this_runs_holdout_with_its_seed(reference, tmp_path):
    """Deployed: this very run's winner. Re-evaluated from its manifest on the same holdout
    bars with its recorded seed, it scores exactly what the winner scored: a tie, which is
    not significantly better (the champion stays); with champion_alpha 1 a tie passes."""
    _, run_dir = reference
    same = _judged_against(reference, tmp_path, "same",
                           _champion_of(run_dir, tmp_path / "champion"))
    results = same["results"]
    assert "end of the sweep: 1 evaluation(s) on in-process: champion" in same["log"]
    champion = results["deployment"]["champion"]
    winner_holdout = results["best"]["holdout"]
    assert champion["holdout"] == winner_holdout  # bit for bit, on the same bars
    assert champion["seed"] == results["best"]["seed"] and champion["notes"] == []
    (versus,) = [c for c in results["deployment"]["criteria"] if c["name"] == "champion"]
    assert not versus["passed"] and versus["value"] == versus["threshold"] == (
        winner_holdout["holdout_sharpe"])
    assert champion["paired_test"]["p_value"] is None or champion["paired_test"]["p_value"] > 0.05
    assert ("not significantly better" in versus["text"]
            or "no paired test" in versus["text"]), versus["text"]
    from cryptosweep.judging.deployment import decide

    lenient = {**results, "config": {**results["config"], "deployment": {
        **results["config"]["deployment"], "champion_alpha": 1.0}}}
    (tie,) = [c for c in decide(lenient, champion)["criteria"] if c["name"] == "champion"]
    assert tie["passed"]


def test_a_champion_that_cannot_be_re_evaluated_fails_its_criterion(reference, tmp_path):
    """Its re-evaluation raises (LightGBM refuses its parameters): the criterion fails with
    the reason, and nothing of it is journaled (a resume tries again)."""
    _, run_dir = reference
    failing = _champion_of(run_dir, tmp_path / "failing_champion")
    manifest = json.loads((failing / "manifest.json").read_text())
    manifest["configuration"]["params"]["entry_model"]["num_leaves"] = -3  # LightGBM refuses
    _save_manifest(failing, manifest)
    judged = _judged_against(reference, tmp_path, "failing", failing)
    (versus,) = [c for c in judged["results"]["deployment"]["criteria"]
                 if c["name"] == "champion"]
    assert not versus["passed"] and judged["results"]["deployment"]["decision"] == "rejected"
    assert versus["text"].startswith("the champion could not be re-evaluated (")
    assert "the champion's re-evaluation failed" in judged["log"]
    # Its keep-gate counts the night as failed (it was "not re-evaluated", never counted: the
    # champion blocked every winner and was never demoted).
    assert judged["results"]["deployment"]["champion"]["reevaluation_failed"] is True
    with sqlite3.connect(tmp_path / "failing" / "sweep.db") as db:  # a failure is no result
        assert not db.execute(
            "SELECT COUNT(*) FROM extra_evaluations WHERE kind = 'champion'").fetchone()[0]


def test_same_seed_twice_gives_byte_identical_results(reference, tmp_path):
    config_path, first = reference
    second = run(config_path, tmp_path, "again", "--seed", "11")
    assert deterministic_bytes(first) == deterministic_bytes(second)


def test_different_seed_gives_different_trials(reference, tmp_path):
    config_path, first = reference
    other = run(config_path, tmp_path, "other", "--seed", "12")
    params = [e["params"] for e in json.loads(results_file(first).read_text())["evaluations"]]
    others = [e["params"] for e in json.loads(results_file(other).read_text())["evaluations"]]
    assert all(a != b for a, b in zip(params, others, strict=True))


def test_one_and_two_dask_workers_give_the_in_process_results(reference, tmp_path):
    config_path, in_process = reference
    one = run(config_path, tmp_path, "one", "--seed", "11", "--workers", "1")
    two = run(config_path, tmp_path, "two", "--seed", "11", "--workers", "2")
    assert deterministic_bytes(one) == deterministic_bytes(in_process)
    assert deterministic_bytes(two) == deterministic_bytes(in_process)
    workers = {e["timing"]["worker"] for e in
               json.loads(results_file(two).read_text())["evaluations"]}
    assert len(workers) == 2, f"expected both dask workers to run trials, got {workers}"
    # The end of the sweep (holdout, re-scores, baselines; then the replay and the
    # neighbourhood) ran on those workers too.
    for run_dir, workers in ((one, 1), (two, 2)):
        log = (run_dir / "sweep_output.log").read_text()
        assert (f"end of the sweep: 7 evaluation(s) on dask LocalCluster of {workers} CPU "
                "worker(s)") in log
        assert re.search(r"end of the sweep: \d+ evaluation\(s\) on dask LocalCluster of "
                         rf"{workers} CPU worker\(s\): rerun-", log)


def test_grid_sweep_covers_the_product_once(tmp_path, write_config):
    config = tiny_config(sweep_type="grid", grid={"points": 2})
    config["parameter_ranges"]["lightgbm"] = {
        "num_leaves": {"type": "int", "low": 4, "high": 8},
        "learning_rate": {"type": "categorical", "choices": [0.1]},
    }
    config["parameter_ranges"]["trading"]["holding_period"] = {
        "type": "categorical", "choices": [6]}
    run_dir = run(write_config(config), tmp_path, "grid")
    evaluations = json.loads(results_file(run_dir).read_text())["evaluations"]
    points = [json.dumps(e["params"], sort_keys=True) for e in evaluations]
    assert len(points) == 2 * 1 * 2 * 1 * 2 * 2 and len(set(points)) == len(points)


def test_existing_run_folder_is_not_overwritten(reference):
    config_path, run_dir = reference
    before = (run_dir / "sweep.db").read_bytes()
    done = cli("run", "--config", str(config_path), "--log-dir", str(run_dir.parent),
               "--run-name", run_dir.name)
    assert done.returncode == 2 and "already holds a sweep" in done.stderr
    assert (run_dir / "sweep.db").read_bytes() == before


def test_failing_trials_are_recorded_with_their_reason_and_the_sweep_goes_on(tmp_path,
                                                                             write_config):
    config = tiny_config(random__n_trials=8, execution__max_failure_fraction=1.0)
    config["parameter_ranges"]["lightgbm"] = {
        "boosting": {"type": "categorical", "choices": ["gbdt", "rf"]},
        "bagging_fraction": {"type": "categorical", "choices": [1.0]},
        "feature_fraction": {"type": "categorical", "choices": [1.0]},
    }  # LightGBM's random forest needs bagging or feature subsampling: those trials fail
    run_dir = run(write_config(config), tmp_path, "failing")
    results = json.loads(results_file(run_dir).read_text())
    failed = [e for e in results["evaluations"] if e["status"] == "failed"]
    done = [e for e in results["evaluations"] if e["status"] == "done"]
    assert failed and done
    assert all(e["params"]["entry_model"]["boosting"] == "rf" for e in failed)
    assert all("ConfigError" in e["error"] and e["score"] is None for e in failed)
    assert results["counts"]["failed"] == len(failed)
    assert all(item["params"]["entry_model"]["boosting"] == "gbdt" for item in results["top_k"])
    report = next(run_dir.glob("sweep_report_*.txt")).read_text()
    assert f"failures ({len(failed)})" in report


def test_reproducibility_check_fails_when_a_stored_result_was_tampered_with(reference, tmp_path):
    _, run_dir = reference
    copy = tmp_path / "tampered"
    copy.mkdir()
    (copy / "sweep.db").write_bytes((run_dir / "sweep.db").read_bytes())
    results = json.loads(results_file(run_dir).read_text())
    best = results["best"]["eval_id"]
    with sqlite3.connect(copy / "sweep.db") as db:
        (metrics,) = db.execute("SELECT metrics FROM evaluations WHERE eval_id = ?",
                                (best,)).fetchone()
        changed = json.loads(metrics)
        changed["fold_sharpe"][0] += 1e-12  # one bit of one fold's Sharpe ratio
        db.execute("UPDATE evaluations SET metrics = ? WHERE eval_id = ?",
                   (json.dumps(changed), best))
        # A result that was stored so (its checksum matches: not damage the journal would
        # catch and repair), as a non-deterministic trial would have stored it.
        row = db.execute(f"SELECT {EVAL_COLUMNS} FROM evaluations WHERE eval_id = ?",
                         (best,)).fetchone()
        db.execute("UPDATE evaluations SET checksum = ? WHERE eval_id = ?",
                   (row_checksum("evaluations", *row), best))
        db.execute("DELETE FROM extra_evaluations WHERE kind = 'repro'")
    done = cli("run", "--resume", str(copy))
    assert done.returncode == 0, done.stderr
    checks = json.loads(results_file(copy).read_text())["reproducibility_check"]
    status = {c["eval_id"]: c["status"] for c in checks}
    assert status[best] == "FAIL"
    assert all(s == "PASS" for eval_id, s in status.items() if eval_id != best)
    report = next(copy.glob("sweep_report_*.txt")).read_text()
    assert f"eval {best}: FAIL" in report


LEAN_RUN = """
import sys
from cryptosweep.cli import main
code = main(sys.argv[1:])
print(code, "torch" in sys.modules, "distributed" in sys.modules)
"""


def test_an_in_process_sweep_without_a_torch_model_imports_neither_torch_nor_dask(tmp_path):
    # Importing torch (and switching on its deterministic algorithms) and dask's distributed
    # cost seconds per process: neither is needed where no torch model and no cluster run.
    config_path = tmp_path / "sweep.json"
    config_path.write_text(json.dumps(tiny_config(random__n_trials=2)))
    done = subprocess.run(
        [sys.executable, "-c", LEAN_RUN, "run", "--config", str(config_path), "--log-dir",
         str(tmp_path), "--run-name", "lean", "--seed", "11", "--no-progress"],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-3:] == ["0", "False", "False"], done.stdout
    info = json.loads(next((tmp_path / "lean").glob("gpu_repro_*.json")).read_text())
    assert info["torch"] == {"imported": False}


def test_a_calmar_ratio_that_overflows_is_stored_as_null_and_the_sweep_finishes(
        tmp_path, write_config, capsys):
    """Synthetic mechanics: 1-minute candles rising 1 % a bar (a pump). A fold of 800 minutes
    that doubles annualises to more than the largest float, so its Calmar ratio is infinite.
    Such a trial's metrics once stopped the sweep with a JSON traceback at the first journal
    write, on every resume too; a metric that is not finite is now null, as results hold it."""
    import numpy as np
    import pandas as pd

    from tests.support import cli_in_process

    rng = np.random.default_rng(0)
    n = 2000
    close = 100 * np.exp(np.cumsum(0.01 + 0.002 * rng.standard_normal(n)))
    opens = np.concatenate([[100.0], close[:-1]])
    stamps = pd.date_range("2024-01-01", periods=n, freq="1min", tz="UTC")
    pd.DataFrame({
        "timestamp": stamps.strftime("%Y-%m-%dT%H:%M:%SZ"), "open": opens,
        "high": np.maximum(opens, close) * 1.001, "low": np.minimum(opens, close) * 0.999,
        "close": close, "volume": 1 + rng.random(n),
    }).to_csv(tmp_path / "pump.csv", index=False)
    config_path = write_config(tiny_config(data__path=str(tmp_path / "pump.csv")))
    done = cli_in_process(capsys, "run", "--config", str(config_path), "--log-dir",
                          str(tmp_path / "logs"), "--run-name", "pump", "--no-progress")
    assert done.returncode == 0, done.stderr
    run_dir = tmp_path / "logs" / "pump"
    stored = [json.loads(text) for (text,) in sqlite3.connect(run_dir / "sweep.db").execute(
        "SELECT metrics FROM evaluations WHERE metrics IS NOT NULL")]
    calmar = [fold["calmar"] for metrics in stored for fold in metrics["folds"]]
    assert None in calmar  # the overflow happened, and is null
    results = json.loads(results_file(run_dir).read_text())
    assert results["counts"]["done"] == len(stored) >= 6
