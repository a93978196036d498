"""The kernels papermill starts for our notebooks (the nightly's sweep, every report): reached
over Unix sockets in a private temporary folder (ZeroMQ's IPC transport), not over TCP ports on
localhost. No other user of the machine can connect to them, and ipykernel has no cause to
print that the kernel "is running over TCP without encryption" on every run."""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

from jupyter_client.manager import AsyncKernelManager


class LocalKernelManager(AsyncKernelManager):
    """An :class:`~jupyter_client.manager.AsyncKernelManager` on IPC sockets in a folder of its
    own (mode 0700, removed with the kernel). Pass it as papermill's
    ``kernel_manager_class``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sockets = tempfile.mkdtemp(prefix="cryptosweep-kernel-")
        self.transport = "ipc"
        self.ip = os.path.join(self.sockets, "kernel")  # sockets kernel-1, kernel-2, ...

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart=restart)
        if not restart:
            shutil.rmtree(self.sockets, ignore_errors=True)
