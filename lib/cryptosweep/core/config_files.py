"""Reading a sweep configuration: JSON or YAML files (UTF-8, no key given twice, nesting
bounded), ``--set`` overrides and ``--data``, validated into a
:class:`~cryptosweep.core.config.SweepConfig`; every mistake is one
:class:`~cryptosweep.core.errors.ConfigError` line that names the field."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from cryptosweep.core.config import SweepConfig, _one_line, trading_ranges_problem
from cryptosweep.core.data_settings import base_url_refused
from cryptosweep.core.errors import ConfigError, DataError
from cryptosweep.core.vocabulary import MULTI_FIDELITY_DEFAULT

#: How deep a config file (or a ``--set`` value) may nest mappings and lists; a real config
#: nests about five levels.
MAX_NESTING = 32
#: How many values (mappings' values and lists' items, counted where a YAML alias repeats them)
#: a config file may hold; a real config holds a few hundred.
MAX_VALUES = 100_000


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Read a JSON or YAML (safe loader) file into a dict; errors name the file.

    The file must be UTF-8 text (a UTF-8 byte-order mark is allowed), may not give one key twice
    in a mapping, and may not nest deeper than :data:`MAX_NESTING` levels.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    suffix = path.suffix.lower()
    if suffix not in (".json", ".yaml", ".yml"):
        raise ConfigError(f"config file {path}: unknown extension (use .json, .yaml or .yml)")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"config file {path}: cannot read it ({exc.strerror})") from None
    text = _utf8_text(data, path)
    try:
        raw = _parse_json(text) if suffix == ".json" else _parse_yaml(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"config file {path} is not valid JSON: line {exc.lineno}: {exc.msg}"
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {_yaml_problem(exc)}") from None
    except _DuplicateKeyError as exc:
        raise ConfigError(f"config file {path}: {exc}") from None
    except RecursionError:
        raise ConfigError(
            f"config file {path}: nested deeper than {MAX_NESTING} levels"
        ) from None
    except (ValueError, OverflowError) as exc:  # e.g. a YAML date 2024-13-45, a 5000-digit int
        raise ConfigError(f"config file {path}: a value cannot be read: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path}: expected a mapping at the top level")
    _check_nesting(raw, f"config file {path}")
    return raw


def _utf8_text(data: bytes, path: Path) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        encoding = " (it looks like UTF-16)" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else ""
        raise ConfigError(
            f"config file {path} is not UTF-8 text{encoding}: byte 0x{data[exc.start]:02x} at "
            f"offset {exc.start}; save it as UTF-8"
        ) from None


class _DuplicateKeyError(Exception):
    """A mapping of a config file gives one key twice (the last would silently win)."""


def _parse_json(text: str) -> Any:
    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for key, value in pairs:
            if key in seen:
                raise _DuplicateKeyError(f"key {key!r} appears twice in one mapping")
            seen[key] = value
        return seen

    return json.loads(text, object_pairs_hook=unique)


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping (YAML 1.2 forbids it;
    PyYAML would keep the last). A merge key (``<<: *anchor``) is allowed: the mapping's own
    keys override the merged ones, as YAML's merge key type says."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor`: its keys may be
                continue  # overridden by the mapping's own (flatten_mapping merges them)
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            try:
                repeated = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key: PyYAML itself reports it below
                continue
            if repeated:
                raise _DuplicateKeyError(
                    f"line {key_node.start_mark.line + 1}: key {key!r} appears twice in one "
                    "mapping"
                )
        return super().construct_mapping(node, deep=deep)


# YAML 1.2's core schema for plain scalars, in place of PyYAML's YAML 1.1 rules, under which
# `folds: 010` was 8 (octal), `groups: 0x10` 16, `1_000` 1000, `1:30` 90 and `enabled: yes` or
# `on` true: a run other than the one written. Here only decimal integers, decimal floats
# (`1.5`, `1e3`, `.inf`, `.nan`) and true/false are typed; a number written with a leading zero
# (`010`, ambiguous between the two YAMLs), `0x10` or `yes` stays a string, which a number or
# boolean setting refuses naming its key. Nulls and dates resolve as before.
_BOOL_TAG, _INT_TAG, _FLOAT_TAG = (f"tag:yaml.org,2002:{kind}" for kind in ("bool", "int", "float"))
_YAML12 = {
    _BOOL_TAG: re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    _INT_TAG: re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$"),
    _FLOAT_TAG: re.compile(r"^(?:[-+]?(?:\.[0-9]+|(?:0|[1-9][0-9]*)\.[0-9]*)(?:[eE][-+]?[0-9]+)?"
                           r"|[-+]?(?:0|[1-9][0-9]*)[eE][-+]?[0-9]+"
                           r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
}
_UniqueKeyLoader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag not in _YAML12]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
for _tag, _pattern in _YAML12.items():
    _UniqueKeyLoader.add_implicit_resolver(_tag, _pattern, list("-+0123456789.tTfF"))


def _parse_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader: no Python objects


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}: " if mark is not None else ""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"{where}{problem}"


def _check_nesting(value: Any, source: str) -> None:
    """Refuse values nested deeper than :data:`MAX_NESTING`, or that expand to more than
    :data:`MAX_VALUES` values (a YAML alias bomb: aliases share one object, so each mapping or
    list is visited once, its depth and expanded size remembered; no recursion)."""
    depth: dict[int, int] = {}  # id -> levels below and including the node
    size: dict[int, int] = {}  # id -> values in the node once every alias is expanded
    stack: list[tuple[Any, bool]] = [(value, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if key in depth:
            continue
        children = [child for child in (node.values() if isinstance(node, dict) else node)
                    if isinstance(child, dict | list)]
        if not children_done:
            stack.append((node, True))
            stack.extend((child, False) for child in children if id(child) not in depth)
            if len(stack) > 4 * MAX_VALUES:
                raise ConfigError(f"{source}: more than {MAX_VALUES:,} values")
            continue
        depth[key] = 1 + max((depth.get(id(child), MAX_NESTING + 1) for child in children),
                             default=0)
        size[key] = len(node) + sum(size.get(id(child), MAX_VALUES) for child in children)
        if depth[key] > MAX_NESTING:
            raise ConfigError(f"{source}: nested deeper than {MAX_NESTING} levels")
        if size[key] > MAX_VALUES:
            raise ConfigError(f"{source}: more than {MAX_VALUES:,} values once its aliases are "
                              "expanded (a YAML alias bomb?)")


def apply_override(raw: dict[str, Any], assignment: str) -> None:
    """Apply one ``dotted.key=value`` (value parsed as a YAML scalar) to ``raw`` in place."""
    key, sep, value_text = assignment.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(part.strip() for part in parts):
        raise ConfigError(f"--set {assignment!r}: expected dotted.key=value")
    try:
        value = _parse_yaml(value_text) if value_text.strip() else None
    except (yaml.YAMLError, _DuplicateKeyError, RecursionError, ValueError, OverflowError):
        raise ConfigError(f"--set {assignment!r}: value is not a valid YAML scalar") from None
    _check_nesting([value], f"--set {assignment!r}")
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
    run with, so that resuming a run made by an older version keeps its behaviour. A
    ``data.update.base_url`` an older version took and this one refuses (a path, an empty host
    label) is left out: it locked the run out of its resume, the nightly's plan and the
    explorer, and a resume never updates the candles (the section is not in the config hash)."""
    out = {key: dict(value) if isinstance(value, dict) else value for key, value in raw.items()}
    for (section, key), value in LATER_SETTINGS.items():
        if isinstance(out.get(section), dict) and key not in out[section]:
            out[section][key] = value
    data = out.get("data")
    update = data.get("update") if isinstance(data, dict) else None
    if (isinstance(update, dict) and isinstance(update.get("base_url"), str)
            and base_url_refused(update["base_url"])):
        out["data"] = {**data, "update": {key: value for key, value in update.items()
                                          if key != "base_url"}}
    return out


