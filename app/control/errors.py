"""What a call to the agent's control API can fail with, apart from the client itself.

Why a module of their own: the CLI's commands catch these, and importing them must not load the client's HTTP
stack and models (httpx, pydantic) into every command, `sparecycles --version` included.
"""

from __future__ import annotations


class AgentUnavailable(Exception):
    """No agent answers; ``str()`` says what to do about it."""


class AgentNotAnswering(AgentUnavailable):
    """The agent took the connection but gave no answer in time: it runs, busy or stuck (stopped, say), rather
    than gone. The desktop app waits for it instead of offering to start another."""


class AgentRequestError(Exception):
    """The agent answered with an error; ``str()`` is its message."""

    def __init__(self, status_code: int, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.problems = problems or []
