"""Whatever a marketplace answers, the agent's client raises only its own MarketError kinds, never an httpx error:
a body that does not decode, an HTML page, JSON of the wrong shape. And a lease whose heartbeats meet such
answers still ends with its result recorded in the ledger and reported to the marketplace."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account

from sparecycles.agent.jobs.runtime import JobResult, JobState, JobStatus, Lease
from sparecycles.agent.ledger.store import JobEnd, JobStart
from sparecycles.agent.market.client import (
    Backoff,
    MarketClient,
    MarketError,
    MarketRefused,
    MarketResponseError,
    MarketUnavailable,
)
from sparecycles.agent.market.provider import MachineOffer, MarketProvider, ProviderSetup
from sparecycles.protocol.job_refusal import ProviderLimits
from sparecycles.protocol.market import Heartbeat
from tests.market.conftest import run_provider_until

from .conftest import BUSYBOX
from .test_provider_hostile import PAYOUT, HostileMarket, lease_json


def encoded(encoding: str, body: bytes, status: int = 200) -> httpx.Response:
    """An answer that claims ``encoding`` for ``body`` as it is (a stream, so that only the client decodes it)."""
    return httpx.Response(status, headers={"Content-Encoding": encoding}, stream=httpx.ByteStream(body))


BEAT = Heartbeat(state="running", run_time_ms=1000)
LIMITS = ProviderLimits(
    max_gpus=0,
    max_cpus=2,
    max_memory_bytes=4 * 1024**3,
    max_shm_bytes=512 * 1024**2,
    max_runtime_s=3600,
    max_output_bytes=1024**3,
    allowed_registries=("127.0.0.1:5000",),
)


def heartbeat_answered(response: httpx.Response | Exception) -> None:
    """Send one heartbeat to a marketplace that answers ``response`` (or raises it), to see what the client raises."""

    def respond(request: httpx.Request) -> httpx.Response:
        if isinstance(response, Exception):
            raise response
        return response

    async def scenario() -> None:
        client = MarketClient("http://market.test", transport=httpx.MockTransport(respond))
        try:
            await client.heartbeat("lease-1", BEAT)
        finally:
            await client.close()

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("response", "error", "words"),
    [
        (
            encoded("gzip", b"this is not gzip at all"),
            MarketResponseError,
            "answer to POST /provider/leases/lease-1/heartbeat cannot be decoded",
        ),
        (
            httpx.Response(200, headers={"Content-Type": "text/html"}, content=b"<html><body>Welcome!</body></html>"),
            MarketResponseError,
            "does not match protocol v1",
        ),
        (httpx.Response(200, json={"ok": True}), MarketResponseError, "does not match protocol v1"),
        (httpx.Response(200, json=[1, 2, 3]), MarketResponseError, "does not match protocol v1"),
        (httpx.Response(200, content=b"\xff\xfe not utf-8"), MarketResponseError, "does not match protocol v1"),
        (httpx.Response(404, content=b"[" * 100_000), MarketRefused, "refused (404): no reason given"),
        (
            encoded("deflate", b"not deflate either"),
            MarketResponseError,
            "cannot be decoded",
        ),
    ],
)
def test_an_answer_that_is_not_protocol_v1_is_a_market_error(
    response: httpx.Response, error: type[MarketError], words: str
) -> None:
    with pytest.raises(error) as raised:
        heartbeat_answered(response)
    assert words in str(raised.value)
    assert raised.value.__cause__ is None  # the httpx error is not carried along to be re-raised elsewhere


def test_any_other_failed_exchange_is_a_market_error_worth_retrying() -> None:
    request = httpx.Request("POST", "http://market.test/v1/provider/leases/lease-1/heartbeat")
    with pytest.raises(MarketUnavailable, match="TooManyRedirects"):
        heartbeat_answered(httpx.TooManyRedirects("too many", request=request))


# --- a lease whose heartbeats meet broken answers ----------------------------------------------------


def fast_provider(market: Any, runtime: Any, state_dir: Path, ledger: Any = None) -> MarketProvider:
    """An agent's provider loop against ``market`` (an httpx MockTransport handler) with ``runtime``, polling and
    backing off in tens of milliseconds, one CPU-only machine."""
    return MarketProvider(
        client=MarketClient("http://market.test", transport=httpx.MockTransport(market)),
        identity=Account.create(),
        runtime=runtime,
        setup=lambda: ProviderSetup(PAYOUT, 0, 0, "", (), LIMITS),
        offer=lambda: MachineOffer({}, 2),
        state_dir=state_dir,
        poll_wait_s=0.05,
        backoff=Backoff(first_s=0.05, cap_s=0.1),
        ledger=ledger,
    )


class BrokenBeats(HostileMarket):
    """The hostile marketplace, whose every heartbeat answer claims gzip and is not."""

    def __init__(self, leases: list[dict[str, Any]]) -> None:
        super().__init__(leases)
        self.heartbeats = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/heartbeat"):
            self.heartbeats += 1
            return encoded("gzip", b"this is not gzip at all")
        return super().__call__(request)


class RuntimeUntilBeats:
    """Runs each job until the marketplace has had two heartbeats of it (the beats outlive a broken answer)."""

    def __init__(self, market: BrokenBeats) -> None:
        self.market = market

    async def run(self, lease: Lease) -> JobResult:
        while self.market.heartbeats < 2:  # noqa: ASYNC110 - the marketplace is a plain callable
            await asyncio.sleep(0.01)
        return JobResult(lease.job_id, JobState.FINISHED, 0, None, run_time_s=1.5)

    def jobs(self) -> list[JobStatus]:
        return []

    def stop_job(self, job_id: str, reason: str) -> None:
        raise AssertionError("the marketplace cancels nothing here")


class Ledger:
    """Records what the provider writes in the agent's ledger."""

    def __init__(self) -> None:
        self.started: list[JobStart] = []
        self.ended: list[JobEnd] = []

    def job_started(self, start: JobStart) -> None:
        self.started.append(start)

    def job_ended(self, end: JobEnd) -> None:
        self.ended.append(end)

    def credited(self, job_id: str, amount: int, paid_cumulative: int, payout_address: str, at: datetime) -> bool:
        return True

    def voucher_covers(self, payout_address: str, cumulative: int, voucher_ref: str, at: datetime) -> int:
        return 0

    def uncredited_jobs(self, limit: int = 50) -> list[str]:
        return []


