"""Long polls at shutdown: a stopping server releases every waiting poll at once, and later polls do not
wait, so a graceful shutdown (the agent's private marketplace) is not held up for the polls' timeout."""

from __future__ import annotations

import asyncio

from sparecycles.agent.market_server.wakeups import Told, Wakeups
from sparecycles.protocol.market import LeaseOffer, WorkResponse

from .conftest import BUSYBOX


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
