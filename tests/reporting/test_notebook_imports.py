"""The processes that run notebooks import nbformat without compiling jsonschema's IRI
grammars, and nbformat still validates every notebook they read
(:mod:`cryptosweep.reporting.notebook_imports`)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

#: Code for the probes: nbformat validates ``notebook`` and refuses it once damaged
#: (``refused``), with or without the IRI grammars.
REFUSES_A_DAMAGED_NOTEBOOK = """\
nbformat.validate(notebook)
del notebook.cells[0]["source"]
try:
    nbformat.validate(notebook)
except nbformat.ValidationError:
    refused = True
else:
    refused = False
"""

PROBE = f"""
import contextlib, io, sys
entry = sys.argv[1]
with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
    if entry == "cli":
        from cryptosweep.cli import main
        main(["--version"])
    elif entry == "nightly":
        from cryptosweep.nightly.pipeline import main
        main(["--help"])
import nbformat
from cryptosweep.core.paths import NOTEBOOKS
notebook = nbformat.read(NOTEBOOKS / "analysis.ipynb", as_version=4)
{REFUSES_A_DAMAGED_NOTEBOOK}
print(sys.modules.get("rfc3987_syntax", "never imported"), refused)
"""


@pytest.mark.parametrize("entry", ["cli", "nightly"])
def test_entry_points_read_notebooks_without_compiling_the_iri_grammars(entry):
    """Importing rfc3987-syntax (through nbformat's jsonschema) compiled some forty grammars,
    1.5 s in the nightly's process and again in its report's: now never imported there, and a
    damaged notebook is still refused."""
    done = subprocess.run([sys.executable, "-c", PROBE, entry], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["None", "True"]


@pytest.mark.skipif(importlib.util.find_spec("rfc3987_syntax") is None,
                    reason="rfc3987-syntax is not installed here")
def test_a_process_of_the_users_own_is_left_as_it_is():
    """The library does not reach into a process that did not start at an entry point."""
    done = subprocess.run([sys.executable, "-c", PROBE, "library"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("<module 'rfc3987_syntax'"), done.stdout


KERNEL_PROBE = f"""
import sys
import nbformat
import plotly.io as pio
pio.renderers.default = "plotly_mimetype"  # what the analysis notebook does: imports nbformat
import beside_the_notebook  # the working folder is importable, as in any kernel
notebook = nbformat.v4.new_notebook()
notebook.cells.append(nbformat.v4.new_code_cell("1"))
{REFUSES_A_DAMAGED_NOTEBOOK}
print(sys.modules.get("rfc3987_syntax", "never imported"), refused, beside_the_notebook.FOLDER)
"""


def test_the_kernels_of_our_notebooks_import_nbformat_without_the_iri_grammars(tmp_path):
    """The report's kernel compiled the grammars when plotly's renderer imported nbformat:
    1.5 to 2.5 s of every report. A kernel started by our kernel manager (papermill's, for the
    sweep and analysis notebooks) now skips them, still validates, and still imports from its
    working folder."""
    import asyncio

    from cryptosweep.reporting.kernels import LocalKernelManager
    from cryptosweep.reporting.report import KERNEL

    (tmp_path / "beside_the_notebook.py").write_text("FOLDER = 'here'\n", encoding="utf-8")
    printed: list[str] = []

    def collect(message: dict) -> None:
        if message["msg_type"] == "stream":
            printed.append(message["content"]["text"])

    async def probe() -> dict:
        manager = LocalKernelManager(kernel_name=KERNEL)
        await manager.start_kernel(cwd=str(tmp_path))
        client = manager.client()
        client.start_channels()
        try:
            await client.wait_for_ready(timeout=120)
            return await client.execute_interactive(KERNEL_PROBE, timeout=120,
                                                    output_hook=collect)
        finally:
            client.stop_channels()
            await manager.shutdown_kernel(now=True)

    reply = asyncio.run(probe())
    assert reply["content"]["status"] == "ok", reply["content"]
    assert "".join(printed).split() == ["None", "True", "here"]
