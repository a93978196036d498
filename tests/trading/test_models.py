"""Entry-model adapters: determinism per family, parameters, reserved keys, GPU mapping."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pytest

from cryptosweep.core.errors import ConfigError
from cryptosweep.core.reproducibility import ReproducibilityManager
from cryptosweep.core.vocabulary import MODEL_FAMILIES
from cryptosweep.trading import models
from cryptosweep.trading.models import (
    CATBOOST_LEARNING_RATE,
    RF_BAGGING_FRACTION,
    CatBoostEntryModel,
    EntryModel,
    LightGBMEntryModel,
    TorchMLPEntryModel,
    XGBoostEntryModel,
    make_entry_model,
)

#: family, parameters with randomness in them, budget (rounds or epochs)
CASES: dict[str, tuple[str, dict[str, Any], int]] = {
    "lightgbm": ("lightgbm", {"num_leaves": 7, "feature_fraction": 0.8, "bagging_fraction": 0.8,
                              "min_data_in_leaf": 20}, 30),
    "lightgbm-rf": ("lightgbm", {"boosting": "rf", "num_leaves": 15}, 30),
    "xgboost": ("xgboost", {"max_depth": 3, "subsample": 0.8, "colsample_bytree": 0.8}, 30),
    "catboost": ("catboost", {"depth": 4}, 30),  # random_strength/bagging: random by default
    "torch": ("torch", {"hidden_units": 16, "dropout": 0.1, "learning_rate": 0.01,
                        "batch_size": 64}, 8),
}  # fmt: skip


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(20240601)
    x = rng.normal(size=(800, 10))
    y = (x[:, 0] + 0.5 * x[:, 1] - 0.5 * x[:, 2] + 0.7 * rng.normal(size=800) > 0).astype(float)
    return x[:600], y[:600], x[600:], y[600:]


def _predict(case: str, seed: int, data: tuple[np.ndarray, ...]) -> np.ndarray:
    family, params, budget = CASES[case]
    x_train, y_train, x_test, _ = data
    model = make_entry_model(family, params, ReproducibilityManager(seed=seed))
    assert isinstance(model, EntryModel)
    model.fit(x_train, y_train, budget)
    return model.predict_proba(x_test)


@pytest.mark.parametrize("case", list(CASES))
def test_same_seed_same_bytes_other_seed_other_predictions(case, data):
    first = _predict(case, 7, data)
    other = _predict(case, 8, data)  # in between: a booster/RNG with another seed ran first
    again = _predict(case, 7, data)
    assert first.dtype == np.float64 and first.shape == (200,)
    assert first.tobytes() == again.tobytes()
    assert first.tobytes() != other.tobytes()
    assert ((first >= 0) & (first <= 1)).all()
    accuracy = ((first > 0.5) == (data[3] == 1)).mean()
    assert accuracy > 0.7, f"{case}: accuracy {accuracy:.3f} on a learnable signal"


@pytest.mark.parametrize("case", list(CASES))
def test_a_rows_probability_does_not_depend_on_the_rows_around_it(case, data):
    """Production predicts a bar inside windows of any length (the last bars, a longer
    history, the holdout alone): each row must come out with the same bits whatever other rows
    are predicted with it. BLAS picks its summation order by matrix shape, which changed torch
    rows in the last bits for batch sizes such as 1-3, 127, 129, 255 and 257."""
    family, params, budget = CASES[case]
    x_train, y_train, x_test, _ = data
    rng = np.random.default_rng(5)
    x_many = np.vstack([x_test, rng.normal(size=(400, x_test.shape[1]))])
    model = make_entry_model(family, params, ReproducibilityManager(seed=3))
    model.fit(x_train, y_train, budget)
    reference = model.predict_proba(x_many)
    for size in (1, 2, 3, 6, 7, 11, 127, 129, 255, 257):
        for start in (0, 13):
            window = model.predict_proba(x_many[start : start + size])
            assert window.tobytes() == reference[start : start + size].tobytes(), (size, start)


def test_make_entry_model_families_and_unknown_family():
    repro = ReproducibilityManager(seed=1)
    expected = {"lightgbm": LightGBMEntryModel, "xgboost": XGBoostEntryModel,
                "catboost": CatBoostEntryModel, "torch": TorchMLPEntryModel}  # fmt: skip
    assert set(expected) == set(MODEL_FAMILIES)
    for family, adapter in expected.items():
        assert type(make_entry_model(family, {}, repro)) is adapter
    with pytest.raises(ConfigError, match=r"unknown model family 'sklearn' \(known: catboost, "
                       r"lightgbm, torch, xgboost\)"):  # fmt: skip
        make_entry_model("sklearn", {}, repro)


def test_fit_budget_and_inputs_are_checked(data):
    x_train, y_train, x_test, _ = data
    model = make_entry_model("xgboost", {"max_depth": 2}, ReproducibilityManager(seed=1))
    with pytest.raises(RuntimeError, match="before fit"):
        model.predict_proba(x_test)
    with pytest.raises(ValueError, match="budget must be an integer >= 1"):
        model.fit(x_train, y_train, 0)
    with pytest.raises(ValueError, match="only 0 and 1"):
        model.fit(x_train, y_train * 2, 3)
    model.fit(x_train, y_train, rounds=3)  # the keyword of the first version still works
    assert model.predict_proba(x_test).shape == (200,)


# --------------------------------------------------------------------------- LightGBM


def test_lightgbm_rf_defaults_and_checks():
    repro = ReproducibilityManager(seed=3)
    rf = LightGBMEntryModel({"boosting": "rf"}, repro)
    assert rf.params["bagging_fraction"] == RF_BAGGING_FRACTION and rf.params["bagging_freq"] == 1
    kept = LightGBMEntryModel({"boosting_type": "rf", "bagging_fraction": 0.5,
                               "bagging_freq": 3}, repro)  # fmt: skip
    assert kept.params["bagging_fraction"] == 0.5 and kept.params["bagging_freq"] == 3
    freq_only = LightGBMEntryModel({"boosting": "rf", "subsample": 0.7}, repro)
    assert "bagging_fraction" not in freq_only.params and freq_only.params["bagging_freq"] == 1
    columns_only = LightGBMEntryModel(
        {"boosting": "rf", "bagging_fraction": 1.0, "feature_fraction": 0.7}, repro
    )
    assert columns_only.params["bagging_fraction"] == 1.0
    with pytest.raises(ConfigError, match="boosting 'rf' needs bagging_freq >= 1"):
        LightGBMEntryModel({"boosting": "rf", "bagging_fraction": 1.0}, repro)
    with pytest.raises(ConfigError, match="boosting 'rf' needs"):
        LightGBMEntryModel({"boosting": "rf", "bagging_freq": 0}, repro)
    gbdt = LightGBMEntryModel({"bagging_fraction": 0.5}, repro)
    assert gbdt.params["bagging_freq"] == 1 and "boosting" not in gbdt.params


# --------------------------------------------------------------------------- CatBoost


def test_catboost_learning_rate_is_always_explicit(data):
    x_train, y_train, _, _ = data
    repro = ReproducibilityManager(seed=2)
    model = CatBoostEntryModel({"depth": 3}, repro)
    model.fit(x_train, y_train, 5)
    fitted = model._model
    assert fitted.get_params()["learning_rate"] == CATBOOST_LEARNING_RATE
    assert fitted.get_all_params()["learning_rate"] == pytest.approx(CATBOOST_LEARNING_RATE)
    assert fitted.get_all_params()["iterations"] == 5
    assert CatBoostEntryModel({"learning_rate": 0.2}, repro).params["learning_rate"] == 0.2
    aliased = CatBoostEntryModel({"eta": 0.1}, repro).params
    assert aliased["learning_rate"] == 0.1 and "eta" not in aliased
    assert model.params["loss_function"] == "Logloss" and model.deterministic


def test_catboost_one_class_target_predicts_it(data):
    x_train, _, x_test, _ = data
    model = make_entry_model("catboost", {}, ReproducibilityManager(seed=2))
    model.fit(x_train, np.zeros(len(x_train)), 5)
    assert (model.predict_proba(x_test) == 0.0).all()


# --------------------------------------------------------------------------- torch


def test_torch_leaves_global_state_alone(data):
    import torch

    x_train, y_train, x_test, _ = data
    rng_state = torch.random.get_rng_state()
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    model = make_entry_model("torch", {"hidden_units": 8, "layers": 1, "dropout": 0.2},
                             ReproducibilityManager(seed=4))  # fmt: skip
    model.fit(x_train, y_train, 2)
    model.predict_proba(x_test)
    assert torch.equal(torch.random.get_rng_state(), rng_state)
    assert torch.get_num_threads() == threads
    assert torch.are_deterministic_algorithms_enabled() == deterministic


def test_torch_parameters_are_validated():
    repro = ReproducibilityManager(seed=1)
    model = TorchMLPEntryModel({"hidden_units": 32.0, "layers": 3}, repro)
    assert model.params == {"hidden_units": 32, "layers": 3, "dropout": 0.0,
                            "learning_rate": 1e-3, "weight_decay": 0.0, "batch_size": 256}
    with pytest.raises(ConfigError, match="do not include max_depth"):
        TorchMLPEntryModel({"max_depth": 3}, repro)
    with pytest.raises(ConfigError, match=r"dropout must be a number in \[0.0, 1.0\)"):
        TorchMLPEntryModel({"dropout": 1.0}, repro)
    with pytest.raises(ConfigError, match="hidden_units must be an integer >= 1"):
        TorchMLPEntryModel({"hidden_units": 2.5}, repro)


# --------------------------------------------------------------------------- reserved keys


@pytest.mark.parametrize(("family", "key"), [
    ("lightgbm", "seed"), ("lightgbm", "num_threads"), ("lightgbm", "device_type"),
    ("lightgbm", "num_iterations"), ("xgboost", "seed"), ("xgboost", "random_state"),
    ("xgboost", "nthread"), ("xgboost", "device"), ("xgboost", "n_estimators"),
    ("catboost", "random_seed"), ("catboost", "thread_count"), ("catboost", "task_type"),
    ("catboost", "devices"), ("catboost", "iterations"), ("torch", "seed"), ("torch", "device"),
    ("torch", "num_threads"), ("torch", "epochs"),
])  # fmt: skip
def test_reserved_keys_are_rejected(family, key):
    with pytest.raises(ConfigError, match=f"{family} entry_model parameters may not set {key}"):
        make_entry_model(family, {key: 1}, ReproducibilityManager(seed=1))


@pytest.mark.parametrize(("family", "key", "value"), [
    ("lightgbm", "machines", "127.0.0.1:12400,127.0.0.1:12401"),
    ("lightgbm", "local_listen_port", 12400), ("lightgbm", "num_machines", 2),
    ("lightgbm", "machine_list_filename", "/tmp/mlist"), ("lightgbm", "time_out", 1),
    ("lightgbm", "tree_learner", "data"), ("lightgbm", "tree", "voting"),
    ("lightgbm", "objective", "regression"), ("lightgbm", "application", "regression"),
    ("xgboost", "objective", "binary:logitraw"), ("catboost", "loss_function", "RMSE"),
    ("catboost", "objective", "RMSE"),
])  # fmt: skip
def test_parameters_the_adapter_overrides_or_that_open_a_network_are_refused(family, key, value):
    """A searched `machines` made validate's probe fit open LightGBM's network code and
    SIGSEGV; an `objective` (LightGBM `application: regression`) was silently overridden."""
    from cryptosweep.core.settings import CategoricalDimension
    from cryptosweep.trading.models.check import range_problem

    with pytest.raises(ConfigError, match=f"{family} entry_model parameter {key}: "):
        make_entry_model(family, {key: value}, ReproducibilityManager(seed=1))
    dimension = CategoricalDimension(type="categorical", choices=[value])
    problem = range_problem(family, {key: dimension})
    assert problem is not None and problem.startswith(f".{key}: "), problem


@pytest.mark.parametrize(("family", "first", "second", "low", "high"), [
    ("lightgbm", "eta", "learning_rate", 0.05, 0.5),
    ("lightgbm", "bagging_fraction", "subsample", 0.5, 0.9),
    ("xgboost", "eta", "learning_rate", 0.05, 0.5),
    ("xgboost", "lambda", "reg_lambda", 0.0, 50.0),
    ("catboost", "depth", "max_depth", 2, 4),
    ("catboost", "eta", "learning_rate", 0.05, 0.5),
])  # fmt: skip
def test_one_parameter_searched_under_two_names_is_refused(family, first, second, low, high):
    """Two names of one parameter passed validate (each was probed alone): LightGBM and
    XGBoost then trained with one of the two values and ignored the other, a dimension that
    changed nothing; CatBoost refused the pair in every trial."""
    from cryptosweep.core.settings import CategoricalDimension
    from cryptosweep.trading.models.check import _probe_data, probe, range_problem

    both = {name: CategoricalDimension(type="categorical", choices=[low, high])
            for name in (first, second)}
    problem = range_problem(family, both)
    assert problem is not None and problem.startswith(
        f".{second}: the same {family} parameter as .{first} ("), problem
    if family == "catboost":
        assert probe(family, {first: low, second: high}) is not None
        return
    x, y = _probe_data()

    def predictions(params: dict[str, Any]) -> np.ndarray:
        model = make_entry_model(family, params, ReproducibilityManager(seed=1, threads=1))
        model.fit(x, y, 3)
        return model.predict_proba(x)

    # What the check prevents: the library reads one of the two names, the other's value
    # changes nothing.
    base = predictions({first: high, second: high})
    changed = [np.array_equal(base, predictions({first: low, second: high})),
               np.array_equal(base, predictions({first: high, second: low}))]
    assert sorted(changed) == [False, True], changed


def test_a_serial_tree_learner_is_still_allowed():
    from cryptosweep.core.settings import CategoricalDimension
    from cryptosweep.trading.models.check import range_problem

    dimension = CategoricalDimension(type="categorical", choices=["serial"])
    assert range_problem("lightgbm", {"tree_learner": dimension}) is None


# --------------------------------------------------------------------------- GPU mapping


@pytest.fixture
def gpu_present(monkeypatch):
    monkeypatch.setattr(models.devices, "lightgbm_opencl_available", lambda: True)
    monkeypatch.setattr(models.devices, "catboost_gpu_count", lambda: 1)
    monkeypatch.setattr(models.devices, "torch_cuda_available", lambda: True)


@pytest.fixture
def gpu_absent(monkeypatch):
    monkeypatch.setattr(models.devices, "lightgbm_opencl_available", lambda: False)
    monkeypatch.setattr(models.devices, "catboost_gpu_count", lambda: 0)
    monkeypatch.setattr(models.devices, "torch_cuda_available", lambda: False)
    monkeypatch.setattr(models.adapter, "_logged", set())


def test_gpu_parameter_mapping(gpu_present):
    repro = ReproducibilityManager(seed=5, device="cuda:1", threads=2)
    lgb = make_entry_model("lightgbm", {}, repro)
    assert lgb.params["device_type"] == "gpu" and lgb.params["gpu_device_id"] == 1
    assert lgb.params["seed"] == 5 and lgb.params["num_threads"] == 2 and not lgb.deterministic
    xgb = make_entry_model("xgboost", {}, repro)
    assert xgb.params["device"] == "cuda:1" and xgb.params["tree_method"] == "hist"
    assert xgb.params["seed"] == 5 and xgb.params["nthread"] == 2
    cat = make_entry_model("catboost", {}, repro)
    assert cat.params["task_type"] == "GPU" and cat.params["devices"] == "1"
    assert cat.params["random_seed"] == 5 and not cat.deterministic
    net = make_entry_model("torch", {}, repro)
    assert net.device == "cuda:1" and net.seed == 5 and net.threads == 2


def test_gpu_falls_back_to_cpu_and_says_so_once(gpu_absent, caplog):
    repro = ReproducibilityManager(seed=5, device="cuda:0")
    with caplog.at_level(logging.WARNING, logger=models.__name__):
        for _ in range(2):
            lgb = make_entry_model("lightgbm", {}, repro)
            cat = make_entry_model("catboost", {}, repro)
            net = make_entry_model("torch", {}, repro)
    assert lgb.params["device_type"] == "cpu" and lgb.deterministic
    assert cat.params["task_type"] == "CPU" and "devices" not in cat.params and cat.deterministic
    assert net.device == "cpu"
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 3
    assert sum("LightGBM" in m and "CPU learner" in m for m in messages) == 1
    cpu = make_entry_model("lightgbm", {}, ReproducibilityManager(seed=5))
    assert cpu.params["device_type"] == "cpu"


def test_lightgbm_opencl_probe_is_cached():
    models.lightgbm_opencl_available.cache_clear()
    first = models.lightgbm_opencl_available()
    assert isinstance(first, bool)
    assert models.lightgbm_opencl_available() is first
    assert models.lightgbm_opencl_available.cache_info().hits >= 1


def test_torch_trials_in_threads_of_one_process_give_their_sequential_results(data):
    """gpu_settings.trials_per_gpu > 1 runs trials in threads of one worker; torch's switches are
    process-wide, so the adapter serialises its sessions: same bytes as one after the other."""
    import threading

    x_train, y_train, x_test, _ = data

    def predict(seed: int) -> bytes:
        model = make_entry_model("torch", {"hidden_units": 16, "layers": 1},
                                 ReproducibilityManager(seed=seed, threads=1))
        model.fit(x_train, y_train, 5)
        return model.predict_proba(x_test).tobytes()

    sequential = {seed: predict(seed) for seed in (1, 2, 3)}
    concurrent: dict[int, bytes] = {}
    threads = [threading.Thread(target=lambda s=seed: concurrent.__setitem__(s, predict(s)))
               for seed in (1, 2, 3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert concurrent == sequential


def test_probes_in_two_threads_at_once_leave_stderr_where_it_was():
    """The probe's quiet mode points fds 1 and 2 at /dev/null; two threads in it at once (a
    walk-forward's windows checking their configs) once left stderr at /dev/null for good:
    the second saved /dev/null as 'the original' and restored it last."""
    import os
    import threading

    from cryptosweep.trading.models.check import _quiet

    before = os.fstat(2)
    a_inside, b_inside, a_done = threading.Event(), threading.Event(), threading.Event()

    def first():
        with _quiet():
            a_inside.set()
            b_inside.wait(timeout=1.0)  # with turns taken, the second cannot be inside yet
        a_done.set()

    def second():
        a_inside.wait(timeout=5.0)
        with _quiet():
            b_inside.set()
            a_done.wait(timeout=5.0)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10.0)
    after = os.fstat(2)
    assert (after.st_dev, after.st_ino) == (before.st_dev, before.st_ino)


@pytest.mark.parametrize(("family", "key", "wrong", "right"), [
    ("lightgbm", "monotone_constraints", "1,1,1,1", ",".join(["1"] * 20)),
    ("lightgbm", "monotone_constraints", "1,0,-1,0,1,0", ",".join(["-1", "0"] * 10)),
])  # fmt: skip
def test_parameters_sized_by_the_features_are_probed_with_the_real_feature_count(
        family, key, wrong, right):
    """The probe fitted 4 synthetic features: LightGBM monotone_constraints of length 4 passed
    validate and failed every trial (exit 4), and a right length for the 20 features was
    refused."""
    from cryptosweep.core.settings import CategoricalDimension
    from cryptosweep.trading.features import FEATURE_COLUMNS
    from cryptosweep.trading.models.check import range_problem

    assert len(FEATURE_COLUMNS) == 20
    problem = range_problem(family, {key: CategoricalDimension(type="categorical",
                                                               choices=[wrong])})
    assert problem is not None and problem.startswith(f".{key}: {family} refuses"), problem
    assert range_problem(family, {key: CategoricalDimension(type="categorical",
                                                            choices=[right])}) is None
