"""Jupyter server settings of this repository, read by `make explore` (which puts the repository
on JUPYTER_CONFIG_PATH): JupyterLab saves the repository's notebooks (those under notebooks/)
without their outputs, so that autosave never writes a run's outputs into a tracked notebook
(they are committed without outputs; tests/test_notebooks.py checks it). Notebooks elsewhere
(a run folder's executed notebooks, your own copies) are saved as they are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: The tracked notebooks' folder.
NOTEBOOKS = Path(__file__).resolve().parent / "notebooks"


def strip_outputs(model: dict[str, Any], path: str, contents_manager: Any = None,
                  **kwargs: Any) -> None:
    """A ``FileContentsManager.pre_save_hook``: a notebook saved under :data:`NOTEBOOKS`
    loses its cells' outputs and execution counts and its widget state (in place); anything
    else is left alone. ``path`` is the API path, relative to the server's root folder."""
    if model.get("type") != "notebook" or not isinstance(model.get("content"), dict):
        return
    root = Path(getattr(contents_manager, "root_dir", None) or Path.cwd())
    target = (root / path.lstrip("/")).resolve()
    if not target.is_relative_to(NOTEBOOKS):
        return
    notebook = model["content"]
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
    notebook.get("metadata", {}).pop("widgets", None)


if "get_config" in globals():  # read by Jupyter (not when imported by a test)
    c = get_config()  # type: ignore[name-defined]  # noqa: F821
    c.ContentsManager.pre_save_hook = strip_outputs
