"""An auction whose own bidders all won other jobs of the same batch goes to a bidder of the batch that won
nothing (Marketplace._spare_bids): on a real marketplace (SQLite and PostgreSQL), and the rules such a stand-in
bid follows (room, price, a studio group's jobs, a pause, a job it failed), as pure logic."""

from __future__ import annotations

import dataclasses
import random
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from sparecycles.agent.market_server import auction
from sparecycles.agent.market_server.market import LeaseState, Marketplace, _Cache

from .conftest import Market, Provider, cpu_spec

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def test_a_job_whose_bidder_won_another_job_of_the_batch_goes_to_a_free_bidder(market: Market) -> None:
    market.market.config = dataclasses.replace(market.market.config, bidders_per_job=1)
    requester = market.requester()
    first, second = Provider(market.client).join(cores=1), Provider(market.client).join(cores=1)
    terms = {"max_price_per_core_hour": 10**6, "bidding_window_s": 1}
    job_a = requester.submit(cpu_spec(cpus=1.0), **terms)["job_id"]
    job_b = requester.submit(cpu_spec(cpus=1.0), **terms)["job_id"]
    first.poll()  # the only bidder of both: one job per bidder here
    market.clock.advance(0.2)
    job_c = requester.submit(cpu_spec(cpus=1.0), **terms)["job_id"]
    second.poll()  # A and B have their bidder: it bids on C only
    market.clock.advance(2)
    market.market.tick()
    leased = {
        job: [lease["provider_address"] for lease in requester.job(job)["leases"]] for job in (job_a, job_b, job_c)
    }
    # A went to its bidder; B's bidder had no room left, and the second provider, which bid on C and had won
    # nothing yet, took B; C's round found both busy and opened again.
    assert leased == {job_a: [first.identity.address], job_b: [second.identity.address], job_c: []}
    assert requester.job(job_c)["state"] == "queued"


def _bidder(group: str | None = None, outside_jobs: bool | None = None, paused_until: datetime | None = None) -> object:
    return SimpleNamespace(group_name=group, outside_jobs=outside_jobs, paused_until=paused_until, placed_at=NOW)


def _capacity(address: str, cores: int = 4, floor: int = 100) -> auction.Capacity:
    return auction.Capacity(
        address, floor_per_gpu_hour=10**6, floor_per_core_hour=floor, free_gpus=(), free_cores=cores
    )


def test_a_stand_in_bid_follows_the_rules_of_a_bid() -> None:
    bidders = {
        "0xfree": _bidder(),
        "0xfull": _bidder(),
        "0xdear": _bidder(),
        "0xstudio-only": _bidder("render-farm", outside_jobs=False),
        "0xstudio-open": _bidder("render-farm", outside_jobs=True),
        "0xpaused": _bidder(paused_until=NOW + timedelta(hours=1)),
        "0xfailed-it": _bidder(),
    }
    capacities = {address: _capacity(address) for address in bidders}
    capacities["0xfull"] = _capacity("0xfull", cores=0)
    capacities["0xdear"] = _capacity("0xdear", floor=10**9)
    leases = {"job-1": [SimpleNamespace(provider_address="0xfailed-it", state=LeaseState.FAILED)]}
    cache = _Cache(capacities=capacities, leases=leases, bidders=bidders)  # type: ignore[arg-type]
    need = auction.Need(gpus=0, min_vram_bytes=0, cores=2, max_price=1000)

    def stand_ins(group: str | None) -> set[str]:
        job = SimpleNamespace(id="job-1", group_name=group)
        return {bid.address for bid in Marketplace._spare_bids(job, need, cache, NOW)}  # type: ignore[arg-type]

    assert stand_ins(None) == {"0xfree", "0xstudio-open"}  # an outside job
    assert stand_ins("render-farm") == {"0xstudio-only", "0xstudio-open"}  # the studio's own job
    [bid] = [
        bid
        for bid in Marketplace._spare_bids(SimpleNamespace(id="job-1", group_name=None), need, cache, NOW)
        if bid.address == "0xfree"
    ]  # type: ignore[arg-type]
    assert bid.price == auction.bid_price(capacities["0xfree"], need) == 100  # its floor, as its own bid would be


