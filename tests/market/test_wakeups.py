"""Long polls at shutdown: a stopping server releases every waiting poll at once, and later polls do not
wait, so a graceful shutdown (the agent's private marketplace) is not held up for the polls' timeout."""

from __future__ import annotations

import asyncio

from sparecycles.agent.market_server.wakeups import Wakeups


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
