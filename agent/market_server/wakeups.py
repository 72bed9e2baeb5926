"""Wake-ups for providers waiting in a long poll, so that waiting costs nothing.

A provider's long poll (GET /v1/provider/work?wait_s=…) sleeps here instead of asking the database every
second: it is woken when this process leases it a job. Closing auctions count waiters with room as bidders
(``idle``). On PostgreSQL, where another process may close the auctions, a waiter is also woken when its
report freed what it offers, or to bid on jobs open for bids (a submission, an auction that opened a new
round): as many waiters as those jobs need bids, not all thousand providers for each one. A waiter also wakes
on a timeout, to see what another server process may have done meanwhile. Everything runs on the event loop;
the marketplace's threads reach it through ``loop.call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Iterable

from sparecycles.agent.market_server.limits import Rate, RateLimiter
from sparecycles.protocol.market import WorkResponse

OFFERED_AGAIN_S = 5.0
BIDDING_WAKES_PER_S = 100.0


class Wakeups:
    def __init__(self, *, bidding_wakes_per_s: float = BIDDING_WAKES_PER_S) -> None:
        # One event per provider, shared by all its waiting polls: a provider whose client gave up on a poll
        # (an agent cuts its poll short when its offer changes) may have two waiting here for a while, and a
        # wake must reach the newer one, not only the one the event was made for.
        self._waiting: dict[str, asyncio.Event] = {}
        self._waiters: dict[str, int] = {}
        # The waiting providers not woken yet (``idle``), kept beside ``_waiting`` instead of found by looking at
        # each event: closing auctions and every submission ask for some, with a thousand providers waiting.
        self._unwoken: set[str] = set()
        # Waking a provider to bid costs a poll (a fraction of a millisecond, no HTTP). Each woken provider bids on
        # several jobs, so as many are woken as the open jobs need bids (want_bids), and past this rate open jobs
        # wait for the bids of providers starting their next poll.
        self._bidding = RateLimiter(Rate(per_s=bidding_wakes_per_s, burst=int(bidding_wakes_per_s)))
        self._bids_owed = 0  # bids wanted that were too few to wake one more provider for
        self.closing = False  # the server is stopping: long polls answer now instead of holding it up

    async def wait(self, address: str, timeout_s: float) -> bool:
        """Sleep until woken or ``timeout_s`` passes; True if woken."""
        if self.closing:
            return False
        event = self._waiting.setdefault(address, asyncio.Event())
        if not event.is_set():
            self._unwoken.add(address)
        self._waiters[address] = self._waiters.get(address, 0) + 1
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout_s)
            return event.is_set()
        finally:
            left = self._waiters.pop(address) - 1
            if left:
                self._waiters[address] = left
            # The last one out, or woken: the next wait starts with a fresh event.
            if (not left or event.is_set()) and self._waiting.get(address) is event:
                del self._waiting[address]
                self._unwoken.discard(address)

    def wake(self, addresses: Iterable[str]) -> None:
        """Wake these providers if they are waiting (a lease is theirs)."""
        for address in addresses:
            event = self._waiting.get(address)
            if event is not None:
                event.set()
                self._unwoken.discard(address)

    def want_bids(self, bids: int, per_provider: int) -> None:
        """Open jobs want ``bids`` more bids, and a provider bids on up to ``per_provider`` jobs a poll: wake
        enough waiting providers (a submission of one job wanting four bidders wakes one provider for every
        second such job, not four for each). What no waiter was there for is not owed later: the next polls bid."""
        self._bids_owed += bids
        count, self._bids_owed = divmod(self._bids_owed, max(1, per_provider))
        self.wake_some(count)

    def wake_some(self, count: int) -> None:
        """Wake up to ``count`` waiting providers, chosen at random, to bid on something new."""
        self.wake([address for address in self.idle(count) if not self._bidding.wait_s("")])

    def idle(self, most: int) -> list[str]:
        """Up to ``most`` of the providers waiting now and not yet woken, chosen at random. Safe to call from
        the marketplace's worker threads: the copy of the set is taken without running Python code."""
        idle = list(self._unwoken)
        return random.sample(idle, min(most, len(idle)))

    def release_all(self) -> None:
        """The server is stopping: end every long poll now (each answers what it has), and every later one
        at once, so that a graceful shutdown does not wait out the polls."""
        self.closing = True
        for event in self._waiting.values():
            event.set()
        self._unwoken.clear()

    @property
    def waiting(self) -> int:
        return len(self._waiting)


class Told:
    """What each provider's last answer told it (new leases, leases taken back), so that a long poll answers at
    once only with news.

    A poll answers with every lease the provider has not started yet and every lease taken back from it that it
    did not report: it hears them again until it acts, in case an answer was lost. A long poll that answered at
    once with what the provider had just heard made a provider that polls again before its first heartbeat (or
    that never reports a lease it lost) spin: poll, the same answer, poll again, thousands of times a minute.
    Now such a poll waits for news, and tells again what it told only ``again_after_s`` later: no longer than a
    heartbeat interval (api.py), so that a provider whose answer was lost (its client gave up on the poll just
    as it was answered) hears of its lease again before the lease lapses unstarted."""

    def __init__(self, *, again_after_s: float = OFFERED_AGAIN_S, clock: Callable[[], float] = time.monotonic) -> None:
        self._again_after_s = again_after_s
        self._clock = clock
        self._told: dict[str, dict[str, float]] = {}  # provider -> what it was told ("lease:ID", "cancel:ID") -> when

    def has_news(self, address: str, answer: WorkResponse) -> bool:
        told, now = self._told.get(address, {}), self._clock()
        return any(now - told.get(item, -self._again_after_s) >= self._again_after_s for item in _items(answer))

    def again_in(self, address: str, answer: WorkResponse) -> float:
        """Seconds until something of ``answer`` may be told again (infinite when it holds nothing)."""
        told, now = self._told.get(address, {}), self._clock()
        waits = [told.get(item, -self._again_after_s) + self._again_after_s - now for item in _items(answer)]
        return max(0.0, min(waits, default=float("inf")))

    def remember(self, address: str, answer: WorkResponse) -> None:
        """The answer was sent: what it holds counts as told from now (and nothing else, so this stays small)."""
        items = _items(answer)
        if not items:
            self._told.pop(address, None)
            return
        told, now = self._told.get(address, {}), self._clock()
        again = [item for item in items if now - told.get(item, -self._again_after_s) >= self._again_after_s]
        self._told[address] = {item: (now if item in again else told[item]) for item in items}


def _items(answer: WorkResponse) -> list[str]:
    return [f"lease:{lease.lease_id}" for lease in answer.leases] + [f"cancel:{lease}" for lease in answer.cancelled]
