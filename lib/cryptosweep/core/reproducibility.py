"""Seeding, determinism switches and per-trial seed derivation (nothing else: what a run
records of its machine is :mod:`cryptosweep.execution.environment`).

Every random draw in cryptosweep comes from a generator seeded by :func:`derive_seed`, which
hashes the master seed and a tuple of keys with BLAKE2b: stable across processes, platforms and
Python versions (unlike ``hash()``, which is salted per process).

:func:`setup_crypto_gpu_reproducibility` seeds the global generators of Python, NumPy and
PyTorch for code that still uses them (notebooks, third-party code), switches PyTorch to
deterministic algorithms, and returns a :class:`ReproducibilityManager` that hands each
framework the parameters that make it deterministic on CPU or GPU.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

SEED_BITS = 31  # every framework accepts a non-negative int32 seed (LightGBM's is the narrowest)
# cuBLAS deterministic workspace (CUDA >= 10.2); only effective if set before CUDA starts
CUBLAS_WORKSPACE = ":4096:8"


def derive_seed(master_seed: int, *keys: object) -> int:
    """Return a seed in ``[0, 2**31)`` derived from ``master_seed`` and ``keys``.

    The same inputs give the same seed in every process and on every platform; different key
    tuples give independent-looking seeds. Keys are rendered with ``repr`` of ints/strings only,
    so ``derive_seed(1, "trial", 3)`` and ``derive_seed(1, "trial", "3")`` differ.
    """
    if isinstance(master_seed, bool) or not isinstance(master_seed, int | np.integer):
        raise TypeError(f"master_seed must be an int, got {type(master_seed).__name__}")
    for key in keys:
        if not isinstance(key, str | int | np.integer) or isinstance(key, bool):
            raise TypeError(f"seed keys must be str or int, got {type(key).__name__}: {key!r}")
    material = json.dumps([int(master_seed), *[k if isinstance(k, str) else int(k) for k in keys]])
    digest = hashlib.blake2b(material.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> (64 - SEED_BITS)


def seeded_rng(master_seed: int, *keys: object) -> np.random.Generator:
    """A NumPy ``Generator`` (PCG64) seeded by ``derive_seed(master_seed, *keys)``."""
    return np.random.default_rng(derive_seed(master_seed, *keys))


@dataclass
class ReproducibilityManager:
    """Framework parameters for one seed, on CPU or a CUDA device.

    ``device`` is ``"cpu"`` or ``"cuda"`` / ``"cuda:N"``; ``threads`` pins the number of CPU
    threads of the tree learners (LightGBM's sums depend on the thread count).
    ``memory_fraction`` is the share of a GPU's memory its worker process may use
    (``gpu_settings.memory_fraction``), shared by the ``concurrent_trials`` trials that run on
    it at once (``gpu_settings.trials_per_gpu``); both only matter on a GPU.
    """

    seed: int
    deterministic: bool = True
    device: str = "cpu"
    threads: int = 1
    memory_fraction: float = 1.0
    concurrent_trials: int = 1
    not_set: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def on_gpu(self) -> bool:
        return self.device.startswith("cuda")

    @property
    def gpu_index(self) -> int:
        return int(self.device.split(":", 1)[1]) if ":" in self.device else 0

    def for_trial(self, seed: int, device: str | None = None) -> ReproducibilityManager:
        """The same switches for another seed (and optionally another device)."""
        return ReproducibilityManager(
            seed=seed, deterministic=self.deterministic, device=device or self.device,
            threads=self.threads, memory_fraction=self.memory_fraction,
            concurrent_trials=self.concurrent_trials,
        )

    def get_lightgbm_params(self) -> dict[str, Any]:
        """LightGBM: ``seed`` (which seeds its bagging/feature/data RNGs), ``deterministic`` and
        ``force_row_wise`` (same histograms whatever the data layout), fixed ``num_threads``.

        LightGBM's PyPI wheel has only the OpenCL GPU learner; device selection comes with the
        model adapters, so this always returns the CPU learner's parameters.
        """
        return {
            "seed": self.seed,
            "deterministic": self.deterministic,
            "force_row_wise": True,
            "num_threads": self.threads,
            "device_type": "cpu",
            "verbosity": -1,
        }

    def get_xgboost_params(self) -> dict[str, Any]:
        """XGBoost: ``seed``, ``tree_method="hist"`` and ``device`` (``cpu`` or ``cuda:N``)."""
        return {
            "seed": self.seed,
            "tree_method": "hist",
            "device": f"cuda:{self.gpu_index}" if self.on_gpu else "cpu",
            "nthread": self.threads,
            "verbosity": 0,
        }

    def get_catboost_params(self) -> dict[str, Any]:
        """CatBoost: ``random_seed``, ``task_type`` and ``thread_count``; on a GPU also
        ``gpu_ram_part``, this trial's share of the worker's memory fraction.

        CatBoost's GPU learner is not bitwise deterministic (its reductions run in parallel in a
        non-fixed order); :attr:`catboost_deterministic` says so and the run records it in its
        environment file rather than hiding it.
        """
        params: dict[str, Any] = {
            "random_seed": self.seed,
            "thread_count": self.threads,
            "allow_writing_files": False,
            "verbose": False,
        }
        if self.on_gpu:
            params.update(task_type="GPU", devices=str(self.gpu_index),
                          gpu_ram_part=self.memory_fraction / self.concurrent_trials)
        else:
            params["task_type"] = "CPU"
        return params

    @property
    def catboost_deterministic(self) -> bool:
        """Whether CatBoost is bitwise reproducible on this device (CPU yes, GPU no)."""
        return not self.on_gpu

    def get_torch_settings(self) -> dict[str, Any]:
        """PyTorch: device, seed, the determinism switches to apply before training, and the
        per-process memory fraction applied on a GPU."""
        return {
            "device": self.device,
            "seed": self.seed,
            "use_deterministic_algorithms": self.deterministic,
            "cudnn_deterministic": self.deterministic,
            "cudnn_benchmark": False,
            "num_threads": self.threads,
            "memory_fraction": self.memory_fraction,
            "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
        }


def setup_crypto_gpu_reproducibility(
    seed: int, deterministic: bool = True, device: str | None = None, threads: int = 1,
    seed_torch: bool = True,
) -> ReproducibilityManager:
    """Seed Python, NumPy and PyTorch, switch on determinism, and return the manager.

    Sets ``CUBLAS_WORKSPACE_CONFIG`` (only effective before CUDA initialises, so this should run
    first in a process). ``PYTHONHASHSEED`` cannot be changed after interpreter start: if it is
    not set to a fixed value it is listed in ``manager.not_set``. cryptosweep itself never relies
    on ``hash()``, so this only matters for user code.

    ``seed_torch=False`` (a sweep without a torch model) leaves PyTorch alone unless it is
    already imported: importing it and switching on its deterministic algorithms costs seconds
    per process, and the torch adapter seeds and configures torch itself before every fit.
    """
    manager = ReproducibilityManager(seed=int(seed), deterministic=deterministic, threads=threads)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    if os.environ.get("PYTHONHASHSEED") in (None, "", "random"):
        manager.not_set.append("PYTHONHASHSEED (fixed only at interpreter start)")
    random.seed(seed)
    np.random.seed(derive_seed(seed, "numpy-global"))
    if not seed_torch and "torch" not in sys.modules:
        manager.device = device or "cpu"
        manager.notes.append("torch not imported: no model of this sweep uses it")
        return manager
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a pinned dependency
        manager.not_set.append("torch (not installed)")
        return manager
    torch.manual_seed(seed)
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.manual_seed_all(seed)
    torch.use_deterministic_algorithms(deterministic, warn_only=False)
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = False
    manager.device = device or ("cuda:0" if cuda else "cpu")
    if manager.on_gpu:
        manager.notes.append("CatBoost task_type=GPU is not bitwise deterministic")
    return manager
