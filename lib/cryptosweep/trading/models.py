"""Entry-model adapters: one small interface, one implementation per model family.

An entry model is a binary classifier: ``predict_proba`` is the probability that a long entry
at the next open beats the round-trip fee. Each adapter lays a trial's parameters over its
framework's determinism parameters from
:class:`~cryptosweep.reproducibility.ReproducibilityManager`, so the same seed gives
bitwise-identical predictions on CPU (and on GPU where the framework allows it: see
``deterministic`` below).

``fit(X, y, budget)`` trains from scratch; ``budget`` is the number of boosting rounds (tree
families) or epochs (torch), so a Hyperband budget means the same thing on every call.

=========  ==========================================================================  ==========
family     parameters a trial may set (anything else the library accepts, except the   budget
           reserved keys; torch accepts only its own)
=========  ==========================================================================  ==========
lightgbm   LightGBM parameters (num_leaves, learning_rate, min_data_in_leaf,            rounds
           feature_fraction, bagging_fraction, bagging_freq, lambda_l1/l2, ...);
           ``boosting: "rf"`` for a random forest (bagging defaults below)
xgboost    XGBoost parameters (max_depth, learning_rate/eta, subsample,                 rounds
           colsample_bytree, min_child_weight, reg_lambda, reg_alpha, gamma, ...)
catboost   CatBoost parameters (depth, learning_rate, l2_leaf_reg, random_strength,     rounds
           bagging_temperature, border_count, ...); learning_rate defaults to 0.05
torch      hidden_units, layers, dropout, learning_rate, weight_decay, batch_size       epochs
           (:data:`TORCH_DEFAULTS`)
=========  ==========================================================================  ==========

Forced parameters: the objective (``binary`` / ``binary:logistic`` / ``Logloss``).
Reserved keys (:data:`RESERVED_KEYS`): seeds, thread counts and devices come from the run's
reproducibility settings, and the number of rounds from the trial budget; a trial that sets one
is a ``ConfigError`` naming the key.

Notes per family:

- LightGBM ``boosting: "rf"`` needs row bagging (``bagging_freq >= 1`` and
  ``bagging_fraction < 1``) or column sampling (``feature_fraction < 1``); when absent the
  adapter sets ``bagging_freq = 1`` and ``bagging_fraction = 0.632`` (the expected share of
  distinct rows in a bootstrap sample). An explicit combination LightGBM rejects is a
  ``ConfigError``. ``learning_rate`` has no effect in rf mode (trees are averaged).
- LightGBM on GPU: the PyPI wheel has only the OpenCL learner. It is used when
  :func:`lightgbm_opencl_available` finds a device (not bitwise deterministic); otherwise the
  CPU learner runs, said once in the log.
- XGBoost (<= 3.2) keeps its sampling RNG per thread and seeds it when a booster is configured:
  the adapter trains in one ``xgboost.train`` call, so two boosters' updates are never
  interleaved in one thread. GPU: ``device="cuda:N"`` (hist on CUDA is deterministic).
- CatBoost: ``learning_rate`` is always set explicitly (0.05 unless the trial gives one):
  CatBoost's automatic rate depends on the iteration count, so the same configuration at two
  budgets would be two different models and budgets could not be compared. Likewise
  :data:`CATBOOST_FIXED` (CatBoost picks these from the iteration count, and the data: e.g.
  ``leaf_estimation_iterations`` 1 below 200 iterations, 10 above, on some data sets), unless
  the trial gives them; they also let a training resume from a snapshot taken at a smaller
  budget. GPU: ``task_type="GPU"``, which is *not* bitwise deterministic (``deterministic``
  is False).
- Torch: a ReLU MLP trained with AdamW on BCE-with-logits; features standardised with the
  training mean/std; one ``torch.Generator`` seeded from ``repro.seed`` draws the initial weights
  and the shuffling (dropout masks come from a second generator on the training device);
  deterministic algorithms and ``repro.threads`` CPU threads while training and predicting
  (process-wide torch switches, restored afterwards).

Each adapter has ``params`` (what it passes to the library, resolved in the constructor, so the
GPU mapping can be inspected without training), ``device`` (where it will run) and
``deterministic`` (whether the same seed gives the same bytes there).

Checkpoints and continuation (Hyperband promotes a configuration from budget b to B > b;
measurements in ``docs/continuation.md``, from ``benchmarks/continuation.py``):

- ``save(path)`` writes the fitted model in the library's own format at ``path`` (LightGBM text
  ``Booster.save_model``, suffix ``.txt``; XGBoost ``save_model``, the suffix must be ``.ubj``
  or ``.json``; CatBoost ``save_model`` ``.cbm`` plus its training snapshot
  ``<stem>.cbsnapshot``; torch: NumPy ``.npz`` without pickle holding the weights, the AdamW
  state, both generators' states and the standardisation mean/scale), then the sidecar
  ``<path>.json`` (:func:`checkpoint_sidecar`): format, family, budget (rounds/epochs in the
  checkpoint), library version, digests of the parameters, of the training data and of every
  file. Every file goes to a temporary name in the same folder and is renamed into place
  (``os.replace``); the sidecar is written last, so a checkpoint without one is unfinished.
- ``fit(X, y, budget, init_from=path)`` continues from a checkpoint saved after b rounds/epochs
  so that the model has ``budget`` in total (``budget == b`` loads it). The checkpoint must come
  from the same family, parameters (seed, threads and device included), library version and
  training data, else ``ValueError``; a missing one is ``FileNotFoundError``. Where
  :func:`supports_continuation` is False (LightGBM ``rf`` and ``dart``; any GPU or
  non-deterministic device) ``init_from`` is ignored and the model retrains from scratch for
  ``budget``; ``last_fit_continued`` says which happened.
- Continuing from one checkpoint twice gives the same bytes in every family that continues
  (:data:`CONTINUATION`). CatBoost (resumed from its snapshot, which holds the random state)
  and torch (all state restored) also equal training from scratch for the full budget,
  bitwise; LightGBM and XGBoost restart their sampling generators from the seed, so they equal
  it only without row/column sampling (:data:`CONTINUATION_EQUALS_SCRATCH`). XGBoost continues
  in one ``xgboost.train`` call, like ``fit``.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import math
import os
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import version as distribution_version
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from cryptosweep.errors import ConfigError
from cryptosweep.reproducibility import CUBLAS_WORKSPACE, ReproducibilityManager, derive_seed

log = logging.getLogger(__name__)

FAMILIES = ("catboost", "lightgbm", "torch", "xgboost")
#: Kept for callers of the first version; every family has an adapter now.
IMPLEMENTED_FAMILIES = FAMILIES

#: Default bagging of LightGBM's random-forest mode when the trial does not set it.
RF_BAGGING_FRACTION = 0.632
RF_BAGGING_FREQ = 1
#: CatBoost's learning rate when the trial does not give one (never CatBoost's automatic one).
CATBOOST_LEARNING_RATE = 0.05
#: CatBoost parameters whose automatic value depends on the iteration count (and the data), set
#: when the trial does not give them, to the values CatBoost picks for long trainings on CPU:
#: the same configuration is then the same algorithm at every budget, and CatBoost, which
#: refuses to resume a snapshot whose parameters differ, can resume one from a smaller budget.
#: ``max_ctr_complexity`` changes nothing without categorical features;
#: ``leaf_estimation_iterations`` (Newton steps per leaf) is set only when
#: ``leaf_estimation_method`` is Newton, CatBoost's default for Logloss.
CATBOOST_FIXED: dict[str, Any] = {"max_ctr_complexity": 4, "leaf_estimation_iterations": 10}
#: Seconds between CatBoost's snapshots while training: never, in practice; CatBoost also
#: writes one when training ends, which is the one a checkpoint keeps.
CATBOOST_SNAPSHOT_INTERVAL = 10**9
#: The torch MLP's parameters and their defaults; these are the only keys it accepts.
TORCH_DEFAULTS: dict[str, Any] = {
    "hidden_units": 64,
    "layers": 2,
    "dropout": 0.0,
    "learning_rate": 1e-3,
    "weight_decay": 0.0,
    "batch_size": 256,
}
#: Parameters each adapter sets itself (the trial's values are laid under these or, for
#: learning_rate, replace it).
FAMILY_DEFAULTS: dict[str, dict[str, Any]] = {
    "lightgbm": {"objective": "binary"},
    "xgboost": {"objective": "binary:logistic"},
    "catboost": {
        "loss_function": "Logloss",
        "learning_rate": CATBOOST_LEARNING_RATE,
        **CATBOOST_FIXED,
    },
    "torch": TORCH_DEFAULTS,
}

#: Keys that would override the seed, thread count, device or budget the run derives (and so
#: break reproducibility or budget comparisons); they may not appear in a trial's parameters.
RESERVED_LIGHTGBM_KEYS = frozenset({
    "seed", "random_seed", "random_state", "bagging_seed", "feature_fraction_seed",
    "data_random_seed", "extra_seed", "drop_seed", "objective_seed", "deterministic",
    "num_threads", "num_thread", "nthread", "nthreads", "n_jobs",
    "device_type", "device", "gpu_platform_id", "gpu_device_id", "num_gpu",
    "num_iterations", "num_iteration", "n_iter", "num_tree", "num_trees", "num_round",
    "num_rounds", "nrounds", "num_boost_round", "n_estimators", "max_iter",
})  # fmt: skip
RESERVED_XGBOOST_KEYS = frozenset({
    "seed", "random_state", "seed_per_iteration", "nthread", "n_jobs", "device", "gpu_id",
    "tree_method", "num_boost_round", "n_estimators", "num_round",
})  # fmt: skip
RESERVED_CATBOOST_KEYS = frozenset({
    "random_seed", "random_state", "thread_count", "n_jobs", "task_type", "devices",
    "iterations", "num_boost_round", "n_estimators", "num_trees",
    "train_dir", "save_snapshot", "snapshot_file", "snapshot_interval",
})  # fmt: skip
RESERVED_TORCH_KEYS = frozenset({
    "seed", "random_seed", "random_state", "device", "num_threads", "threads", "n_jobs",
    "epochs", "max_epochs",
})  # fmt: skip
RESERVED_KEYS: dict[str, frozenset[str]] = {
    "lightgbm": RESERVED_LIGHTGBM_KEYS,
    "xgboost": RESERVED_XGBOOST_KEYS,
    "catboost": RESERVED_CATBOOST_KEYS,
    "torch": RESERVED_TORCH_KEYS,
}


@runtime_checkable
class EntryModel(Protocol):
    """A binary classifier trained on a feature matrix with a rounds/epochs budget."""

    def fit(self, X: np.ndarray, y: np.ndarray, budget: int) -> None:  # noqa: N803
        """Train from scratch on ``X`` (n x d float) and ``y`` (n, 0/1) for ``budget`` boosting
        rounds or epochs."""
        ...

    def predict_proba(self, X: np.ndarray) -> np.ndarray:  # noqa: N803
        """Probability of class 1 for each row of ``X``: float64, shape (n,), in [0, 1]."""
        ...


@runtime_checkable
class ContinuableEntryModel(EntryModel, Protocol):
    """An entry model that saves checkpoints and continues from them (every adapter here)."""

    def fit(
        self, X: np.ndarray, y: np.ndarray, budget: int,  # noqa: N803
        init_from: str | os.PathLike[str] | None = None,
    ) -> None: ...  # fmt: skip

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the fitted model (library format) and its sidecar; return ``path``."""
        ...


