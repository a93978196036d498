"""The kernels papermill starts for our notebooks: on Unix sockets, not localhost TCP ports
(ipykernel warned on every `make sweep` that the kernel "is running over TCP without
encryption", twice), leaving nothing behind."""

from __future__ import annotations

import stat
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


def test_the_sockets_folder_is_the_users_alone(tmp_path):
    kernel = LocalKernelManager()
    try:
        mode = stat.S_IMODE(Path(kernel.sockets).stat().st_mode)
        assert mode == 0o700
    finally:
        Path(kernel.sockets).rmdir()
