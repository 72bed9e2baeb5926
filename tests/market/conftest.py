"""The reference marketplace in-process: a real SQLite database migrated by Alembic, a real operator key
in a 0600 key file, the real FastAPI app behind Starlette's TestClient, and a clock the test moves."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient

from sparecycles.agent.market_server.api import create_app
from sparecycles.agent.market_server.market import Marketplace
from sparecycles.agent.market_server.serve import MarketOptions, open_market
from sparecycles.protocol.market import Offer, OutputFile, ProviderRegistration, ResultReport, SignedResultReport
from sparecycles.protocol.signing import sign_in_message, sign_text
from tests.chain_support import anvil, fresh_address

__all__ = ["anvil", "fresh_address"]  # the vault's tests run on a real anvil (tests/chain_support.py)

BUSYBOX = "127.0.0.1:5000/sparecycles-test/busybox@sha256:" + "a" * 64
GPU0 = "GPU-00000000-0000-0000-0000-000000000000"
GPU1 = "GPU-11111111-1111-1111-1111-111111111111"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Market:
    market: Marketplace
    client: TestClient
    clock: Clock
    data_dir: Path

    def requester(self, name: str = "studio", credit: int = 10**15) -> Requester:
        key = self.market.add_requester(name)
        if credit:
            self.market.credit(name, credit)
        return Requester(self.client, key)


def register_rig(
    market: Marketplace,
    address: str,
    gpu_uuids: Sequence[str],
    *,
    name: str = "rig",
    gpu_floor: int = 10**6,
    offer: Offer | None = None,
) -> None:
    """A provider registered in-process (no HTTP) with a simulated 24 GiB GPU for each of ``gpu_uuids``, offering
    them all and no CPU cores unless ``offer`` says otherwise."""
    market.register(
        address,
        ProviderRegistration(
            name=name,
            cpu_cores=8,
            memory_bytes=32 * 1024**3,
            gpus=[{"uuid": uuid, "name": "Simulated", "vram_bytes": 24 * 1024**3, "score": 90.5} for uuid in gpu_uuids],
            price_floor_per_gpu_hour=gpu_floor,
            price_floor_per_core_hour=1000,
            payout_address=Account.create().address,
        ),
    )
    market.set_offer(address, offer or Offer(cpu_cores=0, gpu_uuids=list(gpu_uuids)))


def open_in_process(tmp_path: Path, clock: Callable[[], datetime], database_url: str | None = None) -> Marketplace:
    """A marketplace run in-process on the test's clock: its data folder and operator key file in ``tmp_path``,
    on SQLite unless ``database_url`` names another database."""
    options = MarketOptions(data_dir=tmp_path / "market", key_file=tmp_path / "operator.key", db_url=database_url)
    return open_market(options, clock=clock)


@pytest.fixture
def postgres_url(database_url: str) -> str:
    """``database_url`` for a test of PostgreSQL alone (skipped in its SQLite run)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("a test of PostgreSQL alone")
    return database_url


@pytest.fixture
def market(tmp_path: Path, database_url: str) -> Iterator[Market]:
    clock = Clock()
    opened = open_in_process(tmp_path, clock, database_url)
    with TestClient(create_app(opened, tick_every_s=3600)) as client:
        yield Market(opened, client, clock, tmp_path / "market")


@dataclass
class Requester:
    client: TestClient
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def submit(self, spec: dict[str, Any], **terms: Any) -> dict[str, Any]:
        response = self.client.post("/v1/jobs", json={"spec": spec, **terms}, headers=self.headers)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def job(self, job_id: str) -> dict[str, Any]:
        response = self.client.get(f"/v1/jobs/{job_id}", headers=self.headers)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def account(self) -> dict[str, Any]:
        return dict(self.client.get("/v1/requester", headers=self.headers).json())


