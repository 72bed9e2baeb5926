"""uvicorn's server for ``market serve``, which answers the providers' long polls as soon as it is told to stop.

Imported only when serving (uvicorn is not needed to run the CLI's other commands).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from types import FrameType

import uvicorn


class ReleasingServer(uvicorn.Server):
    """uvicorn's server, which on SIGTERM or Ctrl+C first answers every waiting long poll (with what it has),
    so that stopping takes a moment instead of the whole graceful timeout held open by providers' polls.
    ``beside`` starts what runs alongside in the same loop (the metrics endpoint) and returns its stop."""

    def __init__(
        self,
        config: uvicorn.Config,
        release_polls: Callable[[], None],
        beside: Callable[[], Awaitable[Callable[[], Awaitable[None]]]] | None = None,
    ) -> None:
        super().__init__(config)
        self._release_polls = release_polls
        self._beside = beside
        self._loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        stop_beside = await self._beside() if self._beside is not None else None
        try:
            await super().serve(sockets)
        finally:
            if stop_beside is not None:
                await stop_beside()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._loop is not None:  # a signal handler: hand the release to the loop, which owns the polls
            self._loop.call_soon_threadsafe(self._release_polls)
        super().handle_exit(sig, frame)
