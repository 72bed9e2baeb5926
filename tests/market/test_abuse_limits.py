"""Abuse limits: request rates per API key, per provider and per address signing in; request body sizes;
jobs queued per requester. Each answers a clear 4xx, with Retry-After where waiting helps, and leaves other
callers alone."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from sparecycles.agent.market_server.admin import MarketAdmin
from sparecycles.agent.market_server.api import create_app
from sparecycles.agent.market_server.limits import ApiLimits, Rate, RateLimiter

from .conftest import Clock, Market, Provider, Requester, cpu_spec, open_in_process

SLOW = Rate(per_s=0.01, burst=3)  # three at once, then one more every hundred seconds


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[Market]:
    clock = Clock()
    opened = open_in_process(tmp_path, clock)
    opened.config = dataclasses.replace(opened.config, max_queued_jobs_per_requester=2)
    limits = ApiLimits(provider=SLOW, requester=SLOW, sign_in=Rate(per_s=0.01, burst=4), max_body_bytes=64 * 1024)
    with TestClient(create_app(opened, tick_every_s=3600, limits=limits)) as client:
        yield Market(opened, client, clock, tmp_path / "market")


def test_a_token_bucket_allows_its_burst_then_one_request_per_interval() -> None:
    now = [100.0]
    limiter = RateLimiter(Rate(per_s=2, burst=2), clock=lambda: now[0])
    assert [limiter.wait_s("a"), limiter.wait_s("a")] == [0.0, 0.0]
    assert limiter.wait_s("a") == pytest.approx(0.5)
    assert limiter.wait_s("b") == 0.0  # another caller has its own bucket
    now[0] += 0.5
    assert limiter.wait_s("a") == 0.0
    assert limiter.wait_s("a") == pytest.approx(0.5)
    assert RateLimiter(Rate(per_s=0, burst=0)).wait_s("anyone") == 0.0  # 0: no limit


def test_a_requester_past_its_rate_gets_429_with_retry_after_and_others_are_unaffected(limited: Market) -> None:
    greedy = limited.requester("greedy")
    polite = limited.requester("polite")
    assert [limited.client.get("/v1/requester", headers=greedy.headers).status_code for _ in range(3)] == [200] * 3
    refused = limited.client.get("/v1/requester", headers=greedy.headers)
    assert refused.status_code == 429
    assert refused.json()["code"] == "too_many_requests"
    assert 90 <= int(refused.headers["Retry-After"]) <= 100
    assert limited.client.get("/v1/requester", headers=polite.headers).status_code == 200


def test_a_provider_past_its_rate_gets_429_and_other_providers_are_unaffected(limited: Market) -> None:
    busy = Provider(limited.client)
    busy.sign_in()
    quiet = Provider(limited.client)
    quiet.sign_in()
    answers = [limited.client.get("/v1/provider/work", headers=busy.headers) for _ in range(4)]
    assert [answer.status_code for answer in answers] == [404, 404, 404, 429]  # 404: it has not registered
    assert "Retry-After" in answers[-1].headers
    assert limited.client.get("/v1/provider/work", headers=quiet.headers).status_code == 404


def test_signing_in_is_rate_limited_per_client_address(limited: Market) -> None:
    Provider(limited.client).sign_in()  # a nonce and a sign-in: two of the address's four
    Provider(limited.client).sign_in()
    refused = limited.client.post("/v1/auth/nonce", json={"address": Provider(limited.client).identity.address})
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1


def test_an_oversized_body_is_refused_with_413_declared_or_streamed(limited: Market) -> None:
    requester = limited.requester()
    padding = {"spec": cpu_spec(env={"PAD": "x" * 70_000}), "max_price_per_core_hour": 1}
    declared = limited.client.post("/v1/jobs", json=padding, headers=requester.headers)
    assert declared.status_code == 413
    assert "larger than this marketplace accepts" in declared.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the size is counted as it arrives
        for _ in range(20):
            yield b" " * 4096

    streamed = limited.client.post(
        "/v1/jobs", content=chunks(), headers={**requester.headers, "Content-Type": "application/json"}
    )
    assert streamed.status_code == 413
    assert requester.account()["held_base_units"] == 0


def test_a_requester_with_too_many_queued_jobs_is_told_to_wait_and_nothing_is_held(limited: Market) -> None:
    requester: Requester = limited.requester(credit=10**15)
    terms = {"max_price_per_core_hour": 1000, "bidding_window_s": 60}
    held = sum(requester.submit(cpu_spec(), **terms)["held_base_units"] for _ in range(2))
    third = limited.client.post("/v1/jobs", json={"spec": cpu_spec(), **terms}, headers=requester.headers)
    assert third.status_code == 429
    assert "2 of your jobs are queued already" in third.json()["detail"]
    assert third.headers["Retry-After"] == "30"
    assert MarketAdmin(limited.market).account("studio").held_base_units == held


def test_an_address_guessing_credentials_is_held_back_and_others_are_not(tmp_path: Path) -> None:
    opened = open_in_process(tmp_path, Clock())
    limits = ApiLimits(failed_auth=Rate(per_s=0.01, burst=5))  # five refusals, then one every hundred seconds
    app = create_app(opened, tick_every_s=3600, limits=limits)
    key = opened.add_requester("studio")
    guesses = {
        "/v1/provider/work?wait_s=0": "scs_guessed",  # a provider's session (answered by a hot route)
        "/v1/jobs": "scr_guessed",  # a requester's API key
        "/v1/admin/providers": "sco_guessed",  # an operator's admin token
    }
    with (
        TestClient(app, client=("10.0.0.66", 40000)) as guesser,
        TestClient(app, client=("10.0.0.7", 40000)) as studio,
    ):
        answers = [
            guesser.get(path, headers={"Authorization": f"Bearer {token}"}).status_code
            for _ in range(3)
            for path, token in guesses.items()
        ]
        assert answers[:5] == [401] * 5
        assert set(answers[5:]) == {429}
        held = guesser.get("/v1/jobs", headers={"Authorization": f"Bearer {key}"})  # even a good key, meanwhile
        assert held.status_code == 429
        assert int(held.headers["Retry-After"]) >= 1
        assert "too many refused credentials" in held.json()["detail"]
        assert guesser.get("/v1/info").status_code == 200  # no credential: nothing to hold back

        assert studio.get("/v1/jobs", headers={"Authorization": f"Bearer {key}"}).status_code == 200
        assert studio.get("/v1/jobs", headers={"Authorization": "Bearer scr_typo"}).status_code == 401