def validate_config(raw: dict[str, Any], source: str = "config") -> SweepConfig:
    """Validate a raw dict; the first error becomes one line naming the field."""
    try:
        config = SweepConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc, source)) from None
    problem = trading_ranges_problem(config.parameter_ranges.trading)
    if problem is not None:
        raise ConfigError(f"{source}: parameter_ranges.trading{problem}")
    return config


def default_fidelity(raw: dict[str, Any]) -> None:
    """A Hyperband or BOHB config (``sweep_type: hyperband``, the default) that names no
    ``objective.fidelity`` gets :data:`MULTI_FIDELITY_DEFAULT`, in place. Only for a config
    that starts a run: a stored one without the key was made with ``rounds``."""
    if raw.get("sweep_type", "hyperband") != "hyperband":
        return
    objective = raw.setdefault("objective", {})
    if isinstance(objective, dict):  # else validation names what is wrong
        objective.setdefault("fidelity", MULTI_FIDELITY_DEFAULT)


def _resolved(base: Path, path: str | Path, key: str,
              error: type[ConfigError | DataError]) -> str:
    """``path`` made absolute against ``base``; a path that cannot be (a symbolic link loop)
    is ``error`` naming ``key``, not a traceback; so is an empty one, which resolved to the
    folder itself (``--data "$DATA"`` with the variable unset read every file there)."""
    if not str(path).strip():
        raise error(f"{key}: an empty path (is the variable it came from unset?)")
    try:
        return str((base / path).resolve())
    except (RuntimeError, OSError) as exc:  # RuntimeError: a symbolic link loop (3.11)
        raise error(f"{key}: {path}: cannot be resolved "
                    f"({getattr(exc, 'strerror', None) or exc})") from None


