"""Whether each library can use a GPU here (probes, cached per process). The adapters call them
through this module, so that tests can stand in for a GPU."""

from __future__ import annotations

import functools

import numpy as np


@functools.cache
def lightgbm_opencl_available() -> bool:
    """Whether LightGBM's OpenCL learner runs here (a one-round train on 20 rows; cached)."""
    import lightgbm

    x = np.arange(40, dtype="float64").reshape(20, 2)
    y = np.arange(20, dtype="float64") % 2
    params = {
        "device_type": "gpu", "objective": "binary", "verbosity": -1, "num_threads": 1,
        "min_data_in_leaf": 1, "min_data_in_bin": 1,
    }  # fmt: skip
    try:
        lightgbm.train(params, lightgbm.Dataset(x, label=y, params={"verbosity": -1}), 1)
    except (lightgbm.basic.LightGBMError, OSError, RuntimeError):
        return False
    return True


@functools.cache
def catboost_gpu_count() -> int:
    """Number of CUDA devices CatBoost sees (cached)."""
    try:
        from catboost.utils import get_gpu_device_count

        return int(get_gpu_device_count())
    except Exception:  # any failure means no usable GPU
        return 0


@functools.cache
def torch_cuda_available() -> bool:
    """Whether this torch build sees a CUDA device (cached)."""
    import torch

    return bool(torch.cuda.is_available())
