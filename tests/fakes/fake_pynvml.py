"""A stand-in for the ``pynvml`` module (nvidia-ml-py) with configurable GPUs and failures.

:class:`FakeNvml` has the functions, constants and ``NVMLError`` classes that the NVML backend uses,
under the same names and signatures as pynvml; each call is recorded. Any function can be made to
fail with an NVML error code, for every GPU (``FakeNvml.errors``) or for one (``FakeDevice.errors``).
Like the real library, every call but ``nvmlInit`` fails with "Uninitialized" before initialisation.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, ClassVar

NVML_SUCCESS = 0
NVML_ERROR_UNINITIALIZED = 1
NVML_ERROR_INVALID_ARGUMENT = 2
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NO_PERMISSION = 4
NVML_ERROR_NOT_FOUND = 6
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_FUNCTION_NOT_FOUND = 13
NVML_ERROR_GPU_IS_LOST = 15
NVML_ERROR_UNKNOWN = 999

NVML_TEMPERATURE_GPU = 0
NVML_CLOCK_GRAPHICS = 0
NVML_CLOCK_MEM = 2

_ERROR_STRINGS = {
    NVML_ERROR_UNINITIALIZED: "Uninitialized",
    NVML_ERROR_INVALID_ARGUMENT: "Invalid Argument",
    NVML_ERROR_NOT_SUPPORTED: "Not Supported",
    NVML_ERROR_NO_PERMISSION: "Insufficient Permissions",
    NVML_ERROR_NOT_FOUND: "Not Found",
    NVML_ERROR_DRIVER_NOT_LOADED: "Driver Not Loaded",
    NVML_ERROR_LIBRARY_NOT_FOUND: "NVML Shared Library Not Found",
    NVML_ERROR_FUNCTION_NOT_FOUND: "Function Not Found",
    NVML_ERROR_GPU_IS_LOST: "GPU is lost",
    NVML_ERROR_UNKNOWN: "Unknown Error",
}


class NVMLError(Exception):
    """As in pynvml: ``NVMLError(code)`` builds the subclass for that code, and carries ``.value``."""

    _value_class: ClassVar[dict[int, type[NVMLError]]] = {}
    value: int

    def __new__(cls, value: int) -> NVMLError:
        error_class = NVMLError._value_class.get(value, cls) if cls is NVMLError else cls
        error = Exception.__new__(error_class)
        error.value = value
        return error

    def __str__(self) -> str:
        return _ERROR_STRINGS.get(self.value, f"NVML error {self.value}")


def _error_class(name: str, code: int) -> type[NVMLError]:
    def new(cls: type[NVMLError], *args: Any) -> NVMLError:
        return NVMLError.__new__(cls, code)

    error_class = type(name, (NVMLError,), {"__new__": new})
    NVMLError._value_class[code] = error_class
    return error_class


NVMLError_Uninitialized = _error_class("NVMLError_Uninitialized", NVML_ERROR_UNINITIALIZED)
NVMLError_InvalidArgument = _error_class("NVMLError_InvalidArgument", NVML_ERROR_INVALID_ARGUMENT)
NVMLError_NotSupported = _error_class("NVMLError_NotSupported", NVML_ERROR_NOT_SUPPORTED)
NVMLError_NoPermission = _error_class("NVMLError_NoPermission", NVML_ERROR_NO_PERMISSION)
NVMLError_NotFound = _error_class("NVMLError_NotFound", NVML_ERROR_NOT_FOUND)
NVMLError_DriverNotLoaded = _error_class("NVMLError_DriverNotLoaded", NVML_ERROR_DRIVER_NOT_LOADED)
NVMLError_LibraryNotFound = _error_class("NVMLError_LibraryNotFound", NVML_ERROR_LIBRARY_NOT_FOUND)
NVMLError_FunctionNotFound = _error_class("NVMLError_FunctionNotFound", NVML_ERROR_FUNCTION_NOT_FOUND)
NVMLError_GpuIsLost = _error_class("NVMLError_GpuIsLost", NVML_ERROR_GPU_IS_LOST)
NVMLError_Unknown = _error_class("NVMLError_Unknown", NVML_ERROR_UNKNOWN)


class NVMLLibraryMismatchError(Exception):
    """pynvml's error for an unversioned function the installed driver lacks."""


