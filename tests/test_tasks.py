"""Reaping a cancelled child task keeps the caller's own cancellation (agent/tasks.py)."""

from __future__ import annotations

import asyncio

import pytest

from sparecycles.agent.tasks import reap


async def _slow_to_cancel(cancelled: asyncio.Event, release: asyncio.Event) -> None:
    """A child that takes its time to clean up once cancelled (a poll closing its connection)."""
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        cancelled.set()
        await release.wait()
        raise


def test_reaping_ends_the_child_and_the_caller_goes_on() -> None:
    async def scenario() -> bool:
        cancelled, release = asyncio.Event(), asyncio.Event()
        child = asyncio.create_task(_slow_to_cancel(cancelled, release))
        await asyncio.sleep(0)
        release.set()
        await reap(child)
        return child.cancelled()

    assert asyncio.run(scenario()) is True


def test_a_caller_cancelled_while_it_reaps_is_cancelled_not_resumed() -> None:
    async def scenario() -> list[str]:
        cancelled, release = asyncio.Event(), asyncio.Event()
        steps: list[str] = []

        async def loop() -> None:
            child = asyncio.create_task(_slow_to_cancel(cancelled, release))
            await asyncio.sleep(0)
            await reap(child)
            steps.append("went on after reaping")  # what a swallowed cancellation did

        caller = asyncio.create_task(loop())
        await cancelled.wait()  # the caller now waits for the child to finish cancelling
        caller.cancel()  # the agent stops meanwhile
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await caller
        return steps

    assert asyncio.run(scenario()) == []
