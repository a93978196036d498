"""Durable file writes and canonical JSON: the one implementation every writer of the package
uses.

A file is written under a temporary name in its own folder, flushed to disk (``fsync``) and
renamed over the target, then the folder is synced so that the rename itself survives a crash:
a reader sees the old file or the new one, never half of one. On any failure the temporary file
is removed and the target is left as it was.

Permissions: files people read (reports, results) get ``0666 & ~umask``; ``private=True``
gives ``0600`` for anything that may hold a secret or private results.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from cryptosweep.core.errors import UserError

PRIVATE_MODE = 0o600
#: The first bytes of every SQLite database file (the file format's header string).
SQLITE_HEADER = b"SQLite format 3\x00"


def canonical_json(value: Any) -> str:
    """Canonical JSON: sorted keys, no whitespace, NaN and infinity rejected (they are not
    JSON), NumPy scalars as their Python values. Equal values give equal text, so it is what
    the journal stores, what digests are taken of and what equality checks compare."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False,
                      default=_plain)


def finite_or_none(value: Any) -> Any:
    """``value`` with every NaN or infinite number replaced by None, in dicts, lists and tuples
    at any depth (a statistic that is not defined for this run, e.g. a slope over Sharpe ratios
    that do not vary; a Calmar ratio whose annualised return overflows a float): what strict
    JSON (:func:`canonical_json`) can hold. NumPy arrays are left as they are."""
    if isinstance(value, dict):
        return {key: finite_or_none(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite_or_none(item) for item in value]
    if isinstance(value, float | np.floating):
        return float(value) if np.isfinite(value) else None
    return value


def pretty_json(value: Any) -> str:
    """The indented form of :func:`canonical_json` for files people read (ends in a newline)."""
    return json.dumps(value, indent=2, sort_keys=True, allow_nan=False, default=_plain) + "\n"


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def public_mode() -> int:
    """``0666`` less the process umask: what ``open()`` would have given."""
    return 0o666 & ~_umask()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, private: bool = False,
                mode: int | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path`` (with the same suffix, so that libraries which
    pick a format from it still do); when the block ends without an exception, the file is
    synced, given its permissions (``mode`` when given, else public or private) and renamed
    to ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:12]}.tmp{path.suffix}")
    try:
        yield tmp
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, mode if mode is not None else PRIVATE_MODE if private else public_mode())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    sync_folder(path.parent)


def sync_folder(folder: Path) -> None:
    """Flush a folder's entries (a rename or a new file in it) to disk, where the platform
    lets a folder be opened and synced."""
    with contextlib.suppress(OSError):  # not every platform lets a folder be opened and synced
        handle = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)


def unwritable(path: str | os.PathLike[str]) -> str | None:
    """Why this process cannot write ``path`` (``"read-only file system"``, ``"permission
    denied"``), or ``None`` when it can (or when ``path`` does not exist)."""
    if not os.path.exists(path) or os.access(path, os.W_OK):
        return None
    with contextlib.suppress(OSError):
        if os.statvfs(path).f_flag & os.ST_RDONLY:
            return "read-only file system"
    return "permission denied"


#: The longest name one folder entry may have on Linux file systems (``NAME_MAX``), in bytes.
NAME_MAX = 255
#: Pseudo file systems that hold no user files: an output there is a mistake, not a fault.
_PSEUDO_ROOTS = ("/proc", "/sys", "/dev")


def output_problem(path: str | os.PathLike[str], *, folder: bool = False) -> str | None:
    """Why ``path`` cannot be written as a command's output (a file, or with ``folder`` a
    folder), checked before anything is created: a name longer than :data:`NAME_MAX` bytes, a
    folder where a file goes (or a file where a folder goes), a file where a folder above it
    must be, a pseudo file system (``/proc``, ``/sys``, ``/dev``), or a read-only or forbidden
    place (:func:`unwritable`); ``None`` if nothing is known to be wrong."""
    path = Path(path)
    for part in path.parts:
        if len(os.fsencode(part)) > NAME_MAX:
            return f"the name {part[:40]!r}... is longer than {NAME_MAX} bytes"
    absolute = Path(os.path.abspath(path))
    try:
        resolved = absolute.resolve()
    except (RuntimeError, OSError) as exc:  # RuntimeError: a symbolic link loop (3.11)
        return f"it cannot be resolved ({getattr(exc, 'strerror', None) or exc})"
    if any(resolved == Path(root) or Path(root) in resolved.parents for root in _PSEUDO_ROOTS):
        return f"{resolved} is on a pseudo file system, not a place for files"
    if path.exists():
        if path.is_dir() and not folder:
            return "it is a folder, not a file"
        if folder and not path.is_dir():
            return "it is a file, not a folder"
    ancestor = absolute.parent if not path.exists() or not folder else absolute
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return f"{ancestor} is a file, not a folder"
    why = unwritable(ancestor)
    return None if why is None else f"{ancestor}: {why}"


