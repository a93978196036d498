"""Everything a sweep checks before it creates or changes anything: what ``cryptosweep
validate`` runs, and what ``run`` (new or resumed), the notebook and the nightly job run before
a run folder, a lock or a journal is touched.

A config that passes :func:`~cryptosweep.core.config.load_config` may still be one that cannot run:
the checks here need the data, the libraries or the machine — the sweep's size (counted, never
built), each model family's parameter names and values (asked of the libraries themselves,
:mod:`~cryptosweep.trading.models.check`), threads per trial against the cores that will run
them, and the data with its folds (:func:`~cryptosweep.trading.objective.check_spec`). Each
failure is one :class:`~cryptosweep.core.errors.UserError` naming the key: exit code 2.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptosweep.core.config import SweepConfig
from cryptosweep.core.errors import ConfigError, DataError
from cryptosweep.core.files import SQLITE_HEADER
from cryptosweep.core.intervals import describe_annualisation, parse_interval
from cryptosweep.records.ledger import LEDGER_NAME, ledger_problem
from cryptosweep.strategies import sweep_size
from cryptosweep.trading.models.check import range_problem
from cryptosweep.trading.objective import check_cpcv, check_spec
from cryptosweep.trading.regimes import RegimeSettings


@dataclass(frozen=True)
class SweepPlan:
    """What a valid sweep will do: its evaluations, the budget they spend, and its data."""

    evaluations: int
    budget: float
    data: dict[str, Any]

    def describe(self, config: SweepConfig, *, as_written: bool = True) -> str:
        """The one line ``validate`` prints (and ``run`` logs). ``as_written``: ``config`` is
        as its author wrote it; a resume's config is rebuilt from the journal, where every
        key reads as given, so it says nothing of keys the author may not have written."""
        data = self.data
        # What Hyperband's lower rungs buy: the default changed (rounds, then folds).
        fidelity = ""
        if config.sweep_type == "hyperband":
            # An explicit continue_training: true does nothing outside rounds: say so.
            idle = (as_written and config.hyperband.continue_training
                    and config.objective.fidelity != "rounds"
                    and "continue_training" in config.hyperband.model_fields_set)
            note = "; hyperband.continue_training applies to rounds only" if idle else ""
            fidelity = f" (fidelity {config.objective.fidelity}{note})"
        return (f"{config.name}: {config.sweep_type}{fidelity}, {self.evaluations} evaluations, "
                f"{self.budget:g} budget units (full budget {config.full_budget_units} x "
                f"{config.objective.rounds_per_unit:g} rounds), data {data['first_bar']} .. "
                f"{data['last_bar']} ({data['bars']} bars, {data['holdout_bars']} held out); "
                f"{annualisation(data)}")


def annualisation(data: dict[str, Any]) -> str:
    """The bar interval :func:`~cryptosweep.trading.objective.check_spec` detected and the bars
    a year every annualised figure uses: ``1h bars, 8760 a year``."""
    return describe_annualisation(parse_interval(data["bar_interval"]), data["periods_per_year"])


def preflight(config: SweepConfig, *, local: bool = True) -> SweepPlan:
    """Check ``config`` against its data, its libraries and (``local``: trials run on this
    machine) the machine; return the plan. Creates and changes nothing."""
    evaluations, budget = sweep_size(config)
    for family in config.objective.models:
        problem = range_problem(family, config.parameter_ranges.family(family))
        if problem is not None:
            raise ConfigError(f"parameter_ranges.{family}{problem}")
    if local:
        check_threads(config)
    data = check_spec(config.objective_spec())
    check_holding_period(config, data)
    check_evidence(config, data)
    check_places(config)
    return SweepPlan(evaluations, budget, data)


def check_places(config: SweepConfig) -> None:
    """The folders and files the end of the sweep writes outside its run folder: the models
    folder's champion (``deployment.champion_dir``) and the trial ledger
    (``deployment.ledger``, else ``trials.db`` beside the champion). Each must be there as
    what it is (a folder; a SQLite file) or be creatable (its nearest existing parent a
    writable folder), else a ``ConfigError`` now rather than a traceback after the search."""
    deployment = config.deployment
    places: list[tuple[str, Path, str]] = []
    if deployment.champion_dir:
        places.append(("deployment.champion_dir", Path(deployment.champion_dir), "folder"))
    if deployment.ledger:
        places.append(("deployment.ledger", Path(deployment.ledger), "ledger"))
    elif deployment.champion_dir:
        places.append(("deployment.champion_dir (its trial ledger)",
                       Path(deployment.champion_dir).parent / LEDGER_NAME, "ledger"))
    for key, path, kind in places:
        problem = _place_problem(path, kind)
        if problem is not None:
            raise ConfigError(f"{key}: {path} {problem}")


def _place_problem(path: Path, kind: str) -> str | None:
    if path.exists():
        if kind == "folder":
            return None if path.is_dir() else "is a file, not a folder"
        if path.is_dir():
            return "is a folder, not the trial ledger's SQLite file"
        try:
            with path.open("rb") as file:
                header = file.read(len(SQLITE_HEADER))
        except OSError as error:
            return f"cannot be read ({error.strerror or error})"
        if header and header != SQLITE_HEADER:
            return "is not a SQLite database (the trial ledger is one)"
        if not os.access(path, os.W_OK):
            return "is not writable"
        return ledger_problem(path)
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        return f"cannot be created: {parent} is a file, not a folder"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"cannot be created: {parent} is not writable"
    return None


def check_holding_period(config: SweepConfig, data: dict[str, Any]) -> None:
    """A holding period longer than a block a trial backtests (a walk-forward fold's test
    block, the holdout) never reaches its vertical barrier there, and its labels reach past
    the training bars they are purged from: the sweep would run and score nonsense. The longest
    holding period the range can draw against the shortest block (``data`` is
    :func:`~cryptosweep.trading.objective.check_spec`'s description): a ``ConfigError``."""
    longest = longest_holding(config)
    blocks = [(f"fold {k}'s test block", fold["stop"] - fold["start"])
              for k, fold in enumerate(data["folds"])]
    if data.get("holdout"):
        blocks.append(("the holdout", data["holdout"]["stop"] - data["holdout"]["start"]))
    name, shortest = min(blocks, key=lambda block: block[1])
    if longest > shortest:
        remedy = ("a larger data.holdout_fraction" if name == "the holdout"
                  else "fewer objective.folds")
        raise ConfigError(
            f"parameter_ranges.trading.holding_period: up to {longest} bars, longer than "
            f"{name} ({shortest} bars; the data hold {data['bars']} bars in all); lower "
            f"its high, or use {remedy} or more data"
        )


def longest_holding(config: SweepConfig) -> int:
    """The longest holding period ``parameter_ranges.trading.holding_period`` can draw."""
    dimension = config.parameter_ranges.trading["holding_period"]
    choices = getattr(dimension, "choices", None)
    return int(max(choices) if choices is not None else dimension.high)


def check_evidence(config: SweepConfig, data: dict[str, Any], *, markets: bool = True) -> None:
    """The ``evidence`` section against the data: CPCV groups of at least 2 bars each, every
    CPCV split with ``objective.min_train_bars`` bars to train on
    (:func:`~cryptosweep.trading.objective.check_cpcv`), regime windows that label some bars
    (:func:`check_regimes`), and every other market's candles and
    folds (as :func:`~cryptosweep.trading.objective.check_spec` checks the sweep's own) and
    their bar interval (the sweep's: what a configuration's settings count is bars), errors
    naming the market (``markets=False``: not the other markets, which do not depend on the
    sweep's range: a walk-forward checks them with its first window only)."""
    cpcv = config.evidence.cpcv
    if cpcv.enabled and data["development_bars"] < cpcv.groups * 2:
        raise ConfigError(f"evidence.cpcv.groups: {cpcv.groups} groups of "
                          f"{data['development_bars']} development bars: fewer than 2 bars a group")
    if cpcv.enabled:
        check_cpcv(config.objective_spec(), cpcv.groups, cpcv.test_groups,
                   longest_holding(config))
    check_regimes(config, data)
    spec = config.objective_spec()
    for market in config.evidence.markets if markets else ():
        try:
            other = check_spec(spec.model_copy(update={"data": market.data}))
        except (ConfigError, DataError) as exc:
            raise type(exc)(f"evidence.markets ({market.name}): {exc}") from None
        if other["bar_interval"] != data["bar_interval"]:
            # Holding periods, embargo, min_train_bars and every feature's window count bars:
            # on other bars a configuration is another strategy, scored beside this one.
            raise ConfigError(
                f"evidence.markets ({market.name}): its candles are {other['bar_interval']} "
                f"bars and the sweep's are {data['bar_interval']} bars; a configuration's "
                "holding period, the embargo and the features count bars, so there it would "
                f"trade another strategy: give it {data['bar_interval']} candles of that market"
            )


def check_regimes(config: SweepConfig, data: dict[str, Any]) -> None:
    """Regime windows (``evidence.regimes``) longer than the data leave every bar in the
    regimes' warm-up, without a regime: a ``ConfigError`` naming the window that sets the
    warm-up. A bar's return goes to the regime of the bar before
    (:func:`~cryptosweep.sweep.robustness.regimes_block`), so bars ``first + 1`` on, where
    ``first`` is the first bar with a regime, can have one; validation bars before them are
    reported as bars without a regime."""
    settings = config.evidence.regimes
    if not settings.enabled:
        return
    regimes = RegimeSettings(
        trend_lookback=settings.trend_lookback, trend_threshold=settings.trend_threshold,
        volatility_window=settings.volatility_window,
        volatility_min_history=settings.volatility_min_history)
    first = regimes.first_labelled
    if data["bars"] - 1 <= first:  # no bar t < bars with t - 1 >= first
        key, how = regimes.longest_window()
        raise ConfigError(
            f"evidence.regimes.{key}: the regimes need {first} bars of history ({how}) before "
            f"a bar has one, and the data hold {data['bars']} bars: none of them would have a "
            "regime; lower it, use more data or set evidence.regimes.enabled: false"
        )


def check_threads(config: SweepConfig, cores: int | None = None) -> None:
    """More threads per trial than this machine has cores only oversubscribes it (and enough of
    them make OpenMP abort the process): a ``ConfigError``."""
    cores = cores if cores is not None else available_cores()
    threads = config.objective.threads_per_trial
    if threads > cores:
        raise ConfigError(
            f"objective.threads_per_trial: {threads} threads per trial, more than the {cores} "
            "CPU cores of this machine"
        )


def available_cores() -> int:
    """The CPU cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1
