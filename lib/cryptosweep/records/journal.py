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

WAL mode with ``synchronous=FULL``: each finished evaluation is durable once
:meth:`Journal.finish_evaluation` returns, before the runner takes its next decision.

Before a journal is opened for writing (``--resume``), :func:`inspect_journal` reads it through
a read-only connection and refuses, without changing a byte, a file that is not ours, one that
is damaged (SQLite's integrity check, and every row the resume will read), and one this process
may not write. Readers (reports, notebooks) open it with ``read_only=True``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import urllib.parse
import zlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cryptosweep.core.errors import ResumeError
from cryptosweep.core.files import canonical_json, unwritable

#: The journal's layout; written to ``meta`` when a run starts.
SCHEMA_VERSION = 1
DB_NAME = "sweep.db"

def pack_returns(returns: np.ndarray | list[float]) -> tuple[int, bytes]:
    """Per-bar returns as ``(n, blob)``: little-endian float64 bytes, zlib-compressed only
    when that makes them shorter (see the module docstring)."""
    raw = np.asarray(returns, dtype="<f8").tobytes()
    packed = zlib.compress(raw, 6)
    return len(raw) // 8, packed if len(packed) < len(raw) else raw


def unpack_returns(n: int, blob: bytes) -> np.ndarray:
    """The inverse of :func:`pack_returns`: ``n`` float64 values, bit for bit."""
    raw = blob if len(blob) == 8 * n else zlib.decompress(blob)
    values = np.frombuffer(raw, dtype="<f8")
    if len(values) != n:
        raise ValueError(f"a returns blob holds {len(values)} values, the journal says {n}")
    return values


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trials (
    trial_id INTEGER PRIMARY KEY,
    params TEXT NOT NULL,
    seed INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS evaluations (
    eval_id INTEGER PRIMARY KEY,
    trial_id INTEGER NOT NULL REFERENCES trials(trial_id),
    budget REAL NOT NULL,
    tags TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed')),
    score REAL,
    metrics TEXT,
    error TEXT,
    worker TEXT,
    device TEXT,
    started_at REAL,
    finished_at REAL
);
CREATE TABLE IF NOT EXISTS attempts (
    eval_id INTEGER NOT NULL REFERENCES evaluations(eval_id),
    attempt INTEGER NOT NULL,
    submitted_at REAL NOT NULL,
    outcome TEXT,
    PRIMARY KEY (eval_id, attempt)
);
CREATE TABLE IF NOT EXISTS extra_evaluations (
    kind TEXT NOT NULL,
    eval_id INTEGER NOT NULL,
    metrics TEXT NOT NULL,
    PRIMARY KEY (kind, eval_id)
);
CREATE TABLE IF NOT EXISTS returns (
    kind TEXT NOT NULL CHECK (kind IN ('validation', 'holdout')),
    eval_id INTEGER NOT NULL,
    n INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (kind, eval_id)
);
CREATE TABLE IF NOT EXISTS baseline_returns (
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('validation', 'holdout')),
    n INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (name, kind)
);
CREATE TABLE IF NOT EXISTS extra_returns (
    kind TEXT NOT NULL,
    eval_id INTEGER NOT NULL,
    n INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (kind, eval_id)
);
CREATE TABLE IF NOT EXISTS resource_samples (
    ts REAL NOT NULL,
    source TEXT NOT NULL,
    payload TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class EvalRequest:
    """One evaluation to run: a configuration (trial) at a budget, with its seed. Strategies
    propose these; the journal records them (as :class:`EvaluationRow`, with their outcome)."""

    eval_id: int
    trial_id: int
    params: dict[str, Any]
    budget: float
    seed: int
    tags: dict[str, Any] = field(default_factory=dict)

    def request(self) -> EvalRequest:
        """The request alone (an :class:`EvaluationRow` without its outcome)."""
        return EvalRequest(self.eval_id, self.trial_id, self.params, self.budget, self.seed,
                           self.tags)


@dataclass(frozen=True, kw_only=True)
class EvaluationRow(EvalRequest):
    """A journaled evaluation: its request and what became of it."""

    status: str
    score: float | None
    metrics: dict[str, Any] | None
    error: str | None
    worker: str | None
    device: str | None
    started_at: float | None
    finished_at: float | None
    attempts: int


#: The tables a cryptosweep journal has (a SQLite file without them is someone else's).
JOURNAL_TABLES = frozenset({"meta", "trials", "evaluations", "attempts"})


@dataclass(frozen=True)
class JournalInfo:
    """A journal checked by :func:`inspect_journal`: where it is and what a resume needs."""

    db: Path
    config: dict[str, Any]
    seed: int
    timestamp: str
    status: str | None
    data: dict[str, Any] | None

    @property
    def run_dir(self) -> Path:
        return self.db.parent


def journal_path(path: str | Path) -> Path:
    """The ``sweep.db`` a run folder (or the file itself) stands for."""
    path = Path(path)
    return path / DB_NAME if path.is_dir() else path


def inspect_journal(path: str | Path, *, writable: bool = True,
                    purpose: str = "--resume") -> JournalInfo:
    """Check, through a read-only connection, that ``path`` (a run folder or its ``sweep.db``)
    is an intact cryptosweep journal this process may write (``writable``); raise a
    :class:`~cryptosweep.core.errors.ResumeError` starting with ``purpose`` and saying what is wrong
    otherwise. Changes nothing."""
    db = journal_path(path)
    if not db.is_file():
        raise ResumeError(f"{purpose}: no journal at {db} (expected a run folder or sweep.db)")
    if not os.access(db, os.R_OK):
        raise ResumeError(f"{purpose}: {db} cannot be read (permission denied)")
    try:
        conn = _read_only_connection(db)
    except sqlite3.Error as exc:
        raise ResumeError(f"{purpose}: {db} cannot be opened ({exc})") from None
    try:
        info = _check_journal(conn, db, purpose)
    finally:
        conn.close()
    if writable:
        for target in (db, db.parent):
            why = unwritable(target)
            if why is not None:
                raise ResumeError(
                    f"{purpose}: {target} is not writable ({why}); a resume writes the journal "
                    "and the run folder: copy the run folder somewhere writable and resume that"
                )
    return info


def _read_only_connection(db: Path) -> sqlite3.Connection:
    """A connection that cannot write. Without a ``-wal`` file everything is in the main file
    and no process has the journal open for writing: it is then opened ``immutable`` (SQLite
    creates no ``-wal``/``-shm`` beside it, so a refused resume leaves the folder as it was,
    and a read-only folder can be read)."""
    wal = db.with_name(db.name + "-wal")
    flags = "mode=ro" if wal.exists() else "mode=ro&immutable=1"
    uri = f"file:{urllib.parse.quote(str(db.resolve()))}?{flags}"
    return sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)


def _check_journal(conn: sqlite3.Connection, db: Path, purpose: str) -> JournalInfo:
    try:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE "
                                                  "type = 'table'")}
    except sqlite3.DatabaseError as exc:
        raise ResumeError(f"{purpose}: {db} is not a cryptosweep journal ({exc})") from None
    missing = JOURNAL_TABLES - tables
    if missing:
        raise ResumeError(f"{purpose}: {db} is not a cryptosweep journal (a SQLite file without "
                          f"the table(s) {', '.join(sorted(missing))})")
    try:
        (verdict,) = conn.execute("PRAGMA integrity_check(1)").fetchone()
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        for query in ("SELECT params FROM trials", "SELECT tags, metrics FROM evaluations"):
            for row in conn.execute(query):
                for text in row:
                    if text is not None:
                        json.loads(text)
        values = {key: json.loads(meta[key]) for key in ("config", "seed", "timestamp")}
        status = json.loads(meta["status"]) if "status" in meta else None
        data = json.loads(meta["data"]) if "data" in meta else None
    except KeyError as exc:
        raise ResumeError(f"{purpose}: {db} is not a cryptosweep journal (no {exc} in its "
                          "meta table)") from None
    except (sqlite3.DatabaseError, ValueError, TypeError) as exc:
        verdict = f"{type(exc).__name__}: {exc}"
    if verdict != "ok":
        raise ResumeError(
            f"{purpose}: journal {db} is damaged ({' '.join(str(verdict).split())[:200]}); it "
            "cannot be resumed safely: start a new run, or resume a backup copy"
        )
    if not isinstance(values["config"], dict) or not isinstance(values["seed"], int):
        raise ResumeError(f"{purpose}: {db} is not a cryptosweep journal (its config or seed "
                          "is not what a run records)")
    return JournalInfo(db=db, config=values["config"], seed=values["seed"],
                       timestamp=str(values["timestamp"]), status=status, data=data)


