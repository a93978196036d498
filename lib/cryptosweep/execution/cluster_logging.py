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


def import_distributed() -> ModuleType:
    """``import distributed``, with the :data:`NOISY` loggers quiet again afterwards when
    :func:`quiet_cluster_loggers` asked for it."""
    import distributed

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
