"""The entry-model interface and what every adapter shares: budget and input checks, checkpoint
saving and checked reading, continuation dispatch (:class:`_Adapter`)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from cryptosweep.core.files import canonical_json
from cryptosweep.trading.models.continuation import (
    CHECKPOINT_FORMAT,
    _Checkpoint,
    _data_digest,
    _file_digest,
    _library_version,
    atomic_write,
    checkpoint_sidecar,
    supports_continuation,
)

log = logging.getLogger(__name__)

_logged: set[str] = set()
_logged_lock = threading.Lock()


def _log_once(key: str, message: str, *args: object) -> None:
    with _logged_lock:
        if key in _logged:
            return
        _logged.add(key)
    log.warning(message, *args)


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
    #: The rows' weights of the fit in progress (None: every row counts once).
    _weight: np.ndarray | None = None

    @property
    def continues(self) -> bool:
        """Whether ``fit(..., init_from=...)`` continues here (else it retrains from scratch):
        :func:`supports_continuation` for these parameters and device, and a deterministic
        learner."""
        return self.deterministic and supports_continuation(self.family, self.params, self.device)

    def fit(
        self, X: np.ndarray, y: np.ndarray, budget: int | None = None,  # noqa: N803
        init_from: str | os.PathLike[str] | None = None, *, rounds: int | None = None,
        sample_weight: np.ndarray | None = None,
    ) -> None:  # fmt: skip
        """Train for ``budget`` rounds/epochs in total (``rounds=`` is the old name): from
        scratch, or on from the checkpoint ``init_from`` (written by :meth:`save` after fewer
        rounds/epochs) where :attr:`continues`; elsewhere ``init_from`` is ignored.
        ``sample_weight``: one finite weight >= 0 per row (e.g. the uniqueness weights of
        :mod:`cryptosweep.trading.uniqueness`), given to the library's own weighted fit."""
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
        weight = None
        if sample_weight is not None:
            weight = np.asarray(sample_weight, dtype="float64").reshape(-1)
            if len(weight) != len(x) or not np.all(np.isfinite(weight) & (weight >= 0)):
                raise ValueError("sample_weight must hold one finite weight >= 0 per row")
        data_digest = _data_digest(x, labels, weight)
        checkpoint = None
        if init_from is not None:
            if self.continues:
                checkpoint = self._read_checkpoint(Path(init_from), budget, data_digest)
            else:
                log.debug("%s on %s does not continue from checkpoints; %s retrains from "
                          "scratch", self.family, self.device, init_from)  # fmt: skip
        self._fitted = False  # a failed training leaves no half-updated model to use or save
        continued = False
        self._weight = weight
        try:
            if checkpoint is None:
                self._fit(x, labels, budget)
            else:
                continued = self._continue(x, labels, budget, checkpoint)
        finally:
            self._weight = None
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
            "params": json.loads(canonical_json(self._identity())),
            "params_digest": self._params_digest(),
            "data_digest": self._data_digest,
            "files": files,
            **self._checkpoint_meta(),
        }
        text = json.dumps(meta, indent=1, sort_keys=True) + "\n"
        atomic_write(checkpoint_sidecar(path), lambda tmp: tmp.write_text(text, encoding="utf-8"))
        return path

    def load(self, path: str | os.PathLike[str]) -> None:
        """Read a model :meth:`save` wrote into this adapter, to predict with it: the sidecar
        must say the same family, library version and parameters (seed, threads and device
        included), and every file must match its digest, else ``ValueError`` (a missing file:
        ``FileNotFoundError``). The training data is not needed."""
        checkpoint = self._read_checkpoint(Path(path), None, None, action="load")
        self._fitted = False
        self._load(checkpoint)
        self._budget, self._data_digest = checkpoint.budget, str(checkpoint.meta["data_digest"])
        self.last_fit_continued = False
        self._fitted = True

    def _identity(self) -> dict[str, Any]:
        """Everything a continued model depends on besides the data (checked on continuation)."""
        return {**self.params, "__device__": self.device}

    def _params_digest(self) -> str:
        text = canonical_json(self._identity())
        return hashlib.blake2b(text.encode(), digest_size=20).hexdigest()

    def _read_checkpoint(self, path: Path, budget: int | None, data_digest: str | None,
                         action: str = "continue from") -> _Checkpoint:  # fmt: skip
        """The checked checkpoint at ``path``; ``budget``/``data_digest`` ``None`` (loading a
        model to predict with) skip the checks that only continuing needs."""
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
        elif data_digest is not None and meta.get("data_digest") != data_digest:
            problem = "it was trained on other data"
        if problem is not None:
            raise ValueError(f"cannot {action} checkpoint {path}: {problem}")
        saved = int(meta["budget"])
        if budget is not None and budget < saved:
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

    def _load(self, checkpoint: _Checkpoint) -> None:
        raise NotImplementedError

    def _predict(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError
