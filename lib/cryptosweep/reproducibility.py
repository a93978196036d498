"""Seeding, determinism switches, per-trial seed derivation and environment capture.

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
import platform
import random
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

SEED_BITS = 31  # every framework accepts a non-negative int32 seed (LightGBM's is the narrowest)
# cuBLAS deterministic workspace (CUDA >= 10.2); only effective if set before CUDA starts
CUBLAS_WORKSPACE = ":4096:8"

TRACKED_PACKAGES = (
    "cryptosweep", "numpy", "pandas", "scipy", "torch", "lightgbm", "xgboost", "catboost",
    "optuna", "dask", "distributed", "dask-cuda", "papermill", "nbconvert", "plotly",
    "pydantic", "nvidia-ml-py", "psutil",
)
TRACKED_ENV_PREFIXES = (
    "CUDA_", "CUBLAS_", "CUDNN_", "NVIDIA_", "OMP_", "MKL_", "OPENBLAS_", "PYTHONHASHSEED",
    "NUMEXPR_", "DASK_", "LIGHTGBM_", "XGBOOST_",
)


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
    """

    seed: int
    deterministic: bool = True
    device: str = "cpu"
    threads: int = 1
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
            threads=self.threads,
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
        """CatBoost: ``random_seed``, ``task_type`` and ``thread_count``.

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
            params.update(task_type="GPU", devices=str(self.gpu_index))
        else:
            params["task_type"] = "CPU"
        return params

    @property
    def catboost_deterministic(self) -> bool:
        """Whether CatBoost is bitwise reproducible on this device (CPU yes, GPU no)."""
        return not self.on_gpu

    def get_torch_settings(self) -> dict[str, Any]:
        """PyTorch: device, seed and the determinism switches to apply before training."""
        return {
            "device": self.device,
            "seed": self.seed,
            "use_deterministic_algorithms": self.deterministic,
            "cudnn_deterministic": self.deterministic,
            "cudnn_benchmark": False,
            "num_threads": self.threads,
            "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
        }


def setup_crypto_gpu_reproducibility(
    seed: int, deterministic: bool = True, device: str | None = None, threads: int = 1
) -> ReproducibilityManager:
    """Seed Python, NumPy and PyTorch, switch on determinism, and return the manager.

    Sets ``CUBLAS_WORKSPACE_CONFIG`` (only effective before CUDA initialises, so this should run
    first in a process). ``PYTHONHASHSEED`` cannot be changed after interpreter start: if it is
    not set to a fixed value it is listed in ``manager.not_set``. cryptosweep itself never relies
    on ``hash()``, so this only matters for user code.
    """
    manager = ReproducibilityManager(seed=int(seed), deterministic=deterministic, threads=threads)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    if os.environ.get("PYTHONHASHSEED") in (None, "", "random"):
        manager.not_set.append("PYTHONHASHSEED (fixed only at interpreter start)")
    random.seed(seed)
    np.random.seed(derive_seed(seed, "numpy-global"))
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


# --------------------------------------------------------------------------- environment capture


def config_hash(config_dict: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of a config (sorted keys, no whitespace)."""
    canonical = json.dumps(config_dict, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def package_versions(names: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def gpu_info() -> dict[str, Any]:
    """GPUs, driver and CUDA versions through NVML; ``available: False`` and why otherwise."""
    try:
        import pynvml
    except ImportError:
        return {"available": False, "reason": "nvidia-ml-py is not installed", "devices": []}
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return {"available": False, "reason": f"NVML: {exc}", "devices": []}
    try:
        devices = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            devices.append({
                "index": index,
                "name": _text(pynvml.nvmlDeviceGetName(handle)),
                "uuid": _text(pynvml.nvmlDeviceGetUUID(handle)),
                "memory_total_mib": memory.total // 2**20,
                "memory_free_mib": memory.free // 2**20,
            })
        cuda_version = pynvml.nvmlSystemGetCudaDriverVersion()
        return {
            "available": bool(devices),
            "reason": None if devices else "NVML reports no devices",
            "driver_version": _text(pynvml.nvmlSystemGetDriverVersion()),
            "cuda_driver_version": f"{cuda_version // 1000}.{cuda_version % 1000 // 10}",
            "devices": devices,
        }
    finally:
        pynvml.nvmlShutdown()


def framework_gpu_support() -> dict[str, dict[str, Any]]:
    """Whether each model framework can use a GPU here, and why not."""
    support: dict[str, dict[str, Any]] = {}
    try:
        import torch

        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        support["torch"] = {"gpu": count > 0, "devices": count, "cuda": torch.version.cuda,
                            "why_not": None if count else "no CUDA device or a CPU build"}
    except ImportError:  # pragma: no cover
        support["torch"] = {"gpu": False, "why_not": "not installed"}
    try:
        import xgboost

        built = bool(xgboost.build_info().get("USE_CUDA"))
        usable = built and support["torch"]["gpu"]
        support["xgboost"] = {"gpu": usable, "built_with_cuda": built,
                              "why_not": None if usable else (
                                  "no CUDA device" if built else "built without CUDA")}
    except ImportError:  # pragma: no cover
        support["xgboost"] = {"gpu": False, "why_not": "not installed"}
    try:
        from catboost.utils import get_gpu_device_count

        count = int(get_gpu_device_count())
        support["catboost"] = {"gpu": count > 0, "devices": count,
                               "why_not": None if count else "no CUDA device",
                               "deterministic_on_gpu": False}
    except ImportError:  # pragma: no cover
        support["catboost"] = {"gpu": False, "why_not": "not installed"}
    from cryptosweep.trading.models import lightgbm_opencl_available

    opencl = bool(lightgbm_opencl_available())
    support["lightgbm"] = {"gpu": opencl, "learner": "OpenCL" if opencl else "CPU",
                           "why_not": None if opencl else (
                               "the PyPI wheel has only the OpenCL learner and no OpenCL "
                               "device was found")}
    return support


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def git_commit(path: Path | None = None) -> str | None:
    """The commit of the repository holding ``path`` (default: this package), with ``-dirty``."""
    where = path or Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=10
        )
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=where, capture_output=True, text=True, timeout=10,
        )
        return commit.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def system_info(config_dict: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything needed to reproduce a run: versions, CPU, GPUs, env vars, commit, config hash."""
    try:
        import torch

        torch_info = {
            "cuda_available": torch.cuda.is_available(),
            "cuda_version": torch.version.cuda,
            "cudnn_version": torch.backends.cudnn.version() if torch.cuda.is_available() else None,
            "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        }
    except ImportError:  # pragma: no cover
        torch_info = {"cuda_available": False}
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "cpu_count": os.cpu_count(),
        "packages": package_versions(),
        "torch": torch_info,
        "gpus": gpu_info(),
        "environment": {
            key: value for key, value in sorted(os.environ.items())
            if key.startswith(TRACKED_ENV_PREFIXES)
        },
        "git_commit": git_commit(),
        "config_hash": config_hash(config_dict) if config_dict is not None else None,
    }
