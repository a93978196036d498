"""The repository's ``jupyter_server_config.py`` (``make explore``): JupyterLab's saves, autosave
included, of the tracked notebooks (under ``notebooks/``) carry no outputs."""

from __future__ import annotations

import asyncio
import copy
import runpy

import nbformat
import pytest
from traitlets.config.loader import PyFileConfigLoader

from tests.support import REPO

CONFIG = REPO / "jupyter_server_config.py"


def executed_notebook() -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("print(1)", execution_count=3)
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="1\n")]
    notebook.cells = [nbformat.v4.new_markdown_cell("# title"), cell]
    notebook.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {}}
    return notebook


def model(notebook: nbformat.NotebookNode) -> dict:
    return {"type": "notebook", "format": "json", "content": copy.deepcopy(notebook)}


def test_the_pre_save_hook_strips_the_outputs_of_the_tracked_notebooks_only():
    # Before the fix JupyterLab's autosave wrote every output into the tracked notebooks.
    strip_outputs = runpy.run_path(str(CONFIG))["strip_outputs"]

    class Manager:
        root_dir = str(REPO)

    tracked = model(executed_notebook())
    strip_outputs(tracked, "notebooks/explore.ipynb", Manager())
    code = tracked["content"]["cells"][1]
    assert code["outputs"] == [] and code["execution_count"] is None
    assert "widgets" not in tracked["content"]["metadata"]
    assert tracked["content"]["cells"][0]["source"] == "# title"
    original = executed_notebook()
    for path in ("reports/night1/notebooks/sweep.ipynb", "notebooks/../mine.ipynb"):
        elsewhere = model(original)
        strip_outputs(elsewhere, path, Manager())
        assert elsewhere["content"] == original, path
    text = {"type": "file", "format": "text", "content": "notebooks/a.txt"}
    strip_outputs(text, "notebooks/a.txt", Manager())
    assert text["content"] == "notebooks/a.txt"


def test_jupyter_loads_the_hook_and_a_save_under_notebooks_has_no_outputs(tmp_path):
    from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager

    config = PyFileConfigLoader(CONFIG.name, str(REPO)).load_config()
    hook = config.ContentsManager.pre_save_hook
    assert callable(hook) and hook.__name__ == "strip_outputs"
    hook.__globals__["NOTEBOOKS"] = tmp_path / "notebooks"  # not the repository's own folder
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "elsewhere").mkdir()
    manager = AsyncLargeFileManager(root_dir=str(tmp_path), config=config)
    for path in ("notebooks/explore.ipynb", "elsewhere/copy.ipynb"):
        asyncio.run(manager.save(model(executed_notebook()), path))
    saved = nbformat.read(tmp_path / "notebooks" / "explore.ipynb", as_version=4)
    assert saved.cells[1].outputs == [] and saved.cells[1].execution_count is None
    kept = nbformat.read(tmp_path / "elsewhere" / "copy.ipynb", as_version=4)
    assert kept.cells[1].outputs[0]["text"] == "1\n"


@pytest.mark.parametrize("word", ["JUPYTER_CONFIG_PATH", "jupyter lab"])
def test_make_explore_puts_the_repository_on_the_config_path(word):
    explore = (REPO / "Makefile").read_text().split("\nexplore:", 1)[1].split("\n\n", 1)[0]
    assert word in explore and "$(CURDIR)" in explore
