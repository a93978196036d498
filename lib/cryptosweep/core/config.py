"""The sweep configuration, typed: a pydantic model whose sections stay typed wherever they
travel (:class:`SweepConfig`, :class:`ObjectiveSpec` for the workers), the hash of what decides
results, and the seed rule. Files and ``--set`` are read by :mod:`.config_files`.

Every user mistake (unknown key, wrong type, ``low > high``, unknown model family, a trading
parameter missing or with values a backtest cannot use, a size past its bound) becomes one
:class:`~cryptosweep.core.errors.ConfigError` whose message names the field; the CLI prints it
on one line and exits with code 2. Counts are strict integers (``true`` or ``3.5`` is not a
count) and every size has a bound (:data:`MAX_EVALUATIONS`, :data:`MAX_ROUNDS`,
:data:`MAX_SEED`), so a typo can never ask for more than a machine can hold.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import operator
import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field, ValidationError, model_validator

from cryptosweep.core.data_settings import DataSettings
from cryptosweep.core.errors import ConfigError
from cryptosweep.core.files import canonical_json
from cryptosweep.core.settings import (
    MAX_ROUNDS,
    MAX_SEED,
    TRADING_PARAMETERS,
    BayesianSettings,
    CategoricalDimension,
    DeploymentSettings,
    EvidenceSettings,
    ExecutionSettings,
    FloatDimension,
    GPUSettings,
    GridSettings,
    HyperbandSettings,
    ObjectiveSettings,
    ParameterRanges,
    RandomSettings,
    ReportingSettings,
    SweepType,
    WalkForwardSettings,
    grid_values,
)
from cryptosweep.core.strict import Strict
from cryptosweep.core.vocabulary import MODEL_FAMILIES

# ------------------------------------------------------------------------------------ dimensions


# -------------------------------------------------------------------------------------- sections


# ------------------------------------------------------------------------ data.update


class SweepConfig(Strict):
    """A whole sweep. Unknown keys anywhere are errors, so typos never pass silently."""

    name: str = Field(default="sweep", pattern=r"^[A-Za-z0-9_.-]+$", max_length=200,
                      description="the run folder is <name>_<UTC time>: one folder name")
    description: str = ""
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED)
    sweep_type: SweepType = "hyperband"
    full_budget: int | None = Field(
        default=None, ge=1, le=MAX_ROUNDS, description="the full budget R of one configuration, "
        "in units of objective.rounds_per_unit boosting rounds (epochs for torch), for every "
        "strategy; None: hyperband.max_iter"
    )
    hyperband: HyperbandSettings = HyperbandSettings()
    random: RandomSettings = RandomSettings()
    grid: GridSettings = GridSettings()
    bayesian: BayesianSettings = BayesianSettings()
    parameter_ranges: ParameterRanges
    gpu_settings: GPUSettings = GPUSettings()
    data: DataSettings = DataSettings()
    objective: ObjectiveSettings = ObjectiveSettings()
    execution: ExecutionSettings = ExecutionSettings()
    reporting: ReportingSettings = ReportingSettings()
    walk_forward: WalkForwardSettings | None = None
    deployment: DeploymentSettings = DeploymentSettings()
    evidence: EvidenceSettings = EvidenceSettings()

    @model_validator(mode="after")
    def _models_have_ranges(self) -> SweepConfig:
        for family in self.objective.models:
            if not self.parameter_ranges.family(family):
                raise ValueError(
                    f"objective.models lists '{family}' but parameter_ranges.{family} is missing"
                )
        return self

    @model_validator(mode="after")
    def _one_full_budget(self) -> SweepConfig:
        if (self.full_budget is not None and "max_iter" in self.hyperband.model_fields_set
                and self.hyperband.max_iter != self.full_budget):
            raise ValueError(
                f"full_budget ({self.full_budget}) and hyperband.max_iter "
                f"({self.hyperband.max_iter}) disagree; the config names hyperband.max_iter "
                "(the demo's does): change that one (--set hyperband.max_iter="
                f"{self.full_budget}), or name only full_budget in the config"
            )
        return self

    @model_validator(mode="after")
    def _bounded_rounds(self) -> SweepConfig:
        rounds = self.full_budget_units * self.objective.rounds_per_unit
        if rounds > MAX_ROUNDS:
            key = "full_budget" if self.full_budget is not None else "hyperband.max_iter"
            raise ValueError(
                f"{key} ({self.full_budget_units}) x objective.rounds_per_unit "
                f"({self.objective.rounds_per_unit:g}) = {rounds:g} rounds per evaluation, more "
                f"than {MAX_ROUNDS:,}"
            )
        return self

    @model_validator(mode="after")
    def _rounds_at_the_smallest_budget(self) -> SweepConfig:
        units = self.full_budget_units
        if self.objective.fidelity != "rounds":  # every budget trains the full budget's rounds
            smallest = float(units)
        elif self.sweep_type == "hyperband":  # the first rung of the widest bracket
            eta, shrink = self.hyperband.eta, 1
            while shrink * eta <= units:
                shrink *= eta
            smallest = units / shrink
        else:
            smallest = float(units)
        if smallest * self.objective.rounds_per_unit < 0.5:
            raise ValueError(
                f"objective.rounds_per_unit ({self.objective.rounds_per_unit:g}) x the smallest "
                f"budget ({smallest:g}) rounds to 0 boosting rounds: every evaluation would "
                "train one round whatever its budget"
            )
        return self

    @model_validator(mode="after")
    def _threshold_search_has_values(self) -> SweepConfig:
        k = self.objective.threshold_search
        if k is None:
            return self
        if self.objective.entry_rule != "threshold":
            raise ValueError(
                f"objective.threshold_search ({k}) needs objective.entry_rule: threshold "
                f"(with {self.objective.entry_rule} the threshold is not used)")
        dim = self.parameter_ranges.trading.get("threshold")
        values = [] if dim is None else grid_values(dim, k)
        if len(values) < 2 or not all(isinstance(v, int | float) and not isinstance(v, bool)
                                      for v in values):
            raise ValueError(
                f"objective.threshold_search ({k}): parameter_ranges.trading.threshold gives "
                f"{len(values)} value(s) to search, not a range of numbers; give it a range "
                "(low < high) or several numeric choices")
        return self

    def threshold_values(self) -> list[float] | None:
        """The entry thresholds each trial backtests with ``objective.threshold_search`` (k
        evenly spaced values of ``parameter_ranges.trading.threshold``, a categorical's
        choices), ascending; None without it."""
        k = self.objective.threshold_search
        dim = self.parameter_ranges.trading.get("threshold")
        if k is None or dim is None:
            return None
        return sorted(float(value) for value in grid_values(dim, k))

    @property
    def full_budget_units(self) -> int:
        """The full budget R of one configuration: ``full_budget``, else ``hyperband.max_iter``
        (the key older configs use)."""
        return self.full_budget if self.full_budget is not None else self.hyperband.max_iter

    def canonical(self) -> dict[str, Any]:
        """Plain JSON-able dict, the form stored in the journal. With ``full_budget`` set,
        ``hyperband.max_iter`` is written as the same number (the budget in force), so that
        the dict validates again (else its default would contradict ``full_budget``). The
        objective's :data:`LEFT_OUT_AT_DEFAULT` options at their defaults are left out."""
        out = self.model_dump(mode="json")
        drop_default_options(out["objective"])
        if self.full_budget is not None:
            out["hyperband"]["max_iter"] = self.full_budget
        return out

    def results_hash(self) -> str:
        """The hash of what decides the results (:func:`config_hash`)."""
        return config_hash(self.canonical())

    def objective_spec(self) -> ObjectiveSpec:
        """What a worker needs to evaluate a trial: with a fidelity other than ``rounds``, the
        full budget too (what a budget is measured against)."""
        return ObjectiveSpec(
            data=self.data, objective=self.objective,
            deterministic=self.gpu_settings.deterministic,
            gpu_memory_fraction=self.gpu_settings.memory_fraction,
            trials_per_gpu=self.gpu_settings.trials_per_gpu,
            full_budget=None if self.objective.fidelity == "rounds" else self.full_budget_units,
            thresholds=self.threshold_values(),
        )


