"""Resume: a sweep killed with SIGKILL at a random point ends with the uninterrupted results,
and never runs a finished evaluation twice. Resuming with another config or seed is refused."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import (
    cli,
    cli_in_process,
    deterministic_bytes,
    done_count,
    kill_when,
    tiny_config,
)

pytestmark = pytest.mark.slow

N_TRIALS = 10


@pytest.fixture(scope="module")
def config_and_reference(tmp_path_factory):
    base = tmp_path_factory.mktemp("resume")
    config_path = base / "sweep.json"
    config_path.write_text(json.dumps(tiny_config(random__n_trials=N_TRIALS)))
    done = cli("run", "--config", str(config_path), "--log-dir", str(base), "--run-name",
               "reference", "--seed", "5")
    assert done.returncode == 0, done.stderr
    return config_path, base / "reference"


@pytest.mark.parametrize("workers", ["0", "2"])
def test_sigkill_then_resume_equals_an_uninterrupted_run(config_and_reference, tmp_path, workers):
    config_path, reference = config_and_reference
    kill_at = random.randint(1, N_TRIALS - 2)
    run_dir = tmp_path / "killed"
    finished_at_kill = kill_when(run_dir / "sweep.db", kill_at, [
        "run", "--config", str(config_path), "--log-dir", str(tmp_path), "--run-name", "killed",
        "--seed", "5", "--workers", workers,
    ])
    assert finished_at_kill < N_TRIALS, f"killed too late (kill_at={kill_at})"
    assert not list(run_dir.glob("sweep_results_*.json"))
    with sqlite3.connect(run_dir / "sweep.db") as db:
        finished_before = {row[0] for row in db.execute(
            "SELECT eval_id FROM evaluations WHERE status IN ('done', 'failed')")}

    resumed = cli("run", "--resume", str(run_dir), "--workers", workers)
    assert resumed.returncode == 0, resumed.stderr
    assert deterministic_bytes(run_dir) == deterministic_bytes(reference), (
        f"resumed run differs from the uninterrupted one (killed after {finished_at_kill})")
    with sqlite3.connect(run_dir / "sweep.db") as db:
        attempts = db.execute(
            "SELECT eval_id, COUNT(*), SUM(outcome IS NOT NULL) FROM attempts GROUP BY eval_id"
        ).fetchall()
    assert len(attempts) == N_TRIALS
    for eval_id, n_attempts, n_finished in attempts:
        assert n_finished == 1, f"evaluation {eval_id} finished {n_finished} times"
        if eval_id in finished_before:
            assert n_attempts == 1, f"finished evaluation {eval_id} was run again after resume"


def _extra_evaluations(db) -> set[tuple[str, int]]:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return set(conn.execute("SELECT kind, eval_id FROM extra_evaluations"))
    except sqlite3.OperationalError:  # not created yet
        return set()


def test_sigkill_during_the_end_of_the_sweep_then_resume_redoes_nothing(
        config_and_reference, tmp_path):
    """Killed while the top-k's holdout and re-runs are evaluated (in-process), resumed on 2
    dask workers: what was journaled is not evaluated again, and the results are the
    uninterrupted run's, byte for byte."""
    config_path, reference = config_and_reference
    run_dir = tmp_path / "killed"
    db = run_dir / "sweep.db"
    process = subprocess.Popen(
        [sys.executable, "-m", "cryptosweep", "run", "--config", str(config_path), "--log-dir",
         str(tmp_path), "--run-name", "killed", "--seed", "5", "--workers", "0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 240
    try:
        while not _extra_evaluations(db):
            assert process.poll() is None, "the sweep ended before it could be killed"
            assert time.monotonic() < deadline, "the sweep made no progress"
            time.sleep(0.005)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    journaled = _extra_evaluations(db)
    assert not list(run_dir.glob("sweep_results_*.json")), "killed too late"
    assert done_count(db) == N_TRIALS and 1 <= len(journaled) < 5

    resumed = cli("run", "--resume", str(run_dir), "--workers", "2")
    assert resumed.returncode == 0, resumed.stderr
    assert deterministic_bytes(run_dir) == deterministic_bytes(reference)
    waves = [line.split(": ")[-1].split(", ")
             for line in (run_dir / "sweep_output.log").read_text().splitlines()
             if "end of the sweep: " in line and "evaluation(s) on dask" in line]
    resumed_tasks = {task for wave in waves for task in wave}
    reference_tasks = {task for line in (reference / "sweep_output.log").read_text().splitlines()
                       if "end of the sweep: " in line
                       for task in line.split(": ")[-1].split(", ")}
    names = {"holdout": "holdout", "repro": "rerun", "baselines": "baselines"}
    for kind, eval_id in journaled:
        if kind in ("baselines", "champion"):
            task = kind
        elif kind in names:
            task = f"{names[kind]}-{eval_id}"
        else:  # rescore:<i> / neighbour:<j>
            task = f"{kind.replace(':', '')}-{eval_id}"
        assert task not in resumed_tasks, f"{task} evaluated again"
    assert resumed_tasks == reference_tasks - {
        f"{k.replace(':', '')}-{e}" if k not in ("baselines", "champion") else k
        for k, e in journaled} - {f"rerun-{e}" for k, e in journaled if k == "repro"} - {
        f"holdout-{e}" for k, e in journaled if k == "holdout"}


def test_resume_of_a_finished_run_runs_nothing_and_rewrites_the_same_results(
        config_and_reference, tmp_path):
    _, reference = config_and_reference
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("sweep.db",):
        (copy / name).write_bytes((reference / name).read_bytes())
    done = cli("run", "--resume", str(copy / "sweep.db"))
    assert done.returncode == 0, done.stderr
    assert deterministic_bytes(copy) == deterministic_bytes(reference)
    with sqlite3.connect(copy / "sweep.db") as db:
        assert db.execute("SELECT MAX(attempt) FROM attempts").fetchone()[0] == 1
    # Its wall time ran from the reference's creation, pause included (16.7 s read 84.5 s):
    # the report says it was resumed and what the session itself took.
    from tests.support import results_file

    run = json.loads(results_file(copy).read_text())["run"]
    assert len(run["resumed_at"]) == 1 and 0 < run["session_s"] < run["wall_time_s"]
    (text,) = copy.glob("sweep_report_*.txt")
    assert (f"pauses included (resumed 1 time; the last session {run['session_s']:.1f} s)"
            in text.read_text())
    reference_run = json.loads(results_file(reference).read_text())["run"]
    assert reference_run["resumed_at"] == [] and reference_run["session_s"] == pytest.approx(
        reference_run["wall_time_s"])


@pytest.mark.parametrize("flag", ["--run-name", "--log-dir"])
def test_resume_refuses_a_folder_flag_it_would_ignore(config_and_reference, tmp_path, flag,
                                                      capsys):
    """`run --resume R --run-name other --log-dir xx` ignored both and exited 0."""
    _, reference = config_and_reference
    value = "other" if flag == "--run-name" else str(tmp_path / "xx")
    done = cli_in_process(capsys, "run", "--resume", str(reference), flag, value)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert f"{flag} has no effect on --resume" in lines[0]
    assert not (tmp_path / "xx").exists()


def test_a_run_journaled_before_a_setting_existed_resumes_as_it_was_made(
        config_and_reference, tmp_path):
    """A journal written before ``hyperband.overlap_brackets`` existed has no such key: the run
    was made one bracket at a time, and resuming it must not switch to the new default."""
    from tests.support import results_file

    _, reference = config_and_reference
    for name, strip in (("old", True), ("new", False)):
        copy = tmp_path / name
        copy.mkdir()
        (copy / "sweep.db").write_bytes((reference / "sweep.db").read_bytes())
        if strip:
            with sqlite3.connect(copy / "sweep.db") as db:
                (text,) = db.execute("SELECT value FROM meta WHERE key = 'config'").fetchone()
                config = json.loads(text)
                del config["hyperband"]["overlap_brackets"]
                db.execute("UPDATE meta SET value = ? WHERE key = 'config'", (json.dumps(config),))
        done = cli("run", "--resume", str(copy))
        assert done.returncode == 0, done.stderr
        resumed = json.loads(results_file(copy).read_text())["config"]["hyperband"]
        assert resumed["overlap_brackets"] is (not strip)


def test_resume_with_another_config_or_seed_is_refused(config_and_reference, tmp_path, capsys):
    _, reference = config_and_reference
    before = (reference / "sweep.db").read_bytes()
    other = tmp_path / "other.json"
    other.write_text(json.dumps(tiny_config(random__n_trials=N_TRIALS + 1)))
    done = cli_in_process(capsys, "run", "--resume", str(reference), "--config", str(other))
    assert done.returncode == 2
    assert "differs from the one this run was started with" in done.stderr
    # It names what differs (a new user: the README promises one line naming the field).
    assert "in what decides its results (random.n_trials); resume" in done.stderr
    done = cli_in_process(capsys, "run", "--resume", str(reference), "--seed", "6")
    assert done.returncode == 2 and "--seed 6 differs from the run's seed 5" in done.stderr
    done = cli_in_process(capsys, "run", "--resume", str(tmp_path / "nowhere"))
    assert done.returncode == 2 and "no journal at" in done.stderr
    assert (reference / "sweep.db").read_bytes() == before


def test_resume_with_a_config_that_names_another_seed_is_refused(config_and_reference,
                                                                  tmp_path, capsys):
    """`--resume R --set seed=6` (or a --config whose seed is 6) on a run of seed 5 exited 0:
    the seed was ignored, and the results recorded 6 in their config (a helper's attack)."""
    _, reference = config_and_reference
    before = sorted((p.name, p.read_bytes()) for p in reference.iterdir() if p.is_file())
    other = tmp_path / "seeded.json"
    other.write_text(json.dumps(tiny_config(random__n_trials=N_TRIALS, seed=6)))
    for args in (["--set", "seed=6"], ["--config", str(other)]):
        done = cli_in_process(capsys, "run", "--resume", str(reference), *args)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1, done.stderr
        assert "the given config's seed 6 differs from the run's seed 5" in lines[0]
    assert sorted((p.name, p.read_bytes()) for p in reference.iterdir() if p.is_file()) == before


def journal_with_meta(run_dir: Path, copy: Path, key: str, edit: Callable[[dict], None]
                      ) -> Path:
    """A copy of ``run_dir``'s journal in the run folder ``copy``, its ``key`` meta (a JSON
    object) changed in place by ``edit``: a run as an older version journaled it."""
    copy.mkdir()
    (copy / "sweep.db").write_bytes((run_dir / "sweep.db").read_bytes())
    with contextlib.closing(sqlite3.connect(copy / "sweep.db")) as db, db:
        (text,) = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        value = json.loads(text)
        edit(value)
        db.execute("UPDATE meta SET value = ? WHERE key = ?", (json.dumps(value), key))
    return copy


def test_resume_refuses_to_rank_trials_on_two_annualisations(config_and_reference, tmp_path,
                                                             capsys):
    """A data range of a market closed at weekends was annualised with its own candles, now
    with its whole file's: a run started before, resumed after, would rank trials scored on
    two scales (8,760 against 6,201 bars a year for EURUSD windows) without a word."""
    _, reference = config_and_reference
    copy = journal_with_meta(reference, tmp_path / "older", "data",
                             lambda data: data.update(periods_per_year=6201.33))
    before = (copy / "sweep.db").read_bytes()
    done = cli_in_process(capsys, "run", "--resume", str(copy))
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert "annualised its bars with 6,201.3 a year, this version counts 8,760.0" in lines[0]
    # Not one cause of two: a whole file's 6,201 is 6,199 since the count by whole weeks.
    assert "over whole weeks" in lines[0], lines[0]
    assert (copy / "sweep.db").read_bytes() == before


def test_resume_with_another_fidelity_is_refused_in_one_line(config_and_reference, capsys):
    _, reference = config_and_reference
    before = (reference / "sweep.db").read_bytes()
    done = cli_in_process(capsys, "run", "--resume", str(reference), "--set",
                          "objective.fidelity=folds")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and ("objective.fidelity folds differs from the run's rounds"
                                in lines[0]), lines
    assert (reference / "sweep.db").read_bytes() == before


def test_a_hyperband_run_made_with_rounds_is_not_resumed_with_the_new_default(
        config_and_reference, tmp_path, capsys):
    """A Hyperband run journaled before ``folds`` became Hyperband's default has no fidelity
    in its config (``rounds`` was left out): ``--resume`` with a config that names none (now
    ``folds``) is refused in one line that says how to resume it, before anything changes."""
    _, reference = config_and_reference

    def as_hyperband(config: dict) -> None:
        assert "fidelity" not in config["objective"]
        config["sweep_type"] = "hyperband"

    old = journal_with_meta(reference, tmp_path / "old", "config", as_hyperband)
    before = (old / "sweep.db").read_bytes()
    given = tmp_path / "hyperband.json"
    given.write_text(json.dumps(tiny_config(random__n_trials=N_TRIALS, sweep_type="hyperband")))
    done = cli_in_process(capsys, "run", "--resume", str(old), "--config", str(given))
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert "objective.fidelity folds differs from the run's rounds" in lines[0]
    assert "name objective.fidelity: rounds in the config" in lines[0]
    assert (old / "sweep.db").read_bytes() == before


def test_set_on_a_resume_keeps_the_fidelity_a_stored_hyperband_run_was_made_with(tmp_path):
    """``--resume DIR --set ...`` applies the overrides to the journaled config: a Hyperband
    run made with rounds (no fidelity in its stored config) stays rounds, not the new default
    a fresh config would get."""
    from cryptosweep.core.config_files import load_config
    from cryptosweep.records.inspection import JournalInfo
    from cryptosweep.sweep.opening import _resume_config

    made = load_config(raw=tiny_config(sweep_type="hyperband"), stored=True).canonical()
    assert "fidelity" not in made["objective"]
    journal = JournalInfo(db=tmp_path / "sweep.db", config=made, seed=5, timestamp="t",
                          status="running", data=None)
    config, seed = _resume_config(journal, None, None, ["execution.workers=2"])
    assert (config.objective.fidelity, config.execution.workers, seed) == ("rounds", 2, 5)


def test_resume_on_changed_data_is_refused(tmp_path, write_config):
    from cryptosweep.trading.data import sample_data_path

    data = tmp_path / "candles.csv.gz"
    data.write_bytes(sample_data_path().read_bytes())
    config_path = write_config(tiny_config(random__n_trials=2))
    done = cli("run", "--config", str(config_path), "--data", str(data), "--log-dir",
               str(tmp_path), "--run-name", "r")
    assert done.returncode == 0, done.stderr
    text = gzip.decompress(data.read_bytes()).decode().splitlines()
    data.write_bytes(gzip.compress("\n".join(text[:-24]).encode() + b"\n"))
    done = cli("run", "--resume", str(tmp_path / "r"))
    assert done.returncode == 2 and "changed since the run started" in done.stderr


def test_resume_whose_candles_moved_says_where_they_must_be(config_and_reference, tmp_path,
                                                          capsys):
    """A project moved to another folder: the resume failed with a bare 'no such file'.
    It names the run's path and what to do; nothing of the run changes."""
    _, reference = config_and_reference
    gone = tmp_path / "data" / "candles.csv.gz"
    copy = journal_with_meta(reference, tmp_path / "moved", "config",
                             lambda config: config["data"].update(path=str(gone)))
    before = (copy / "sweep.db").read_bytes()
    done = cli_in_process(capsys, "run", "--resume", str(copy))
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert f"not at {gone} any more" in line and "put them back" in line, line
    assert (copy / "sweep.db").read_bytes() == before
    assert sorted(p.name for p in copy.iterdir()) == ["sweep.db"]


def test_resume_whose_evidence_market_moved_says_where_it_must_be(tmp_path):
    """Another market's candles (evidence.markets) move with a project too: refused before the
    run's folder is locked, naming them, not at the sweep's end with a bare 'no such file'."""
    from cryptosweep.core.config_files import validate_config
    from cryptosweep.core.errors import ResumeError
    from cryptosweep.sweep.opening import check_candles_in_place
    from cryptosweep.trading.data import sample_data_path

    config = validate_config(tiny_config(evidence={"markets": [
        {"name": "here", "data": {"path": str(sample_data_path())}},
        {"name": "moved", "data": {"path": str(tmp_path / "gone.csv")}}]}), "test")
    with pytest.raises(ResumeError, match=f"evidence market moved's candles are not at "
                                          f"{tmp_path / 'gone.csv'} any more"):
        check_candles_in_place(tmp_path / "r", config)


def test_a_holdout_journaled_with_the_old_spans_is_evaluated_again_on_resume(
        config_and_reference, tmp_path):
    """A run journaled before the permutation test's spans counted only the bars a trade held
    (its holdout results carry ``holdout_trade_spans``, a time exit's bar included), resumed by
    this version: its holdouts are evaluated again, so the p-value is of one definition, and
    the run ends byte-identical to one run from the start by this version (a review)."""
    from cryptosweep.records.journal import Journal

    _, reference = config_and_reference
    copy = tmp_path / "older"
    copy.mkdir()
    (copy / "sweep.db").write_bytes((reference / "sweep.db").read_bytes())
    journal = Journal(copy / "sweep.db")
    try:
        holdouts = journal.get_extra("holdout")
        assert holdouts
        for eval_id, metrics in holdouts.items():
            held = metrics.pop("holdout_held_spans")
            metrics["holdout_trade_spans"] = [[start, length + 1, side]
                                              for start, length, side in held]
            journal.put_extra("holdout", eval_id, metrics)
    finally:
        journal.close()
    done = cli("run", "--resume", str(copy))
    assert done.returncode == 0, done.stderr
    assert deterministic_bytes(copy) == deterministic_bytes(reference)
    journal = Journal(copy / "sweep.db")
    try:
        assert all("holdout_held_spans" in m for m in journal.get_extra("holdout").values())
    finally:
        journal.close()


# ----------------------------------------------------------- damaged journals (checksums)


def _damage(db, score_of=None, blob_of=None, params_of=None, rescore=False):
    with sqlite3.connect(db) as conn:
        if rescore:  # the first re-score's returns, one value changed by 1e-4
            from cryptosweep.records.integrity import pack_returns, unpack_returns

            kind, eval_id, n, blob = conn.execute(
                "SELECT kind, eval_id, n, data FROM extra_returns WHERE kind LIKE 'rescore:%' "
                "ORDER BY kind, eval_id").fetchone()
            values = unpack_returns(n, blob).copy()
            values[len(values) // 2] += 1e-4
            conn.execute("UPDATE extra_returns SET data = ? WHERE kind = ? AND eval_id = ?",
                         (pack_returns(values)[1], kind, eval_id))
        if score_of is not None:  # one result changed on disk, by 1e-4
            conn.execute("UPDATE evaluations SET score = score + 1e-4 WHERE eval_id = ?",
                         (score_of,))
        if blob_of is not None:  # a returns blob of random bytes
            conn.execute("UPDATE returns SET data = ? WHERE kind = 'validation' AND eval_id = ?",
                         (random.Random(blob_of).randbytes(300), blob_of))
        if params_of is not None:  # valid JSON, other parameters
            (text,) = conn.execute("SELECT params FROM trials WHERE trial_id = ?",
                                   (params_of,)).fetchone()
            params = json.loads(text)
            params["trading"]["threshold"] += 0.01
            conn.execute("UPDATE trials SET params = ? WHERE trial_id = ?",
                         (json.dumps(params), params_of))
    conn.close()


def _folder_state(folder):
    """Every file's bytes and modification time, and the folder's own."""
    return (folder.stat().st_mtime_ns,
            {p.name: (p.read_bytes(), p.stat().st_mtime_ns)
             for p in sorted(folder.rglob("*")) if p.is_file()})


def test_a_damaged_result_is_repaired_by_resume_to_the_undamaged_results(
        config_and_reference, tmp_path):
    """A score changed by 1e-4 was resumed and reported as if nothing happened; a returns blob
    of random bytes ended resume in a zlib traceback; a re-score's returns changed by 1e-4
    (what the winner's deflated Sharpe ratio is computed from) went unnoticed. Resume names
    them, runs those two evaluations and that re-score again with their recorded seeds and
    ends as the undamaged run."""
    _, reference = config_and_reference
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "sweep.db").write_bytes((reference / "sweep.db").read_bytes())
    _damage(copy / "sweep.db", score_of=3, blob_of=6, rescore=True)
    done = cli("run", "--resume", str(copy), "--no-progress")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    (line,) = [line for line in done.stderr.splitlines() if "damaged row" in line]
    assert "3 damaged rows: evaluation 3 (table evaluations)" in line
    assert "the validation returns of evaluation 6 (table returns)" in line
    assert "(table extra_returns): its content does not match its checksum" in line
    assert "runs them again with their recorded seeds" in line
    assert deterministic_bytes(copy) == deterministic_bytes(reference)
    with sqlite3.connect(copy / "sweep.db") as db:
        attempts = dict(db.execute("SELECT eval_id, COUNT(*) FROM attempts GROUP BY eval_id"))
    assert set(attempts) == set(range(N_TRIALS)) and set(attempts.values()) == {1}


def test_report_export_and_the_explorer_refuse_a_damaged_journal_with_one_line(
        config_and_reference, tmp_path):
    """A returns blob of random bytes was a zlib traceback in report and in read_trial."""
    import shutil

    from cryptosweep.explore import RunReadError
    from cryptosweep.explore.trial import read_trial

    _, reference = config_and_reference
    run_dir = tmp_path / "run"
    shutil.copytree(reference, run_dir)
    _damage(run_dir / "sweep.db", blob_of=4)
    before = _folder_state(run_dir)
    for command in (["report", str(run_dir)], ["export-optuna", str(run_dir)]):
        done = cli(*command)
        assert done.returncode == 2, done.stderr[-3000:]
        assert "Traceback" not in done.stderr
        (line,) = done.stderr.strip().splitlines()
        assert line.startswith(f"cryptosweep: error: {command[0]}: journal ")
        assert "1 damaged row: the validation returns of evaluation 4 (table returns): its " \
               "returns cannot be decoded" in line and "--resume" in line
    assert _folder_state(run_dir) == before, "refused before anything was written"
    with pytest.raises(RunReadError, match=r"validation returns of evaluation 4 \(table "
                       "returns\\)"):
        read_trial(run_dir, 4)
    _damage(run_dir / "sweep.db", score_of=2)
    with pytest.raises(RunReadError, match=r"evaluation 2 \(table evaluations\): its content "
                       "does not match its checksum"):
        read_trial(run_dir, 5)


def test_a_rewritten_trial_is_refused_before_anything_changes(config_and_reference, tmp_path):
    """A rewritten params row was refused only after the run folder had been changed (the
    lock, the WAL, the log): the read-only checks now come first."""
    import shutil

    _, reference = config_and_reference
    run_dir = tmp_path / "run"
    shutil.copytree(reference, run_dir)
    _damage(run_dir / "sweep.db", params_of=2, score_of=5)
    time.sleep(0.05)  # a change now would show in the modification times
    before = _folder_state(run_dir)
    done = cli("run", "--resume", str(run_dir))
    assert done.returncode == 2, done.stderr[-3000:]
    (line,) = done.stderr.strip().splitlines()
    assert "trial 2 (table trials): its content does not match its checksum" in line
    assert "so this cannot be repaired" in line
    assert _folder_state(run_dir) == before


def _in_database_file(db: Path) -> int:
    """Finished evaluations in the database file alone (what a lost -wal leaves)."""
    import contextlib

    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro&immutable=1",
                                                uri=True)) as conn:
            return conn.execute("SELECT COUNT(*) FROM evaluations WHERE status = 'done'"
                                ).fetchone()[0]
    except sqlite3.DatabaseError:  # not there yet, or a page being written
        return 0


