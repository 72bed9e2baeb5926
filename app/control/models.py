"""Request, response and status models of the local control API.

One definition serves the agent (which produces them), the CLI and GUI (which read them) and the
tests. ``StatusDocument`` is also the stable ``sparecycles status --json`` output: its JSON Schema
is committed in docs/status.schema.json and a change to it bumps ``schema_version``.
"""

from __future__ import annotations

import math
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sparecycles.control.benchmark import GpuBenchmarkStatus
from sparecycles.protocol.fleet import GroupPolicy

STATUS_SCHEMA_VERSION: Literal[1] = 1
TOKEN_HEADER = "Authorization"  # noqa: S105 - a header name, not a secret
TOKEN_SCHEME = "Bearer"  # noqa: S105 - a scheme name, not a secret


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AgentState(StrEnum):
    """What the agent as a whole is doing, in one word."""

    READY = "ready"  # at least one GPU may work, nothing running
    WORKING = "working"  # at least one GPU runs a job
    WAITING = "waiting"  # no GPU may work now (the reason says why: you are here, outside hours, too hot...)
    PAUSED = "paused"  # the owner paused it
    SNOOZED = "snoozed"  # the owner snoozed it until a time
    STOPPING = "stopping"


class GpuState(StrEnum):
    """What one GPU is doing; each state comes with a human-readable reason."""

    READY = "ready"
    WORKING = "working"
    PAUSED = "paused"  # job frozen, VRAM kept
    STOPPED = "stopped"  # GPU handed back, nothing of ours on it
    UNAVAILABLE = "unavailable"


class ForeignGpuProcess(_Model):
    pid: int
    name: str
    vram_used_bytes: int | None = None


class GpuReadings(_Model):
    """The latest live readings of one GPU; ``null`` where the GPU or driver does not report it."""

    utilization_gpu_percent: float | None = None
    utilization_memory_percent: float | None = None
    vram_used_bytes: int | None = None
    vram_total_bytes: int | None = None
    temperature_c: float | None = None
    power_draw_w: float | None = None
    energy_total_mj: int | None = None
    clock_graphics_mhz: int | None = None
    clock_memory_mhz: int | None = None
    fan_speed_percent: float | None = None
    foreign_processes: list[ForeignGpuProcess] = []


class GpuStatus(_Model):
    index: int = Field(ge=0)
    uuid: str
    name: str
    simulated: bool = Field(False, description="True when the GPU is the simulated test/demo backend.")
    state: GpuState
    reason: str
    cause: str | None = Field(None, description="Machine-readable cause of the state, e.g. 'user_active'.")
    readings: GpuReadings | None = None
    power_limit: str | None = Field(None, description="What happened to the power limit, when one is set.")
    benchmark: GpuBenchmarkStatus | None = Field(None, description="Its benchmark: the kept result, a run, a failure.")
    owner_hold: GpuOwnerHold | None = Field(None, description="The owner paused or snoozed this GPU alone.")


class GpuOwnerHold(_Model):
    """The owner took this one GPU back: until resumed (``until`` null), or until a time."""

    until: datetime | None = None


class PresenceStatus(_Model):
    """What the agent knows of the owner's presence, and from which source."""

    source: str
    idle_seconds: float | None = None
    locked: bool | None = None
    fullscreen: bool | None = None
    fullscreen_app: str | None = None


GpuBackendKind = Literal["nvml", "simulated", "none"]


class GpuBackendStatus(_Model):
    """Whether GPUs can be seen at all, and if not, why (no driver, no GPU...)."""

    available: bool
    kind: GpuBackendKind
    reason: str | None = None


class CpuWorkStatus(_Model):
    """What jobs that use no GPU may do now: the machine-wide rules (presence, schedule, games, pause)."""

    state: GpuState = Field(description="ready (may work), paused (frozen) or stopped.")
    reason: str
    cause: str


class MarketplaceStatus(_Model):
    """Where the agent takes work from, whether it is connected, and what it has earned there."""

    url: str
    private: bool = Field(description="True when it is the private marketplace the agent runs itself.")
    provider_address: str | None = Field(None, description="This machine's identity address at the marketplace.")
    connected: bool
    problem: str | None = Field(None, description="Why no work is taken now, in words; null when connected.")
    earned_base_units: int | None = Field(
        None, description="Cumulative earnings of the payout address, from the highest valid voucher held."
    )
    leases: int = Field(0, ge=0, description="Leases running now.")
    payout_address: str | None = Field(None, description="Where the marketplace pays this machine's earnings.")
    floor_per_gpu_hour: int | None = Field(
        None, description="The lowest price bid per GPU-hour now, in base units: the electricity plus the margin."
    )
    floor_per_core_hour: int | None = Field(None, description="The same per CPU-core-hour.")
    price_note: str | None = Field(
        None,
        description="Why jobs on offer are not taken on price ('market pays less than your electricity…'), "
        "or what the floor leaves out (no tariff set).",
    )


