"""`sparecycles status --json` is a stable document described by docs/status.schema.json."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema

from sparecycles.agent.engine import EngineSnapshot
from sparecycles.agent.policy.model import Action, Cause, GpuDecision, OwnerControls
from sparecycles.agent.sensors.gpu import GpuDiscovery
from sparecycles.agent.sensors.user.model import PresenceSample
from sparecycles.agent.status import build_status
from sparecycles.control.models import StatusDocument
from tests.conftest import RunningAgent, run_cli
from tests.fakes.gpu import FakeGpuInventory

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "docs" / "status.schema.json"


def _schema() -> dict[str, object]:
    schema: dict[str, object] = json.loads(SCHEMA_FILE.read_text())
    return schema


def test_committed_schema_is_valid_and_matches_the_model() -> None:
    schema = _schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    generated = StatusDocument.model_json_schema()
    assert schema["properties"] == generated["properties"], "docs/status.schema.json is stale: run `make docs`"
    assert schema["required"] == generated["required"]


def test_status_json_of_a_real_agent_validates_against_the_committed_schema(agent: RunningAgent, home: Path) -> None:
    result = run_cli(home, "status", "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    jsonschema.validate(document, _schema())
    assert document["schema_version"] == 1
    assert document["gpu_backend"]["available"] is False  # this machine has no NVIDIA GPU
    assert document["gpu_backend"]["reason"]


def _snapshot(discovery: GpuDiscovery, decisions: dict[int, GpuDecision] | None = None) -> EngineSnapshot:
    return EngineSnapshot(
        discovery=discovery,
        samples={},
        presence=PresenceSample("x11", idle_s=12.5, locked=False, fullscreen=False),
        presence_source="x11",
        activity=None,
        decisions=decisions or {},
    )


def test_status_with_gpus_validates_and_carries_state_and_reason_per_gpu() -> None:
    now = datetime.now(UTC)
    discovery = FakeGpuInventory("NVIDIA GeForce RTX 4090", "NVIDIA RTX A4000").discover()
    decisions = {
        0: GpuDecision(0, discovery.gpus[0].uuid, Action.WORK, Cause.IDLE, "working: no input for 12 min"),
        1: GpuDecision(1, discovery.gpus[1].uuid, Action.PAUSE, Cause.TOO_HOT, "too hot: 84 °C > 83 °C cap"),
    }
    for controls in (
        OwnerControls(),
        OwnerControls(paused=True),
        OwnerControls(snoozed_until=now + timedelta(hours=1)),
    ):
        document = build_status(
            version="9.9.9",
            pid=1,
            started_at=now,
            now=now,
            controls=controls,
            snapshot=_snapshot(discovery, decisions),
            work_mode="idle",
        ).model_dump(mode="json")
        jsonschema.validate(document, _schema())
        assert [gpu["index"] for gpu in document["gpus"]] == [0, 1]
        assert [gpu["state"] for gpu in document["gpus"]] == ["ready", "paused"]
        assert document["gpus"][1]["cause"] == "too_hot"
        assert document["presence"]["idle_seconds"] == 12.5


def test_snooze_expires_by_the_clock() -> None:
    now = datetime.now(UTC)
    controls = OwnerControls(snoozed_until=now + timedelta(minutes=5))
    snapshot = _snapshot(GpuDiscovery("none", False, "no driver", ()))
    common = {"version": "1", "pid": 1, "started_at": now, "controls": controls, "snapshot": snapshot}
    assert build_status(now=now, **common).state == "snoozed"  # type: ignore[arg-type]
    later = build_status(now=now + timedelta(minutes=6), **common)  # type: ignore[arg-type]
    assert later.state == "waiting"
    assert later.snoozed_until is None
