"""One writer per folder: an exclusive ``flock`` on ``<folder>/.lock`` held by the process that
writes the folder, for as long as it writes it: a run folder (:class:`RunLock`) and a models
folder's champion (:func:`hold_folder`: the nightly and its champion steps).

Two ``cryptosweep run --resume`` of one run would both run its unfinished evaluations and then
collide in the journal; two nightlies on one models folder (two reports folders) would rotate
champions into each other's half-made folders. The second writer instead stops at once,
before it changes anything (a run: before it opens the journal or starts a worker), with one
line naming the holder's pid (exit code 2). The lock is the kernel's
(``flock``), not the pid file's existence: it goes away with its process however that ends,
SIGKILL included, so a killed run can always be resumed. The pid written inside only says who
holds it. Readers (``report``, the notebooks, the nightly's checks) never take it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from cryptosweep.core.errors import FolderInUseError, InfrastructureError, ResumeError

LOCK_NAME = ".lock"


class RunLock:
    """The exclusive lock of one run folder (:meth:`acquire`, then :meth:`release`)."""

    def __init__(self, run_dir: Path, fd: int) -> None:
        self.run_dir, self._fd = run_dir, fd

    @classmethod
    def acquire(cls, run_dir: str | os.PathLike[str]) -> RunLock:
        """Lock ``run_dir`` (which must exist) for this process, or raise
        :class:`~cryptosweep.core.errors.ResumeError` naming the process that holds it."""
        run_dir = Path(run_dir)
        fd, holder = _lock(run_dir / LOCK_NAME)
        if fd < 0:
            raise ResumeError(
                f"run folder {run_dir} is in use: {holder} is writing it (lock "
                f"{run_dir / LOCK_NAME}); wait for it to finish, or stop it, then resume")
        return cls(run_dir, fd)

    def release(self) -> None:
        """Unlock (idempotent). The file stays: removing it would race with a new holder."""
        if self._fd < 0:
            return
        fd, self._fd = self._fd, -1
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


#: What a file system without (exclusive) flock answers.
_NO_FLOCK = (errno.ENOLCK, errno.EBADF, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL)


#: The folders this process holds with :func:`hold_folder`: the lock file's path -> [its
#: descriptor, how many holds are open].
_HELD: dict[Path, list[int]] = {}
_HELD_GUARD = threading.Lock()


@contextlib.contextmanager
def hold_folder(folder: str | os.PathLike[str], what: str) -> Iterator[None]:
    """Hold ``folder``'s lock (``<folder>/.lock``, opened for writing: an exclusive ``flock``
    works over NFS only so; the folder is made if missing) while the block runs. Re-entrant
    within this process, whatever its thread (the nightly holds its models folder for the
    whole night; the champion steps it calls hold it again). Another process holding it is a
    :class:`~cryptosweep.core.errors.FolderInUseError` naming its pid, ``what`` naming the
    folder (e.g. "models folder"); a lock the file system refuses is one line too
    (:class:`~cryptosweep.core.errors.InfrastructureError`)."""
    path = Path(folder).resolve() / LOCK_NAME
    with _HELD_GUARD:
        held = _HELD.get(path)
        if held is None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                fd, holder = _lock(path, mode=0o666)  # (less the umask: a group may share it)
            except OSError as exc:
                hint = ("; the file system must support flock" if exc.errno in _NO_FLOCK
                        else "")
                raise InfrastructureError(
                    f"cannot lock the {what} {Path(folder)} ({path}: "
                    f"{exc.strerror or exc}){hint}") from None
            if fd < 0:
                raise FolderInUseError(
                    f"{what} {Path(folder)} is in use: {holder} is writing it (lock {path}); "
                    "wait for it to finish")
            held = _HELD[path] = [fd, 0]
        held[1] += 1
    try:
        yield
    finally:
        with _HELD_GUARD:
            held[1] -= 1
            if held[1] == 0:
                del _HELD[path]
                with contextlib.suppress(OSError):
                    fcntl.flock(held[0], fcntl.LOCK_UN)
                os.close(held[0])


def _lock(path: Path, mode: int = 0o644) -> tuple[int, str]:
    """Take the exclusive lock of the file ``path`` (created with ``mode`` if missing) without
    waiting: ``(descriptor, "")`` with this process's pid written in it, or ``(-1, who holds
    it)``."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, mode)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _read_pid(fd)
        os.close(fd)
        return -1, f"process {holder}" if holder else "another process"
    except BaseException:
        os.close(fd)
        raise
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
    except OSError:  # the pid is only informative: a full disk must not stop the lock
        pass
    return fd, ""


def _read_pid(fd: int) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        text = os.pread(fd, 32, 0).decode().strip()
        return int(text) if text else None
    return None