# --------------------------------------------------------------------------- continuation

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
        raise ConfigError(f"unknown model family '{family}' (known: {', '.join(FAMILIES)})")
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
    """Call ``write(tmp)`` for a temporary name next to ``path`` (same suffix, so libraries that
    pick the format from it still do), flush it to disk and rename it to ``path``; on any
    failure the temporary file is removed and ``path`` is left as it was. Returns the written
    file's BLAKE2b digest (hex)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:12]}.tmp{path.suffix}")
    try:
        write(tmp)
        digest = _file_digest(tmp, sync=True)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    with contextlib.suppress(OSError):  # make the rename durable where the platform allows it
        handle = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)
    return digest


def _file_digest(path: Path, *, sync: bool = False) -> str:
    digest = hashlib.blake2b(digest_size=20)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
        if sync:
            os.fsync(handle.fileno())
    return digest.hexdigest()


def _data_digest(x: np.ndarray, y: np.ndarray) -> str:
    digest = hashlib.blake2b(digest_size=20)
    digest.update(repr((x.shape, x.dtype.str, y.dtype.str)).encode())
    digest.update(np.ascontiguousarray(x).data)
    digest.update(np.ascontiguousarray(y).data)
    return digest.hexdigest()


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def _canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=_json_default)


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


# --------------------------------------------------------------------------- GPU probes


@functools.cache
def lightgbm_opencl_available() -> bool:
    """Whether LightGBM's OpenCL learner runs here (a one-round train on 20 rows; cached)."""
    import lightgbm

    x = np.arange(40, dtype="float64").reshape(20, 2)
    y = np.arange(20, dtype="float64") % 2
    params = {
        "device_type": "gpu", "objective": "binary", "verbosity": -1, "num_threads": 1,
        "min_data_in_leaf": 1, "min_data_in_bin": 1,
    }  # fmt: skip
    try:
        lightgbm.train(params, lightgbm.Dataset(x, label=y, params={"verbosity": -1}), 1)
    except (lightgbm.basic.LightGBMError, OSError, RuntimeError):
        return False
    return True


