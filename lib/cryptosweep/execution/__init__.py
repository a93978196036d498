"""Where evaluations run: executors (in-process, dask, dask-cuda, a remote scheduler), the
worker functions, scheduler checks, the resource monitor, progress, checkpoints, the machine."""

from __future__ import annotations

from cryptosweep.core.lazy import lazy_exports

_EXPORTS = {
    "make_executor": "cryptosweep.execution.executors",
    "Executor": "cryptosweep.execution.executors",
    "system_info": "cryptosweep.execution.environment",
}

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
