"""Checking a family's search ranges before a sweep starts: every parameter name one the
library knows, and every value a range can produce one the adapter and its library accept.

A misspelled name (``num_leavs``) is otherwise passed to LightGBM, which ignores it with a
warning, and the sweep runs without the parameter it was meant to search; a value the library
refuses (``boosting: bogus``, ``num_leaves: 1``) otherwise fails every trial that draws it.

Names come from each library's own list: LightGBM's parameter and alias table
(``_ConfigAliases``), the keys XGBoost writes in a booster's configuration (for its ``gbtree``,
``dart`` and ``gblinear`` boosters), the keyword arguments of ``catboost.CatBoostClassifier``,
and :data:`~cryptosweep.trading.models.params.TORCH_DEFAULTS`. Values are probed: the adapter is
built with one value at a time (each bound of a numeric range, each choice of a categorical
one; every other parameter at its default) and fitted for two rounds on a tiny synthetic data
set with as many columns as the features, so that the library itself says what it refuses.
Combinations are not probed (a random forest without any bagging is refused by LightGBM only
when both settings meet in one trial).
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import inspect
import json
import os
import re
import sys
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from cryptosweep.core.errors import ConfigError
from cryptosweep.core.reproducibility import ReproducibilityManager
from cryptosweep.core.settings import CategoricalDimension
from cryptosweep.trading.features import FEATURE_COLUMNS
from cryptosweep.trading.models.params import (
    RESERVED_KEYS,
    TORCH_DEFAULTS,
    forbidden_parameter,
)

#: Rows and features of the synthetic data set a probe fits on: as many features as a trial
#: trains on, so that a parameter sized by the features (LightGBM's and XGBoost's
#: ``monotone_constraints``, ``interaction_constraints``) is judged as a trial would judge it; a
#: length that fitted a smaller probe passed ``validate`` and failed every trial (exit 4).
_PROBE_SHAPE = (64, len(FEATURE_COLUMNS))
#: Boosting rounds (epochs) of a probe.
_PROBE_ROUNDS = 2
#: Names the adapters accept besides the library's own (CatBoost: ``eta`` for learning_rate).
_ADAPTER_NAMES: dict[str, frozenset[str]] = {"catboost": frozenset({"eta"})}


def range_problem(family: str, dimensions: dict[str, Any]) -> str | None:
    """What is wrong with ``parameter_ranges.<family>`` as ``.name: message``, or ``None``.

    ``dimensions`` maps parameter names to the config's dimension models. Names are checked
    first (reserved ones: see :data:`~cryptosweep.trading.models.params.RESERVED_KEYS`), then
    the values, dimension by dimension in name order.
    """
    known = known_parameters(family)
    for name in sorted(dimensions):
        if name in RESERVED_KEYS[family]:
            return (f".{name}: set by the run, not by a trial (seeds, threads and devices come "
                    "from its reproducibility settings, rounds/epochs from the budget)")
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            return f".{name}: not a {family} parameter{hint}"
    seen: dict[str, str] = {}
    for name in sorted(dimensions):
        canonical = canonical_parameter(family, name)
        if canonical in seen:
            effect = ("refuses the two together: every trial would fail"
                      if family == "catboost" else
                      "would use one of the two values and ignore the other")
            return (f".{name}: the same {family} parameter as .{seen[canonical]} "
                    f"({canonical}): {family} {effect}; search it under one name")
        seen[canonical] = name
    forbidden = forbidden_parameter(family, dimensions)
    if forbidden is not None:
        return f".{forbidden[0]}: {forbidden[1]}"
    for name in sorted(dimensions):
        for value in _probe_values(dimensions[name]):
            refusal = probe(family, {name: value})
            if refusal is not None:
                return f".{name}: {family} refuses {value!r} ({refusal})"
    return None


#: XGBoost's parameter aliases (its C++ ``DMLC_DECLARE_ALIAS``: no table in Python), alias to
#: name. With both in one trial the alias's value won and the other was ignored.
_XGBOOST_ALIASES = {"learning_rate": "eta", "min_split_loss": "gamma", "reg_lambda": "lambda",
                    "reg_alpha": "alpha"}


@functools.cache
def canonical_parameter(family: str, name: str) -> str:
    """The parameter ``name`` sets in the family's library: its main name when ``name`` is an
    alias (LightGBM's ``eta`` and ``shrinkage_rate`` are ``learning_rate``), else ``name``.
    Two search dimensions with one main name search one parameter: LightGBM and XGBoost use
    one of the values and ignore the other (a dimension that changes nothing), CatBoost
    refuses the pair in every trial."""
    if family == "lightgbm":
        from lightgbm.basic import _ConfigAliases

        for main, aliases in _ConfigAliases._get_all_param_aliases().items():
            if name == main or name in aliases:
                return str(main)
    elif family == "xgboost":
        return _XGBOOST_ALIASES.get(name, name)
    elif family == "catboost":
        from catboost.core import _process_synonyms_groups

        params: dict[str, Any] = {name: 0}  # a value: the table moves only set ones
        with contextlib.suppress(Exception):  # the library's own table of synonyms
            _process_synonyms_groups(params)
        return str(next(iter(params), name))
    return name


def _probe_values(dimension: Any) -> list[Any]:
    if isinstance(dimension, CategoricalDimension):
        return list(dimension.choices)
    return list(dict.fromkeys([dimension.low, dimension.high]))


@functools.cache
def known_parameters(family: str) -> frozenset[str]:
    """Every parameter name (aliases included) the family's library knows."""
    names = {"lightgbm": _lightgbm_names, "xgboost": _xgboost_names,
             "catboost": _catboost_names, "torch": lambda: frozenset(TORCH_DEFAULTS)}
    if family not in names:
        raise ConfigError(f"unknown model family '{family}'")
    return names[family]() | _ADAPTER_NAMES.get(family, frozenset())


def _lightgbm_names() -> frozenset[str]:
    from lightgbm.basic import _ConfigAliases

    table = _ConfigAliases._get_all_param_aliases()
    return frozenset(table) | frozenset(alias for aliases in table.values() for alias in aliases)


def _xgboost_names() -> frozenset[str]:
    import xgboost

    x, y = _probe_data()
    names: set[str] = {"verbosity", "eval_metric"}  # global and evaluation settings
    with _quiet():
        for booster in ("gbtree", "dart", "gblinear"):
            model = xgboost.train({"booster": booster, "objective": "binary:logistic"},
                                  xgboost.DMatrix(x, label=y), num_boost_round=1)
            names |= _leaf_keys(json.loads(model.save_config()))
    return frozenset(names)


def _leaf_keys(node: Any) -> set[str]:
    """Keys of a nested JSON configuration whose values are settings, not sections."""
    keys: set[str] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if isinstance(value, dict | list):
                    stack.append(value)
                else:
                    keys.add(key)
        elif isinstance(item, list):
            stack.extend(item)
    return keys


def _catboost_names() -> frozenset[str]:
    from catboost import CatBoostClassifier

    return frozenset(inspect.signature(CatBoostClassifier.__init__).parameters) - {"self"}


def probe(family: str, params: dict[str, Any]) -> str | None:
    """Why the adapter of ``family`` refuses ``params`` (building it, or fitting it for
    :data:`_PROBE_ROUNDS` rounds on a tiny synthetic data set), or ``None``."""
    from cryptosweep.trading.models import make_entry_model

    x, y = _probe_data()
    repro = ReproducibilityManager(seed=0, deterministic=True, device="cpu", threads=1)
    try:
        with _quiet():
            model = make_entry_model(family, params, repro)
            model.fit(x, y, _PROBE_ROUNDS)
            model.predict_proba(x[:2])
    except ConfigError as exc:
        return str(exc)
    except Exception as exc:  # the library's refusal, whatever its type
        return _one_line(exc)
    return None


@functools.cache
def _probe_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=_PROBE_SHAPE)
    y = (x[:, 0] + rng.normal(scale=0.5, size=_PROBE_SHAPE[0]) > 0).astype("float64")
    x.flags.writeable = y.flags.writeable = False
    return x, y


