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
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sparecycles.agent.engine import WorkEngine
from sparecycles.agent.events import EventBus
from sparecycles.agent.jobs.service import JobService
from sparecycles.agent.policy.model import GpuHold, OwnerControls
from sparecycles.agent.scheduler.service import WorkScheduler
from sparecycles.agent.sensors.gpu import GpuIdentity
from sparecycles.agent.sensors.gpu.simulated import SimulatedGpuBackend
from sparecycles.agent.settings_store import Overlay, SettingsStore
from sparecycles.agent.status import build_status
from sparecycles.config import Settings
from sparecycles.control.benchmark import GpuBenchmarkStatus
from sparecycles.control.models import AgentEvent, EventType, FleetStatus, MarketplaceStatus, StatusDocument
from sparecycles.protocol.job_refusal import JobRefused

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class SimulationUnavailable(Exception):
    """Scripting simulated GPUs was asked of an agent that runs real ones."""


class UnknownGpu(LookupError):
    """A GPU number this machine does not have; the message lists the ones it has."""


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
        self._fleet: Callable[[], FleetStatus | None] = lambda: None
        self._benchmark: Callable[[GpuIdentity], GpuBenchmarkStatus | None] = lambda _gpu: None
        engine.on_change(self.announce_status)

    def show_marketplace(self, status: Callable[[], MarketplaceStatus | None]) -> None:
        """Where the status document reads the marketplace's state from, once that side has started."""
        self._marketplace = status

    def show_benchmarks(self, status: Callable[[GpuIdentity], GpuBenchmarkStatus | None]) -> None:
        """Where the status document reads each GPU's benchmark from."""
        self._benchmark = status

    def show_fleet(self, status: Callable[[], FleetStatus | None]) -> None:
        """Where the status document reads the studio group the machine is in."""
        self._fleet = status

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
            fleet=self._fleet(),
        )

    def pause(self, gpu: int | None = None) -> StatusDocument:
        """Pause the whole machine (holds of single GPUs stay), or only GPU ``gpu`` until resumed."""
        controls = self._engine.controls
        if gpu is None:
            self._set_controls(replace(controls, paused=True, snoozed_until=None))
        else:
            self._set_controls(controls.with_hold(GpuHold(self._uuid_of(gpu))))
        return self.status()

    def resume(self, gpu: int | None = None) -> StatusDocument:
        """Resume everything (the machine and every GPU held alone), or only GPU ``gpu``."""
        if gpu is None:
            self._set_controls(OwnerControls())
        else:
            self._set_controls(self._engine.controls.without_hold(self._uuid_of(gpu)))
        return self.status()

    def snooze(self, duration_seconds: int, gpu: int | None = None) -> StatusDocument:
        """Stop work on the machine, or on GPU ``gpu`` alone, for ``duration_seconds``."""
        until = self._clock() + timedelta(seconds=duration_seconds)
        controls = self._engine.controls
        if gpu is None:
            self._set_controls(replace(controls, paused=False, snoozed_until=until))
        else:
            self._set_controls(controls.with_hold(GpuHold(self._uuid_of(gpu), until)))
        return self.status()

    def _uuid_of(self, index: int) -> str:
        gpus = self._engine.snapshot().discovery.gpus
        for gpu in gpus:
            if gpu.index == index:
                return gpu.uuid
        have = ", ".join(str(gpu.index) for gpu in gpus) or "none"
        raise UnknownGpu(
            f"There is no GPU {index} on this machine (its GPUs: {have}); `sparecycles status` lists them."
        )

    def _snooze_ended(self) -> None:
        """A snooze ran out: forget the holds that ended, decide again, and wait for the next one."""
        now = self._clock()
        controls = self._engine.controls
        kept = tuple(hold for hold in controls.gpu_holds if hold.holds(now))
        self._snooze_timer = None
        self._set_controls(replace(controls, gpu_holds=kept))  # evaluates and announces

    def settings(self) -> Settings:
        """The owner's own settings (a studio group's policy is shown in the status, never written here)."""
        return self._settings.own

    def update_settings(self, changes: dict[str, dict[str, Any]]) -> Settings:
        self._apply(*self._settings.update(changes))
        return self._settings.own

    def set_settings_overlay(self, overlay: Overlay | None) -> None:
        """Work by the owner's settings with ``overlay`` laid over them (a studio group's policy), applied
        without a restart; None goes back to the owner's own."""
        self._apply(*self._settings.set_overlay(overlay))

    def _apply(self, before: Settings, after: Settings) -> None:
        if after == before:
            return
        self._engine.apply_settings(after)
        if self._scheduler is not None:
            self._scheduler.settings_changed()
        self._bus.publish(EventType.SETTINGS_CHANGED, self._settings.own.model_dump(mode="json"))
        self.announce_status()

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
        now = self._clock()
        endings = [
            until
            for until in (controls.snoozed_until, *(hold.until for hold in controls.gpu_holds))
            if until is not None and until > now
        ]
        if not endings:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # outside the agent's loop (tests): status still derives from the clock
            return
        self._snooze_timer = loop.call_later((min(endings) - now).total_seconds(), self._snooze_ended)
