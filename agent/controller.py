"""The agent's command surface: what the control API can ask and tell.

Holds the owner's manual controls (pause, snooze), the live settings and the event bus, and turns
the work engine's state into status documents. The API layer stays a thin translation of HTTP
onto these methods.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sparecycles.agent.engine import WorkEngine
from sparecycles.agent.events import EventBus
from sparecycles.agent.jobs.service import JobService
from sparecycles.agent.policy.model import OwnerControls
from sparecycles.agent.scheduler.service import WorkScheduler
from sparecycles.agent.sensors.gpu import GpuIdentity
from sparecycles.agent.sensors.gpu.simulated import SimulatedGpuBackend
from sparecycles.agent.settings_store import SettingsStore
from sparecycles.agent.status import build_status
from sparecycles.config import Settings
from sparecycles.control.benchmark import GpuBenchmarkStatus
from sparecycles.control.models import AgentEvent, EventType, MarketplaceStatus, StatusDocument
from sparecycles.protocol.job_refusal import JobRefused

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class SimulationUnavailable(Exception):
    """Scripting simulated GPUs was asked of an agent that runs real ones."""


class AgentController:
    def __init__(
        self,
        *,
        version: str,
        engine: WorkEngine,
        settings: SettingsStore,
        bus: EventBus,
        request_stop: Callable[[], None],
        scheduler: WorkScheduler | None = None,
        simulated: SimulatedGpuBackend | None = None,
        job_service: JobService | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self._version = version
        self._engine = engine
        self._settings = settings
        self._bus = bus
        self._request_stop = request_stop
        self._scheduler = scheduler
        self._simulated = simulated
        self._job_service = job_service
        self._clock = clock
        self._started_at = clock()
        self._stopping = False
        self._snooze_timer: asyncio.TimerHandle | None = None
        self._last_announced: tuple[Any, ...] | None = None
        self._marketplace: Callable[[], MarketplaceStatus | None] = lambda: None
        self._ledger_problem: Callable[[], str | None] = lambda: None
        self._benchmark: Callable[[GpuIdentity], GpuBenchmarkStatus | None] = lambda _gpu: None
        engine.on_change(self.announce_status)

    def show_marketplace(self, status: Callable[[], MarketplaceStatus | None]) -> None:
        """Where the status document reads the marketplace's state from, once that side has started."""
        self._marketplace = status

    def show_benchmarks(self, status: Callable[[GpuIdentity], GpuBenchmarkStatus | None]) -> None:
        """Where the status document reads each GPU's benchmark from."""
        self._benchmark = status

    def show_ledger(self, problem: Callable[[], str | None]) -> None:
        """Where the status document reads why the ledger is not recording, if it is not."""
        self._ledger_problem = problem

    def status(self) -> StatusDocument:
        return build_status(
            version=self._version,
            pid=os.getpid(),
            started_at=self._started_at,
            now=self._clock(),
            controls=self._engine.controls,
            snapshot=self._engine.snapshot(),
            work_mode=self._settings.current.work.mode,
            zone=self._engine.policy.zone,
            jobs_problem=self._job_service.problem if self._job_service is not None else None,
            marketplace=self._marketplace(),
            stopping=self._stopping,
            ledger_problem=self._ledger_problem(),
            benchmark=self._benchmark,
        )

    def pause(self) -> StatusDocument:
        self._set_controls(OwnerControls(paused=True))
        return self.status()

    def resume(self) -> StatusDocument:
        self._set_controls(OwnerControls())
        return self.status()

    def snooze(self, duration_seconds: int) -> StatusDocument:
        self._set_controls(OwnerControls(snoozed_until=self._clock() + timedelta(seconds=duration_seconds)))
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # outside the agent's loop (tests): status still derives from the clock
            return self.status()
        self._snooze_timer = loop.call_later(duration_seconds, self._snooze_ended)
        return self.status()

    def _snooze_ended(self) -> None:
        self._snooze_timer = None
        self._engine.evaluate()
        self.announce_status()

    def settings(self) -> Settings:
        return self._settings.current

    def update_settings(self, changes: dict[str, dict[str, Any]]) -> Settings:
        before = self._settings.current
        after = self._settings.update(changes)
        if after != before:
            self._engine.apply_settings(after)
            if self._scheduler is not None:
                self._scheduler.settings_changed()
            self._bus.publish(EventType.SETTINGS_CHANGED, after.model_dump(mode="json"))
            self.announce_status()
        return after

    def _simulation(self) -> SimulatedGpuBackend:
        if self._simulated is None:
            raise SimulationUnavailable(
                "This agent runs real GPUs; start it with `sparecycles agent --simulated-gpus N` to script some."
            )
        return self._simulated

    def simulated_gpus(self) -> dict[str, Any]:
        return self._simulation().state_dict()

    def script_simulated_gpu(self, index: int, changes: dict[str, Any]) -> dict[str, Any]:
        """Change what a simulated GPU reports (tests, demos); the next GPU tick reads it."""
        simulation = self._simulation()
        simulation.script_from_dict(index, changes)
        return simulation.state_dict()

    def _jobs_service(self) -> JobService:
        if self._job_service is None:
            raise JobRefused("refused: this agent does not run jobs")
        return self._job_service

    def submit_job(self, spec: dict[str, Any]) -> str:
        return self._jobs_service().submit(spec)

    def jobs(self) -> list[dict[str, Any]]:
        return self._job_service.jobs() if self._job_service is not None else []

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

    def publish_readings(self) -> None:
        """Live readings for stream subscribers (the GUI's gauges); nothing to do without any."""
        if self._bus.has_subscribers:
            self._bus.publish(EventType.READINGS, self.status().model_dump(mode="json"))

    def announce_status(self) -> None:
        """Publish (and log) the status when its state or any GPU's state or reason changed."""
        status = self.status()
        key = (status.state, status.reason, tuple((gpu.state, gpu.reason) for gpu in status.gpus))
        if key != self._last_announced:
            if self._last_announced is None or key[:2] != self._last_announced[:2]:
                log.info("Status: %s (%s)", status.state.value, status.reason)
            self._last_announced = key
            self._bus.publish(EventType.STATUS_CHANGED, status.model_dump(mode="json"))

    def _set_controls(self, controls: OwnerControls) -> None:
        if self._snooze_timer is not None:
            self._snooze_timer.cancel()
            self._snooze_timer = None
        self._engine.set_controls(controls)
        self.announce_status()
