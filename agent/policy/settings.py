"""From the user's settings to the policy's plain values."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from sparecycles.agent.policy.model import PolicySettings, WorkMode
from sparecycles.config import Settings
from sparecycles.durations import parse_duration
from sparecycles.schedule import WeeklySchedule


def resolve_zone(name: str) -> ZoneInfo:
    """The named zone, or the system's own for "local" (via tzlocal, which APScheduler uses too)."""
    if name != "local":
        return ZoneInfo(name)
    import tzlocal

    zone = tzlocal.get_localzone()
    return zone if isinstance(zone, ZoneInfo) else ZoneInfo("UTC")


def policy_settings(settings: Settings) -> PolicySettings:
    zone = resolve_zone(settings.general.timezone)
    return PolicySettings(
        mode=WorkMode(settings.work.mode),
        idle_threshold_s=parse_duration(settings.work.idle_threshold),
        resume_after_s=parse_duration(settings.work.resume_after),
        stop_after_s=parse_duration(settings.work.stop_after),
        schedule=WeeklySchedule.parse(settings.schedule.windows, zone),
        zone=zone,
        max_temperature_c=settings.gpu.max_temperature_c,
        resume_temperature_c=settings.gpu.effective_resume_temperature_c,
        disabled_gpus=frozenset(settings.gpu.disabled),
        pause_on_battery=settings.work.pause_on_battery,
    )
