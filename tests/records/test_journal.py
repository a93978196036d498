"""The SQLite journal: durability, attempts, refusal of foreign files."""

from __future__ import annotations

import os
import signal
import sqlite3
import time

import pytest

from cryptosweep.core.errors import ResumeError
from cryptosweep.records.integrity import pack_returns
from cryptosweep.records.journal import Journal


def test_finished_evaluation_is_visible_to_another_connection_at_once(tmp_path):
    journal = Journal(tmp_path / "sweep.db")
    journal.set_meta(config={"a": 1}, seed=3)
    journal.add_evaluation(0, 0, {"x": 1.5}, seed=42, budget=3.0, tags={})
    assert journal.mark_submitted(0, now=1.0) == 1
    journal.finish_evaluation(0, status="done", score=0.5, metrics={"score": 0.5}, error=None,
                            worker="w", device="cpu", started_at=1.0, finished_at=2.0)
    # A second connection (as after a crash) sees the committed row without any close.
    with sqlite3.connect(tmp_path / "sweep.db") as other:
        assert other.execute("SELECT status, score FROM evaluations").fetchone() == ("done", 0.5)
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    (row,) = journal.evaluations()
    assert (row.params, row.seed, row.metrics, row.attempts) == ({"x": 1.5}, 42, {"score": 0.5}, 1)
    assert journal.mark_submitted(0, now=3.0) == 2
    assert journal.attempt_outcomes() == [(0, 1, "done"), (0, 2, None)]
    journal.close()


def test_nan_metrics_are_refused_not_written_as_invalid_json(tmp_path):
    journal = Journal(tmp_path / "sweep.db")
    journal.add_evaluation(0, 0, {}, seed=1, budget=1.0, tags={})
    with pytest.raises(ValueError):
        journal.finish_evaluation(0, status="done", score=1.0, metrics={"x": float("nan")},
                                error=None, worker=None, device=None, started_at=None,
                                finished_at=None)
    assert journal.evaluations()[0].status == "pending"


def test_open_existing_refuses_what_is_not_a_journal(tmp_path):
    with pytest.raises(ResumeError, match="no journal at"):
        Journal.open_existing(tmp_path)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(ResumeError, match="is not a cryptosweep journal"):
        Journal.open_existing(junk)


def test_returns_round_trip_bit_for_bit_compressed_or_raw(tmp_path):
    import numpy as np

    from cryptosweep.records.integrity import pack_returns

    rng = np.random.default_rng(0)
    sparse = np.where(rng.random(5000) < 0.7, 0.0, rng.normal(0, 0.01, 5000))  # mostly flat
    noise = rng.normal(0, 0.01, 7)  # too short and random to compress
    journal = Journal(tmp_path / "sweep.db")
    journal.put_returns("holdout", 1, sparse)
    journal.put_returns("holdout", 2, noise)
    got = journal.get_returns("holdout")
    assert got[1].tobytes() == sparse.astype("<f8").tobytes()
    assert got[2].tobytes() == noise.astype("<f8").tobytes()
    assert len(pack_returns(sparse)[1]) < 0.5 * sparse.nbytes  # compressed
    assert pack_returns(noise)[1] == noise.astype("<f8").tobytes()  # raw: shorter that way
    # a journal written before compression (raw float64 blobs) reads the same
    with sqlite3.connect(tmp_path / "sweep.db") as db:
        db.execute("UPDATE returns SET data = ? WHERE eval_id = 1",
                   (sparse.astype("<f8").tobytes(),))
    assert journal.get_returns("holdout")[1].tobytes() == sparse.astype("<f8").tobytes()
    journal.close()


# ------------------------------------------------------------- integrity: checksums per row


def _finished_journal(db, n=3, schema=None):
    """A journal with ``n`` finished evaluations, a holdout result and a baseline's returns."""
    from cryptosweep.records.schema import SCHEMA_VERSION

    journal = Journal(db)
    journal.set_meta(config={"a": 1}, seed=3, timestamp="t",
                     schema_version=schema or SCHEMA_VERSION)
    for i in range(n):
        journal.add_evaluation(i, i, {"x": i}, seed=40 + i, budget=1, tags={"rung": 0},
                               submitted_at=1.0, defer=True)
        journal.finish_evaluation(i, status="done", score=0.5 + i, metrics={"score": 0.5 + i},
                                  error=None, worker="w", device="cpu", started_at=1.0,
                                  finished_at=2.0, returns=[0.0, 0.01 * i, 0.0])
    journal.put_returns("holdout", 0, [0.1, 0.0])
    journal.put_extra("holdout", 0, {"holdout_sharpe": 1.0})
    journal.put_baseline_returns("flat", "validation", [0.0, 0.0, 0.0])
    journal.put_extra_returns("rescore:1", 0, [0.02, -0.01, 0.0])
    journal.put_extra("rescore:1", 0, {"score": 0.4})
    return journal


