"""The per-user lock on its own, with the API probe passed in."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from sparecycles.agent.instance_lock import InstanceLock
from sparecycles.control.endpoint import AgentAlreadyRunning, AgentEndpoint, read_endpoint


def _lock(path: Path, answers: bool) -> InstanceLock:
    return InstanceLock(path, version="1.0", probe=lambda _endpoint: answers, startup_grace_seconds=0.3)


def _other_live_pid() -> subprocess.Popen[bytes]:
    return subprocess.Popen(["sleep", "30"])


def test_acquire_creates_a_private_file_recording_the_pid(tmp_path: Path) -> None:
    path = tmp_path / "agent.lock"
    lock = _lock(path, answers=False)
    lock.acquire()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    endpoint = read_endpoint(path)
    assert endpoint is not None
    assert endpoint.pid == os.getpid()
    assert endpoint.port is None
    lock.publish(1234, "k" * 43)
    assert read_endpoint(path) == AgentEndpoint(pid=os.getpid(), version="1.0", port=1234, token="k" * 43)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    lock.release()
    assert not path.exists()


def test_a_live_answering_holder_is_respected(tmp_path: Path) -> None:
    path = tmp_path / "agent.lock"
    holder = _other_live_pid()
    try:
        path.write_text(AgentEndpoint(pid=holder.pid, version="1.0", port=5, token="t" * 43).to_json())
        with pytest.raises(AgentAlreadyRunning, match=f"pid {holder.pid}"):
            _lock(path, answers=True).acquire()
        assert read_endpoint(path) is not None
    finally:
        holder.kill()
        holder.wait()


def test_a_live_process_that_never_opened_an_api_is_stale(tmp_path: Path) -> None:
    path = tmp_path / "agent.lock"
    holder = _other_live_pid()
    try:
        path.write_text(AgentEndpoint(pid=holder.pid, version="1.0").to_json())
        lock = _lock(path, answers=True)
        lock.acquire()
        endpoint = read_endpoint(path)
        assert endpoint is not None
        assert endpoint.pid == os.getpid()
    finally:
        holder.kill()
        holder.wait()


def test_a_damaged_lock_file_is_stale(tmp_path: Path) -> None:
    path = tmp_path / "agent.lock"
    path.write_text("{not json")
    _lock(path, answers=True).acquire()
    endpoint = read_endpoint(path)
    assert endpoint is not None
    assert endpoint.pid == os.getpid()


def test_release_leaves_someone_elses_lock_alone(tmp_path: Path) -> None:
    path = tmp_path / "agent.lock"
    lock = _lock(path, answers=False)
    lock.acquire()
    path.write_text(AgentEndpoint(pid=os.getpid() + 1, version="1.0").to_json())
    lock.release()
    assert path.exists()


def test_endpoint_repr_hides_the_token() -> None:
    endpoint = AgentEndpoint(pid=1, version="1", port=2, token="super-secret-token")
    assert "super-secret-token" not in repr(endpoint)