@functools.cache
def catboost_gpu_count() -> int:
    """Number of CUDA devices CatBoost sees (cached)."""
    try:
        from catboost.utils import get_gpu_device_count

        return int(get_gpu_device_count())
    except Exception:  # any failure means no usable GPU
        return 0


@functools.cache
def torch_cuda_available() -> bool:
    """Whether this torch build sees a CUDA device (cached)."""
    import torch

    return bool(torch.cuda.is_available())


_logged: set[str] = set()
_logged_lock = threading.Lock()
#: Serialises torch training/prediction within a process (see TorchMLPEntryModel._session).
_TORCH_SESSION = threading.RLock()


def _log_once(key: str, message: str, *args: object) -> None:
    with _logged_lock:
        if key in _logged:
            return
        _logged.add(key)
    log.warning(message, *args)


# --------------------------------------------------------------------------- shared plumbing


def _reject_reserved(family: str, params: dict[str, Any]) -> None:
    reserved = sorted(RESERVED_KEYS[family].intersection(params))
    if reserved:
        raise ConfigError(
            f"{family} entry_model parameters may not set {', '.join(reserved)}: seeds, threads "
            "and devices come from the run's reproducibility settings, rounds/epochs from the "
            "trial budget"
        )


def _features(X: np.ndarray) -> np.ndarray:  # noqa: N803
    x = np.ascontiguousarray(X, dtype="float64")
    if x.ndim != 2:
        raise ValueError(f"X must be 2-dimensional (rows x features), got shape {x.shape}")
    return x