class ObjectiveSpec(Strict):
    """The data and objective settings a worker evaluates trials with: the one typed source of
    truth, built from the validated config by :meth:`SweepConfig.objective_spec`. It travels to
    workers as plain JSON (:meth:`to_payload`) and is validated again there by the same models
    (:meth:`of`), so a worker never falls back on defaults of its own."""

    data: DataSettings = DataSettings()
    objective: ObjectiveSettings = ObjectiveSettings()
    deterministic: bool = True
    gpu_memory_fraction: float = Field(default=0.9, gt=0, le=1)
    trials_per_gpu: int = Field(default=1, ge=1)
    full_budget: int | None = Field(
        default=None, ge=1, le=MAX_ROUNDS, description="the sweep's full budget R, which an "
        "objective.fidelity other than rounds measures a budget against (None with rounds: a "
        "budget is its own number of rounds)")
    thresholds: list[float] | None = Field(
        default=None, min_length=2, description="the entry thresholds a trial whose "
        "configuration has none searches (objective.threshold_search: "
        "SweepConfig.threshold_values); None: every configuration has its threshold")

    @classmethod
    def of(cls, spec: ObjectiveSpec | dict[str, Any]) -> ObjectiveSpec:
        """``spec`` itself, or validated from its plain-JSON form (a bad one is a
        :class:`~cryptosweep.core.errors.ConfigError` naming the field)."""
        if isinstance(spec, ObjectiveSpec):
            return spec
        try:
            return cls.model_validate(spec)
        except ValidationError as exc:
            raise ConfigError(_one_line(exc, "objective spec")) from None

    def to_payload(self) -> dict[str, Any]:
        """Plain JSON types, for a task payload or a file (the objective's
        :data:`LEFT_OUT_AT_DEFAULT` options at their defaults left out, and ``full_budget``
        and ``thresholds`` when they are None)."""
        out = self.model_dump(mode="json")
        drop_default_options(out["objective"])
        for key in ("full_budget", "thresholds"):
            if out[key] is None:
                del out[key]
        return out