def test_a_lost_wal_and_a_kill_keep_what_was_checkpointed(config_and_reference, tmp_path):
    """``sweep.db-wal`` deleted mid-run and the process killed: every evaluation was lost
    (nothing was checkpointed) and the folder could be neither resumed nor reused. Now the
    database holds what was checkpointed (here after every commit, where a real sweep waits
    ``CHECKPOINT_SECONDS``), resume says what was lost, runs it again and ends as the
    uninterrupted run."""
    import contextlib

    from cryptosweep.records.integrity import lost_wal_frames

    config_path, reference = config_and_reference
    run_dir = tmp_path / "killed"
    db = run_dir / "sweep.db"
    code = ("import sys; import cryptosweep.records.journal as j; j.CHECKPOINT_SECONDS = 0.0; "
            "from cryptosweep.cli import main; sys.exit(main(sys.argv[1:]))")
    process = subprocess.Popen(
        [sys.executable, "-c", code, "run", "--config", str(config_path), "--log-dir",
         str(tmp_path), "--run-name", "killed", "--seed", "5", "--workers", "0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 240
    try:
        # 3 finished and checkpointed into the database file itself (the checkpoint follows
        # the commit that readers see first: deleting the -wal between the two raced it).
        while done_count(db) < 3 or _in_database_file(db) < 3:
            assert process.poll() is None, "the sweep ended before it could be killed"
            assert time.monotonic() < deadline, "the sweep made no progress"
            time.sleep(0.01)
        (run_dir / "sweep.db-wal").unlink()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert not list(run_dir.glob("sweep_results_*.json")), "killed too late"
    lost = lost_wal_frames(db)
    with sqlite3.connect(f"file:{db}?mode=ro&immutable=1", uri=True) as conn:
        kept = conn.execute("SELECT COUNT(*) FROM evaluations WHERE status = 'done'").fetchone()
    assert kept[0] >= 3, "what was finished before the last checkpoint is in the database"
    resumed = cli("run", "--resume", str(run_dir), "--workers", "0", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    if lost:
        assert "lost its write-ahead log (sweep.db-wal" in resumed.stderr
        assert f"it keeps {kept[0]} finished evaluation(s)" in resumed.stderr
    assert f" evaluations in the journal, {kept[0]} finished (" in resumed.stderr
    assert deterministic_bytes(run_dir) == deterministic_bytes(reference)


@pytest.mark.parametrize("leftover", ["empty", "wal"])
def test_a_run_killed_while_creating_its_journal_can_be_started_again(tmp_path, write_config,
                                                                       capsys, leftover):
    """SIGKILLed in the milliseconds between creating sweep.db and committing its schema, a run
    left an empty SQLite file: --resume called it "not a cryptosweep journal", and the same
    command again refused the folder ("choose another --run-name, or move that folder away")
    (a helper's attack: a kill 0-10 ms after the run folder appeared)."""
    run_dir = tmp_path / "killed"
    run_dir.mkdir()
    db = run_dir / "sweep.db"
    db.touch()
    if leftover == "wal":  # as SQLite leaves it once the journal mode is set, nothing written
        db.with_name("sweep.db-wal").touch()
    done = cli_in_process(capsys, "run", "--resume", str(run_dir))
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert "holds no journal yet" in lines[0] and "nothing was recorded" in lines[0]
    config = write_config(tiny_config(random__n_trials=1, reporting__top_k=1))
    done = cli_in_process(capsys, "run", "--config", str(config), "--log-dir", str(tmp_path),
                          "--run-name", "killed", "--seed", "3", "--workers", "0")
    assert done.returncode == 0, done.stderr
    assert sorted(run_dir.glob("sweep_results_*.json"))


def test_a_finished_run_whose_journal_was_emptied_is_not_taken_by_a_new_run(
        tmp_path, write_config, capsys):
    """An empty sweep.db beside a run's files is a damaged run, not one killed while creating
    its journal: the folder stays refused, byte for byte."""
    copy = tmp_path / "emptied"
    copy.mkdir()
    (copy / "sweep_output.log").write_text("12:00:00 INFO run emptied: random sweep\n")
    (copy / "sweep.db").touch()
    before = sorted((p.name, p.read_bytes()) for p in copy.iterdir())
    config = write_config(tiny_config(random__n_trials=1))
    done = cli_in_process(capsys, "run", "--config", str(config), "--log-dir", str(tmp_path),
                          "--run-name", "emptied", "--workers", "0")
    assert done.returncode == 2 and "cannot be resumed" in done.stderr, done.stderr
    done = cli_in_process(capsys, "run", "--resume", str(copy))
    assert done.returncode == 2 and "not a cryptosweep journal" in done.stderr, done.stderr
    assert sorted((p.name, p.read_bytes()) for p in copy.iterdir()) == before


def test_a_resume_does_not_say_the_run_asked_for_continue_training(
        tmp_path, write_config, capsys):
    """Every `run --resume` of the demo (Hyperband, fidelity folds, continue_training never
    written) logged "hyperband.continue_training applies to rounds only": the journaled
    config names every key, so the resume read it as written by the user. Found resuming the
    README's demo run."""
    config = write_config(tiny_config(sweep_type="hyperband", random__n_trials=1,
                                      reporting__top_k=1))
    done = cli_in_process(capsys, "run", "--config", str(config), "--log-dir", str(tmp_path),
                          "--run-name", "hb", "--seed", "3", "--workers", "0")
    assert done.returncode == 0, done.stderr
    done = cli_in_process(capsys, "run", "--resume", str(tmp_path / "hb"), "--workers", "0")
    assert done.returncode == 0, done.stderr
    log = (tmp_path / "hb" / "sweep_output.log").read_text()
    lines = [line for line in log.splitlines() if "sweep: tiny: hyperband" in line]
    assert len(lines) == 2 and all("(fidelity folds), " in line for line in lines), lines
