"""The policy's inputs and outputs: plain immutable values, so decisions are tested without sleeps."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import IntEnum, StrEnum
from zoneinfo import ZoneInfo

from sparecycles.agent.sensors.user.model import PresenceSample
from sparecycles.schedule import WeeklySchedule


class Action(IntEnum):
    """What a GPU should do; a larger value is the stronger hand-back."""

    WORK = 0
    PAUSE = 1  # freeze the job, keep its VRAM
    STOP = 2  # free the GPU


class Cause(StrEnum):
    """Machine-readable cause of a decision (the reason is the human-readable text)."""

    IDLE = "idle"
    LOCKED = "locked"
    SCHEDULED = "scheduled"
    USER_ACTIVE = "user_active"
    FULLSCREEN = "fullscreen"
    WAITING_FOR_IDLE = "waiting_for_idle"
    PRESENCE_UNKNOWN = "presence_unknown"
    OUTSIDE_SCHEDULE = "outside_schedule"
    GAME = "game"
    GPU_IN_USE = "gpu_in_use"
    TOO_HOT = "too_hot"
    PAUSED_BY_OWNER = "paused_by_owner"
    SNOOZED = "snoozed"
    DISABLED = "disabled"
    ON_BATTERY = "on_battery"


class WorkMode(StrEnum):
    IDLE = "idle"  # only while the owner is away
    SCHEDULE = "schedule"  # only inside scheduled hours
    IDLE_OR_SCHEDULE = "idle_or_schedule"  # inside scheduled hours, or whenever the owner is away
    IDLE_IN_SCHEDULE = "idle_in_schedule"  # only while away and inside scheduled hours


class PresencePhase(StrEnum):
    """The owner's presence with hysteresis (see :func:`sparecycles.agent.policy.decide.next_phase`)."""

    AWAY = "away"  # work may run
    INTERRUPTED = "interrupted"  # input while working: freeze, resume after a short quiet spell
    PRESENT = "present"  # the owner is using the machine: wait for the full idle threshold


@dataclass(frozen=True)
class GpuHold:
    """The owner took one GPU back by hand: until resumed (``until`` None), or snoozed until a time."""

    uuid: str
    until: datetime | None = None

    def holds(self, now: datetime) -> bool:
        return self.until is None or now < self.until


@dataclass(frozen=True)
class OwnerControls:
    """What the owner asked for by hand: a pause, or a snooze until a time, of the whole machine; and
    holds of single GPUs (a gamer keeps the card the game runs on, a studio lends the second one)."""

    paused: bool = False
    snoozed_until: datetime | None = None
    gpu_holds: tuple[GpuHold, ...] = ()

    def snoozing(self, now: datetime) -> bool:
        return self.snoozed_until is not None and now < self.snoozed_until

    def hold_of(self, uuid: str, now: datetime) -> GpuHold | None:
        """The hold on this GPU that is in force at ``now``, if any."""
        return next((hold for hold in self.gpu_holds if hold.uuid == uuid and hold.holds(now)), None)

    def with_hold(self, hold: GpuHold) -> OwnerControls:
        """These controls with ``hold`` replacing any earlier hold on the same GPU."""
        kept = tuple(earlier for earlier in self.gpu_holds if earlier.uuid != hold.uuid)
        return replace(self, gpu_holds=(*kept, hold))

    def without_hold(self, uuid: str) -> OwnerControls:
        return replace(self, gpu_holds=tuple(hold for hold in self.gpu_holds if hold.uuid != uuid))


@dataclass(frozen=True)
class GpuReading:
    """What the policy needs to know about one GPU."""

    index: int
    uuid: str
    temperature_c: float | None = None
    users: tuple[str, ...] = ()  # foreign processes really using it, described ("eldenring.exe, 6.1 GiB VRAM")
    games: tuple[str, ...] = ()  # pause-list games whose process was seen on it (they also count among users)


@dataclass(frozen=True)
class PolicyInput:
    wall: datetime  # aware wall-clock time
    monotonic_s: float  # for durations: does not jump when the wall clock does
    presence: PresenceSample
    gpus: tuple[GpuReading, ...]
    controls: OwnerControls = OwnerControls()
    games: tuple[str, ...] = ()  # games or GPU apps running anywhere on the machine
    on_battery: bool | None = None
    # Whether this machine has a presence source at all. With none, scheduled hours are all the policy can
    # go by; with one, a sample that fails (X11 reconnecting, a D-Bus timeout) is a gap, never "away".
    presence_available: bool = True


@dataclass(frozen=True)
class PolicySettings:
    mode: WorkMode = WorkMode.IDLE
    idle_threshold_s: float = 600.0
    resume_after_s: float = 60.0
    stop_after_s: float = 120.0
    schedule: WeeklySchedule | None = None
    zone: ZoneInfo | None = None  # the owner's time zone, for times shown in reasons (None: the system's)
    presence_gap_grace_s: float = 5.0  # how long work carries on while the presence source does not answer
    max_temperature_c: float = 83.0
    resume_temperature_c: float = 75.0
    disabled_gpus: frozenset[str] = frozenset()  # UUIDs or indexes as text
    pause_on_battery: bool = True


@dataclass(frozen=True)
class PolicyMemory:
    """What the policy remembers between samples, for hysteresis. Starts empty."""

    phase: PresencePhase | None = None
    interrupted_at_s: float | None = None
    resumed_at_s: float | None = None
    presence_lost_at_s: float | None = None  # since when the presence source has not answered
    hot_gpus: frozenset[int] = frozenset()


@dataclass(frozen=True)
class GpuDecision:
    index: int
    uuid: str
    action: Action
    cause: Cause
    reason: str


@dataclass(frozen=True)
class MachineDecision:
    """What work that needs no GPU (CPU-only jobs) may do: the machine-wide rules alone, without a GPU's
    own (its temperature, its other users, sharing turned off for it)."""

    action: Action
    cause: Cause
    reason: str


@dataclass(frozen=True)
class PolicyResult:
    decisions: tuple[GpuDecision, ...]
    memory: PolicyMemory
    machine: MachineDecision