#: File descriptors 1 and 2 are the process's: one thread at a time points them elsewhere
#: (two threads saving and restoring them at once could leave stderr at /dev/null for good).
_QUIET_LOCK = threading.RLock()


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """No library warnings or chatter on the console while probing: Python warnings are
    ignored, and file descriptors 1 and 2 point at ``/dev/null`` (the libraries' C++ code
    writes to them directly, e.g. LightGBM's ``[Fatal]`` line before it raises). Probes in
    several threads (a walk-forward's windows) take turns (:data:`_QUIET_LOCK`)."""
    with _QUIET_LOCK:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        saved: list[tuple[int, int]] = []
        try:
            with open(os.devnull, "wb") as null:
                for fd in (1, 2):
                    with contextlib.suppress(OSError):
                        saved.append((fd, os.dup(fd)))
                        os.dup2(null.fileno(), fd)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                yield
        finally:
            for fd, copy in saved:
                os.dup2(copy, fd)
                os.close(copy)


#: Source locations, clocks and stack traces in the libraries' messages.
_NOISE = (re.compile(r"^\[\d\d:\d\d:\d\d\] "), re.compile(r"^\S+\.(?:cc|cpp|h|hpp):\d+: "),
          re.compile(r" at \S+\.(?:cc|cpp|h|hpp), line \d+ ?\.?"))


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    text = text.split(" Stack trace:")[0]
    for pattern in _NOISE:
        text = pattern.sub("", text).strip()
    return text if len(text) <= 160 else text[:157] + "..."
