"""GPU telemetry: NVML (nvidia-ml-py) on real machines, a simulated backend for tests and demos."""

from sparecycles.agent.sensors.gpu.model import (
    GpuBackend,
    GpuDiscovery,
    GpuIdentity,
    GpuInventory,
    GpuProcess,
    GpuSample,
    IsOwnProcess,
    PowerLimitOutcome,
    PowerLimits,
)
from sparecycles.agent.sensors.gpu.nvml import NO_DRIVER_REASON, NvmlGpuBackend, NvmlGpuInventory
from sparecycles.agent.sensors.gpu.simulated import SimulatedGpu, SimulatedGpuBackend

__all__ = [
    "NO_DRIVER_REASON",
    "GpuBackend",
    "GpuDiscovery",
    "GpuIdentity",
    "GpuInventory",
    "GpuProcess",
    "GpuSample",
    "IsOwnProcess",
    "NvmlGpuBackend",
    "NvmlGpuInventory",
    "PowerLimitOutcome",
    "PowerLimits",
    "SimulatedGpu",
    "SimulatedGpuBackend",
]
