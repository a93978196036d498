"""Seeds, determinism switches and environment capture."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from cryptosweep.core.reproducibility import (
    ReproducibilityManager,
    derive_seed,
    setup_crypto_gpu_reproducibility,
)
from cryptosweep.execution.environment import system_info


def test_derive_seed_is_the_same_in_every_process_whatever_the_hash_salt():
    code = ("from cryptosweep.core.reproducibility import derive_seed;"
            "print(derive_seed(123456, 'trial', 7), hash('trial'))")
    outputs = [
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                       env={**os.environ, "PYTHONHASHSEED": salt}).stdout.split()
        for salt in ("1", "2")
    ]
    assert outputs[0][1] != outputs[1][1], "the test needs differently salted hash()"
    assert outputs[0][0] == outputs[1][0] == str(derive_seed(123456, "trial", 7))


def test_derive_seed_separates_keys_and_fits_int32():
    seeds = {derive_seed(1, "trial", i) for i in range(5000)}
    assert len(seeds) == 5000
    assert all(0 <= s < 2**31 for s in seeds)
    assert derive_seed(1, "trial", 3) != derive_seed(1, "trial", "3")
    assert derive_seed(1, "a", 2) != derive_seed(1, "a2")
    assert derive_seed(1, "x") != derive_seed(2, "x")
    with pytest.raises(TypeError):
        derive_seed(1, 2.5)


def test_setup_seeds_global_generators_and_switches_torch_to_determinism():
    import random

    import torch

    manager = setup_crypto_gpu_reproducibility(99)
    first = (random.random(), np.random.random(), torch.rand(1).item())
    setup_crypto_gpu_reproducibility(99)
    assert (random.random(), np.random.random(), torch.rand(1).item()) == first
    assert torch.are_deterministic_algorithms_enabled()
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    assert manager.device == ("cuda:0" if torch.cuda.is_available() else "cpu")
    if os.environ.get("PYTHONHASHSEED") in (None, "", "random"):
        assert any("PYTHONHASHSEED" in item for item in manager.not_set)
    torch.use_deterministic_algorithms(False)


def test_framework_params_cpu_and_gpu():
    cpu = ReproducibilityManager(seed=5, threads=2)
    assert cpu.get_lightgbm_params() == {
        "seed": 5, "deterministic": True, "force_row_wise": True, "num_threads": 2,
        "device_type": "cpu", "verbosity": -1}
    assert cpu.get_xgboost_params()["device"] == "cpu"
    assert cpu.get_xgboost_params()["tree_method"] == "hist"
    assert cpu.get_catboost_params()["random_seed"] == 5 and cpu.catboost_deterministic
    gpu = cpu.for_trial(seed=6, device="cuda:1")
    assert gpu.get_xgboost_params()["seed"] == 6
    assert gpu.get_xgboost_params()["device"] == "cuda:1"
    assert gpu.get_catboost_params()["task_type"] == "GPU"
    assert gpu.get_catboost_params()["devices"] == "1"
    assert not gpu.catboost_deterministic
    assert gpu.get_torch_settings()["device"] == "cuda:1"


def test_lightgbm_params_make_training_bitwise_reproducible():
    import lightgbm

    rng = np.random.default_rng(0)
    features, labels = rng.normal(size=(600, 8)), rng.integers(0, 2, 600)
    params = {**ReproducibilityManager(seed=3).get_lightgbm_params(), "objective": "binary",
              "bagging_fraction": 0.7, "bagging_freq": 1, "feature_fraction": 0.7}
    predictions = [
        lightgbm.train(params, lightgbm.Dataset(features, labels), 30).predict(features).tobytes()
        for _ in range(2)
    ]
    assert predictions[0] == predictions[1]


def test_system_info_records_what_a_rerun_needs():
    info = system_info("abc123")
    assert info["python"].startswith("3.11")
    assert info["packages"]["numpy"] == np.__version__
    assert info["config_hash"] == "abc123"
    assert "available" in info["gpus"] and info["cpu_count"] >= 1
    json.dumps(info)  # JSON-serialisable, no pickle
