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
#: The template config, relative to the repository root (the nightly's default ``SWEEP_CONFIG``,
#: read by :func:`resolve`: the working directory first, then the repository).
TEMPLATE_CONFIG_IN_REPOSITORY = f"{PARAMETERS.name}/sweep_config_template.json"
#: The template config in this repository (``HyperbandRunner``'s default config).
TEMPLATE_CONFIG = REPOSITORY / TEMPLATE_CONFIG_IN_REPOSITORY
#: The Jupyter kernel the notebooks run on (``make venv`` registers it).
KERNEL = "cryptosweep"
#: Where new run folders go by default: ``cryptosweep run`` and ``run_sweep``.
SWEEP_LOG_DIR = "sweep_logs"
#: Where new walk-forward folders go by default: ``cryptosweep walkforward``.
WALKFORWARD_LOG_DIR = "walkforward_logs"
#: The reports folder: the nightly's ``REPORTS_DIR`` default (relative to the repository root)
#: and the explorer's (relative to the working directory).
REPORTS_DIR = "reports"
#: The nightly's models folder (``MODELS_DIR``; relative to the repository root): the champion,
#: its history and the trial ledger.
MODELS_DIR = "models"


def resolve(path: str | Path | None, what: str = "path") -> Path | None:
    """An absolute path as it is; a relative one against the working directory when something
    is there, else against the repository root when something is there, else against the
    working directory (so that an error names the path the user meant). Anything but text or
    a path (a notebook parameter papermill read as a number) is a ``ConfigError`` naming
    ``what``, and so is empty text (``papermill -p log_dir ""``): ``Path("")`` is the working
    directory, where the sweep then made its run folders without a word."""
    if path is None:
        return None
    if not isinstance(path, str | os.PathLike):
        raise ConfigError(f"{what}: expected a path (text), got {path!r}")
    if not os.fspath(path).strip():
        raise ConfigError(f"{what}: expected a path, got an empty one ({path!r})")
    path = Path(path).expanduser()
    if path.is_absolute():
        return path
    here = Path.cwd() / path
    if here.exists():
        return here
    in_repository = REPOSITORY / path
    return in_repository if in_repository.exists() else here
