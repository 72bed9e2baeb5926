"""The marketplace's busiest routes (a provider's poll, heartbeat and report, a requester's submit) answered
below FastAPI's routing.

Why: ``market serve`` on SQLite answers on one thread, so every millisecond of CPU per request is throughput.
FastAPI's routing, dependency injection and parameter handling took about 0.25 ms of CPU per request, more
than a heartbeat's own work (0.13 ms): with four or five of these requests per job, a fifth of the server's
CPU (docs/benchmarks.md, market_load). Here a hot route parses only what it needs, by hand, and answers only a
request that is well formed; anything else (a path, query or body that does not validate, another content
type) goes on unchanged to FastAPI, which answers it exactly as before, its 422s included. The routes stay
declared in FastAPI too, calling the same handlers, so the OpenAPI document and the app's behaviour are one.

Credentials are checked after the request is known to be well formed, as FastAPI checks them before it
validates the body: a request declined here is checked once, by FastAPI, not twice.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from pydantic import BaseModel, ValidationError
from starlette.responses import Response

from sparecycles.agent.market_server.limits import Asgi, Message, Receive, Scope, Send, replay
from sparecycles.agent.market_server.market import MarketError

_MAX_WAIT = re.compile(r"\d{1,3}(?:\.\d{1,6})?")  # a plain decimal; anything fancier is FastAPI's to judge


@dataclass(frozen=True)
class HotRequest:
    """What a hot route's handler gets: the bearer token (None when absent or not a bearer), the path's named
    parts, the query's parameters (the last of each name, as FastAPI reads a single value) and the body's
    model (None for a route without one)."""

    token: str | None
    path: dict[str, str]
    query: dict[str, str]
    body: Any


Handler = Callable[[HotRequest], Awaitable[Response]]
Problem = Callable[[MarketError], Response]


@dataclass(frozen=True)
class HotRoute:
    """One route: ``path`` is FastAPI's template ("/v1/provider/leases/{lease_id}/heartbeat"), each parameter
    matching its pattern in ``params`` (the same as the FastAPI route's). The route is put in the request's
    scope as Starlette's router puts its own, so the latency histogram labels it by this template."""

    method: str
    path: str
    handle: Handler
    body: type[BaseModel] | None = None
    params: dict[str, str] = field(default_factory=dict)  # parameter -> its pattern (anchors optional)
    accepts: Callable[[dict[str, str]], bool] = lambda _query: True  # a query it can answer without FastAPI
    pattern: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        def parameter(found: re.Match[str]) -> str:
            name = found.group(1)
            return f"(?P<{name}>{self.params[name].removeprefix('^').removesuffix('$')})"

        object.__setattr__(self, "pattern", re.compile(re.sub(r"\\{(\w+)\\}", parameter, re.escape(self.path))))


def wait_s_within(most: float) -> Callable[[dict[str, str]], bool]:
    """Accept a long poll's ``wait_s`` only as a plain decimal from 0 to ``most`` (or absent)."""

    def accepts(query: dict[str, str]) -> bool:
        value = query.get("wait_s")
        return value is None or (_MAX_WAIT.fullmatch(value) is not None and float(value) <= most)

    return accepts


class HotRoutes:
    """ASGI middleware: answer the ``routes`` it can, hand everything else to ``app``. A refusal of the
    marketplace's (MarketError) becomes ``problem(exc)``, the same answer FastAPI's handler gives."""

    def __init__(self, app: Asgi, *, routes: list[HotRoute], problem: Problem) -> None:
        self.app = app
        self._routes = routes
        self._problem = problem

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route, found = self._route(scope)
        if route is None or found is None:
            await self.app(scope, receive, send)
            return
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
        if not route.accepts(query):  # before the body is read: FastAPI gets the request untouched
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        body: Any = None
        if route.body is not None:
            message = await receive()  # BodySizeLimit, outside, read the whole body into one message
            if message["type"] != "http.request" or message.get("more_body", False):
                await self.app(scope, replay([message], then=receive), send)
                return
            body = _parsed(route.body, message, headers)
            if body is None:
                await self.app(scope, replay([message], then=receive), send)
                return
        response = await self._handle(route, HotRequest(_bearer(headers.get(b"authorization")), found, query, body))
        await response(scope, receive, send)

    async def _handle(self, route: HotRoute, request: HotRequest) -> Response:
        try:
            return await route.handle(request)
        except MarketError as exc:
            return self._problem(exc)

    def _route(self, scope: Scope) -> tuple[HotRoute | None, dict[str, str] | None]:
        if scope["type"] != "http":
            return None, None
        method, path = scope["method"], scope["path"]
        for route in self._routes:
            if route.method == method and (matched := route.pattern.fullmatch(path)) is not None:
                scope["route"] = route
                return route, matched.groupdict()
        return None, None


def _parsed(model: type[BaseModel], message: Message, headers: dict[bytes, bytes]) -> BaseModel | None:
    """The body as ``model``, or None when FastAPI should judge it (not JSON, or not valid)."""
    content_type = headers.get(b"content-type")
    if content_type is not None and content_type.split(b";")[0].strip().lower() != b"application/json":
        return None
    try:
        return model.model_validate_json(message.get("body", b""))
    except ValidationError:
        return None


def _bearer(authorization: bytes | None) -> str | None:
    """The token of an ``Authorization: Bearer …`` header, as FastAPI's HTTPBearer reads it."""
    if not authorization:
        return None
    scheme, _, token = authorization.decode("latin-1").partition(" ")
    if not scheme or not token or scheme.lower() != "bearer":
        return None
    return token
