"""The machine a benchmark ran on, and the search space the benchmarks share."""

from __future__ import annotations

import contextlib
import os
import platform
import sqlite3
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

PACKAGES = ("cryptosweep", "optuna", "dask", "distributed", "ray", "cloudpickle")


def cpu_name() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine() -> dict[str, str]:
    """CPU, usable cores, memory, OS, Python, SQLite and the peers' versions."""
    os_name = platform.platform()
    with contextlib.suppress(OSError), open("/etc/os-release", encoding="utf-8") as f:
        for line in f:
            if line.startswith("PRETTY_NAME="):
                pretty = line.split("=", 1)[1].strip().strip('"')
                os_name = f"{pretty}, Linux {platform.release()}"
    mem = "?"
    with contextlib.suppress(OSError, ValueError, IndexError), open("/proc/meminfo",
                                                                    encoding="utf-8") as f:
        mem = f"{int(f.readline().split()[1]) / 2**20:.0f} GiB"
    versions = []
    for name in PACKAGES:
        try:
            versions.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    return {
        "cpu": cpu_name(),
        "cores": f"{len(os.sched_getaffinity(0))} usable of {os.cpu_count()}",
        "memory": mem,
        "os": os_name,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "packages": ", ".join(versions),
    }


def machine_line() -> str:
    """``Machine: ...`` as the benchmark reports print it."""
    info = machine()
    return (f"Machine: {info['cpu']}, {info['cores']} cores, {info['memory']}, {info['os']}, "
            f"Python {info['python']}, SQLite {info['sqlite']}; {info['packages']}.")


def filesystem(path: Path) -> str:
    """The file system type (and device) ``path`` lives on, from ``/proc/mounts``."""
    best, kind = "", "?"
    with contextlib.suppress(OSError), open("/proc/mounts", encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if len(parts) > 2 and str(path).startswith(parts[1]) and len(parts[1]) > len(best):
                best, kind = parts[1], f"{parts[2]} ({parts[0]})"
    return kind


def describe() -> str:
    return (f"{cpu_name()}, {os.cpu_count()} CPUs, {platform.platform()}, "
            f"Python {platform.python_version()}")


#: The search space the benchmarks share: a LightGBM entry model and the four trading
#: parameters (8 dimensions).
BENCHMARK_RANGES = {
    "lightgbm": {
        "num_leaves": {"type": "int", "low": 4, "high": 64, "log": True},
        "learning_rate": {"type": "float", "low": 0.01, "high": 0.3, "log": True},
        "min_data_in_leaf": {"type": "int", "low": 20, "high": 400, "log": True},
        "feature_fraction": {"type": "float", "low": 0.4, "high": 1.0},
    },
    "trading": {
        "threshold": {"type": "float", "low": 0.5, "high": 0.7},
        "holding_period": {"type": "int", "low": 4, "high": 48},
        "stop_loss": {"type": "float", "low": 0.01, "high": 0.08},
        "take_profit": {"type": "float", "low": 0.01, "high": 0.15},
    },
}
