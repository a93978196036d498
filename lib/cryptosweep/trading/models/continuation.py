"""Checkpoints and continuation: which families continue a promoted configuration from its
checkpoint (measured in ``docs/continuation.md``), where checkpoints live, and the atomic,
digest-checked files they are made of."""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version as distribution_version
from pathlib import Path
from typing import Any

import numpy as np

from cryptosweep.core.errors import ConfigError
from cryptosweep.core.files import write_with
from cryptosweep.core.vocabulary import MODEL_FAMILIES
from cryptosweep.trading.models.params import _LGB_BOOSTING, _first

#: Whether a promoted configuration of each family continues from its checkpoint, from the
#: measurements in docs/continuation.md: True where continuing from one checkpoint twice gives
#: the same prediction bytes (on CPU). Per LightGBM boosting mode see
#: :data:`LIGHTGBM_CONTINUATION`; :func:`supports_continuation` combines both with the device.
CONTINUATION: dict[str, bool] = {
    "catboost": True, "lightgbm": True, "torch": True, "xgboost": True,
}  # fmt: skip
#: LightGBM per boosting mode. ``rf``: LightGBM refuses an initial score in rf mode, so it
#: cannot continue. ``dart``: continuing is reproducible, but the checkpoint's trees become a
#: fixed initial score that dart can no longer drop or rescale, so it is not dart any more.
#: Unknown modes do not continue.
LIGHTGBM_CONTINUATION: dict[str, bool] = {"gbdt": True, "goss": True, "dart": False, "rf": False}
#: Whether the continued model is, bitwise, the model trained from scratch for the full budget
#: (in general, i.e. with the family's row/column sampling or random strength). LightGBM and
#: XGBoost restart their sampling generators from the seed on continuation; without any
#: sampling they equal training from scratch too. A sweep whose results must not depend on
#: where a checkpoint was taken re-runs those families the same way (the same b, then B).
CONTINUATION_EQUALS_SCRATCH: dict[str, bool] = {
    "catboost": True, "lightgbm": False, "torch": True, "xgboost": False,
}  # fmt: skip
#: The suffix of each family's checkpoint (:func:`checkpoint_path`).
CHECKPOINT_SUFFIX: dict[str, str] = {
    "catboost": ".cbm", "lightgbm": ".txt", "torch": ".npz", "xgboost": ".ubj",
}  # fmt: skip
#: The ``format`` field of a checkpoint sidecar.
CHECKPOINT_FORMAT = "cryptosweep-checkpoint/1"

_LGB_MODES = {
    "gbdt": "gbdt", "gbrt": "gbdt", "rf": "rf", "random_forest": "rf", "dart": "dart",
    "goss": "goss",
}  # fmt: skip


def supports_continuation(
    family: str, params: dict[str, Any] | None = None, device: str = "cpu"
) -> bool:
    """Whether ``family`` with ``params`` continues from a checkpoint on ``device``.

    False on any device but ``"cpu"`` (continuation was measured on CPU only: GPU learners
    retrain), for LightGBM modes marked False in :data:`LIGHTGBM_CONTINUATION`, and for families
    marked False in :data:`CONTINUATION`.
    """
    if family not in CONTINUATION:
        raise ConfigError(f"unknown model family '{family}' (known: {', '.join(MODEL_FAMILIES)})")
    if device != "cpu" or not CONTINUATION[family]:
        return False
    if family == "lightgbm":
        _, boosting = _first(params or {}, _LGB_BOOSTING)
        mode = _LGB_MODES.get(str(boosting if boosting is not None else "gbdt").lower())
        return LIGHTGBM_CONTINUATION.get(mode or "", False)
    return True


def checkpoint_path(folder: str | os.PathLike[str], name: str, family: str) -> Path:
    """``folder/<name><suffix>`` with the family's :data:`CHECKPOINT_SUFFIX`."""
    return Path(folder) / f"{name}{CHECKPOINT_SUFFIX[family]}"


def checkpoint_sidecar(path: str | os.PathLike[str]) -> Path:
    """The JSON sidecar of the checkpoint at ``path``: ``<path>.json``."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], None]) -> str:
    """Create ``path`` atomically by calling ``write(tmp)``
    (:func:`cryptosweep.core.files.write_with`:
    the temporary name keeps the suffix, so libraries that pick the format from it still do);
    returns the written file's BLAKE2b digest (hex)."""
    return _file_digest(write_with(path, write))


def _file_digest(path: Path) -> str:
    digest = hashlib.blake2b(digest_size=20)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _data_digest(x: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None) -> str:
    digest = hashlib.blake2b(digest_size=20)
    digest.update(repr((x.shape, x.dtype.str, y.dtype.str)).encode())
    digest.update(np.ascontiguousarray(x).data)
    digest.update(np.ascontiguousarray(y).data)
    if weight is not None:  # weighted rows are other data (unweighted: the digest as before)
        digest.update(np.ascontiguousarray(weight, dtype="float64").data)
    return digest.hexdigest()


@functools.cache
def _library_version(distribution: str) -> str:
    return distribution_version(distribution)


@dataclass(frozen=True)
class _Checkpoint:
    """A checkpoint read back and checked: its model file, other files, budget and sidecar."""

    path: Path
    files: dict[str, Path]
    budget: int
    meta: dict[str, Any]
