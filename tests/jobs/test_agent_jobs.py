"""Jobs through a real agent process: `sparecycles run-here`, a SIGKILL mid-job, and a graceful stop."""

from __future__ import annotations

import hashlib
import json
import queue
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sparecycles.control.client import ControlClient
from sparecycles.control.models import AgentEvent, EventType
from tests.conftest import RunningAgent, run_cli, start_agent
from tests.jobs.conftest import LocalRegistry

pytestmark = pytest.mark.docker


def configure(home: Path, registry: LocalRegistry) -> None:
    """Jobs from the test registry, and work allowed all day: the tests' agent cannot see an owner's idle
    time (no display), and CPU-only jobs follow the policy like any other."""
    config = home / "config" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(
        f'[work]\nmode = "schedule"\n[schedule]\nwindows = ["daily"]\n'
        f'[jobs]\nallowed_registries = ["{registry.host}"]\n'
    )


def write_spec(folder: Path, image: str, script: str, **fields: Any) -> Path:
    spec = {"image": image, "command": ["sh", "-c", script], "max_runtime_s": 120, **fields}
    path = folder / "job.json"
    path.write_text(json.dumps(spec))
    return path


def job_containers(client: Any, home: Path) -> list[Any]:
    """This agent's job containers (by the agent id it keeps in its state folder), running or not."""
    agent_id = (home / "state" / "agent-id").read_text().strip()
    labels = ["dev.sparecycles.role=job", f"dev.sparecycles.agent={agent_id}"]
    return list(client.containers.list(all=True, filters={"label": labels}))


