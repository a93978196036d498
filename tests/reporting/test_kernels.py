"""The kernels papermill starts for our notebooks: on Unix sockets, not localhost TCP ports
(ipykernel warned on every `make sweep` that the kernel "is running over TCP without
encryption", twice), leaving nothing behind."""

from __future__ import annotations

import asyncio
import signal
import stat
import tempfile
from pathlib import Path

import nbformat
import papermill

from cryptosweep.core.paths import KERNEL
from cryptosweep.reporting.kernels import LocalKernelManager


def test_a_notebook_runs_on_unix_sockets_and_leaves_nothing_behind(tmp_path, monkeypatch,
                                                                     capfd):
    started: list[LocalKernelManager] = []

    class Recorded(LocalKernelManager):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            started.append(self)

    monkeypatch.chdir(tmp_path)
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell("print('hello')")]
    nbformat.write(notebook, tmp_path / "in.ipynb")
    papermill.execute_notebook(str(tmp_path / "in.ipynb"), str(tmp_path / "out.ipynb"),
                               kernel_name=KERNEL, progress_bar=False,
                               kernel_manager_class=Recorded)
    (kernel,) = started
    assert kernel.transport == "ipc" and kernel.ip.startswith(kernel.sockets)
    assert not Path(kernel.sockets).exists()  # removed with the kernel
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.ipynb", "out.ipynb"]
    assert "without encryption" not in capfd.readouterr().err


def test_the_sockets_folder_is_the_users_alone():
    kernel = LocalKernelManager()
    assert kernel.sockets is not None
    try:
        assert stat.S_IMODE(Path(kernel.sockets).stat().st_mode) == 0o700
    finally:
        Path(kernel.sockets).rmdir()


def test_a_temporary_folder_too_deep_for_a_socket_keeps_tcp(tmp_path, monkeypatch):
    """A socket's path has at most 104-108 bytes: a deep TMPDIR would make the kernel fail to
    start, where TCP on localhost works."""
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    monkeypatch.setattr(tempfile, "tempdir", str(deep))
    kernel = LocalKernelManager()
    assert kernel.sockets is None and kernel.transport == "tcp"
    assert list(deep.iterdir()) == []  # its folder was not kept


def test_shutting_the_kernel_down_sends_it_no_interrupt():
    """jupyter_client interrupts a kernel (SIGINT) before asking it to shut down: a kernel
    still finishing papermill's last reply logged "[IPKernelApp] ERROR | KeyboardInterrupt
    caught in kernel." at the end of a `make sweep` that succeeded (seen by a new user). The
    shutdown request alone ends it; an interrupt asked for (nbclient's, on a cell's timeout)
    is still sent."""

    async def run() -> tuple[list[int], list[int]]:
        kernel = LocalKernelManager(kernel_name=KERNEL)
        await kernel.start_kernel()
        sent: list[int] = []
        send = kernel.provisioner.send_signal

        async def recorded(signum: int) -> None:
            sent.append(signum)
            await send(signum)

        kernel.provisioner.send_signal = recorded
        try:
            await kernel.interrupt_kernel()
            asked = list(sent)
        finally:
            await kernel.shutdown_kernel()
        return asked, sent[len(asked):]

    asked, at_shutdown = asyncio.run(run())
    assert asked == [signal.SIGINT]
    assert signal.SIGINT not in at_shutdown
