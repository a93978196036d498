"""Entry-model adapters: one small interface, one implementation per model family.

An entry model is a binary classifier: ``predict_proba`` is the probability that a long entry
at the next open beats the round-trip fee. Each adapter takes its framework's determinism
parameters from :class:`~cryptosweep.reproducibility.ReproducibilityManager`, so the same seed
gives bitwise-identical predictions on CPU.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

from cryptosweep.errors import ConfigError
from cryptosweep.reproducibility import ReproducibilityManager

#: Families the design plans adapters for; only these have one so far.
IMPLEMENTED_FAMILIES = ("lightgbm",)
PLANNED_FAMILIES = ("catboost", "xgboost", "torch")
#: Keys that would override the seed or thread count the run derives (and so break
#: reproducibility); they may not appear in a trial's model parameters.
RESERVED_LIGHTGBM_KEYS = frozenset({
    "seed", "random_seed", "random_state", "bagging_seed", "feature_fraction_seed",
    "data_random_seed", "extra_seed", "drop_seed", "objective_seed", "deterministic",
    "num_threads", "num_thread", "nthread", "nthreads", "n_jobs",
})  # fmt: skip


@runtime_checkable
class EntryModel(Protocol):
    """A binary classifier trained on a feature matrix with a boosting/epoch budget."""

    def fit(self, X: np.ndarray, y: np.ndarray, rounds: int) -> None:  # noqa: N803
        """Train from scratch on ``X`` (n x d float) and ``y`` (n, 0.0/1.0)."""
        ...

    def predict_proba(self, X: np.ndarray) -> np.ndarray:  # noqa: N803
        """Probability of class 1 for each row of ``X``, shape (n,)."""
        ...


class LightGBMEntryModel:
    """LightGBM gradient-boosted trees (Ke et al. 2017, *LightGBM: A Highly Efficient Gradient
    Boosting Decision Tree*, NeurIPS), ``objective="binary"``.

    ``params`` (num_leaves, learning_rate, ...) are laid over ``repro.get_lightgbm_params()``;
    a ``bagging_fraction < 1`` without ``bagging_freq`` gets ``bagging_freq=1`` (LightGBM
    otherwise ignores bagging silently).
    """

    def __init__(self, params: dict[str, Any], repro: ReproducibilityManager) -> None:
        reserved = sorted(RESERVED_LIGHTGBM_KEYS.intersection(params))
        if reserved:
            raise ConfigError(
                f"entry_model parameters may not set {', '.join(reserved)}: seeds and threads "
                "come from the run's reproducibility settings"
            )
        merged = {**repro.get_lightgbm_params(), **params, "objective": "binary"}
        if merged.get("bagging_fraction", 1.0) < 1.0 and "bagging_freq" not in params:
            merged["bagging_freq"] = 1
        self.params = merged
        self._booster = None

    def fit(self, X: np.ndarray, y: np.ndarray, rounds: int) -> None:  # noqa: N803
        import lightgbm

        if rounds < 1:
            raise ValueError(f"rounds must be >= 1, got {rounds}")
        dataset = lightgbm.Dataset(
            np.ascontiguousarray(X, dtype="float64"),
            label=np.asarray(y, dtype="float64"),
            params={"verbosity": self.params.get("verbosity", -1)},
            free_raw_data=True,
        )
        self._booster = lightgbm.train(self.params, dataset, num_boost_round=int(rounds))

    def predict_proba(self, X: np.ndarray) -> np.ndarray:  # noqa: N803
        if self._booster is None:
            raise RuntimeError("predict_proba called before fit")
        return np.asarray(self._booster.predict(np.ascontiguousarray(X, dtype="float64")))


def make_entry_model(
    family: str, params: dict[str, Any], repro: ReproducibilityManager
) -> EntryModel:
    """The adapter for ``family``; ``ConfigError`` for a family without one."""
    if family == "lightgbm":
        return LightGBMEntryModel(params, repro)
    if family in PLANNED_FAMILIES:
        raise ConfigError(
            f"model family '{family}' has no adapter yet (implemented: "
            f"{', '.join(IMPLEMENTED_FAMILIES)})"
        )
    raise ConfigError(
        f"unknown model family '{family}' (implemented: {', '.join(IMPLEMENTED_FAMILIES)}; "
        f"planned: {', '.join(PLANNED_FAMILIES)})"
    )
