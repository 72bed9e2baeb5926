"""When a job's downloads may run, and how fast: they never compete with the owner.

Image pulls and input downloads run only while the policy lets the GPU work (never during a game
or while the owner is at the computer), wait on a metered connection unless the owner allows it,
and input downloads are held to a bandwidth cap. Image pulls are made by the Docker engine, which
has no per-pull bandwidth limit, so they are gated but not throttled.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class DownloadGate:
    allowed: bool
    reason: str


def download_gate(*, work_allowed: bool, metered: bool | None, allow_metered: bool) -> DownloadGate:
    """Pure: may a job download now?"""
    if not work_allowed:
        return DownloadGate(False, "downloads wait: the GPU may not work now")
    if metered and not allow_metered:
        return DownloadGate(
            False, "downloads wait: the connection is metered (allow it with jobs.allow_metered_downloads)"
        )
    return DownloadGate(True, "downloads allowed")


class Throttle:
    """A token bucket: at most ``bytes_per_s`` on average, bursts up to one second's worth."""

    def __init__(
        self,
        bytes_per_s: int | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if bytes_per_s is not None and bytes_per_s <= 0:
            raise ValueError("a bandwidth cap must be positive")
        self._rate = bytes_per_s
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(bytes_per_s or 0)
        self._last = clock()

    async def consume(self, count: int) -> None:
        """Wait until ``count`` more bytes may pass."""
        if self._rate is None:
            return
        now = self._clock()
        self._tokens = min(float(self._rate), self._tokens + (now - self._last) * self._rate)
        self._last = now
        self._tokens -= count
        if self._tokens < 0:
            await self._sleep(-self._tokens / self._rate)
