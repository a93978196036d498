"""Host (psutil) and GPU (NVML) sampling into the journal while a sweep runs.

NVML numbers its devices in PCI bus order and ignores ``CUDA_VISIBLE_DEVICES``. The GPU
executor sets ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` so that the GPU index a trial records (the first
entry of its worker's ``CUDA_VISIBLE_DEVICES``) is the NVML index of its samples; each sample
also carries the device UUID.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import psutil

from cryptosweep.records.journal import Journal

log = logging.getLogger(__name__)


#: NVML clock-event ("throttle") reason bits, nvml.h ``nvmlClocksEventReason*``.
CLOCK_EVENT_REASONS = {
    0x1: "gpu_idle",
    0x2: "applications_clocks_setting",
    0x4: "sw_power_cap",
    0x8: "hw_slowdown",
    0x10: "sync_boost",
    0x20: "sw_thermal_slowdown",
    0x40: "hw_thermal_slowdown",
    0x80: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
}


def decode_clock_event_reasons(mask: int) -> list[str]:
    """Names of the reasons set in an NVML clock-event bit mask (unknown bits as hex)."""
    names = [name for bit, name in CLOCK_EVENT_REASONS.items() if mask & bit]
    unknown = mask & ~sum(CLOCK_EVENT_REASONS)
    return names + ([hex(unknown)] if unknown else [])


def clock_event_reasons(nvml: Any, handle: Any) -> list[str]:
    """Why the GPU's clocks are below their maximum right now (newer NVML calls them clock
    events, older ones throttle reasons)."""
    getter = getattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons", None)
    if getter is None:
        getter = nvml.nvmlDeviceGetCurrentClocksThrottleReasons
    return decode_clock_event_reasons(int(getter(handle)))


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


class ResourceMonitor:
    """A daemon thread that records one host sample (and one per GPU) every ``interval`` s."""

    def __init__(self, journal: Journal, interval: float = 2.0) -> None:
        self.journal, self.interval = journal, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="cryptosweep-monitor", daemon=True)
        self._nvml: Any = None
        self._gpu_handles: list[tuple[int, Any]] = []

    def start(self) -> ResourceMonitor:
        self._init_nvml()
        psutil.cpu_percent(interval=None, percpu=True)  # prime: a first call returns 0.0
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.interval + 5)
        try:
            self.sample()
        except Exception as exc:  # the last sample must not hide why the sweep stopped
            log.warning("resource sample failed: %s", exc)
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
            self.journal.set_meta(gpu_monitoring=f"off: {exc}")

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sample()
            except Exception as exc:  # monitoring must never stop a sweep
                log.warning("resource sample failed: %s", exc)

    def sample(self) -> None:
        now = time.time()
        memory = psutil.virtual_memory()
        per_core = psutil.cpu_percent(interval=None, percpu=True)  # since the last sample
        self.journal.add_resource_sample(now, "host", {
            "cpu_percent": sum(per_core) / max(1, len(per_core)),
            "cpu_percent_per_core": per_core,
            "memory_used_mib": (memory.total - memory.available) // 2**20,
            "memory_total_mib": memory.total // 2**20,
        })
        for index, handle in self._gpu_handles:
            nvml = self._nvml
            utilisation = nvml.nvmlDeviceGetUtilizationRates(handle)
            gpu_memory = nvml.nvmlDeviceGetMemoryInfo(handle)
            self.journal.add_resource_sample(now, f"gpu{index}", {
                "uuid": _text(nvml.nvmlDeviceGetUUID(handle)),
                "gpu_percent": utilisation.gpu,
                "memory_percent": utilisation.memory,
                "memory_used_mib": gpu_memory.used // 2**20,
                "memory_total_mib": gpu_memory.total // 2**20,
                "temperature_c": nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU),
                "power_w": nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0,
                "sm_clock_mhz": nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_SM),
                "clock_event_reasons": clock_event_reasons(nvml, handle),
            })