def load_config(
    path: str | Path | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    data_path: str | Path | None = None,
    raw: dict[str, Any] | None = None,
    *,
    stored: bool = False,
) -> SweepConfig:
    """Load a config file (or a raw dict), apply ``--set`` overrides and ``--data``, validate.

    A new run's config that names no ``objective.fidelity`` gets the multi-fidelity default
    (:func:`default_fidelity`); ``stored``: ``raw`` is the canonical config of a run already
    made, where a missing fidelity means ``rounds``.

    A relative ``data.path`` (or ``deployment.champion_dir`` or ``deployment.ledger``, or an
    ``evidence.markets`` entry's ``data.path``) in a file is resolved against the
    file's folder; ``data_path`` (the CLI's ``--data``) against the current directory. The
    stored paths are absolute.
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
        key, _, value = assignment.partition("=")
        if key.strip() == "data.path" and not value.strip():  # null: the bundled sample
            raise DataError(f"--set {assignment!r}: an empty path (is the variable it came "
                            "from unset?); --set data.path=null reads the bundled sample")
    if not stored:
        default_fidelity(raw)
    data = raw.get("data")
    if isinstance(data, dict) and isinstance(data.get("path"), str):
        data["path"] = _resolved(base, data["path"], "data.path", DataError)
    evidence = raw.get("evidence")
    markets = evidence.get("markets") if isinstance(evidence, dict) else None
    for market in markets if isinstance(markets, list) else []:
        other = market.get("data") if isinstance(market, dict) else None
        if isinstance(other, dict) and isinstance(other.get("path"), str):
            other["path"] = _resolved(base, other["path"], "evidence.markets: data.path",
                                      DataError)
    deployment = raw.get("deployment")
    for key in ("champion_dir", "ledger"):  # stored absolute: evaluate reads them elsewhere
        if isinstance(deployment, dict) and isinstance(deployment.get(key), str):
            deployment[key] = _resolved(base, deployment[key], f"deployment.{key}",
                                        ConfigError)
    if data_path is not None:
        raw.setdefault("data", {})
        if not isinstance(raw["data"], dict):
            raise ConfigError(f"{source}: data: expected a mapping")
        raw["data"]["path"] = _resolved(Path.cwd(), data_path, "--data", DataError)
    config = validate_config(raw, source)
    if config.data.path is not None and not Path(config.data.path).exists():
        flag = "--data" if data_path is not None else "data.path"
        raise DataError(f"{flag}: data path not found: {config.data.path}")
    for market in config.evidence.markets:
        if market.data.path is not None and not Path(market.data.path).exists():
            raise DataError(f"evidence.markets ({market.name}): data path not found: "
                            f"{market.data.path}")
    return config
