"""What a run records of the machine it ran on: package versions, CPU, GPUs and driver (NVML),
which frameworks can use a GPU, tracked environment variables and the git commit.

Kept apart from :mod:`cryptosweep.core.reproducibility` (seeding and determinism only), which every
worker imports: probing frameworks here imports the model adapters, and that must not happen
for each trial.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

from cryptosweep.core.redaction import MASK, redact, redact_url, split_url

TRACKED_PACKAGES = (
    "cryptosweep", "numpy", "pandas", "scipy", "torch", "lightgbm", "xgboost", "catboost",
    "optuna", "dask", "distributed", "dask-cuda", "papermill", "nbconvert", "plotly",
    "pydantic", "nvidia-ml-py", "psutil",
)
TRACKED_ENV_PREFIXES = (
    "CUDA_", "CUBLAS_", "CUDNN_", "NVIDIA_", "OMP_", "MKL_", "OPENBLAS_", "PYTHONHASHSEED",
    "NUMEXPR_", "DASK_", "LIGHTGBM_", "XGBOOST_",
)
#: Parts of a variable's name that say it may hold a secret: never recorded, whatever prefix.
SECRET_NAME_PARTS = ("TOKEN", "SECRET", "PASS", "PWD", "CREDENTIAL", "AUTH", "PRIVATE", "KEY",
                     "COOKIE", "SESSION", "BEARER", "SIGNATURE", "WEBHOOK", "NOTIFY")
#: A value that names a secret inside itself (``host=h password=...``, ``token: ...``): never
#: recorded, whatever the variable's name.
_SECRET_IN_VALUE = re.compile(r"(pass|pwd|token|secret|key|auth|credential)\w*\s*[=:]", re.I)

_T = TypeVar("_T")


def _recorded_value(value: str) -> str:
    """A tracked variable's value as ``gpu_repro_*.json`` records it: never credentials before a
    host (everything up to the last ``@``, with a scheme or without: ``alice:pw@sched:8786``),
    never a URL's user, password, path or query (a dashboard link with a token), never a value
    that names a secret inside it (``host=db password=...``)."""
    if "://" not in value and _SECRET_IN_VALUE.search(value):  # a URL: redacted below
        return MASK
    if "@" not in value:
        return redact(value)
    scheme, _, host, _ = split_url(value)
    return redact_url(value) if scheme else f"{MASK}@{host}"


def package_versions(names: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str | None]:
    """Installed version of each distribution (``None`` when absent)."""
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


def _native_stderr(probe: Callable[[], _T]) -> tuple[_T, str]:
    """``probe()`` with file descriptor 2 sent to a temporary file, and what a native library
    wrote there (stripped). For a probe in the CLI's own thread: any other thread's output to
    fd 2 in that moment would be caught too."""
    sys.stderr.flush()
    with tempfile.TemporaryFile() as sink:
        saved = os.dup(2)
        try:
            os.dup2(sink.fileno(), 2)
            result = probe()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        sink.seek(0)
        return result, sink.read().decode("utf-8", "replace").strip()


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

        # CatBoost's C++ writes why it found no device straight to file descriptor 2 ("Error
        # 35 (CUDA driver version is insufficient ...) ignored while obtaining device count"),
        # a stray line under the report: the reason goes into the report instead.
        count, said = _native_stderr(lambda: int(get_gpu_device_count()))
        reason = "no CUDA device" + (f": {said.splitlines()[-1]}" if said else "")
        support["catboost"] = {"gpu": count > 0, "devices": count,
                               "why_not": None if count else reason,
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


def system_info(config_hash: str | None = None) -> dict[str, Any]:
    """Everything needed to reproduce a run: versions, CPU, GPUs, env vars, commit, and the
    hash of what in the config decides the results
    (:meth:`~cryptosweep.core.config.SweepConfig.results_hash`)."""
    # torch is described where the process uses it (a sweep with a torch model imports it);
    # importing it only to describe it costs seconds per process. Its version is in packages.
    torch = sys.modules.get("torch")
    if torch is None:
        torch_info: dict[str, Any] = {"imported": False}
    else:
        torch_info = {
            "imported": True,
            "cuda_available": torch.cuda.is_available(),
            "cuda_version": torch.version.cuda,
            "cudnn_version": torch.backends.cudnn.version() if torch.cuda.is_available() else None,
            "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        }
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
            key: _recorded_value(value) for key, value in sorted(os.environ.items())
            if key.startswith(TRACKED_ENV_PREFIXES)
            and not any(part in key.upper() for part in SECRET_NAME_PARTS)
        },
        "git_commit": git_commit(),
        "config_hash": config_hash,
    }
