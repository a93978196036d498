"""The foundations every layer stands on: errors (one root carrying the exit code), files,
faults, locking, paths, intervals, formatting, the typed config, reproducibility."""

from __future__ import annotations

from cryptosweep.core.lazy import lazy_exports

_EXPORTS = {
    "CryptosweepError": "cryptosweep.core.errors",
    "SweepConfig": "cryptosweep.core.config",
    "load_config": "cryptosweep.core.config_files",
    "resolve": "cryptosweep.core.paths",
    "flag": "cryptosweep.core.strict",
    "derive_seed": "cryptosweep.core.reproducibility",
}

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