class FleetApplied(_Model):
    """The rules the agent works by while in a studio group: the group's and the owner's, the stricter kept."""

    work_mode: str
    schedule_windows: list[str]
    idle_threshold: str
    max_temperature_c: int
    power_limit_percent: int | None


class FleetStatus(_Model):
    """The studio group this machine belongs to, its policy, and what the studio asked of the machine."""

    url: str = Field(description="The studio's marketplace.")
    studio: str
    group: str
    note: str = Field(description="'schedule set by <studio> (group <group>)', for the status line.")
    policy: GroupPolicy = Field(description="What the group sets (unset fields leave the owner's own).")
    policy_version: int
    applied: FleetApplied
    drain: bool = Field(description="The studio drains the machine: it finishes its job and takes no new one.")
    paused_until: datetime | None = Field(None, description="The studio paused the machine until then.")
    last_report_at: datetime | None = None
    problem: str | None = Field(None, description="Why the last report did not reach the studio; null when it did.")


class JoinStudio(_Model):
    url: str = Field(min_length=8, max_length=2048, pattern=r"^https?://", description="The studio's marketplace.")
    code: str = Field(min_length=8, max_length=128, description="The enrolment code its operator made.")


class LeftStudio(_Model):
    group: str


class StatusDocument(_Model):
    schema_version: Literal[1] = STATUS_SCHEMA_VERSION
    agent_version: str
    pid: int
    started_at: datetime
    state: AgentState
    reason: str
    snoozed_until: datetime | None = None
    work_mode: str | None = None
    presence: PresenceStatus | None = None
    games: list[str] = Field([], description="Games or GPU apps seen running (Steam, the pause list).")
    jobs_problem: str | None = Field(
        None, description="Why jobs cannot run now, e.g. 'Docker engine not reachable at …'; null when they can."
    )
    ledger_problem: str | None = Field(
        None,
        description="Why earnings or energy are not being recorded (a damaged ledger set aside, a newer one); "
        "null when they are.",
    )
    gpu_backend: GpuBackendStatus
    gpus: list[GpuStatus]
    marketplace: MarketplaceStatus | None = Field(None, description="Null until the marketplace side has started.")
    cpu_work: CpuWorkStatus | None = Field(
        None, description="What CPU-only jobs may do now; null before the policy's first decision."
    )
    fleet: FleetStatus | None = Field(None, description="The studio group the machine is in; null when in none.")


MAX_SNOOZE_SECONDS = 7 * 24 * 3600


class SnoozeRequest(_Model):
    """Snooze for a duration, or until a time (exactly one of the two)."""

    duration_seconds: int | None = Field(None, ge=60, le=MAX_SNOOZE_SECONDS, description="How long to stay paused.")
    until: datetime | None = Field(None, description="Stay paused until this time (with a UTC offset).")

    @model_validator(mode="after")
    def _one_of(self) -> SnoozeRequest:
        if (self.duration_seconds is None) == (self.until is None):
            raise ValueError("give either duration_seconds or until")
        if self.until is not None and self.until.tzinfo is None:
            raise ValueError("until needs a UTC offset, e.g. 2026-11-25T18:30:00+01:00")
        return self

    def seconds_from(self, now: datetime) -> int:
        if self.duration_seconds is not None:
            return self.duration_seconds
        until = self.until or now
        return math.ceil((until - now).total_seconds())


class SettingsPatch(_Model):
    """Changes to apply: ``{"section": {"key": value}}``; ``null`` returns a key to its default."""

    changes: dict[str, dict[str, Any]]


class JobSubmission(_Model):
    """A job spec to run on this machine (see docs/job-spec.schema.json); checked by the agent."""

    spec: dict[str, Any]


class JobAccepted(_Model):
    job_id: str


class JobList(_Model):
    """Running jobs first, then those that ended since the agent started."""

    jobs: list[dict[str, Any]]


class ErrorBody(_Model):
    """Every error the API returns: a message a person can act on, never a traceback."""

    message: str
    problems: list[str] = []


class EventType(StrEnum):
    STATUS_CHANGED = "status_changed"  # the state or a reason changed; data: the status document
    READINGS = "readings"  # every GPU sample (about once a second); data: the status document
    SETTINGS_CHANGED = "settings_changed"
    SHUTTING_DOWN = "shutting_down"
    JOB_STATE = "job_state"  # data: job_id, state, reason
    PULL_PROGRESS = "pull_progress"  # data: job_id, current, total (bytes of the image being pulled)
    JOBS_PROBLEM = "jobs_problem"  # data: problem (null once jobs can run again)


class AgentEvent(_Model):
    """One message on the event stream (SSE event name = ``type``, data = this model as JSON)."""

    type: EventType
    at: datetime
    data: dict[str, Any] = {}
