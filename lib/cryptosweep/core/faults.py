"""Telling an infrastructure fault from a trial's own failure.

A trial that raises has failed, and its failure is a result: it is journaled and the sweep goes
on. A full disk is not a result. When a checkpoint, a journal write or a results file fails for
lack of space, quota or a working disk, the evaluation says nothing about its configuration,
and recording it as failed would make a resumed sweep differ from an uninterrupted one. Such a
fault stops the sweep instead (:class:`~cryptosweep.core.errors.InfrastructureError`, exit 6) and
leaves the evaluation unfinished, for ``--resume`` to run again.

What counts: an ``OSError`` whose errno is ENOSPC, EDQUOT, EIO or EROFS (also the errno of a
NumPy, torch or plain ``open`` write), SQLite's ``database or disk is full`` and ``disk I/O
error``, and the messages the libraries' C++ writers raise without an errno (LightGBM
``Cannot write binary data``, XGBoost ``FileStream.Write incomplete``; CatBoost's carry the
system's message), anywhere in an exception's chain of causes. ``torch.save`` reports a full
disk as ``unexpected pos``, which says nothing: the torch adapter writes NumPy files instead.
"""

from __future__ import annotations

import errno
import sqlite3

#: errnos of a machine that cannot store what it is asked to.
INFRASTRUCTURE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS})
#: SQLite primary result codes of the same: SQLITE_IOERR (10), SQLITE_FULL (13).
SQLITE_CODES = frozenset({10, 13})
#: Messages of writes that failed where the library gives no errno (lower case).
INFRASTRUCTURE_MESSAGES = (
    "no space left on device",
    "disk quota exceeded",
    "read-only file system",
    "input/output error",
    "database or disk is full",
    "disk i/o error",
    "filestream.write incomplete",  # XGBoost's file stream (save_model)
    "cannot write binary data",  # LightGBM's writer (save_model)
)


def infrastructure_fault(exc: BaseException) -> str | None:
    """A one-line description of the infrastructure fault behind ``exc`` (or one of its
    causes), or ``None`` when it is an ordinary failure."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        why = _describe(current)
        if why is not None:
            return why
        current = current.__cause__ or current.__context__
    return None


def _describe(exc: BaseException) -> str | None:
    if isinstance(exc, OSError) and exc.errno in INFRASTRUCTURE_ERRNOS:
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror or errno.errorcode.get(exc.errno, exc.errno)}{where}"
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        if code is not None and code & 0xFF in SQLITE_CODES:
            return f"SQLite: {exc}"
    text = " ".join(str(exc).split())
    lowered = text.lower()
    if any(message in lowered for message in INFRASTRUCTURE_MESSAGES):
        return f"{type(exc).__name__}: {text[:200]}"
    return None