def test_a_job_nobody_bid_on_goes_to_a_provider_waiting_in_a_long_poll(market: Market) -> None:
    """A provider waiting in a long poll (Marketplace.standing, from the HTTP layer's waiters) would bid its
    floor as soon as woken: closing auctions count it as a bidder, so the job is leased at its first close
    without a poll in between. One whose floor is above the job's price is not."""
    requester = market.requester()
    cheap = Provider(market.client).join(cores=1, core_floor=1000)
    dear = Provider(market.client).join(cores=1, core_floor=10**7)
    market.market.standing = lambda: [dear.identity.address, cheap.identity.address]
    job = requester.submit(cpu_spec(cpus=1.0), max_price_per_core_hour=10**6, bidding_window_s=1)["job_id"]
    second = requester.submit(cpu_spec(cpus=1.0), max_price_per_core_hour=10**6, bidding_window_s=1)["job_id"]
    market.clock.advance(2)
    market.market.tick()
    assert [lease["provider_address"] for lease in requester.job(job)["leases"]] == [cheap.identity.address]
    assert requester.job(second)["state"] == "queued"  # the cheap one is busy, the dear one asks too much
    [lease] = cheap.poll()["leases"]
    assert lease["job_id"] == job


def test_a_cheaper_provider_standing_by_beats_a_dearer_ones_bid(market: Market) -> None:
    requester = market.requester()
    cheap = Provider(market.client).join(cores=1, core_floor=1000)
    dear = Provider(market.client).join(cores=1, core_floor=5000)
    job = requester.submit(cpu_spec(cpus=1.0), max_price_per_core_hour=10**6, bidding_window_s=1)["job_id"]
    dear.poll()  # the dearer one polled and bid; the cheaper one waits in its long poll
    market.market.standing = lambda: [cheap.identity.address]
    market.clock.advance(2)
    market.market.tick()
    [lease] = requester.job(job)["leases"]
    assert (lease["provider_address"], lease["price_per_unit_hour"]) == (cheap.identity.address, 1000)


def test_looking_only_until_the_best_are_certain_picks_the_same_winners() -> None:
    """``wanted``: the providers are looked at best first and only until the wanted best bids are certain. Over
    many random batches (floors, scores, VRAM, GPUs already leased, refusals, pauses, studio groups, the job's
    own bidders) the winners are those of looking at every provider, also after leases lowered what some offer."""
    rng = random.Random(20261127)  # noqa: S311 - a reproducible mix of batches, not a secret
    scores = [None, *range(0, 200, 7)]
    for _ in range(400):
        bidders: dict[str, object] = {}
        capacities: dict[str, auction.Capacity] = {}
        for index in range(rng.randrange(0, 40)):
            address = f"0x{index:040x}"
            gpus = tuple(
                auction.GpuOffer(f"GPU-{index}-{gpu}", rng.choice([8, 24, 80]) * 1024**3, rng.choice(scores))
                for gpu in range(rng.randrange(0, 4))
            )
            capacities[address] = auction.Capacity(
                address, rng.randrange(90, 110), rng.randrange(90, 110), gpus, rng.randrange(0, 9)
            )
            paused = NOW + timedelta(minutes=1) if rng.random() < 0.1 else None
            bidders[address] = SimpleNamespace(
                group_name=rng.choice([None, None, "farm"]),
                outside_jobs=rng.choice([None, True, False]),
                paused_until=paused,
                placed_at=NOW - timedelta(seconds=rng.randrange(0, 5)),
            )
        cache = _Cache(capacities=capacities, bidders=bidders)  # type: ignore[arg-type]
        addresses = list(bidders)
        for round_ in range(3):  # later jobs of the batch: leases made meanwhile lower some capacities
            if round_ and addresses:
                leased = rng.choice(addresses)
                before = cache.capacities[leased]
                cache.capacities[leased] = dataclasses.replace(before, free_gpus=before.free_gpus[1:], free_cores=0)
            job = SimpleNamespace(id=f"job-{round_}", group_name=rng.choice([None, "farm"]))
            gpus = rng.randrange(0, 3)
            need = auction.Need(
                gpus=gpus,
                min_vram_bytes=rng.choice([0, 16 * 1024**3, 40 * 1024**3]) if gpus else 0,
                cores=rng.randrange(1, 5),
                max_price=rng.randrange(95, 115),
                min_score=rng.choice([None, None, 50.0, 150.0]) if gpus else None,
            )
            refused = set(rng.sample(addresses, k=min(len(addresses), rng.randrange(0, 3))))
            cache.leases[job.id] = [SimpleNamespace(provider_address=a, state=LeaseState.FAILED) for a in refused]
            own = set(rng.sample(addresses, k=min(len(addresses), rng.randrange(0, 3))))
            own_bids = [auction.CandidateBid(a, rng.randrange(90, 110), 10.0, NOW) for a in own]
            seats = rng.randrange(0, 4)
            every = Marketplace._spare_bids(job, need, cache, NOW, own)  # type: ignore[arg-type]
            some = Marketplace._spare_bids(job, need, cache, NOW, own, wanted=seats)  # type: ignore[arg-type]
            assert set(some) <= set(every)
            assert auction.winners(own_bids + some, seats) == auction.winners(own_bids + every, seats)
