"""Host (psutil) and GPU (NVML) sampling into the journal while a sweep runs.

NVML numbers its devices physically and ignores ``CUDA_VISIBLE_DEVICES``; samples are keyed by
the NVML index and the device UUID so they can be matched with the trials' devices.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import psutil

from cryptosweep.store import TrialStore

log = logging.getLogger(__name__)


class ResourceMonitor:
    """A daemon thread that records one host sample (and one per GPU) every ``interval`` s."""

    def __init__(self, store: TrialStore, interval: float = 5.0) -> None:
        self.store, self.interval = store, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="cryptosweep-monitor", daemon=True)
        self._nvml: Any = None
        self._gpu_handles: list[tuple[int, Any]] = []

    def start(self) -> ResourceMonitor:
        self._init_nvml()
        psutil.cpu_percent(interval=None)  # prime: the first call always returns 0.0
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.interval + 5)
        self.sample()
        if self._nvml is not None:
            self._nvml.nvmlShutdown()
            self._nvml = None

    def _init_nvml(self) -> None:
        try:
            import pynvml

            pynvml.nvmlInit()
            self._gpu_handles = [
                (index, pynvml.nvmlDeviceGetHandleByIndex(index))
                for index in range(pynvml.nvmlDeviceGetCount())
            ]
            self._nvml = pynvml
        except Exception as exc:  # no driver / library: host figures only, said once
            log.info("GPU monitoring off (%s); recording host CPU and memory only", exc)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sample()
            except Exception as exc:  # monitoring must never stop a sweep
                log.warning("resource sample failed: %s", exc)

    def sample(self) -> None:
        now = time.time()
        memory = psutil.virtual_memory()
        self.store.add_resource_sample(now, "host", {
            "cpu_percent": psutil.cpu_percent(interval=None),
            "memory_used_mib": (memory.total - memory.available) // 2**20,
            "memory_total_mib": memory.total // 2**20,
        })
        for index, handle in self._gpu_handles:
            nvml = self._nvml
            utilisation = nvml.nvmlDeviceGetUtilizationRates(handle)
            gpu_memory = nvml.nvmlDeviceGetMemoryInfo(handle)
            self.store.add_resource_sample(now, f"gpu{index}", {
                "gpu_percent": utilisation.gpu,
                "memory_used_mib": gpu_memory.used // 2**20,
                "memory_total_mib": gpu_memory.total // 2**20,
                "temperature_c": nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU),
                "power_w": nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0,
            })
