"""The cluster's loggers (dask ``distributed``, ``tornado``, ``bokeh``): quiet unless something
is wrong, without importing dask where no cluster starts.

``distributed`` installs its own logging configuration (INFO) when it is imported, which would
undo a level set before. :func:`quiet_cluster_loggers` sets the levels now and remembers it;
every place that starts or joins a cluster imports ``distributed`` through
:func:`import_distributed`, which sets them again. An in-process sweep never pays the second
and a half that importing ``distributed`` costs.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import PurePath
from types import ModuleType

#: Third-party loggers that speak at INFO about every worker they start.
NOISY = ("distributed", "tornado", "bokeh")

_quiet = False


def _apply() -> None:
    for logger in _noisy_loggers():
        logger.setLevel(logging.ERROR)


def _noisy_loggers() -> list[logging.Logger]:
    """The :data:`NOISY` loggers and every existing one under them: distributed's own
    configuration gives some children (distributed.client, distributed.worker, ...) levels of
    their own, which a parent's level does not override."""
    names = [name for name in list(logging.root.manager.loggerDict)
             if name.split(".")[0] in NOISY]
    return [logging.getLogger(name) for name in sorted({*NOISY, *names})]


def quiet_cluster_loggers() -> None:
    """Keep :data:`NOISY` loggers at ERROR, now and after ``distributed`` is imported."""
    global _quiet
    _quiet = True
    _apply()


class UnstartedSyncCancel(logging.Filter):
    """Drops the one traceback ``distributed.utils.sync`` logs after a Ctrl-C that came before
    its coroutine made the future to cancel (the loop thread busy, say): its ``cancel``
    callback reads the unassigned variable, ``NameError: cannot access free variable
    'future'``, which tornado logs as "Exception in callback" (distributed 2026.7; the
    handling of the unassigned future of its pull request 5758 is gone). There was nothing to
    cancel, so nothing is lost; every other record passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if not isinstance(error, NameError) or "'future'" not in str(error):
            return True
        trace = error.__traceback__
        while trace is not None and trace.tb_next is not None:
            trace = trace.tb_next
        code = trace.tb_frame.f_code if trace is not None else None
        return not (code is not None and code.co_name == "cancel"
                    and PurePath(code.co_filename).parts[-2:] == ("distributed", "utils.py"))


_SYNC_CANCEL = UnstartedSyncCancel()


def import_distributed() -> ModuleType:
    """``import distributed``, with the :data:`NOISY` loggers quiet again afterwards when
    :func:`quiet_cluster_loggers` asked for it, and :class:`UnstartedSyncCancel` on tornado's
    callback logger (a Ctrl-C's stray traceback)."""
    import distributed

    logging.getLogger("tornado.application").addFilter(_SYNC_CANCEL)  # once: a set
    if _quiet:
        _apply()
    return distributed


@contextlib.contextmanager
def silenced_cluster_loggers() -> Iterator[None]:
    """The :data:`NOISY` loggers at CRITICAL for the block: a cluster being shut down while
    tasks are cancelled (a Ctrl-C) logs tornado's "Exception in callback" tracebacks about
    futures it is dropping, after every result is journaled; they say nothing about the run."""
    loggers = _noisy_loggers()
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
