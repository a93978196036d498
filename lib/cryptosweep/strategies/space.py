"""The search space: entry-model families with their own dimensions, plus trading parameters.

A point of the space is a plain JSON dict::

    {"model": "lightgbm", "entry_model": {"num_leaves": 31, ...}, "trading": {"threshold": 0.55}}

The space is *conditional*: only the chosen family's dimensions are sampled. Dimensions are
always visited in sorted-name order, so two configs that differ only in key order sample the same
points (their canonical JSON, and so their hash, is the same too).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from cryptosweep.core.config import SweepConfig
from cryptosweep.core.errors import ConfigError
from cryptosweep.core.settings import (
    CategoricalDimension,
    FloatDimension,
    IntDimension,
    grid_values,
    snap,
)

DimensionSpec = FloatDimension | IntDimension | CategoricalDimension
Point = dict[str, Any]


@dataclass(frozen=True)
class SearchSpace:
    """Families (in config order) mapped to their dimensions, and the trading dimensions (the
    threshold left out with ``objective.threshold_search``: each trial searches it over its own
    predictions, :func:`~cryptosweep.trading.objective.evaluate_trial`)."""

    families: dict[str, dict[str, DimensionSpec]]
    trading: dict[str, DimensionSpec]

    @classmethod
    def from_config(cls, config: SweepConfig) -> SearchSpace:
        ranges = config.parameter_ranges
        families = {name: _sorted(ranges.family(name)) for name in config.objective.models}
        trading = dict(ranges.trading)
        if config.objective.threshold_search is not None:  # searched inside each trial
            del trading["threshold"]
        return cls(families=families, trading=_sorted(trading))

    def sample(self, rng: np.random.Generator) -> Point:
        """Draw one point: the family first (when there are several), then its dimensions."""
        names = list(self.families)
        family = names[int(rng.integers(len(names)))] if len(names) > 1 else names[0]
        return {
            "model": family,
            "entry_model": {k: sample_dimension(d, rng) for k, d in self.families[family].items()},
            "trading": {k: sample_dimension(d, rng) for k, d in self.trading.items()},
        }

    def grid_size(self, points: int) -> int:
        """How many points :meth:`grid` gives, counted without making them."""
        trading = math.prod(len(grid_values(d, points)) for d in self.trading.values())
        return sum(
            math.prod(len(grid_values(d, points)) for d in dims.values())
            for dims in self.families.values()
        ) * trading

    def grid(self, points: int, max_trials: int) -> list[Point]:
        """Every combination of ``points`` values per numeric dimension (all choices of a
        categorical one), family by family in config order; each point exactly once."""
        size = self.grid_size(points)
        if size > max_trials:
            raise ConfigError(
                f"grid: {size} combinations exceed grid.max_trials={max_trials}; "
                "lower grid.points or narrow parameter_ranges"
            )
        trading_axes = {k: grid_values(d, points) for k, d in self.trading.items()}
        out: list[Point] = []
        for family, dims in self.families.items():
            model_axes = {k: grid_values(d, points) for k, d in dims.items()}
            for model_values in itertools.product(*model_axes.values()):
                for trading_values in itertools.product(*trading_axes.values()):
                    out.append({
                        "model": family,
                        "entry_model": dict(zip(model_axes, model_values, strict=True)),
                        "trading": dict(zip(trading_axes, trading_values, strict=True)),
                    })
        return out


def _sorted(dims: dict[str, DimensionSpec]) -> dict[str, DimensionSpec]:
    return {name: dims[name] for name in sorted(dims)}


def sample_dimension(dim: DimensionSpec, rng: np.random.Generator) -> Any:
    """One draw of ``dim`` from ``rng``, as a plain Python value."""
    if isinstance(dim, CategoricalDimension):
        return dim.choices[int(rng.integers(len(dim.choices)))]
    if isinstance(dim, IntDimension):
        if dim.log:
            value = math.exp(rng.uniform(math.log(dim.low - 0.5 + 1e-9), math.log(dim.high + 0.5)))
            return int(min(max(round(value), dim.low), dim.high))
        n_values = (dim.high - dim.low) // dim.step + 1
        return int(dim.low + dim.step * int(rng.integers(n_values)))
    if dim.log:
        return float(math.exp(rng.uniform(math.log(dim.low), math.log(dim.high))))
    value = float(rng.uniform(dim.low, dim.high))
    return snap(value, dim) if dim.step is not None else value


__all__ = ["DimensionSpec", "Point", "SearchSpace", "grid_values", "sample_dimension"]
