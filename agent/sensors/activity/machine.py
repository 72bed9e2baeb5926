"""The machine off the GPU: on battery power, and how busy the CPU is."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import psutil


def read_on_battery(sensors_battery: Callable[[], Any] | None = None) -> bool | None:
    """True when running on battery; False without a battery; ``None`` when it cannot tell.

    A failing read raises: the sensor logs it once and reads it as ``None``.
    """
    read = sensors_battery if sensors_battery is not None else getattr(psutil, "sensors_battery", None)
    if read is None:
        return None
    battery = read()
    if battery is None:
        return False
    plugged = getattr(battery, "power_plugged", None)
    return None if plugged is None else not plugged


class CpuTimes(NamedTuple):
    """Cumulative CPU seconds across all cores: busy and total."""

    busy_s: float
    total_s: float


def psutil_cpu_times() -> CpuTimes:
    """Busy and total CPU seconds as psutil's ``cpu_percent`` counts them (guest time is in user)."""
    times = psutil.cpu_times()._asdict()
    total = sum(value for field, value in times.items() if field not in ("guest", "guest_nice"))
    idle = times.get("idle", 0.0) + times.get("iowait", 0.0)
    return CpuTimes(busy_s=total - idle, total_s=total)


class CpuBusyMeter:
    """CPU busy percentage between two reads, kept per meter (psutil's ``cpu_percent`` is process-global)."""

    def __init__(self, read_times: Callable[[], CpuTimes] = psutil_cpu_times) -> None:
        self._read_times = read_times
        self._previous: CpuTimes | None = None

    def read(self) -> float | None:
        """Percent busy since the previous read; ``None`` on the first read (a failing read raises)."""
        now = self._read_times()
        previous, self._previous = self._previous, now
        if previous is None:
            return None
        total = now.total_s - previous.total_s
        if total <= 0:
            return None
        busy = now.busy_s - previous.busy_s
        return min(100.0, max(0.0, 100.0 * busy / total))
