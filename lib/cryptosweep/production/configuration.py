"""What production trains: one configuration of a best-configs file, read and checked.

A best-configs file (``best_configs_<ts>.json`` of a run, ``models/best_configs_latest.json``
of the nightly) has ``schema`` :data:`~cryptosweep.records.results.BEST_CONFIGS_SCHEMA`, and each of
its ``configurations`` carries everything a model needs: ``params`` (family, entry-model
parameters, trading parameters), ``budget``, ``seed``, ``metrics.rounds``, ``objective_spec``
(labels, fees, slippage, shorts, rounds per unit, threads, data path and loader options,
holdout fraction) and ``data`` (the swept data's fingerprint and bar interval). A file from
another version, or an entry missing one of these, is a
:class:`~cryptosweep.core.errors.ConfigError`
naming what is wrong (exit 2 from the CLI).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cryptosweep.core.config import ObjectiveSpec
from cryptosweep.core.errors import ConfigError, UserError
from cryptosweep.core.intervals import parse_interval
from cryptosweep.core.reproducibility import SEED_BITS
from cryptosweep.core.settings import MAX_ROUNDS
from cryptosweep.core.vocabulary import MODEL_FAMILIES
from cryptosweep.records.results import (
    BEST_CONFIGS_GLOB,
    BEST_CONFIGS_LAST_RUN,
    BEST_CONFIGS_LATEST,
    BEST_CONFIGS_SCHEMA,
    CHAMPION_HISTORY,
    latest_file,
)
from cryptosweep.trading.steps import TradingParams, full_rounds

_RESUME_HINT = ("rewrite it with the version installed: `cryptosweep run --resume RUN_DIR` "
                "on its finished run folder")


@dataclass(frozen=True)
class Configuration:
    """One checked configuration: ``entry`` as given (plain JSON), and what training reads
    from it."""

    entry: dict[str, Any]
    params: dict[str, Any]
    family: str
    budget: float
    seed: int
    rounds: int
    trading: TradingParams
    spec: ObjectiveSpec
    bar_interval: str
    source: str
    #: The deployment gate's decision on this configuration (``decision``, ``reason``) when
    #: it came from a best-configs file: the gate judges the winner (rank 1) only; other ranks
    #: are ``"not judged"``. None for an entry given on its own.
    deployment: dict[str, Any] | None = None
    #: One line when the file's winner summary (``trading_params``, ``entry_model``) says
    #: otherwise than ``configurations[0]``, which is what is trained; None when they agree.
    summary_note: str | None = None

    @property
    def rejected_note(self) -> str | None:
        """One line when the gate did not approve this configuration (None when it did, or
        when nothing says)."""
        return gate_note(self.deployment)


def gate_note(deployment: Mapping[str, Any] | None) -> str | None:
    """One line when a recorded gate decision is not an approval (None when it is, or when
    there is none)."""
    if not deployment or deployment.get("decision") in (None, "approved"):
        return None
    decision = deployment.get("decision")
    if decision == "not judged":
        return ("this configuration is not the run's winner: the deployment gate never judged "
                "it; it is not a deployed champion")
    reason = str(deployment.get("reason") or "").strip()
    return (f"this configuration was {decision} by the deployment gate"
            + (f" ({reason.rstrip('.')})" if reason else "")
            + ": it is not a deployed champion; study it, do not trade it")


def read_best_configs(path: str | os.PathLike[str]) -> tuple[dict[str, Any], str]:
    """The best-configs dict at ``path`` and a name for messages. ``path`` is the JSON file, a
    run folder (its newest ``best_configs_*.json``) or a models folder holding
    :data:`BEST_CONFIGS_LATEST` (a models folder without it, its champion never approved or
    demoted, is a ``ConfigError``: never its :data:`BEST_CONFIGS_LAST_RUN`, which the gate
    may have rejected)."""
    path = Path(path)
    if path.is_dir():
        latest = path / BEST_CONFIGS_LATEST
        if not latest.is_file() and any((path / name).exists() for name in
                                        (BEST_CONFIGS_LAST_RUN, CHAMPION_HISTORY)):
            # Never the last run's winner: the gate may have rejected it. Saying how to ask
            # for it names the file (the README's Python example falls back to it), not
            # only a field of a JSON-lines file to dig out.
            last_run = path / BEST_CONFIGS_LAST_RUN
            anyway = (f"give that file, {last_run}, or its run folder" if last_run.is_file()
                      else f"give its run folder (the 'best_configs' of {CHAMPION_HISTORY}'s "
                           "last line)")
            raise ConfigError(
                f"{path}: a models folder with no approved champion ({BEST_CONFIGS_LATEST} is "
                "not there: the deployment gate has approved none, or the champion was "
                f"demoted); to use the last run's winner anyway, {anyway}")
        try:
            path = latest if latest.is_file() else latest_file(path, BEST_CONFIGS_GLOB)
        except UserError:
            raise ConfigError(f"{path}: no {BEST_CONFIGS_GLOB} or {BEST_CONFIGS_LATEST} in this "
                              "folder (is it a finished run folder?)") from None
    elif not path.is_file():
        raise ConfigError(f"best configs not found: {path}")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path} is not a best-configs JSON file: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path} is not a best-configs JSON file: nested too deep") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it ({exc.strerror})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a best-configs object at the top level")
    return raw, str(path)


def configuration_of(
    source: Mapping[str, Any] | str | os.PathLike[str], rank: int = 1
) -> Configuration:
    """The configuration to train: ``source`` is one entry (``best["configurations"][0]``),
    a whole best-configs dict, or a path :func:`read_best_configs` reads; of a whole file the
    one at ``rank`` (1 = the winner), or a :class:`Configuration` already read. Every problem
    is one ``ConfigError`` line."""
    if isinstance(source, Configuration):
        return source
    if isinstance(source, str | os.PathLike):
        best, name = read_best_configs(source)
        return _entry_of_file(best, name, rank)
    if not isinstance(source, Mapping):
        raise ConfigError(f"train_model needs a best-configs entry, a best-configs dict or a "
                          f"path, got {type(source).__name__}")
    if "configurations" in source:
        return _entry_of_file(dict(source), "best configs", rank)
    return check_entry(dict(source), "configuration")


def _entry_of_file(best: dict[str, Any], name: str, rank: int) -> Configuration:
    schema = best.get("schema")
    if schema != BEST_CONFIGS_SCHEMA:
        said = "has no schema" if schema is None else f"has schema {schema!r}"
        raise ConfigError(f"{name} {said}, this cryptosweep reads {BEST_CONFIGS_SCHEMA!r}: it was "
                          f"written by another version; {_RESUME_HINT}")
    entries = best.get("configurations")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{name}: 'configurations' is empty or missing (the run had no "
                          "finished evaluation)")
    if isinstance(rank, bool) or not isinstance(rank, int) or not 1 <= rank <= len(entries):
        raise ConfigError(f"{name}: rank {rank!r} is out of range, it holds ranks 1 to "
                          f"{len(entries)}")
    configuration = check_entry(entries[rank - 1], f"{name}, rank {rank}")
    configuration = replace(configuration, summary_note=_summary_note(best, name))
    deployment = best.get("deployment")
    if deployment is not None and not isinstance(deployment, dict):
        raise ConfigError(f"{name}: deployment must be the gate's decision (an object), got "
                          f"{type(deployment).__name__}")
    if isinstance(deployment, dict):
        judged = ({"decision": deployment.get("decision"), "reason": deployment.get("reason")}
                  if rank == 1 else {"decision": "not judged", "reason": None})
        configuration = replace(configuration, deployment=judged)
    return configuration


def _summary_note(best: dict[str, Any], name: str) -> str | None:
    """``trading_params`` and ``entry_model`` repeat the winner (``configurations[0]``) for
    readers of the file; ``train`` reads the entries, the one source of truth. A summary that
    says otherwise (an edit of one place and not the other) is said, naming both, so an edit
    of the summary alone is not silently ignored; a summary of the wrong type is a
    ``ConfigError``."""
    winner = best["configurations"][0]
    params = winner.get("params") if isinstance(winner, dict) else None
    entry_model = best.get("entry_model")
    if entry_model is not None and not isinstance(entry_model, dict):
        raise ConfigError(f"{name}: entry_model must be an object, got "
                          f"{type(entry_model).__name__}")
    if not isinstance(params, dict):
        return None  # check_entry names what is wrong with a rank's entry itself
    pairs = [("trading_params", best.get("trading_params"), "params.trading",
              params.get("trading"))]
    if isinstance(entry_model, dict):
        pairs += [("entry_model.family", entry_model.get("family"), "params.model",
                   params.get("model")),
                  ("entry_model.params", entry_model.get("params"), "params.entry_model",
                   params.get("entry_model")),
                  ("entry_model.seed", entry_model.get("seed"), "seed", winner.get("seed"))]
    for summary_key, summary, entry_key, value in pairs:
        if summary is not None and summary != value:
            return (f"{name}: {summary_key} is {_short(summary)} but configurations[0]."
                    f"{entry_key} is {_short(value)}: train reads the configurations, not the "
                    "winner's summary (keep the two equal)")
    return None


def _short(value: Any, limit: int = 120) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _positive_finite(value: Any) -> bool:
    """Whether ``value`` is a number (not a bool), finite, above 0 and a float holds it (an
    integer of 400 digits does not)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(float(value)) and value > 0
    except OverflowError:
        return False


