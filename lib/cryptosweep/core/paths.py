"""Where the repository's own folders are, and how a relative path given to a notebook is read.

The package lives in ``<repository>/lib/cryptosweep`` (installed in editable mode), so the
notebooks, parameter files and the default reports folder are found from here. A notebook runs
with the repository root as its working directory under papermill (``make sweep``, the nightly
job) but with ``notebooks/`` in JupyterLab; :func:`resolve` makes the same relative default
work in both.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptosweep.core.errors import ConfigError

REPOSITORY = Path(__file__).resolve().parents[3]
NOTEBOOKS = REPOSITORY / "notebooks"
PARAMETERS = REPOSITORY / "parameters"
TEMPLATE_CONFIG = PARAMETERS / "sweep_config_template.json"


def resolve(path: str | Path | None, what: str = "path") -> Path | None:
    """An absolute path as it is; a relative one against the working directory when something
    is there, else against the repository root when something is there, else against the
    working directory (so that an error names the path the user meant). Anything but text or
    a path (a notebook parameter papermill read as a number) is a ``ConfigError`` naming
    ``what``."""
    if path is None:
        return None
    if not isinstance(path, str | os.PathLike):
        raise ConfigError(f"{what}: expected a path (text), got {path!r}")
    path = Path(path).expanduser()
    if path.is_absolute():
        return path
    here = Path.cwd() / path
    if here.exists():
        return here
    in_repository = REPOSITORY / path
    return in_repository if in_repository.exists() else here
