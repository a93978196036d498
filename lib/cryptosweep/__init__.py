"""cryptosweep: reproducible, GPU-accelerated hyperparameter sweeps for crypto trading models.

The public API is imported lazily, so ``import cryptosweep`` (as every dask worker does) stays
cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from cryptosweep.core.version import __version__

#: The stable public API: each name and the module that defines it. Imported lazily, so
#: ``import cryptosweep`` (as every dask worker does) stays cheap; the names keep working
#: whatever moves inside the package (tests/test_public_api.py).
_EXPORTS = {
    "run_sweep": "cryptosweep.sweep.runner",
    "SweepResult": "cryptosweep.sweep.runner",
    "load_config": "cryptosweep.core.config_files",
    "SweepConfig": "cryptosweep.core.config",
    "setup_crypto_gpu_reproducibility": "cryptosweep.core.reproducibility",
    "ReproducibilityManager": "cryptosweep.core.reproducibility",
    "derive_seed": "cryptosweep.core.reproducibility",
    "system_info": "cryptosweep.execution.environment",
    "HyperbandRunner": "cryptosweep.api",
    "train_model": "cryptosweep.production",
    "load_model": "cryptosweep.production",
    "TrainedModel": "cryptosweep.production",
    "load_ohlcv": "cryptosweep.trading.data",
    "build_features": "cryptosweep.trading.features",
    "hyperband_brackets": "cryptosweep.strategies.hyperband",
    "deflated_sharpe_ratio": "cryptosweep.judging.overfitting",
    "probabilistic_sharpe_ratio": "cryptosweep.judging.overfitting",
    "probability_of_backtest_overfitting": "cryptosweep.judging.overfitting",
    "CryptosweepError": "cryptosweep.core.errors",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'cryptosweep' has no attribute {name!r}")