def check_entry(entry: Any, name: str) -> Configuration:
    """Check one best-configs entry (see the module docstring) and read it."""
    if not isinstance(entry, dict):
        raise ConfigError(f"{name}: expected a configuration object, got {type(entry).__name__}")
    missing = [key for key in ("params", "budget", "seed", "objective_spec", "data")
               if key not in entry]
    if missing:
        raise ConfigError(f"{name} lacks {', '.join(missing)}: it comes from a best-configs "
                          f"file of another version; {_RESUME_HINT}")
    params = entry["params"]
    if not isinstance(params, dict):
        raise ConfigError(f"{name}: params must be an object")
    family = params.get("model")
    if family not in MODEL_FAMILIES:
        raise ConfigError(f"{name}: params.model is {family!r}, not one of "
                          f"{', '.join(MODEL_FAMILIES)}")
    if not isinstance(params.get("entry_model"), dict):
        raise ConfigError(f"{name}: params.entry_model must be an object")
    _check_params(params, str(family), name)
    try:
        trading = TradingParams.from_params(params)
    except (ConfigError, TypeError, ValueError) as exc:
        raise ConfigError(f"{name}: params: {exc}") from None
    budget, seed = entry["budget"], entry["seed"]
    if not _positive_finite(budget):
        raise ConfigError(f"{name}: budget must be a positive finite number, got "
                          f"{_short(budget, 40)}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**SEED_BITS:
        raise ConfigError(f"{name}: seed must be an integer in [0, 2**{SEED_BITS}) (a trial's "
                          f"seed, as the sweep derives it), got {seed!r}")
    spec = ObjectiveSpec.of(_mapping(entry["objective_spec"], f"{name}: objective_spec"))
    units = float(budget) * spec.objective.rounds_per_unit
    if not units < MAX_ROUNDS + 0.5:  # inf too: full_rounds would not end, or not be bounded
        raise ConfigError(f"{name}: budget {budget:g} x rounds_per_unit "
                          f"{spec.objective.rounds_per_unit:g} is more than {MAX_ROUNDS:,} "
                          "boosting rounds (epochs), the most one evaluation trains")
    rounds = full_rounds(float(budget), spec.objective.rounds_per_unit)
    recorded = (entry.get("metrics") or {}).get("rounds")
    if recorded is not None and recorded != rounds:
        raise ConfigError(f"{name}: metrics.rounds is {recorded} but budget {budget} x "
                          f"rounds_per_unit {spec.objective.rounds_per_unit:g} gives {rounds}")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if spec.objective.threads_per_trial > (cores or 1):
        raise ConfigError(f"{name}: objective_spec.objective.threads_per_trial: "
                          f"{spec.objective.threads_per_trial} threads, more than the "
                          f"{cores} CPU cores of this machine")
    data = _mapping(entry["data"], f"{name}: data")
    interval = data.get("bar_interval")
    try:
        parse_interval(str(interval))
    except ValueError:
        raise ConfigError(f"{name}: data.bar_interval is {interval!r}, not a bar interval; "
                          f"{_RESUME_HINT}") from None
    return Configuration(
        entry=json.loads(json.dumps(entry)), params=params, family=str(family),
        budget=float(budget), seed=int(seed), rounds=rounds, trading=trading, spec=spec,
        bar_interval=str(interval), source=name,
    )


def _check_params(params: dict[str, Any], family: str, name: str) -> None:
    """The entry's parameters by the sweep config's rules: every trading parameter present,
    of its type and in its range (:func:`~cryptosweep.core.config.trading_ranges_problem`),
    and the model's parameters known to its library, neither reserved nor forbidden, and
    accepted by the library itself (:mod:`cryptosweep.trading.models.check`)."""
    from cryptosweep.core.config import trading_values_problem
    from cryptosweep.core.settings import TRADING_PARAMETERS
    from cryptosweep.trading.models.check import known_parameters, probe
    from cryptosweep.trading.models.params import RESERVED_KEYS, forbidden_parameter

    given = params.get("trading")
    if not isinstance(given, dict):
        raise ConfigError(f"{name}: params.trading must be an object")
    for key in TRADING_PARAMETERS:
        if key not in given:
            raise ConfigError(f"{name}: params.trading lacks {key}")
        value = given[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{name}: params.trading.{key} must be a number, got {value!r}")
    problem = trading_values_problem({key: given[key] for key in TRADING_PARAMETERS})
    if problem is not None:
        raise ConfigError(f"{name}: params.trading{problem}")
    model = params["entry_model"]
    known = known_parameters(family)
    for key in sorted(model):
        if key in RESERVED_KEYS[family] or key not in known:
            why = "set by the run, not by a configuration" if key in known else (
                f"not a {family} parameter")
            raise ConfigError(f"{name}: params.entry_model.{key}: {why}")
    forbidden = forbidden_parameter(family, model)
    if forbidden is not None:
        raise ConfigError(f"{name}: params.entry_model.{forbidden[0]}: {forbidden[1]}")
    refusal = probe(family, dict(model))
    if refusal is not None:
        raise ConfigError(f"{name}: params.entry_model: {family} refuses them ({refusal})")


def _mapping(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{name} must be an object, got {type(value).__name__}")
    return value