@dataclass
class ProcessInfo:
    """pynvml's friendly process object: ``usedGpuMemory`` is None where the driver cannot say (WDDM)."""

    pid: int
    usedGpuMemory: int | None


@dataclass
class ProcessUtilizationSample:
    """pynvml's ``c_nvmlProcessUtilizationSample_t``: ``timeStamp`` in microseconds."""

    pid: int
    timeStamp: int
    smUtil: int
    memUtil: int = 0
    encUtil: int = 0
    decUtil: int = 0


@dataclass
class Memory:
    total: int
    free: int
    used: int


@dataclass
class Utilization:
    gpu: int
    memory: int


@dataclass
class FakeDevice:
    """One GPU, in NVML's own units (milliwatts, millijoules, bytes). Defaults: an idle RTX 4070."""

    name: str = "NVIDIA GeForce RTX 4070"
    uuid: str = "GPU-6b1d1f5e-0000-0000-0000-000000000000"
    memory_total_bytes: int = 12 * 1024**3
    memory_used_bytes: int = 512 * 1024**2
    compute_capability: tuple[int, int] = (8, 9)
    pcie_max_generation: int = 4
    pcie_max_width: int = 16
    pcie_current_generation: int = 1
    pcie_current_width: int = 16
    power_min_mw: int = 100_000
    power_max_mw: int = 220_000
    power_default_mw: int = 200_000
    power_limit_mw: int = 200_000
    utilization_gpu_percent: int = 3
    utilization_memory_percent: int = 1
    temperature_c: int = 41
    power_usage_mw: int = 18_250
    energy_total_mj: int = 123_456_789
    clock_graphics_mhz: int = 210
    clock_memory_mhz: int = 405
    fan_speed_percent: int = 30
    compute_processes: list[ProcessInfo] = field(default_factory=list)
    graphics_processes: list[ProcessInfo] = field(default_factory=list)
    process_samples: list[ProcessUtilizationSample] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)  # function name -> NVML error code, for this GPU


@dataclass(frozen=True)
class FakeHandle:
    """An opaque device handle, as NVML's are."""

    index: int


