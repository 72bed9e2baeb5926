"""Simulated GPUs for tests and demos: scriptable, thread-safe, and plainly labelled SIMULATED.

Each GPU is described by a :class:`SimulatedGpu` (a JSON-able record); ``script()`` changes what later
samples return, and the energy counter integrates the power drawn over monotonic time, capped by the
power limit, as a real board's counter would.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final

from sparecycles.agent.sensors.gpu.model import (
    GpuDiscovery,
    GpuIdentity,
    GpuProcess,
    GpuSample,
    IsOwnProcess,
    PowerLimitOutcome,
    PowerLimits,
)

SIMULATED = "SIMULATED"
DRIVER_VERSION = "simulated"
NOT_PERMITTED_MESSAGE = "power limit: not permitted (needs root or the privileged helper)"
_GIB = 1024**3
_MIB = 1024**2


class _Unchanged(Enum):
    UNCHANGED = "unchanged"


UNCHANGED: Final = _Unchanged.UNCHANGED

# The readings a script may change; everything else describes the board and is fixed at creation.
SCRIPTABLE_FIELDS = frozenset(
    {
        "utilization_gpu_percent",
        "utilization_memory_percent",
        "vram_used_bytes",
        "temperature_c",
        "power_draw_w",
        "clock_graphics_mhz",
        "clock_memory_mhz",
        "fan_speed_percent",
        "foreign_processes",
    }
)


@dataclass(frozen=True)
class SimulatedGpu:
    """One simulated GPU: the board (fixed) and what it reads now (scriptable). Defaults: an idle mid-range card.

    ``power_draw_w`` is what the work on it would draw; a sample reports it capped by ``power_limit_w``.
    A reading set to ``None`` is reported as not available, as an unsupported NVML function would be.
    """

    name: str
    uuid: str
    vram_total_bytes: int = 12 * _GIB
    compute_capability: tuple[int, int] = (8, 9)
    cuda_version: str = "12.4"
    pcie_generation: int = 4
    pcie_width: int = 16
    power_limit_min_w: float = 100.0
    power_limit_default_w: float = 200.0
    power_limit_max_w: float = 220.0
    power_limit_w: float = 200.0
    utilization_gpu_percent: float | None = 1.0
    utilization_memory_percent: float | None = 1.0
    vram_used_bytes: int | None = 420 * _MIB
    temperature_c: float | None = 38.0
    power_draw_w: float | None = 17.0
    clock_graphics_mhz: int | None = 210
    clock_memory_mhz: int | None = 405
    fan_speed_percent: float | None = 30.0
    foreign_processes: tuple[GpuProcess, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able description (tuples become lists), the inverse of :meth:`from_dict`."""
        data = dataclasses.asdict(self)
        data["compute_capability"] = list(self.compute_capability)
        data["foreign_processes"] = [dataclasses.asdict(process) for process in self.foreign_processes]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SimulatedGpu:
        """Build from a JSON description; ``ValueError`` names an unknown field or a bad value."""
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown simulated-GPU field(s): {', '.join(unknown)}")
        values = dict(data)
        try:
            if "compute_capability" in values:
                major, minor = values["compute_capability"]
                values["compute_capability"] = (int(major), int(minor))
            if "foreign_processes" in values:
                values["foreign_processes"] = _processes(values["foreign_processes"])
            gpu = cls(**values)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"bad simulated-GPU description: {exc}") from exc
        gpu.validate()
        return gpu

    def validate(self) -> None:
        """Refuse a description no GPU could have (``ValueError`` with the reason)."""
        if SIMULATED not in self.name:
            raise ValueError(f"a simulated GPU's name must contain {SIMULATED}: {self.name!r}")
        if not self.power_limit_min_w <= self.power_limit_w <= self.power_limit_max_w:
            raise ValueError(
                f"power limit {self.power_limit_w} W outside {self.power_limit_min_w}–{self.power_limit_max_w} W"
            )
        for name in ("utilization_gpu_percent", "utilization_memory_percent", "fan_speed_percent"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= 100:
                raise ValueError(f"{name} must be within 0–100, not {value}")
        temperature = self.temperature_c  # None: no reading, as a GPU without a sensor
        valid = isinstance(temperature, int | float) and math.isfinite(temperature) and -50 <= temperature <= 150
        if temperature is not None and not valid:
            # Checked like the rest: a temperature of "hot" was kept, and then every decision raised TypeError.
            raise ValueError(f"temperature_c must be a number of degrees from -50 to 150, not {temperature!r}")
        for name in ("power_draw_w", "vram_used_bytes", "clock_graphics_mhz", "clock_memory_mhz"):
            value = getattr(self, name)
            if value is not None and (not math.isfinite(value) or value < 0):
                raise ValueError(f"{name} must be a non-negative number, not {value}")
        if self.vram_used_bytes is not None and self.vram_used_bytes > self.vram_total_bytes:
            raise ValueError(f"vram_used_bytes {self.vram_used_bytes} exceeds vram_total_bytes {self.vram_total_bytes}")

    def identity(self, index: int) -> GpuIdentity:
        return GpuIdentity(
            index=index,
            uuid=self.uuid,
            name=self.name,
            vram_total_bytes=self.vram_total_bytes,
            driver_version=DRIVER_VERSION,
            cuda_version=self.cuda_version,
            compute_capability=self.compute_capability,
            pcie_generation=self.pcie_generation,
            pcie_width=self.pcie_width,
            power_limits=PowerLimits(
                min_w=self.power_limit_min_w,
                default_w=self.power_limit_default_w,
                max_w=self.power_limit_max_w,
                current_w=self.power_limit_w,
            ),
        )

    def effective_power_w(self) -> float:
        """What the board draws: the scripted draw, held under the power limit."""
        return min(self.power_draw_w or 0.0, self.power_limit_w)


def default_gpu(index: int, name: str | None = None) -> SimulatedGpu:
    """An idle mid-range card; a given name gets the SIMULATED label if it lacks one."""
    if name is None:
        name = f"{SIMULATED} GPU {index}"
    elif SIMULATED not in name:
        name = f"{name} ({SIMULATED})"
    return SimulatedGpu(name=name, uuid=f"SIM-{uuid.UUID(int=index)}")


class SimulatedGpuBackend:
    """A :class:`GpuBackend` whose GPUs do what a test or a demo script says."""

    def __init__(
        self,
        count: int = 1,
        names: Sequence[str] | None = None,
        *,
        gpus: Sequence[SimulatedGpu] = (),
        clock: Callable[[], float] = time.monotonic,
        power_limit_permitted: bool = True,
    ) -> None:
        """``count`` idle mid-range GPUs (named by ``names``), followed by any fully described ``gpus``."""
        if count < 0:
            raise ValueError(f"count must not be negative, not {count}")
        if names is not None and len(names) != count:
            raise ValueError(f"{len(names)} names given for {count} simulated GPU(s)")
        self._gpus = [default_gpu(i, names[i] if names is not None else None) for i in range(count)]
        self._gpus += gpus
        for gpu in self._gpus:
            gpu.validate()
        self._lock = threading.Lock()
        self._clock = clock
        self.power_limit_permitted = power_limit_permitted
        self._limits_at_start_w = [gpu.power_limit_w for gpu in self._gpus]
        # Like NVML's counter, which counts from the driver's load (at boot) and not from the agent's start,
        # each board has drawn its first power since the clock's zero (boot, for time.monotonic): an agent
        # restarted on the same machine reads on from where the last one stopped.
        started_s = clock()
        self._energy_mj = [gpu.effective_power_w() * max(0.0, started_s) * 1000 for gpu in self._gpus]
        self._integrated_to_s = started_s

    @classmethod
    def from_state_dict(
        cls, data: Mapping[str, Any], *, clock: Callable[[], float] = time.monotonic
    ) -> SimulatedGpuBackend:
        """The inverse of :meth:`state_dict` (the energy counters start again as at a fresh start)."""
        gpus = data.get("gpus")
        if not isinstance(gpus, list):
            raise ValueError("a simulated-GPU state needs a list under 'gpus'")
        return cls(
            0,
            gpus=[SimulatedGpu.from_dict(gpu) for gpu in gpus],
            clock=clock,
            power_limit_permitted=bool(data.get("power_limit_permitted", True)),
        )

    def state_dict(self) -> dict[str, Any]:
        """Every GPU's description as JSON-able data, e.g. for a control API."""
        with self._lock:
            return {
                "power_limit_permitted": self.power_limit_permitted,
                "gpus": [gpu.to_dict() for gpu in self._gpus],
            }

    def gpu(self, index: int) -> SimulatedGpu:
        with self._lock:
            return self._gpus[index]

    # -- scripting ------------------------------------------------------------------------------

    def script(
        self,
        index: int,
        *,
        utilization_gpu_percent: float | _Unchanged | None = UNCHANGED,
        utilization_memory_percent: float | _Unchanged | None = UNCHANGED,
        vram_used_bytes: int | _Unchanged | None = UNCHANGED,
        temperature_c: float | _Unchanged | None = UNCHANGED,
        power_draw_w: float | _Unchanged | None = UNCHANGED,
        clock_graphics_mhz: int | _Unchanged | None = UNCHANGED,
        clock_memory_mhz: int | _Unchanged | None = UNCHANGED,
        fan_speed_percent: float | _Unchanged | None = UNCHANGED,
        foreign_processes: Sequence[GpuProcess] | _Unchanged = UNCHANGED,
    ) -> SimulatedGpu:
        """Change what later samples of GPU ``index`` read; arguments left out stay as they are."""
        changes: dict[str, Any] = {
            "utilization_gpu_percent": utilization_gpu_percent,
            "utilization_memory_percent": utilization_memory_percent,
            "vram_used_bytes": vram_used_bytes,
            "temperature_c": temperature_c,
            "power_draw_w": power_draw_w,
            "clock_graphics_mhz": clock_graphics_mhz,
            "clock_memory_mhz": clock_memory_mhz,
            "fan_speed_percent": fan_speed_percent,
            "foreign_processes": foreign_processes,
        }
        return self._apply(index, {name: value for name, value in changes.items() if value is not UNCHANGED})

    def script_from_dict(self, index: int, changes: Mapping[str, Any]) -> SimulatedGpu:
        """:meth:`script` with JSON input (processes as ``{"pid", "name", ...}`` objects)."""
        unknown = sorted(set(changes) - SCRIPTABLE_FIELDS)
        if unknown:
            raise ValueError(
                f"not scriptable: {', '.join(unknown)} (scriptable: {', '.join(sorted(SCRIPTABLE_FIELDS))})"
            )
        return self._apply(index, dict(changes))

    def _apply(self, index: int, changes: dict[str, Any]) -> SimulatedGpu:
        if "foreign_processes" in changes:
            changes["foreign_processes"] = _processes(changes["foreign_processes"])
        with self._lock:
            self._check_index(index)
            gpu = dataclasses.replace(self._gpus[index], **changes)
            gpu.validate()
            self._integrate()  # the energy so far was drawn at the old power
            self._gpus[index] = gpu
            return gpu

    # -- the GpuBackend interface -------------------------------------------------------------

    def discover(self) -> GpuDiscovery:
        with self._lock:
            if not self._gpus:
                return GpuDiscovery("simulated", False, "no simulated GPU configured", ())
            return GpuDiscovery("simulated", True, None, tuple(gpu.identity(i) for i, gpu in enumerate(self._gpus)))

    def sample(self, is_own_process: IsOwnProcess) -> tuple[GpuSample, ...]:
        with self._lock:
            now_s = self._integrate()
            return tuple(
                GpuSample(
                    index=index,
                    uuid=gpu.uuid,
                    monotonic_s=now_s,
                    utilization_gpu_percent=gpu.utilization_gpu_percent,
                    utilization_memory_percent=gpu.utilization_memory_percent,
                    vram_used_bytes=gpu.vram_used_bytes,
                    temperature_c=gpu.temperature_c,
                    power_draw_w=None if gpu.power_draw_w is None else gpu.effective_power_w(),
                    energy_total_mj=None if gpu.power_draw_w is None else int(self._energy_mj[index]),
                    clock_graphics_mhz=gpu.clock_graphics_mhz,
                    clock_memory_mhz=gpu.clock_memory_mhz,
                    fan_speed_percent=gpu.fan_speed_percent,
                    foreign_processes=tuple(p for p in gpu.foreign_processes if not is_own_process(p.pid)),
                )
                for index, gpu in enumerate(self._gpus)
            )

    def set_power_limit(self, index: int, watts: float | None) -> PowerLimitOutcome:
        with self._lock:
            if not 0 <= index < len(self._gpus):
                return PowerLimitOutcome(False, f"power limit: no GPU #{index}")
            if not self.power_limit_permitted:
                return PowerLimitOutcome(False, NOT_PERMITTED_MESSAGE)
            gpu = self._gpus[index]
            if watts is None:
                target_w = self._limits_at_start_w[index]
                message = f"power limit: GPU {index} restored to {target_w:.0f} W"
            elif not math.isfinite(watts) or watts <= 0:
                return PowerLimitOutcome(False, f"power limit: {watts} W is not a power limit")
            else:
                target_w = min(max(watts, gpu.power_limit_min_w), gpu.power_limit_max_w)
                message = f"power limit: GPU {index} set to {target_w:.0f} W"
                if target_w != watts:
                    message += (
                        f" (clamped: {watts:.0f} W asked, the GPU allows "
                        f"{gpu.power_limit_min_w:.0f}–{gpu.power_limit_max_w:.0f} W)"
                    )
            self._integrate()
            self._gpus[index] = dataclasses.replace(gpu, power_limit_w=target_w)
            return PowerLimitOutcome(True, message)

    def close(self) -> None:
        """Nothing to release."""

    # -- internals ------------------------------------------------------------------------------

    def _integrate(self) -> float:
        """Add the energy drawn since the last call (constant power in between); the lock is held."""
        now_s = self._clock()
        elapsed_s = max(0.0, now_s - self._integrated_to_s)
        for index, gpu in enumerate(self._gpus):
            self._energy_mj[index] += gpu.effective_power_w() * elapsed_s * 1000
        self._integrated_to_s = max(now_s, self._integrated_to_s)
        return now_s

    def _check_index(self, index: int) -> None:
        if not 0 <= index < len(self._gpus):
            raise IndexError(f"no simulated GPU #{index} (there are {len(self._gpus)})")


def _processes(value: Any) -> tuple[GpuProcess, ...]:
    """Processes given as GpuProcess objects or as JSON objects."""
    processes = []
    for item in value:
        if isinstance(item, GpuProcess):
            processes.append(item)
        elif isinstance(item, Mapping):
            try:
                processes.append(GpuProcess(**item))
            except TypeError as exc:
                raise ValueError(f"bad foreign process {dict(item)!r}: {exc}") from exc
        else:
            raise ValueError(f"a foreign process must be a GpuProcess or an object, not {item!r}")
    return tuple(processes)
