"""APScheduler-driven sampling and schedule windows, with injected clocks for a suspend."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sparecycles.agent.engine import WorkEngine
from sparecycles.agent.policy.model import Action, Cause
from sparecycles.agent.scheduler.service import PRESENCE_FAST_S, PRESENCE_SLOW_S, WorkScheduler
from sparecycles.agent.sensors.gpu.simulated import SimulatedGpuBackend
from sparecycles.config import Settings, validate_settings
from tests.fakes.presence import ScriptedPresenceSource


class Clock:
    def __init__(self, wall: datetime) -> None:
        self.wall = wall
        self.monotonic = 5000.0


def _setup(settings: Settings, clock: Clock, presence: ScriptedPresenceSource) -> tuple[WorkEngine, WorkScheduler]:
    engine = WorkEngine(
        gpu_backend=SimulatedGpuBackend(1),
        presence_source=presence,
        activity=None,
        settings=settings,
        wall_clock=lambda: clock.wall,
        monotonic_clock=lambda: clock.monotonic,
    )
    scheduler = WorkScheduler(engine, wall_clock=lambda: clock.wall, monotonic_clock=lambda: clock.monotonic)
    return engine, scheduler


def _decision(engine: WorkEngine) -> tuple[Action, Cause]:
    decision = engine.snapshot().decisions[0]
    return decision.action, decision.cause


NIGHTS = validate_settings(
    {"general": {"timezone": "UTC"}, "work": {"mode": "schedule"}, "schedule": {"windows": ["daily 19:00-08:00"]}},
    source="test",
)


def test_a_suspend_replans_the_next_window_and_decides_again_at_once() -> None:
    async def scenario() -> None:
        clock = Clock(datetime(2026, 11, 23, 12, 0, tzinfo=UTC))
        engine, scheduler = _setup(NIGHTS, clock, ScriptedPresenceSource(idle_s=0))
        await scheduler.start()
        try:
            assert scheduler.next_boundary() == datetime(2026, 11, 23, 19, 0, 1, tzinfo=UTC)
            assert _decision(engine) == (Action.STOP, Cause.OUTSIDE_SCHEDULE)
            clock.wall += timedelta(seconds=1)
            clock.monotonic += 1
            assert scheduler.check_clock() is False  # time passing normally is no jump

            clock.wall = datetime(2026, 11, 23, 20, 30, tzinfo=UTC)  # asleep 8.5 h; monotonic stood still
            assert scheduler.check_clock() is True
            assert _decision(engine) == (Action.WORK, Cause.SCHEDULED)
            assert scheduler.next_boundary() == datetime(2026, 11, 24, 8, 0, 1, tzinfo=UTC)
        finally:
            scheduler.shutdown()

    asyncio.run(scenario())


def test_settings_change_replans_without_restart() -> None:
    async def scenario() -> None:
        clock = Clock(datetime(2026, 11, 23, 12, 0, tzinfo=UTC))
        engine, scheduler = _setup(NIGHTS, clock, ScriptedPresenceSource(idle_s=0))
        await scheduler.start()
        try:
            engine.apply_settings(
                validate_settings(
                    {
                        "general": {"timezone": "UTC"},
                        "work": {"mode": "schedule"},
                        "schedule": {"windows": ["Mon 11:00-13:00"]},
                    },
                    source="test",
                )
            )
            scheduler.settings_changed()
            assert _decision(engine) == (Action.WORK, Cause.SCHEDULED)
            assert scheduler.next_boundary() == datetime(2026, 11, 23, 13, 0, 1, tzinfo=UTC)
        finally:
            scheduler.shutdown()

    asyncio.run(scenario())


def test_presence_is_watched_fast_only_while_a_gpu_may_work() -> None:
    async def scenario() -> None:
        clock = Clock(datetime(2026, 11, 23, 12, 0, tzinfo=UTC))
        presence = ScriptedPresenceSource(idle_s=0)
        idle_mode = validate_settings({"work": {"idle_threshold": "5s"}}, source="test")
        engine, scheduler = _setup(idle_mode, clock, presence)
        await scheduler.start()
        try:
            assert scheduler.presence_interval_s == PRESENCE_SLOW_S
            presence.set(idle_s=10)
            for _ in range(50):  # the slow presence job runs within about a second
                await asyncio.sleep(0.1)
                if scheduler.presence_interval_s == PRESENCE_FAST_S:
                    break
            assert _decision(engine)[0] is Action.WORK
            assert scheduler.presence_interval_s == PRESENCE_FAST_S
        finally:
            scheduler.shutdown()

    asyncio.run(scenario())


def test_an_empty_schedule_plans_no_boundary() -> None:
    async def scenario() -> None:
        clock = Clock(datetime(2026, 11, 23, 12, 0, tzinfo=UTC))
        _, scheduler = _setup(Settings(), clock, ScriptedPresenceSource(idle_s=0))
        await scheduler.start()
        try:
            assert scheduler.next_boundary() is None
        finally:
            scheduler.shutdown()

    asyncio.run(scenario())
