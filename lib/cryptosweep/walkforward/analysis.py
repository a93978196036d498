"""The track record of a walk-forward process, from its windows' results: what the process
would have earned trading each window's winner on the segment that followed.

* **The out-of-sample track**: the segments' per-bar returns, concatenated in time order; its
  metrics are those of any backtest (:func:`cryptosweep.trading.metrics.performance`).
* **Walk-forward efficiency** (Pardo 2008, ch. 11): annualised out-of-sample return over
  annualised in-sample return, per window and overall. In-sample here is the winner's purged
  walk-forward validation inside its window (the score it was chosen by), so WFE near 1 means
  the process earns out of sample what it measured in sample; well below 1, or negative, means
  the optimisation fits noise. It is undefined (``None``, "undefined") unless the in-sample
  and out-of-sample returns are both gains and ``IS > 1 %`` (:func:`efficiency`).
* **Parameter stability**: how far each parameter of the winner moves from one window to the
  next, as a share of its search range (numbers) or how often it changes (choices): a process
  whose winner jumps across the space each window is choosing luck.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from cryptosweep.trading.metrics import annualised_growth


def annualised_return(returns: np.ndarray, periods_per_year: float) -> float:
    """Compounded growth per year of per-bar ``returns``: ``prod(1 + r) ** (P / n) - 1``
    (``-1`` when the equity is wiped out, 0 for no bars, ``inf`` past the largest float: a
    big move over a few bars, which raised OverflowError)."""
    r = np.asarray(returns, dtype="float64")
    if not len(r):
        return 0.0
    return annualised_growth(float(np.prod(1.0 + r)), periods_per_year / len(r))


#: The smallest in-sample annualised return walk-forward efficiency divides by (1 %): below
#: it, the ratio is noise over nearly nothing.
MIN_IS_ANNUAL_RETURN = 0.01


def efficiency(oos_annual: float, is_annual: float) -> float | None:
    """Walk-forward efficiency: ``oos_annual / is_annual``, defined only when both are gains
    and ``is_annual > MIN_IS_ANNUAL_RETURN`` (1 %); else ``None`` (shown as "undefined"): a
    ratio of opposite signs is negative whichever side lost, a ratio to nearly nothing is
    noise, and a ratio of two losses reads backwards (a process losing 60 % a year out of
    sample after 20 % in sample had a WFE of 3, "better than in sample"). (A loss out of
    sample is still visible: in the out-of-sample return itself.)"""
    if not (math.isfinite(oos_annual) and math.isfinite(is_annual)):
        return None
    if is_annual <= MIN_IS_ANNUAL_RETURN or oos_annual <= 0:
        return None
    return oos_annual / is_annual


def parameter_paths(winners: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """Each parameter's value in every window's winner (``None`` where a window's winner has no
    such parameter, e.g. another model family, or the window has no winner: an empty
    mapping): ``model``, ``entry_model.<name>`` and ``trading.<name>``, in window order."""
    names: list[str] = ["model"]
    for winner in winners:
        for section in ("entry_model", "trading"):
            for name in winner.get(section, {}):
                key = f"{section}.{name}"
                if key not in names:
                    names.append(key)

    def value(winner: Mapping[str, Any], key: str) -> Any:
        if key == "model":
            return winner.get("model")
        section, _, name = key.partition(".")
        return winner.get(section, {}).get(name)

    return {key: [value(w, key) for w in winners] for key in names}


def parameter_stability(paths: Mapping[str, Sequence[Any]],
                        ranges: Mapping[str, tuple[float, float]]) -> dict[str, dict[str, Any]]:
    """Per parameter: ``changes`` (windows whose winner differs from the previous window's) and,
    for a number with a search range ``(low, high)`` in ``ranges``, ``mean_step`` — the mean
    absolute move between consecutive windows as a share of the range (0: never moves; 1:
    from one end to the other every window)."""
    out = {}
    for key, values in paths.items():
        steps = list(itertools.pairwise(values))
        entry: dict[str, Any] = {"changes": sum(a != b for a, b in steps), "windows": len(values)}
        low_high = ranges.get(key)
        numeric = [(a, b) for a, b in steps if _number(a) and _number(b)]
        if low_high is not None and numeric and low_high[1] > low_high[0]:
            span = float(low_high[1]) - float(low_high[0])
            entry["mean_step"] = float(np.mean([abs(float(b) - float(a)) / span
                                                for a, b in numeric]))
        out[key] = entry
    return out


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def search_ranges(config: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    """``(low, high)`` of every numeric dimension of a canonical config's search space, keyed
    as :func:`parameter_paths` keys them (``trading.<name>``, ``entry_model.<name>``; a name
    several families share: the first family's range)."""
    ranges: dict[str, tuple[float, float]] = {}
    blocks = [("trading", config["parameter_ranges"]["trading"])] + [
        ("entry_model", config["parameter_ranges"].get(family) or {})
        for family in config["objective"]["models"]]
    for section, block in blocks:
        for name, dimension in block.items():
            if "low" in dimension:
                ranges.setdefault(f"{section}.{name}", (float(dimension["low"]),
                                                        float(dimension["high"])))
    return ranges
