"""One writer per run folder: an exclusive ``flock`` on ``<run>/.lock`` held by the process that
writes the run, for as long as it writes it.

Two ``cryptosweep run --resume`` of one run would both run its unfinished evaluations and then
collide in the journal. The second writer instead stops at once, before it opens the journal or
starts a worker, with one line naming the holder's pid (exit code 2). The lock is the kernel's
(``flock``), not the pid file's existence: it goes away with its process however that ends,
SIGKILL included, so a killed run can always be resumed. The pid written inside only says who
holds it. Readers (``report``, the notebooks, the nightly's checks) never take it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from cryptosweep.core.errors import ResumeError

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
        path = run_dir / LOCK_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            who = f"process {holder}" if holder else "another process"
            raise ResumeError(
                f"run folder {run_dir} is in use: {who} is writing it (lock {path}); wait for "
                "it to finish, or stop it, then resume"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError:  # the pid is only informative: a full disk must not stop the lock
            pass
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


def _read_pid(fd: int) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        text = os.pread(fd, 32, 0).decode().strip()
        return int(text) if text else None
    return None
