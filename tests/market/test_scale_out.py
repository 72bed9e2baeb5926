"""Scale-out: two real `market serve` processes on one PostgreSQL database, fifty providers bidding on
both at once for five hundred jobs. Every job is assigned exactly once, no provider ever holds more leases
than its capacity, and every completed lease is paid exactly once."""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy import create_engine, text

from sparecycles.protocol.market import NonceResponse, ResultReport, SignedResultReport
from sparecycles.protocol.signing import sign_in_message, sign_text
from tests.market.market_process import MarketProcess

from .conftest import BUSYBOX

PROVIDERS = 50
JOBS = 500
CREDIT = 10**18


def _provider_loop(url: str, identity: LocalAccount, stop: threading.Event, errors: list[str]) -> None:
    """A protocol-level provider with one core: sign in, offer it, and finish every lease at once."""
    with httpx.Client(base_url=url, timeout=30) as client:
        challenge = NonceResponse.model_validate(
            client.post("/v1/auth/nonce", json={"address": identity.address}).json()
        )
        message = sign_in_message(challenge, identity.address)
        token = client.post("/v1/auth/sign-in", json={"message": message, "signature": sign_text(identity, message)})
        client.headers["Authorization"] = f"Bearer {token.json()['token']}"
        registration = {
            "name": f"rig {identity.address[:8]}",
            "cpu_cores": 1,
            "memory_bytes": 2**30,
            "price_floor_per_gpu_hour": 10**6,
            "price_floor_per_core_hour": 3_600_000,
            "payout_address": Account.create().address,
        }
        client.put("/v1/provider", json=registration).raise_for_status()
        client.put("/v1/provider/offer", json={"cpu_cores": 1}).raise_for_status()
        while not stop.is_set():
            answer = client.get("/v1/provider/work", params={"wait_s": 1})
            if answer.status_code == 429:
                time.sleep(float(answer.headers["Retry-After"]))
                continue
            if answer.status_code != 200:
                errors.append(f"work: {answer.status_code} {answer.text}")
                return
            for lease in answer.json()["leases"]:
                report = ResultReport(
                    lease_id=lease["lease_id"], job_id=lease["job_id"], outcome="finished", exit_code=0, run_time_ms=500
                )
                signed = SignedResultReport(report=report, signature=sign_text(identity, report.signing_text()))
                sent = client.post(
                    f"/v1/provider/leases/{lease['lease_id']}/report", json=signed.model_dump(mode="json")
                )
                if sent.status_code != 200:
                    errors.append(f"report: {sent.status_code} {sent.text}")


@pytest.fixture
def two_servers(tmp_path: Path, postgres_url: str) -> Iterator[list[MarketProcess]]:
    # One operator key file, one database, two data folders: the processes share nothing else.
    servers = [MarketProcess(tmp_path, data_dir=tmp_path / f"data-{index}") for index in range(2)]
    servers[0].operator("add-requester", "studio", "--db", postgres_url)
    servers[0].operator("credit", "studio", str(CREDIT), "--db", postgres_url)
    try:
        for server in servers:
            server.start("--db", postgres_url)
        yield servers
    finally:
        for server in servers:
            server.stop()


@pytest.mark.slow
@pytest.mark.timeout(420)
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_server_processes_assign_every_job_once_and_pay_every_lease_once(
    two_servers: list[MarketProcess], postgres_url: str
) -> None:
    key = two_servers[0].operator("rotate-key", "studio", "--db", postgres_url)
    stop = threading.Event()
    errors: list[str] = []
    threads = [
        threading.Thread(
            target=_provider_loop, args=(two_servers[index % 2].url(), Account.create(), stop, errors), daemon=True
        )
        for index in range(PROVIDERS)
    ]
    for thread in threads:
        thread.start()
    spec = {"image": BUSYBOX, "command": ["true"], "cpus": 1.0, "max_runtime_s": 60}

    def submit(index: int) -> str:
        server = two_servers[index % 2]  # the requester too talks to both processes
        response = httpx.post(
            f"{server.url()}/v1/jobs",
            json={"spec": spec, "max_price_per_core_hour": 5_000_000, "bidding_window_s": 0.5},
            headers={"Authorization": f"Bearer {key}"},
            timeout=60,
        )
        assert response.status_code == 201, response.text
        return str(response.json()["job_id"])

    with ThreadPoolExecutor(max_workers=8) as pool:
        submitted = list(pool.map(submit, range(JOBS)))

    engine = create_engine(postgres_url)
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and not errors:
            with engine.connect() as connection:
                states = Counter(
                    dict(connection.execute(text("SELECT state, count(*) FROM jobs GROUP BY state")).all())
                )
            if states["completed"] == JOBS:
                break
            time.sleep(1)
        stop.set()
        for thread in threads:
            thread.join(30)
        assert not errors, errors[:5]
        assert states["completed"] == JOBS, f"after 240 s: {dict(states)}"
        with engine.connect() as connection:
            leases = connection.execute(
                text("SELECT id, job_id, provider_address, state, amount, started_at, ended_at FROM leases")
            ).all()
            charges = Counter(
                row[0]
                for row in connection.execute(text("SELECT detail FROM audit_events WHERE action = 'charge'")).all()
            )
            payouts = dict(connection.execute(text("SELECT payout_address, cumulative FROM payouts")).all())
            lease_payouts = connection.execute(
                text("SELECT payout_address, amount FROM leases WHERE state = 'accepted'")
            ).all()
            credit, held = connection.execute(text("SELECT credit, held FROM requesters")).one()
            charged = connection.execute(text("SELECT sum(charged) FROM jobs")).scalar_one()
    finally:
        engine.dispose()
    _assert_each_job_assigned_once_and_paid_once(submitted, leases, charges, payouts, lease_payouts)
    assert (int(credit) + int(charged), int(held)) == (CREDIT, 0)
    for server in two_servers:
        assert "Traceback" not in server.stderr, server.stderr


def _assert_each_job_assigned_once_and_paid_once(
    submitted: list[str],
    leases: list[Any],
    charges: Counter[str],
    payouts: dict[str, Any],
    lease_payouts: list[Any],
) -> None:
    per_job = Counter(lease.job_id for lease in leases)
    assert set(per_job) == set(submitted)
    assert set(per_job.values()) == {1}, "a job was leased more than once"
    assert {lease.state for lease in leases} == {"accepted"}
    # Exactly one charge in the audit log for each lease, and each payout address's voucher total is the sum
    # of its accepted leases: nothing paid twice, nothing left out.
    assert len(charges) == len(leases)
    assert set(charges.values()) == {1}
    owed: defaultdict[str, int] = defaultdict(int)
    for address, amount in lease_payouts:
        owed[address] += int(amount)
    assert {address: int(total) for address, total in payouts.items()} == dict(owed)
    # No provider ran two leases at once (each offered one core), whichever process leased them.
    by_provider: defaultdict[str, list[Any]] = defaultdict(list)
    for lease in leases:
        by_provider[lease.provider_address].append(lease)
    for held in by_provider.values():
        held.sort(key=lambda lease: lease.started_at)
        for earlier, later in itertools.pairwise(held):
            assert earlier.ended_at <= later.started_at, f"{earlier.id} and {later.id} overlap"