#: The objective's options closer to trading, with the defaults that keep the behaviour before
#: them: left out of canonical configs and payloads when at their default.
TRADING_OPTIONS: dict[str, Any] = {"entry_rule": "threshold", "bet_sizing": "none",
                                   "sample_weights": "none", "vol_target": None,
                                   "funding_bps_per_8h": 0.0}

#: Every objective option left out of canonical configs and payloads at its default (the
#: behaviour before it existed), so that results made without it keep their bytes and hash:
#: the :data:`TRADING_OPTIONS`, ``fidelity`` and ``threshold_search``.
LEFT_OUT_AT_DEFAULT: dict[str, Any] = {**TRADING_OPTIONS, "fidelity": "rounds",
                                       "threshold_search": None}


def drop_default_options(objective: dict[str, Any]) -> dict[str, Any]:
    """``objective`` (a dumped :class:`ObjectiveSettings`) without the
    :data:`LEFT_OUT_AT_DEFAULT` options at their defaults, in place."""
    for key, default in LEFT_OUT_AT_DEFAULT.items():
        if key in objective and objective[key] == default:
            del objective[key]
    return objective


#: The master seed when neither ``--seed`` (or the notebook's ``seed``) nor the config gives one.
DEFAULT_SEED = 123456


def resolve_seed(seed: int | None, config: SweepConfig) -> int:
    """The one rule for the master seed, the same for the CLI, the notebook, the nightly job
    and the API: an explicit ``seed`` wins, else the config's ``seed``, else
    :data:`DEFAULT_SEED`."""
    if seed is not None:
        try:
            value = operator.index(seed)  # ints and NumPy integers; not floats, not text
        except TypeError:
            value = None
        if isinstance(seed, bool) or value is None or not 0 <= value <= MAX_SEED:
            raise ConfigError(f"seed: expected a whole number in [0, {MAX_SEED}], got {seed!r}")
        return int(value)
    return int(config.seed) if config.seed is not None else DEFAULT_SEED


