"""One GPU's identity, power and temperature through NVML (nvidia-ml-py), for the benchmark worker.

The worker also runs inside the benchmark's container image, so this talks to ``pynvml`` directly
rather than through the agent's sensor package: one handle, two cheap readings per sample. A reading the
GPU does not support, or that fails, is ``None`` and logged once; NVML missing altogether makes
:meth:`NvmlTelemetry.open` raise :class:`TelemetryUnavailable`, and the benchmark runs without power
figures.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sparecycles.agent.benchmark.errors import BenchmarkError
from sparecycles.agent.benchmark.sampler import Reading

log = logging.getLogger(__name__)

_TEMPERATURE_GPU = 0  # NVML_TEMPERATURE_GPU


class TelemetryUnavailable(BenchmarkError):
    """NVML cannot be used here; the message says why."""


@dataclass(frozen=True)
class GpuFacts:
    """What NVML says about the benchmarked GPU."""

    index: int | None
    uuid: str
    name: str
    driver_version: str | None
    memory_total_bytes: int | None


class NvmlTelemetry:
    """Readings of one GPU; ``nvml`` is the pynvml module or a stand-in with the same functions."""

    def __init__(self, nvml: Any, handle: Any, facts: GpuFacts) -> None:
        self._nvml = nvml
        self._handle = handle
        self.facts = facts
        self._failed: set[str] = set()

    @classmethod
    def open(cls, target: int | str, nvml: object | None = None) -> NvmlTelemetry:
        """Start NVML and find the GPU by index or UUID ("GPU-…")."""
        module: Any = nvml
        if module is None:
            try:
                import pynvml
            except ImportError:
                raise TelemetryUnavailable(
                    "nvidia-ml-py is not installed (`pip install nvidia-ml-py`): no power or temperature readings"
                ) from None
            module = pynvml
        try:
            module.nvmlInit()
        except module.NVMLError as exc:
            raise TelemetryUnavailable(f"NVML did not start ({exc}): no power or temperature readings") from None
        try:
            if isinstance(target, str):
                handle = module.nvmlDeviceGetHandleByUUID(target)
                index = _int(_query(module, "nvmlDeviceGetIndex", handle))
            else:
                handle = module.nvmlDeviceGetHandleByIndex(target)
                index = target
            uuid = _text(module.nvmlDeviceGetUUID(handle))
            name = _text(module.nvmlDeviceGetName(handle))
        except module.NVMLError as exc:
            module.nvmlShutdown()
            raise TelemetryUnavailable(f"NVML cannot read GPU {target} ({exc})") from None
        memory = _query(module, "nvmlDeviceGetMemoryInfo", handle)
        facts = GpuFacts(
            index=index,
            uuid=uuid,
            name=name,
            driver_version=_text(_query(module, "nvmlSystemGetDriverVersion")),
            memory_total_bytes=_int(memory.total) if memory is not None else None,
        )
        return cls(module, handle, facts)

    def read(self) -> Reading:
        """(board power in watts, GPU temperature in °C); either ``None`` where NVML cannot tell."""
        milliwatts = self._read("nvmlDeviceGetPowerUsage", self._handle)
        celsius = self._read("nvmlDeviceGetTemperature", self._handle, _TEMPERATURE_GPU)
        return (
            int(milliwatts) / 1000 if milliwatts is not None else None,
            float(celsius) if celsius is not None else None,
        )

    def close(self) -> None:
        try:
            self._nvml.nvmlShutdown()
        except self._nvml.NVMLError as exc:
            log.debug("nvmlShutdown failed: %s", exc)

    def _read(self, function: str, *args: Any) -> Any:
        """One reading; a function that failed once is not asked again (it would fail on every sample)."""
        if function in self._failed:
            return None
        try:
            return getattr(self._nvml, function)(*args)
        except (self._nvml.NVMLError, AttributeError) as exc:
            self._failed.add(function)
            log.info("NVML %s is not available on this GPU (%s); the benchmark goes without it", function, exc)
            return None


def _query(nvml: Any, function: str, *args: Any) -> Any:
    try:
        return getattr(nvml, function)(*args)
    except (nvml.NVMLError, AttributeError) as exc:
        log.info("NVML %s is not available (%s)", function, exc)
        return None


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _int(value: Any) -> int | None:
    return None if value is None else int(value)