def write_with(path: str | os.PathLike[str], write: Callable[[Path], None], *,
               private: bool = False, mode: int | None = None) -> Path:
    """Atomically create ``path`` by calling ``write(tmp)`` (e.g. a library's own ``save``)."""
    with atomic_path(path, private=private, mode=mode) as tmp:
        write(tmp)
    return Path(path)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes, *,
                       private: bool = False) -> Path:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return write_with(path, lambda tmp: tmp.write_bytes(data), private=private)


def write_text_atomic(path: str | os.PathLike[str], text: str, *, private: bool = False) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"), private=private)


def write_json_atomic(path: str | os.PathLike[str], data: Any, *, private: bool = False) -> Path:
    """``data`` as indented, key-sorted JSON (:func:`pretty_json`)."""
    return write_text_atomic(path, pretty_json(data), private=private)


def copy_atomic(source: str | os.PathLike[str], target: str | os.PathLike[str], *,
                private: bool = False) -> Path:
    """Copy ``source`` to ``target`` so that a reader sees the old file or the new one."""
    Path(target).parent.mkdir(parents=True, exist_ok=True)

    def copy(tmp: Path) -> None:
        with open(source, "rb") as src, open(tmp, "wb") as out:
            shutil.copyfileobj(src, out)

    return write_with(target, copy, private=private)


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes (hex), read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def append_lines(path: str | Path, lines: list[str]) -> None:
    """Append ``lines`` (each ending in a newline) to a JSON-lines file in one write, then
    fsync: a kill leaves at most a torn last line, which :func:`read_json_lines` skips. When
    the file does not end in a newline (a torn last line), the text starts with one, so that
    the first new record gets a line of its own instead of being glued onto the torn one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        text = "".join(lines).encode()
        size = os.fstat(handle).st_size
        if size and os.pread(handle, 1, size - 1) != b"\n":
            text = b"\n" + text
        view = memoryview(text)
        while view:  # a short write (a nearly full disk) is not the end of it
            view = view[os.write(handle, view):]
        os.fsync(handle)
    finally:
        os.close(handle)


def read_json_lines(path: str | Path, *, what: str = "a JSON-lines file",
                    check: Callable[[dict[str, Any]], str | None] | None = None,
                    ) -> list[dict[str, Any]]:
    """Every record (JSON object) of a JSON-lines file, oldest first; [] for no file.

    A torn line (the start of a record a kill cut short: it begins with ``{`` and is not
    JSON) is skipped, wherever it is (an append after it starts on a line of its own, see
    :func:`append_lines`); a record an older writer glued onto a torn line is read back. Any
    other damage is a :class:`~cryptosweep.core.errors.UserError` (exit 2) naming the file and
    the line: bytes that are not UTF-8, JSON that is not an object, or an object ``check``
    finds wrong (it returns what is wrong, or None). ``what`` names the file's content for
    that message (``"the champion history"``)."""
    path = Path(path)
    if not path.is_file():
        return []
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    records = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        record, problem = _line_record(raw.strip(), check)
        if problem is not None:
            raise UserError(f"{path}, line {number}: {problem}; repair or delete that line of "
                            f"{what} (one JSON object per line)")
        if record is not None:
            records.append(record)
    return records


def _line_record(raw: bytes, check: Callable[[dict[str, Any]], str | None] | None,
                 ) -> tuple[dict[str, Any] | None, str | None]:
    """One line of :func:`read_json_lines`: ``(record, None)``, ``(None, None)`` for a torn
    line, or ``(None, what is wrong)``."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None, "not UTF-8 text"
    try:
        value = json.loads(text)
    except ValueError:
        if not text.startswith("{"):
            return None, f"not JSON ({_excerpt(text)})"
        glued = _glued_record(text)  # torn by a kill; an older append may have glued one on
        if glued is None or (check is not None and check(glued) is not None):
            return None, None
        return glued, None
    if not isinstance(value, dict):
        return None, f"not a JSON object ({_excerpt(text)})"
    problem = None if check is None else check(value)
    return (value, None) if problem is None else (None, problem)


def _excerpt(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


#: Keys every record of the JSON-lines files has at its top level (the champion history's
#: ``time``, the paper trades' ``entry_time``): a glued record must have one.
RECORD_TIME_KEYS = ("time", "entry_time")


def _glued_record(text: str) -> dict[str, Any] | None:
    """The whole record at the end of a line that an append without a newline glued onto a
    torn one (``{"time":"2024-{"time":...}``), or None. Only a record with one of
    :data:`RECORD_TIME_KEYS`: the tail of a record torn just before its last ``}`` is one of
    its nested objects, not a record."""
    start = text.find("{", 1)
    while start != -1:
        try:
            value = json.loads(text[start:])
        except ValueError:
            start = text.find("{", start + 1)
            continue
        if isinstance(value, dict) and any(key in value for key in RECORD_TIME_KEYS):
            return value
        return None
    return None
