"""The kernels papermill starts for our notebooks (the nightly's sweep, every report): reached
over Unix sockets in a private temporary folder (ZeroMQ's IPC transport), not over TCP ports on
localhost. No other user of the machine can connect to them, and ipykernel has no cause to
print that the kernel "is running over TCP without encryption" on every run. A kernel spec that
runs ipykernel's launcher runs it without jsonschema's IRI grammars
(:data:`~cryptosweep.reporting.notebook_imports.KERNEL_LAUNCHER`)."""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

from jupyter_client.manager import AsyncKernelManager

from cryptosweep.reporting.notebook_imports import KERNEL_LAUNCHER

#: The longest path a Unix socket may have (``sun_path``: 108 bytes on Linux, 104 on macOS,
#: with its terminating NUL).
MAX_SOCKET_PATH = 104


class LocalKernelManager(AsyncKernelManager):
    """An :class:`~jupyter_client.manager.AsyncKernelManager` on IPC sockets in a folder of its
    own (mode 0700, removed with the kernel); on localhost TCP where the temporary folder is too
    deep for a socket's name. Pass it as papermill's ``kernel_manager_class``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sockets: str | None = tempfile.mkdtemp(prefix="cryptosweep-kernel-")
        prefix = os.path.join(self.sockets, "kernel")  # sockets kernel-1, kernel-2, ...
        if len(os.fsencode(prefix)) + len("-65535") < MAX_SOCKET_PATH:
            self.transport, self.ip = "ipc", prefix
        else:  # a temporary folder too deep for a socket's name: TCP on localhost, as before
            shutil.rmtree(self.sockets, ignore_errors=True)
            self.sockets = None

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        command = super().format_kernel_cmd(extra_arguments)
        # The kernel spec `make venv` installs: python [-X... options] -m ipykernel_launcher -f
        for at in range(1, len(command) - 1):
            if command[at:at + 2] == ["-m", "ipykernel_launcher"]:
                command[at:at + 2] = ["-c", KERNEL_LAUNCHER]
                break
        return command

    async def _async_interrupt_kernel(self) -> None:
        # jupyter_client interrupts the kernel (SIGINT) before asking it to shut down, once
        # papermill is done with it: a kernel still finishing its last reply logged "ERROR |
        # KeyboardInterrupt caught in kernel." at the end of a `make sweep` that succeeded.
        # The shutdown request alone ends it (else it is killed after the wait). An interrupt
        # asked for otherwise (a cell's timeout: nbclient's interrupt_kernel) is sent.
        if self.shutting_down:
            return
        await super()._async_interrupt_kernel()

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart=restart)
        if not restart and self.sockets is not None:
            shutil.rmtree(self.sockets, ignore_errors=True)
