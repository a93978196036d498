"""The one typed objective spec: what the validated config says is what every trial (and the
finalize re-run, and the exported framework parameters) runs with."""

from __future__ import annotations

import json

import pytest

from cryptosweep.core.config import ObjectiveSpec, config_hash
from cryptosweep.core.config_files import load_config
from cryptosweep.core.errors import ConfigError
from cryptosweep.core.reproducibility import ReproducibilityManager
from cryptosweep.sweep.runner import run_sweep
from cryptosweep.trading.objective import evaluate_trial, trial_reproducibility
from tests.support import tiny_config

PARAMS = {
    "model": "lightgbm",
    "entry_model": {"num_leaves": 15, "learning_rate": 0.1, "min_data_in_leaf": 40},
    "trading": {"threshold": 0.5, "holding_period": 6, "stop_loss": 0.03, "take_profit": 0.05},
}


def test_a_partial_spec_gets_the_configs_defaults_not_its_own():
    """The worker once re-parsed the spec with defaults of its own (min_train_bars 1 where the
    config says 500): a spec missing keys scored differently from the config's full spec."""
    raw = tiny_config()
    raw["objective"] = {"folds": 3}
    full = load_config(raw=raw).objective_spec()
    partial = {"data": {"holdout_fraction": 0.2},
               "objective": {"metric": "sharpe", "folds": 3, "fees_bps": 10.0,
                             "rounds_per_unit": 10.0}}
    assert ObjectiveSpec.of(partial).objective.min_train_bars == 500
    assert ObjectiveSpec.of(partial) == full
    assert evaluate_trial(PARAMS, 1.0, 7, partial) == evaluate_trial(PARAMS, 1.0, 7, full)


def test_a_bad_spec_names_the_field():
    with pytest.raises(ConfigError, match=r"objective\.metricc: unknown key"):
        ObjectiveSpec.of({"objective": {"metricc": "sharpe"}})
    with pytest.raises(ConfigError, match=r"objective\.folds"):
        ObjectiveSpec.of({"objective": {"folds": 0}})


def test_the_spec_travels_as_plain_json_and_comes_back_equal():
    spec = load_config(raw=tiny_config(gpu_settings__deterministic=False)).objective_spec()
    payload = spec.to_payload()
    assert json.loads(json.dumps(payload)) == payload
    assert ObjectiveSpec.of(payload) == spec and ObjectiveSpec.of(payload).deterministic is False


def test_gpu_settings_deterministic_reaches_the_trials_models(tmp_path):
    """``gpu_settings.deterministic: false`` used to stop at the driver: workers built their
    framework switches with the default (True). The trial's saved LightGBM model says which
    switches it was trained with."""
    for deterministic in (True, False):
        spec = load_config(raw=tiny_config(
            gpu_settings__deterministic=deterministic)).objective_spec()
        folder = tmp_path / str(deterministic)
        evaluate_trial(PARAMS, 1.0, 7, spec.to_payload(),
                       checkpoint={"dir": str(folder), "trial_id": 0, "from_budget": None})
        (model_file, *_) = sorted((folder / "trial_0").glob("fold0_*.txt"))
        assert f"[deterministic: {int(deterministic)}]" in model_file.read_text()


def test_gpu_settings_deterministic_reaches_the_exported_framework_params(tmp_path):
    config = load_config(raw=tiny_config(random__n_trials=2,
                                         gpu_settings__deterministic=False))
    result = run_sweep(config=config, seed=3, log_dir=tmp_path, show_progress=False)
    best = json.loads(result.files["best_configs"].read_text())
    assert best["entry_model"]["framework_params"]["deterministic"] is False


def test_memory_fraction_caps_what_the_frameworks_may_take_on_a_gpu():
    """``gpu_settings.memory_fraction`` was passed to dask-cuda as a spill threshold; now torch
    gets it as its per-process cap and CatBoost its share as ``gpu_ram_part``."""
    config = load_config(raw=tiny_config(gpu_settings__memory_fraction=0.6,
                                         gpu_settings__trials_per_gpu=2))
    on_gpu = trial_reproducibility(config.objective_spec(), 5, device="cuda:0")
    assert on_gpu.get_torch_settings()["memory_fraction"] == 0.6
    assert on_gpu.get_catboost_params()["gpu_ram_part"] == pytest.approx(0.3)
    assert "gpu_ram_part" not in ReproducibilityManager(seed=5).get_catboost_params()


def test_how_a_sweep_executes_is_not_part_of_its_identity():
    """The same sweep with 1 or 2 workers, another name or another GPU packing computes the
    same results, so it carries one hash; what decides results changes it."""
    base = load_config(raw=tiny_config()).canonical()
    for change in ({"execution__workers": 2}, {"execution__workers": 1},
                   {"name": "renamed"}, {"gpu_settings__trials_per_gpu": 4}):
        assert config_hash(load_config(raw=tiny_config(**change)).canonical()) \
            == config_hash(base)
    for change in ({"objective__folds": 3}, {"gpu_settings__deterministic": False},
                   {"reporting__top_k": 3}):
        assert config_hash(load_config(raw=tiny_config(**change)).canonical()) \
            != config_hash(base)


def test_a_stretch_of_zero_volume_is_named_not_called_warm_up(tmp_path):
    """Real candles with 2,900 hours of zero volume (a market that stopped trading, an
    exchange's maintenance) were refused with "the features need 3001 bars of warm-up", while
    the warm-up is 167 bars: the volume z-scores cannot be computed over a window of constant
    volume (a helper's attack). The message names the feature, the bar and the likely cause."""
    from cryptosweep.trading.data import load_ohlcv
    from cryptosweep.trading.objective import check_spec

    candles = load_ohlcv().reset_index()
    candles.loc[100:3000, "volume"] = 0.0
    candles.columns = ["timestamp", "open", "high", "low", "close", "volume"]
    path = tmp_path / "still.csv"
    candles.to_csv(path, index=False)
    spec = {"data": {"path": str(path)}, "objective": {"folds": 2, "min_train_bars": 200}}
    with pytest.raises(ConfigError) as refused:
        check_spec(spec)
    message = str(refused.value)
    assert "3001 bars of warm-up" not in message, message
    assert ("volume_z_24 is not finite until bar 3001 (2022-02-03T01:00:00+00:00), after the "
            "167 bars of the features' warm-up: constant volumes or prices over its window?"
            ) in message, message