#: Settings that decide how a sweep executes, not what it computes: left out of
#: :func:`config_hash`, so a resume may change them (workers, cluster, GPUs).
EXECUTION_ONLY: tuple[tuple[str, ...], ...] = (
    ("name",), ("description",), ("seed",), ("execution",), ("gpu_settings", "memory_fraction"),
    ("gpu_settings", "trials_per_gpu"), ("reporting", "min_trades"),
    ("reporting", "min_importance_trials"), ("reporting", "keep_checkpoints"), ("deployment",),
    ("data", "update"), ("evidence",),
)


def results_identity(canonical: dict[str, Any]) -> dict[str, Any]:
    """A canonical config without its :data:`EXECUTION_ONLY` settings. The master seed is
    compared on its own (it comes from ``--seed`` or the config's ``seed``)."""
    identity = json.loads(json.dumps(canonical))
    for path in EXECUTION_ONLY:
        node = identity
        for key in path[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(path[-1], None)
    hyperband = identity.get("hyperband")
    if (identity.get("full_budget") is not None and isinstance(hyperband, dict)
            and identity["full_budget"] == hyperband.get("max_iter")):
        # One budget in two spellings (the canonical form writes full_budget's value into
        # max_iter): a run made with hyperband.max_iter resumes with full_budget, and back.
        identity["full_budget"] = None
    return identity


def results_differences(given: dict[str, Any], stored: dict[str, Any]) -> list[str]:
    """The dotted names of the settings in which two canonical configs differ in what decides
    their results (:func:`results_identity`), in key order: what a refused resume names."""
    found: list[str] = []

    def walk(a: Any, b: Any, path: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b)):
                walk(a.get(key), b.get(key), f"{path}.{key}" if path else key)
        elif canonical_json(a) != canonical_json(b):
            found.append(path or "<top level>")

    walk(results_identity(given), results_identity(stored), "")
    return found


