"""Waiting for a task that was just cancelled, without losing the caller's own cancellation.

``task.cancel(); with suppress(CancelledError): await task`` is the usual way to wait for a child task to
finish cancelling. But if the caller itself is cancelled while it waits (the agent stopping), the
CancelledError it receives looks the same as the child's, and the ``suppress`` swallows it: the caller
goes on as if nothing happened. A provider loop that did this kept polling a marketplace that had already
stopped, and the agent never exited.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


async def reap(task: asyncio.Future[Any], *quiet: type[BaseException]) -> None:
    """Cancel ``task`` and wait until it has ended, ignoring how it ended (its cancellation, or the ``quiet``
    exceptions); if the caller was cancelled meanwhile, raise CancelledError so that it stops too."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, *quiet):
        await task
    current = asyncio.current_task()
    if current is not None and current.cancelling():
        raise asyncio.CancelledError
