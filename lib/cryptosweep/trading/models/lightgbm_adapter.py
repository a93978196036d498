"""LightGBM entry model (gradient-boosted trees, or a random forest with ``boosting: "rf"``)."""

from __future__ import annotations

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
    _LGB_BAGGING_FRACTION,
    _LGB_BAGGING_FREQ,
    _LGB_BOOSTING,
    _LGB_FEATURE_FRACTION,
    RF_BAGGING_FRACTION,
    RF_BAGGING_FREQ,
    _first,
    _reject_reserved,
)


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
            if devices.lightgbm_opencl_available():
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
            x, label=y, params={"verbosity": self.params.get("verbosity", -1)}, free_raw_data=True,
            weight=self._weight,
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

    def _load(self, checkpoint: _Checkpoint) -> None:
        import lightgbm

        self._booster = lightgbm.Booster(model_file=str(checkpoint.path))

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
