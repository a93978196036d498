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
      logging.getLogger("tornado").getEffectiveLevel())
"""


def test_distributed_is_imported_only_for_a_cluster_and_stays_quiet_after():
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    # without the second quieting: distributed INFO (20), tornado CRITICAL (50)
    assert done.stdout.split() == [str(logging.ERROR)] * 2
