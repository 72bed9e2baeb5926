"""Token check for every request, as raw ASGI middleware so nothing reaches a route unchecked."""

from __future__ import annotations

import asyncio
import secrets

from starlette.types import ASGIApp, Receive, Scope, Send

from sparecycles.control.models import TOKEN_HEADER, TOKEN_SCHEME

UNAUTHORIZED_BODY = b'{"message":"Unauthorized"}'


def new_token() -> str:
    """A fresh per-start API token: 32 random bytes, URL-safe text."""
    return secrets.token_urlsafe(32)


class TokenAuthMiddleware:
    """Answers 401 (with no detail) unless the Authorization header carries the token.

    Only the header counts: a token in the URL is never accepted. The comparison takes constant
    time, and a failure waits a moment so guessing is slow.
    """

    def __init__(self, app: ASGIApp, token: str, *, failure_delay_seconds: float = 0.05) -> None:
        if len(token) < 32:
            raise ValueError("the control API token must be at least 32 characters")
        self._app = app
        self._expected = f"{TOKEN_SCHEME} {token}".encode()
        self._header = TOKEN_HEADER.lower().encode()
        self._failure_delay_seconds = failure_delay_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self._app(scope, receive, send)
            return
        presented = b""
        for name, value in scope.get("headers", []):
            if name == self._header:
                presented = value
        if secrets.compare_digest(presented, self._expected):
            await self._app(scope, receive, send)
            return
        await asyncio.sleep(self._failure_delay_seconds)
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(UNAUTHORIZED_BODY)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": UNAUTHORIZED_BODY})
