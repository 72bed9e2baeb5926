"""One machine-wide activity reading per poll: Steam, the pause list, battery and CPU load."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

from sparecycles.agent.sensors.activity.defaults import DEFAULT_PAUSE_PROCESSES
from sparecycles.agent.sensors.activity.machine import CpuBusyMeter, read_on_battery
from sparecycles.agent.sensors.activity.model import (
    ActivitySample,
    BlockingProcess,
    SteamReading,
    SteamSource,
    SteamStatus,
)
from sparecycles.agent.sensors.activity.processes import BlockingProcessScanner, ProcessLister
from sparecycles.agent.sensors.activity.steam import steam_source_for

log = logging.getLogger(__name__)

T = TypeVar("T")


class ActivitySensor:
    """Composes the activity sources; ``sample()`` never raises: a failing part reads as unknown."""

    def __init__(
        self,
        *,
        steam: SteamSource,
        processes: BlockingProcessScanner,
        on_battery: Callable[[], bool | None] | None = None,
        cpu: CpuBusyMeter | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._steam = steam
        self._processes = processes
        self._on_battery = on_battery
        self._cpu = cpu
        self._clock = clock
        self._failing: set[str] = set()

    @classmethod
    def create(
        cls,
        *,
        pause_processes: Iterable[str] = DEFAULT_PAUSE_PROCESSES,
        platform: str = sys.platform,
        home: Path | None = None,
        process_lister: ProcessLister | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> ActivitySensor:
        """The real sources for this platform (the factory the composition root calls)."""
        return cls(
            steam=steam_source_for(platform, home=home),
            processes=BlockingProcessScanner(pause_processes, process_lister),
            on_battery=read_on_battery,
            cpu=CpuBusyMeter(),
            clock=clock,
        )

    def set_pause_processes(self, names: Iterable[str]) -> None:
        """Apply an edited pause list from the next sample on, without a restart."""
        self._processes.set_names(names)

    def sample(self) -> ActivitySample:
        taken_s = self._clock()
        steam = self._guard("Steam", self._steam.read, SteamReading(SteamStatus.UNKNOWN, detail="Steam reader failed"))
        empty: tuple[BlockingProcess, ...] = ()
        blocking = self._guard("process list", self._processes.scan, empty)
        on_battery = self._guard("battery", self._on_battery, None) if self._on_battery else None
        cpu = self._guard("CPU load", self._cpu.read, None) if self._cpu else None
        return ActivitySample(
            monotonic_s=taken_s,
            steam=steam,
            blocking_processes=blocking,
            on_battery=on_battery,
            cpu_busy_percent=cpu,
        )

    def _guard(self, what: str, read: Callable[[], T], fallback: T) -> T:
        try:
            value = read()
        except Exception:
            if what not in self._failing:  # once per failure spell, not on every poll
                self._failing.add(what)
                log.warning("activity sensor: %s unreadable; treated as unknown", what, exc_info=True)
            return fallback
        if what in self._failing:
            self._failing.discard(what)
            log.info("activity sensor: %s readable again", what)
        return value
