"""The journal's rows and their integrity: how per-bar returns are packed (float64, zlib),
a checksum per stored row (BLAKE2b of the row's canonical content), the damage a reader finds
(which table, which row, what is wrong) and how it is said in one line, and what a lost
write-ahead log cost. Every check is read-only."""

from __future__ import annotations

import fcntl
import hashlib
import json
import math
import os
import sqlite3
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cryptosweep.core.errors import ResumeError

#: The tables whose rows carry a checksum.
SEALED_TABLES = ("trials", "evaluations", "returns", "extra_evaluations", "baseline_returns",
                 "extra_returns")
#: The tables of per-bar returns and their key columns.
RETURNS_KEYS = {"returns": "kind, eval_id", "baseline_returns": "name, kind",
                "extra_returns": "kind, eval_id"}
#: The journal schema from which a table's rows carry a checksum (2 unless named): rows of an
#: older journal without one are legacy, not damage.
SEALED_SINCE = {"extra_returns": 3}


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
        elif self.table == "extra_returns":
            kind, eval_id = self.key
            what = f"the {kind} returns of evaluation {eval_id}"
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


def _legacy(conn: sqlite3.Connection, table: str = "trials") -> bool:
    """Whether rows of ``table`` without a checksum are accepted: a journal made before the
    schema that sealed them (:data:`SEALED_SINCE`)."""
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    try:
        return row is None or int(json.loads(row[0])) < SEALED_SINCE.get(table, 2)
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
    for table, key_columns in RETURNS_KEYS.items():
        if table not in tables:
            continue
        for first, second, n, blob, checksum in conn.execute(
                f"SELECT {key_columns}, n, data, {_checksum_column(conn, table)} FROM {table} "
                f"ORDER BY {key_columns}"):
            _returns_or_damage(table, (first, second), (first, second), n, blob, checksum,
                               _legacy(conn, table), damage)
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


#: The byte of the ``-shm`` file every connection to a WAL journal holds a lock on (SQLite's
#: unix VFS: ``UNIX_SHM_DMS``, after the header and the eight WAL locks).
SHM_DMS_BYTE = 128


def shm_holder(db: Path) -> int | None:
    """The pid of another process with the journal ``db`` open (a lock on its ``-shm`` file's
    ``SHM_DMS_BYTE``), else None. While one has it open, SQLite trusts the ``-shm`` index as
    it is: after a lost ``-wal``, that index describes frames that are gone, and a writer
    opening the journal then fails with "disk I/O error". Read-only (``F_GETLK``)."""
    shm = db.with_name(db.name + "-shm")
    try:
        fd = os.open(shm, os.O_RDONLY)
    except OSError:
        return None
    try:
        query = struct.pack("hhqqi", fcntl.F_WRLCK, os.SEEK_SET, SHM_DMS_BYTE, 1, 0)
        answer = fcntl.fcntl(fd, fcntl.F_GETLK, query)
    except OSError:
        return None
    finally:
        os.close(fd)
    kind, _, _, _, pid = struct.unpack("hhqqi", answer)
    return pid if kind != fcntl.F_UNLCK else None


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