def test_re_scored_returns_are_checked_and_their_task_repaired(tmp_path):
    """The re-scores' per-bar returns (what the deflated Sharpe ratio of the winner is computed
    from) carried no checksum: a changed value was read as if nothing happened."""
    from cryptosweep.records.inspection import inspect_journal
    from cryptosweep.records.integrity import JournalDamagedError

    db = tmp_path / "sweep.db"
    _finished_journal(db).close()
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE extra_returns SET data = ? WHERE kind = 'rescore:1'",
                     (pack_returns([0.02, -0.01, 1e-4])[1],))
    conn.close()
    reader = Journal(db, read_only=True)
    with pytest.raises(JournalDamagedError, match=r"the rescore:1 returns of evaluation 0 "
                       r"\(table extra_returns\): its content does not match its checksum"):
        reader.get_extra_returns("rescore:1")
    reader.close()
    info = inspect_journal(db, repair=True)
    assert [(d.table, d.key) for d in info.damage] == [("extra_returns", ("rescore:1", 0))]
    journal = Journal(db)
    journal.repair(info.damage)  # the re-score runs again with its seed
    assert journal.get_extra("rescore:1") == {} and journal.get_extra_returns("rescore:1") == {}
    journal.close()
    assert inspect_journal(db).damage == ()


def test_unsealed_re_scored_returns_of_a_schema_2_journal_are_legacy_not_damage(tmp_path):
    from cryptosweep.records.inspection import inspect_journal

    db = tmp_path / "sweep.db"
    _finished_journal(db, schema=2).close()
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE extra_returns SET checksum = NULL")
    conn.close()
    assert inspect_journal(db).damage == ()
    reader = Journal(db, read_only=True)
    assert reader.get_extra_returns("rescore:1")[0].tolist() == [0.02, -0.01, 0.0]
    reader.close()
    with sqlite3.connect(db) as conn:  # the same row in a schema 3 journal is damage
        conn.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    conn.close()
    assert [d.why for d in inspect_journal(db, repair=True).damage] == ["it has no checksum"]


def test_a_changed_or_undecodable_row_is_named_by_every_reader_and_repaired(tmp_path):
    """A score changed by 1e-4 was read as if nothing happened; a returns blob of random bytes
    was a zlib traceback."""
    from cryptosweep.records.inspection import inspect_journal
    from cryptosweep.records.integrity import JournalDamagedError

    db = tmp_path / "sweep.db"
    _finished_journal(db).close()
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE evaluations SET score = score + 1e-4 WHERE eval_id = 1")
        conn.execute("UPDATE returns SET data = ? WHERE kind = 'validation' AND eval_id = 2",
                     (bytes(range(7, 250)),))
        conn.execute("UPDATE extra_evaluations SET metrics = '{\"holdout_sharpe\":1.5}' "
                     "WHERE kind = 'holdout'")
    conn.close()
    reader = Journal(db, read_only=True)
    with pytest.raises(JournalDamagedError, match=r"evaluation 1 \(table evaluations\): its "
                       "content does not match its checksum"):
        reader.evaluations()
    with pytest.raises(JournalDamagedError, match=r"validation returns of evaluation 2 "
                       r"\(table returns\): its returns cannot be decoded"):
        reader.get_returns("validation")
    assert list(reader.get_returns("validation", 0)) == [0]  # one intact evaluation's own
    with pytest.raises(JournalDamagedError, match=r"holdout result of evaluation 0"):
        reader.get_extra("holdout")
    reader.close()
    for purpose in ("report", "export-optuna"):
        with pytest.raises(JournalDamagedError, match=rf"^{purpose}: journal .* has 3 damaged "
                           "rows: evaluation 1 .*; the validation returns of evaluation 2"):
            inspect_journal(db, writable=False, purpose=purpose)
    info = inspect_journal(db, repair=True)  # a resume: returned to be repaired
    assert [(d.table, d.key) for d in info.damage] == [
        ("evaluations", 1), ("extra_evaluations", ("holdout", 0)), ("returns", ("validation", 2))]
    journal = Journal(db)
    journal.repair(info.damage)
    assert [row.eval_id for row in journal.evaluations()] == [0]  # 1 and 2 run again
    assert list(journal.get_returns("validation")) == [0]
    assert journal.get_extra("holdout") == {} and journal.get_returns("holdout") == {}
    assert journal.get_baseline_returns("validation")["flat"].tolist() == [0.0, 0.0, 0.0]
    assert {eval_id for eval_id, _, _ in journal.attempt_outcomes()} == {0}
    journal.close()
    assert inspect_journal(db).damage == ()


