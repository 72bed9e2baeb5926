"""Abuse limits for the marketplace's HTTP API: request rates per caller, and request body sizes.

Rates are token buckets kept in each server process's memory: a caller spread over two server processes
behind a load balancer gets up to twice its rate, which is fine for a limit whose purpose is to stop one
client from starving the others. Nothing here touches the database.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from sparecycles.protocol.market import Problem

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Asgi = Callable[[Scope, Receive, Send], Awaitable[None]]

DEFAULT_MAX_BODY_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Rate:
    """``per_s`` requests a second on average, with bursts of up to ``burst``; ``per_s`` 0 turns it off."""

    per_s: float
    burst: int

    @property
    def unlimited(self) -> bool:
        return self.per_s <= 0


@dataclass(frozen=True)
class ApiLimits:
    provider: Rate = Rate(per_s=20, burst=60)  # an agent polls, heartbeats and uploads
    requester: Rate = Rate(per_s=50, burst=200)
    sign_in: Rate = Rate(per_s=20, burst=200)  # per client address, before anyone is known
    # Refused credentials (401) per client address: the other rates apply once a credential is known, so
    # guessing tokens, API keys or admin tokens would otherwise cost the server a hash and a database read
    # each, unlimited. A client that signs in again after its session expired spends one.
    failed_auth: Rate = Rate(per_s=1, burst=30)
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES  # output uploads have their own cap


class RateLimiter:
    """Token buckets by key; :meth:`wait_s` answers 0 when a request may go now, else how long to wait."""

    def __init__(self, rate: Rate, *, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000) -> None:
        self.rate = rate
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key: (tokens, at)

    def wait_s(self, key: str) -> float:
        if self.rate.unlimited:
            return 0.0
        now = self._clock()
        tokens, at = self._buckets.pop(key, (float(self.rate.burst), now))
        tokens = min(float(self.rate.burst), tokens + (now - at) * self.rate.per_s)
        if tokens >= 1.0:
            self._remember(key, tokens - 1.0, now)
            return 0.0
        self._remember(key, tokens, now)
        return (1.0 - tokens) / self.rate.per_s

    def waiting_s(self, key: str) -> float:
        """What ``wait_s`` would answer, without spending a token: whether ``key`` is held back now."""
        if self.rate.unlimited or key not in self._buckets:
            return 0.0
        tokens, at = self._buckets[key]
        tokens = min(float(self.rate.burst), tokens + (self._clock() - at) * self.rate.per_s)
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate.per_s

    def _remember(self, key: str, tokens: float, now: float) -> None:
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > self._max_keys:  # forget the longest-idle callers (their buckets are full)
            self._buckets.popitem(last=False)


class FailedAuthLimit:
    """Hold back a client address that sent too many refused credentials (401s, counted by ``limiter``): its
    requests get 429 with Retry-After before any credential of theirs is looked at. Other addresses, and
    requests without credentials, are not affected."""

    def __init__(self, app: Asgi, *, limiter: RateLimiter) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        address = str(client[0]) if client else "unknown"
        wait_s = self.limiter.waiting_s(address)
        if wait_s > 0 and any(name == b"authorization" for name, _ in scope.get("headers") or []):
            await _refuse_too_many(send, wait_s)
            return

        async def watching(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 401:
                self.limiter.wait_s(address)  # spends one of the address's refusals
            await send(message)

        await self.app(scope, receive, watching)


async def _refuse_too_many(send: Send, wait_s: float) -> None:
    detail = (
        "too many refused credentials from this address: check the token or key, and retry after the Retry-After "
        "seconds"
    )
    problem = Problem(code="too_many_requests", detail=detail)
    await send_problem(send, 429, problem, [(b"retry-after", retry_after_header(wait_s).encode())])


async def send_problem(
    send: Send, status: int, problem: Problem, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """Answer with ``problem`` as JSON, from a middleware (before the application has read the request)."""
    body = problem.model_dump_json().encode()
    start = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *(headers or [])]
    await send({"type": "http.response.start", "status": status, "headers": start})
    await send({"type": "http.response.body", "body": body})


def retry_after_header(wait_s: float) -> str:
    """Retry-After in whole seconds, never 0 (HTTP has no fractions)."""
    return str(max(1, math.ceil(wait_s)))


class BodySizeLimit:
    """Refuse request bodies over ``max_bytes`` with 413 before the application reads them, whether or not
    the client declared a Content-Length; paths for which ``exempt`` is true (uploads) have their own cap."""

    def __init__(self, app: Asgi, *, max_bytes: int, exempt: Callable[[str], bool]) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.exempt(str(scope.get("path", ""))):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        # Small bodies (JSON) are read here in full, so that an oversized one is refused before the
        # application starts on it, and then handed on unchanged.
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                await self.app(scope, replay([message]), send)
                return
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.max_bytes:
                await self._refuse(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        whole: Message = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, replay([whole], then=receive), send)

    async def _refuse(self, send: Send) -> None:
        detail = f"the request body is larger than this marketplace accepts ({self.max_bytes} bytes)"
        await send_problem(send, 413, Problem(code="too_large", detail=detail))


def replay(messages: list[Message], then: Receive | None = None) -> Receive:
    """A ``receive`` that gives ``messages`` first, then waits on ``then`` (for the disconnect)."""
    pending = list(messages)

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        if then is None:
            return {"type": "http.disconnect"}
        return await then()

    return receive
