"""The busiest routes (poll, heartbeat, report, submit) are answered below FastAPI's routing
(agent/market_server/hot_routes.py). They must answer exactly as FastAPI does: each request here goes to the
same marketplace through the app with hot routes and through the app without them (every request through
FastAPI), and the two answers must be the same, for well-formed requests and for every kind of bad one."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.responses import JSONResponse

from sparecycles.agent.market_server.api import create_app
from sparecycles.agent.market_server.hot_routes import HotRoute, HotRoutes
from sparecycles.agent.market_server.limits import ApiLimits, Rate
from sparecycles.agent.market_server.market import TooMany
from sparecycles.protocol.market import ResultReport, SignedResultReport
from sparecycles.protocol.signing import sign_text

from .conftest import Clock, Provider, Requester, cpu_spec, open_in_process

UNLIMITED = ApiLimits(provider=Rate(per_s=0, burst=0), requester=Rate(per_s=0, burst=0))


class Twins:
    """One marketplace behind two apps: ``hot`` (as served) and ``plain`` (FastAPI only)."""

    def __init__(self, tmp_path: Path) -> None:
        self.clock = Clock()
        self.market = open_in_process(tmp_path, self.clock)
        self.hot = TestClient(create_app(self.market, tick_every_s=3600, limits=UNLIMITED))
        self.plain = TestClient(create_app(self.market, tick_every_s=3600, limits=UNLIMITED, hot_routes=False))

    def both(self, method: str, path: str, **request: Any) -> tuple[tuple[int, Any, str | None], ...]:
        answers = []
        for client in (self.hot, self.plain):
            response = client.request(method, path, **request)
            body = response.json() if response.content else None
            answers.append((response.status_code, body, response.headers.get("retry-after")))
        return tuple(answers)


@pytest.fixture
def twins(tmp_path: Path) -> Iterator[Twins]:
    built = Twins(tmp_path)
    with built.hot, built.plain:
        yield built


def test_the_hot_routes_answer_every_request_as_fastapi_does(twins: Twins, monkeypatch: pytest.MonkeyPatch) -> None:
    answered: list[str] = []  # the requests a hot route answered itself
    handle = HotRoutes._handle

    async def counted(self: HotRoutes, route: HotRoute, request: Any) -> Any:
        answered.append(route.path)
        return await handle(self, route, request)

    monkeypatch.setattr(HotRoutes, "_handle", counted)
    key = twins.market.add_requester("studio")
    twins.market.credit("studio", 10**15)
    requester = {"Authorization": f"Bearer {key}"}
    provider = Provider(twins.hot).join(cores=4)
    headers = provider.headers
    job = Requester(twins.hot, key).submit(cpu_spec(cpus=1.0), max_price_per_core_hour=10**6, bidding_window_s=1)
    assert provider.poll()["leases"] == []
    twins.clock.advance(2)
    twins.market.tick()
    [lease] = provider.poll()["leases"]
    assert lease["job_id"] == job["job_id"]
    beat = f"/v1/provider/leases/{lease['lease_id']}/heartbeat"
    report = f"/v1/provider/leases/{lease['lease_id']}/report"
    submission = {"spec": cpu_spec(cpus=1.0), "max_price_per_core_hour": 10**6}
    cases: list[tuple[str, str, dict[str, Any]]] = [
        # well formed
        ("POST", beat, {"json": {"state": "running", "run_time_ms": 5}, "headers": headers}),
        ("GET", "/v1/provider/work", {"params": {"wait_s": "0"}, "headers": headers}),
        ("GET", "/v1/provider/work", {"headers": headers}),
        ("GET", "/v1/jobs", {"headers": requester}),  # not a hot route: FastAPI's in both
        # credentials
        ("POST", beat, {"json": {"state": "running", "run_time_ms": 5}}),
        ("POST", beat, {"json": {"state": "running", "run_time_ms": 5}, "headers": {"Authorization": "Basic x"}}),
        ("POST", beat, {"json": {"state": "running", "run_time_ms": 5}, "headers": requester}),
        ("GET", "/v1/provider/work", {"headers": {"Authorization": "Bearer scs_unknown"}}),
        ("POST", "/v1/jobs", {"json": submission, "headers": headers}),
        ("POST", "/v1/jobs", {"json": submission}),
        # the marketplace refuses
        (
            "POST",
            "/v1/provider/leases/lease-unknown/heartbeat",
            {"json": {"state": "running", "run_time_ms": 1}, "headers": headers},
        ),
        ("POST", "/v1/jobs", {"json": {**submission, "max_price_per_core_hour": 10**40}, "headers": requester}),
        # malformed: FastAPI's 422s (credentials first, as FastAPI checks them)
        ("POST", beat, {"content": b"{not json", "headers": headers}),
        ("POST", beat, {"json": {"state": "running", "run_time_ms": "soon"}, "headers": headers}),
        (
            "POST",
            beat,
            {"json": {"state": "running", "run_time_ms": 5}, "headers": {**headers, "content-type": "text/plain"}},
        ),
        ("POST", beat, {"content": b"{not json"}),
        ("POST", "/v1/provider/leases/bad%20id!/heartbeat", {"json": {"state": "running"}, "headers": headers}),
        ("POST", report, {"json": {"report": {"lease_id": lease["lease_id"]}}, "headers": headers}),
        ("POST", report, {"json": [], "headers": headers}),
        ("POST", "/v1/jobs", {"json": {"spec": {"image": "busybox"}}, "headers": requester}),
        ("POST", "/v1/jobs", {"content": b"", "headers": requester}),
        ("GET", "/v1/provider/work", {"params": {"wait_s": "31"}, "headers": headers}),
        ("GET", "/v1/provider/work", {"params": {"wait_s": "-1"}, "headers": headers}),
        ("GET", "/v1/provider/work", {"params": {"wait_s": "soon"}, "headers": headers}),
        ("GET", "/v1/provider/work", {"params": {"wait_s": "soon"}}),
        ("PUT", beat, {"json": {"state": "running"}, "headers": headers}),
    ]
    answered.clear()
    for method, path, request in cases:
        hot, plain = twins.both(method, path, **request)
        assert hot == plain, f"{method} {path} {json.dumps(request, default=str)[:200]}: {hot} != {plain}"
    # The well-formed ones, those refused for their credentials and those the marketplace refused were answered
    # below FastAPI; the malformed ones went on to FastAPI (and the FastAPI-only app answered all by itself).
    assert len(answered) == 11, "\n".join(answered)
    # a report both answer the same way: accepted once (by the hot app), a conflict after
    finished = ResultReport(
        lease_id=lease["lease_id"], job_id=lease["job_id"], outcome="finished", exit_code=0, run_time_ms=10
    )
    signed = SignedResultReport(
        report=finished, signature=sign_text(provider.identity, finished.signing_text())
    ).model_dump(mode="json")
    first = twins.hot.post(report, json=signed, headers=headers)
    assert first.status_code == 200, first.text
    hot, plain = twins.both("POST", report, json=signed, headers=headers)
    assert hot == plain


def test_a_hot_route_is_labelled_by_its_template_and_answers_a_refusal_as_a_problem() -> None:
    """Starlette's router puts the matched route in the scope (the latency histogram labels requests by its
    template); a hot route does the same. A MarketError becomes the problem the app's handler gives."""
    seen: dict[str, Any] = {}

    async def refuse(_request: Any) -> Any:
        raise TooMany("slow down", 2.5)

    async def fallback(scope: Any, _receive: Any, _send: Any) -> None:
        seen["fell through"] = scope["path"]

    def problem(exc: Any) -> JSONResponse:
        return JSONResponse({"code": exc.code}, status_code=exc.status, headers={"Retry-After": "3"})

    route = HotRoute("GET", "/v1/things/{thing}/look", refuse, params={"thing": r"^[a-z]+$"})
    middleware = HotRoutes(fallback, routes=[route], problem=problem)

    async def call(path: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        scope: dict[str, Any] = {"type": "http", "method": "GET", "path": path, "query_string": b"", "headers": []}
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Any) -> None:
            sent.append(message)

        await middleware(scope, receive, send)
        return scope, sent

    scope, sent = asyncio.run(call("/v1/things/lamp/look"))
    assert getattr(scope["route"], "path", None) == "/v1/things/{thing}/look"
    assert sent[0]["status"] == 429
    assert (b"retry-after", b"3") in sent[0]["headers"]
    scope, sent = asyncio.run(call("/v1/things/Lamp1/look"))  # not the parameter's pattern: not this route
    assert (seen.get("fell through"), sent, "route" in scope) == ("/v1/things/Lamp1/look", [], False)
