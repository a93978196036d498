"""The entry threshold searched inside a trial (``objective.threshold_search``): the fold models
trained once, their predictions backtested at each threshold; the same threshold and bit for
bit the same score as evaluating each threshold as its own trial, fixed; the strategy's space
without the threshold; every bad setting one line, exit 2; off by default."""

from __future__ import annotations

import json

import pytest

from cryptosweep.core.config import drop_default_options
from cryptosweep.core.config_files import validate_config
from cryptosweep.core.errors import ConfigError
from cryptosweep.core.vocabulary import THRESHOLD_SEARCH
from cryptosweep.strategies.space import SearchSpace
from cryptosweep.trading.objective import evaluate_trial, searched_thresholds, with_threshold
from tests.support import cli, tiny_config

PARAMS = {"model": "lightgbm",
          "entry_model": {"num_leaves": 8, "learning_rate": 0.1, "min_data_in_leaf": 40},
          "trading": {"holding_period": 8, "stop_loss": 0.03, "take_profit": 0.05}}


def spec_with(threshold: dict, k: int = 4):
    config = tiny_config(objective__threshold_search=k)
    config["parameter_ranges"]["trading"]["threshold"] = threshold
    return validate_config(config, "test").objective_spec()


@pytest.fixture(scope="module")
def searched():
    spec = spec_with({"type": "float", "low": 0.5, "high": 0.6})
    out = evaluate_trial(PARAMS, 2, 7, spec)
    fixed = {t: evaluate_trial(with_threshold(PARAMS, t), 2, 7, spec) for t in spec.thresholds}
    return spec, out, fixed


def test_the_inner_loop_is_each_threshold_evaluated_as_its_own_trial(searched):
    spec, out, fixed = searched
    assert spec.thresholds == pytest.approx([0.5, 0.5 + 0.1 / 3, 0.6 - 0.1 / 3, 0.6])
    search = out[THRESHOLD_SEARCH]
    assert [inner["threshold"] for inner in search["evaluations"]] == spec.thresholds
    for inner in search["evaluations"]:  # bit for bit: the same predictions, the same backtest
        alone = fixed[inner["threshold"]]
        assert (inner["score"], inner["n_trades"]) == (alone["score"], alone["n_trades"])
    scores = [fixed[t]["score"] for t in spec.thresholds]
    best = spec.thresholds[scores.index(max(scores))]  # the first (lowest) of the best
    assert search["chosen"] == best
    assert len(set(scores)) > 1, "the thresholds should not all score the same here"
    # The trial is the chosen threshold's evaluation, fixed, plus its search.
    assert {k: v for k, v in out.items() if k != THRESHOLD_SEARCH} == fixed[best]
    assert THRESHOLD_SEARCH not in fixed[best]


def test_a_configuration_with_its_threshold_is_not_searched_again():
    spec = spec_with({"type": "float", "low": 0.5, "high": 0.6})
    assert searched_thresholds(with_threshold(PARAMS, 0.55), spec) is None
    assert searched_thresholds(PARAMS, spec) == spec.thresholds
    assert searched_thresholds(PARAMS, validate_config(tiny_config(), "t").objective_spec()
                               ) is None


def test_ties_keep_the_lowest_threshold():
    # No probability reaches these: no trade at any, every score 0 (the no-trades penalty).
    spec = spec_with({"type": "categorical", "choices": [0.999, 0.9999, 0.99]}, k=2)
    assert spec.thresholds == [0.99, 0.999, 0.9999]  # a categorical's choices, ascending
    out = evaluate_trial(PARAMS, 1, 7, spec)
    assert [inner["score"] for inner in out[THRESHOLD_SEARCH]["evaluations"]] == [0.0] * 3
    assert out[THRESHOLD_SEARCH]["chosen"] == 0.99 and out["penalty"]


def test_the_space_goes_without_the_threshold_and_off_is_the_default():
    on = validate_config(tiny_config(objective__threshold_search=3, sweep_type="grid",
                                     grid__points=2), "t")
    off = validate_config(tiny_config(sweep_type="grid", grid__points=2), "t")
    assert "threshold" not in SearchSpace.from_config(on).trading
    assert "threshold" in SearchSpace.from_config(off).trading
    assert (SearchSpace.from_config(off).grid_size(2)
            == 2 * SearchSpace.from_config(on).grid_size(2))
    assert off.objective.threshold_search is None
    assert "threshold_search" not in off.canonical()["objective"]
    assert "thresholds" not in off.objective_spec().to_payload()
    assert "threshold_search" not in drop_default_options(off.objective.model_dump())
    assert on.canonical()["objective"]["threshold_search"] == 3
    assert on.results_hash() != off.results_hash()


@pytest.mark.parametrize(("changes", "message"), [
    ({"objective__threshold_search": 1}, "objective.threshold_search: Input should be greater "
                                         "than or equal to 2"),
    ({"objective__threshold_search": True}, "objective.threshold_search: Input should be a "
                                            "valid integer"),
    ({"objective__threshold_search": 3, "objective__entry_rule": "expected_value"},
     "objective.threshold_search (3) needs objective.entry_rule: threshold"),
    ({"objective__threshold_search": 3,
      "parameter_ranges__trading__threshold": {"type": "float", "low": 0.55, "high": 0.55}},
     "parameter_ranges.trading.threshold gives 1 value(s) to search"),
])
def test_a_bad_setting_is_one_line(changes, message):
    with pytest.raises(ConfigError) as raised:
        validate_config(tiny_config(**changes), "config")
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_the_cli_refuses_a_bad_setting_with_exit_2(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(tiny_config(objective__threshold_search=0)))
    done = cli("run", "--config", str(path), "--log-dir", str(tmp_path))
    assert done.returncode == 2
    (line,) = [line for line in done.stderr.splitlines() if "threshold_search" in line]
    assert "greater than or equal to 2" in line
