"""Errors a user (or the machine) can cause, each mapped to the exit code the CLI, the nightly
job and the notebooks' callers end with. This is the one table of exit codes: 0 ok, 1 a bug
(its traceback), 2 bad input, 3 GPUs absent, 4 the sweep stopped itself, 5 the report (or
publishing, or promotion) failed, 6 the machine failed the sweep (disk full, I/O error),
130/143 interrupted.

Every error the package raises on purpose derives from :class:`CryptosweepError`, which carries
its exit code: the CLI catches that one class, prints ``str(error)`` on one line and exits with
``error.exit_code``; no traceback. Anything else that escapes is a bug and keeps its traceback.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from types import FrameType

EXIT_OK = 0
EXIT_BUG = 1  # an unexpected exception: its traceback is the report
EXIT_USAGE = 2
EXIT_GPU = 3
EXIT_SWEEP = 4
EXIT_REPORT = 5
EXIT_INFRASTRUCTURE = 6  # the machine failed the sweep (disk full, I/O error): free it, resume
EXIT_INTERRUPTED = 130  # SIGINT (Ctrl-C): 128 + 2
EXIT_TERMINATED = 143  # SIGTERM: 128 + 15


class CryptosweepError(Exception):
    """The root of every error the package raises on purpose; ``exit_code`` is what the CLI,
    the nightly and a notebook's caller end with (as Optuna's ``OptunaError``)."""

    exit_code: int = EXIT_SWEEP


class UserError(CryptosweepError):
    """Bad input from the user (config, data file, flag, path): exit code 2."""

    exit_code = EXIT_USAGE


class ConfigError(UserError):
    """The sweep configuration (file, override or flag) is invalid."""


class DataError(UserError):
    """An OHLCV data file is missing, unreadable or fails validation."""


class ResumeError(UserError):
    """A run folder or journal cannot be resumed as asked."""


class FolderInUseError(UserError):
    """A folder that one process writes at a time (its lock: :mod:`cryptosweep.core.locking`)
    is being written by another."""


class ModelError(UserError):
    """A saved model folder is missing, changed since it was saved, from another version, or
    made with another library version than the one installed."""


class GPUUnavailableError(CryptosweepError):
    """GPUs were asked for explicitly (``--gpu-ids``) but none is usable: exit code 3."""

    exit_code = EXIT_GPU


class SweepFailedError(CryptosweepError):
    """The sweep stopped itself (e.g. too many failed trials); what finished is kept: exit 4."""

    exit_code = EXIT_SWEEP


class ReportError(CryptosweepError):
    """The analysis notebook or its HTML conversion failed: exit code 5."""

    exit_code = EXIT_REPORT


class InfrastructureError(CryptosweepError):
    """The machine, not the sweep, failed: out of disk space or quota, an I/O error, a file
    system gone read-only, SQLite's "database or disk is full". Nothing is recorded as a trial
    result; the evaluations it hit stay unfinished in the journal, so that a ``--resume`` once
    the fault is fixed runs them again and ends as an uninterrupted run would: exit code 6."""

    exit_code = EXIT_INFRASTRUCTURE


class SweepInterrupted(KeyboardInterrupt):
    """A sweep stopped by SIGINT or SIGTERM; ``run_dir`` is what ``--resume`` continues."""

    def __init__(self, run_dir: object = None, signal_name: str = "SIGINT",
                 command: str = "run") -> None:
        super().__init__(signal_name)
        self.run_dir, self.signal_name, self.command = run_dir, signal_name, command

    @property
    def exit_code(self) -> int:
        return EXIT_TERMINATED if self.signal_name == "SIGTERM" else EXIT_INTERRUPTED

    def __str__(self) -> str:
        what = f"interrupted ({self.signal_name})"
        if self.run_dir is None:
            return f"{what} before a run folder was made; nothing to resume"
        return f"{what}; resume with: cryptosweep {self.command} --resume {self.run_dir}"


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """While the block runs, SIGTERM (systemd stop, ``kill``) interrupts like Ctrl-C: it raises
    :class:`SweepInterrupted` in the main thread, so the sweep unwinds, closes its workers and
    journal, and says how to resume (exit code 143)."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise SweepInterrupted(None, "SIGTERM")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def error_classes() -> list[type[CryptosweepError]]:
    """Every error class with an exit code (the root's subclasses, wherever they are defined),
    for callers that only see an exception's name (an executed notebook records ``ename``)."""
    found: list[type[CryptosweepError]] = []
    pending: list[type[CryptosweepError]] = [CryptosweepError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


def exit_code_for(error_name: str, default: int = EXIT_SWEEP) -> int:
    """The exit code of the error class called ``error_name`` (``default`` for any other)."""
    for cls in error_classes():
        if cls.__name__ == error_name:
            return int(cls.exit_code)
    return default