def named_differences(given: dict[str, Any], stored: dict[str, Any], most: int = 4) -> str:
    """:func:`results_differences` for a message: ``"objective.fees_bps"``, or the first
    ``most`` of them and how many more."""
    names = results_differences(given, stored)
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def config_hash(canonical: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of what decides a sweep's results: equal for configs that
    differ only in how they execute (workers, cluster, GPU packing, name), so those resume each
    other and carry one hash."""
    return hashlib.sha256(canonical_json(results_identity(canonical)).encode()).hexdigest()


# ------------------------------------------------------------------------------------- loading


def trading_ranges_problem(trading: dict[str, Any]) -> str | None:
    """What is wrong with the trading ranges (``.key: message``, or ``: message`` for the block),
    or ``None``: every key of :data:`TRADING_PARAMETERS` present, no other, and every value a
    range can produce (its bounds, or each choice) allowed for that parameter."""
    missing = [name for name in TRADING_PARAMETERS if name not in trading]
    if missing:
        return (f": missing {', '.join(missing)} (every configuration needs "
                f"{', '.join(TRADING_PARAMETERS)})")
    for name in trading:
        if name not in TRADING_PARAMETERS:
            return f".{name}: unknown trading parameter (known: {', '.join(TRADING_PARAMETERS)})"
    for name, (low, high, inclusive, integer) in TRADING_PARAMETERS.items():
        dim = trading[name]
        if isinstance(dim, CategoricalDimension):
            values = list(dim.choices)
        elif integer and isinstance(dim, FloatDimension):
            return f".{name}: whole bars: use an int dimension or integer choices"
        else:
            values = [dim.low, dim.high]
        for value in values:
            if isinstance(value, bool) or not isinstance(value, int | float) or (
                    integer and not isinstance(value, int)):
                kind = "whole numbers" if integer else "numbers"
                return f".{name}: choices must be {kind}, got {value!r}"
            inside = low <= value <= high if inclusive else low < value < high
            if not inside:
                lo, hi = ("[", "]") if inclusive else ("(", ")")
                span = f">= {low:g}" if math.isinf(high) and inclusive else (
                    f"> {low:g}" if math.isinf(high) else f"in {lo}{low:g}, {high:g}{hi}")
                return f".{name}: values must be {span}, got {value!r}"
    return None


def trading_values_problem(values: Mapping[str, Any]) -> str | None:
    """:func:`trading_ranges_problem` for one configuration's trading values (each a range of
    one choice): a best-configs entry's, a what-if's. A value that is not even a choice (None,
    a list) is named too, not a pydantic error of four lines."""
    dimensions = {}
    for name, value in values.items():
        try:
            dimensions[name] = CategoricalDimension(type="categorical", choices=[value])
        except ValidationError:
            finite = "" if not isinstance(value, float) or math.isfinite(value) else "finite "
            return f".{name}: values must be {finite}numbers, got {value!r}"
    return trading_ranges_problem(dimensions)


#: What YAML 1.1 (PyYAML's default) would have read as a number or a boolean and YAML 1.2, as
#: configs are read (:mod:`.config_files`), reads as a string: octal, hexadecimal, binary,
#: sexagesimal, digits grouped with `_`, yes/no/on/off.
_YAML11_SCALAR = re.compile(
    r"^[-+]?(?:0[0-9_]+(?:\.[0-9_]*)?|0[xob][0-9a-f_]+|[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?"
    r"|[0-9]+(?:_[0-9]+)+(?:\.[0-9_]*)?)$|^(?:yes|no|on|off|y|n)$", re.IGNORECASE)


def _one_line(exc: ValidationError, source: str) -> str:
    errors = exc.errors(include_url=False)
    first = errors[0]
    location = ".".join(str(part) for part in first["loc"] if not _is_union_tag(part))
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = _unknown_key_message(first["loc"])
    elif first["type"] == "union_tag_invalid":
        message = "type must be one of 'float', 'int', 'categorical'"
    elif first["type"].endswith("_type") and isinstance(first.get("input"), bool | int | float
                                                         | str) and len(repr(first["input"])) < 60:
        message += f", got {first['input']!r}"
        if isinstance(first["input"], str) and _YAML11_SCALAR.match(first["input"]):
            message += (" (configs read YAML 1.2: numbers in decimal without a leading zero, "
                        "booleans as true or false)")
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{source}: {location or '<top level>'}: {message}{more}"


def _known_keys(path: tuple[Any, ...]) -> list[str]:
    """The keys the config section at ``path`` accepts (empty when it is not a section)."""
    import typing

    model: Any = SweepConfig
    for part in path:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        if field is None:
            return []
        candidates = [field.annotation, *typing.get_args(field.annotation)]
        model = next((c for c in candidates if isinstance(c, type)
                      and issubclass(c, BaseModel)), None)
        if model is None:
            return []
    return list(model.model_fields)


def _is_union_tag(part: object) -> bool:
    return isinstance(part, str) and part in ("float", "int", "categorical")


def _unknown_key_message(loc: tuple[Any, ...]) -> str:
    if len(loc) == 2 and loc[0] == "parameter_ranges":
        known = ", ".join([*MODEL_FAMILIES, "trading"])
        return f"unknown model family '{loc[1]}' (known: {known})"
    close = difflib.get_close_matches(str(loc[-1]), _known_keys(loc[:-1]), n=1, cutoff=0.6)
    return f"unknown key (did you mean '{close[0]}'?)" if close else "unknown key"
