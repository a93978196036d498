"""Logging for the entry points: the CLI and the sweep notebook configure it the same way —
the package's lines on stderr (on stdout in a Jupyter kernel, where stderr is drawn as a red
error block), the cluster's chatter (dask's scheduler and nanny messages) only when something
is wrong."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from cryptosweep.execution.cluster_logging import quiet_cluster_loggers

FORMAT = "%(asctime)s %(levelname)s %(message)s"


class _StderrHandler(logging.StreamHandler):
    """A stream handler that writes to whatever ``sys.stderr`` (or ``sys.stdout``) is when a
    record is emitted (a notebook kernel, or a test's capture, may replace it after logging was
    configured; a handler bound to the old one would write to a closed stream)."""

    def __init__(self, name: str = "stderr") -> None:
        self._stream_name = name
        super().__init__(getattr(sys, name))

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return getattr(sys, self._stream_name)

    @stream.setter
    def stream(self, value: TextIO) -> None:  # the base class assigns it; stderr it is
        pass


def in_jupyter_kernel() -> bool:
    """Whether this process is a Jupyter kernel (a notebook, papermill)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return getattr(shell, "kernel", None) is not None


def configure_logging(level: str | int = "INFO", stream: TextIO | None = None,
                      time_format: str | None = "%H:%M:%S") -> None:
    """Send the ``cryptosweep`` logger's records at ``level`` to ``stream`` (stderr; stdout in
    a Jupyter kernel, so that a notebook's INFO lines are not red error blocks), once per
    process however often it is called, and keep the cluster's loggers at ERROR
    (:func:`~cryptosweep.execution.cluster_logging.quiet_cluster_loggers`, which also holds
    once ``distributed`` is imported to start a cluster).
    """
    package = logging.getLogger("cryptosweep")
    package.setLevel(level)
    if not any(getattr(h, "_cryptosweep", False) for h in package.handlers):
        handler = (logging.StreamHandler(stream) if stream is not None
                   else _StderrHandler("stdout" if in_jupyter_kernel() else "stderr"))
        handler.setFormatter(logging.Formatter(FORMAT, time_format))
        handler._cryptosweep = True  # type: ignore[attr-defined]
        package.addHandler(handler)
    quiet_cluster_loggers()
