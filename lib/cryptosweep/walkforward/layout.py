"""A walk-forward run's windows on its config's data, each window's sweep config, and every
check made before anything is created (a layout that does not fit is one
:class:`~cryptosweep.core.errors.ConfigError` naming the window and the problem: exit 2).

Window ``k``'s sweep is the config's sweep restricted to the window's in-sample bars
(``data.start`` / ``data.end``; its ``data.holdout_fraction`` applies inside them), with the
seed :func:`window_seed` (``derive_seed(master, "walkforward-window", k)``) and no
``walk_forward`` section. Its winner is then traded on bars ``[in-sample start, segment end)``
of the same data with no holdout (:mod:`.segment`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from cryptosweep.core.config import SweepConfig
from cryptosweep.core.config_files import validate_config
from cryptosweep.core.errors import ConfigError, DataError
from cryptosweep.core.reproducibility import derive_seed
from cryptosweep.core.settings import CategoricalDimension
from cryptosweep.sweep.preflight import check_evidence, check_holding_period
from cryptosweep.trading.objective import check_spec
from cryptosweep.trading.steps import load_market
from cryptosweep.walkforward.windows import Window, check_against_labels, plan_windows

#: The key window seeds are derived with: ``derive_seed(master_seed, WINDOW_SEED_KEY, k)``.
WINDOW_SEED_KEY = "walkforward-window"


def window_seed(master_seed: int, index: int) -> int:
    """Window ``index``'s sweep seed: independent of the others, fixed by the master seed."""
    return derive_seed(master_seed, WINDOW_SEED_KEY, index)


def window_dir_name(index: int) -> str:
    """The window's run folder inside the walk-forward folder."""
    return f"window_{index:02d}"


@dataclass(frozen=True)
class WindowPlan:
    """One window: its bars, timestamps, seed and the configs of its sweep and its trade."""

    window: Window
    seed: int
    sweep_config: SweepConfig
    trade_spec: dict[str, Any]
    is_first_bar: str
    is_last_bar: str
    oos_first_bar: str
    oos_last_bar: str

    def as_dict(self) -> dict[str, Any]:
        return {**self.window.as_dict(), "seed": self.seed, "run": window_dir_name(
            self.window.index), "is_first_bar": self.is_first_bar,
            "is_last_bar": self.is_last_bar, "oos_first_bar": self.oos_first_bar,
            "oos_last_bar": self.oos_last_bar}


def max_holding_period(config: SweepConfig) -> int:
    """The longest holding period the search may choose (``parameter_ranges.trading
    .holding_period``): the longest label and the longest trade."""
    dimension = config.parameter_ranges.trading.get("holding_period")
    if dimension is None:
        return 1
    if isinstance(dimension, CategoricalDimension):
        return max(math.ceil(float(c)) for c in dimension.choices)
    return math.ceil(float(dimension.high))


def plan(config: SweepConfig, master_seed: int) -> list[WindowPlan]:
    """Every window of ``config.walk_forward`` on the config's data (its ``data.start`` ..
    ``data.end`` when given), checked: the layout fits, segments can hold a trade, the
    embargo covers the labels, and every window's sweep passes
    :func:`~cryptosweep.trading.objective.check_spec` and the checks of its bars its own
    preflight makes (:func:`~cryptosweep.sweep.preflight.check_holding_period`,
    :func:`~cryptosweep.sweep.preflight.check_evidence`). Nothing is written."""
    settings = config.walk_forward
    if settings is None:
        raise ConfigError("walkforward: the config has no walk_forward section (set at least "
                          "walk_forward.out_of_sample_bars and windows or in_sample_bars)")
    if not config.data.has_holdout and not settings.trade_rejected:
        raise ConfigError(
            "walk_forward: data.holdout_fraction is 0, so every window's deployment gate "
            "rejects its winner (no holdout to judge it on) and, with walk_forward"
            ".trade_rejected false, the process could never trade: set data.holdout_fraction "
            "> 0 (each window's holdout lies inside its in-sample bars) or "
            "walk_forward.trade_rejected: true")
    whole = config.objective_spec().model_copy(
        update={"data": config.data.model_copy(update={"holdout_fraction": 0.0})})
    check_spec(whole)  # a bad file or range: the data's own error first
    index = load_market(whole).ohlcv.index
    windows = plan_windows(len(index), settings.out_of_sample_bars, windows=settings.windows,
                           in_sample_bars=settings.in_sample_bars, anchored=settings.anchored,
                           embargo_bars=settings.embargo_bars)
    check_against_labels(windows, settings.embargo_bars, max_holding_period(config))

    def bound(position: int) -> str | None:  # a range end: the next bar, or the data's end
        return index[position].isoformat() if position < len(index) else config.data.end

    plans = []
    for window in windows:
        where = (f"walk_forward window {window.index} (in-sample {index[window.is_start]} .. "
                 f"{index[window.is_stop - 1]})")
        raw = config.canonical()
        raw["walk_forward"] = None
        raw["name"] = f"{config.name}_{window_dir_name(window.index)}"
        raw["data"].update(start=index[window.is_start].isoformat(),
                           end=bound(window.is_stop))
        sweep_config = validate_config(raw, where)
        try:
            data = check_spec(sweep_config.objective_spec())
            # What the window's own sweep checks of its bars before it starts: a CPCV split or
            # regime windows that need more bars than a window holds were refused there, after
            # the walk-forward's folder and its earlier windows (the other markets do not
            # depend on the window: checked with the first).
            check_holding_period(sweep_config, data)
            check_evidence(sweep_config, data, markets=not plans)
        except (ConfigError, DataError) as exc:
            raise type(exc)(f"{where}: {exc}") from None
        trade_data = config.data.model_copy(update={
            "holdout_fraction": 0.0, "start": index[window.is_start].isoformat(),
            "end": bound(window.oos_stop)})
        trade_spec = config.objective_spec().model_copy(update={"data": trade_data})
        plans.append(WindowPlan(
            window=window, seed=window_seed(master_seed, window.index),
            sweep_config=sweep_config, trade_spec=trade_spec.to_payload(),
            is_first_bar=index[window.is_start].isoformat(),
            is_last_bar=index[window.is_stop - 1].isoformat(),
            oos_first_bar=index[window.oos_start].isoformat(),
            oos_last_bar=index[window.oos_stop - 1].isoformat()))
    return plans
