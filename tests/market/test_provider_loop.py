"""The agent's provider loop against the real reference server in-process (ASGI), with the agent's clock
three hours off the marketplace's: sign-in, bidding, the lease, the signed report and the voucher all
work, because the agent never compares its clock with the server's times."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from eth_account import Account

from sparecycles.agent.jobs.runtime import JobResult, JobState, JobStatus, Lease
from sparecycles.agent.jobs.scratch import OutputFile
from sparecycles.agent.market.client import Backoff, MarketClient
from sparecycles.agent.market.provider import MachineOffer, MarketProvider, ProviderSetup
from sparecycles.protocol.job_refusal import ProviderLimits
from sparecycles.protocol.market import lease_amount

from .conftest import Market, cpu_spec

LIMITS = ProviderLimits(
    max_gpus=0,
    max_cpus=4,
    max_memory_bytes=8 * 1024**3,
    max_shm_bytes=1024**3,
    max_runtime_s=3600,
    max_output_bytes=1024**3,
    allowed_registries=("127.0.0.1:5000",),
)


def market_url(market: Market) -> str:
    """The URL the marketplace's sign-in messages name, as an agent is configured with it: the agent signs
    only a challenge for the marketplace it talks to."""
    uri = urlsplit(market.market.config.uri)
    return f"{uri.scheme}://{uri.netloc}"


class InstantRuntime:
    """Stands in for Docker (tested on its own elsewhere): every job "runs" for 2.5 s and leaves one file."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.leases: list[Lease] = []

    async def run(self, lease: Lease) -> JobResult:
        self.leases.append(lease)
        outputs = self.folder / lease.job_id
        outputs.mkdir(parents=True)
        data = b"rendered\n"
        (outputs / "out.txt").write_bytes(data)
        output = OutputFile("out.txt", len(data), hashlib.sha256(data).hexdigest())
        return JobResult(lease.job_id, JobState.FINISHED, 0, None, (output,), outputs, "", 2.5)

    def jobs(self) -> list[JobStatus]:
        return []

    def stop_job(self, job_id: str, reason: str) -> None:
        raise AssertionError("nothing is cancelled here")


def test_a_provider_whose_clock_is_hours_off_still_wins_runs_reports_and_is_paid(
    market: Market, tmp_path: Path
) -> None:
    requester = market.requester()
    payout = Account.create().address
    runtime = InstantRuntime(tmp_path / "outputs")
    provider = MarketProvider(
        client=MarketClient(market_url(market), transport=httpx.ASGITransport(app=market.client.app)),
        identity=Account.create(),
        runtime=runtime,  # type: ignore[arg-type]
        setup=lambda: ProviderSetup(payout, 0, 3_600_000, "test", (), LIMITS),
        offer=lambda: MachineOffer({}, 2),
        state_dir=tmp_path / "provider",
        poll_wait_s=0.05,
        clock=lambda: datetime.now(UTC) + timedelta(hours=3),
        backoff=Backoff(first_s=0.05, cap_s=0.1),
    )
    job = requester.submit(cpu_spec(cpus=1.0), max_price_per_core_hour=5_000_000, bidding_window_s=1)

    async def scenario() -> Any:
        loop = asyncio.create_task(provider.run())
        try:
            for _ in range(400):
                await asyncio.sleep(0.05)
                market.clock.advance(0.5)  # the marketplace's own time moves on; auctions close
                if provider.vouchers.best() is not None:
                    break
        finally:
            loop.cancel()
            await asyncio.gather(loop, return_exceptions=True)

    asyncio.run(scenario())
    view = requester.job(job["job_id"])
    assert view["state"] == "completed", view
    [lease] = view["leases"]
    assert lease["run_time_ms"] == 2500
    amount = lease_amount(3_600_000, 1, 2500)
    assert lease["amount_base_units"] == amount
    voucher = provider.vouchers.best()
    assert voucher is not None
    assert voucher.cumulative_amount == amount
    [ran] = runtime.leases
    assert ran.expires_at > datetime.now(UTC) + timedelta(hours=3)  # the job's own limit, on the agent's clock