class Journal:
    """One run's journal. Safe to share between the runner and the monitor thread.

    ``read_only``: a reader's connection (reports, notebooks) that creates, converts and
    writes nothing, and works on a read-only folder."""

    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self._lock = threading.Lock()
        if read_only:
            self._conn = _read_only_connection(self.path)
            return
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._conn.executescript(_SCHEMA)

    @classmethod
    def open_existing(cls, path: str | Path, *, read_only: bool = True) -> Journal:
        """Open an existing journal (a run folder or its ``sweep.db``), checked first by
        :func:`inspect_journal`; read-only unless ``read_only=False``."""
        purpose = "journal" if read_only else "--resume"
        info = inspect_journal(path, writable=not read_only, purpose=purpose)
        return cls(info.db, read_only=read_only)

    @classmethod
    def open_readonly(cls, path: str | Path, timeout: float = 1.0) -> Journal:
        """Open a journal (a run folder or its ``sweep.db``) for reading only, e.g. while its
        sweep is still writing it: ``mode=ro``, autocommit, so that every read method is one
        statement and no transaction is held between calls; in WAL mode a reader never blocks
        the writer. Any write through it fails. Raises ``sqlite3.Error`` when there is no
        readable database at ``path`` (``timeout``: seconds to wait for a lock)."""
        path = Path(path)
        db = (path / DB_NAME if path.is_dir() else path).resolve()
        if not db.is_file():
            raise sqlite3.OperationalError(f"no journal at {db}")
        journal = cls.__new__(cls)
        journal.path, journal.read_only = db, True
        journal._lock = threading.Lock()
        journal._conn = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=timeout,
                                      check_same_thread=False, isolation_level=None)
        return journal

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Cursor]:
        with self._lock:
            cur = self._conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield cur
                cur.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:  # a failed COMMIT (disk full) leaves it open
                    with suppress(sqlite3.Error):
                        cur.execute("ROLLBACK")
                raise

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
        tags: dict[str, Any], submitted_at: float | None = None,
    ) -> None:
        """Journal a new evaluation (and its trial, the first time) as pending or, with
        ``submitted_at``, as running with its first attempt, in one transaction (one fsync)."""
        with self._transaction() as cur:
            cur.execute(
                "INSERT OR IGNORE INTO trials(trial_id, params, seed) VALUES (?, ?, ?)",
                (trial_id, canonical_json(params), seed),
            )
            cur.execute(
                "INSERT INTO evaluations(eval_id, trial_id, budget, tags, status) "
                "VALUES (?, ?, ?, ?, ?)",
                (eval_id, trial_id, budget, canonical_json(tags),
                 "pending" if submitted_at is None else "running"),
            )
            if submitted_at is not None:
                cur.execute(
                    "INSERT INTO attempts(eval_id, attempt, submitted_at) VALUES (?, 1, ?)",
                    (eval_id, submitted_at),
                )

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
        """Durably record a finished (``done``) or ``failed`` evaluation, with its per-bar
        out-of-sample returns, in one transaction."""
        with self._transaction() as cur:
            if returns is not None:
                cur.execute(
                    "INSERT OR REPLACE INTO returns(kind, eval_id, n, data) "
                    "VALUES ('validation', ?, ?, ?)", (eval_id, *pack_returns(returns)),
                )
            cur.execute(
                "UPDATE evaluations SET status=?, score=?, metrics=?, error=?, worker=?, device=?, "
                "started_at=?, finished_at=? WHERE eval_id=?",
                (status, score, None if metrics is None else canonical_json(metrics), error, worker,
                 device, started_at, finished_at, eval_id),
            )
            cur.execute(
                "UPDATE attempts SET outcome = ? WHERE eval_id = ? AND attempt = "
                "(SELECT MAX(attempt) FROM attempts WHERE eval_id = ?)",
                (status, eval_id, eval_id),
            )

    def evaluations(self) -> list[EvaluationRow]:
        """Every journaled evaluation in ``eval_id`` order."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT e.eval_id, e.trial_id, t.params, t.seed, e.budget, e.tags, e.status, "
                "e.score, e.metrics, e.error, e.worker, e.device, e.started_at, e.finished_at, "
                "(SELECT COUNT(*) FROM attempts a WHERE a.eval_id = e.eval_id) "
                "FROM evaluations e JOIN trials t USING (trial_id) ORDER BY e.eval_id"
            ).fetchall()
        return [
            EvaluationRow(
                eval_id=r[0], trial_id=r[1], params=json.loads(r[2]), seed=r[3], budget=r[4],
                tags=json.loads(r[5]), status=r[6], score=r[7],
                metrics=None if r[8] is None else json.loads(r[8]), error=r[9], worker=r[10],
                device=r[11], started_at=r[12], finished_at=r[13], attempts=r[14],
            )
            for r in rows
        ]

    def attempt_outcomes(self) -> list[tuple[int, int, str | None]]:
        """``(eval_id, attempt, outcome)`` of every attempt, in order."""
        with self._lock:
            return self._conn.execute(
                "SELECT eval_id, attempt, outcome FROM attempts ORDER BY eval_id, attempt"
            ).fetchall()

    # ---------------------------------------------------------------- holdout / repro checks

    def put_extra(self, kind: str, eval_id: int, metrics: dict[str, Any]) -> None:
        with self._transaction() as cur:
            cur.execute(
                "INSERT OR REPLACE INTO extra_evaluations(kind, eval_id, metrics) VALUES (?,?,?)",
                (kind, eval_id, canonical_json(metrics)),
            )

    def get_extra(self, kind: str) -> dict[int, dict[str, Any]]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT eval_id, metrics FROM extra_evaluations WHERE kind = ?", (kind,)
            ).fetchall()
        return {eval_id: json.loads(metrics) for eval_id, metrics in rows}

    # ----------------------------------------------------------------------- per-bar returns

    def put_returns(self, kind: str, eval_id: int, returns: np.ndarray | list[float]) -> None:
        with self._transaction() as cur:
            cur.execute(
                "INSERT OR REPLACE INTO returns(kind, eval_id, n, data) VALUES (?, ?, ?, ?)",
                (kind, eval_id, *pack_returns(returns)),
            )

    def get_returns(self, kind: str) -> dict[int, np.ndarray]:
        """``eval_id`` → per-bar returns of that kind (``validation`` or ``holdout``)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT eval_id, n, data FROM returns WHERE kind = ? ORDER BY eval_id", (kind,)
            ).fetchall()
        return {eval_id: unpack_returns(n, data) for eval_id, n, data in rows}

    def put_baseline_returns(self, name: str, kind: str,
                             returns: np.ndarray | list[float]) -> None:
        """A baseline's (``flat``, ``buy_and_hold``) per-bar returns of ``kind``, on the same
        bars as the trials' returns of that kind."""
        with self._transaction() as cur:
            cur.execute(
                "INSERT OR REPLACE INTO baseline_returns(name, kind, n, data) "
                "VALUES (?, ?, ?, ?)", (name, kind, *pack_returns(returns)),
            )

    def get_baseline_returns(self, kind: str) -> dict[str, np.ndarray]:
        """Baseline name → its per-bar returns of ``kind``; empty for a journal written before
        baselines' returns were kept."""
        with self._lock:
            try:
                rows = self._conn.execute(
                    "SELECT name, n, data FROM baseline_returns WHERE kind = ? ORDER BY name",
                    (kind,)).fetchall()
            except sqlite3.OperationalError as exc:  # an older journal opened read-only
                if "no such table" not in str(exc):
                    raise
                return {}
        return {name: unpack_returns(n, data) for name, n, data in rows}

    def put_extra_returns(self, kind: str, eval_id: int,
                          returns: np.ndarray | list[float]) -> None:
        """Per-bar returns of an end-of-sweep evaluation (``rescore:<i>``, ``neighbour:<j>``,
        the champion's ``champion_holdout``), beside its ``extra_evaluations`` metrics."""
        with self._transaction() as cur:
            cur.execute(
                "INSERT OR REPLACE INTO extra_returns(kind, eval_id, n, data) VALUES (?,?,?,?)",
                (kind, eval_id, *pack_returns(returns)),
            )

    def get_extra_returns(self, kind: str) -> dict[int, np.ndarray]:
        """``eval_id`` → per-bar returns of ``kind``; empty for a journal written before
        these were kept."""
        with self._lock:
            try:
                rows = self._conn.execute(
                    "SELECT eval_id, n, data FROM extra_returns WHERE kind = ? ORDER BY eval_id",
                    (kind,)).fetchall()
            except sqlite3.OperationalError as exc:  # an older journal opened read-only
                if "no such table" not in str(exc):
                    raise
                return {}
        return {eval_id: unpack_returns(n, data) for eval_id, n, data in rows}

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
