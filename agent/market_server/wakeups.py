"""Wake-ups for providers waiting in a long poll, so that waiting costs nothing.

A provider's long poll (GET /v1/provider/work?wait_s=…) sleeps here instead of asking the database every
second: it is woken when this process leases it a job, or when a job is submitted that it might bid on
(only a few waiters per job: a thousand providers need not all wake for each one). A waiter also wakes on
a timeout, to see what another server process may have done meanwhile. Everything runs on the event loop;
the marketplace's threads reach it through ``loop.call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Iterable

from sparecycles.agent.market_server.limits import Rate, RateLimiter


class Wakeups:
    def __init__(self, *, bidding_wakes_per_s: float = 20.0) -> None:
        self._waiting: dict[str, asyncio.Event] = {}
        # Waking a provider to bid costs a full poll: at a few hundred submissions a second, waking a few
        # for each would cost more than the work. Past this rate, new jobs wait for the bids of providers
        # starting their next poll (each bids on several jobs).
        self._bidding = RateLimiter(Rate(per_s=bidding_wakes_per_s, burst=int(bidding_wakes_per_s)))
        self.closing = False  # the server is stopping: long polls answer now instead of holding it up

    async def wait(self, address: str, timeout_s: float) -> bool:
        """Sleep until woken or ``timeout_s`` passes; True if woken."""
        if self.closing:
            return False
        event = self._waiting.setdefault(address, asyncio.Event())
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout_s)
            return event.is_set()
        finally:
            if self._waiting.get(address) is event:
                del self._waiting[address]

    def wake(self, addresses: Iterable[str]) -> None:
        """Wake these providers if they are waiting (a lease is theirs)."""
        for address in addresses:
            event = self._waiting.get(address)
            if event is not None:
                event.set()

    def wake_some(self, count: int) -> None:
        """Wake up to ``count`` waiting providers, chosen at random, to bid on something new."""
        idle = [address for address, event in self._waiting.items() if not event.is_set()]
        chosen = [address for address in random.sample(idle, min(count, len(idle))) if not self._bidding.wait_s("")]
        self.wake(chosen)

    def release_all(self) -> None:
        """The server is stopping: end every long poll now (each answers what it has), and every later one
        at once, so that a graceful shutdown does not wait out the polls."""
        self.closing = True
        for event in self._waiting.values():
            event.set()

    @property
    def waiting(self) -> int:
        return len(self._waiting)
