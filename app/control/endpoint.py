"""The agent's lock file: who holds the per-user instance, and how to reach its control API.

The agent creates the file exclusively (so only one agent runs per user), first with its PID,
then, once its socket is bound, with the port and the per-start API token. The file is private
(0600): whoever can read it can command the agent.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class AgentEndpoint:
    pid: int
    version: str
    port: int | None = None
    token: str | None = None

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise ValueError("the agent has not opened its control API yet")
        return f"http://127.0.0.1:{self.port}"

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    def __repr__(self) -> str:  # keep the token out of logs and tracebacks
        return f"AgentEndpoint(pid={self.pid}, version={self.version!r}, port={self.port})"


class AgentAlreadyRunning(Exception):
    """Another agent of this user is running and answering; ``str()`` says what to do."""

    def __init__(self, endpoint: AgentEndpoint) -> None:
        who = f"pid {endpoint.pid}" if endpoint.pid > 0 else "its pid not yet recorded"
        if endpoint.port is None:  # it holds the lock but is still starting
            where = f"{who}, still starting: its control API is not open yet"
        else:
            where = f"{who}, control API on 127.0.0.1:{endpoint.port}"
        super().__init__(
            f"A SpareCycles agent is already running ({where}). Use `sparecycles status` to see it, or "
            "`sparecycles stop` to stop it before starting another."
        )
        self.endpoint = endpoint


class EndpointFileError(Exception):
    """The lock file exists but cannot be understood (being written, or damaged)."""


def read_endpoint(path: Path) -> AgentEndpoint | None:
    """The endpoint recorded in ``path``, or None when no agent lock exists."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        data = json.loads(text)
        return AgentEndpoint(
            pid=int(data["pid"]),
            version=str(data["version"]),
            port=None if data.get("port") is None else int(data["port"]),
            token=None if data.get("token") is None else str(data["token"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise EndpointFileError(f"The agent lock file {path} is incomplete or damaged ({exc}).") from None


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` still runs: it exists and is not a zombie (ended, waiting for its parent to reap it).
    psutil rather than ``os.kill(pid, 0)``, which on Windows sends CTRL_C_EVENT instead of asking."""
    import psutil  # here: the GUI reads an endpoint at start-up and needs psutil only for this

    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True
