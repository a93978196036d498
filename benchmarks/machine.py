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
