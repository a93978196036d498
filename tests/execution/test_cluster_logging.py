"""The cluster's loggers stay quiet once asked, and an in-process run never imports dask's
``distributed`` (:mod:`cryptosweep.execution.cluster_logging`)."""

from __future__ import annotations

import logging
import subprocess
import sys

PROBE = """
import logging, sys
from cryptosweep.logs import configure_logging
configure_logging("INFO")
assert "distributed" not in sys.modules, "configure_logging imported distributed"
from cryptosweep.execution.cluster_logging import import_distributed
import_distributed()  # distributed's own logging configuration sets INFO on import
print(logging.getLogger("distributed").getEffectiveLevel(),
      logging.getLogger("tornado").getEffectiveLevel(),
      min(logging.getLogger(name).getEffectiveLevel()
          for name in list(logging.root.manager.loggerDict)
          if name.split(".")[0] in ("distributed", "tornado")))
"""


def test_distributed_is_imported_only_for_a_cluster_and_stays_quiet_after():
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    # without the second quieting: distributed INFO (20), tornado CRITICAL (50); without the
    # children: distributed.client and others at WARNING (30), their own configured levels
    assert done.stdout.split() == [str(logging.ERROR)] * 3


def test_shutting_a_cluster_down_logs_no_callback_tracebacks(caplog):
    """A Ctrl-C cancels tasks in flight and shuts the cluster down: tornado's "Exception in
    callback" tracebacks about the dropped futures reached the terminal (once in six suite
    runs) under the one line that says how to resume. During the shutdown the cluster's
    loggers say only what is critical; their levels come back after it."""
    from cryptosweep.execution.cluster_logging import NOISY, silenced_cluster_loggers

    # As distributed's own configuration leaves them (the suite caught a child with its own
    # level logging through the silenced parent): a level on the child, not only the parent.
    children = {"distributed.client": logging.WARNING, "tornado.application": logging.ERROR}
    kept = {name: logging.getLogger(name).level for name in children}
    try:
        for name, level in children.items():
            logging.getLogger(name).setLevel(level)
        before = {name: logging.getLogger(name).level for name in (*NOISY, *children)}
        with caplog.at_level(logging.DEBUG), silenced_cluster_loggers():
            try:
                raise RuntimeError("a future dropped by the shutdown")
            except RuntimeError:
                logging.getLogger("tornado.application").exception("Exception in callback")
            logging.getLogger("distributed.client").error("shutting down with tasks in flight")
        assert not [r for r in caplog.records if r.name.startswith(("tornado", "distributed"))]
        assert {name: logging.getLogger(name).level for name in before} == before
    finally:
        for name, level in kept.items():
            logging.getLogger(name).setLevel(level)
