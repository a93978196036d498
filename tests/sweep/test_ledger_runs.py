"""Every run counts in the trial ledger it shares, and every later look at its holdout is
recorded where its sweep counted (the nightly's layout: run folders in reports/, the ledger
beside the champion in models/)."""

from __future__ import annotations

import sqlite3

import pytest

from cryptosweep import run_sweep
from cryptosweep.core.config_files import load_config
from cryptosweep.trading.data import sample_data_path
from tests.support import cli_in_process, tiny_config

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
    done = cli_in_process(capsys, "train", str(run_dir), "--rank", "2", "--out",
                          str(tmp_path / "second"))
    assert done.returncode == 0, done.stderr
    looks = _looks(ledger)
    assert [source for _, source, _ in looks] == ["sweep", "sweep", "evaluate", "evaluate",
                                                  "train"]
    assert len({run for run, _, _ in looks}) == 2  # the two runs of one name, apart
    assert "(rank 1," in looks[2][2] and "(rank 2," in looks[3][2]
