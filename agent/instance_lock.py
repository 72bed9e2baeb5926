"""One agent per user: an exclusively created lock file that also says how to reach the agent.

Beside it, the agent holds a kernel lock (``flock``) on a guard file for its whole life, from before the lock
file exists. The kernel lets it go when the process ends, however it ends, so a held guard means a live agent:
one still starting (importing, opening its ledger) for longer than any grace is refused, not taken for stale.

A lock left behind by an agent that died is stale and is replaced: its PID is gone, or nothing
listens on its API port (the PID was reused) for longer than the start-up grace. A lock whose agent
answers means "already running" and we refuse to start; so does one whose live agent does not answer
in time (stopped with SIGSTOP, or busy): a slow agent is still an agent, and a second one beside it
would fight it for the GPUs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sparecycles.control.endpoint import AgentAlreadyRunning, AgentEndpoint, EndpointFileError, read_endpoint
from sparecycles.fileio import atomic_write_text

log = logging.getLogger(__name__)

GUARD_SUFFIX = ".held"  # the guard file beside the lock file: "agent.lock" -> "agent.lock.held"

EndpointProbe = Callable[[AgentEndpoint], bool | None]
"""True: the agent answers. False: it certainly does not (nothing listens on the port, or something that
is not this agent answered). None: no answer in time, which proves nothing (a stopped or busy agent)."""


@dataclass(frozen=True)
class _FileIdentity:
    """What a lock file was when it was judged stale, to see that it is still the same file before removal."""

    device: int
    inode: int
    mtime_ns: int
    content: bytes


def _identity(path: Path) -> _FileIdentity | None:
    try:
        with path.open("rb") as handle:
            info = os.fstat(handle.fileno())
            content = handle.read()
    except FileNotFoundError:
        return None
    return _FileIdentity(info.st_dev, info.st_ino, info.st_mtime_ns, content)


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


NO_GUARD = -1  # the platform or the file system has no flock: the lock file and its judgement alone

if sys.platform == "win32":

    def _take_guard(path: Path) -> int | None:
        return NO_GUARD

    def _drop_guard(descriptor: int) -> None:
        return

else:
    import errno
    import fcntl

    # A file system that refuses flock (NFS mounted "nolock", some FUSE ones) says so with one of these.
    _UNSUPPORTED = frozenset({errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS})

    def _take_guard(path: Path) -> int | None:
        """A descriptor holding the guard (an exclusive ``flock`` of ``path``, with this pid written in it), None
        when another live process holds it, or NO_GUARD where the file system cannot lock. The file itself
        stays: removing a locked file would let a third starter lock a new file of the same name beside the
        holder's."""
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.ftruncate(descriptor, 0)
            os.write(descriptor, f"{os.getpid()}\n".encode())
        except BlockingIOError:
            os.close(descriptor)
            return None
        except OSError as exc:
            os.close(descriptor)
            if exc.errno not in _UNSUPPORTED:
                raise
            log.warning("The file system of %s cannot lock files (%s): the agent lock is judged without it", path, exc)
            return NO_GUARD
        except BaseException:
            os.close(descriptor)
            raise
        return descriptor

    def _drop_guard(descriptor: int) -> None:
        if descriptor != NO_GUARD:
            os.close(descriptor)  # releases the flock


def _guard_pid(path: Path) -> int:
    """The pid the guard's holder wrote in it (0 when not yet written or unreadable)."""
    try:
        word = path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return 0
    return int(word) if word.isdigit() else 0


