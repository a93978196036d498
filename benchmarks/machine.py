"""One line describing the machine a benchmark ran on."""

from __future__ import annotations

import os
import platform


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


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
