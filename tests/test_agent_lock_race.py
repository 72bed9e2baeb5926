"""A second agent must never take the lock of a live one: not when its API is slow, not in a race.

A stopped (SIGSTOP) or busy agent answers no probe in time, yet it is alive and will go on; and two starters
replacing the same stale lock must not remove each other's fresh lock.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sparecycles.agent.daemon import probe_endpoint
from sparecycles.agent.instance_lock import InstanceLock
from sparecycles.control.endpoint import AgentAlreadyRunning, AgentEndpoint, read_endpoint

TOKEN = "t" * 43


@pytest.fixture
def live_pid() -> Iterator[int]:
    """A process that is alive (as a stopped agent is) for the test's length."""
    process = subprocess.Popen(["sleep", "30"])
    yield process.pid
    process.kill()
    process.wait()


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def _write(path: Path, endpoint: AgentEndpoint) -> None:
    path.write_text(endpoint.to_json())


def test_a_live_agent_whose_probe_times_out_keeps_its_lock(tmp_path: Path, live_pid: int) -> None:
    path = tmp_path / "agent.lock"
    holder = AgentEndpoint(pid=live_pid, version="1.0", port=5, token=TOKEN)
    _write(path, holder)
    lock = InstanceLock(path, version="1.0", probe=lambda _endpoint: None, startup_grace_seconds=0.2)
    with pytest.raises(AgentAlreadyRunning, match=f"pid {live_pid}"):
        lock.acquire()
    assert read_endpoint(path) == holder


def test_a_live_pid_refusing_connections_is_taken_over_only_after_the_grace(tmp_path: Path, live_pid: int) -> None:
    """The PID of a dead agent reused by another program: nothing listens on the port it recorded."""
    path = tmp_path / "agent.lock"
    _write(path, AgentEndpoint(pid=live_pid, version="1.0", port=5, token=TOKEN))
    lock = InstanceLock(path, version="1.0", probe=lambda _endpoint: False, startup_grace_seconds=0.5)
    started = time.monotonic()
    lock.acquire()
    assert time.monotonic() - started >= 0.5
    endpoint = read_endpoint(path)
    assert endpoint is not None
    assert endpoint.pid == os.getpid()
    lock.release()


def test_a_lock_replaced_while_it_was_judged_stale_is_not_removed(tmp_path: Path, live_pid: int) -> None:
    """Another starter replaced the stale lock with its own between our judgement and our unlink."""
    path = tmp_path / "agent.lock"
    _write(path, AgentEndpoint(pid=live_pid, version="1.0", port=5, token=TOKEN))  # stale: nothing on port 5
    winner = AgentEndpoint(pid=live_pid, version="1.0", port=6, token="w" * 43)

    def probe(endpoint: AgentEndpoint) -> bool | None:
        if endpoint.port == 5:  # judged stale, and meanwhile the other starter takes the lock
            path.unlink()
            _write(path, winner)
            return False
        return True

    lock = InstanceLock(path, version="1.0", probe=probe, startup_grace_seconds=0)
    with pytest.raises(AgentAlreadyRunning):
        lock.acquire()
    assert read_endpoint(path) == winner


