"""What the docs say of the template config stays true: ``parameters/sweep_config_template.json``
names every section and key of the config model, and differs from the model's defaults only by
the full nightly's choices its ``description`` (and the README) list."""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from cryptosweep.core.config import SweepConfig
from cryptosweep.core.config_files import load_config
from cryptosweep.core.paths import TEMPLATE_CONFIG

#: Where the template's values differ from the model's defaults: a full nightly's choices, as
#: its description and the README list them (besides its own name and description).
NIGHTLY_CHOICES: dict[tuple[str, ...], Any] = {
    ("name",): "template",
    ("seed",): 123456,
    ("random", "n_trials"): 50,
    ("bayesian", "n_trials"): 50,
    ("objective", "models"): ["lightgbm", "xgboost", "catboost", "torch"],
    ("objective", "slippage_bps"): 2.0,
    ("objective", "fidelity"): "folds",
    ("parameter_ranges", "catboost"): "ranges",
    ("parameter_ranges", "lightgbm"): "ranges",
    ("parameter_ranges", "xgboost"): "ranges",
    ("parameter_ranges", "torch"): "ranges",
}
#: Keys the template leaves out on purpose: an explicit ``continue_training`` is reported as
#: doing nothing under the template's fidelity (folds).
LEFT_OUT = {("hyperband", "continue_training")}


def _section(field: Any) -> type[BaseModel] | None:
    for kind in (field.annotation, *typing.get_args(field.annotation)):
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            return kind
    return None


def _compare(model: type[BaseModel], given: dict[str, Any], path: tuple[str, ...],
             missing: list, differing: dict) -> None:
    for name, field in model.model_fields.items():
        where = (*path, name)
        if name not in given:
            missing.append(where)
            continue
        section = _section(field)
        if section is not None and isinstance(given[name], dict) and name != "parameter_ranges":
            _compare(section, given[name], where, missing, differing)
            continue
        if section is not None and name == "parameter_ranges":
            for family, ranges in given[name].items():  # a family's ranges (trading's required)
                family_field = section.model_fields[family]
                if not family_field.is_required() and ranges != family_field.get_default():
                    differing[(*where, family)] = "ranges"
            continue
        default = field.get_default(call_default_factory=True)
        if isinstance(default, BaseModel):
            default = default.model_dump(mode="json")
        if given[name] != default:
            differing[where] = given[name]


def test_the_template_names_every_key_and_differs_only_by_the_nightlys_choices() -> None:
    template = json.loads(Path(TEMPLATE_CONFIG).read_text(encoding="utf-8"))
    missing: list[tuple[str, ...]] = []
    differing: dict[tuple[str, ...], Any] = {}
    _compare(SweepConfig, template, (), missing, differing)
    differing.pop(("description",))
    assert set(missing) == LEFT_OUT
    assert differing == NIGHTLY_CHOICES
    load_config(TEMPLATE_CONFIG)  # and it is a valid config


def test_the_template_description_names_the_nightlys_choices() -> None:
    description = json.loads(Path(TEMPLATE_CONFIG).read_text(encoding="utf-8"))["description"]
    for key in ("seed 123456", "random.n_trials 50", "bayesian.n_trials 50",
                "objective.slippage_bps 2.0", "objective.models all four",
                "objective.fidelity folds", "parameter_ranges"):
        assert key in description, key
