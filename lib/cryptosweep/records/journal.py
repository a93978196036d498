"""The SQLite trial journal of one run (``sweep.db``): the checkpoint that resume reads.

Tables:

* ``meta`` — key/value JSON: config, config hash, seed, timestamps, status.
* ``trials`` — one row per configuration (``trial_id``): its parameters and seed.
* ``evaluations`` — one row per evaluation of a trial at a budget (``eval_id``, assigned in
  the order the strategy asked): status, score, metrics, error, worker, device, start/end.
* ``attempts`` — one row per time an evaluation was started; resume never re-runs a finished
  evaluation, and this table proves it.
* ``extra_evaluations`` — holdout results and reproducibility re-runs of the final top-k.
* ``returns`` — per-bar out-of-sample returns of each evaluation (walk-forward test bars) and
  of the holdout runs, as little-endian float64 bytes (not pickle), zlib-compressed when that
  is shorter (bars without a position return exactly 0, so it usually is: about a third of
  the size), for the overfitting diagnostics and equity curves. A blob of exactly ``8 * n``
  bytes is raw, any other length compressed, so journals written before compression read
  the same.
* ``resource_samples`` — host and GPU samples from the monitor.

Integrity: every row of ``trials``, ``evaluations``, ``returns``, ``extra_evaluations`` and
``baseline_returns`` carries a ``checksum``, a BLAKE2b digest of its table and its canonical
content (for returns: the decoded float64 values, so raw and compressed blobs of the same values
agree). Every reader checks the rows it reads and raises :class:`JournalDamagedError`, naming
them, for a row whose content does not match its checksum, whose JSON or returns blob cannot be
decoded, or (schema 2) that has no checksum. Journals of schema 1 have no checksums: their rows
are read as they are (a returns blob that cannot be decoded is still named), and a resume adds
the column without changing a stored value (new rows get checksums, old ones stay NULL).

Durability: WAL mode with ``synchronous=NORMAL`` and one transaction per trial (the loop defers
a new evaluation's "running" rows, :meth:`Journal.add_evaluation` with ``defer=True``, into the
next commit, normally its own :meth:`Journal.finish_evaluation`). A finished evaluation is
committed before the runner takes its next decision: a killed process loses nothing committed.
WAL + NORMAL stays consistent after a power cut or an OS crash, which can lose the last commits
since the WAL was last synced; the journal checkpoints the WAL into the database (which syncs
it) at most every :data:`CHECKPOINT_SECONDS`, so that is what a power cut can cost (evaluations
a resume runs again, with the same seeds and results), and a lost ``-wal`` file loses only what
came after the last checkpoint.

Before a journal is opened for writing (``--resume``), :func:`inspect_journal` reads it through
a read-only connection and refuses, without changing a byte, a file that is not ours, one that
is damaged (SQLite's integrity check, and every row's checksum), and one this process may not
write; damaged rows a resume can run again are returned (:class:`Damage`) for
:meth:`Journal.repair`. Readers (reports, notebooks) open it with ``read_only=True``.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import numpy as np

from cryptosweep.core.files import canonical_json
from cryptosweep.records.evaluations import EvaluationRow
from cryptosweep.records.inspection import (
    CHECKPOINT_SECONDS,
    DB_NAME,
    _read_only_connection,
    inspect_journal,
)
from cryptosweep.records.integrity import (
    EVAL_COLUMNS,
    RETURNS_KEYS,
    SEALED_TABLES,
    Damage,
    JournalDamagedError,
    _check_seal,
    _checksum_column,
    _columns,
    _json_or_damage,
    _legacy,
    _pack,
    _real,
    _returns_or_damage,
    _text,
    damage_message,
    row_checksum,
)
from cryptosweep.records.schema import TABLES


class Journal:
    """One run's journal. Safe to share between the runner and the monitor thread.

    ``read_only``: a reader's connection (reports, notebooks) that creates, converts and
    writes nothing, and works on a read-only folder. ``commits`` counts the transactions this
    writer committed."""

    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        self.path = Path(path)
        self._setup(read_only)
        if read_only:
            self._conn = _read_only_connection(self.path)
            return
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._conn.executescript(TABLES)
        for table in SEALED_TABLES:  # a journal of schema 1: its rows stay as they are
            if "checksum" not in _columns(self._conn, table):
                self._conn.execute(f"ALTER TABLE {table} ADD COLUMN checksum TEXT")

    def _setup(self, read_only: bool) -> None:
        self.read_only = read_only
        self._lock = threading.Lock()
        self._pending: list[tuple[str, tuple[Any, ...]]] = []
        #: eval_id -> (trial_id, budget, tags) of the evaluations this writer added, until
        #: they finish (their checksum covers them)
        self._requests: dict[int, tuple[int, float, str]] = {}
        self.commits = 0
        self.checkpoint_seconds = CHECKPOINT_SECONDS
        self._checkpointed = time.monotonic()

    @classmethod
    def open_existing(cls, path: str | Path, *, read_only: bool = True,
                      purpose: str | None = None) -> Journal:
        """Open an existing journal (a run folder or its ``sweep.db``), checked first by
        :func:`inspect_journal` (a damaged row is refused, with ``purpose`` first in the
        message); read-only unless ``read_only=False``."""
        purpose = purpose or ("journal" if read_only else "--resume")
        info = inspect_journal(path, writable=not read_only, purpose=purpose)
        return cls(info.db, read_only=read_only)

    @classmethod
    def open_readonly(cls, path: str | Path, timeout: float = 1.0) -> Journal:
        """Open a journal (a run folder or its ``sweep.db``) for reading only, e.g. while its
        sweep is still writing it: ``mode=ro``, autocommit, so that every read method is one
        statement and no transaction is held between calls; in WAL mode a reader never blocks
        the writer. Any write through it fails. Without a ``-wal`` file no process has the
        journal open and everything is in the main file: it is then opened ``immutable``, as
        :mod:`~cryptosweep.records.inspection` reads one, so that reading a finished run creates
        no ``-wal``/``-shm`` in its folder (``mode=ro`` left both behind for good) and a run
        folder that cannot be written (another user's, a read-only mount) can be read
        (``mode=ro`` could not open it: "unable to open database file"). Raises
        ``sqlite3.Error`` when there is no readable database at ``path`` (``timeout``:
        seconds to wait for a lock)."""
        path = Path(path)
        db = (path / DB_NAME if path.is_dir() else path).resolve()
        if not db.is_file():
            raise sqlite3.OperationalError(f"no journal at {db}")
        journal = cls.__new__(cls)
        journal.path = db
        journal._setup(True)
        journal._conn = _read_only_connection(db, timeout)
        return journal

    def flush(self) -> None:
        """Commit the deferred rows now (readers of this journal see them then)."""
        if self._pending and not self.read_only:
            with self._transaction():
                pass

    def close(self) -> None:
        """Close the connection; deferred rows (evaluations running at an interruption) are
        committed first where the journal can still be written."""
        with suppress(sqlite3.Error):
            self.flush()
        with self._lock:
            self._conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Cursor]:
        """One committed transaction, the deferred rows first; a checkpoint of the WAL into
        the database after it when the last one is :attr:`checkpoint_seconds` old."""
        with self._lock:
            cur = self._conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                for statement, values in self._pending:
                    cur.execute(statement, values)
                yield cur
                cur.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:  # a failed COMMIT (disk full) leaves it open
                    with suppress(sqlite3.Error):
                        cur.execute("ROLLBACK")
                raise
            self._pending.clear()
            self.commits += 1
            if time.monotonic() - self._checkpointed >= self.checkpoint_seconds:
                self._checkpoint()

    def _checkpoint(self) -> None:
        self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        self._checkpointed = time.monotonic()

    def checkpoint(self) -> None:
        """Copy the WAL into the database now (``PRAGMA wal_checkpoint(PASSIVE)``: syncs the
        WAL, then the database): what is committed survives a power cut and a lost ``-wal``."""
        with self._lock:
            self._checkpoint()

    def _damaged(self, damage: list[Damage]) -> None:
        if damage:
            raise JournalDamagedError(damage_message("journal", self.path, damage))

    # ------------------------------------------------------------------------------- meta

    def set_meta(self, **values: Any) -> None:
        with self._transaction() as cur:
            cur.executemany(
                "INSERT INTO meta(key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [(key, canonical_json(value)) for key, value in values.items()],
            )

    def get_meta(self, key: str, default: Any = KeyError) -> Any:
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        if row is None:
            if default is KeyError:
                raise KeyError(f"meta key {key!r} missing")
            return default
        return json.loads(row[0])

    # -------------------------------------------------------------------------- evaluations

    def add_evaluation(
        self, eval_id: int, trial_id: int, params: dict[str, Any], seed: int, budget: float,
        tags: dict[str, Any], submitted_at: float | None = None, *, defer: bool = False,
    ) -> None:
        """Journal a new evaluation (and its trial, the first time) as pending or, with
        ``submitted_at``, as running with its first attempt, in one transaction; with
        ``defer``, in the next transaction this journal commits (the loop's: the evaluation's
        own :meth:`finish_evaluation`, or the monitor's next sample), so a trial costs one
        commit. Until then a crash loses only the record that it had started: a resume runs
        it again, with the same seed."""
        trial_id, eval_id, seed, budget = int(trial_id), int(eval_id), int(seed), float(budget)
        params_text, tags_text = canonical_json(params), canonical_json(tags)
        status = "pending" if submitted_at is None else "running"
        statements: list[tuple[str, tuple[Any, ...]]] = [
            ("INSERT OR IGNORE INTO trials(trial_id, params, seed, checksum) VALUES (?, ?, ?, ?)",
             (trial_id, params_text, seed, row_checksum("trials", trial_id, params_text, seed))),
            ("INSERT INTO evaluations(eval_id, trial_id, budget, tags, status, checksum) "
             "VALUES (?, ?, ?, ?, ?, ?)",
             (eval_id, trial_id, budget, tags_text, status,
              row_checksum("evaluations", eval_id, trial_id, budget, tags_text, status,
                    *(None,) * 7))),
        ]
        if submitted_at is not None:
            statements.append(("INSERT INTO attempts(eval_id, attempt, submitted_at) "
                               "VALUES (?, 1, ?)", (eval_id, submitted_at)))
        if defer:
            with self._lock:
                self._pending.extend(statements)
                self._requests[eval_id] = (trial_id, budget, tags_text)
            return
        with self._transaction() as cur:
            for statement, values in statements:
                cur.execute(statement, values)
            self._requests[eval_id] = (trial_id, budget, tags_text)

    def _reseal_evaluation(self, cur: sqlite3.Cursor, eval_id: int) -> None:
        row = cur.execute(f"SELECT {EVAL_COLUMNS} FROM evaluations WHERE eval_id = ?",
                          (eval_id,)).fetchone()
        if row is not None:
            cur.execute("UPDATE evaluations SET checksum = ? WHERE eval_id = ?",
                        (row_checksum("evaluations", *row), eval_id))

    def mark_submitted(self, eval_id: int, now: float) -> int:
        """Record one more attempt of ``eval_id``; returns its attempt number (1-based)."""
        with self._transaction() as cur:
            (count,) = cur.execute(
                "SELECT COUNT(*) FROM attempts WHERE eval_id = ?", (eval_id,)
            ).fetchone()
            cur.execute(
                "INSERT INTO attempts(eval_id, attempt, submitted_at) VALUES (?, ?, ?)",
                (eval_id, count + 1, now),
            )
            cur.execute("UPDATE evaluations SET status = 'running' WHERE eval_id = ?", (eval_id,))
            self._reseal_evaluation(cur, eval_id)
        return count + 1

    def mark_attempt_outcome(self, eval_id: int, outcome: str) -> None:
        """Close the latest attempt of ``eval_id`` without finishing it (e.g. ``lost``)."""
        with self._transaction() as cur:
            cur.execute(
                "UPDATE attempts SET outcome = ? WHERE eval_id = ? AND attempt = "
                "(SELECT MAX(attempt) FROM attempts WHERE eval_id = ?)",
                (outcome, eval_id, eval_id),
            )

    def finish_evaluation(
        self, eval_id: int, *, status: str, score: float | None, metrics: dict[str, Any] | None,
        error: str | None, worker: str | None, device: str | None, started_at: float | None,
        finished_at: float | None, returns: list[float] | None = None,
    ) -> None:
        """Record a finished (``done``) or ``failed`` evaluation, with its per-bar
        out-of-sample returns, in one transaction (with the rows deferred before it)."""
        eval_id, metrics_text = int(eval_id), None if metrics is None else canonical_json(metrics)
        score, started_at, finished_at = _real(score), _real(started_at), _real(finished_at)
        status, error, worker, device = str(status), _text(error), _text(worker), _text(device)
        returns_row = None
        if returns is not None:
            n, blob, raw = _pack(returns)
            returns_row = (eval_id, n, blob, row_checksum("returns", "validation", eval_id, n, raw))
        with self._transaction() as cur:
            if returns_row is not None:
                cur.execute(
                    "INSERT OR REPLACE INTO returns(kind, eval_id, n, data, checksum) "
                    "VALUES ('validation', ?, ?, ?, ?)", returns_row,
                )
            request = self._requests.pop(eval_id, None) or cur.execute(
                "SELECT trial_id, budget, tags FROM evaluations WHERE eval_id = ?", (eval_id,)
            ).fetchone()
            outcome = (status, score, metrics_text, error, worker, device, started_at,
                       finished_at)
            checksum = None if request is None else row_checksum("evaluations", eval_id, *request,
                                                          *outcome)
            cur.execute(
                "UPDATE evaluations SET status=?, score=?, metrics=?, error=?, worker=?, device=?, "
                "started_at=?, finished_at=?, checksum=? WHERE eval_id=?",
                (*outcome, checksum, eval_id),
            )
            cur.execute(
                "UPDATE attempts SET outcome = ? WHERE eval_id = ? AND attempt = "
                "(SELECT MAX(attempt) FROM attempts WHERE eval_id = ?)",
                (status, eval_id, eval_id),
            )

    def evaluations(self) -> list[EvaluationRow]:
        """Every journaled evaluation in ``eval_id`` order, each row checked
        (:class:`JournalDamagedError` names the damaged ones)."""
        self.flush()
        with self._lock:
            legacy = _legacy(self._conn)
            rows = self._conn.execute(
                f"SELECT e.eval_id, e.trial_id, e.budget, e.tags, e.status, e.score, e.metrics, "
                f"e.error, e.worker, e.device, e.started_at, e.finished_at, "
                f"{_checksum_column(self._conn, 'evaluations', 'e.')}, t.trial_id, t.params, "
                f"t.seed, {_checksum_column(self._conn, 'trials', 't.')}, "
                "(SELECT COUNT(*) FROM attempts a WHERE a.eval_id = e.eval_id) "
                "FROM evaluations e LEFT JOIN trials t USING (trial_id) ORDER BY e.eval_id"
            ).fetchall()
        damage: list[Damage] = []
        out = []
        for r in rows:
            eval_id, found = r[0], len(damage)
            if r[13] is None:
                damage.append(Damage("evaluations", eval_id,
                                     f"its trial {r[1]} is not in the journal"))
                continue
            tags = _json_or_damage(r[3], "evaluations", eval_id, "tags", damage)
            metrics = None if r[6] is None else _json_or_damage(r[6], "evaluations", eval_id,
                                                               "metrics", damage)
            params = _json_or_damage(r[14], "trials", r[1], "parameters", damage)
            if len(damage) == found:
                _check_seal("evaluations", eval_id, r[:12], r[12], legacy, damage)
                _check_seal("trials", r[1], (r[13], r[14], r[15]), r[16], legacy, damage)
            if len(damage) == found:
                out.append(EvaluationRow(
                    eval_id=eval_id, trial_id=r[1], params=params, seed=r[15], budget=r[2],
                    tags=tags, status=r[4], score=r[5], metrics=metrics, error=r[7],
                    worker=r[8], device=r[9], started_at=r[10], finished_at=r[11],
                    attempts=r[17],
                ))
        self._damaged(list(dict.fromkeys(damage)))
        return out

    def attempt_outcomes(self) -> list[tuple[int, int, str | None]]:
        """``(eval_id, attempt, outcome)`` of every attempt, in order."""
        self.flush()
        with self._lock:
            return self._conn.execute(
                "SELECT eval_id, attempt, outcome FROM attempts ORDER BY eval_id, attempt"
            ).fetchall()

    # ---------------------------------------------------------------- holdout / repro checks

    def put_extra(self, kind: str, eval_id: int, metrics: dict[str, Any]) -> None:
        eval_id, text = int(eval_id), canonical_json(metrics)
        with self._transaction() as cur:
            cur.execute(
                "INSERT OR REPLACE INTO extra_evaluations(kind, eval_id, metrics, checksum) "
                "VALUES (?, ?, ?, ?)",
                (kind, eval_id, text, row_checksum("extra_evaluations", kind, eval_id, text)),
            )

    def get_extra(self, kind: str) -> dict[int, dict[str, Any]]:
        with self._lock:
            legacy = _legacy(self._conn)
            rows = self._conn.execute(
                "SELECT eval_id, metrics, "
                f"{_checksum_column(self._conn, 'extra_evaluations')} FROM extra_evaluations "
                "WHERE kind = ?", (kind,)
            ).fetchall()
        damage: list[Damage] = []
        out = {}
        for eval_id, metrics, checksum in rows:
            value = _json_or_damage(metrics, "extra_evaluations", (kind, eval_id), "result",
                                    damage)
            if value is not None and _check_seal("extra_evaluations", (kind, eval_id),
                                                 (kind, eval_id, metrics), checksum, legacy,
                                                 damage):
                out[eval_id] = value
        self._damaged(damage)
        return out

    # ----------------------------------------------------------------------- per-bar returns

    def put_returns(self, kind: str, eval_id: int, returns: np.ndarray | list[float]) -> None:
        eval_id = int(eval_id)
        n, blob, raw = _pack(returns)
        with self._transaction() as cur:
            cur.execute(
                "INSERT OR REPLACE INTO returns(kind, eval_id, n, data, checksum) "
                "VALUES (?, ?, ?, ?, ?)",
                (kind, eval_id, n, blob, row_checksum("returns", kind, eval_id, n, raw)),
            )

    def get_returns(self, kind: str, eval_id: int | None = None) -> dict[int, np.ndarray]:
        """``eval_id`` → per-bar returns of that kind (``validation`` or ``holdout``), each
        checked; with ``eval_id``, that evaluation's only."""
        if eval_id is None:
            return self._read_returns("returns", "kind = ?", (kind,))
        return self._read_returns("returns", "kind = ? AND eval_id = ?", (kind, int(eval_id)))

    def _read_returns(self, table: str, where: str, values: tuple[Any, ...]
                      ) -> dict[Any, np.ndarray]:
        """The per-bar returns of the rows of ``table`` (``returns``, ``baseline_returns``,
        ``extra_returns``) that ``where`` selects, keyed by their second key column, each
        decoded and checked against its checksum (a damaged row raises); empty where an
        older journal opened read-only lacks the table."""
        key_columns = RETURNS_KEYS[table]
        with self._lock:
            try:
                legacy = _legacy(self._conn, table)
                rows = self._conn.execute(
                    f"SELECT {key_columns}, n, data, {_checksum_column(self._conn, table)} "
                    f"FROM {table} WHERE {where} ORDER BY {key_columns}", values).fetchall()
            except sqlite3.OperationalError as exc:
                if "no such table" not in str(exc):
                    raise
                return {}
        damage: list[Damage] = []
        out = {}
        for first, second, n, data, checksum in rows:
            series = _returns_or_damage(table, (first, second), (first, second), n, data,
                                        checksum, legacy, damage)
            if series is not None:
                out[second if table != "baseline_returns" else first] = series
        self._damaged(damage)
        return out

    def put_baseline_returns(self, name: str, kind: str,
                             returns: np.ndarray | list[float]) -> None:
        """A baseline's (``flat``, ``buy_and_hold``) per-bar returns of ``kind``, on the same
        bars as the trials' returns of that kind."""
        n, blob, raw = _pack(returns)
        with self._transaction() as cur:
            cur.execute(
                "INSERT OR REPLACE INTO baseline_returns(name, kind, n, data, checksum) "
                "VALUES (?, ?, ?, ?, ?)",
                (name, kind, n, blob, row_checksum("baseline_returns", name, kind, n, raw)),
            )

    def get_baseline_returns(self, kind: str) -> dict[str, np.ndarray]:
        """Baseline name → its per-bar returns of ``kind``; empty for a journal written before
        baselines' returns were kept."""
        return self._read_returns("baseline_returns", "kind = ?", (kind,))

    # ------------------------------------------------------------------------------ repair

    def repair(self, damage: Iterable[Damage]) -> None:
        """Remove damaged rows (found read-only by :func:`inspect_journal`) and what depends
        on them, in one transaction, so that the resume runs them again with their seeds: a
        damaged evaluation or its validation returns → the evaluation (its row, attempts and
        returns) is run again; a holdout result or its returns → both; a baseline's result
        or returns → the baselines; another end-of-sweep result (a re-run, a re-score, a
        neighbour, the champion's) or its returns → that task. Trials
        (what the replay needs) cannot be repaired."""
        statements: list[tuple[str, tuple[Any, ...]]] = []
        for item in damage:
            if item.replay_needs_it:
                raise ValueError(f"{item.row} cannot be repaired")
            rerun = item.reruns_evaluation
            if rerun is not None:
                statements += [("DELETE FROM attempts WHERE eval_id = ?", (rerun,)),
                               ("DELETE FROM returns WHERE kind = 'validation' AND eval_id = ?",
                                (rerun,)),
                               ("DELETE FROM evaluations WHERE eval_id = ?", (rerun,))]
            elif item.table in ("returns", "extra_evaluations") and item.key[0] == "holdout":
                statements += [("DELETE FROM returns WHERE kind = 'holdout' AND eval_id = ?",
                                (item.key[1],)),
                               ("DELETE FROM extra_evaluations WHERE kind = 'holdout' AND "
                                "eval_id = ?", (item.key[1],))]
            elif item.table == "baseline_returns" or item.key[0] == "baselines":
                statements += [("DELETE FROM baseline_returns", ()),
                               ("DELETE FROM extra_evaluations WHERE kind = 'baselines'", ())]
            else:  # an end-of-sweep result or its returns: that task runs again
                statements += [("DELETE FROM extra_evaluations WHERE kind = ? AND eval_id = ?",
                                item.key),
                               ("DELETE FROM extra_returns WHERE kind = ? AND eval_id = ?",
                                item.key)]
        with self._transaction() as cur:
            for statement, values in statements:
                cur.execute(statement, values)

    def put_extra_returns(self, kind: str, eval_id: int,
                          returns: np.ndarray | list[float]) -> None:
        """Per-bar returns of an end-of-sweep evaluation (``rescore:<i>``, ``neighbour:<j>``,
        the champion's ``champion_holdout``), beside its ``extra_evaluations`` metrics."""
        n, blob, raw = _pack(returns)
        with self._transaction() as cur:
            cur.execute(
                "INSERT OR REPLACE INTO extra_returns(kind, eval_id, n, data, checksum) "
                "VALUES (?, ?, ?, ?, ?)",
                (kind, eval_id, n, blob, row_checksum("extra_returns", kind, eval_id, n, raw)),
            )

    def get_extra_returns(self, kind: str) -> dict[int, np.ndarray]:
        """``eval_id`` → per-bar returns of ``kind``, each checked; empty for a journal
        written before these were kept."""
        return self._read_returns("extra_returns", "kind = ?", (kind,))

    # ---------------------------------------------------------------------- resource samples

    def add_resource_sample(self, ts: float, source: str, payload: dict[str, Any]) -> None:
        with self._transaction() as cur:
            cur.execute(
                "INSERT INTO resource_samples(ts, source, payload) VALUES (?, ?, ?)",
                (ts, source, canonical_json(payload)),
            )

    def resource_samples(self) -> list[tuple[float, str, dict[str, Any]]]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT ts, source, payload FROM resource_samples ORDER BY ts, rowid"
            ).fetchall()
        return [(ts, source, json.loads(payload)) for ts, source, payload in rows]