def wait_for_job(agent: RunningAgent, done: Callable[[dict[str, Any]], bool], timeout_s: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    with ControlClient(agent.endpoint) as client:
        while time.monotonic() < deadline:
            listed = client.jobs()
            if listed and done(listed[0]):
                return listed[0]
            time.sleep(0.2)
        raise AssertionError(f"the job did not get there: {client.jobs()}")


def test_a_job_run_here_comes_back_with_its_outputs(
    home: Path, local_registry: LocalRegistry, busybox_image: str, docker_exec_works: None
) -> None:
    configure(home, local_registry)
    agent = start_agent(home)
    events: queue.Queue[AgentEvent] = queue.Queue()

    def listen() -> None:
        with ControlClient(agent.endpoint) as client:
            for event in client.events():
                events.put(event)

    threading.Thread(target=listen, daemon=True).start()
    time.sleep(0.5)  # let the stream subscribe
    try:
        spec = write_spec(home.parent, busybox_image, "echo rendered > /job/output/frame.txt")
        result = run_cli(home, "run-here", str(spec))
        assert result.returncode == 0, result.stderr
        assert "accepted" in result.stdout
        job = wait_for_job(agent, lambda j: j["state"] == "finished")
        states = [e.data["state"] for e in list(events.queue) if e.type is EventType.JOB_STATE]
        assert states[-1] == "finished"
        assert "running" in states
        (output,) = job["outputs"]
        assert output["path"] == "frame.txt"
        assert output["sha256"] == hashlib.sha256(b"rendered\n").hexdigest()
        assert (Path(job["outputs_dir"]) / "frame.txt").read_text() == "rendered\n"
        assert "finished" in run_cli(home, "local-jobs").stdout
    finally:
        agent.stop()


def test_a_refused_job_says_why_and_nothing_runs(home: Path, local_registry: LocalRegistry, busybox_image: str) -> None:
    configure(home, local_registry)
    agent = start_agent(home)
    try:
        spec = write_spec(home.parent, busybox_image, "true", privileged=True)
        result = run_cli(home, "run-here", str(spec))
        assert result.returncode == 1
        assert "refused: job asks for privileged mode" in result.stderr
        with ControlClient(agent.endpoint) as client:
            assert client.jobs() == []
    finally:
        agent.stop()


def kill_agent_mid_job(home: Path, registry: LocalRegistry, image: str, script: str) -> None:
    """Start an agent, run a job, and SIGKILL the agent once the job runs (its container stays)."""
    configure(home, registry)
    agent = start_agent(home)
    spec = write_spec(home.parent, image, script)
    assert run_cli(home, "run-here", str(spec)).returncode == 0
    wait_for_job(agent, lambda j: j["state"] == "running")
    agent.process.send_signal(signal.SIGKILL)
    agent.process.wait(10)


def test_after_sigkill_the_restarted_agent_re_adopts_the_running_job(
    home: Path, local_registry: LocalRegistry, busybox_image: str, docker_exec_works: None, docker_client: Any
) -> None:
    kill_agent_mid_job(home, local_registry, busybox_image, "sleep 6; echo survived > /job/output/result.txt")
    assert job_containers(docker_client, home)  # it outlived the agent
    restarted = start_agent(home)
    try:
        job = wait_for_job(restarted, lambda j: j["state"] == "finished")
        assert [o["path"] for o in job["outputs"]] == ["result.txt"]
        assert (Path(job["outputs_dir"]) / "result.txt").read_text() == "survived\n"
        assert "Re-adopted job" in (home / "logs" / "agent.log").read_text()
    finally:
        restarted.stop()


def test_after_sigkill_a_job_whose_lease_expired_meanwhile_is_removed_and_recorded_interrupted(
    home: Path, local_registry: LocalRegistry, busybox_image: str, docker_exec_works: None, docker_client: Any
) -> None:
    kill_agent_mid_job(home, local_registry, busybox_image, "echo partial > /job/output/part.txt; sleep 300")
    # While the agent was dead the lease ran out: its record says so (as a marketplace's expiry would).
    records_file = home / "state" / "jobs.json"
    records = json.loads(records_file.read_text())
    for record in records["jobs"].values():
        record["expires_at"] = "2020-01-01T00:00:00+00:00"
    records_file.write_text(json.dumps(records))
    restarted = start_agent(home)
    try:
        job = wait_for_job(restarted, lambda j: j["state"] == "interrupted")
        assert "lease" in (job["reason"] or "")
        assert [o["path"] for o in job["outputs"]] == ["part.txt"]  # what could be collected was
        deadline = time.monotonic() + 20
        while job_containers(docker_client, home) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert job_containers(docker_client, home) == []
    finally:
        restarted.stop()


def test_a_graceful_stop_stops_the_job_too(
    home: Path, local_registry: LocalRegistry, busybox_image: str, docker_exec_works: None, docker_client: Any
) -> None:
    configure(home, local_registry)
    agent = start_agent(home)
    spec = write_spec(home.parent, busybox_image, "sleep 300")
    assert run_cli(home, "run-here", str(spec)).returncode == 0
    wait_for_job(agent, lambda j: j["state"] == "running")
    started = time.monotonic()
    assert agent.stop() == 0
    assert time.monotonic() - started < 10
    assert job_containers(docker_client, home) == []


def test_on_this_gpu_less_machine_the_owners_pause_stops_a_cpu_job_and_refuses_the_next(
    home: Path, local_registry: LocalRegistry, busybox_image: str, docker_exec_works: None, docker_client: Any
) -> None:
    configure(home, local_registry)
    agent = start_agent(home)
    try:
        with ControlClient(agent.endpoint) as client:
            # The API answers from its start; the machine's first decision comes with the engine's first tick.
            deadline = time.monotonic() + 20
            while (cpu_work := client.status().cpu_work) is None and time.monotonic() < deadline:
                time.sleep(0.1)
            assert cpu_work is not None
            assert (cpu_work.state, cpu_work.cause) == ("ready", "scheduled")
        spec = write_spec(home.parent, busybox_image, "sleep 300")
        assert run_cli(home, "run-here", str(spec)).returncode == 0
        wait_for_job(agent, lambda j: j["state"] == "running")
        assert run_cli(home, "pause").returncode == 0
        job = wait_for_job(agent, lambda j: j["state"] == "preempted", timeout_s=30)
        assert job["reason"] == "preempted: stopped: paused by you"
        assert job_containers(docker_client, home) == []
        refused = run_cli(home, "run-here", str(spec))
        assert refused.returncode == 1
        assert "refused: this computer may not work now (stopped: paused by you)" in refused.stderr
        with ControlClient(agent.endpoint) as client:
            cpu_work = client.status().cpu_work
            assert cpu_work is not None
            assert (cpu_work.state, cpu_work.reason) == ("stopped", "stopped: paused by you")
    finally:
        agent.stop()


def test_without_a_docker_engine_the_status_says_so_and_the_agent_carries_on(home: Path) -> None:
    agent = start_agent(home, DOCKER_HOST=f"unix://{home.parent / 'no-engine.sock'}")
    try:
        deadline = time.monotonic() + 20
        with ControlClient(agent.endpoint) as client:
            status = client.status()
            while status.jobs_problem is None and time.monotonic() < deadline:
                time.sleep(0.2)
                status = client.status()
        assert status.jobs_problem is not None
        assert status.jobs_problem.startswith("Docker engine not reachable")
        assert "sudo systemctl start docker" in status.jobs_problem
        assert agent.process.poll() is None
    finally:
        assert agent.stop() == 0