@dataclass
class Provider:
    client: TestClient
    identity: LocalAccount = field(default_factory=Account.create)
    payout: LocalAccount = field(default_factory=Account.create)
    token: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def sign_in(self) -> str:
        challenge = self.client.post("/v1/auth/nonce", json={"address": self.identity.address})
        assert challenge.status_code == 200, challenge.text
        from sparecycles.protocol.market import NonceResponse

        message = sign_in_message(NonceResponse.model_validate(challenge.json()), self.identity.address)
        signed = self.client.post(
            "/v1/auth/sign-in", json={"message": message, "signature": sign_text(self.identity, message)}
        )
        assert signed.status_code == 200, signed.text
        self.token = signed.json()["token"]
        return message

    def register(self, *, cores: int = 4, core_floor: int = 1000, gpu_floor: int = 10**6, gpus: int = 0) -> None:
        registration = {
            "name": "test rig",
            "cpu_cores": cores,
            "memory_bytes": 8 * 1024**3,
            "gpus": [
                {"uuid": uuid, "name": "Simulated RTX", "vram_bytes": 24 * 1024**3, "score": 100.0}
                for uuid in (GPU0, GPU1)[:gpus]
            ],
            "price_floor_per_gpu_hour": gpu_floor,
            "price_floor_per_core_hour": core_floor,
            "payout_address": self.payout.address,
        }
        response = self.client.put("/v1/provider", json=registration, headers=self.headers)
        assert response.status_code == 200, response.text
        offer = {"cpu_cores": cores, "gpu_uuids": [GPU0, GPU1][:gpus]}
        response = self.client.put("/v1/provider/offer", json=offer, headers=self.headers)
        assert response.status_code == 200, response.text

    def join(self, **registration: Any) -> Provider:
        self.sign_in()
        self.register(**registration)
        return self

    def poll(self) -> dict[str, Any]:
        response = self.client.get("/v1/provider/work", headers=self.headers)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def heartbeat(self, lease_id: str, run_time_ms: int = 0) -> dict[str, Any]:
        response = self.client.post(
            f"/v1/provider/leases/{lease_id}/heartbeat",
            json={"state": "running", "run_time_ms": run_time_ms},
            headers=self.headers,
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    def finish(self, lease: dict[str, Any], run_time_ms: int, files: dict[str, bytes]) -> dict[str, Any]:
        """Upload the outputs, then report the lease finished (signed)."""
        outputs = []
        for path, data in sorted(files.items()):
            response = self.client.put(
                f"/v1/provider/leases/{lease['lease_id']}/outputs/{path}", content=data, headers=self.headers
            )
            assert response.status_code == 200, response.text
            outputs.append(OutputFile(path=path, size_bytes=len(data), sha256=hashlib.sha256(data).hexdigest()))
        report = ResultReport(
            lease_id=lease["lease_id"],
            job_id=lease["job_id"],
            outcome="finished",
            exit_code=0,
            run_time_ms=run_time_ms,
            outputs=outputs,
        )
        return self.report(report)

    def report(self, report: ResultReport, signer: LocalAccount | None = None) -> dict[str, Any]:
        signed = SignedResultReport(report=report, signature=sign_text(signer or self.identity, report.signing_text()))
        response = self.client.post(
            f"/v1/provider/leases/{report.lease_id}/report", json=signed.model_dump(mode="json"), headers=self.headers
        )
        return {"status": response.status_code, **response.json()}


def cpu_spec(**fields: Any) -> dict[str, Any]:
    return {"image": BUSYBOX, "command": ["sh", "-c", "echo hi > /job/output/out.txt"], "cpus": 2.0, **fields}


def run_provider_until(provider: Any, done: Callable[[], bool], *, seconds: float = 10.0) -> None:
    """Run an agent's provider loop (``MarketProvider.run``) until ``done()``, looked at every 50 ms for at most
    ``seconds``, then stop it."""

    async def scenario() -> None:
        loop = asyncio.create_task(provider.run())
        try:
            for _ in range(int(seconds / 0.05)):
                await asyncio.sleep(0.05)
                if done():
                    break
        finally:
            loop.cancel()
            await asyncio.gather(loop, return_exceptions=True)

    asyncio.run(scenario())
