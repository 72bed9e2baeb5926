"""A real agent with SIMULATED GPUs, scripted through its control API (as demos and tests do)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sparecycles.control.client import ControlClient
from sparecycles.control.errors import AgentRequestError
from sparecycles.control.models import StatusDocument
from tests.conftest import RunningAgent, run_cli, start_agent

GAME = {"pid": 4242, "name": "eldenring.exe", "vram_used_bytes": 6 * 1024**3}


@pytest.fixture
def scheduled_agent(home: Path) -> Iterator[RunningAgent]:
    """Always inside scheduled hours, so the GPUs work whatever the (absent) display says."""
    config = home / "config" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('[work]\nmode = "schedule"\n\n[schedule]\nwindows = ["daily"]\n')
    agent = start_agent(home, "--simulated-gpus", "2")
    yield agent
    agent.stop()


def _wait(client: ControlClient, done: object, timeout: float = 20) -> StatusDocument:
    deadline = time.monotonic() + timeout
    status = client.status()
    while not done(status) and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.2)
        status = client.status()
    return status


def test_foreign_process_on_simulated_gpu_0_stops_gpu_0_and_gpu_1_keeps_working(
    scheduled_agent: RunningAgent, home: Path
) -> None:
    with ControlClient(scheduled_agent.endpoint) as client:
        status = _wait(client, lambda s: [g.state.value for g in s.gpus] == ["ready", "ready"])
        assert [g.state.value for g in status.gpus] == ["ready", "ready"], status
        client.script_simulated_gpu(0, {"foreign_processes": [GAME], "utilization_gpu_percent": 97})
        status = _wait(client, lambda s: s.gpus[0].state.value == "stopped")
    gpu0, gpu1 = status.gpus
    assert (gpu0.state.value, gpu0.cause) == ("stopped", "gpu_in_use")
    assert "eldenring.exe uses 6.0 GiB VRAM" in gpu0.reason
    assert gpu0.readings is not None
    assert [p.name for p in gpu0.readings.foreign_processes] == ["eldenring.exe"]
    assert gpu1.state.value == "ready"
    text = run_cli(home, "status").stdout
    assert "GPU 0 SIMULATED GPU 0 [SIMULATED]: stopped" in text
    assert "GPU 1 SIMULATED GPU 1 [SIMULATED]: ready" in text


def test_too_hot_simulated_gpu_pauses_until_it_cools(scheduled_agent: RunningAgent) -> None:
    with ControlClient(scheduled_agent.endpoint) as client:
        client.script_simulated_gpu(1, {"temperature_c": 90})
        status = _wait(client, lambda s: s.gpus[1].state.value == "paused")
        assert status.gpus[1].reason == "too hot: 90 °C > 83 °C cap, resumes below 75 °C"
        client.script_simulated_gpu(1, {"temperature_c": 60})
        status = _wait(client, lambda s: s.gpus[1].state.value == "ready")
        assert status.gpus[1].state.value == "ready"


def test_scripting_mistakes_are_named(scheduled_agent: RunningAgent) -> None:
    with ControlClient(scheduled_agent.endpoint) as client:
        with pytest.raises(AgentRequestError, match="not scriptable: colour") as bad_field:
            client.script_simulated_gpu(0, {"colour": "green"})
        assert bad_field.value.status_code == 422
        with pytest.raises(AgentRequestError, match="no simulated GPU #5") as bad_index:
            client.script_simulated_gpu(5, {"temperature_c": 50})
        assert bad_index.value.status_code == 404
        with pytest.raises(AgentRequestError, match="temperature_c must be a number") as bad_value:
            client.script_simulated_gpu(0, {"temperature_c": "hot"})
        assert bad_value.value.status_code == 422
        assert client.pause().state.value == "paused"  # nothing was kept that breaks the decisions


def test_real_gpu_agents_refuse_scripting(agent: RunningAgent) -> None:
    with ControlClient(agent.endpoint) as client, pytest.raises(AgentRequestError, match="--simulated-gpus") as raised:
        client.simulated_gpus()
    assert raised.value.status_code == 404
