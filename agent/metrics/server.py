"""The agent's metrics endpoint: ``GET /metrics`` on its own address and port, beside (never inside) the
control API, so that opening metrics to a studio's Prometheus opens nothing else.

With a token (``[metrics] token_file``) every request must carry ``Authorization: Bearer <token>``;
without one the settings allow loopback only. The token is compared in constant time and never logged.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import socket
import stat
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from sparecycles.agent.metrics.collector import Snapshot
from sparecycles.config import MetricsSettings

log = logging.getLogger(__name__)


class MetricsError(Exception):
    """The metrics endpoint cannot be served as set; the message says what to change."""


def read_token(path: Path) -> str:
    """The bearer token in ``path``: the file must exist, hold a token, and be readable by this user only.

    Every problem is a :class:`MetricsError`: the agent logs it and works on without metrics.
    """
    try:
        path = path.expanduser()
    except RuntimeError:  # "~someone/..." for a user this system does not know
        raise MetricsError(f"the metrics token file {path} names an unknown home folder: give its full path") from None
    try:
        mode = path.stat().st_mode
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise MetricsError(f"the metrics token file {path} cannot be read ({exc.strerror}); create it, for "
                           f"example `openssl rand -hex 32 > {path} && chmod 600 {path}`") from None  # fmt: skip
    except UnicodeDecodeError:
        raise MetricsError(f"the metrics token file {path} is not UTF-8 text; write a token into it, for "
                           f"example `openssl rand -hex 32 > {path} && chmod 600 {path}`") from None  # fmt: skip
    except ValueError:  # a NUL character in the path, which TOML can hold and no file system can
        raise MetricsError(f"the metrics token file {path!r} is not a file name: fix [metrics] token_file") from None
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise MetricsError(f"the metrics token file {path} is readable by others: `chmod 600 {path}`")
    if len(token) < 16:
        raise MetricsError(f"the metrics token in {path} is too short: use at least 16 characters")
    if not (token.isascii() and token.isprintable()):  # HTTP headers carry other characters as Latin-1: never equal
        raise MetricsError(
            f"the metrics token in {path} holds characters a scraper cannot send: use letters, digits and "
            f"punctuation, for example `openssl rand -hex 32 > {path}`"
        )
    return token


Gather = Callable[[], Awaitable[list[Metric]]]


def exposition(families: list[Metric]) -> bytes:
    """Prometheus' text format of ``families``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Snapshot(families))
    return generate_latest(registry)


def metrics_app(gather: Gather, token: str | None) -> Starlette:
    expected = f"Bearer {token}".encode() if token is not None else None

    async def metrics(request: Request) -> Response:
        if expected is not None:
            given = request.headers.get("authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                return PlainTextResponse(
                    "A bearer token is needed (the one in [metrics] token_file).\n",
                    status_code=401,
                    headers={"WWW-Authenticate": 'Bearer realm="sparecycles-metrics"'},
                )
        return Response(exposition(await gather()), media_type=CONTENT_TYPE_LATEST)

    return Starlette(routes=[Route("/metrics", metrics, methods=["GET"])])


@dataclass
class MetricsServer:
    server: uvicorn.Server
    task: asyncio.Task[None]
    port: int

    async def stop(self) -> None:
        self.server.should_exit = True
        await asyncio.gather(self.task, return_exceptions=True)


async def start_metrics(settings: MetricsSettings, gather: Gather) -> MetricsServer:
    """Serve the metrics ``gather`` returns as ``settings`` say; raise :class:`MetricsError` with what to change."""
    token = await asyncio.to_thread(read_token, Path(settings.token_file)) if settings.token_file else None
    family = socket.AF_INET6 if ":" in settings.address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((settings.address, settings.port))
    except OSError as exc:
        sock.close()
        raise MetricsError(
            f"metrics cannot listen on {settings.address}:{settings.port} ({exc.strerror}): choose another "
            "[metrics] port or address"
        ) from None
    sock.listen(64)
    server = uvicorn.Server(
        uvicorn.Config(metrics_app(gather, token), log_config=None, access_log=False, lifespan="off")
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started and not task.done():  # noqa: ASYNC110 - uvicorn offers only a flag
        await asyncio.sleep(0.01)
    if task.done():
        task.result()
    port = sock.getsockname()[1]
    log.info("Metrics on http://%s:%d/metrics (%s)", settings.address, port, "token" if token else "no token")
    return MetricsServer(server, task, port)
