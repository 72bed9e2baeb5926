"""Turns the agent's state into the status document; pure, so it is tested with plain values."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from sparecycles.agent.engine import EngineSnapshot, game_labels
from sparecycles.agent.policy.model import Action, GpuDecision, OwnerControls
from sparecycles.agent.sensors.gpu import GpuIdentity, GpuSample
from sparecycles.control.benchmark import GpuBenchmarkStatus
from sparecycles.control.models import (
    AgentState,
    CpuWorkStatus,
    FleetStatus,
    ForeignGpuProcess,
    GpuBackendStatus,
    GpuOwnerHold,
    GpuReadings,
    GpuState,
    GpuStatus,
    MarketplaceStatus,
    PresenceStatus,
    StatusDocument,
)

GPU_STATES = {Action.WORK: GpuState.READY, Action.PAUSE: GpuState.PAUSED, Action.STOP: GpuState.STOPPED}


def _readings(identity: GpuIdentity, sample: GpuSample | None) -> GpuReadings | None:
    if sample is None:
        return None
    return GpuReadings(
        utilization_gpu_percent=sample.utilization_gpu_percent,
        utilization_memory_percent=sample.utilization_memory_percent,
        vram_used_bytes=sample.vram_used_bytes,
        vram_total_bytes=identity.vram_total_bytes,
        temperature_c=sample.temperature_c,
        power_draw_w=sample.power_draw_w,
        energy_total_mj=sample.energy_total_mj,
        clock_graphics_mhz=sample.clock_graphics_mhz,
        clock_memory_mhz=sample.clock_memory_mhz,
        fan_speed_percent=sample.fan_speed_percent,
        foreign_processes=[
            ForeignGpuProcess(pid=p.pid, name=p.name, vram_used_bytes=p.vram_used_bytes)
            for p in sample.foreign_processes
        ],
    )


def _gpu_status(  # noqa: PLR0917
    identity: GpuIdentity,
    decision: GpuDecision | None,
    snapshot: EngineSnapshot,
    benchmark: Callable[[GpuIdentity], GpuBenchmarkStatus | None],
    controls: OwnerControls,
    now: datetime,
) -> GpuStatus:
    if decision is None:
        state, reason, cause = GpuState.STOPPED, "starting: no reading yet", None
    else:
        state, reason, cause = GPU_STATES[decision.action], decision.reason, decision.cause.value
    return GpuStatus(
        index=identity.index,
        uuid=identity.uuid,
        name=identity.name,
        simulated=snapshot.discovery.backend == "simulated",
        state=state,
        reason=reason,
        cause=cause,
        readings=_readings(identity, snapshot.samples.get(identity.index)),
        power_limit=snapshot.power_notes.get(identity.index),
        benchmark=benchmark(identity),
        owner_hold=GpuOwnerHold(until=hold.until) if (hold := controls.hold_of(identity.uuid, now)) else None,
    )


def _overall(gpus: list[GpuStatus], snapshot: EngineSnapshot) -> tuple[AgentState, str]:
    if not snapshot.discovery.available:
        return AgentState.WAITING, "no NVIDIA GPU to share; `sparecycles doctor` says why"
    ready = [gpu for gpu in gpus if gpu.state is GpuState.READY]
    if ready:
        return AgentState.READY, ready[0].reason
    return AgentState.WAITING, gpus[0].reason if gpus else "no GPU to share"


def build_status(
    *,
    version: str,
    pid: int,
    started_at: datetime,
    now: datetime,
    controls: OwnerControls,
    snapshot: EngineSnapshot,
    work_mode: str | None = None,
    zone: ZoneInfo | None = None,
    jobs_problem: str | None = None,
    marketplace: MarketplaceStatus | None = None,
    stopping: bool = False,
    ledger_problem: str | None = None,
    benchmark: Callable[[GpuIdentity], GpuBenchmarkStatus | None] = lambda _gpu: None,
    fleet: FleetStatus | None = None,
) -> StatusDocument:
    gpus = [
        _gpu_status(gpu, snapshot.decisions.get(gpu.index), snapshot, benchmark, controls, now)
        for gpu in snapshot.discovery.gpus
    ]
    if stopping:
        state, reason = AgentState.STOPPING, "the agent is shutting down"
    elif controls.paused:
        state, reason = AgentState.PAUSED, "paused by you; `sparecycles resume` to continue"
    elif controls.snoozed_until is not None and controls.snoozing(now):
        state, reason = AgentState.SNOOZED, f"snoozed by you until {controls.snoozed_until.astimezone(zone):%H:%M}"
    elif fleet is not None and fleet.paused_until is not None:
        state, reason = AgentState.PAUSED, f"paused by {fleet.studio} until {fleet.paused_until.astimezone(zone):%H:%M}"
    else:
        state, reason = _overall(gpus, snapshot)
        if fleet is not None and fleet.drain:
            reason = f"{reason}; drained by {fleet.studio}: taking no new job"
    presence = snapshot.presence
    machine = snapshot.machine
    return StatusDocument(
        agent_version=version,
        pid=pid,
        started_at=started_at,
        state=state,
        reason=reason,
        snoozed_until=controls.snoozed_until if controls.snoozing(now) else None,
        work_mode=work_mode,
        presence=PresenceStatus(
            source=snapshot.presence_source,
            idle_seconds=presence.idle_s,
            locked=presence.locked,
            fullscreen=presence.fullscreen,
            fullscreen_app=presence.fullscreen_app,
        ),
        games=list(game_labels(snapshot.activity)),
        jobs_problem=jobs_problem,
        ledger_problem=ledger_problem,
        gpu_backend=GpuBackendStatus(
            available=snapshot.discovery.available,
            kind=snapshot.discovery.backend,
            reason=snapshot.discovery.reason,
        ),
        gpus=gpus,
        marketplace=marketplace,
        cpu_work=CpuWorkStatus(state=GPU_STATES[machine.action], reason=machine.reason, cause=machine.cause.value)
        if machine is not None
        else None,
        fleet=fleet,
    )
