"""A job's processes are recognised as ours by their cgroup: unit cases and a real container."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from sparecycles.agent.jobs.containers import ContainerRunner
from sparecycles.agent.jobs.ownership import JobProcesses, container_of
from sparecycles.agent.jobs.sandbox import ContainerPlan

ID = "a" * 64
OTHER = "b" * 64


def fake_proc(tmp_path: Path, cgroups: dict[int, str]) -> Path:
    for pid, text in cgroups.items():
        (tmp_path / str(pid)).mkdir(parents=True)
        (tmp_path / str(pid) / "cgroup").write_text(text)
    return tmp_path


def test_container_ids_in_both_cgroup_layouts(tmp_path: Path) -> None:
    proc = fake_proc(
        tmp_path,
        {
            10: f"12:pids:/docker/{ID}\n11:memory:/docker/{ID}\n",  # cgroup v1, cgroupfs driver
            11: f"0::/system.slice/docker-{ID}.scope\n",  # cgroup v2, systemd driver
            12: "0::/user.slice/user-1000.slice/session-2.scope\n",  # the owner's game
        },
    )
    assert container_of(10, proc) == ID
    assert container_of(11, proc) == ID
    assert container_of(12, proc) is None
    assert container_of(99, proc) is None  # gone


def test_only_processes_of_tracked_job_containers_are_ours(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path, {10: f"0::/docker/{ID}\n", 11: f"0::/docker/{OTHER}\n", 12: "0::/user.slice\n"})
    processes = JobProcesses(proc, own_pid=5)
    assert processes.is_ours(5)
    assert not processes.is_ours(10)  # nothing tracked yet
    processes.track(lambda: {ID})
    assert processes.is_ours(10)
    assert not processes.is_ours(11)  # someone else's container (another tool's, or the owner's)
    assert not processes.is_ours(12)


def test_a_real_job_containers_process_is_ours(runner: ContainerRunner, pulled_image: str, docker_client: Any) -> None:
    plan = ContainerPlan(job_id="owned", image=pulled_image, command=("sleep", "30"))
    with runner.create(plan) as job:
        job.start()
        pid = 0
        deadline = time.monotonic() + 10
        while not pid and time.monotonic() < deadline:
            pid = int(docker_client.api.inspect_container(job.id)["State"]["Pid"])
            time.sleep(0.05)
        assert container_of(pid) == job.id
        processes = JobProcesses()
        processes.track(lambda: {job.id})
        assert processes.is_ours(pid)
        assert processes.is_ours(os.getpid())
        assert not processes.is_ours(os.getppid())
        job.stop(grace_s=1)


def test_the_agents_own_child_processes_are_ours(tmp_path: Path) -> None:
    """The benchmark's worker is a child of the agent: its GPU use is the agent's, not the owner's."""
    proc = fake_proc(tmp_path, {20: "0::/user.slice\n", 21: "0::/user.slice\n"})
    (proc / "20" / "stat").write_text("20 (python3 (worker)) S 5 20 20 0 -1\n")  # a child of the agent (pid 5)
    (proc / "21" / "stat").write_text("21 (game) S 1 21 21 0 -1\n")
    processes = JobProcesses(proc, own_pid=5)
    assert processes.is_ours(20)
    assert not processes.is_ours(21)
    assert not processes.is_ours(22)  # gone


def test_a_real_child_process_is_ours() -> None:
    import subprocess

    child = subprocess.Popen(["sleep", "5"])
    try:
        assert JobProcesses().is_ours(child.pid)
        assert not JobProcesses(own_pid=os.getppid()).is_ours(child.pid)
    finally:
        child.kill()
        child.wait()
