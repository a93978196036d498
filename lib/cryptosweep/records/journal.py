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

import hashlib
import json
import math
import os
import sqlite3
import struct
import threading
import time
import urllib.parse
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cryptosweep.core.errors import ResumeError
from cryptosweep.core.files import canonical_json, unwritable

#: The journal's layout; written to ``meta`` when a run starts (2: rows carry checksums).
SCHEMA_VERSION = 2
#: The layouts this version reads (1: the same tables without checksums).
READABLE_SCHEMA_VERSIONS = (1, 2)
DB_NAME = "sweep.db"
#: The most seconds between two checkpoints of the WAL into the database while a run writes.
CHECKPOINT_SECONDS = 5.0
#: The tables whose rows carry a checksum.
SEALED_TABLES = ("trials", "evaluations", "returns", "extra_evaluations", "baseline_returns")
#: The columns of an evaluations row, in the order its checksum covers them.
EVAL_COLUMNS = ("eval_id, trial_id, budget, tags, status, score, metrics, error, worker, "
                 "device, started_at, finished_at")


class JournalDamagedError(ResumeError):
    """Rows of a journal do not match their checksums or cannot be decoded (exit code 2)."""


def _real(value: Any) -> float | None:
    """A value as a REAL column gives it back (SQLite stores NaN as NULL)."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def row_checksum(table: str, *values: Any) -> str:
    """The checksum of a row of ``table``: BLAKE2b of the ``repr`` of its table and values as
    SQLite gives them back (Python ``None``, ``int``, ``float``, ``str``: the ``repr`` tells
    them apart and round-trips floats exactly), then of its last value's bytes if it is a blob
    (returns: the decoded float64 values)."""
    blob = values[-1] if values and isinstance(values[-1], bytes) else None
    head = (table, *values[:-1]) if blob is not None else (table, *values)
    digest = hashlib.blake2b(repr(head).encode("utf-8", "surrogatepass"), digest_size=16)
    if blob is not None:
        digest.update(blob)
    return digest.hexdigest()


def _pack(returns: np.ndarray | list[float]) -> tuple[int, bytes, bytes]:
    """``(n, blob, raw)``: :func:`pack_returns` and the raw float64 bytes it packed."""
    raw = np.asarray(returns, dtype="<f8").tobytes()
    packed = zlib.compress(raw, 6)
    return len(raw) // 8, packed if len(packed) < len(raw) else raw, raw


def pack_returns(returns: np.ndarray | list[float]) -> tuple[int, bytes]:
    """Per-bar returns as ``(n, blob)``: little-endian float64 bytes, zlib-compressed only
    when that makes them shorter (see the module docstring)."""
    n, blob, _ = _pack(returns)
    return n, blob


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
    seed INTEGER NOT NULL,
    checksum TEXT
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
    finished_at REAL,
    checksum TEXT
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
    checksum TEXT,
    PRIMARY KEY (kind, eval_id)
);
CREATE TABLE IF NOT EXISTS returns (
    kind TEXT NOT NULL CHECK (kind IN ('validation', 'holdout')),
    eval_id INTEGER NOT NULL,
    n INTEGER NOT NULL,
    data BLOB NOT NULL,
    checksum TEXT,
    PRIMARY KEY (kind, eval_id)
);
CREATE TABLE IF NOT EXISTS baseline_returns (
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('validation', 'holdout')),
    n INTEGER NOT NULL,
    data BLOB NOT NULL,
    checksum TEXT,
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
class Damage:
    """A damaged row: its table, its key (``trial_id``; ``eval_id``; ``(kind, eval_id)``;
    ``(name, kind)``) and why."""

    table: str
    key: Any
    why: str

    @property
    def row(self) -> str:
        """What the row is, for people: ``evaluation 5 (table evaluations)``."""
        if self.table == "trials":
            what = f"trial {self.key}"
        elif self.table == "evaluations":
            what = f"evaluation {self.key}"
        elif self.table == "returns":
            what = f"the {self.key[0]} returns of evaluation {self.key[1]}"
        elif self.table == "extra_evaluations":
            kind, eval_id = self.key
            what = (f"the {kind} result of evaluation {eval_id}"
                    if kind in ("holdout", "repro") else f"the {kind} result")
        else:
            what = f"the {self.key[1]} returns of baseline {self.key[0]}"
        return f"{what} (table {self.table})"

    def __str__(self) -> str:
        return f"{self.row}: {self.why}"

    @property
    def replay_needs_it(self) -> bool:
        """Whether a resume's replay needs this row as it was (a trial's parameters and seed):
        then it cannot be repaired."""
        return self.table == "trials"

    @property
    def reruns_evaluation(self) -> int | None:
        """The evaluation a repair runs again (its row or its validation returns), if any."""
        if self.table == "evaluations":
            return int(self.key)
        if self.table == "returns" and self.key[0] == "validation":
            return int(self.key[1])
        return None


def describe_damage(damage: Sequence[Damage], limit: int = 3) -> str:
    """``3 damaged rows: a; b; c`` (the first ``limit``, then how many more)."""
    shown = "; ".join(str(d) for d in damage[:limit])
    more = f"; and {len(damage) - limit} more" if len(damage) > limit else ""
    return f"{len(damage)} damaged row{'s' if len(damage) != 1 else ''}: {shown}{more}"


def _json_or_damage(text: Any, table: str, key: Any, column: str,
                    damage: list[Damage]) -> Any:
    try:
        if not isinstance(text, str):
            raise TypeError(f"a {type(text).__name__}, not text")
        return json.loads(text)
    except (ValueError, TypeError) as exc:
        damage.append(Damage(table, key, f"its {column} is not JSON ({exc})"))
        return None


def _check_seal(table: str, key: Any, values: tuple[Any, ...], checksum: Any,
                legacy: bool, damage: list[Damage]) -> bool:
    """Append a :class:`Damage` when ``checksum`` does not match ``values`` (a missing one is
    accepted only in a ``legacy`` journal); whether the row is intact."""
    if checksum is None:
        if legacy:
            return True
        damage.append(Damage(table, key, "it has no checksum"))
        return False
    if checksum != row_checksum(table, *values):
        damage.append(Damage(table, key, "its content does not match its checksum (changed "
                                         "since it was written)"))
        return False
    return True


def _returns_or_damage(table: str, key: Any, prefix: tuple[Any, ...], n: Any, blob: Any,
                       checksum: Any, legacy: bool, damage: list[Damage]) -> np.ndarray | None:
    """A returns row decoded and checked (``prefix``: its key columns); None when damaged."""
    try:
        if not isinstance(n, int) or not isinstance(blob, bytes):
            raise TypeError("its count or its blob has the wrong type")
        values = unpack_returns(n, blob)
    except (zlib.error, ValueError, TypeError, OverflowError, MemoryError) as exc:
        damage.append(Damage(table, key, f"its returns cannot be decoded ({exc})"))
        return None
    if not _check_seal(table, key, (*prefix, n, values.tobytes()), checksum, legacy, damage):
        return None
    return values


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def _checksum_column(conn: sqlite3.Connection, table: str, alias: str = "") -> str:
    """``checksum`` where the table has one (schema 2), else ``NULL`` (schema 1)."""
    return f"{alias}checksum" if "checksum" in _columns(conn, table) else "NULL"


def _legacy(conn: sqlite3.Connection) -> bool:
    """Whether rows without a checksum are accepted: a journal made before schema 2."""
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    try:
        return row is None or int(json.loads(row[0])) < 2
    except (ValueError, TypeError):
        return False


def find_damage(conn: sqlite3.Connection) -> list[Damage]:
    """Every damaged row of the journal ``conn`` reads (a read-only scan of every sealed
    table), in table order."""
    legacy, damage = _legacy(conn), []
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE "
                                              "type = 'table'")}
    trials = set()
    for trial_id, params, seed, checksum in conn.execute(
            f"SELECT trial_id, params, seed, {_checksum_column(conn, 'trials')} FROM trials "
            "ORDER BY trial_id"):
        trials.add(trial_id)
        if _json_or_damage(params, "trials", trial_id, "parameters", damage) is not None:
            _check_seal("trials", trial_id, (trial_id, params, seed), checksum, legacy, damage)
    for row in conn.execute(f"SELECT {EVAL_COLUMNS}, {_checksum_column(conn, 'evaluations')} "
                            "FROM evaluations ORDER BY eval_id"):
        eval_id, values, checksum = row[0], row[:-1], row[-1]
        before = len(damage)
        _json_or_damage(row[3], "evaluations", eval_id, "tags", damage)
        if row[6] is not None:
            _json_or_damage(row[6], "evaluations", eval_id, "metrics", damage)
        if len(damage) == before and _check_seal("evaluations", eval_id, values, checksum,
                                                 legacy, damage) and row[1] not in trials:
            damage.append(Damage("evaluations", eval_id, f"its trial {row[1]} is not in the "
                                                          "journal"))
    if "extra_evaluations" in tables:
        for kind, eval_id, metrics, checksum in conn.execute(
                "SELECT kind, eval_id, metrics, "
                f"{_checksum_column(conn, 'extra_evaluations')} FROM extra_evaluations "
                "ORDER BY kind, eval_id"):
            key = (kind, eval_id)
            if _json_or_damage(metrics, "extra_evaluations", key, "result", damage) is not None:
                _check_seal("extra_evaluations", key, (kind, eval_id, metrics), checksum, legacy,
                            damage)
    for table, key_columns in (("returns", "kind, eval_id"), ("baseline_returns", "name, kind")):
        if table not in tables:
            continue
        for first, second, n, blob, checksum in conn.execute(
                f"SELECT {key_columns}, n, data, {_checksum_column(conn, table)} FROM {table} "
                f"ORDER BY {key_columns}"):
            _returns_or_damage(table, (first, second), (first, second), n, blob, checksum,
                               legacy, damage)
    return damage


def damage_message(purpose: str, db: Path, damage: Sequence[Damage]) -> str:
    """One line for readers that refuse a damaged journal: which rows, and what to do."""
    if any(d.replay_needs_it for d in damage):
        hint = "restore a backup copy of the run folder, or start a new run"
    else:
        hint = (f"resume the run to run them again (cryptosweep run --resume {db.parent}), or "
                "restore a backup copy")
    return (f"{purpose}: journal {db} has {describe_damage(damage)}; it cannot be read "
            f"safely: {hint}")


@dataclass(frozen=True)
class JournalInfo:
    """A journal checked by :func:`inspect_journal`: where it is and what a resume needs."""

    db: Path
    config: dict[str, Any]
    seed: int
    timestamp: str
    status: str | None
    data: dict[str, Any] | None
    #: damaged rows a resume repairs (:meth:`Journal.repair`); empty when intact
    damage: tuple[Damage, ...] = ()
    #: what a lost ``-wal`` file cost, in words; None when nothing is known lost
    lost_wal: str | None = None

    @property
    def run_dir(self) -> Path:
        return self.db.parent


def journal_path(path: str | Path) -> Path:
    """The ``sweep.db`` a run folder (or the file itself) stands for."""
    path = Path(path)
    return path / DB_NAME if path.is_dir() else path


def lost_wal_frames(db: Path) -> int | None:
    """How many WAL frames (pages written) a journal lost with its ``-wal`` file: read from
    the ``-shm`` index a killed writer leaves beside it (its last frame minus the frames
    already checkpointed into the database). None when the ``-wal`` file is there, or nothing
    says what it held (no ``-shm``: the writer closed, or the index was rebuilt since)."""
    wal, shm = db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")
    if wal.exists() or not shm.is_file():
        return None
    try:
        with open(shm, "rb") as index:
            header = index.read(136)
    except OSError:
        return None
    if len(header) < 136 or not header[12]:  # isInit
        return None
    (last_frame,) = struct.unpack_from("=I", header, 16)
    (backfilled,) = struct.unpack_from("=I", header, 96)
    return max(0, last_frame - backfilled)


def inspect_journal(path: str | Path, *, writable: bool = True,
                    purpose: str = "--resume", repair: bool = False) -> JournalInfo:
    """Check, through a read-only connection, that ``path`` (a run folder or its ``sweep.db``)
    is an intact cryptosweep journal this process may write (``writable``); raise a
    :class:`~cryptosweep.core.errors.ResumeError` starting with ``purpose`` and saying what is wrong
    otherwise. Changes nothing.

    Damaged rows (:func:`find_damage`) are a :class:`JournalDamagedError`, unless ``repair``
    (a resume) and none of them is what the replay needs: they are then returned in
    ``damage``. A ``-wal`` file lost with something in it is said in ``lost_wal`` by a resume
    (which keeps what was checkpointed) and refused by the other readers."""
    db = journal_path(path)
    if not db.is_file():
        raise ResumeError(f"{purpose}: no journal at {db} (expected a run folder or sweep.db)")
    if not os.access(db, os.R_OK):
        raise ResumeError(f"{purpose}: {db} cannot be read (permission denied)")
    lost = lost_wal_frames(db)
    try:
        conn = _read_only_connection(db)
    except sqlite3.Error as exc:
        raise ResumeError(f"{purpose}: {db} cannot be opened ({exc})") from None
    try:
        info = _check_journal(conn, db, purpose, lost)
    finally:
        conn.close()
    if info.damage and (not repair or any(d.replay_needs_it for d in info.damage)):
        needed = [d for d in info.damage if d.replay_needs_it] if repair else info.damage
        if repair:
            raise JournalDamagedError(
                f"{purpose}: journal {db} has {describe_damage(needed)}; a resume replays the "
                "run from its trials' parameters and seeds, so this cannot be repaired: "
                "restore a backup copy of the run folder, or start a new run")
        raise JournalDamagedError(damage_message(purpose, db, info.damage))
    if info.lost_wal is not None and not repair:
        raise JournalDamagedError(
            f"{purpose}: journal {db} {info.lost_wal}; resume the run to run again what was "
            f"lost (cryptosweep run --resume {db.parent})")
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


def _check_journal(conn: sqlite3.Connection, db: Path, purpose: str,
                   lost_frames: int | None) -> JournalInfo:
    try:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE "
                                                  "type = 'table'")}
    except sqlite3.DatabaseError as exc:
        raise ResumeError(f"{purpose}: {db} is not a cryptosweep journal ({exc})") from None
    missing = JOURNAL_TABLES - tables
    if missing:
        lost = ""
        if lost_frames:
            lost = (f"; its write-ahead log ({db.name}-wal) was lost before anything was "
                    "checkpointed into it")
        raise ResumeError(f"{purpose}: {db} is not a cryptosweep journal (a SQLite file without "
                          f"the table(s) {', '.join(sorted(missing))}{lost})")
    damage: list[Damage] = []
    try:
        (verdict,) = conn.execute("PRAGMA integrity_check(1)").fetchone()
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        if verdict == "ok":
            damage = find_damage(conn)
            (finished,) = conn.execute("SELECT COUNT(*) FROM evaluations WHERE status IN "
                                       "('done', 'failed')").fetchone()
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
    lost_wal = None
    if lost_frames:
        lost_wal = (f"lost its write-ahead log ({db.name}-wal, deleted or lost in a crash) with "
                    f"{lost_frames} page write(s) not yet checkpointed: what was journaled after "
                    f"its last checkpoint (at most {CHECKPOINT_SECONDS:g} s of the sweep) is "
                    f"lost; it keeps {finished} finished evaluation(s)")
    return JournalInfo(db=db, config=values["config"], seed=values["seed"],
                       timestamp=str(values["timestamp"]), status=status, data=data,
                       damage=tuple(damage), lost_wal=lost_wal)


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
        self._conn.executescript(_SCHEMA)
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
        the writer. Any write through it fails. Raises ``sqlite3.Error`` when there is no
        readable database at ``path`` (``timeout``: seconds to wait for a lock)."""
        path = Path(path)
        db = (path / DB_NAME if path.is_dir() else path).resolve()
        if not db.is_file():
            raise sqlite3.OperationalError(f"no journal at {db}")
        journal = cls.__new__(cls)
        journal.path = db
        journal._setup(True)
        journal._conn = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=timeout,
                                      check_same_thread=False, isolation_level=None)
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
        where, values = ("kind = ?", (kind,)) if eval_id is None else \
            ("kind = ? AND eval_id = ?", (kind, int(eval_id)))
        with self._lock:
            legacy = _legacy(self._conn)
            rows = self._conn.execute(
                f"SELECT eval_id, n, data, {_checksum_column(self._conn, 'returns')} FROM "
                f"returns WHERE {where} ORDER BY eval_id", values
            ).fetchall()
        damage: list[Damage] = []
        out = {}
        for row_id, n, data, checksum in rows:
            series = _returns_or_damage("returns", (kind, row_id), (kind, row_id), n, data,
                                        checksum, legacy, damage)
            if series is not None:
                out[row_id] = series
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
        with self._lock:
            try:
                legacy = _legacy(self._conn)
                rows = self._conn.execute(
                    "SELECT name, n, data, "
                    f"{_checksum_column(self._conn, 'baseline_returns')} FROM baseline_returns "
                    "WHERE kind = ? ORDER BY name", (kind,)).fetchall()
            except sqlite3.OperationalError as exc:  # an older journal opened read-only
                if "no such table" not in str(exc):
                    raise
                return {}
        damage: list[Damage] = []
        out = {}
        for name, n, data, checksum in rows:
            series = _returns_or_damage("baseline_returns", (name, kind), (name, kind), n, data,
                                        checksum, legacy, damage)
            if series is not None:
                out[name] = series
        self._damaged(damage)
        return out

    # ------------------------------------------------------------------------------ repair

    def repair(self, damage: Iterable[Damage]) -> None:
        """Remove damaged rows (found read-only by :func:`inspect_journal`) and what depends
        on them, in one transaction, so that the resume runs them again with their seeds: a
        damaged evaluation or its validation returns → the evaluation (its row, attempts and
        returns) is run again; a holdout result or its returns → both; a baseline's result
        or returns → the baselines; a re-run's or the champion's result → that task. Trials
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
            else:
                statements.append(("DELETE FROM extra_evaluations WHERE kind = ? AND "
                                   "eval_id = ?", item.key))
        with self._transaction() as cur:
            for statement, values in statements:
                cur.execute(statement, values)

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
