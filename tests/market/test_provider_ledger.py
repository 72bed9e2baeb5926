"""The agent's ledger and the marketplace together: the provider bids its electricity plus its margin, no less;
a job that pays less is not taken and the status says why; what a lease earned is booked, pending until the
operator's voucher covers it. The real reference server in-process, the real ledger on SQLite."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
from eth_account import Account

from sparecycles.agent.ledger.floor import TokenRate
from sparecycles.agent.ledger.service import LedgerService
from sparecycles.agent.ledger.store import LedgerStore
from sparecycles.agent.market.client import Backoff, MarketClient
from sparecycles.agent.market.provider import MachineOffer, MarketProvider, ProviderSetup
from sparecycles.agent.sensors.gpu.model import GpuIdentity, PowerLimits
from sparecycles.config import LedgerSettings
from sparecycles.protocol.market import LeaseOffer, lease_amount

from .conftest import Market, cpu_spec
from .test_provider_loop import LIMITS, InstantRuntime, market_url

FLAT = 'currency = "EUR"\ntime_zone = "Europe/Berlin"\nprice_per_kwh = "0.30"\n'
TOKEN = 10**18
# By hand: a core at 30 W for one hour is 0.03 kWh, at 0.30 EUR/kWh 0.009 EUR; with the 20 % margin 0.0108 EUR;
# at 0.50 EUR per token that is 0.0216 token.
CORE_HOUR_FLOOR = 21_600_000_000_000_000
# A GPU whose power limit is 300 W: 0.3 kWh, 0.09 EUR, 0.108 EUR with the margin, 0.216 token.
GPU_HOUR_FLOOR = 216_000_000_000_000_000


def open_ledger(tmp_path: Path, **settings: float) -> LedgerService:
    store = LedgerStore.open(tmp_path / "ledger.sqlite3", ZoneInfo("Europe/Berlin"))
    chosen = LedgerSettings(margin=0.2, cpu_watts_per_core=30.0, **settings)  # type: ignore[arg-type]
    ledger = LedgerService(store, settings=lambda: chosen, boot="boot")
    ledger.set_tariff_text(FLAT)
    ledger.set_token_rate(TokenRate("EUR", Decimal("0.50")))
    return ledger


def test_the_floor_is_the_hand_computed_electricity_plus_margin_for_gpus_and_cores(tmp_path: Path) -> None:
    ledger = open_ledger(tmp_path)
    gpu = GpuIdentity(0, "GPU-0", "RTX", power_limits=PowerLimits(default_w=300.0, current_w=300.0))
    floors = ledger.floors((gpu,), configured_gpu=0, configured_core=0, power_cap_percent=None)
    assert (floors.per_gpu_hour, floors.per_core_hour) == (GPU_HOUR_FLOOR, CORE_HOUR_FLOOR)
    assert floors.electricity_per_gpu_hour == Decimal("0.09")
    # The owner's own floor wins where it is higher; a configured load power replaces the power limit; the
    # agent's power cap (70 % of 300 W = 210 W) lowers the draw and so the floor.
    assert (
        ledger.floors((gpu,), configured_gpu=10**18, configured_core=0, power_cap_percent=None).per_gpu_hour == 10**18
    )
    capped = ledger.floors((gpu,), configured_gpu=0, configured_core=0, power_cap_percent=70)
    assert capped.per_gpu_hour == GPU_HOUR_FLOOR * 7 // 10
    ledger.store.close()
    configured = open_ledger(tmp_path / "other", load_power_w=150.0)
    assert configured.floors((gpu,), configured_gpu=0, configured_core=0, power_cap_percent=None).per_gpu_hour == (
        GPU_HOUR_FLOOR // 2
    )
    configured.store.close()


def test_a_benchmarked_power_under_load_replaces_the_power_limit_in_the_floor(tmp_path: Path) -> None:
    ledger = open_ledger(tmp_path)
    gpu = GpuIdentity(0, "GPU-0", "RTX", power_limits=PowerLimits(default_w=300.0, current_w=300.0))
    measured = {"GPU-0": 225.0}  # what the benchmark measured under its heaviest matrix product
    floors = ledger.floors(
        (gpu,), configured_gpu=0, configured_core=0, power_cap_percent=None, measured_load_w=measured
    )
    assert floors.per_gpu_hour == GPU_HOUR_FLOOR * 3 // 4
    assert floors.load_power_w == 225.0
    other = ledger.floors(
        (gpu,), configured_gpu=0, configured_core=0, power_cap_percent=None, measured_load_w={"GPU-9": 1.0}
    )
    assert other.per_gpu_hour == GPU_HOUR_FLOOR  # another GPU's figure does not count
    ledger.store.close()


def test_without_a_tariff_the_floor_is_the_owners_and_the_status_says_electricity_is_left_out(tmp_path: Path) -> None:
    store = LedgerStore.open(tmp_path / "ledger.sqlite3", ZoneInfo("UTC"))
    ledger = LedgerService(store, settings=LedgerSettings, boot="boot")
    floors = ledger.floors((), configured_gpu=5, configured_core=7, power_cap_percent=None)
    assert (floors.per_gpu_hour, floors.per_core_hour) == (5, 7)
    assert floors.basis.startswith("no tariff set")
    store.close()


def test_the_agent_bids_its_floor_takes_no_cheaper_job_and_books_what_it_earned(market: Market, tmp_path: Path) -> None:
    ledger = open_ledger(tmp_path)
    payout = Account.create().address

    def setup() -> ProviderSetup:
        floors = ledger.floors((), configured_gpu=0, configured_core=0, power_cap_percent=None)
        return ProviderSetup(
            payout, floors.per_gpu_hour, floors.per_core_hour, "test", (), LIMITS, floor_basis=floors.basis
        )

    provider = MarketProvider(
        client=MarketClient(market_url(market), transport=httpx.ASGITransport(app=market.client.app)),
        identity=Account.create(),
        runtime=InstantRuntime(tmp_path / "outputs"),  # type: ignore[arg-type]
        setup=setup,
        offer=lambda: MachineOffer({}, 2),
        state_dir=tmp_path / "provider",
        poll_wait_s=0.05,
        backoff=Backoff(first_s=0.05, cap_s=0.1),
        ledger=ledger.store,
    )
    requester = market.requester(credit=10 * TOKEN)
    cheap = requester.submit(cpu_spec(cpus=1.0), max_price_per_core_hour=CORE_HOUR_FLOOR - 1, bidding_window_s=1)

    fair: dict[str, object] = {}

    def booked() -> bool:
        """The earning is in the ledger and a voucher confirmed it (the last step of a voucher's refresh)."""
        today = ledger.today()
        return today.gross_base_units > 0 and today.pending_base_units == 0

    async def scenario() -> None:
        loop = asyncio.create_task(provider.run())
        try:
            for _ in range(2400):  # at most 2 min; the marketplace clock moves 0.25 s a step
                await asyncio.sleep(0.05)
                market.clock.advance(0.25)  # slow steps: a busy machine must not let a lease lapse
                if not fair and provider.price_note is not None:
                    note = provider.price_note
                    assert note.startswith("market pays less than your electricity")
                    assert f"offers {CORE_HOUR_FLOOR - 1} per core-hour, your floor is {CORE_HOUR_FLOOR}" in note
                    fair.update(
                        requester.submit(
                            cpu_spec(cpus=1.0), max_price_per_core_hour=CORE_HOUR_FLOOR * 2, bidding_window_s=1
                        )
                    )
                if provider.active_leases:  # working: the note of the last check no longer holds
                    assert provider.price_note is None
                if provider.vouchers.best() is not None and booked():
                    break
        finally:
            loop.cancel()
            await asyncio.gather(loop, return_exceptions=True)

    asyncio.run(scenario())
    assert fair, "the provider never said the market pays less than its electricity"
    [lease] = requester.job(fair["job_id"])["leases"]
    assert lease["price_per_unit_hour"] == CORE_HOUR_FLOOR  # pay-as-bid: the bid was the floor, exactly
    assert requester.job(cheap["job_id"])["leases"] == []  # the cheaper job was never taken
    earned = lease_amount(CORE_HOUR_FLOOR, 1, 2500)

    day = datetime.now(UTC).astimezone(ZoneInfo("Europe/Berlin")).date()
    export = ledger.export(day - timedelta(days=1), day + timedelta(days=1))
    [row] = export.rows
    assert (row.lease_id, row.job_id, row.outcome) == (lease["lease_id"], fair["job_id"], "finished")
    assert row.gross_base_units == earned
    assert row.voucher_status == "confirmed"
    assert ledger.today().gross_base_units == earned


def test_the_price_note_is_not_shown_while_the_machine_works(tmp_path: Path) -> None:
    """The note comes from a check made at most once a minute, while waiting for work: a machine that has since
    taken a lease (the market paid enough after all) must not go on saying the market pays too little."""
    ledger = open_ledger(tmp_path)
    provider = MarketProvider(
        client=MarketClient("http://market.test"),
        identity=Account.create(),
        runtime=InstantRuntime(tmp_path / "outputs"),  # type: ignore[arg-type]
        setup=lambda: ProviderSetup("0x" + "1" * 40, 0, 0, "t", (), LIMITS),
        offer=lambda: MachineOffer({}, 2),
        state_dir=tmp_path / "provider",
        ledger=ledger.store,
    )
    provider._price_note = "market pays less than your electricity: …"

    async def working() -> tuple[str | None, str | None]:
        lease = asyncio.create_task(asyncio.sleep(60))
        provider._leases["lease-1"] = lease
        during = provider.price_note
        lease.cancel()
        del provider._leases["lease-1"]
        return during, provider.price_note

    during, after = asyncio.run(working())
    assert during is None
    assert after == "market pays less than your electricity: …"  # waiting again: the last check's note


def test_a_lease_priced_below_the_floor_now_is_refused_with_the_reason(tmp_path: Path) -> None:
    ledger = open_ledger(tmp_path)
    floors = ledger.floors((), configured_gpu=0, configured_core=0, power_cap_percent=None)
    provider = MarketProvider(
        client=MarketClient("http://market.test"),
        identity=Account.create(),
        runtime=InstantRuntime(tmp_path / "outputs"),  # type: ignore[arg-type]
        setup=lambda: ProviderSetup(
            "0x" + "1" * 40, floors.per_gpu_hour, floors.per_core_hour, "t", (), LIMITS, floor_basis=floors.basis
        ),
        offer=lambda: MachineOffer({}, 2),
        state_dir=tmp_path / "provider",
    )
    offer = LeaseOffer(
        lease_id="lease-1",
        job_id="job-1",
        spec=cpu_spec(cpus=1.0),
        units=1,
        price_per_unit_hour=CORE_HOUR_FLOOR - 1,
        expires_at=datetime.now(UTC) + timedelta(minutes=5),
        heartbeat_interval_s=5,
    )
    refusal = provider._price_refusal(offer)
    assert refusal is not None
    assert f"below this machine's floor of {CORE_HOUR_FLOOR}" in refusal
    assert provider._price_refusal(offer.model_copy(update={"price_per_unit_hour": CORE_HOUR_FLOOR})) is None
    ledger.store.close()
