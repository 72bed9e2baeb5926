"""Download gating and the bandwidth cap, from plain values and an injected clock."""

from __future__ import annotations

import asyncio

import pytest

from sparecycles.agent.jobs.downloads import Throttle, download_gate


@pytest.mark.parametrize(
    ("work_allowed", "metered", "allow_metered", "allowed", "reason"),
    [
        (True, False, False, True, "downloads allowed"),
        (True, None, False, True, "downloads allowed"),  # unknown: not held back
        (False, False, True, False, "downloads wait: the GPU may not work now"),
        (True, True, False, False, "downloads wait: the connection is metered"),
        (True, True, True, True, "downloads allowed"),
    ],
)
def test_download_gate(
    work_allowed: bool, metered: bool | None, allow_metered: bool, allowed: bool, reason: str
) -> None:
    gate = download_gate(work_allowed=work_allowed, metered=metered, allow_metered=allow_metered)
    assert gate.allowed is allowed
    assert gate.reason.startswith(reason)


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_throttle_holds_the_average_rate() -> None:
    time = FakeTime()
    throttle = Throttle(1000, clock=time.clock, sleep=time.sleep)

    async def transfer() -> None:
        for _ in range(10):
            await throttle.consume(500)

    asyncio.run(transfer())
    # 5000 bytes at 1000 B/s with a one-second burst: about four seconds of waiting.
    assert sum(time.slept) == pytest.approx(4.0)


def test_no_cap_never_waits() -> None:
    time = FakeTime()
    throttle = Throttle(None, clock=time.clock, sleep=time.sleep)
    asyncio.run(throttle.consume(10**9))
    assert time.slept == []


def test_a_cap_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        Throttle(0)
