"""Search-space sampling and grids."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

from cryptosweep.core.config_files import load_config
from cryptosweep.core.settings import CategoricalDimension, FloatDimension, IntDimension
from cryptosweep.strategies.space import SearchSpace, grid_values, sample_dimension
from tests.support import tiny_config


def draws(dim, n=2000, seed=0):
    rng = np.random.default_rng(seed)
    return [sample_dimension(dim, rng) for _ in range(n)]


def test_float_dimensions_stay_in_bounds_and_log_scale_is_log_uniform():
    linear = draws(FloatDimension(type="float", low=0.1, high=100.0))
    logged = draws(FloatDimension(type="float", low=0.1, high=100.0, log=True))
    assert all(0.1 <= v <= 100.0 for v in linear + logged)
    assert all(isinstance(v, float) for v in linear + logged)
    # Log-uniform on [0.1, 100]: half the mass below the geometric midpoint sqrt(10) ~ 3.16.
    assert 0.45 < np.mean(np.array(logged) < math.sqrt(10)) < 0.55
    assert np.mean(np.array(linear) < math.sqrt(10)) < 0.1


def test_int_and_stepped_dimensions_hit_exactly_their_values():
    ints = draws(IntDimension(type="int", low=2, high=10, step=4))
    assert set(ints) == {2, 6, 10} and all(type(v) is int for v in ints)
    log_ints = draws(IntDimension(type="int", low=1, high=1000, log=True))
    assert min(log_ints) >= 1 and max(log_ints) <= 1000 and np.median(log_ints) < 100
    stepped = draws(FloatDimension(type="float", low=0.0, high=1.0, step=0.25))
    assert set(stepped) == {0.0, 0.25, 0.5, 0.75, 1.0}


def test_categorical_keeps_choice_types():
    dim = CategoricalDimension(type="categorical", choices=["a", 3, 0.5, True])
    assert set(map(json.dumps, draws(dim, 400))) == {'"a"', "3", "0.5", "true"}


def test_grid_values():
    assert grid_values(FloatDimension(type="float", low=0, high=1), 3) == [0.0, 0.5, 1.0]
    assert grid_values(FloatDimension(type="float", low=1, high=100, log=True), 3) == pytest.approx(
        [1.0, 10.0, 100.0])
    assert grid_values(IntDimension(type="int", low=1, high=4), 10) == [1, 2, 3, 4]
    assert grid_values(IntDimension(type="int", low=5, high=5), 3) == [5]


def test_an_int_grid_stays_on_the_steps_that_the_other_strategies_draw():
    """low 8, high 64, step 10: random and Bayesian search draw 8, 18, ..., 58; the grid
    capped its last value at high and evaluated 64, a value no other strategy could."""
    dim = IntDimension(type="int", low=8, high=64, step=10)
    lattice = {8, 18, 28, 38, 48, 58}
    assert set(draws(dim, 500)) == lattice
    for points in (2, 3, 7, 100):
        assert set(grid_values(dim, points)) <= lattice, points
    assert grid_values(dim, 2) == [8, 58] and grid_values(dim, 100) == sorted(lattice)


def test_grid_is_the_exact_product_once_per_family():
    raw = tiny_config()
    raw["parameter_ranges"]["xgboost"] = {"max_depth": {"type": "int", "low": 3, "high": 5}}
    raw["objective"]["models"] = ["lightgbm", "xgboost"]
    space = SearchSpace.from_config(load_config(raw=raw))
    points = space.grid(2, 10_000)
    keys = [json.dumps(p, sort_keys=True) for p in points]
    assert len(keys) == len(set(keys))
    trading = list(itertools.product(*(grid_values(d, 2) for d in space.trading.values())))
    lightgbm = space.families["lightgbm"].values()
    light = list(itertools.product(*(grid_values(d, 2) for d in lightgbm)))
    assert len(points) == len(trading) * (len(light) + 2)
    assert {p["model"] for p in points} == {"lightgbm", "xgboost"}
    assert all(set(p["entry_model"]) == {"max_depth"} for p in points if p["model"] == "xgboost")


def test_conditional_sampling_only_draws_the_chosen_family():
    raw = tiny_config()
    raw["parameter_ranges"]["xgboost"] = {"max_depth": {"type": "int", "low": 3, "high": 5}}
    raw["objective"]["models"] = ["lightgbm", "xgboost"]
    space = SearchSpace.from_config(load_config(raw=raw))
    rng = np.random.default_rng(3)
    points = [space.sample(rng) for _ in range(200)]
    assert {p["model"] for p in points} == {"lightgbm", "xgboost"}
    for point in points:
        assert set(point["entry_model"]) == set(space.families[point["model"]])


def test_key_order_does_not_change_samples():
    raw = tiny_config()
    reordered = json.loads(json.dumps(raw))
    reordered["parameter_ranges"]["trading"] = dict(
        reversed(list(raw["parameter_ranges"]["trading"].items())))
    a = SearchSpace.from_config(load_config(raw=raw)).sample(np.random.default_rng(1))
    b = SearchSpace.from_config(load_config(raw=reordered)).sample(np.random.default_rng(1))
    assert a == b


def test_grid_too_large_is_a_config_error():
    from cryptosweep.core.errors import ConfigError

    space = SearchSpace.from_config(load_config(raw=tiny_config()))
    with pytest.raises(ConfigError, match=r"exceed grid\.max_trials=10"):
        space.grid(5, 10)
