"""Entry-model adapters: one small interface, one implementation per model family.

An entry model is a binary classifier: ``predict_proba`` is the probability that a long entry
at the next open beats the round-trip fee. Each adapter lays a trial's parameters over its
framework's determinism parameters from
:class:`~cryptosweep.core.reproducibility.ReproducibilityManager`, so the same seed gives
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
- ``load(path)`` reads a saved model into a new adapter of the same family and parameters, to
  predict with (``cryptosweep.production``): the checks of continuation but the budget and the
  training data, which loading does not need; it predicts the bytes the saved model did.
- Continuing from one checkpoint twice gives the same bytes in every family that continues
  (:data:`CONTINUATION`). CatBoost (resumed from its snapshot, which holds the random state)
  and torch (all state restored) also equal training from scratch for the full budget,
  bitwise; LightGBM and XGBoost restart their sampling generators from the seed, so they equal
  it only without row/column sampling (:data:`CONTINUATION_EQUALS_SCRATCH`). XGBoost continues
  in one ``xgboost.train`` call, like ``fit``.
"""

from __future__ import annotations

from typing import Any

from cryptosweep.core.errors import ConfigError
from cryptosweep.core.reproducibility import ReproducibilityManager
from cryptosweep.core.vocabulary import MODEL_FAMILIES
from cryptosweep.trading.models.adapter import ContinuableEntryModel, EntryModel, _Adapter
from cryptosweep.trading.models.catboost_adapter import CatBoostEntryModel
from cryptosweep.trading.models.continuation import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_SUFFIX,
    CONTINUATION,
    CONTINUATION_EQUALS_SCRATCH,
    LIGHTGBM_CONTINUATION,
    atomic_write,
    checkpoint_path,
    checkpoint_sidecar,
    supports_continuation,
)
from cryptosweep.trading.models.devices import (
    catboost_gpu_count,
    lightgbm_opencl_available,
    torch_cuda_available,
)
from cryptosweep.trading.models.lightgbm_adapter import LightGBMEntryModel
from cryptosweep.trading.models.params import (
    CATBOOST_FIXED,
    CATBOOST_LEARNING_RATE,
    CATBOOST_SNAPSHOT_INTERVAL,
    FAMILY_DEFAULTS,
    RESERVED_CATBOOST_KEYS,
    RESERVED_KEYS,
    RESERVED_LIGHTGBM_KEYS,
    RESERVED_TORCH_KEYS,
    RESERVED_XGBOOST_KEYS,
    RF_BAGGING_FRACTION,
    RF_BAGGING_FREQ,
    TORCH_DEFAULTS,
)
from cryptosweep.trading.models.torch_mlp import TorchMLPEntryModel
from cryptosweep.trading.models.xgboost_adapter import XGBoostEntryModel

__all__ = [
    "CATBOOST_FIXED", "CATBOOST_LEARNING_RATE", "CATBOOST_SNAPSHOT_INTERVAL", "CHECKPOINT_FORMAT",
    "CHECKPOINT_SUFFIX", "CONTINUATION", "CONTINUATION_EQUALS_SCRATCH",
    "FAMILY_DEFAULTS", "LIGHTGBM_CONTINUATION", "RESERVED_CATBOOST_KEYS",
    "RESERVED_KEYS", "RESERVED_LIGHTGBM_KEYS", "RESERVED_TORCH_KEYS", "RESERVED_XGBOOST_KEYS",
    "RF_BAGGING_FRACTION", "RF_BAGGING_FREQ", "TORCH_DEFAULTS", "CatBoostEntryModel",
    "ContinuableEntryModel", "EntryModel", "LightGBMEntryModel", "TorchMLPEntryModel",
    "XGBoostEntryModel", "atomic_write", "catboost_gpu_count", "checkpoint_path",
    "checkpoint_sidecar", "lightgbm_opencl_available", "make_entry_model",
    "supports_continuation", "torch_cuda_available",
]  # fmt: skip

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
        raise ConfigError(f"unknown model family '{family}' (known: {', '.join(MODEL_FAMILIES)})")
    return adapter(dict(params), repro)
