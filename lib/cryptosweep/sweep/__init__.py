"""A sweep from start to end: opening a run (new or resumed), the search loop, preflight,
the end of the sweep on the executor, the champion as the gate sees it."""

from __future__ import annotations

from cryptosweep.core.lazy import lazy_exports

_EXPORTS = {
    "run_sweep": "cryptosweep.sweep.runner",
    "SweepResult": "cryptosweep.sweep.runner",
    "preflight": "cryptosweep.sweep.preflight",
}

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
