"""A journal checked before anyone writes it: ours (its tables), intact (every row's checksum,
:mod:`.integrity`), of a layout this version reads, writable, and what a resume needs from it
(:class:`JournalInfo`); every check read-only, so that a refused resume changes nothing."""

from __future__ import annotations

import json
import os
import sqlite3
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptosweep.core.errors import ResumeError
from cryptosweep.core.files import unwritable
from cryptosweep.records.integrity import (
    Damage,
    JournalDamagedError,
    damage_message,
    describe_damage,
    find_damage,
    lost_wal_frames,
    shm_holder,
)

DB_NAME = "sweep.db"


#: The most seconds between two checkpoints of the WAL into the database while a run writes.
CHECKPOINT_SECONDS = 5.0


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
    holder = shm_holder(db) if lost else None
    if holder is not None:
        raise ResumeError(
            f"{purpose}: journal {db} lost its write-ahead log ({db.name}-wal) and process "
            f"{holder} still has the journal open, so its index ({db.name}-shm) still "
            "describes the lost log and cannot be rebuilt: close that process (a live view, a "
            "notebook, another reader) and try again")
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


#: What a run folder holds while its journal is being created: the lock and SQLite's files.
CREATING = frozenset({".lock", DB_NAME, f"{DB_NAME}-journal", f"{DB_NAME}-wal", f"{DB_NAME}-shm"})


def never_written(path: str | Path) -> bool:
    """Whether the journal at ``path`` (a run folder or its ``sweep.db``) was never written:
    an empty SQLite database (no table, no write-ahead log lost with something in it) in a
    folder that holds nothing else (:data:`CREATING`), as a run killed between creating the
    file and committing its schema leaves it. Read-only."""
    db = journal_path(path)
    if (not db.is_file() or lost_wal_frames(db)
            or any(entry.name not in CREATING for entry in db.parent.iterdir())):
        return False
    try:
        conn = _read_only_connection(db)
    except sqlite3.Error:
        return False
    try:
        return conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0] == 0
    except sqlite3.DatabaseError:
        return False
    finally:
        conn.close()


def read_only_uri(db: Path, *, immutable_without_wal: bool) -> str:
    """The ``file:`` URI that opens the SQLite file ``db`` read-only (``mode=ro``), its path
    quoted: a "#" or "?" in a folder's name (``REPORTS_DIR=/srv/a#b``) ended the path there,
    and SQLite opened (or, writable, created) ``/srv/a``. ``immutable_without_wal``: also
    ``immutable`` where no ``-wal`` file is beside it (everything is in the main file and no
    process has it open for writing; SQLite then creates no ``-wal``/``-shm`` beside it, so a
    read-only folder can be read and a refused resume leaves the folder as it was)."""
    wal = db.with_name(db.name + "-wal")
    flags = "mode=ro" if wal.exists() or not immutable_without_wal else "mode=ro&immutable=1"
    return f"file:{urllib.parse.quote(str(db.resolve()))}?{flags}"


def _read_only_connection(db: Path, timeout: float = 5.0) -> sqlite3.Connection:
    """A connection that cannot write (:func:`read_only_uri`, immutable without a ``-wal``)."""
    return sqlite3.connect(read_only_uri(db, immutable_without_wal=True), uri=True,
                           timeout=timeout, check_same_thread=False, isolation_level=None)


def _check_journal(conn: sqlite3.Connection, db: Path, purpose: str,
                   lost_frames: int | None) -> JournalInfo:
    try:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE "
                                                  "type = 'table'")}
    except sqlite3.DatabaseError as exc:
        raise ResumeError(f"{purpose}: {db} is not a cryptosweep journal ({exc})") from None
    missing = JOURNAL_TABLES - tables
    if not tables and never_written(db):
        raise ResumeError(
            f"{purpose}: {db} holds no journal yet: its run was stopped (killed) before the "
            "journal was created, so nothing was recorded; start the run again with --config "
            "(the same --run-name may be given)")
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