def test_a_lease_whose_heartbeats_get_broken_answers_is_still_recorded_and_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lease = lease_json("broken-beats", {"image": BUSYBOX, "cpus": 1.0}, [])
    lease["heartbeat_interval_s"] = 0.05
    market = BrokenBeats([lease])
    ledger = Ledger()
    provider = fast_provider(market, RuntimeUntilBeats(market), tmp_path / "provider", ledger=ledger)

    with caplog.at_level(logging.INFO):
        run_provider_until(provider, lambda: market.reports, seconds=10)
    assert market.heartbeats >= 2
    [signed] = market.reports
    assert (signed.report.lease_id, signed.report.outcome, signed.report.run_time_ms) == (
        "broken-beats",
        "finished",
        1500,
    )
    assert [end.outcome for end in ledger.ended] == ["finished"]
    assert not list((tmp_path / "provider" / "outbox").glob("*.json"))  # sent, acknowledged, out of the outbox
    assert "Heartbeat of lease broken-beats not delivered" in caplog.text
    assert "cannot be decoded" in caplog.text


class RuntimeFailingStatus(RuntimeUntilBeats):
    """A runtime whose status fails (a bug): the heartbeats cannot even be built while the job runs."""

    async def run(self, lease: Lease) -> JobResult:
        await asyncio.sleep(0.3)  # several heartbeat intervals
        return JobResult(lease.job_id, JobState.FINISHED, 0, None, run_time_s=0.3)

    def jobs(self) -> list[JobStatus]:
        raise RuntimeError("the status is broken")


def test_a_heartbeat_that_fails_for_any_reason_does_not_hold_back_the_report(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lease = lease_json("buggy-beats", {"image": BUSYBOX, "cpus": 1.0}, [])
    lease["heartbeat_interval_s"] = 0.05
    market = BrokenBeats([lease])
    provider = fast_provider(market, RuntimeFailingStatus(market), tmp_path / "provider")

    with caplog.at_level(logging.INFO):
        run_provider_until(provider, lambda: market.reports, seconds=10)
    [signed] = market.reports
    assert (signed.report.lease_id, signed.report.outcome) == ("buggy-beats", "finished")
    assert market.heartbeats == 0
    assert caplog.text.count("Heartbeat of lease buggy-beats failed") == 1  # one traceback, not one per beat


class RuntimeThatBreaks(RuntimeUntilBeats):
    """A runtime that fails itself (a bug, or an engine gone in a way it did not expect) while running a job."""

    async def run(self, lease: Lease) -> JobResult:
        raise RuntimeError("the runtime broke")


def test_a_runtime_that_fails_while_running_a_job_ends_the_lease_as_failed_and_says_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lease = lease_json("broken-runtime", {"image": BUSYBOX, "cpus": 1.0}, [])
    market = BrokenBeats([lease])
    ledger = Ledger()
    provider = fast_provider(market, RuntimeThatBreaks(market), tmp_path / "provider", ledger=ledger)

    with caplog.at_level(logging.INFO):
        run_provider_until(provider, lambda: market.reports, seconds=10)
    [signed] = market.reports  # reported at once, instead of the lease lapsing unreported
    assert (signed.report.lease_id, signed.report.outcome) == ("broken-runtime", "failed")
    assert signed.report.reason == "the provider could not run it (RuntimeError: the runtime broke)"
    assert [(end.outcome, end.reason) for end in ledger.ended] == [("failed", signed.report.reason)]
    assert "the job runtime failed" in caplog.text
