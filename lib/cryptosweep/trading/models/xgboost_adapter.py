"""XGBoost entry model (gradient-boosted trees, ``hist``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from cryptosweep.core.reproducibility import ReproducibilityManager
from cryptosweep.trading.models.adapter import _Adapter
from cryptosweep.trading.models.continuation import _Checkpoint
from cryptosweep.trading.models.params import _reject_reserved


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

        train = xgboost.DMatrix(x, label=y, nthread=self._threads, weight=self._weight)
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

    def _load(self, checkpoint: _Checkpoint) -> None:
        import xgboost

        self._booster = xgboost.Booster(params=self.params, model_file=str(checkpoint.path))

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
