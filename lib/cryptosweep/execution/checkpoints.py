"""Where Hyperband evaluations keep their models: ``<run>/checkpoints/trial_<id>/``, one file
per fold and budget in each library's own format (see ``trading/models/``), so that a
promoted configuration continues training instead of starting again.

Once a run is complete (results written, reproducibility re-runs done) nothing reads them
again, so they are removed unless ``reporting.keep_checkpoints`` (they are most of a run
folder's size). Re-checking a Hyperband run's reproducibility later needs them kept."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from cryptosweep.core.config import SweepConfig

CHECKPOINT_DIR = "checkpoints"


def continues_training(config: SweepConfig) -> bool:
    """Whether a sweep's promoted evaluations continue from their previous rung's checkpoints:
    Hyperband with ``hyperband.continue_training`` and ``objective.fidelity: rounds`` (with
    ``folds`` or ``bars`` a rung trains other folds or bars: every evaluation starts afresh)."""
    return (config.sweep_type == "hyperband" and config.hyperband.continue_training
            and config.objective.fidelity == "rounds")


def checkpoint_spec(
    config: SweepConfig, run_dir: Path, trial_id: int, tags: dict[str, Any]
) -> dict[str, Any] | None:
    """What the objective needs to save and continue an evaluation's models: the folder, the
    trial, and the budget of its previous rung (``None`` at rung 0). ``None`` altogether when
    the sweep does not continue training (:func:`continues_training`)."""
    if not continues_training(config):
        return None
    return {"dir": str((Path(run_dir) / CHECKPOINT_DIR).resolve()), "trial_id": trial_id,
            "from_budget": tags.get("previous_budget")}


def remove_checkpoints(run_dir: Path) -> int:
    """Delete ``run_dir/checkpoints``; the number of bytes freed (0 when there was none)."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    if not folder.is_dir():
        return 0
    size = sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())
    shutil.rmtree(folder)
    return size
