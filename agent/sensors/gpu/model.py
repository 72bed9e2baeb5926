"""What the agent knows about each NVIDIA GPU: immutable readings with their units in the names.

Every reading a GPU or driver may not support is ``None`` ("not available"), never a guess.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from sparecycles.control.models import GpuBackendKind


@dataclass(frozen=True)
class PowerLimits:
    """Board power limits in watts, as NVML reports them (None where the GPU does not say)."""

    min_w: float | None = None
    default_w: float | None = None
    max_w: float | None = None
    current_w: float | None = None


@dataclass(frozen=True)
class GpuIdentity:
    """One GPU's static description: read once at discovery."""

    index: int
    uuid: str
    name: str
    vram_total_bytes: int | None = None
    driver_version: str | None = None
    cuda_version: str | None = None  # what the driver supports, e.g. "12.4"
    compute_capability: tuple[int, int] | None = None
    pcie_generation: int | None = None
    pcie_width: int | None = None
    power_limits: PowerLimits = PowerLimits()


@dataclass(frozen=True)
class GpuProcess:
    """A process using a GPU that is not one of our jobs."""

    pid: int
    name: str
    vram_used_bytes: int | None = None
    gpu_utilization_percent: float | None = None  # where the driver reports per-process use


@dataclass(frozen=True)
class GpuSample:
    """One reading of one GPU."""

    index: int
    uuid: str
    monotonic_s: float  # when it was taken (time.monotonic)
    utilization_gpu_percent: float | None = None
    utilization_memory_percent: float | None = None
    vram_used_bytes: int | None = None
    temperature_c: float | None = None
    power_draw_w: float | None = None
    energy_total_mj: int | None = None  # NVML's total-energy counter (millijoules since driver load)
    clock_graphics_mhz: int | None = None
    clock_memory_mhz: int | None = None
    fan_speed_percent: float | None = None
    foreign_processes: tuple[GpuProcess, ...] = ()


@dataclass(frozen=True)
class GpuDiscovery:
    """The result of looking for GPUs: the backend's state and the GPUs it found."""

    backend: GpuBackendKind
    available: bool
    reason: str | None
    gpus: tuple[GpuIdentity, ...]


@dataclass(frozen=True)
class PowerLimitOutcome:
    """What happened when we asked for a power limit: applied, or why not ("not permitted")."""

    applied: bool
    message: str


IsOwnProcess = Callable[[int], bool]


class GpuBackend(Protocol):
    """NVML, the simulated GPUs, or a test fake: one interface for all."""

    def discover(self) -> GpuDiscovery: ...

    def sample(self, is_own_process: IsOwnProcess) -> tuple[GpuSample, ...]:
        """One reading per discovered GPU; processes for which ``is_own_process`` is true are left out."""
        ...

    def set_power_limit(self, index: int, watts: float | None) -> PowerLimitOutcome:
        """Set the board power limit; ``None`` restores the limit found at discovery."""
        ...

    def close(self) -> None: ...


# Kept for the foundation's callers: anything that can discover GPUs.
class GpuInventory(Protocol):
    def discover(self) -> GpuDiscovery: ...