class InstanceLock:
    """Holds the per-user agent lock for the life of the agent process."""

    def __init__(
        self,
        path: Path,
        *,
        version: str,
        probe: EndpointProbe,
        startup_grace_seconds: float = 5.0,
    ) -> None:
        self._path = path
        self._version = version
        self._probe = probe
        self._startup_grace_seconds = startup_grace_seconds
        self._held = False
        self._guard: int | None = None

    @property
    def guard_path(self) -> Path:
        return self._path.with_name(self._path.name + GUARD_SUFFIX)

    def acquire(self) -> None:
        """Take the lock, replacing a stale one; raise :class:`AgentAlreadyRunning` otherwise."""
        guard = _take_guard(self.guard_path)
        if guard is None:
            raise AgentAlreadyRunning(self._guard_holder())
        try:
            self._take_lock_file()
        except BaseException:
            _drop_guard(guard)
            raise
        self._guard = guard

    def _take_lock_file(self) -> None:
        # With the guard held, no agent that takes it can hold the lock file: one left there is judged as
        # before, for an agent of a version without the guard, or a stale file.
        for _attempt in range(3):
            if self._create():
                self._held = True
                return
            judged = _identity(self._path)
            if judged is None:  # vanished meanwhile: the next create decides
                continue
            holder = self._live_holder()
            if holder is not None:
                raise AgentAlreadyRunning(holder)
            # Another starter may have replaced the stale file with its own lock while we judged: remove only
            # the very file we judged (the same inode, unchanged), else judge again.
            if _identity(self._path) != judged:
                continue
            log.warning("Replacing a stale agent lock at %s (its agent is gone)", self._path)
            with contextlib.suppress(FileNotFoundError):
                self._path.unlink()
        raise RuntimeError(f"Could not take the agent lock {self._path}; another agent keeps replacing it.")

    def publish(self, port: int, token: str) -> None:
        """Record the control API's port and token once the socket is bound."""
        endpoint = AgentEndpoint(pid=os.getpid(), version=self._version, port=port, token=token)
        atomic_write_text(self._path, endpoint.to_json(), mode=0o600)

    def release(self) -> None:
        """Remove the lock, but only while it is still ours, then let the guard go."""
        if not self._held:
            return
        self._held = False
        with contextlib.suppress(EndpointFileError, OSError):
            endpoint = read_endpoint(self._path)
            if endpoint is not None and endpoint.pid == os.getpid():
                self._path.unlink()
        if self._guard is not None:
            _drop_guard(self._guard)
            self._guard = None

    def _guard_holder(self) -> AgentEndpoint:
        """The agent holding the guard, as its lock file describes it once it has published its API (waiting up
        to the start-up grace for that); before then, its pid alone."""
        deadline = time.monotonic() + self._startup_grace_seconds
        while True:
            holder = _guard_pid(self.guard_path)
            with contextlib.suppress(EndpointFileError):
                endpoint = read_endpoint(self._path)
                # Its own lock file: a stale one left by a crashed agent may be there while the holder judges it.
                if endpoint is not None and endpoint.port is not None and endpoint.pid == holder:
                    return endpoint
            if time.monotonic() >= deadline:
                return AgentEndpoint(pid=holder, version="")
            time.sleep(0.1)

    def _create(self) -> bool:
        self._path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            descriptor = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return False
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(AgentEndpoint(pid=os.getpid(), version=self._version).to_json())
        return True

    def _live_holder(self) -> AgentEndpoint | None:
        """The endpoint of a running agent holding the lock, or None when the lock is stale."""
        deadline = time.monotonic() + self._startup_grace_seconds
        while True:
            try:
                endpoint = read_endpoint(self._path)
            except EndpointFileError:
                return None
            if endpoint is None:  # vanished meanwhile: the next create decides
                return None
            if endpoint.pid == os.getpid() or not pid_alive(endpoint.pid):
                return None
            if endpoint.port is not None and endpoint.token:
                answer = self._probe(endpoint)
                if answer is None:  # alive but slow to answer (stopped, busy): still the agent
                    log.warning("The agent (pid %d) holding %s did not answer in time", endpoint.pid, self._path)
                    return endpoint
                if answer:
                    return endpoint
            # Alive but not (or no longer, or not yet) answering on its port: only after the grace is it taken
            # for another process that reused a dead agent's PID.
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.1)
