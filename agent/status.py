"""Turns the agent's state into the status document; pure, so it is tested with plain values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sparecycles.agent.sensors.gpu import GpuDiscovery
from sparecycles.control.models import (
    AgentState,
    GpuBackendStatus,
    GpuState,
    GpuStatus,
    StatusDocument,
)


@dataclass(frozen=True)
class OwnerControls:
    """What the owner asked for by hand: a pause, or a snooze until a time."""

    paused: bool = False
    snoozed_until: datetime | None = None

    def snoozing(self, now: datetime) -> bool:
        return self.snoozed_until is not None and now < self.snoozed_until


def build_status(
    *,
    version: str,
    pid: int,
    started_at: datetime,
    now: datetime,
    controls: OwnerControls,
    discovery: GpuDiscovery,
    stopping: bool = False,
) -> StatusDocument:
    if stopping:
        state, reason = AgentState.STOPPING, "the agent is shutting down"
    elif controls.paused:
        state, reason = AgentState.PAUSED, "paused by you; `sparecycles resume` to continue"
    elif controls.snoozed_until is not None and controls.snoozing(now):
        until = controls.snoozed_until.astimezone().strftime("%H:%M")
        state, reason = AgentState.SNOOZED, f"snoozed by you until {until}"
    elif not discovery.available:
        state, reason = AgentState.READY, "no NVIDIA GPU to share; `sparecycles doctor` says why"
    else:
        state, reason = AgentState.READY, "ready; no job running"

    if state in (AgentState.PAUSED, AgentState.SNOOZED, AgentState.STOPPING):
        gpu_state, gpu_reason = GpuState.STOPPED, reason
    else:
        gpu_state, gpu_reason = GpuState.READY, "no job running"
    gpus = [
        GpuStatus(
            index=gpu.index,
            uuid=gpu.uuid,
            name=gpu.name,
            simulated=discovery.backend == "simulated",
            state=gpu_state,
            reason=gpu_reason,
        )
        for gpu in discovery.gpus
    ]
    return StatusDocument(
        agent_version=version,
        pid=pid,
        started_at=started_at,
        state=state,
        reason=reason,
        snoozed_until=controls.snoozed_until if controls.snoozing(now) else None,
        gpu_backend=GpuBackendStatus(
            available=discovery.available,
            kind=discovery.backend,
            reason=discovery.reason,
        ),
        gpus=gpus,
    )
