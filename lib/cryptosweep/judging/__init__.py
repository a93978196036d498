"""Judging a run: probabilistic and deflated Sharpe ratios, PBO, the edge over the baselines,
the deployment gate, the verdict and its caveats."""

from __future__ import annotations

from cryptosweep.core.lazy import lazy_exports

_EXPORTS = {
    "deflated_sharpe_ratio": "cryptosweep.judging.overfitting",
    "probabilistic_sharpe_ratio": "cryptosweep.judging.overfitting",
    "probability_of_backtest_overfitting": "cryptosweep.judging.overfitting",
    "decide": "cryptosweep.judging.deployment",
    "verdict": "cryptosweep.judging.verdict",
}

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
