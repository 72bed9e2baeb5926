"""Plain status documents for the GUI's tests (no agent needed)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sparecycles.control.models import AgentState, GpuState, StatusDocument

NOW = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)


def status(
    state: AgentState, gpu_state: GpuState = GpuState.READY, cause: str | None = None, reason: str = ""
) -> StatusDocument:
    gpu: dict[str, Any] = {
        "index": 0,
        "uuid": "GPU-sim-0",
        "name": "Simulated RTX 4090",
        "simulated": True,
        "state": gpu_state,
        "reason": reason or gpu_state.value,
        "cause": cause,
    }
    return StatusDocument(
        agent_version="0",
        pid=1,
        started_at=NOW,
        state=state,
        reason=state.value,
        gpu_backend={"available": True, "kind": "simulated"},
        gpus=[gpu],
    )
