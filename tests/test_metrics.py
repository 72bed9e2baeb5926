"""The agent's Prometheus endpoint, on a real agent with two simulated GPUs: closed without its token,
parsed by prometheus_client's own text parser, figures equal to the status document's, no secret in it;
`promtool check metrics` where Debian's promtool is on the machine. And the settings refuse metrics beyond
loopback without a token."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from sparecycles.config import ConfigError, Settings, validate_settings
from sparecycles.control.client import ControlClient
from tests.conftest import start_agent

TOKEN = "m3tr1cs-t0ken-" + "a" * 24


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_metrics_need_the_token_parse_and_match_the_status_without_any_secret(home: Path, tmp_path: Path) -> None:
    token_file = tmp_path / "metrics.token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    port = free_port()
    config = home / "config" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'[metrics]\nenabled = true\nport = {port}\ntoken_file = "{token_file}"\n')
    agent = start_agent(home, "--simulated-gpus", "2")
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        deadline = time.monotonic() + 30
        while True:  # served right after the control API, which start_agent waited for
            try:
                closed = httpx.get(url)
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline, f"no metrics on {url}: {agent.console}"
                time.sleep(0.1)
        assert closed.status_code == 401
        assert httpx.get(url, headers={"Authorization": "Bearer wrong-token-wrong-token"}).status_code == 401
        response = httpx.get(url, headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/plain; version=")
        with ControlClient(agent.endpoint) as client:
            status = client.status()
        text = response.text
    finally:
        agent.stop()

    families = {family.name: family for family in text_string_to_metric_families(text)}
    temperatures = {s.labels["gpu"]: s.value for s in families["sparecycles_gpu_temperature_celsius"].samples}
    assert set(temperatures) == {"0", "1"}
    for gpu in status.gpus:  # read a moment apart from the status: the simulated readings hold steady
        assert gpu.readings is not None
        assert temperatures[str(gpu.index)] == pytest.approx(gpu.readings.temperature_c, abs=2)
        states = {
            s.labels["state"]: s.value
            for s in families["sparecycles_gpu_state"].samples
            if s.labels["gpu"] == str(gpu.index)
        }
        assert sum(states.values()) == 1  # exactly one state each
    info = families["sparecycles_gpu_info"].samples
    assert {s.labels["simulated"] for s in info} == {"true"}
    assert families["sparecycles_gpu_energy_joules"].type == "counter"
    assert sum(s.value for s in families["sparecycles_agent_state"].samples) == 1
    assert "sparecycles_earnings_today_base_units" in families  # the ledger's figure for today
    # No secret: not the metrics token, not the control API's token, not the identity key's file content.
    assert TOKEN not in text
    assert agent.endpoint.token not in text
    promtool = os.environ.get("SPARECYCLES_TEST_PROMTOOL") or shutil.which("promtool")  # make test sets it
    if promtool:
        checked = subprocess.run(
            [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr


def test_metrics_beyond_loopback_without_a_token_are_refused_with_what_to_do() -> None:
    with pytest.raises(ConfigError, match="token_file"):
        validate_settings({"metrics": {"enabled": True, "address": "0.0.0.0"}}, source="t")
    assert validate_settings({"metrics": {"enabled": True}}, source="t").metrics.address == "127.0.0.1"
    assert Settings().metrics.enabled is False


def test_a_token_file_others_can_read_is_refused(tmp_path: Path) -> None:
    from sparecycles.agent.metrics.server import MetricsError, read_token

    loose = tmp_path / "metrics.token"
    loose.write_text(TOKEN)
    loose.chmod(0o644)
    with pytest.raises(MetricsError, match="chmod 600"):
        read_token(loose)
    loose.chmod(0o600)
    assert read_token(loose) == TOKEN
