"""An in-process publish/subscribe bus for the control API's event stream."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from sparecycles.control.models import AgentEvent, EventType


class EventBus:
    """Fans agent events out to every stream subscriber; a slow subscriber loses old events."""

    def __init__(self, queue_size: int = 100) -> None:
        self._queues: set[asyncio.Queue[AgentEvent | None]] = set()
        self._queue_size = queue_size
        self._closed = False

    @property
    def has_subscribers(self) -> bool:
        return bool(self._queues)

    def publish(self, event_type: EventType, data: dict[str, Any] | None = None) -> None:
        event = AgentEvent(type=event_type, at=datetime.now(UTC), data=data or {})
        for queue in self._queues:
            self._put(queue, event)

    def close(self) -> None:
        """End every subscription (the agent is shutting down)."""
        self._closed = True
        for queue in self._queues:
            self._put(queue, None)

    @staticmethod
    def _put(queue: asyncio.Queue[AgentEvent | None], item: AgentEvent | None) -> None:
        if queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                queue.get_nowait()
        queue.put_nowait(item)

    async def subscribe(self) -> AsyncIterator[AgentEvent]:
        queue: asyncio.Queue[AgentEvent | None] = asyncio.Queue(self._queue_size)
        if self._closed:
            return
        self._queues.add(queue)
        try:
            while (event := await queue.get()) is not None:
                yield event
        finally:
            self._queues.discard(queue)