class _Adapter:
    """Budget, input and checkpoint handling shared by the adapters; subclasses implement
    _fit/_predict (training and prediction), _checkpoint_files (the writers of ``save``) and
    _continue (training on from a checked checkpoint)."""

    family: ClassVar[str]
    #: The distribution whose version a checkpoint records (and must match to continue).
    library: ClassVar[str]
    params: dict[str, Any]
    device: str
    deterministic: bool
    _fitted: bool = False
    _budget: int = 0
    _data_digest: str = ""
    #: Whether the last ``fit`` continued from a checkpoint (False: trained from scratch).
    last_fit_continued: bool = False

    @property
    def continues(self) -> bool:
        """Whether ``fit(..., init_from=...)`` continues here (else it retrains from scratch):
        :func:`supports_continuation` for these parameters and device, and a deterministic
        learner."""
        return self.deterministic and supports_continuation(self.family, self.params, self.device)

    def fit(
        self, X: np.ndarray, y: np.ndarray, budget: int | None = None,  # noqa: N803
        init_from: str | os.PathLike[str] | None = None, *, rounds: int | None = None,
    ) -> None:  # fmt: skip
        """Train for ``budget`` rounds/epochs in total (``rounds=`` is the old name): from
        scratch, or on from the checkpoint ``init_from`` (written by :meth:`save` after fewer
        rounds/epochs) where :attr:`continues`; elsewhere ``init_from`` is ignored."""
        if (budget is None) == (rounds is None):
            raise TypeError("fit needs exactly one of budget (or its old name rounds)")
        budget = budget if budget is not None else rounds
        if isinstance(budget, bool) or int(budget) != budget or budget < 1:
            raise ValueError(f"budget must be an integer >= 1, got {budget!r}")
        budget = int(budget)
        x = _features(X)
        labels = np.asarray(y, dtype="float64").reshape(-1)
        if len(labels) != len(x):
            raise ValueError(f"X has {len(x)} rows but y has {len(labels)}")
        if len(x) == 0:
            raise ValueError("cannot fit on an empty training set")
        if not np.isin(labels, (0.0, 1.0)).all():
            raise ValueError("y must hold only 0 and 1")
        data_digest = _data_digest(x, labels)
        checkpoint = None
        if init_from is not None:
            if self.continues:
                checkpoint = self._read_checkpoint(Path(init_from), budget, data_digest)
            else:
                log.debug("%s on %s does not continue from checkpoints; %s retrains from "
                          "scratch", self.family, self.device, init_from)  # fmt: skip
        self._fitted = False  # a failed training leaves no half-updated model to use or save
        continued = False
        if checkpoint is None:
            self._fit(x, labels, budget)
        else:
            continued = self._continue(x, labels, budget, checkpoint)
        self._budget, self._data_digest = budget, data_digest
        self.last_fit_continued = continued
        self._fitted = True

    def predict_proba(self, X: np.ndarray) -> np.ndarray:  # noqa: N803
        if not self._fitted:
            raise RuntimeError("predict_proba called before fit")
        x = _features(X)
        return np.asarray(self._predict(x), dtype="float64").reshape(-1)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the fitted model to ``path`` in the library's own format (and the family's
        other files next to it), then the sidecar ``<path>.json``; each file atomically (a
        temporary name, then ``os.replace``). Returns ``path``."""
        if not self._fitted:
            raise RuntimeError("save called before fit")
        path = Path(path)
        files: dict[str, dict[str, str]] = {}
        for role, (target, write) in self._checkpoint_files(path).items():
            files[role] = {"name": target.name, "blake2b": atomic_write(target, write)}
        meta = {
            "format": CHECKPOINT_FORMAT,
            "family": self.family,
            "budget": self._budget,
            "library": self.library,
            "library_version": _library_version(self.library),
            "device": self.device,
            "params": json.loads(_canonical_json(self._identity())),
            "params_digest": self._params_digest(),
            "data_digest": self._data_digest,
            "files": files,
            **self._checkpoint_meta(),
        }
        text = json.dumps(meta, indent=1, sort_keys=True) + "\n"
        atomic_write(checkpoint_sidecar(path), lambda tmp: tmp.write_text(text, encoding="utf-8"))
        return path

    def _identity(self) -> dict[str, Any]:
        """Everything a continued model depends on besides the data (checked on continuation)."""
        return {**self.params, "__device__": self.device}

    def _params_digest(self) -> str:
        text = _canonical_json(self._identity())
        return hashlib.blake2b(text.encode(), digest_size=20).hexdigest()

    def _read_checkpoint(self, path: Path, budget: int, data_digest: str) -> _Checkpoint:
        sidecar = checkpoint_sidecar(path)
        try:
            meta = json.loads(sidecar.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FileNotFoundError(
                f"checkpoint {path}: no sidecar {sidecar.name} (save() writes it last, so the "
                "checkpoint is missing or unfinished)"
            ) from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"checkpoint sidecar {sidecar} is not valid JSON: {exc}") from None
        if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"{sidecar} is not a {CHECKPOINT_FORMAT} checkpoint sidecar")
        problem = None
        if meta.get("family") != self.family:
            problem = f"it is a {meta.get('family')} model, not {self.family}"
        elif meta.get("library_version") != _library_version(self.library):
            problem = (f"it was written by {self.library} {meta.get('library_version')}, this "
                       f"is {_library_version(self.library)}")  # fmt: skip
        elif meta.get("params_digest") != self._params_digest():
            problem = ("it was trained with other parameters (seed, threads and device "
                       f"included): {meta.get('params')}")  # fmt: skip
        elif meta.get("data_digest") != data_digest:
            problem = "it was trained on other data"
        if problem is not None:
            raise ValueError(f"cannot continue from checkpoint {path}: {problem}")
        saved = int(meta["budget"])
        if budget < saved:
            raise ValueError(
                f"cannot continue from checkpoint {path}: it has {saved} rounds/epochs, more "
                f"than the budget {budget}"
            )
        files: dict[str, Path] = {}
        for role, entry in meta["files"].items():
            file = sidecar.parent / entry["name"]
            if not file.is_file():
                raise FileNotFoundError(f"checkpoint {path}: its {role} file {file} is missing")
            if _file_digest(file) != entry["blake2b"]:
                raise ValueError(
                    f"checkpoint {path}: {file.name} does not match its sidecar (replaced or "
                    "damaged after the sidecar was written)"
                )
            files[role] = file
        return _Checkpoint(path=files["model"], files=files, budget=saved, meta=meta)

    def _checkpoint_meta(self) -> dict[str, Any]:
        return {}

    def _checkpoint_files(self, path: Path) -> dict[str, tuple[Path, Callable[[Path], None]]]:
        """role -> (file, writer(tmp)) in writing order; the model (``path``) comes last."""
        raise NotImplementedError

    def _fit(self, x: np.ndarray, y: np.ndarray, budget: int) -> None:
        raise NotImplementedError

    def _continue(self, x: np.ndarray, y: np.ndarray, budget: int, checkpoint: _Checkpoint
                  ) -> bool:  # fmt: skip
        raise NotImplementedError

    def _predict(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError


def _first(params: dict[str, Any], aliases: tuple[str, ...]) -> tuple[str | None, Any]:
    for alias in aliases:
        if alias in params:
            return alias, params[alias]
    return None, None


# --------------------------------------------------------------------------- LightGBM

_LGB_BOOSTING = ("boosting", "boosting_type", "boost")
_LGB_BAGGING_FRACTION = ("bagging_fraction", "sub_row", "subsample", "bagging")
_LGB_BAGGING_FREQ = ("bagging_freq", "subsample_freq")
_LGB_FEATURE_FRACTION = ("feature_fraction", "sub_feature", "colsample_bytree")


class LightGBMEntryModel(_Adapter):
    """LightGBM gradient-boosted trees (Ke et al. 2017, *LightGBM: A Highly Efficient Gradient
    Boosting Decision Tree*, NeurIPS), ``objective="binary"``; ``boosting: "rf"`` for random
    forests (Breiman 2001).

    ``params`` (num_leaves, learning_rate, ...) are laid over ``repro.get_lightgbm_params()``;
    a ``bagging_fraction < 1`` without ``bagging_freq`` gets ``bagging_freq=1`` (LightGBM
    otherwise ignores bagging silently). rf mode: see the module docstring.
    """

    family = "lightgbm"
    library = "lightgbm"

    def __init__(self, params: dict[str, Any], repro: ReproducibilityManager) -> None:
        _reject_reserved(self.family, params)
        merged = {**repro.get_lightgbm_params(), **params, "objective": "binary"}
        _, boosting = _first(params, _LGB_BOOSTING)
        fraction_key, fraction = _first(params, _LGB_BAGGING_FRACTION)
        freq_key, _ = _first(params, _LGB_BAGGING_FREQ)
        if boosting in ("rf", "random_forest"):
            if fraction_key is None:
                fraction = merged["bagging_fraction"] = RF_BAGGING_FRACTION
            if freq_key is None:
                merged["bagging_freq"] = RF_BAGGING_FREQ
            _check_rf(merged, fraction)
        elif fraction is not None and fraction < 1.0 and freq_key is None:
            merged["bagging_freq"] = 1
        self.device = "cpu"
        self.deterministic = bool(merged["deterministic"])
        if repro.on_gpu:
            if lightgbm_opencl_available():
                merged.update(device_type="gpu", gpu_device_id=repro.gpu_index)
                self.device = f"gpu:{repro.gpu_index}"
                self.deterministic = False  # OpenCL histograms: float atomics, order varies
            else:
                _log_once(
                    "lightgbm-opencl", "LightGBM: no OpenCL GPU learner here (the PyPI wheel has "
                    "no CUDA learner); LightGBM trials run on the CPU learner",
                )  # fmt: skip
        self.params = merged
        self._booster: Any = None

    def _fit(self, x: np.ndarray, y: np.ndarray, budget: int) -> None:
        self._train(x, y, budget, None)

    def _train(self, x: np.ndarray, y: np.ndarray, rounds: int, init: Path | None) -> None:
        import lightgbm

        dataset = lightgbm.Dataset(
            x, label=y, params={"verbosity": self.params.get("verbosity", -1)}, free_raw_data=True
        )
        self._booster = lightgbm.train(
            self.params, dataset, num_boost_round=rounds,
            init_model=None if init is None else str(init),
        )  # fmt: skip

    def _continue(self, x: np.ndarray, y: np.ndarray, budget: int, checkpoint: _Checkpoint
                  ) -> bool:  # fmt: skip
        import lightgbm

        if budget == checkpoint.budget:
            self._booster = lightgbm.Booster(model_file=str(checkpoint.path))
        else:  # the checkpoint's trees give the initial score; the new ones are appended
            self._train(x, y, budget - checkpoint.budget, checkpoint.path)
        return True

    def _checkpoint_files(self, path: Path) -> dict[str, tuple[Path, Callable[[Path], None]]]:
        booster = self._booster
        return {"model": (path, lambda tmp: booster.save_model(str(tmp), num_iteration=-1))}

    def _predict(self, x: np.ndarray) -> np.ndarray:
        return self._booster.predict(x)


def _check_rf(merged: dict[str, Any], fraction: Any) -> None:
    """LightGBM's own rf precondition, as a ConfigError instead of a fatal error at fit time."""
    _, freq = _first(merged, _LGB_BAGGING_FREQ)
    _, features = _first(merged, _LGB_FEATURE_FRACTION)
    rows = freq is not None and freq > 0 and fraction is not None and 0.0 < fraction < 1.0
    columns = features is not None and 0.0 < features < 1.0
    if not (rows or columns):
        raise ConfigError(
            "lightgbm boosting 'rf' needs bagging_freq >= 1 with 0 < bagging_fraction < 1, or "
            f"0 < feature_fraction < 1 (got bagging_fraction={fraction}, bagging_freq={freq}, "
            f"feature_fraction={features}); leave bagging unset for the defaults "
            f"({RF_BAGGING_FRACTION}, {RF_BAGGING_FREQ})"
        )


