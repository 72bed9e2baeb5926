"""Start the agent as a background process (used by ``sparecycles agent`` and the GUI).

The child is started with ``sys.executable`` so a frozen bundle starts itself; it gets its own
session so closing the terminal or the GUI does not kill it. Its early output is kept so a failed
start can be shown to the user as it happened.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from sparecycles.control.client import ControlClient
from sparecycles.control.endpoint import AgentEndpoint, EndpointFileError, read_endpoint
from sparecycles.control.errors import AgentUnavailable
from sparecycles.paths import AppPaths


class AgentStartError(Exception):
    """The agent process did not come up; ``output`` holds the last lines it printed."""

    def __init__(self, message: str, output: str, exit_code: int | None) -> None:
        super().__init__(message)
        self.output = output
        self.exit_code = exit_code


def sparecycles_command(*arguments: str) -> list[str]:
    """``sparecycles ARGUMENTS`` run by this very installation (a frozen bundle starts itself)."""
    if getattr(sys, "frozen", False):
        return [sys.executable, *arguments]
    return [sys.executable, "-m", "sparecycles", *arguments]


def agent_command(extra_arguments: Sequence[str] = ()) -> list[str]:
    return sparecycles_command("agent", "--foreground", *extra_arguments)


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def start_agent_process(
    paths: AppPaths, *, timeout_seconds: float = 15.0, extra_arguments: Sequence[str] = ()
) -> AgentEndpoint:
    """Start the agent and wait until its control API answers; raise :class:`AgentStartError`."""
    paths.ensure()
    output_file = paths.log_dir / "agent-console.log"
    with open(output_file, "wb") as output:
        process = subprocess.Popen(
            agent_command(extra_arguments),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=os.environ.copy(),
        )
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        exit_code = process.poll()
        if exit_code is not None:
            raise AgentStartError("The SpareCycles agent stopped right after starting.", _tail(output_file), exit_code)
        try:
            endpoint = read_endpoint(paths.agent_lock_file)
        except EndpointFileError:
            endpoint = None
        if endpoint is not None and endpoint.pid == process.pid and endpoint.port is not None:
            try:
                with ControlClient(endpoint, timeout=1.0) as client:
                    client.status()
                return endpoint
            except AgentUnavailable:
                pass
        time.sleep(0.05)
    raise AgentStartError(
        f"The SpareCycles agent did not answer within {timeout_seconds:.0f} s; it is still running as "
        f"pid {process.pid}. See its log in {paths.agent_log_file}.",
        _tail(output_file),
        None,
    )
