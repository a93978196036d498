"""The sweep configuration: a pydantic model, loaded from JSON or YAML, with CLI overrides.

Every user mistake (unknown key, wrong type, ``low > high``, unknown model family, missing file,
bad ``--set``) becomes one :class:`~cryptosweep.errors.ConfigError` whose message names the
field or path; the CLI prints it on one line and exits with code 2.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from cryptosweep.errors import ConfigError, DataError

MODEL_FAMILIES = ("catboost", "lightgbm", "xgboost", "torch")
SWEEP_TYPES = ("hyperband", "grid", "random", "bayesian")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ------------------------------------------------------------------------------------ dimensions


class FloatDimension(_Strict):
    """A real-valued dimension on ``[low, high]``, uniform or log-uniform, optionally stepped."""

    type: Literal["float"]
    low: float
    high: float
    log: bool = False
    step: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _check_bounds(self) -> FloatDimension:
        _check_range(self.low, self.high, self.log)
        if self.log and self.step is not None:
            raise ValueError("step and log cannot be combined")
        return self


class IntDimension(_Strict):
    """An integer dimension on ``[low, high]`` (both included), optionally log-scaled or stepped."""

    type: Literal["int"]
    low: int
    high: int
    log: bool = False
    step: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _check_bounds(self) -> IntDimension:
        _check_range(self.low, self.high, self.log)
        if self.log and self.step != 1:
            raise ValueError("step and log cannot be combined")
        return self


class CategoricalDimension(_Strict):
    """One of a list of choices (strings, numbers or booleans)."""

    type: Literal["categorical"]
    choices: list[str | bool | int | float] = Field(min_length=1)

    @field_validator("choices")
    @classmethod
    def _unique(cls, choices: list[Any]) -> list[Any]:
        keys = [json.dumps(c) for c in choices]
        if len(set(keys)) != len(keys):
            raise ValueError("choices must be unique")
        return choices


Dimension = Annotated[
    FloatDimension | IntDimension | CategoricalDimension, Field(discriminator="type")
]


def _check_range(low: float, high: float, log: bool) -> None:
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError("low and high must be finite")
    if low > high:
        raise ValueError(f"low ({low}) > high ({high})")
    if log and low <= 0:
        raise ValueError(f"log scale needs low > 0, got {low}")


class ParameterRanges(_Strict):
    """Search ranges: one block per entry-model family, plus the trading parameters."""

    catboost: dict[str, Dimension] | None = None
    lightgbm: dict[str, Dimension] | None = None
    xgboost: dict[str, Dimension] | None = None
    torch: dict[str, Dimension] | None = None
    trading: dict[str, Dimension]

    def family(self, name: str) -> dict[str, Any]:
        block = getattr(self, name)
        return dict(block) if block else {}


# -------------------------------------------------------------------------------------- sections


class HyperbandSettings(_Strict):
    iterations: int = Field(default=1, ge=1)
    max_iter: int = Field(default=27, ge=1, description="full resource R of one configuration")
    eta: int = Field(default=3, ge=2)
    sampler: Literal["random", "tpe"] = Field(
        default="random", description="tpe: BOHB (Falkner et al., 2018)"
    )
    continue_training: bool = Field(
        default=True, description="promoted configurations continue from their checkpoints "
        "where the family allows it (docs/continuation.md); the workers must share the run "
        "folder's file system"
    )
    overlap_brackets: bool = Field(
        default=True, description="while a bracket waits at a rung barrier, workers run the "
        "next bracket; results are the same either way, false runs brackets one after another"
    )


class RandomSettings(_Strict):
    n_trials: int = Field(default=20, ge=1)


class GridSettings(_Strict):
    points: int = Field(default=3, ge=1, description="values per numeric dimension")
    max_trials: int = Field(default=100_000, ge=1)


class BayesianSettings(_Strict):
    n_trials: int = Field(default=30, ge=1)
    sampler: Literal["tpe", "gp", "cmaes"] = "tpe"
    batch_size: int = Field(
        default=4, ge=1, description="trials asked per synchronous batch (fixed, not the "
        "number of workers, so that results do not depend on the workers)"
    )


class GPUSettings(_Strict):
    memory_fraction: float = Field(default=0.9, gt=0, le=1)
    deterministic: bool = True
    trials_per_gpu: int = Field(default=1, ge=1, description="trials run at once on one GPU")


class ColumnMapping(_Strict):
    """Column names of a generic CSV or Parquet file (``data.format: generic``)."""

    timestamp: str = "timestamp"
    open: str = "open"
    high: str = "high"
    low: str = "low"
    close: str = "close"
    volume: str = "volume"


class DataSettings(_Strict):
    path: str | None = Field(default=None, description="OHLCV file or folder; None: sample data")
    holdout_fraction: float = Field(default=0.2, ge=0, lt=0.9)
    format: Literal["auto", "binance", "cryptodatadownload", "generic"] = "auto"
    columns: ColumnMapping = ColumnMapping()
    timestamp_unit: Literal["s", "ms", "us", "ns"] | None = Field(
        default=None, description="numeric timestamps of a generic file; None: parse dates"
    )


class ObjectiveSettings(_Strict):
    metric: Literal["sharpe", "sortino", "calmar", "total_return"] = "sharpe"
    models: list[Literal["catboost", "lightgbm", "xgboost", "torch"]] = Field(
        default_factory=lambda: ["lightgbm"], min_length=1
    )
    folds: int = Field(default=4, ge=1)
    labels: Literal["triple_barrier", "fixed_horizon"] = "triple_barrier"
    fees_bps: float = Field(default=10.0, ge=0, description="per side")
    slippage_bps: float = Field(default=0.0, ge=0, description="per side")
    allow_short: bool = False
    rounds_per_unit: float = Field(default=10.0, gt=0)
    embargo_bars: int = Field(default=0, ge=0)
    min_train_bars: int = Field(default=500, ge=10)
    threads_per_trial: int = Field(default=1, ge=1)

    @field_validator("models")
    @classmethod
    def _unique_models(cls, models: list[str]) -> list[str]:
        if len(set(models)) != len(models):
            raise ValueError("model families must be unique")
        return models


class ExecutionSettings(_Strict):
    workers: int | None = Field(
        default=None, ge=0, description="None: one per CPU core; 0: in-process; N: N workers"
    )
    scheduler_address: str | None = None
    trial_timeout: float | None = Field(default=None, gt=0, description="seconds per trial")
    max_retries: int = Field(default=2, ge=0, description="re-runs of a trial whose worker died")
    max_failure_fraction: float = Field(default=0.5, gt=0, le=1)


class ReportingSettings(_Strict):
    top_k: int = Field(default=5, ge=1)


class SweepConfig(_Strict):
    """A whole sweep. Unknown keys anywhere are errors, so typos never pass silently."""

    name: str = Field(default="sweep", pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    seed: int | None = Field(default=None, ge=0)
    sweep_type: Literal["hyperband", "grid", "random", "bayesian"] = "hyperband"
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

    @model_validator(mode="after")
    def _models_have_ranges(self) -> SweepConfig:
        for family in self.objective.models:
            if not self.parameter_ranges.family(family):
                raise ValueError(
                    f"objective.models lists '{family}' but parameter_ranges.{family} is missing"
                )
        return self

    def canonical(self) -> dict[str, Any]:
        """Plain JSON-able dict, the form stored in the journal and hashed."""
        return self.model_dump(mode="json")

    def objective_spec(self) -> dict[str, Any]:
        """What a worker needs to evaluate a trial (plain JSON types)."""
        dumped = self.canonical()
        return {"data": dumped["data"], "objective": dumped["objective"]}


# ------------------------------------------------------------------------------------- loading


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Read a JSON or YAML (safe loader) file into a dict; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".json":
            raw = json.loads(text)
        elif path.suffix.lower() in (".yaml", ".yml"):
            raw = yaml.safe_load(text)
        else:
            raise ConfigError(f"config file {path}: unknown extension (use .json, .yaml or .yml)")
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"config file {path} is not valid JSON: line {exc.lineno}: {exc.msg}"
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"config file {path} is not valid YAML: {where}{problem}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path}: expected a mapping at the top level")
    return raw


def apply_override(raw: dict[str, Any], assignment: str) -> None:
    """Apply one ``dotted.key=value`` (value parsed as a YAML scalar) to ``raw`` in place."""
    key, sep, value_text = assignment.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(part.strip() for part in parts):
        raise ConfigError(f"--set {assignment!r}: expected dotted.key=value")
    try:
        value = yaml.safe_load(value_text) if value_text.strip() else None
    except yaml.YAMLError:
        raise ConfigError(f"--set {assignment!r}: value is not a valid YAML scalar") from None
    node = raw
    for depth, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(
                f"--set {assignment!r}: {'.'.join(parts[: depth + 1])} is not a mapping"
            )
        node = child
    node[parts[-1]] = value


#: Settings added after runs could first be journaled, with the value that reproduces a run made
#: before them. A journaled config without such a key was made with that behaviour.
LATER_SETTINGS: dict[tuple[str, str], Any] = {("hyperband", "overlap_brackets"): False}


def config_as_made(raw: dict[str, Any]) -> dict[str, Any]:
    """A journaled config with every :data:`LATER_SETTINGS` key it lacks set to the value it was
    run with, so that resuming a run made by an older version keeps its behaviour."""
    out = {key: dict(value) if isinstance(value, dict) else value for key, value in raw.items()}
    for (section, key), value in LATER_SETTINGS.items():
        if isinstance(out.get(section), dict) and key not in out[section]:
            out[section][key] = value
    return out


def validate_config(raw: dict[str, Any], source: str = "config") -> SweepConfig:
    """Validate a raw dict; the first error becomes one line naming the field."""
    try:
        return SweepConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc, source)) from None


def _one_line(exc: ValidationError, source: str) -> str:
    errors = exc.errors(include_url=False)
    first = errors[0]
    location = ".".join(str(part) for part in first["loc"] if not _is_union_tag(part))
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = _unknown_key_message(first["loc"])
    elif first["type"] == "union_tag_invalid":
        message = "type must be one of 'float', 'int', 'categorical'"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{source}: {location or '<top level>'}: {message}{more}"


def _is_union_tag(part: object) -> bool:
    return isinstance(part, str) and part in ("float", "int", "categorical")


def _unknown_key_message(loc: tuple[Any, ...]) -> str:
    if len(loc) == 2 and loc[0] == "parameter_ranges":
        known = ", ".join([*MODEL_FAMILIES, "trading"])
        return f"unknown model family '{loc[1]}' (known: {known})"
    return "unknown key"


def load_config(
    path: str | Path | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    data_path: str | Path | None = None,
    raw: dict[str, Any] | None = None,
) -> SweepConfig:
    """Load a config file (or a raw dict), apply ``--set`` overrides and ``--data``, validate.

    A relative ``data.path`` in a file is resolved against the file's folder; ``data_path``
    (the CLI's ``--data``) against the current directory. The stored path is absolute.
    """
    if raw is None:
        if path is None:
            raise ConfigError("no config given: pass --config PATH (or --resume RUN_DIR)")
        raw = read_config_file(path)
        base = Path(path).resolve().parent
        source = str(path)
    else:
        raw = json.loads(json.dumps(raw))
        base = Path.cwd()
        source = "config"
    for assignment in overrides:
        apply_override(raw, assignment)
    data = raw.get("data")
    if isinstance(data, dict) and isinstance(data.get("path"), str):
        data["path"] = str((base / data["path"]).resolve())
    if data_path is not None:
        raw.setdefault("data", {})
        if not isinstance(raw["data"], dict):
            raise ConfigError(f"{source}: data: expected a mapping")
        raw["data"]["path"] = str(Path(data_path).resolve())
    config = validate_config(raw, source)
    if config.data.path is not None and not Path(config.data.path).exists():
        flag = "--data" if data_path is not None else "data.path"
        raise DataError(f"{flag}: data path not found: {config.data.path}")
    return config