# --------------------------------------------------------------------------- XGBoost


class XGBoostEntryModel(_Adapter):
    """XGBoost gradient-boosted trees (Chen & Guestrin 2016, *XGBoost: A Scalable Tree Boosting
    System*, KDD), ``objective="binary:logistic"``, ``tree_method="hist"``.

    ``params`` are laid over ``repro.get_xgboost_params()`` (seed, hist, device ``cpu`` or
    ``cuda:N``, nthread). Trained in one ``xgboost.train`` call: XGBoost <= 3.2 keeps its
    sampling RNG per thread, so interleaving two boosters' updates in one thread would mix their
    random streams.
    """

    family = "xgboost"
    library = "xgboost"

    def __init__(self, params: dict[str, Any], repro: ReproducibilityManager) -> None:
        _reject_reserved(self.family, params)
        self.params = {**repro.get_xgboost_params(), **params, "objective": "binary:logistic"}
        self.device = self.params["device"]  # XGBoost itself falls back to CPU, with a warning
        self.deterministic = True  # hist is deterministic on CPU and CUDA
        self._threads = int(self.params["nthread"])
        self._booster: Any = None

    def _fit(self, x: np.ndarray, y: np.ndarray, budget: int) -> None:
        self._train(x, y, budget, None)

    def _train(self, x: np.ndarray, y: np.ndarray, rounds: int, init: Path | None) -> None:
        import xgboost

        train = xgboost.DMatrix(x, label=y, nthread=self._threads)
        self._booster = xgboost.train(  # one call: no other booster's updates in between
            self.params, train, num_boost_round=rounds, verbose_eval=False,
            xgb_model=None if init is None else str(init),
        )  # fmt: skip

    def _continue(self, x: np.ndarray, y: np.ndarray, budget: int, checkpoint: _Checkpoint
                  ) -> bool:  # fmt: skip
        import xgboost

        if budget == checkpoint.budget:
            self._booster = xgboost.Booster(params=self.params, model_file=str(checkpoint.path))
        else:
            self._train(x, y, budget - checkpoint.budget, checkpoint.path)
        return True

    def _checkpoint_files(self, path: Path) -> dict[str, tuple[Path, Callable[[Path], None]]]:
        if path.suffix not in (".ubj", ".json"):
            raise ValueError(
                f"an XGBoost checkpoint needs the suffix .ubj or .json (XGBoost picks the format "
                f"from it), got {path.name}"
            )
        booster = self._booster
        return {"model": (path, lambda tmp: booster.save_model(str(tmp)))}

    def _predict(self, x: np.ndarray) -> np.ndarray:
        import xgboost

        return self._booster.predict(xgboost.DMatrix(x, nthread=self._threads))