def test_a_rewritten_trial_cannot_be_repaired_and_is_refused(tmp_path):
    from cryptosweep.records.inspection import inspect_journal
    from cryptosweep.records.integrity import JournalDamagedError

    db = tmp_path / "sweep.db"
    _finished_journal(db).close()
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE trials SET params = '{\"x\":7}' WHERE trial_id = 1")
    conn.close()
    before = db.read_bytes()
    with pytest.raises(JournalDamagedError, match=r"trial 1 \(table trials\).*replays the run "
                       "from its trials' parameters and seeds, so this cannot be repaired"):
        inspect_journal(db, repair=True)
    assert db.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == [
        "sweep.db"]


def test_a_journal_of_schema_1_reads_as_it_was_and_resumes_with_checksums(tmp_path):
    """Rows without a checksum are legacy, not damage; opening it to write adds the column and
    changes no stored value; the rows written then are checked."""
    from cryptosweep.records.inspection import inspect_journal
    from cryptosweep.records.integrity import SEALED_TABLES, JournalDamagedError

    db = tmp_path / "sweep.db"
    _finished_journal(db, schema=1).close()
    with sqlite3.connect(db) as conn:
        for table in SEALED_TABLES:
            conn.execute(f"ALTER TABLE {table} DROP COLUMN checksum")
    conn.close()

    def stored():
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall()
                    for t in ("trials", "evaluations", "returns", "extra_evaluations")}

    old = stored()
    assert inspect_journal(db).damage == ()
    reader = Journal(db, read_only=True)
    assert [r.score for r in reader.evaluations()] == [0.5, 1.5, 2.5]
    assert reader.get_extra("holdout") == {0: {"holdout_sharpe": 1.0}}
    reader.close()
    journal = Journal(db)
    journal.add_evaluation(3, 3, {"x": 3}, seed=43, budget=1, tags={})
    journal.close()
    new = stored()
    for table, rows in old.items():
        assert [row[:-1] for row in new[table][:len(rows)]] == rows  # + a NULL checksum
        assert all(row[-1] is None for row in new[table][:len(rows)])
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE evaluations SET budget = 2 WHERE eval_id = 3")
        conn.execute("UPDATE returns SET data = x'00ff' WHERE eval_id = 1")
    conn.close()
    with pytest.raises(JournalDamagedError, match=r"evaluation 3 .*; the validation returns "
                       r"of evaluation 1"):
        inspect_journal(db, writable=False, purpose="report")


def test_the_wal_is_checkpointed_into_the_database_while_a_run_writes(tmp_path):
    db = tmp_path / "sweep.db"
    journal = _finished_journal(db, n=1)

    def in_main_file():
        copy = tmp_path / "copy.db"  # the database file alone, as after losing its -wal
        copy.write_bytes(db.read_bytes())
        with sqlite3.connect(f"file:{copy}?mode=ro&immutable=1", uri=True) as conn:
            try:
                return conn.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0]
            except sqlite3.OperationalError:
                return 0

    assert in_main_file() == 0, "within CHECKPOINT_SECONDS of the start: not yet"
    journal.checkpoint_seconds = 0.0
    journal.add_evaluation(1, 1, {}, seed=1, budget=1, tags={})
    assert in_main_file() == 2
    journal.close()


