"""Errors a user can cause, each mapped to the exit code the CLI ends with.

The CLI prints ``str(error)`` on one line and exits with ``error.exit_code``; no traceback.
Anything else that escapes is a bug and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input from the user (config, data file, flag, path): exit code 2."""

    exit_code = 2


class ConfigError(UserError):
    """The sweep configuration (file, override or flag) is invalid."""


class DataError(UserError):
    """An OHLCV data file is missing, unreadable or fails validation."""


class ResumeError(UserError):
    """A run folder or journal cannot be resumed as asked."""


class GPUUnavailableError(Exception):
    """GPUs were asked for explicitly (``--gpu-ids``) but none is usable: exit code 3."""

    exit_code = 3


class SweepFailedError(Exception):
    """The sweep stopped itself (e.g. too many failed trials); what finished is kept: exit 4."""

    exit_code = 4


class ReportError(Exception):
    """The analysis notebook or its HTML conversion failed: exit code 5."""

    exit_code = 5
