"""Is the owner gaming, or is something else using a GPU? Immutable readings for the policy.

``None`` means "cannot tell here", never a guess. Steam and the process list are machine-wide;
GPU users are per GPU (see ``gpu_users``), so a game on GPU 0 need not stop GPU 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from sparecycles.agent.sensors.activity.defaults import (
    DEFAULT_FOREIGN_UTILIZATION_PERCENT,
    DEFAULT_FOREIGN_VRAM_BYTES,
    DEFAULT_IGNORED_BUSY_UTILIZATION_PERCENT,
    DEFAULT_UNREPORTED_BUSY_UTILIZATION_PERCENT,
)


class SteamStatus(StrEnum):
    GAME_RUNNING = "game_running"
    NO_GAME = "no_game"
    UNKNOWN = "unknown"  # Steam not installed, its file unreadable or malformed


@dataclass(frozen=True)
class SteamReading:
    """Steam's running-app id: ``app_id`` only when a game runs; ``detail`` says where from, or why unknown."""

    status: SteamStatus
    app_id: int | None = None
    app_name: str | None = None
    detail: str | None = None


class SteamSource(Protocol):
    """Steam's registry.vdf (Linux), the Windows registry, or null."""

    def read(self) -> SteamReading:
        """Read now. Never raises: trouble is ``SteamStatus.UNKNOWN`` with a detail."""
        ...


@dataclass(frozen=True)
class RunningProcess:
    """One process as the scanner sees it (what a process lister yields)."""

    pid: int
    name: str
    exe_name: str | None = None  # the executable's file name, where readable
    name_truncated: bool = False  # Linux may have cut the name at 15 characters


@dataclass(frozen=True)
class BlockingProcess:
    """A running process on the pause list: ``name`` as it runs, ``matched`` the list entry."""

    name: str
    pid: int
    matched: str


@dataclass(frozen=True)
class GpuUseThresholds:
    """When a foreign process counts as really using a GPU; ``None`` turns a rule off.

    A process not on the ignore list counts from ``vram_bytes`` of VRAM or ``utilization_percent``
    of the GPU; one on the ignore list only from ``ignored_utilization_percent`` (a browser running
    a WebGL game, not one showing a page). A process the driver gives no figures for counts when the
    whole GPU is busy from ``unreported_utilization_percent`` and none of our jobs runs on it.
    """

    vram_bytes: int | None = DEFAULT_FOREIGN_VRAM_BYTES
    utilization_percent: float | None = DEFAULT_FOREIGN_UTILIZATION_PERCENT
    ignored_utilization_percent: float | None = DEFAULT_IGNORED_BUSY_UTILIZATION_PERCENT
    unreported_utilization_percent: float | None = DEFAULT_UNREPORTED_BUSY_UTILIZATION_PERCENT


@dataclass(frozen=True)
class GpuUser:
    """A foreign process really using one GPU, with a reason a person can read."""

    gpu_index: int
    pid: int
    name: str
    reason: str  # e.g. "eldenring.exe uses 6.1 GiB VRAM"


@dataclass(frozen=True)
class ActivitySample:
    """One machine-wide reading: Steam, the pause list, battery and CPU load."""

    monotonic_s: float  # when it was taken (time.monotonic)
    steam: SteamReading
    blocking_processes: tuple[BlockingProcess, ...] = ()
    on_battery: bool | None = None  # False on a machine without a battery
    cpu_busy_percent: float | None = None  # since the previous sample; None on the first

    @property
    def steam_app_id(self) -> int | None:
        return self.steam.app_id if self.steam.status is SteamStatus.GAME_RUNNING else None

    @property
    def steam_app_name(self) -> str | None:
        return self.steam.app_name if self.steam.status is SteamStatus.GAME_RUNNING else None
