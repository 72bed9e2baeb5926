"""Long polls: a stopping server releases every waiting poll at once (a graceful shutdown is not held up for
the polls' timeout); a wake reaches the provider named, whichever of its polls waits; a poll answers at once
only with news, and tells a lease again within one heartbeat interval."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from fastapi.testclient import TestClient

from sparecycles.agent.market_server.api import create_app
from sparecycles.agent.market_server.serve import MarketOptions, open_market
from sparecycles.agent.market_server.wakeups import Told, Wakeups
from sparecycles.protocol.market import LeaseOffer, WorkResponse

from .conftest import BUSYBOX, Clock, Provider, Requester, cpu_spec, open_in_process


def test_release_all_ends_waiting_polls_and_later_ones_at_once() -> None:
    async def scenario() -> tuple[list[bool], bool]:
        wakeups = Wakeups()
        waiting = [asyncio.create_task(wakeups.wait(address, 60)) for address in ("0xa", "0xb")]
        await asyncio.sleep(0)  # the polls start and wait
        assert wakeups.waiting == 2
        wakeups.release_all()
        woken = await asyncio.wait_for(asyncio.gather(*waiting), 10)
        later = await asyncio.wait_for(wakeups.wait("0xc", 60), 10)  # never sleeps once closing
        return woken, later

    woken, later = asyncio.run(scenario())
    assert woken == [True, True]
    assert later is False


def test_a_normal_wake_reaches_only_the_provider_named() -> None:
    async def scenario() -> tuple[bool, bool]:
        wakeups = Wakeups()
        mine = asyncio.create_task(wakeups.wait("0xa", 60))
        other = asyncio.create_task(wakeups.wait("0xb", 0.2))
        await asyncio.sleep(0)  # the polls start and wait
        assert wakeups.waiting == 2
        wakeups.wake(["0xa"])
        return await asyncio.wait_for(mine, 10), await asyncio.wait_for(other, 10)

    assert asyncio.run(scenario()) == (True, False)


def _answer(leases: list[str], cancelled: list[str] | None = None) -> WorkResponse:
    offers = [
        LeaseOffer.model_validate(
            {
                "lease_id": lease,
                "job_id": f"job-{lease}",
                "spec": {"image": BUSYBOX, "command": ["true"]},
                "gpu_uuids": [],
                "units": 1,
                "price_per_unit_hour": 1,
                "expires_at": "2026-11-26T12:00:00Z",
                "heartbeat_interval_s": 5.0,
            }
        )
        for lease in leases
    ]
    return WorkResponse(leases=offers, cancelled=cancelled or [])


def test_a_long_poll_tells_a_lease_or_a_cancellation_once_until_it_may_be_told_again() -> None:
    now = [100.0]
    told = Told(again_after_s=5.0, clock=lambda: now[0])
    first = _answer(["lease-a"], ["lease-gone"])
    assert told.has_news("0xa", first)  # never told
    told.remember("0xa", first)
    assert not told.has_news("0xa", first)  # the same answer again: no news, the poll waits
    assert told.again_in("0xa", first) == 5.0
    assert told.has_news("0xb", first)  # another provider was told nothing
    assert told.has_news("0xa", _answer(["lease-a", "lease-b"], ["lease-gone"]))  # a new lease is news
    assert told.has_news("0xa", _answer(["lease-a"], ["lease-gone", "lease-c"]))  # so is a new cancellation
    assert not told.has_news("0xa", _answer([]))  # nothing to tell is no news either
    now[0] += 5.0
    assert told.has_news("0xa", first)  # told again (an answer may have been lost)
    told.remember("0xa", _answer([]))
    assert told.has_news("0xa", first)  # forgotten once an answer held none of it


def test_a_wake_reaches_every_poll_of_a_provider_even_after_its_first_poll_ended() -> None:
    """An agent that gives up on a poll (its offer changed) and polls again has two polls waiting here until the
    first times out; a wake after that must still reach the second (it used to wait out its whole timeout)."""

    async def scenario() -> tuple[bool, bool]:
        wakeups = Wakeups()
        abandoned = asyncio.create_task(wakeups.wait("0xa", 0.05))
        current = asyncio.create_task(wakeups.wait("0xa", 60))
        await asyncio.sleep(0)  # both wait
        first = await asyncio.wait_for(abandoned, 10)  # the abandoned poll times out
        assert wakeups.waiting == 1
        wakeups.wake(["0xa"])
        return first, await asyncio.wait_for(current, 10)

    assert asyncio.run(scenario()) == (False, True)

    # and once everyone has left, nothing is kept
    async def emptied() -> int:
        wakeups = Wakeups()
        polls = [asyncio.create_task(wakeups.wait("0xa", 0.01)) for _ in range(3)]
        await asyncio.gather(*polls)
        return wakeups.waiting

    assert asyncio.run(emptied()) == 0


def test_a_lease_not_heartbeated_is_told_again_within_one_heartbeat_interval(tmp_path: Path) -> None:
    """A provider whose answer was lost polls again: it hears of its lease again after one heartbeat interval
    (here 0.5 s), long before the lease lapses, not after a fixed 5 s that may outlast a short lease (the
    studio fleet's test runs 5 s leases). 3 s leaves a slow machine five times the interval."""
    clock = Clock()
    options = MarketOptions(
        data_dir=tmp_path / "market",
        key_file=tmp_path / "operator.key",
        db_url=f"sqlite:///{tmp_path / 'market.db'}",
        heartbeat_interval_s=0.5,
        lease_timeout_s=20,
    )
    opened = open_market(options, clock=clock)
    with TestClient(create_app(opened, tick_every_s=3600)) as client:
        key = opened.add_requester("studio")
        opened.credit("studio", 10**15)
        provider = Provider(client).join()
        job = Requester(client, key).submit(cpu_spec(cpus=1.0), max_price_per_core_hour=10**6, bidding_window_s=1)
        assert provider.poll()["leases"] == []  # it bids
        clock.advance(2)
        opened.tick()
        [lease] = provider.poll()["leases"]  # told once
        assert lease["job_id"] == job["job_id"]
        started = time.monotonic()
        again = client.get("/v1/provider/work", params={"wait_s": 30}, headers=provider.headers)
        waited = time.monotonic() - started
    assert [offer["lease_id"] for offer in again.json()["leases"]] == [lease["lease_id"]]
    assert waited < 3.0, f"the lease was told again only after {waited:.1f} s"


def test_open_jobs_wake_as_many_waiting_providers_as_their_bids_need() -> None:
    """A job wants four bidders and a woken provider bids on up to eight jobs: two submissions wake one provider,
    not eight; a remainder too small for one more is carried to the next job, and nothing more is owed when no
    provider was waiting (the next polls bid anyway)."""

    async def scenario() -> list[int]:
        wakeups = Wakeups(bidding_wakes_per_s=1000)
        polls = [asyncio.create_task(wakeups.wait(f"0x{index}", 60)) for index in range(20)]
        await asyncio.sleep(0)  # all wait
        woken: list[int] = []

        async def count() -> int:
            await asyncio.sleep(0.05)  # the woken polls return
            return sum(1 for poll in polls if poll.done() and poll.result())

        wakeups.want_bids(4, per_provider=8)  # one job: half a provider's bids, carried
        woken.append(await count())
        wakeups.want_bids(4, per_provider=8)  # the second job: one provider
        woken.append(await count())
        wakeups.want_bids(10 * 4, per_provider=8)  # ten reopened auctions: five more
        woken.append(await count())
        wakeups.release_all()
        await asyncio.gather(*polls)
        return woken

    assert asyncio.run(scenario()) == [0, 1, 6]


def test_a_submission_and_an_auction_reopened_without_a_winner_ask_for_bids(tmp_path: Path) -> None:
    clock = Clock()
    market = open_in_process(tmp_path, clock)
    opened: list[int] = []
    market.on_open = opened.append
    key = market.add_requester("studio")
    market.credit("studio", 10**15)
    with TestClient(create_app(market, tick_every_s=3600)) as client:
        market.on_open = opened.append  # the app wires its own on start
        for _ in range(2):
            Requester(client, key).submit(cpu_spec(cpus=1.0), max_price_per_core_hour=10**6, bidding_window_s=1)
        assert opened == [1, 1]
        clock.advance(2)
        market.tick()  # nobody bid: both auctions open a new round
        assert opened == [1, 1, 2]


def test_the_idle_waiters_are_those_not_woken_at_most_as_many_as_asked() -> None:
    async def scenario() -> tuple[list[str], list[str], int]:
        wakeups = Wakeups()
        polls = [asyncio.create_task(wakeups.wait(address, 60)) for address in ("0xa", "0xb", "0xc")]
        await asyncio.sleep(0)
        wakeups.wake(["0xb"])
        idle, few = sorted(wakeups.idle(10)), wakeups.idle(1)
        wakeups.release_all()
        await asyncio.gather(*polls)
        return idle, few, len(wakeups.idle(10))

    idle, few, after = asyncio.run(scenario())
    assert idle == ["0xa", "0xc"]
    assert len(few) == 1
    assert few[0] in idle
    assert after == 0


def test_a_provider_is_idle_while_it_waits_unwoken_and_again_when_it_waits_after_a_wake() -> None:
    """Idle waiters are kept as polls start, are woken and end: one that timed out is gone, one woken and
    polling again is idle again, and of two polls of one provider the one still waiting keeps it idle."""

    async def scenario() -> list[list[str]]:
        wakeups = Wakeups()
        seen = []
        short = asyncio.create_task(wakeups.wait("0xa", 0.01))
        woken = asyncio.create_task(wakeups.wait("0xb", 60))
        first, second = (asyncio.create_task(wakeups.wait("0xc", timeout)) for timeout in (0.01, 60))
        await asyncio.sleep(0)
        seen.append(sorted(wakeups.idle(10)))
        await asyncio.wait_for(asyncio.gather(short, first), 10)  # 0xa's poll and 0xc's first time out
        wakeups.wake(["0xb"])
        seen.append(sorted(wakeups.idle(10)))
        assert await asyncio.wait_for(woken, 10)
        again = asyncio.create_task(wakeups.wait("0xb", 60))  # 0xb polls again after its lease
        await asyncio.sleep(0)
        seen.append(sorted(wakeups.idle(10)))
        wakeups.release_all()
        await asyncio.gather(again, second)
        return seen

    assert asyncio.run(scenario()) == [["0xa", "0xb", "0xc"], ["0xc"], ["0xb", "0xc"]]