# --------------------------------------------------------------------------- CatBoost


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
        if merged["task_type"] == "GPU" and catboost_gpu_count() == 0:
            _log_once("catboost-gpu", "CatBoost sees no CUDA device; CatBoost trials run on CPU")
            merged["task_type"] = "CPU"
            merged.pop("devices", None)
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
            model.fit(x, y.astype("int64"))
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
                model.fit(x, y.astype("int64"))
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


# --------------------------------------------------------------------------- torch MLP


class TorchMLPEntryModel(_Adapter):
    """A multilayer perceptron in PyTorch: ``layers`` hidden ReLU layers of ``hidden_units``
    with dropout, trained with AdamW (Loshchilov & Hutter 2019) on BCE-with-logits for
    ``budget`` epochs of shuffled mini-batches. Parameters: :data:`TORCH_DEFAULTS`.
    """

    family = "torch"
    library = "torch"

    def __init__(self, params: dict[str, Any], repro: ReproducibilityManager) -> None:
        _reject_reserved(self.family, params)
        unknown = sorted(set(params) - set(TORCH_DEFAULTS))
        if unknown:
            raise ConfigError(
                f"torch entry_model parameters do not include {', '.join(unknown)} (accepted: "
                f"{', '.join(TORCH_DEFAULTS)})"
            )
        merged = {**TORCH_DEFAULTS, **params}
        self.params = {
            "hidden_units": _int_param(merged, "hidden_units", 1),
            "layers": _int_param(merged, "layers", 1),
            "dropout": _float_param(merged, "dropout", 0.0, 1.0, high_open=True),
            "learning_rate": _float_param(merged, "learning_rate", 0.0, math.inf, low_open=True),
            "weight_decay": _float_param(merged, "weight_decay", 0.0, math.inf),
            "batch_size": _int_param(merged, "batch_size", 1),
        }
        settings = repro.get_torch_settings()
        self.seed = int(settings["seed"])
        self.threads = int(settings["num_threads"])
        self._deterministic_algorithms = bool(settings["use_deterministic_algorithms"])
        self.device = "cpu"
        if repro.on_gpu:
            if torch_cuda_available():
                self.device = f"cuda:{repro.gpu_index}"
            else:
                _log_once("torch-cuda", "torch sees no CUDA device; torch trials run on CPU")
        self.deterministic = self._deterministic_algorithms
        self._net: Any = None
        self._optimiser: Any = None
        self._generators: tuple[Any, Any] = (None, None)
        self._mean: np.ndarray | None = None
        self._scale: np.ndarray | None = None

    @contextlib.contextmanager
    def _session(self) -> Iterator[Any]:
        """Fixed threads and deterministic algorithms, restored afterwards. These switches are
        process-wide, so torch trials in one process (``gpu_settings.trials_per_gpu`` > 1 runs
        several in one worker's threads) take turns: one holds :data:`_TORCH_SESSION` at a
        time, and no trial can restore the switches under another's feet."""
        with _TORCH_SESSION, self._switches() as torch:
            yield torch

    @contextlib.contextmanager
    def _switches(self) -> Iterator[Any]:
        import torch

        threads = torch.get_num_threads()
        deterministic = torch.are_deterministic_algorithms_enabled()
        warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
        if self._deterministic_algorithms and self.device.startswith("cuda"):
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
        torch.set_num_threads(self.threads)
        if self._deterministic_algorithms:
            torch.use_deterministic_algorithms(True)
        try:
            yield torch
        finally:
            torch.set_num_threads(threads)
            torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)

    def _fit(self, x: np.ndarray, y: np.ndarray, budget: int) -> None:
        self._train(x, y, budget, None, 0)

    def _continue(self, x: np.ndarray, y: np.ndarray, budget: int, checkpoint: _Checkpoint
                  ) -> bool:  # fmt: skip
        with np.load(checkpoint.path, allow_pickle=False) as archive:
            state = {name: archive[name] for name in archive.files}
        self._train(x, y, budget, state, checkpoint.budget)
        return True

    def _train(self, x: np.ndarray, y: np.ndarray, budget: int,
               state: dict[str, np.ndarray] | None, done: int) -> None:  # fmt: skip
        """Epochs ``done + 1 .. budget``; ``state`` (from a checkpoint after ``done`` epochs)
        restores the weights, AdamW's moments and steps, both generators and the
        standardisation, so the result is that of training ``budget`` epochs in one go."""
        if state is None:
            self._mean = x.mean(axis=0)
            scale = x.std(axis=0)
            self._scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
        else:
            self._mean, self._scale = state["standardise:mean"], state["standardise:scale"]
        p = self.params
        with self._session() as torch:
            init = torch.Generator().manual_seed(self.seed)  # weights and shuffling
            masks = torch.Generator(device=self.device).manual_seed(
                derive_seed(self.seed, "torch", "dropout")
            )
            net = _mlp(torch, x.shape[1], p["hidden_units"], p["layers"], p["dropout"], init,
                       masks).to(self.device)  # fmt: skip
            optimiser = torch.optim.AdamW(
                net.parameters(), lr=p["learning_rate"], weight_decay=p["weight_decay"]
            )
            if state is not None:
                _restore_torch(torch, state, net, optimiser, init, masks)
            inputs = torch.as_tensor(self._standardise(x), device=self.device)
            targets = torch.as_tensor(y.astype("float32"), device=self.device)
            loss_fn = torch.nn.BCEWithLogitsLoss()
            net.train()
            for _ in range(done, budget):
                order = torch.randperm(len(x), generator=init).to(self.device)
                for start in range(0, len(x), p["batch_size"]):
                    batch = order[start : start + p["batch_size"]]
                    optimiser.zero_grad(set_to_none=True)
                    loss = loss_fn(net(inputs[batch]).squeeze(1), targets[batch])
                    loss.backward()
                    optimiser.step()
            net.eval()
        self._net, self._optimiser, self._generators = net, optimiser, (init, masks)

    def _checkpoint_files(self, path: Path) -> dict[str, tuple[Path, Callable[[Path], None]]]:
        arrays = {
            "standardise:mean": np.asarray(self._mean, dtype="float64"),
            "standardise:scale": np.asarray(self._scale, dtype="float64"),
            "rng:init": self._generators[0].get_state().numpy().copy(),
            "rng:masks": self._generators[1].get_state().cpu().numpy().copy(),
        }
        for name, tensor in self._net.state_dict().items():
            arrays[f"net:{name}"] = tensor.detach().cpu().numpy().copy()
        for index, moments in self._optimiser.state_dict()["state"].items():
            for key, tensor in moments.items():
                arrays[f"adamw:{index}:{key}"] = tensor.detach().cpu().numpy().copy()

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as handle:
                np.savez(handle, allow_pickle=False, **arrays)

        return {"model": (path, write)}

    def _identity(self) -> dict[str, Any]:
        return {**super()._identity(), "__seed__": self.seed, "__threads__": self.threads,
                "__deterministic__": self._deterministic_algorithms}  # fmt: skip

    def _predict(self, x: np.ndarray) -> np.ndarray:
        with self._session() as torch, torch.no_grad():
            inputs = torch.as_tensor(self._standardise(x), device=self.device)
            chunks = [
                torch.sigmoid(self._net(inputs[start : start + 65536]).squeeze(1).double())
                for start in range(0, len(x), 65536)
            ]
            if not chunks:
                return np.empty(0)
            return torch.cat(chunks).cpu().numpy()

    def _standardise(self, x: np.ndarray) -> np.ndarray:
        return ((x - self._mean) / self._scale).astype("float32")


