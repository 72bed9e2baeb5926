"""APScheduler drives the sampling and the schedule windows; a suspend is noticed and re-planned.

APScheduler 3 plans its timers on the event loop, whose clock is monotonic and stops while the
machine sleeps: a window boundary planned before a suspend would fire late by the length of the
sleep. Each presence tick (the one job that always runs) therefore compares wall-clock and
monotonic time; when they drift apart (a suspend, a hibernation, a clock change) every window is
re-planned and the policy re-evaluated at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from sparecycles.agent.engine import WorkEngine

log = logging.getLogger(__name__)

GPU_INTERVAL_S = 1.0
ACTIVITY_INTERVAL_S = 2.0
ACTIVITY_INTERVAL_NO_GPU_S = 10.0
PRESENCE_FAST_S = 0.1  # while a GPU may work: hand it back within a fraction of a second
PRESENCE_SLOW_S = 1.0
CLOCK_JUMP_TOLERANCE_S = 2.0
BOUNDARY_JOB = "schedule-boundary"
PRESENCE_JOB = "sample-presence"


class WorkScheduler:
    def __init__(
        self,
        engine: WorkEngine,
        *,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic_clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._wall = wall_clock
        self._monotonic = monotonic_clock
        self._scheduler = AsyncIOScheduler(
            timezone=UTC,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        self._offset_s = self._clock_offset()
        self._presence_interval_s = PRESENCE_SLOW_S
        self._gpu_tick_listeners: list[Callable[[], None]] = []

    def on_gpu_tick(self, listener: Callable[[], None]) -> None:
        """Called after every GPU sample (live readings for the event stream)."""
        self._gpu_tick_listeners.append(listener)

    def _clock_offset(self) -> float:
        return self._wall().timestamp() - self._monotonic()

    @property
    def presence_interval_s(self) -> float:
        return self._presence_interval_s

    def next_boundary(self) -> datetime | None:
        job = self._scheduler.get_job(BOUNDARY_JOB)
        return job.next_run_time if job is not None else None

    async def start(self) -> None:
        """Read every sensor once, decide, then hand the timing to APScheduler."""
        await asyncio.to_thread(self._engine.discover)
        await asyncio.gather(
            asyncio.to_thread(self._engine.read_gpus),
            asyncio.to_thread(self._engine.read_activity),
            asyncio.to_thread(self._engine.read_presence),
        )
        self._engine.evaluate()
        if self._engine.has_gpus:
            self._add_interval(self._gpu_tick, "sample-gpus", GPU_INTERVAL_S)
        else:
            log.info("No GPU to share: GPU sampling stays off (CPU-only jobs still follow the policy)")
        # Without a GPU, games only matter to CPU-only jobs: a slower scan keeps the idle agent light.
        activity_s = ACTIVITY_INTERVAL_S if self._engine.has_gpus else ACTIVITY_INTERVAL_NO_GPU_S
        self._add_interval(self._activity_tick, "sample-activity", activity_s)
        self._presence_interval_s = self._wanted_presence_interval()
        self._add_interval(self._presence_tick, PRESENCE_JOB, self._presence_interval_s)
        self._scheduler.start()
        self.plan_boundaries()

    def every(self, seconds: float, func: Callable[[], Any], job_id: str) -> None:
        """Run ``func`` (a coroutine function, on the agent's loop) every ``seconds`` once started."""
        self._add_interval(func, job_id, seconds)

    def _add_interval(self, func: Callable[[], Any], job_id: str, seconds: float) -> None:
        self._scheduler.add_job(func, IntervalTrigger(seconds=seconds, timezone=UTC), id=job_id)

    def shutdown(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    # -- jobs ------------------------------------------------------------------------------------------------

    async def _gpu_tick(self) -> None:
        await asyncio.to_thread(self._engine.read_gpus)
        self._engine.evaluate()
        for listener in self._gpu_tick_listeners:
            listener()

    async def _activity_tick(self) -> None:
        await asyncio.to_thread(self._engine.read_activity)
        self._engine.evaluate()

    async def _presence_tick(self) -> None:
        self.check_clock()
        await asyncio.to_thread(self._engine.read_presence)
        self._engine.evaluate()
        self._adapt_presence_interval()

    async def _boundary(self) -> None:
        log.info("Schedule window boundary")
        self._engine.evaluate()
        self.plan_boundaries()

    # -- planning --------------------------------------------------------------------------------------------

    def _wanted_presence_interval(self) -> float:
        return PRESENCE_FAST_S if self._engine.working else PRESENCE_SLOW_S

    def _adapt_presence_interval(self) -> None:
        wanted = self._wanted_presence_interval()
        if wanted != self._presence_interval_s:
            self._presence_interval_s = wanted
            self._scheduler.reschedule_job(PRESENCE_JOB, trigger=IntervalTrigger(seconds=wanted, timezone=UTC))

    def plan_boundaries(self) -> None:
        """(Re)plan the job at the next schedule window boundary, from the wall clock now."""
        if self._scheduler.get_job(BOUNDARY_JOB) is not None:
            self._scheduler.remove_job(BOUNDARY_JOB)
        schedule = self._engine.policy.schedule
        if schedule is None or schedule.empty:
            return
        upcoming = schedule.next_change(self._wall())
        if upcoming is None:
            return
        # A second past the boundary, so the policy sees the new side of it.
        run_at = upcoming + timedelta(seconds=1)
        self._scheduler.add_job(self._boundary, DateTrigger(run_date=run_at, timezone=UTC), id=BOUNDARY_JOB)

    def check_clock(self) -> bool:
        """Re-plan at once when wall-clock time jumped against monotonic time (suspend, clock set)."""
        offset = self._clock_offset()
        jumped_s = offset - self._offset_s
        self._offset_s = offset
        if abs(jumped_s) < CLOCK_JUMP_TOLERANCE_S:
            return False
        log.info("The clock jumped by %.0f s (a suspend or a clock change): re-planning the schedule", jumped_s)
        self.plan_boundaries()
        if self._scheduler.running:
            self._scheduler.wakeup()
        self._engine.evaluate()
        return True

    def settings_changed(self) -> None:
        self.plan_boundaries()
        self._engine.evaluate()
        self._adapt_presence_interval()
