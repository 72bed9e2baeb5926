"""The owner's private marketplace: the reference server, in the agent's process, on loopback.

In-process rather than a child process: one process costs the owner less memory than two (measured:
about 137 MB together, against 105 + 105 MB apart), and the server's work runs in worker threads,
so a failing request is an error answer, never an agent crash. Its files (database, outputs,
operator key in a 0600 file) live in ``state/market``; ``endpoint.json`` there (0600) holds its URL
and the owner's requester key for ``sparecycles submit``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import socket
from pathlib import Path
from typing import Any

from sparecycles.fileio import atomic_write_text

log = logging.getLogger(__name__)

OWNER_REQUESTER = "owner"
OWNER_CREDIT = 10**36  # the owner's own private marketplace: credit is a formality there
_STOP_GRACE_S = 2


class PrivateMarketplace:
    """``provider``: the identity address of the one machine it admits as a provider (this agent's own; None:
    none, for an agent without an identity key)."""

    def __init__(self, state_dir: Path, provider: str | None) -> None:
        self.folder = state_dir / "market"
        self._provider = provider
        self.url = ""
        self._server: Any = None
        self._app: Any = None  # the marketplace ASGI app, whose long polls are released at stop
        self.serving: asyncio.Task[Any] | None = None

    async def start(self) -> str:
        """Open the marketplace (migrating its database), make sure the owner can submit, and serve it."""
        import uvicorn

        from sparecycles.agent.market_server.api import create_app
        from sparecycles.agent.market_server.serve import MarketOptions, open_market

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        options = MarketOptions(
            data_dir=self.folder,
            key_file=self.folder / "operator.key",
            public_url=self.url,
            only_providers=frozenset({self._provider} if self._provider else ()),
        )
        market = await asyncio.to_thread(open_market, options)
        await asyncio.to_thread(self._ensure_owner, market)
        self._app = create_app(market, inline=False)  # the agent's loop governs jobs: no database waits on it
        self._server = uvicorn.Server(
            uvicorn.Config(
                self._app,
                log_config=None,
                access_log=False,
                lifespan="on",
                timeout_graceful_shutdown=_STOP_GRACE_S,
            )
        )
        self.serving = asyncio.create_task(self._server.serve(sockets=[sock]), name="private-marketplace")
        while not self._server.started and not self.serving.done():  # noqa: ASYNC110 - uvicorn offers only a flag
            await asyncio.sleep(0.01)
        if self.serving.done():
            self.serving.result()  # it failed to start: raise its error
        log.info("Private marketplace on %s (operator %s)", self.url, market.info().operator_address)
        return self.url

    def _ensure_owner(self, market: Any) -> None:
        endpoint = self.folder / "endpoint.json"
        previous: dict[str, str] = {}
        with contextlib.suppress(OSError, ValueError):
            previous = dict(json.loads(endpoint.read_text(encoding="utf-8")))
        key = previous.get("requester_key")
        if not key:  # first start (or the file was lost: only the key's hash is kept, so a new owner key)
            name = f"{OWNER_REQUESTER}-{secrets.token_hex(3)}"
            key = market.add_requester(name)
            market.credit(name, OWNER_CREDIT)
        atomic_write_text(endpoint, json.dumps({"url": self.url, "requester_key": key}, indent=1) + "\n")

    async def stop(self) -> None:
        if self._server is None or self.serving is None:
            return
        if self._app is not None:
            self._app.state.release_polls()  # our own provider's long poll would otherwise hold the shutdown 2 s
        self._server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self.serving), _STOP_GRACE_S + 1)
        except (TimeoutError, asyncio.CancelledError):
            self.serving.cancel()
            await asyncio.gather(self.serving, return_exceptions=True)