def _restore_torch(torch: Any, state: dict[str, np.ndarray], net: Any, optimiser: Any,
                   init: Any, masks: Any) -> None:  # fmt: skip
    """Load a checkpoint's weights, AdamW state and generator states (see ``_train``)."""
    net.load_state_dict(
        {name[4:]: torch.as_tensor(value) for name, value in state.items()
         if name.startswith("net:")}, strict=True,
    )  # fmt: skip
    moments: dict[int, dict[str, Any]] = {}
    for name, value in state.items():
        if name.startswith("adamw:"):
            _, index, key = name.split(":")
            moments.setdefault(int(index), {})[key] = torch.as_tensor(value)
    groups = optimiser.state_dict()["param_groups"]
    optimiser.load_state_dict({"state": moments, "param_groups": groups})
    init.set_state(torch.as_tensor(state["rng:init"]))
    masks.set_state(torch.as_tensor(state["rng:masks"]))


def _mlp(torch: Any, inputs: int, hidden: int, layers: int, dropout: float, init: Any,
         masks: Any) -> Any:  # fmt: skip
    """The network, initialised like ``torch.nn.Linear`` but from ``init``, not the global RNG."""
    nn = torch.nn

    class Dropout(nn.Module):
        def forward(self, z: Any) -> Any:
            if not self.training or dropout == 0.0:
                return z
            keep = torch.empty_like(z).bernoulli_(1.0 - dropout, generator=masks)
            return z * keep / (1.0 - dropout)

    modules: list[Any] = []
    width = inputs
    for _ in range(layers):
        modules += [_linear(torch, width, hidden, init), nn.ReLU(), Dropout()]
        width = hidden
    modules.append(_linear(torch, width, 1, init))
    return nn.Sequential(*modules)