def test_a_dead_agents_lock_replaced_by_a_faster_starter_is_left_to_it(
    tmp_path: Path, live_pid: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two starters replace the same dead agent's lock: the slower one must not unlink the faster one's."""
    path = tmp_path / "agent.lock"
    _write(path, AgentEndpoint(pid=_dead_pid(), version="1.0", port=1, token=TOKEN))
    faster = AgentEndpoint(pid=live_pid, version="1.0", port=7, token="f" * 43)
    lock = InstanceLock(path, version="1.0", probe=lambda _endpoint: True, startup_grace_seconds=0.2)
    judge = lock._live_holder  # the judgement, then the other starter moves

    def judged_then_overtaken() -> AgentEndpoint | None:
        verdict = judge()
        if verdict is None and read_endpoint(path) != faster:
            path.unlink()
            _write(path, faster)
        return verdict

    monkeypatch.setattr(lock, "_live_holder", judged_then_overtaken)
    with pytest.raises(AgentAlreadyRunning, match=f"pid {live_pid}"):
        lock.acquire()
    assert read_endpoint(path) == faster


def test_the_probe_of_an_agent_that_accepts_but_never_answers_proves_nothing() -> None:
    """A SIGSTOP'd agent: the kernel still accepts connections on its socket, but no answer comes."""
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen(8)
        port = listening.getsockname()[1]
        assert probe_endpoint(AgentEndpoint(pid=1, version="1.0", port=port, token=TOKEN)) is None


def test_the_probe_of_a_port_nobody_listens_on_is_a_no() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    assert probe_endpoint(AgentEndpoint(pid=1, version="1.0", port=port, token=TOKEN)) is False


def test_a_stopped_agent_keeps_its_lock_against_the_real_probe(tmp_path: Path, live_pid: int) -> None:
    path = tmp_path / "agent.lock"
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen(8)
        holder = AgentEndpoint(pid=live_pid, version="1.0", port=listening.getsockname()[1], token=TOKEN)
        _write(path, holder)
        with pytest.raises(AgentAlreadyRunning):
            InstanceLock(path, version="1.0", probe=probe_endpoint, startup_grace_seconds=0.2).acquire()
    assert read_endpoint(path) == holder


GUARD_HOLDER = """
import sys, time
from pathlib import Path
from sparecycles.agent.instance_lock import InstanceLock
lock = InstanceLock(Path(sys.argv[1]), version="1.0", probe=lambda _endpoint: False, startup_grace_seconds=0.2)
lock.acquire()
print("held", flush=True)
time.sleep(60)
"""


@pytest.fixture
def starting_agent(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process that took the lock and is still starting: no control API yet, for longer than any grace."""
    process = subprocess.Popen(
        [sys.executable, "-c", GUARD_HOLDER, str(tmp_path / "agent.lock")], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "held"
    yield process
    process.kill()
    process.wait()


def test_an_agent_still_starting_past_the_grace_is_not_taken_for_stale(
    tmp_path: Path, starting_agent: subprocess.Popen[str]
) -> None:
    """Before the guard, a lock file with a live pid and no API was stale after the grace: a second agent took it."""
    path = tmp_path / "agent.lock"
    time.sleep(0.3)  # past its grace: the lock file alone would now be judged stale
    lock = InstanceLock(path, version="1.0", probe=lambda _endpoint: False, startup_grace_seconds=0.2)
    with pytest.raises(AgentAlreadyRunning, match=f"pid {starting_agent.pid}, still starting") as refused:
        lock.acquire()
    assert refused.value.endpoint.pid == starting_agent.pid
    endpoint = read_endpoint(path)
    assert endpoint is not None
    assert endpoint.pid == starting_agent.pid  # its lock file untouched


def test_the_guard_goes_with_its_process_however_it_ends(tmp_path: Path, starting_agent: subprocess.Popen[str]) -> None:
    path = tmp_path / "agent.lock"
    starting_agent.kill()  # SIGKILL: no release ran, the lock file is left behind
    starting_agent.wait()
    assert path.exists()
    lock = InstanceLock(path, version="1.0", probe=lambda _endpoint: False, startup_grace_seconds=0.2)
    lock.acquire()
    endpoint = read_endpoint(path)
    assert endpoint is not None
    assert endpoint.pid == os.getpid()
    assert lock.guard_path.read_text().strip() == str(os.getpid())
    lock.release()
    assert not path.exists()
    again = InstanceLock(path, version="1.0", probe=lambda _endpoint: False)
    again.acquire()  # released: free again
    again.release()


def test_a_refused_starter_leaves_the_guard_free_for_the_next(tmp_path: Path, live_pid: int) -> None:
    """A starter refused by an older agent's answering lock file (no guard held) must not keep the guard."""
    path = tmp_path / "agent.lock"
    _write(path, AgentEndpoint(pid=live_pid, version="0.9", port=5, token=TOKEN))
    for _ in range(2):
        with pytest.raises(AgentAlreadyRunning, match=f"pid {live_pid}, control API"):
            InstanceLock(path, version="1.0", probe=lambda _endpoint: True, startup_grace_seconds=0.2).acquire()


def test_a_refusal_names_the_guards_holder_not_a_dead_agents_lock_file(
    tmp_path: Path, starting_agent: subprocess.Popen[str]
) -> None:
    """While the holder judges a crashed agent's lock file (its pid dead, its port recorded), a third starter is
    told of the holder, not of the dead agent."""
    path = tmp_path / "agent.lock"
    dead = _dead_pid()
    _write(path, AgentEndpoint(pid=dead, version="1.0", port=5, token=TOKEN))
    lock = InstanceLock(path, version="1.0", probe=lambda _endpoint: True, startup_grace_seconds=0.2)
    with pytest.raises(AgentAlreadyRunning, match=f"pid {starting_agent.pid}, still starting") as refused:
        lock.acquire()
    assert refused.value.endpoint.pid == starting_agent.pid


def test_a_file_system_without_flock_falls_back_to_the_lock_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """NFS mounted "nolock" and some FUSE file systems refuse flock: the agent still starts, judged as before."""
    import errno
    import fcntl

    def no_locks(_descriptor: int, _operation: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    path = tmp_path / "agent.lock"
    lock = InstanceLock(path, version="1.0", probe=lambda _endpoint: False, startup_grace_seconds=0.2)
    lock.acquire()
    assert "cannot lock files" in caplog.text
    endpoint = read_endpoint(path)
    assert endpoint is not None
    assert endpoint.pid == os.getpid()
    lock.release()
    assert not path.exists()
