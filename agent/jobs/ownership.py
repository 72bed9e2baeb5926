"""Which processes on a GPU are our jobs' (or the agent's own, such as the benchmark's worker), so the
policy never mistakes our work for the owner's game.

NVML lists GPU processes by host PID. A job container's processes are found by their cgroup: on
Linux, ``/proc/<pid>/cgroup`` names the container's full ID (``…/docker/<id>`` with cgroup v1 and
the cgroupfs driver, ``…/docker-<id>.scope`` with systemd). Reading it is a small file read with no
call to the engine, so a process the job starts a moment ago is recognised at once.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Collection
from pathlib import Path

_CONTAINER_ID = re.compile(r"(?:docker[/-]|/)([0-9a-f]{64})(?:\.scope)?(?:/|$)")


def container_of(pid: int, proc: Path = Path("/proc")) -> str | None:
    """The full ID of the container that process ``pid`` runs in, or None (not in a container, gone)."""
    try:
        text = (proc / str(pid) / "cgroup").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        match = _CONTAINER_ID.search(line.rsplit(":", 1)[-1])
        if match:
            return match[1]
    return None


def parent_of(pid: int, proc: Path = Path("/proc")) -> int | None:
    """The parent PID of ``pid`` (``/proc/<pid>/stat``'s fourth field), or None when it is gone."""
    try:
        text = (proc / str(pid) / "stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    fields = text.rpartition(")")[2].split()  # after "(comm)", which may itself hold spaces or parentheses
    return int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else None


class JobProcesses:
    """Answers "is this PID ours?" for the work engine: the agent itself, or a process of one of its jobs."""

    def __init__(self, proc: Path = Path("/proc"), own_pid: int | None = None) -> None:
        self._proc = proc
        self._own_pid = os.getpid() if own_pid is None else own_pid
        self._containers: Callable[[], Collection[str]] = frozenset

    def track(self, container_ids: Callable[[], Collection[str]]) -> None:
        """Where the IDs of the running job containers come from (the job runtime)."""
        self._containers = container_ids

    def is_ours(self, pid: int) -> bool:
        if pid == self._own_pid or parent_of(pid, self._proc) == self._own_pid:
            return True  # the agent, or a process it started (the benchmark's worker)
        containers = self._containers()
        if not containers:
            return False
        return container_of(pid, self._proc) in containers
