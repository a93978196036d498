"""Every run counts in the trial ledger it shares, and every later look at its holdout is
recorded where its sweep counted (the nightly's layout: run folders in reports/, the ledger
beside the champion in models/)."""

from __future__ import annotations

import dataclasses
import gzip
import json
import logging
import shutil
import sqlite3

import pytest

from cryptosweep import run_sweep
from cryptosweep.core.config_files import load_config
from cryptosweep.core.errors import InfrastructureError
from cryptosweep.execution.worker import Outcome
from cryptosweep.records.evaluations import EvalRequest
from cryptosweep.records.journal import Journal
from cryptosweep.sweep.evidence import SearchLedger
from cryptosweep.trading.data import load_ohlcv, sample_data_path
from tests.support import cli_in_process, kill_when, tiny_config

pytestmark = pytest.mark.slow


def _looks(ledger) -> list[tuple[str, str, str]]:
    with sqlite3.connect(ledger) as db:
        return db.execute("SELECT run, source, what FROM looks ORDER BY looked_at").fetchall()


def test_two_runs_of_one_name_both_count_and_later_looks_are_recorded_there(tmp_path, capsys):
    """The same --run-name in two log folders (as every walk-forward's window_01) keyed the
    ledger's rows by the name alone: the second run's trials and its look were dropped and
    never counted. evaluate and train --rank on a run whose ledger sits beside the champion
    recorded nothing ("no trial ledger beside ..."), and two evaluate calls of two ranks were
    one look."""
    models = tmp_path / "models"
    config = load_config(raw=tiny_config(
        random__n_trials=3, deployment__rescore_seeds=1,
        deployment__champion_dir=str(models / "champion")))
    runs = [run_sweep(config=config, seed=seed, log_dir=tmp_path / folder, run_name="same")
            for seed, folder in ((1, "reports_a"), (2, "reports_b"))]
    first, second = (run.results["statistics"] for run in runs)
    assert first["ledger"]["n_runs"] == 1 and second["ledger"]["n_runs"] == 2
    assert second["ledger"]["n_trials"] > first["ledger"]["n_trials"]
    assert (first["holdout_looks"], second["holdout_looks"]) == (1, 2)

    ledger = models / "trials.db"
    run_dir = runs[1].run_dir
    for rank in ("1", "2"):
        done = cli_in_process(capsys, "evaluate", str(run_dir), "--rank", rank, "--data",
                              str(sample_data_path()))
        assert done.returncode == 0, done.stderr
        assert "no trial ledger" not in done.stderr
    done = cli_in_process(capsys, "train", str(run_dir), "--rank", "2", "--until", "holdout",
                          "--out", str(models / "second"))
    assert done.returncode == 0, done.stderr
    looks = _looks(ledger)
    assert [source for _, source, _ in looks] == ["sweep", "sweep", "evaluate", "evaluate",
                                                  "train"]
    assert len({run for run, _, _ in looks}) == 2  # the two runs of one name, apart
    assert "(rank 1," in looks[2][2] and "(rank 2," in looks[3][2]
    # The second's model folder on its holdout: its look said "rank 1" (a helper's attack).
    first_bar = runs[1].results["data"]["holdout_first_bar"]
    done = cli_in_process(capsys, "evaluate", str(models / "second"), "--data",
                          str(sample_data_path()), "--start", first_bar)
    assert done.returncode == 0, done.stderr
    assert _looks(ledger)[5][1:] == ("evaluate", f"evaluate {sample_data_path()} (rank 2, "
                                     f"{first_bar} .. 2022-10-31T23:00:00+00:00)")

    # The market is its candles, not its file's name (an attack): a renamed copy of the same
    # candles is a look; another market's file of the same name, prices doubled, is not.
    renamed = tmp_path / "renamed.csv.gz"
    renamed.write_bytes(sample_data_path().read_bytes())
    other = tmp_path / "other" / sample_data_path().name
    other.parent.mkdir()
    rows = gzip.decompress(sample_data_path().read_bytes()).decode().splitlines()
    doubled = [rows[0]] + [",".join([t, *(f"{2 * float(v):.8g}" for v in prices), volume, c])
                           for t, *prices, volume, c in (row.split(",") for row in rows[1:])]
    other.write_bytes(gzip.compress(("\n".join(doubled) + "\n").encode()))
    for data in (renamed, other):
        done = cli_in_process(capsys, "evaluate", str(run_dir), "--rank", "1", "--data",
                              str(data))
        assert done.returncode == 0, done.stderr
    assert [source for _, source, _ in _looks(ledger)[6:]] == ["evaluate"]
    assert str(renamed) in _looks(ledger)[6][2]

    # The nightly's copy of a rejected run's best configs (models/rejected/<run>/): its
    # --rank 2 look went unrecorded ("no trial ledger beside"), named after the file.
    copy = models / "rejected" / "same"
    copy.mkdir(parents=True)
    (best,) = run_dir.glob("best_configs_*.json")
    shutil.copy(best, copy / best.name)
    done = cli_in_process(capsys, "train", str(copy / best.name), "--rank", "2", "--out",
                          str(tmp_path / "from_copy"))
    assert done.returncode == 0 and "no trial ledger" not in done.stderr, done.stderr
    assert _looks(ledger)[7] == ("same", "train", "--rank 2")


