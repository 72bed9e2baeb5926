"""A marketplace that lies or breaks: every bad answer is refused with a logged reason, nothing is counted,
and the provider keeps running. The hostile marketplace is an httpx transport that answers what each
test wants (a real marketplace would never send these, which is the point)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account

from sparecycles.agent.market.client import (
    MAX_RESPONSE_BYTES,
    Backoff,
    MarketClient,
    MarketRefused,
    MarketResponseError,
    MarketUnavailable,
)
from sparecycles.agent.market.provider import MachineOffer, MarketProvider, ProviderSetup
from sparecycles.agent.market.vouchers import VoucherBook
from sparecycles.protocol.job_refusal import ProviderLimits
from sparecycles.protocol.market import ResultReport, SignedResultReport
from sparecycles.protocol.signing import PLACEHOLDER_VAULT, VoucherTerms, sign_voucher, text_signer

from .conftest import BUSYBOX, GPU0, GPU1

OPERATOR = Account.create()
PAYOUT = Account.create().address
CHAIN = 31337
TERMS = VoucherTerms(OPERATOR.address, CHAIN, PLACEHOLDER_VAULT, PAYOUT)


def voucher(amount: int, *, signer: Any = OPERATOR, chain: int = CHAIN, contract: str = PLACEHOLDER_VAULT) -> Any:
    return sign_voucher(signer, PAYOUT, amount, chain_id=chain, contract=contract)


# --- vouchers ----------------------------------------------------------------------------------------


def test_only_valid_and_higher_vouchers_count(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    book = VoucherBook(tmp_path / "voucher.json")
    assert book.offer(voucher(100), TERMS)
    refused = {
        "signed by another key": voucher(500, signer=Account.create()),
        "for another chain": voucher(500, chain=1),
        "for another contract": voucher(500, contract="0x" + "12" * 20),
        "for someone else": sign_voucher(
            OPERATOR, Account.create().address, 500, chain_id=CHAIN, contract=PLACEHOLDER_VAULT
        ),
        "lower": voucher(50),
        "a replay": voucher(100),
    }
    with caplog.at_level(logging.WARNING):
        for why, bad in refused.items():
            assert not book.offer(bad, TERMS), why
    best = book.best()
    assert best is not None
    assert best.cumulative_amount == 100  # nothing refused was counted
    messages = " ".join(record.getMessage() for record in caplog.records)
    for reason in ("not the marketplace operator", "for chain 1", "for contract", "not this provider's payout", "held"):
        assert reason in messages
    assert book.offer(voucher(250), TERMS)
    assert book.best().cumulative_amount == 250  # type: ignore[union-attr]


# --- answers the client will not use ----------------------------------------------------------------


def client_answering(respond: Callable[[httpx.Request], httpx.Response]) -> MarketClient:
    return MarketClient("http://market.test", transport=httpx.MockTransport(respond))


@pytest.mark.parametrize(
    ("response", "error", "words"),
    [
        (
            httpx.Response(200, content=b"x" * (MAX_RESPONSE_BYTES + 1)),
            MarketResponseError,
            "more than this agent reads",
        ),
        (httpx.Response(200, content=b"{not json"), MarketResponseError, "does not match protocol v1"),
        (httpx.Response(200, json={"leases": [], "cancelled": [], "bonus": 1}), MarketResponseError, "protocol v1"),
        (httpx.Response(200, json={"leases": [{"lease_id": "../../etc"}]}), MarketResponseError, "protocol v1"),
        (httpx.Response(503, content=b"down"), MarketUnavailable, "failed (503)"),
        (httpx.Response(403, json={"code": "x", "detail": "no"}), MarketRefused, "refused (403): no"),
    ],
)
def test_a_bad_answer_is_refused_with_a_reason(response: httpx.Response, error: type[Exception], words: str) -> None:
    async def scenario() -> None:
        client = client_answering(lambda _request: response)
        with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)")):
            await client.work(0)
        await client.close()

    asyncio.run(scenario())


def test_an_unreachable_marketplace_is_worth_retrying() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async def scenario() -> None:
        client = client_answering(refuse)
        with pytest.raises(MarketUnavailable, match="not reachable"):
            await client.info()
        await client.close()

    asyncio.run(scenario())


def test_backoff_grows_to_its_cap_with_jitter_and_resets() -> None:
    backoff = Backoff(first_s=1, cap_s=8, random_unit=lambda: 0.5)
    assert [backoff.next_delay() for _ in range(5)] == [1, 2, 4, 8, 8]
    backoff.reset()
    assert backoff.next_delay() == 1
    jittered = Backoff(first_s=1, cap_s=8, random_unit=lambda: 0.0)
    assert jittered.next_delay() == 0.5


# --- leases the provider refuses ---------------------------------------------------------------------


class HostileMarket:
    """Signs the provider in, then serves the leases a test gives it, and records what comes back."""

    def __init__(self, leases: list[dict[str, Any]]) -> None:
        self.leases = leases
        self.reports: list[SignedResultReport] = []
        self.polls = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:  # noqa: PLR0911 - one answer per route
        path = request.url.path.removeprefix("/v1")
        now = datetime.now(UTC)
        if path == "/info":
            return httpx.Response(
                200,
                json={
                    "name": "hostile",
                    "chain_id": CHAIN,
                    "voucher_contract": PLACEHOLDER_VAULT,
                    "operator_address": OPERATOR.address,
                    "heartbeat_interval_s": 1,
                    "lease_timeout_s": 5,
                    "max_output_bytes": 1000,
                },
            )
        if path == "/auth/nonce":
            return httpx.Response(
                200,
                json={
                    "nonce": "abcdef123456",
                    "domain": "market.test",
                    "uri": "http://market.test/v1/auth/sign-in",
                    "chain_id": CHAIN,
                    "statement": "Sign in.",
                    "issued_at": now.isoformat(),
                    "expiration_time": (now + timedelta(minutes=5)).isoformat(),
                },
            )
        if path == "/auth/sign-in":
            return httpx.Response(
                200,
                json={
                    "token": "scs_" + "t" * 40,
                    "expires_at": (now + timedelta(hours=1)).isoformat(),
                    "address": json.loads(request.content)["message"].split("\n")[1],
                },
            )
        if path in ("/provider", "/provider/offer"):
            return httpx.Response(
                200,
                json={
                    "address": Account.create().address,
                    "name": "x",
                    "payout_address": PAYOUT,
                    "offer": {"gpu_uuids": [GPU0], "cpu_cores": 2},
                    "price_floor_per_gpu_hour": 0,
                    "price_floor_per_core_hour": 0,
                },
            )
        if path == "/provider/work":
            self.polls += 1
            if self.polls == 2:
                return httpx.Response(200, content=b"[" * 10_000)  # garbage between the leases
            leases, self.leases = self.leases, []
            return httpx.Response(200, json={"leases": leases, "cancelled": []})
        if path.endswith("/report"):
            signed = SignedResultReport.model_validate_json(request.content)
            self.reports.append(signed)
            return httpx.Response(
                200, json={"lease_id": signed.report.lease_id, "lease_state": "failed", "job_state": "queued"}
            )
        if path == "/provider/voucher":
            return httpx.Response(404, json={"code": "not_found", "detail": "none"})
        return httpx.Response(404, json={"code": "not_found", "detail": path})


class NoRuntime:
    """A job runtime that must not be used: every refused lease is refused before anything runs."""

    def run(self, lease: Any) -> Any:
        raise AssertionError(f"lease {lease.job_id} was run, but it should have been refused")

    def jobs(self) -> list[Any]:
        return []

    def stop_job(self, job_id: str, reason: str) -> None:
        raise AssertionError("nothing runs")


def lease_json(lease_id: str, spec: dict[str, Any], gpus: list[str]) -> dict[str, Any]:
    return {
        "lease_id": lease_id,
        "job_id": f"job-{lease_id}",
        "spec": spec,
        "gpu_uuids": gpus,
        "units": max(1, len(gpus)),
        "price_per_unit_hour": 1000,
        "expires_at": datetime.now(UTC).isoformat(),
        "heartbeat_interval_s": 1,
    }


def test_leases_for_gpus_not_offered_or_jobs_beyond_the_limits_are_refused_and_the_provider_runs_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    identity = Account.create()
    hostile = HostileMarket(
        [
            lease_json("stranger-gpu", {"image": BUSYBOX, "gpus": 1}, [GPU1]),
            lease_json("too-big", {"image": BUSYBOX, "memory_bytes": 64 * 1024**3}, []),
            lease_json("privileged-registry", {"image": "evil.example/x@sha256:" + "b" * 64}, []),
        ]
    )
    limits = ProviderLimits(
        max_gpus=1,
        max_cpus=2,
        max_memory_bytes=4 * 1024**3,
        max_shm_bytes=512 * 1024**2,
        max_runtime_s=3600,
        max_output_bytes=1024**3,
        allowed_registries=("127.0.0.1:5000",),
    )
    setup = ProviderSetup(PAYOUT, 0, 0, "", (), limits)
    provider = MarketProvider(
        client=MarketClient("http://market.test", transport=httpx.MockTransport(hostile)),
        identity=identity,
        runtime=NoRuntime(),  # type: ignore[arg-type]
        setup=lambda: setup,
        offer=lambda: MachineOffer({GPU0: 0}, 2),
        state_dir=tmp_path / "provider",
        poll_wait_s=0.05,
        backoff=Backoff(first_s=0.05, cap_s=0.1),
    )

    async def scenario() -> None:
        loop = asyncio.create_task(provider.run())
        deadline = asyncio.get_running_loop().time() + 20
        while (len(hostile.reports) < 3 or hostile.polls < 4) and asyncio.get_running_loop().time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        assert not loop.done()  # the garbage answer did not end it
        loop.cancel()
        with pytest.raises(asyncio.CancelledError):
            await loop

    with caplog.at_level(logging.WARNING):
        asyncio.run(scenario())
    reports: dict[str, ResultReport] = {signed.report.lease_id: signed.report for signed in hostile.reports}
    assert set(reports) == {"stranger-gpu", "too-big", "privileged-registry"}
    assert all(report.outcome == "refused" for report in reports.values())
    assert f"GPU {GPU1}, which this machine does not offer" in (reports["stranger-gpu"].reason or "")
    assert "memory" in (reports["too-big"].reason or "")
    assert "registry" in (reports["privileged-registry"].reason or "")
    for signed in hostile.reports:  # each refusal is signed by the machine identity
        assert text_signer(signed.report.signing_text(), signed.signature) == identity.address
    logged = " ".join(record.getMessage() for record in caplog.records)
    assert "does not offer" in logged
    assert "does not match protocol v1" in logged
    assert provider.vouchers.best() is None  # nothing counted
