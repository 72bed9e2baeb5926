"""The agent's command surface: what the control API can ask and tell.

Holds the owner's manual controls (pause, snooze), the live settings and the event bus, and turns
them into status documents. The API layer stays a thin translation of HTTP onto these methods.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sparecycles.agent.events import EventBus
from sparecycles.agent.sensors.gpu import GpuInventory
from sparecycles.agent.settings_store import SettingsStore
from sparecycles.agent.status import OwnerControls, build_status
from sparecycles.config import Settings
from sparecycles.control.models import AgentEvent, EventType, StatusDocument

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class AgentController:
    def __init__(
        self,
        *,
        version: str,
        gpu_inventory: GpuInventory,
        settings: SettingsStore,
        bus: EventBus,
        request_stop: Callable[[], None],
        clock: Clock = utc_now,
    ) -> None:
        self._version = version
        self._gpu_inventory = gpu_inventory
        self._settings = settings
        self._bus = bus
        self._request_stop = request_stop
        self._clock = clock
        self._started_at = clock()
        self._controls = OwnerControls()
        self._stopping = False
        self._snooze_timer: asyncio.TimerHandle | None = None
        self._last_state: tuple[str, str] | None = None

    def status(self) -> StatusDocument:
        return build_status(
            version=self._version,
            pid=os.getpid(),
            started_at=self._started_at,
            now=self._clock(),
            controls=self._controls,
            discovery=self._gpu_inventory.discover(),
            stopping=self._stopping,
        )

    def pause(self) -> StatusDocument:
        self._set_controls(OwnerControls(paused=True))
        return self.status()

    def resume(self) -> StatusDocument:
        self._set_controls(OwnerControls())
        return self.status()

    def snooze(self, duration_seconds: int) -> StatusDocument:
        until = self._clock() + timedelta(seconds=duration_seconds)
        self._set_controls(OwnerControls(snoozed_until=until))
        self._schedule_snooze_end(duration_seconds)
        return self.status()

    def settings(self) -> Settings:
        return self._settings.current

    def update_settings(self, changes: dict[str, dict[str, Any]]) -> Settings:
        before = self._settings.current
        after = self._settings.update(changes)
        if after != before:
            self._bus.publish(EventType.SETTINGS_CHANGED, after.model_dump(mode="json"))
        return after

    def request_shutdown(self) -> None:
        log.info("Shutdown requested through the control API")
        self._request_stop()

    def begin_shutdown(self) -> None:
        """Announce the shutdown and close every event stream so the server can stop quickly."""
        self._stopping = True
        if self._snooze_timer is not None:
            self._snooze_timer.cancel()
        self.announce_status()
        self._bus.publish(EventType.SHUTTING_DOWN)
        self._bus.close()

    def subscribe(self) -> AsyncIterator[AgentEvent]:
        return self._bus.subscribe()

    def announce_status(self) -> None:
        """Publish (and log) the status when its state or reason changed since the last time."""
        status = self.status()
        key = (status.state.value, status.reason)
        if key != self._last_state:
            self._last_state = key
            log.info("Status: %s (%s)", status.state.value, status.reason)
            self._bus.publish(EventType.STATUS_CHANGED, status.model_dump(mode="json"))

    def _set_controls(self, controls: OwnerControls) -> None:
        if self._snooze_timer is not None:
            self._snooze_timer.cancel()
            self._snooze_timer = None
        self._controls = controls
        self.announce_status()

    def _schedule_snooze_end(self, duration_seconds: int) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # called outside the agent's loop (tests): status still derives from the clock
            return
        self._snooze_timer = loop.call_later(duration_seconds, self.announce_status)
