"""What the worker processes of a cluster this process starts log (a dask worker plugin, so a
worker that its nanny starts again, after a timed-out trial, is set up the same way).

Imported only where such a cluster starts: it imports ``distributed``.
"""

from __future__ import annotations

import logging
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

#: What distributed logs at ERROR, with a traceback, from a worker process whose heartbeat
#: finds the scheduler gone.
HEARTBEAT_FAILURE = "Failed to communicate with scheduler during heartbeat."


class _DropHeartbeatFailures(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg != HEARTBEAT_FAILURE


class QuietShutdown(WorkerPlugin):
    """Worker processes of a local cluster keep every log but the heartbeat failure.

    The scheduler of a cluster this process starts lives in this process. Its workers' heartbeat
    fails when the cluster is shut down (an interrupted sweep, after every result is
    journaled) and a worker busy with a trial closes after the scheduler: the worker's
    traceback reached the terminal under the line that says how to resume. It could also fail
    while this process stalls (suspended, or its event loop held): the worker goes on and
    tries again at its next heartbeat, and a worker the scheduler gives up on comes back to
    the sweep as a lost evaluation, which the runner reports; only the worker's own line about
    it is dropped. Every other log of the worker (a fault) is kept.
    """

    name = "cryptosweep-quiet-shutdown"
    idempotent = True

    def setup(self, worker: Any) -> None:
        logger = logging.getLogger("distributed.worker")
        if not any(isinstance(f, _DropHeartbeatFailures) for f in logger.filters):
            logger.addFilter(_DropHeartbeatFailures())
