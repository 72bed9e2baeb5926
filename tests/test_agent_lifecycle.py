"""The agent process for real: start, answer, one instance per user, stale locks, clean stops."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from sparecycles.control.endpoint import AgentEndpoint, read_endpoint
from tests.conftest import RunningAgent, run_cli, start_agent


def test_status_json_answers_from_an_isolated_home(agent: RunningAgent, home: Path) -> None:
    result = run_cli(home, "status", "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["pid"] == agent.process.pid
    assert document["state"] == "waiting"
    assert agent.paths.agent_lock_file.is_relative_to(home)


def test_second_instance_is_refused_with_a_clear_message(agent: RunningAgent, home: Path) -> None:
    result = run_cli(home, "agent", "--foreground")
    assert result.returncode == 4
    assert f"already running (pid {agent.process.pid}" in result.stderr
    assert "sparecycles status" in result.stderr
    assert agent.process.poll() is None  # the first agent is untouched
    assert read_endpoint(agent.paths.agent_lock_file) == agent.endpoint


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_stale_lock_of_a_dead_agent_is_replaced(home: Path) -> None:
    lock = home / "state" / "agent.lock"
    lock.parent.mkdir(parents=True)
    lock.write_text(AgentEndpoint(pid=_dead_pid(), version="0.0.1", port=9, token="x" * 43).to_json())
    running = start_agent(home)
    try:
        assert read_endpoint(lock) == running.endpoint
        assert "stale agent lock" in (home / "logs" / "agent.log").read_text()
    finally:
        assert running.stop() == 0


def test_the_command_line_sends_nothing_to_the_port_of_a_dead_agents_lock(home: Path) -> None:
    """After a SIGKILL the lock keeps the port and the token, and any local program may bind that port since."""
    import http.server
    import threading

    heard: list[str] = []

    class Rogue(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            heard.append(str(self.headers.get("Authorization")))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), Rogue) as rogue:
        threading.Thread(target=rogue.serve_forever, daemon=True).start()
        lock = home / "state" / "agent.lock"
        lock.parent.mkdir(parents=True)
        port = rogue.server_address[1]
        lock.write_text(AgentEndpoint(pid=_dead_pid(), version="0.0.1", port=port, token="z" * 43).to_json())
        result = run_cli(home, "status")
        rogue.shutdown()
    assert result.returncode == 3
    assert "is gone" in result.stderr
    assert heard == []


def test_stale_lock_whose_process_lives_but_does_not_answer_is_replaced(home: Path) -> None:
    """PIDs get reused: a live PID that does not answer the API is not an agent."""
    with socket.socket() as closed_port_finder:
        closed_port_finder.bind(("127.0.0.1", 0))
        dead_port = closed_port_finder.getsockname()[1]
    lock = home / "state" / "agent.lock"
    lock.parent.mkdir(parents=True)
    lock.write_text(AgentEndpoint(pid=os.getpid(), version="0.0.1", port=dead_port, token="y" * 43).to_json())
    running = start_agent(home)
    try:
        assert read_endpoint(lock) == running.endpoint
    finally:
        running.stop()


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_the_agent_cleanly_within_five_seconds(home: Path, stop_signal: signal.Signals) -> None:
    running = start_agent(home)
    # An open event stream must not hold the shutdown up.
    with httpx.stream("GET", f"{running.url}/v1/events", headers=running.auth, timeout=10) as stream:
        assert stream.status_code == 200
        started = time.monotonic()
        running.process.send_signal(stop_signal)
        exit_code = running.process.wait(timeout=10)
        elapsed = time.monotonic() - started
    assert exit_code == 0
    assert elapsed < 5, f"shutdown took {elapsed:.1f} s"
    assert not running.paths.agent_lock_file.exists()
    assert "SpareCycles agent stopped" in (home / "logs" / "agent.log").read_text()


def test_stop_command_shuts_the_agent_down(home: Path) -> None:
    running = start_agent(home)
    result = run_cli(home, "stop")
    assert result.returncode == 0, result.stderr
    assert running.process.wait(timeout=10) == 0
    assert not running.paths.agent_lock_file.exists()


def test_background_start_returns_once_the_agent_answers(home: Path) -> None:
    result = run_cli(home, "agent")
    assert result.returncode == 0, result.stderr
    endpoint = read_endpoint(home / "state" / "agent.lock")
    assert endpoint is not None
    assert f"pid {endpoint.pid}" in result.stdout
    status = run_cli(home, "status")
    assert status.returncode == 0
    assert "waiting" in status.stdout
    assert run_cli(home, "stop").returncode == 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (home / "state" / "agent.lock").exists():
        time.sleep(0.05)
    assert not (home / "state" / "agent.lock").exists()


@pytest.mark.parametrize(
    "command", [["status"], ["status", "--json"], ["pause"], ["resume"], ["snooze", "1h"], ["stop"]]
)
def test_commands_needing_the_agent_say_none_is_running(home: Path, command: list[str]) -> None:
    result = run_cli(home, *command)
    assert result.returncode == 3
    assert "No SpareCycles agent is running" in result.stderr
    assert "sparecycles agent" in result.stderr


def test_pause_snooze_resume_change_the_reported_state(agent: RunningAgent, home: Path) -> None:
    paused = run_cli(home, "pause")
    assert "paused" in paused.stdout
    snoozed = json.loads(run_cli(home, "status", "--json").stdout)
    assert snoozed["state"] == "paused"
    run_cli(home, "snooze", "90m")
    document = json.loads(run_cli(home, "status", "--json").stdout)
    assert document["state"] == "snoozed"
    assert document["snoozed_until"] is not None
    run_cli(home, "resume")
    assert json.loads(run_cli(home, "status", "--json").stdout)["state"] == "waiting"


def test_snooze_until_a_time_of_day(agent: RunningAgent, home: Path) -> None:
    from datetime import datetime, timedelta

    target = (datetime.now().astimezone() + timedelta(hours=2)).replace(second=0, microsecond=0)
    result = run_cli(home, "snooze", target.strftime("%H:%M"))
    assert result.returncode == 0, result.stderr
    document = json.loads(run_cli(home, "status", "--json").stdout)
    assert document["state"] == "snoozed"
    until = datetime.fromisoformat(document["snoozed_until"])
    assert abs((until - target).total_seconds()) <= 60


def test_a_time_of_day_is_the_agents_configured_zones(home: Path) -> None:
    """`snooze 18:30` means 18:30 where the agent's clock is (general.timezone), which its status shows."""
    from datetime import UTC, datetime, timedelta
    from zoneinfo import ZoneInfo

    system_offset = datetime.now().astimezone().utcoffset()
    zone_name = next(
        name
        for name in ("Pacific/Kiritimati", "Pacific/Pago_Pago")
        if datetime.now(ZoneInfo(name)).utcoffset() != system_offset
    )
    zone = ZoneInfo(zone_name)
    config = home / "config" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'[general]\ntimezone = "{zone_name}"\n')
    target = (datetime.now(zone) + timedelta(hours=2)).replace(second=0, microsecond=0)
    agent = start_agent(home)
    try:
        result = run_cli(home, "snooze", target.strftime("%H:%M"))
        assert result.returncode == 0, result.stderr
        until = datetime.fromisoformat(json.loads(run_cli(home, "status", "--json").stdout)["snoozed_until"])
    finally:
        agent.stop()
    assert abs((until - target.astimezone(UTC)).total_seconds()) <= 60