LOST_WAL_SCRIPT = """
import os, signal, sys, time
from pathlib import Path
from cryptosweep.core.config_files import validate_config
from cryptosweep.sweep.opening import _new_run
sys.path.insert(0, {tests!r})
from support import tiny_config

run_dir = Path({run_dir!r})
journal, lock = _new_run(validate_config(tiny_config()), 5, run_dir, "stamp")
for eval_id in range(4):
    if eval_id == {checkpoint_after}:
        journal.checkpoint()
    journal.add_evaluation(eval_id, eval_id, {{}}, seed=eval_id, budget=1, tags={{}},
                           submitted_at=time.time(), defer=True)
    journal.finish_evaluation(eval_id, status="done", score=0.5, metrics={{}}, error=None,
                              worker="w", device="cpu", started_at=1.0, finished_at=2.0)
os.unlink(run_dir / "sweep.db-wal")
journal.add_evaluation(9, 9, {{}}, seed=9, budget=1, tags={{}})
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.parametrize("checkpoint_after", [0, 2])
def test_a_lost_wal_keeps_what_was_checkpointed_and_says_what_was_lost(tmp_path,
                                                                       checkpoint_after):
    """Deleting sweep.db-wal and killing the writer lost everything (nothing was checkpointed
    into the database), and the folder then said both "not a cryptosweep journal" (resume)
    and "already holds a sweep" (a new run)."""
    import subprocess
    import sys
    from pathlib import Path

    from cryptosweep.core.errors import UserError
    from cryptosweep.records.inspection import inspect_journal
    from cryptosweep.records.integrity import JournalDamagedError
    from cryptosweep.sweep.opening import _refuse_existing

    run_dir = tmp_path / "run"
    script = LOST_WAL_SCRIPT.format(tests=str(Path(__file__).resolve().parents[1]),
                                    run_dir=str(run_dir), checkpoint_after=checkpoint_after)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == -9, done.stderr
    assert not (run_dir / "sweep.db-wal").exists()
    info = inspect_journal(run_dir, repair=True)
    assert info.config["name"] == "tiny" and info.seed == 5
    assert "lost its write-ahead log (sweep.db-wal" in info.lost_wal
    assert f"it keeps {checkpoint_after} finished evaluation(s)" in info.lost_wal
    with pytest.raises(JournalDamagedError, match=r"^report: journal .* lost its write-ahead "
                       "log .*; resume the run to run again what was lost"):
        inspect_journal(run_dir, writable=False, purpose="report")
    with pytest.raises(UserError, match="already holds a sweep; resume it"):
        _refuse_existing(run_dir)
    journal = Journal(run_dir / "sweep.db")
    assert len(journal.evaluations()) == checkpoint_after
    journal.close()


READER_SCRIPT = """
import sqlite3, time
conn = sqlite3.connect("file:{db}?mode=ro", uri=True)
conn.execute("SELECT COUNT(*) FROM evaluations").fetchone()
print("open", flush=True)
time.sleep(120)
"""


def test_a_lost_wal_with_a_reader_still_attached_is_refused_naming_the_reader(tmp_path):
    """A process that had the journal open before its -wal was lost (a live view, a notebook;
    in the reliability pass, its own polling connections) keeps the lost log's -shm index
    alive: the resume's writer trusted it and failed with "disk I/O error", exit 6 ("the
    machine failed ... free disk space"). Now one line names the process, before anything is
    opened for writing; once it is gone, the journal opens with what was checkpointed."""
    import subprocess
    import sys
    from pathlib import Path

    from cryptosweep.records.inspection import inspect_journal

    run_dir = tmp_path / "run"
    db = run_dir / "sweep.db"
    reader_code = READER_SCRIPT.format(db=db)
    # The writer starts the reader once its journal holds rows, waits until it has read
    # them, then loses its -wal and is killed; the reader stays.
    script = LOST_WAL_SCRIPT.format(tests=str(Path(__file__).resolve().parents[1]),
                                    run_dir=str(run_dir), checkpoint_after=2).replace(
        'os.unlink(run_dir / "sweep.db-wal")',
        "import subprocess\n"
        f"reader = subprocess.Popen([sys.executable, '-c', {reader_code!r}], "
        "stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, "
        "text=True, start_new_session=True)\n"
        "assert reader.stdout.readline().strip() == 'open'\n"
        "print(reader.pid, flush=True)\n"
        'os.unlink(run_dir / "sweep.db-wal")')
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == -9, done.stderr
    reader = int(done.stdout.split()[0])
    try:
        before = sorted(p.name for p in run_dir.iterdir())
        assert "sweep.db-wal" not in before
        with pytest.raises(ResumeError, match=rf"^--resume: journal .* lost its write-ahead "
                           rf"log \(sweep.db-wal\) and process {reader} still has the "
                           "journal open"):
            inspect_journal(run_dir, repair=True)
        assert sorted(p.name for p in run_dir.iterdir()) == before
    finally:
        os.kill(reader, signal.SIGKILL)
    time.sleep(0.2)  # the reader's locks go with it
    assert inspect_journal(run_dir, repair=True).lost_wal is not None
    journal = Journal(db)
    assert len(journal.evaluations()) == 2
    journal.close()


def test_a_leftover_folder_that_resume_refuses_is_not_said_to_be_resumable(tmp_path):
    """A sweep.db that is no journal was "not a cryptosweep journal" to resume and "already
    holds a sweep; resume it" to a new run. (An empty one alone in its folder, a run killed as
    it created its journal, holds nothing: a new run takes it, tests/sweep/test_resume.py.)"""
    from cryptosweep.core.errors import UserError
    from cryptosweep.sweep.opening import _refuse_existing

    (tmp_path / "sweep.db").write_bytes(b"")
    (tmp_path / "sweep_output.log").write_text("a run's log: not a folder left empty\n")
    with pytest.raises(UserError, match=r"holds a sweep.db that cannot be resumed .*not a "
                       r"cryptosweep journal.*; choose another --run-name, or move that folder"):
        _refuse_existing(tmp_path)
