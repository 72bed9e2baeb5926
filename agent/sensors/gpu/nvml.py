"""NVIDIA GPUs through NVML (nvidia-ml-py), in the manner of nvitop.

NVML is imported and initialised lazily, once, under a lock. Every read goes through one query
helper that turns an unsupported or failing function into ``None`` ("not available") and logs it
once, not on every poll. No driver at all is not swallowed: it becomes one "not available"
discovery with a reason the user can act on, never a traceback.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

import psutil

from sparecycles.agent.sensors.gpu.model import (
    GpuDiscovery,
    GpuIdentity,
    GpuProcess,
    GpuSample,
    IsOwnProcess,
    PowerLimitOutcome,
    PowerLimits,
)

log = logging.getLogger(__name__)


NO_DRIVER_REASON = (
    "NVIDIA driver not found (libnvidia-ml is missing). Install the NVIDIA driver: "
    "`sudo apt install nvidia-driver` on Debian (non-free) or `sudo ubuntu-drivers install` on Ubuntu."
)
NO_BINDINGS_REASON = "The NVML bindings (Python package nvidia-ml-py) are not installed: `pip install nvidia-ml-py`."
NOT_PERMITTED_MESSAGE = "power limit: not permitted (needs root or the privileged helper)"

# NVML return codes (nvml.h; a stable C ABI). Errors are classified by code, not by class name, so
# the classification is the same for every version of the bindings.
_SUCCESS = 0  # raised by some bindings when a list query finds nothing
_ERROR_NOT_SUPPORTED = 3
_ERROR_NO_PERMISSION = 4
_ERROR_NOT_FOUND = 6
_ERROR_LIBRARY_NOT_FOUND = 12
_ERROR_FUNCTION_NOT_FOUND = 13
_ERROR_ARGUMENT_VERSION_MISMATCH = 25
_ERROR_NO_DATA = 21
_MISSING_FUNCTION = -1  # our own code: the bindings lack the function or its versioned symbol
_UNKNOWN_CODE = -2  # our own code: an error without an NVML code

# "This GPU or driver cannot tell": logged once at INFO, then quietly None.
_UNSUPPORTED = frozenset(
    {
        _ERROR_NOT_SUPPORTED,
        _ERROR_NO_PERMISSION,
        _ERROR_FUNCTION_NOT_FOUND,
        _ERROR_ARGUMENT_VERSION_MISMATCH,
        _MISSING_FUNCTION,
    }
)
# "Nothing to report right now" (e.g. no process used the GPU since the last look): not a fault.
_NO_DATA = frozenset({_SUCCESS, _ERROR_NOT_FOUND, _ERROR_NO_DATA})

_TEMPERATURE_GPU = 0  # NVML_TEMPERATURE_GPU
_CLOCK_GRAPHICS = 0  # NVML_CLOCK_GRAPHICS
_CLOCK_MEM = 2  # NVML_CLOCK_MEM
# Per-process utilisation: ask for the samples of this many microseconds before the newest one seen,
# so that a poll faster than NVML's own sampling still finds the latest reading.
_PROCESS_UTILIZATION_WINDOW_US = 2_000_000


@dataclass
class _Device:
    """A discovered GPU with its cached NVML handle (handles are looked up once, at discovery)."""

    identity: GpuIdentity
    handle: Any
    utilization_since_us: int = 0


class NvmlGpuBackend:
    """GPU discovery, telemetry and power limits through NVML.

    ``nvml`` is the pynvml module, or a stand-in with the same functions for tests; by default the
    real one is imported on first use, so that constructing the backend costs nothing.
    """

    def __init__(self, nvml: object | None = None) -> None:
        self._nvml: Any = nvml
        self._lock = threading.Lock()
        self._initialised = False
        self._discovery: GpuDiscovery | None = None
        self._devices: dict[int, _Device] = {}
        self._reported: set[tuple[str, int]] = set()

    # -- the GpuBackend interface -------------------------------------------------------------

    def discover(self) -> GpuDiscovery:
        with self._lock:
            return self._discovered()

    def sample(self, is_own_process: IsOwnProcess) -> tuple[GpuSample, ...]:
        """One reading per GPU, all taken in one pass under the lock with the handles found at discovery."""
        with self._lock:
            if not self._discovered().available:
                return ()
            return tuple(self._sample(device, time.monotonic(), is_own_process) for device in self._devices.values())

    def set_power_limit(self, index: int, watts: float | None) -> PowerLimitOutcome:
        with self._lock:
            self._discovered()
            device = self._devices.get(index)
            if device is None:
                return PowerLimitOutcome(False, f"power limit: no GPU #{index}")
            return self._set_power_limit(device, watts)

    def close(self) -> None:
        """Shut NVML down if we started it; a later call starts afresh."""
        with self._lock:
            if self._initialised:
                try:
                    self._nvml.nvmlShutdown()
                except self._nvml.NVMLError as exc:
                    log.debug("nvmlShutdown failed: %s", exc)
            self._initialised = False
            self._discovery = None
            self._devices = {}

    # -- discovery ------------------------------------------------------------------------------

    def _discovered(self) -> GpuDiscovery:
        if self._discovery is None:
            self._discovery = self._discover()
            if not self._discovery.available:
                log.info("No NVIDIA GPU available: %s", self._discovery.reason)
        return self._discovery

    def _start(self) -> str | None:
        """Import and initialise NVML; ``None`` when it runs, else why not (for the user)."""
        if self._nvml is None:
            try:
                import pynvml
            except ImportError:
                return NO_BINDINGS_REASON
            self._nvml = pynvml
        try:
            self._nvml.nvmlInit()
        except self._nvml.NVMLError as exc:
            if _code(exc) == _ERROR_LIBRARY_NOT_FOUND:
                return NO_DRIVER_REASON
            return (
                f"NVIDIA driver present but not usable ({exc}). Reboot after a driver update, or reinstall the driver."
            )
        self._initialised = True
        return None

    def _discover(self) -> GpuDiscovery:
        failure = self._start()
        if failure is not None:
            return GpuDiscovery("none", False, failure, ())
        nvml = self._nvml
        try:
            count = int(nvml.nvmlDeviceGetCount())
        except nvml.NVMLError as exc:
            return GpuDiscovery("nvml", False, f"NVML failed to list GPUs: {exc}", ())
        if count == 0:
            return GpuDiscovery("nvml", False, "The NVIDIA driver is loaded but reports no GPU.", ())
        driver_version = _text(self._query("nvmlSystemGetDriverVersion"))
        cuda_version = _cuda_version(self._query("nvmlSystemGetCudaDriverVersion_v2"))
        for index in range(count):
            device = self._discover_device(index, driver_version, cuda_version)
            if device is not None:
                self._devices[index] = device
        if not self._devices:
            return GpuDiscovery("nvml", False, f"NVML lists {count} GPU(s) but none could be read (see the log).", ())
        gpus = tuple(device.identity for device in self._devices.values())
        log.info("NVML: driver %s, CUDA %s, %s", driver_version, cuda_version, ", ".join(g.name for g in gpus))
        return GpuDiscovery("nvml", True, None, gpus)

    def _discover_device(self, index: int, driver_version: str | None, cuda_version: str | None) -> _Device | None:
        handle = self._query("nvmlDeviceGetHandleByIndex", index)
        uuid = _text(self._query("nvmlDeviceGetUUID", handle)) if handle is not None else None
        name = _text(self._query("nvmlDeviceGetName", handle)) if handle is not None else None
        if handle is None or uuid is None or name is None:
            log.warning("NVML: GPU %d left out: its handle, UUID or name cannot be read", index)
            return None
        memory = self._query("nvmlDeviceGetMemoryInfo", handle)
        capability = self._query("nvmlDeviceGetCudaComputeCapability", handle)
        pcie_generation = self._query("nvmlDeviceGetMaxPcieLinkGeneration", handle)
        if pcie_generation is None:
            pcie_generation = self._query("nvmlDeviceGetCurrPcieLinkGeneration", handle)
        pcie_width = self._query("nvmlDeviceGetMaxPcieLinkWidth", handle)
        if pcie_width is None:
            pcie_width = self._query("nvmlDeviceGetCurrPcieLinkWidth", handle)
        constraints = self._query("nvmlDeviceGetPowerManagementLimitConstraints", handle)
        min_mw, max_mw = constraints if constraints is not None else (None, None)
        identity = GpuIdentity(
            index=index,
            uuid=uuid,
            name=name,
            vram_total_bytes=_int(memory.total) if memory is not None else None,
            driver_version=driver_version,
            cuda_version=cuda_version,
            compute_capability=(int(capability[0]), int(capability[1])) if capability is not None else None,
            pcie_generation=_int(pcie_generation),
            pcie_width=_int(pcie_width),
            power_limits=PowerLimits(
                min_w=_watts(min_mw),
                default_w=_watts(self._query("nvmlDeviceGetPowerManagementDefaultLimit", handle)),
                max_w=_watts(max_mw),
                current_w=_watts(self._query("nvmlDeviceGetPowerManagementLimit", handle)),
            ),
        )
        return _Device(identity, handle)

    # -- sampling -------------------------------------------------------------------------------

    def _sample(self, device: _Device, monotonic_s: float, is_own_process: IsOwnProcess) -> GpuSample:
        handle = device.handle
        utilization = self._query("nvmlDeviceGetUtilizationRates", handle)
        memory = self._query("nvmlDeviceGetMemoryInfo", handle)
        return GpuSample(
            index=device.identity.index,
            uuid=device.identity.uuid,
            monotonic_s=monotonic_s,
            utilization_gpu_percent=_float(utilization.gpu) if utilization is not None else None,
            utilization_memory_percent=_float(utilization.memory) if utilization is not None else None,
            vram_used_bytes=_int(memory.used) if memory is not None else None,
            temperature_c=_float(self._query("nvmlDeviceGetTemperature", handle, _TEMPERATURE_GPU)),
            power_draw_w=_watts(self._query("nvmlDeviceGetPowerUsage", handle)),
            energy_total_mj=_int(self._query("nvmlDeviceGetTotalEnergyConsumption", handle)),
            clock_graphics_mhz=_int(self._query("nvmlDeviceGetClockInfo", handle, _CLOCK_GRAPHICS)),
            clock_memory_mhz=_int(self._query("nvmlDeviceGetClockInfo", handle, _CLOCK_MEM)),
            fan_speed_percent=_float(self._query("nvmlDeviceGetFanSpeed", handle)),
            foreign_processes=self._foreign_processes(device, is_own_process),
        )

    def _foreign_processes(self, device: _Device, is_own_process: IsOwnProcess) -> tuple[GpuProcess, ...]:
        """Compute and graphics processes that are not ours, one entry per pid."""
        vram_by_pid: dict[int, int | None] = {}
        for function in ("nvmlDeviceGetComputeRunningProcesses", "nvmlDeviceGetGraphicsRunningProcesses"):
            for process in self._query(function, device.handle) or ():
                pid = int(process.pid)
                if is_own_process(pid):
                    continue
                vram = _int(getattr(process, "usedGpuMemory", None))  # None on Windows WDDM
                known = vram_by_pid.get(pid)
                if known is not None:
                    vram = known if vram is None else max(known, vram)
                vram_by_pid[pid] = vram
        if not vram_by_pid:
            return ()
        utilization = self._process_utilization(device)
        return tuple(
            GpuProcess(
                pid=pid,
                name=self._process_name(pid),
                vram_used_bytes=vram_by_pid[pid],
                gpu_utilization_percent=utilization.get(pid),
            )
            for pid in sorted(vram_by_pid)
        )

    def _process_utilization(self, device: _Device) -> dict[int, float]:
        """The latest SM utilisation per pid, from NVML's per-process samples (where the GPU keeps them)."""
        samples = self._query("nvmlDeviceGetProcessUtilization", device.handle, device.utilization_since_us) or ()
        latest: dict[int, tuple[int, float]] = {}
        for sample in samples:
            timestamp_us = int(sample.timeStamp)
            pid = int(sample.pid)
            if pid not in latest or timestamp_us >= latest[pid][0]:
                latest[pid] = (timestamp_us, float(sample.smUtil))
        if latest:
            newest_us = max(timestamp_us for timestamp_us, _ in latest.values())
            device.utilization_since_us = max(0, newest_us - _PROCESS_UTILIZATION_WINDOW_US)
        return {pid: utilization for pid, (_, utilization) in latest.items()}

    def _process_name(self, pid: int) -> str:
        path = _text(self._query("nvmlSystemGetProcessName", pid))
        if path:
            return os.path.basename(path.rstrip("/")) or path
        try:
            return psutil.Process(pid).name()
        except psutil.Error:
            return f"pid {pid}"

    # -- power limits ---------------------------------------------------------------------------

    def _set_power_limit(self, device: _Device, watts: float | None) -> PowerLimitOutcome:
        limits = device.identity.power_limits
        index = device.identity.index
        if watts is None:
            target_w = limits.current_w if limits.current_w is not None else limits.default_w
            if target_w is None:
                return PowerLimitOutcome(False, f"power limit: GPU {index} reported no limit to restore")
            done = f"power limit: GPU {index} restored to {target_w:.0f} W"
        elif not math.isfinite(watts) or watts <= 0:
            return PowerLimitOutcome(False, f"power limit: {watts} W is not a power limit")
        else:
            target_w = watts
            if limits.min_w is not None and target_w < limits.min_w:
                target_w = limits.min_w
            if limits.max_w is not None and target_w > limits.max_w:
                target_w = limits.max_w
            done = f"power limit: GPU {index} set to {target_w:.0f} W"
            if target_w != watts:
                done += f" (clamped: {watts:.0f} W asked, the GPU allows {_range(limits)})"
        try:
            self._nvml.nvmlDeviceSetPowerManagementLimit(device.handle, round(target_w * 1000))
        except self._nvml.NVMLError as exc:
            code = _code(exc)
            if code == _ERROR_NO_PERMISSION:
                return PowerLimitOutcome(False, NOT_PERMITTED_MESSAGE)
            if code == _ERROR_NOT_SUPPORTED:
                return PowerLimitOutcome(False, f"power limit: not supported on GPU {index}")
            return PowerLimitOutcome(False, f"power limit: NVML refused {target_w:.0f} W on GPU {index} ({exc})")
        log.info("%s", done)
        return PowerLimitOutcome(True, done)

    # -- the one query helper -------------------------------------------------------------------

    def _query(self, function: str, *args: Any) -> Any:
        """Call one NVML function: its value (bytes decoded), or ``None`` where NVML cannot tell.

        Each function that is unsupported here is logged once; other failures once per function and
        error, so that polling never floods the log.
        """
        nvml = self._nvml
        call = getattr(nvml, function, None)
        if call is None:
            self._report(function, _MISSING_FUNCTION, "not in these NVML bindings")
            return None
        try:
            value = call(*args)
        except nvml.NVMLError as exc:
            self._report(function, _code(exc), str(exc))
            return None
        except getattr(nvml, "NVMLLibraryMismatchError", ()) as exc:  # an unversioned call the driver lacks
            self._report(function, _MISSING_FUNCTION, str(exc))
            return None
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else value

    def _report(self, function: str, code: int, message: str) -> None:
        """Log a failed query once: per function when unsupported, per function and error otherwise."""
        if code in _UNSUPPORTED:
            key, level, text = (
                (function, _MISSING_FUNCTION),
                logging.INFO,
                "%s is not available on this GPU or driver (%s)",
            )
        elif code in _NO_DATA:
            key, level, text = (function, code), logging.DEBUG, "%s has no data (%s)"
        else:
            key, level, text = (function, code), logging.WARNING, "%s failed (%s); reported as not available"
        if key not in self._reported:
            self._reported.add(key)
            log.log(level, "NVML: " + text, function, message)


def _range(limits: PowerLimits) -> str:
    low = f"{limits.min_w:.0f}" if limits.min_w is not None else "?"
    high = f"{limits.max_w:.0f}" if limits.max_w is not None else "?"
    return f"{low}–{high} W"


def _code(exc: BaseException) -> int:
    value = getattr(exc, "value", None)
    return value if isinstance(value, int) else _UNKNOWN_CODE


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _watts(milliwatts: Any) -> float | None:
    return None if milliwatts is None else int(milliwatts) / 1000


def _cuda_version(value: Any) -> str | None:
    """NVML's integer CUDA version (12040) as people write it ("12.4")."""
    if value is None:
        return None
    number = int(value)
    return f"{number // 1000}.{number % 1000 // 10}"


# The foundation's name for the same class: the daemon, doctor and tests discover GPUs through it.
NvmlGpuInventory = NvmlGpuBackend