def test_a_run_killed_and_never_resumed_still_counts_against_later_winners(tmp_path, caplog):
    """Trials reached the ledger only at the end of a sweep: a run killed and never resumed
    (whose trials a person may have watched, then deleted) counted for nothing against the
    next winner on the same candles. Each evaluation is now counted as it finishes."""
    models, reports = tmp_path / "models", tmp_path / "reports"
    raw = tiny_config(random__n_trials=8, deployment__rescore_seeds=1,
                      deployment__champion_dir=str(models / "champion"))
    path = tmp_path / "sweep.json"
    path.write_text(json.dumps(raw))
    killed = reports / "killed"
    kill_when(killed / "sweep.db", 3, ["run", "--config", str(path), "--log-dir", str(reports),
                                       "--run-name", "killed", "--seed", "5"])
    with sqlite3.connect(killed / "sweep.db") as db:
        finished = {f"eval:{eval_id}" for (eval_id,) in db.execute(
            "SELECT eval_id FROM evaluations WHERE status = 'done'")}
    shutil.rmtree(killed)
    ledger = models / "trials.db"
    with sqlite3.connect(ledger) as db:
        counted = {key for (key,) in db.execute(
            "SELECT key FROM trials WHERE run LIKE 'killed@%' AND kind = 'search'")}
    assert len(finished) >= 3 and finished <= counted

    with caplog.at_level(logging.INFO, logger="cryptosweep.sweep.evidence"):
        later = run_sweep(config=load_config(raw=raw), seed=6, log_dir=reports,
                          run_name="later")
    count = later.results["statistics"]["ledger"]
    # The run log says where a count larger than the night's own comes from.
    assert (f"{count['n_trials']} trial(s) count against the winner: the distinct "
            f"configurations and extra seeds of {count['n_evaluations']} evaluation(s) by 2 "
            "run(s)") in caplog.text
    with sqlite3.connect(ledger) as db:
        configs = {run.split("@")[0]: n for run, n in db.execute(
            "SELECT run, COUNT(DISTINCT config_key) FROM trials GROUP BY run")}
        distinct = db.execute("SELECT COUNT(DISTINCT config_key) FROM trials").fetchone()[0]
    assert count["n_runs"] == 2 and set(configs) == {"killed", "later"}
    assert count["n_trials"] == distinct > configs["later"]


def test_a_ledger_that_cannot_be_written_is_the_machines_fault_not_the_trials(tmp_path):
    """The ledger is written before the journal records the evaluation: when it fails, the
    evaluation is not a result (the sweep stops as for a full disk, and a resume runs it)."""
    config = load_config(raw=tiny_config())
    candles = load_ohlcv(sample_data_path())
    journal = Journal(tmp_path / "sweep.db")
    journal.set_meta(created_at=1.0, data={
        "path": str(sample_data_path()), "bar_interval": "1h",
        "first_bar": candles.index[0].isoformat(), "last_bar": candles.index[-1].isoformat()})
    ledger = SearchLedger(config, tmp_path, journal)
    done = Outcome(0, "done", 0.5, {}, None, "w", "cpu", 0.0, 1.0, [0.01, -0.02, 0.03])
    ledger.record(EvalRequest(0, 0, {"model": "lightgbm"}, 1.0, 7), done)
    ledger.close()  # as a ledger whose file went away under the sweep
    with pytest.raises(InfrastructureError, match=r"trials\.db could not be written .*"
                       r"evaluation 1 is not counted as a result"):
        ledger.record(EvalRequest(1, 1, {"model": "lightgbm"}, 1.0, 7),
                      dataclasses.replace(done, eval_id=1))
    journal.close()
