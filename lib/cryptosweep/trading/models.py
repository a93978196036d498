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
  budgets would be two different models and budgets could not be compared. GPU:
  ``task_type="GPU"``, which is *not* bitwise deterministic (``deterministic`` is False).
- Torch: a ReLU MLP trained with AdamW on BCE-with-logits; features standardised with the
  training mean/std; one ``torch.Generator`` seeded from ``repro.seed`` draws the initial weights
  and the shuffling (dropout masks come from a second generator on the training device);
  deterministic algorithms and ``repro.threads`` CPU threads while training and predicting
  (process-wide torch switches, restored afterwards).

Each adapter has ``params`` (what it passes to the library, resolved in the constructor, so the
GPU mapping can be inspected without training), ``device`` (where it will run) and
``deterministic`` (whether the same seed gives the same bytes there).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import threading
from collections.abc import Iterator
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
    "catboost": {"loss_function": "Logloss", "learning_rate": CATBOOST_LEARNING_RATE},
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
    """Budget and input checks shared by the adapters; subclasses implement _fit/_predict."""

    family: ClassVar[str]
    params: dict[str, Any]
    device: str
    deterministic: bool
    _fitted: bool = False

    def fit(
        self, X: np.ndarray, y: np.ndarray, budget: int | None = None, *,  # noqa: N803
        rounds: int | None = None,
    ) -> None:  # fmt: skip
        """Train from scratch for ``budget`` rounds/epochs (``rounds=`` is the old name)."""
        if (budget is None) == (rounds is None):
            raise TypeError("fit needs exactly one of budget (or its old name rounds)")
        budget = budget if budget is not None else rounds
        if isinstance(budget, bool) or int(budget) != budget or budget < 1:
            raise ValueError(f"budget must be an integer >= 1, got {budget!r}")
        x = _features(X)
        labels = np.asarray(y, dtype="float64").reshape(-1)
        if len(labels) != len(x):
            raise ValueError(f"X has {len(x)} rows but y has {len(labels)}")
        if len(x) == 0:
            raise ValueError("cannot fit on an empty training set")
        if not np.isin(labels, (0.0, 1.0)).all():
            raise ValueError("y must hold only 0 and 1")
        self._fit(x, labels, int(budget))
        self._fitted = True

    def predict_proba(self, X: np.ndarray) -> np.ndarray:  # noqa: N803
        if not self._fitted:
            raise RuntimeError("predict_proba called before fit")
        x = _features(X)
        return np.asarray(self._predict(x), dtype="float64").reshape(-1)

    def _fit(self, x: np.ndarray, y: np.ndarray, budget: int) -> None:
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
        import lightgbm

        dataset = lightgbm.Dataset(
            x, label=y, params={"verbosity": self.params.get("verbosity", -1)}, free_raw_data=True
        )
        self._booster = lightgbm.train(self.params, dataset, num_boost_round=budget)

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

    def __init__(self, params: dict[str, Any], repro: ReproducibilityManager) -> None:
        _reject_reserved(self.family, params)
        self.params = {**repro.get_xgboost_params(), **params, "objective": "binary:logistic"}
        self.device = self.params["device"]  # XGBoost itself falls back to CPU, with a warning
        self.deterministic = True  # hist is deterministic on CPU and CUDA
        self._threads = int(self.params["nthread"])
        self._booster: Any = None

    def _fit(self, x: np.ndarray, y: np.ndarray, budget: int) -> None:
        import xgboost

        train = xgboost.DMatrix(x, label=y, nthread=self._threads)
        self._booster = xgboost.train(
            self.params, train, num_boost_round=budget, verbose_eval=False
        )

    def _predict(self, x: np.ndarray) -> np.ndarray:
        import xgboost

        return self._booster.predict(xgboost.DMatrix(x, nthread=self._threads))


# --------------------------------------------------------------------------- CatBoost


class CatBoostEntryModel(_Adapter):
    """CatBoost oblivious-tree boosting (Prokhorenkova et al. 2018, *CatBoost: unbiased boosting
    with categorical features*, NeurIPS), ``loss_function="Logloss"``.

    ``params`` are laid over ``repro.get_catboost_params()``; ``learning_rate`` is always set
    (``CATBOOST_LEARNING_RATE`` unless given; ``eta`` is accepted as its alias) because
    CatBoost's automatic rate depends on the iteration count. ``task_type="GPU"`` when the
    device is CUDA and CatBoost sees a GPU (not bitwise deterministic), else the CPU learner.
    """

    family = "catboost"

    def __init__(self, params: dict[str, Any], repro: ReproducibilityManager) -> None:
        _reject_reserved(self.family, params)
        if "eta" in params and "learning_rate" in params:
            raise ConfigError("catboost entry_model parameters set both eta and learning_rate")
        given = {k: v for k, v in params.items() if k not in ("eta", "objective")}
        given["learning_rate"] = params.get("learning_rate", params.get("eta"))
        if given["learning_rate"] is None:
            given["learning_rate"] = CATBOOST_LEARNING_RATE
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

    def _fit(self, x: np.ndarray, y: np.ndarray, budget: int) -> None:
        from catboost import CatBoostClassifier

        self._constant = None
        if np.unique(y).size == 1:  # CatBoost refuses one-class targets; the answer is known
            self._constant, self._model = float(y[0]), None
            return
        self._model = CatBoostClassifier(**self.params, iterations=budget)
        self._model.fit(x, y.astype("int64"))

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
        self._mean: np.ndarray | None = None
        self._scale: np.ndarray | None = None

    @contextlib.contextmanager
    def _session(self) -> Iterator[Any]:
        """Fixed threads and deterministic algorithms, restored afterwards (process-wide)."""
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
        self._mean = x.mean(axis=0)
        scale = x.std(axis=0)
        self._scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
        p = self.params
        with self._session() as torch:
            init = torch.Generator().manual_seed(self.seed)  # weights and shuffling
            masks = torch.Generator(device=self.device).manual_seed(
                derive_seed(self.seed, "torch", "dropout")
            )
            net = _mlp(torch, x.shape[1], p["hidden_units"], p["layers"], p["dropout"], init,
                       masks).to(self.device)  # fmt: skip
            inputs = torch.as_tensor(self._standardise(x), device=self.device)
            targets = torch.as_tensor(y.astype("float32"), device=self.device)
            optimiser = torch.optim.AdamW(
                net.parameters(), lr=p["learning_rate"], weight_decay=p["weight_decay"]
            )
            loss_fn = torch.nn.BCEWithLogitsLoss()
            net.train()
            for _ in range(budget):
                order = torch.randperm(len(x), generator=init).to(self.device)
                for start in range(0, len(x), p["batch_size"]):
                    batch = order[start : start + p["batch_size"]]
                    optimiser.zero_grad(set_to_none=True)
                    loss = loss_fn(net(inputs[batch]).squeeze(1), targets[batch])
                    loss.backward()
                    optimiser.step()
            net.eval()
        self._net = net

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
) -> EntryModel:
    """The adapter for ``family`` with a trial's ``params``; ``ConfigError`` for an unknown
    family or a reserved/invalid parameter."""
    adapter = _ADAPTERS.get(family)
    if adapter is None:
        raise ConfigError(f"unknown model family '{family}' (known: {', '.join(FAMILIES)})")
    return adapter(dict(params), repro)
