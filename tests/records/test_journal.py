"""The SQLite journal: durability, attempts, refusal of foreign files."""

from __future__ import annotations

import sqlite3

import pytest

from cryptosweep.core.errors import ResumeError
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

    from cryptosweep.records.journal import pack_returns

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