def _linear(torch: Any, fan_in: int, fan_out: int, init: Any) -> Any:
    layer = torch.nn.utils.skip_init(torch.nn.Linear, fan_in, fan_out)  # no global RNG draw
    with torch.no_grad():
        torch.nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=init)
        bound = 1.0 / math.sqrt(fan_in)
        torch.nn.init.uniform_(layer.bias, -bound, bound, generator=init)
    return layer


def _int_param(params: dict[str, Any], name: str, low: int) -> int:
    value = params[name]
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating) \
            or not float(value).is_integer() or value < low:  # fmt: skip
        raise ConfigError(f"torch entry_model.{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _float_param(
    params: dict[str, Any], name: str, low: float, high: float, *, low_open: bool = False,
    high_open: bool = False,
) -> float:  # fmt: skip
    value = params[name]
    ok = isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
    if ok:
        value = float(value)
        ok = (value > low if low_open else value >= low) and (
            value < high if high_open else value <= high
        )
    if not ok:
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise ConfigError(f"torch entry_model.{name} must be a number in {interval}, got {value!r}")
    return value


# --------------------------------------------------------------------------- factory

_ADAPTERS: dict[str, type[_Adapter]] = {
    "catboost": CatBoostEntryModel,
    "lightgbm": LightGBMEntryModel,
    "torch": TorchMLPEntryModel,
    "xgboost": XGBoostEntryModel,
}


def make_entry_model(
    family: str, params: dict[str, Any], repro: ReproducibilityManager
) -> ContinuableEntryModel:
    """The adapter for ``family`` with a trial's ``params``; ``ConfigError`` for an unknown
    family or a reserved/invalid parameter."""
    adapter = _ADAPTERS.get(family)
    if adapter is None:
        raise ConfigError(f"unknown model family '{family}' (known: {', '.join(FAMILIES)})")
    return adapter(dict(params), repro)