def test_snooze_rejects_a_bad_duration_before_calling_the_agent(home: Path) -> None:
    result = run_cli(home, "snooze", "soon")
    assert result.returncode == 2
    assert "90m" in result.stderr


def test_version_flag(home: Path) -> None:
    import sparecycles

    result = run_cli(home, "--version")
    assert result.stdout.strip() == f"sparecycles {sparecycles.__version__}"


def test_without_a_display_the_bare_command_runs_the_headless_agent_with_live_status(home: Path) -> None:
    from sparecycles.paths import AppPaths
    from tests.conftest import CLI, agent_env, wait_for_endpoint

    console_file = home.parent / "bare.txt"
    with console_file.open("wb") as console:
        process = subprocess.Popen([CLI], env=agent_env(home), stdout=console, stderr=subprocess.STDOUT)
    try:
        wait_for_endpoint(AppPaths.from_environment({"SPARECYCLES_HOME": str(home)}), process, console_file)
        run_cli(home, "pause")
        deadline = time.monotonic() + 10
        while "Status: paused" not in console_file.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        text = console_file.read_text()
        assert "No display found" in text
        assert "Status: paused" in text
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0


def test_one_gpu_is_paused_snoozed_and_resumed_alone_while_the_other_is_left_as_it_was(home: Path) -> None:
    agent = start_agent(home, "--simulated-gpus", "2")
    try:

        def gpus() -> list[dict[str, object]]:
            return list(json.loads(run_cli(home, "status", "--json").stdout)["gpus"])

        untouched = gpus()[0]["reason"]
        paused = run_cli(home, "pause", "--gpu", "1")
        assert paused.returncode == 0, paused.stderr
        zero, one = gpus()
        assert (one["cause"], one["reason"], one["owner_hold"]) == (
            "paused_by_owner",
            "stopped: you paused this GPU",
            {"until": None},
        )
        assert zero["reason"] == untouched
        assert zero["owner_hold"] is None

        snoozed = run_cli(home, "snooze", "2h", "--gpu", "0")
        assert snoozed.returncode == 0, snoozed.stderr
        zero, one = gpus()
        assert zero["cause"] == "snoozed"
        assert zero["owner_hold"]["until"] is not None  # type: ignore[index]
        assert one["cause"] == "paused_by_owner"

        missing = run_cli(home, "pause", "--gpu", "7")
        assert missing.returncode != 0
        assert "There is no GPU 7 on this machine (its GPUs: 0, 1)" in missing.stderr

        run_cli(home, "resume", "--gpu", "1")
        zero, one = gpus()
        assert one["owner_hold"] is None
        assert one["reason"] == untouched
        assert zero["cause"] == "snoozed"  # the other GPU's snooze stays
        run_cli(home, "resume")  # everything
        assert [gpu["owner_hold"] for gpu in gpus()] == [None, None]
    finally:
        agent.stop()
