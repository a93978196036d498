"""CatBoost entry model (oblivious trees), continuing through CatBoost's training snapshots."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from cryptosweep.core.errors import ConfigError
from cryptosweep.core.reproducibility import ReproducibilityManager
from cryptosweep.trading.models import devices
from cryptosweep.trading.models.adapter import _Adapter, _log_once
from cryptosweep.trading.models.continuation import _Checkpoint
from cryptosweep.trading.models.params import (
    CATBOOST_FIXED,
    CATBOOST_LEARNING_RATE,
    CATBOOST_SNAPSHOT_INTERVAL,
    _reject_reserved,
)


class _SnapshotRefusedError(Exception):
    """CatBoost would not resume a snapshot (its parameters differ at the two budgets)."""


class CatBoostEntryModel(_Adapter):
    """CatBoost oblivious-tree boosting (Prokhorenkova et al. 2018, *CatBoost: unbiased boosting
    with categorical features*, NeurIPS), ``loss_function="Logloss"``.

    ``params`` are laid over ``repro.get_catboost_params()``; ``learning_rate`` is always set
    (``CATBOOST_LEARNING_RATE`` unless given; ``eta`` is accepted as its alias) because
    CatBoost's automatic rate depends on the iteration count; so are :data:`CATBOOST_FIXED`
    unless given. ``task_type="GPU"`` when the
    device is CUDA and CatBoost sees a GPU (not bitwise deterministic), else the CPU learner.
    """

    family = "catboost"
    library = "catboost"

    def __init__(self, params: dict[str, Any], repro: ReproducibilityManager) -> None:
        _reject_reserved(self.family, params)
        if "eta" in params and "learning_rate" in params:
            raise ConfigError("catboost entry_model parameters set both eta and learning_rate")
        given = {k: v for k, v in params.items() if k not in ("eta", "objective")}
        given["learning_rate"] = params.get("learning_rate", params.get("eta"))
        if given["learning_rate"] is None:
            given["learning_rate"] = CATBOOST_LEARNING_RATE
        given.setdefault("max_ctr_complexity", CATBOOST_FIXED["max_ctr_complexity"])
        if given.get("leaf_estimation_method", "Newton") == "Newton":
            given.setdefault(
                "leaf_estimation_iterations", CATBOOST_FIXED["leaf_estimation_iterations"]
            )
        merged = {**repro.get_catboost_params(), **given, "loss_function": "Logloss"}
        if merged["task_type"] == "GPU" and devices.catboost_gpu_count() == 0:
            _log_once("catboost-gpu", "CatBoost sees no CUDA device; CatBoost trials run on CPU")
            merged["task_type"] = "CPU"
            merged.pop("devices", None)
            merged.pop("gpu_ram_part", None)
        self.params = merged
        self.device = f"cuda:{merged['devices']}" if merged["task_type"] == "GPU" else "cpu"
        self.deterministic = merged["task_type"] == "CPU"
        self._model: Any = None
        self._constant: float | None = None
        self._snapshot: bytes | None = None

    def _fit(self, x: np.ndarray, y: np.ndarray, budget: int) -> None:
        self._train(x, y, budget, None)

    def _train(self, x: np.ndarray, y: np.ndarray, budget: int, snapshot: bytes | None) -> None:
        """Train to ``budget`` iterations; on CPU through a CatBoost snapshot (resumed from
        ``snapshot`` when given), whose bytes are kept for :meth:`save`."""
        from catboost import CatBoostClassifier, CatBoostError

        if np.unique(y).size == 1:  # CatBoost refuses one-class targets; the answer is known
            self._constant, self._model, self._snapshot = float(y[0]), None, None
            return
        if self.params["task_type"] != "CPU":  # no continuation on GPU: no snapshot
            model = CatBoostClassifier(**self.params, iterations=budget)
            model.fit(x, y.astype("int64"), sample_weight=self._weight)
            self._constant, self._model, self._snapshot = None, model, None
            return
        with tempfile.TemporaryDirectory(prefix="cryptosweep-catboost-") as folder:
            file = Path(folder) / "training.cbsnapshot"
            if snapshot is not None:
                file.write_bytes(snapshot)
            model = CatBoostClassifier(
                **{**self.params, "allow_writing_files": True}, iterations=budget,
                train_dir=folder, save_snapshot=True, snapshot_file=str(file),
                snapshot_interval=CATBOOST_SNAPSHOT_INTERVAL,
            )  # fmt: skip
            try:
                model.fit(x, y.astype("int64"), sample_weight=self._weight)
            except CatBoostError as exc:
                if snapshot is None or "differ from the params saved in snapshot" not in str(exc):
                    raise
                raise _SnapshotRefusedError("its parameters at the smaller budget differ") from exc
            kept = file.read_bytes()
        self._constant, self._model, self._snapshot = None, model, kept

    def _continue(self, x: np.ndarray, y: np.ndarray, budget: int, checkpoint: _Checkpoint
                  ) -> bool:  # fmt: skip
        from catboost import CatBoostClassifier

        if checkpoint.meta.get("constant") is not None:  # one class: training is instant
            self._train(x, y, budget, None)
            return True
        if "snapshot" not in checkpoint.files:
            raise ValueError(f"cannot continue from checkpoint {checkpoint.path}: no snapshot")
        snapshot = checkpoint.files["snapshot"].read_bytes()
        if budget == checkpoint.budget:
            model = CatBoostClassifier()
            model.load_model(str(checkpoint.path))
            self._model, self._snapshot, self._constant = model, snapshot, None
            return True
        try:
            self._train(x, y, budget, snapshot)
        except _SnapshotRefusedError as exc:
            # resuming gives the bytes of training from scratch, so retraining loses only time
            _log_once("catboost-snapshot", "CatBoost refuses to resume a snapshot at "
                      "another budget (%s); such trials retrain from scratch", exc)  # fmt: skip
            self._train(x, y, budget, None)
            return False
        return True

    def _checkpoint_meta(self) -> dict[str, Any]:
        return {"constant": self._constant}

    def _load(self, checkpoint: _Checkpoint) -> None:
        from catboost import CatBoostClassifier

        constant = checkpoint.meta.get("constant")
        if constant is not None:  # one-class training set: the file holds the constant
            self._constant, self._model, self._snapshot = float(constant), None, None
            return
        model = CatBoostClassifier()
        model.load_model(str(checkpoint.path))
        snapshot = checkpoint.files.get("snapshot")
        self._constant, self._model = None, model
        self._snapshot = snapshot.read_bytes() if snapshot is not None else None

    def _checkpoint_files(self, path: Path) -> dict[str, tuple[Path, Callable[[Path], None]]]:
        if path.suffix == ".cbsnapshot":
            raise ValueError(f"a CatBoost checkpoint may not end in .cbsnapshot: {path.name}")
        model, snapshot, constant = self._model, self._snapshot, self._constant
        files: dict[str, tuple[Path, Callable[[Path], None]]] = {}
        if snapshot is not None:
            files["snapshot"] = (path.with_suffix(".cbsnapshot"), lambda tmp: tmp.write_bytes(
                snapshot))  # fmt: skip
        if constant is not None:  # one-class training set: no CatBoost model exists
            files["model"] = (path, lambda tmp: tmp.write_text(
                json.dumps({"constant": constant}), encoding="utf-8"))  # fmt: skip
        else:
            files["model"] = (path, lambda tmp: model.save_model(str(tmp), format="cbm"))
        return files

    def _predict(self, x: np.ndarray) -> np.ndarray:
        if self._constant is not None:
            return np.full(len(x), self._constant)
        proba = self._model.predict_proba(x, thread_count=self.params["thread_count"])
        return proba[:, list(self._model.classes_).index(1)]