class FakeNvml:
    """The pynvml module, faked: pass an instance where the backend takes ``nvml``."""

    NVMLError = NVMLError
    NVMLError_Uninitialized = NVMLError_Uninitialized
    NVMLError_InvalidArgument = NVMLError_InvalidArgument
    NVMLError_NotSupported = NVMLError_NotSupported
    NVMLError_NoPermission = NVMLError_NoPermission
    NVMLError_NotFound = NVMLError_NotFound
    NVMLError_DriverNotLoaded = NVMLError_DriverNotLoaded
    NVMLError_LibraryNotFound = NVMLError_LibraryNotFound
    NVMLError_FunctionNotFound = NVMLError_FunctionNotFound
    NVMLError_GpuIsLost = NVMLError_GpuIsLost
    NVMLError_Unknown = NVMLError_Unknown
    NVMLLibraryMismatchError = NVMLLibraryMismatchError
    NVML_TEMPERATURE_GPU = NVML_TEMPERATURE_GPU
    NVML_CLOCK_GRAPHICS = NVML_CLOCK_GRAPHICS
    NVML_CLOCK_MEM = NVML_CLOCK_MEM

    def __init__(
        self,
        *devices: FakeDevice,
        driver_version: str = "550.54.14",
        cuda_driver_version: int = 12040,
        process_names: dict[int, str] | None = None,
        init_error: int | None = None,
        errors: dict[str, int] | None = None,
        strings_as_bytes: bool = False,
    ) -> None:
        self.devices = list(devices)
        self.driver_version = driver_version
        self.cuda_driver_version = cuda_driver_version
        self.process_names = dict(process_names or {})
        self.init_error = init_error
        self.errors = dict(errors or {})  # function name -> NVML error code, for every GPU
        self.strings_as_bytes = strings_as_bytes  # older bindings returned bytes
        self.initialised = 0  # nvmlInit minus nvmlShutdown, like NVML's reference count
        self.calls: Counter[str] = Counter()

    # -- plumbing -------------------------------------------------------------------------------

    def _enter(self, function: str, handle: FakeHandle | None = None) -> FakeDevice | None:
        self.calls[function] += 1
        if not self.initialised:
            raise NVMLError(NVML_ERROR_UNINITIALIZED)
        device = self.devices[handle.index] if handle is not None else None
        code = device.errors.get(function) if device is not None else None
        code = code if code is not None else self.errors.get(function)
        if code is not None:
            raise NVMLError(code)
        return device

    def _device(self, function: str, handle: FakeHandle) -> FakeDevice:
        device = self._enter(function, handle)
        assert device is not None
        return device

    def _string(self, text: str) -> str | bytes:
        return text.encode() if self.strings_as_bytes else text

    # -- library and system -----------------------------------------------------------------------

    def nvmlInit(self) -> None:
        self.calls["nvmlInit"] += 1
        if self.init_error is not None:
            raise NVMLError(self.init_error)
        self.initialised += 1

    def nvmlShutdown(self) -> None:
        self._enter("nvmlShutdown")
        self.initialised -= 1

    def nvmlErrorString(self, result: int) -> str:
        return _ERROR_STRINGS.get(result, "Unknown Error")

    def nvmlSystemGetDriverVersion(self) -> str | bytes:
        self._enter("nvmlSystemGetDriverVersion")
        return self._string(self.driver_version)

    def nvmlSystemGetCudaDriverVersion_v2(self) -> int:
        self._enter("nvmlSystemGetCudaDriverVersion_v2")
        return self.cuda_driver_version

    def nvmlSystemGetProcessName(self, pid: int) -> str | bytes:
        self._enter("nvmlSystemGetProcessName")
        if pid not in self.process_names:
            raise NVMLError(NVML_ERROR_NOT_FOUND)
        return self._string(self.process_names[pid])

    # -- devices ----------------------------------------------------------------------------------

    def nvmlDeviceGetCount(self) -> int:
        self._enter("nvmlDeviceGetCount")
        return len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeHandle:
        self._enter("nvmlDeviceGetHandleByIndex")
        if not 0 <= index < len(self.devices):
            raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
        code = self.devices[index].errors.get("nvmlDeviceGetHandleByIndex")  # e.g. no permission for this GPU
        if code is not None:
            raise NVMLError(code)
        return FakeHandle(index)

    def nvmlDeviceGetHandleByUUID(self, uuid: str | bytes) -> FakeHandle:
        self._enter("nvmlDeviceGetHandleByUUID")
        wanted = uuid.decode() if isinstance(uuid, bytes) else uuid
        for index, device in enumerate(self.devices):
            if device.uuid == wanted:
                return FakeHandle(index)
        raise NVMLError(NVML_ERROR_NOT_FOUND)

    def nvmlDeviceGetIndex(self, handle: FakeHandle) -> int:
        self._enter("nvmlDeviceGetIndex", handle)
        return handle.index

    def nvmlDeviceGetUUID(self, handle: FakeHandle) -> str | bytes:
        return self._string(self._device("nvmlDeviceGetUUID", handle).uuid)

    def nvmlDeviceGetName(self, handle: FakeHandle) -> str | bytes:
        return self._string(self._device("nvmlDeviceGetName", handle).name)

    def nvmlDeviceGetMemoryInfo(self, handle: FakeHandle, version: int | None = None) -> Memory:
        device = self._device("nvmlDeviceGetMemoryInfo", handle)
        used = device.memory_used_bytes
        return Memory(total=device.memory_total_bytes, free=device.memory_total_bytes - used, used=used)

    def nvmlDeviceGetCudaComputeCapability(self, handle: FakeHandle) -> tuple[int, int]:
        return self._device("nvmlDeviceGetCudaComputeCapability", handle).compute_capability

    def nvmlDeviceGetMaxPcieLinkGeneration(self, handle: FakeHandle) -> int:
        return self._device("nvmlDeviceGetMaxPcieLinkGeneration", handle).pcie_max_generation

    def nvmlDeviceGetMaxPcieLinkWidth(self, handle: FakeHandle) -> int:
        return self._device("nvmlDeviceGetMaxPcieLinkWidth", handle).pcie_max_width

    def nvmlDeviceGetCurrPcieLinkGeneration(self, handle: FakeHandle) -> int:
        return self._device("nvmlDeviceGetCurrPcieLinkGeneration", handle).pcie_current_generation

    def nvmlDeviceGetCurrPcieLinkWidth(self, handle: FakeHandle) -> int:
        return self._device("nvmlDeviceGetCurrPcieLinkWidth", handle).pcie_current_width

    def nvmlDeviceGetPowerManagementLimitConstraints(self, handle: FakeHandle) -> list[int]:
        device = self._device("nvmlDeviceGetPowerManagementLimitConstraints", handle)
        return [device.power_min_mw, device.power_max_mw]

    def nvmlDeviceGetPowerManagementDefaultLimit(self, handle: FakeHandle) -> int:
        return self._device("nvmlDeviceGetPowerManagementDefaultLimit", handle).power_default_mw

    def nvmlDeviceGetPowerManagementLimit(self, handle: FakeHandle) -> int:
        return self._device("nvmlDeviceGetPowerManagementLimit", handle).power_limit_mw

    def nvmlDeviceSetPowerManagementLimit(self, handle: FakeHandle, limit: int) -> None:
        device = self._device("nvmlDeviceSetPowerManagementLimit", handle)
        if not device.power_min_mw <= limit <= device.power_max_mw:
            raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
        device.power_limit_mw = limit

    def nvmlDeviceGetUtilizationRates(self, handle: FakeHandle) -> Utilization:
        device = self._device("nvmlDeviceGetUtilizationRates", handle)
        return Utilization(gpu=device.utilization_gpu_percent, memory=device.utilization_memory_percent)

    def nvmlDeviceGetTemperature(self, handle: FakeHandle, sensor: int) -> int:
        device = self._device("nvmlDeviceGetTemperature", handle)
        if sensor != NVML_TEMPERATURE_GPU:
            raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
        return device.temperature_c

    def nvmlDeviceGetPowerUsage(self, handle: FakeHandle) -> int:
        return self._device("nvmlDeviceGetPowerUsage", handle).power_usage_mw

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: FakeHandle) -> int:
        return self._device("nvmlDeviceGetTotalEnergyConsumption", handle).energy_total_mj

    def nvmlDeviceGetClockInfo(self, handle: FakeHandle, type: int) -> int:
        device = self._device("nvmlDeviceGetClockInfo", handle)
        if type == NVML_CLOCK_GRAPHICS:
            return device.clock_graphics_mhz
        if type == NVML_CLOCK_MEM:
            return device.clock_memory_mhz
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)

    def nvmlDeviceGetFanSpeed(self, handle: FakeHandle) -> int:
        return self._device("nvmlDeviceGetFanSpeed", handle).fan_speed_percent

    def nvmlDeviceGetComputeRunningProcesses(self, handle: FakeHandle) -> list[ProcessInfo]:
        return list(self._device("nvmlDeviceGetComputeRunningProcesses", handle).compute_processes)

    def nvmlDeviceGetGraphicsRunningProcesses(self, handle: FakeHandle) -> list[ProcessInfo]:
        return list(self._device("nvmlDeviceGetGraphicsRunningProcesses", handle).graphics_processes)

    def nvmlDeviceGetProcessUtilization(self, handle: FakeHandle, timeStamp: int) -> list[ProcessUtilizationSample]:
        """The samples newer than ``timeStamp`` (µs); "Not Found" when there are none, as NVML does."""
        device = self._device("nvmlDeviceGetProcessUtilization", handle)
        samples = [sample for sample in device.process_samples if sample.timeStamp > timeStamp]
        if not samples:
            raise NVMLError(NVML_ERROR_NOT_FOUND)
        return samples
