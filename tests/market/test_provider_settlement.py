"""What the marketplace tells a provider's earnings ledger: each lease's earning and the cumulative total a
voucher must reach to cover it (machines may share a payout address), and what the queue pays now."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from sqlalchemy import Engine, inspect, text

from sparecycles.agent.market.client import MarketClient
from sparecycles.agent.market_server import schema
from sparecycles.agent.market_server.db import open_engine
from sparecycles.protocol.market import MarketPrices, ProviderLeaseView, lease_amount

from .conftest import Market, Provider, cpu_spec


def lease_view(market: Market, provider: Provider, lease_id: str) -> dict[str, Any]:
    response = market.client.get(f"/v1/provider/leases/{lease_id}", headers=provider.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def win(market: Market, provider: Provider, job: dict[str, Any]) -> dict[str, Any]:
    """The provider bids on the queued job and wins it when the bidding window closes."""
    assert provider.poll()["leases"] == []
    market.clock.advance(2)
    [lease] = provider.poll()["leases"]
    assert lease["job_id"] == job["job_id"]
    return dict(lease)


def voucher_total(market: Market, provider: Provider) -> int:
    return int(market.client.get("/v1/provider/voucher", headers=provider.headers).json()["cumulative_amount"])


def test_a_lease_shows_its_earning_and_the_cumulative_total_that_covers_it(market: Market) -> None:
    requester = market.requester()
    first = Provider(market.client).join(cores=4, core_floor=3_600_000)
    second = Provider(market.client, payout=first.payout).join(cores=4, core_floor=1_800_000)  # the same payout
    job = requester.submit(cpu_spec(), max_price_per_core_hour=5_000_000, bidding_window_s=1)
    lease = win(market, first, job)
    running = lease_view(market, first, lease["lease_id"])
    assert running == {
        "lease_id": lease["lease_id"],
        "job_id": job["job_id"],
        "state": "active",
        "run_time_ms": None,
        "amount_base_units": None,
        "paid_cumulative_base_units": None,
        "payout_address": first.payout.address,
    }
    first.heartbeat(lease["lease_id"], 1_000)
    assert lease_view(market, first, lease["lease_id"])["amount_base_units"] is None  # running, not yet paid
    market.clock.advance(60)
    assert first.finish(lease, 42_000, {"out.txt": b"hi\n"})["lease_state"] == "accepted"
    paid = lease_view(market, first, lease["lease_id"])
    earned = lease_amount(3_600_000, 2, 42_000)
    assert (paid["state"], paid["run_time_ms"], paid["amount_base_units"]) == ("accepted", 42_000, earned)
    assert paid["paid_cumulative_base_units"] == voucher_total(market, first) == earned

    again = requester.submit(cpu_spec(), max_price_per_core_hour=5_000_000, bidding_window_s=1)
    other = win(market, second, again)
    market.clock.advance(30)
    assert second.finish(other, 20_000, {"out.txt": b"hi\n"})["lease_state"] == "accepted"
    later = lease_view(market, second, other["lease_id"])
    assert later["amount_base_units"] == lease_amount(1_800_000, 2, 20_000)
    assert later["paid_cumulative_base_units"] - paid["paid_cumulative_base_units"] == later["amount_base_units"]
    assert later["paid_cumulative_base_units"] == voucher_total(market, first) == voucher_total(market, second)
    # The first lease still names the total right after it was paid: the earlier voucher covered it already.
    assert lease_view(market, first, lease["lease_id"])["paid_cumulative_base_units"] == earned


def test_another_provider_cannot_read_a_lease(market: Market) -> None:
    requester = market.requester()
    owner = Provider(market.client).join()
    job = requester.submit(cpu_spec(), max_price_per_core_hour=5_000_000, bidding_window_s=1)
    lease = win(market, owner, job)
    stranger = Provider(market.client, payout=owner.payout).join()  # even one paid to the same address
    path = f"/v1/provider/leases/{lease['lease_id']}"
    refused = market.client.get(path, headers=stranger.headers)
    assert refused.status_code in (403, 404)
    assert refused.json()["code"] in ("forbidden", "not_found")
    assert market.client.get("/v1/provider/leases/lease-unknown", headers=owner.headers).status_code == 404
    assert market.client.get(path).status_code == 401
    assert market.client.get(path, headers=requester.headers).status_code == 401  # a requester's key is no session


def prices(market: Market, provider: Provider) -> dict[str, Any]:
    response = market.client.get("/v1/provider/prices", headers=provider.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_prices_are_the_best_max_price_of_the_queued_gpu_and_cpu_jobs(market: Market) -> None:
    provider = Provider(market.client).join()
    nothing = {"queued_gpu_jobs": 0, "queued_cpu_jobs": 0, "best_gpu_hour": None, "best_core_hour": None}
    assert prices(market, provider) == nothing
    requester = market.requester(credit=10**40)
    gpu_spec = cpu_spec(gpus=1, min_vram_bytes=1024**3)
    # Amounts beyond 64 bits, and prices whose digits sort otherwise as text (9 000 < 10 000).
    requester.submit(gpu_spec, max_price_per_gpu_hour=9_000)
    requester.submit(gpu_spec, max_price_per_gpu_hour=2 * 10**24)
    requester.submit(gpu_spec, max_price_per_gpu_hour=10**24)
    requester.submit(cpu_spec(), max_price_per_core_hour=9_000)
    cheap_cpu = requester.submit(cpu_spec(), max_price_per_core_hour=10_000)
    best_cpu = requester.submit(cpu_spec(), max_price_per_core_hour=12_000)
    assert prices(market, provider) == nothing  # answered from the cache for a few seconds
    market.clock.advance(market.market.config.prices_cache_s)
    assert prices(market, provider) == {
        "queued_gpu_jobs": 3,
        "queued_cpu_jobs": 3,
        "best_gpu_hour": 2 * 10**24,
        "best_core_hour": 12_000,
    }
    for job in (cheap_cpu, best_cpu):
        assert market.client.post(f"/v1/jobs/{job['job_id']}/cancel", headers=requester.headers).status_code == 200
    market.clock.advance(market.market.config.prices_cache_s)
    assert prices(market, provider)["queued_cpu_jobs"] == 1
    assert prices(market, provider)["best_core_hour"] == 9_000
    assert market.client.get("/v1/provider/prices", headers=requester.headers).status_code == 401


def test_the_agents_client_reads_a_lease_and_the_prices(market: Market) -> None:
    requester = market.requester()
    provider = Provider(market.client).join()
    job = requester.submit(cpu_spec(), max_price_per_core_hour=5_000_000, bidding_window_s=1)
    lease = win(market, provider, job)
    client = MarketClient("http://market.test", transport=httpx.ASGITransport(app=market.client.app))
    client.token = provider.token

    async def ask() -> tuple[ProviderLeaseView, MarketPrices]:
        try:
            return await client.lease(lease["lease_id"]), await client.prices()
        finally:
            await client.close()

    view, queue = asyncio.run(ask())
    assert (view.lease_id, view.job_id, view.state, view.amount_base_units) == (
        lease["lease_id"],
        job["job_id"],
        "active",
        None,
    )
    assert view.payout_address == provider.payout.address
    assert queue == MarketPrices(queued_gpu_jobs=0, queued_cpu_jobs=0, best_gpu_hour=None, best_core_hour=None)


def _migrate(engine: Engine, revision: str, *, down: bool = False) -> None:
    schema.MARKET_MIGRATIONS.move_to(engine, revision, down=down)


def test_0004_gives_leases_paid_before_it_their_payout_total_and_its_downgrade_drops_the_column(
    database_url: str,
) -> None:
    engine = open_engine(database_url)
    _migrate(engine, "0003")
    now = "2026-11-25 12:00:00+00:00"
    payout = f"0x{9:040x}"
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO requesters (id, name, api_key_sha256, credit, held, created_at) "
                "VALUES ('req-1', 'studio', 'h', '0', '0', :now)"
            ),
            {"now": now},
        )
        connection.execute(
            text(
                "INSERT INTO providers (address, name, region, cpu_cores, memory_bytes, floor_per_gpu_hour, "
                "floor_per_core_hour, payout_address, offered_cores, last_seen_at, registered_at) "
                "VALUES (:address, 'rig', '', 4, 1, '1', '1', :payout, 4, :now, :now)"
            ),
            {"address": f"0x{1:040x}", "payout": payout, "now": now},
        )
        connection.execute(
            text(
                "INSERT INTO jobs (id, requester_id, spec_json, gpus, units, max_price, bidding_window_s, replicas, "
                "state, reason, round, window_ends_at, attempts, held, charged, created_at) "
                "VALUES ('job-1', 'req-1', '{}', 0, 1, '1', 1, 1, 'running', 'running', 0, :now, 0, '0', '0', :now)"
            ),
            {"now": now},
        )
        for row in (
            {"id": "lease-paid", "state": "accepted", "amount": "700", "seat": 0},
            {"id": "lease-lost", "state": "lost", "amount": None, "seat": 0},
        ):
            connection.execute(
                text(
                    "INSERT INTO leases (id, job_id, provider_address, payout_address, gpu_uuids_json, units, "
                    "price, state, delivered, cancel_requested, started_at, expires_at, amount, seat) "
                    "VALUES (:id, 'job-1', :address, :payout, '[]', 1, '1', :state, false, false, :now, :now, "
                    ":amount, :seat)"
                ),
                {"address": f"0x{1:040x}", "payout": payout, "now": now, **row},
            )
        connection.execute(  # outputs keep leases from being copied and dropped on SQLite
            text(
                "INSERT INTO uploaded_outputs (lease_id, path, size_bytes, sha256) "
                "VALUES ('lease-paid', 'out.txt', 3, :sha256)"
            ),
            {"sha256": "0" * 64},
        )
        connection.execute(
            text(
                "INSERT INTO payouts (payout_address, cumulative, voucher_json, updated_at) "
                "VALUES (:payout, :total, '{}', :now)"
            ),
            {"payout": payout, "total": str(2**70), "now": now},
        )
    _migrate(engine, "head")
    assert schema.current_revision(engine) == schema.head_revision()
    with engine.connect() as connection:
        covered: dict[str, Any] = dict(connection.execute(text("SELECT id, paid_cumulative FROM leases")).all())
    assert {lease: None if total is None else int(total) for lease, total in covered.items()} == {
        "lease-paid": 2**70,
        "lease-lost": None,
    }
    _migrate(engine, "0003", down=True)
    assert "paid_cumulative" not in {column["name"] for column in inspect(engine).get_columns("leases")}
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM leases")).scalar_one() == 2
    _migrate(engine, "head")
    engine.dispose()
