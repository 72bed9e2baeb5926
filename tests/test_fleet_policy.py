"""A studio group's policy over the owner's settings: the stricter of the two always applies, and the owner's
own settings come back untouched when the machine leaves the group."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from sparecycles.agent.fleet.policy import apply_group_policy, combine_modes
from sparecycles.agent.sensors.activity.defaults import DEFAULT_PAUSE_PROCESSES
from sparecycles.agent.settings_store import SettingsStore
from sparecycles.config import Settings, load_settings
from sparecycles.protocol.fleet import GroupPolicy
from sparecycles.schedule import WeeklySchedule, intersect_windows

UTC_ZONE = ZoneInfo("UTC")
NIGHTS = ["Mon-Fri 19:00-08:00", "Sat-Sun"]


def _inside(windows: list[str], instant: datetime) -> bool:
    return WeeklySchedule.parse(windows, UTC_ZONE).contains(instant)


def test_intersected_windows_hold_exactly_the_minutes_inside_both() -> None:
    mine, theirs = ["daily 22:00-06:00", "Wed 12:00-13:00"], NIGHTS
    both = intersect_windows(mine, theirs)
    start = datetime(2026, 11, 23, tzinfo=UTC)  # a Monday
    for minute in range(0, 8 * 24 * 60, 17):  # past the week's end: the wrap at Sunday midnight
        instant = start + timedelta(minutes=minute)
        assert _inside(both, instant) == (_inside(mine, instant) and _inside(theirs, instant)), instant
    assert intersect_windows(["Mon 09:00-12:00"], ["Tue"]) == []
    assert intersect_windows(["daily"], ["Mon 09:00-17:00"]) == ["Mon 09:00-17:00"]


def _allows(mode: str, windows: list[str], idle: bool, instant: datetime) -> bool:
    inside = _inside(windows, instant)
    return {"idle": idle, "schedule": inside, "idle_in_schedule": idle and inside, "idle_or_schedule": idle or inside}[
        mode
    ]


@pytest.mark.parametrize(
    ("ours", "theirs", "exact"),
    [
        ("idle", "schedule", True),
        ("schedule", "schedule", True),
        ("idle", "idle", True),
        ("idle_in_schedule", "schedule", True),
        ("schedule", "idle_or_schedule", False),  # the four modes cannot say it exactly: stricter instead
        ("idle_or_schedule", "idle", True),
        ("idle_or_schedule", "idle_or_schedule", True),
    ],
)
def test_work_runs_only_when_both_rules_allow_it(ours: str, theirs: str, exact: bool) -> None:
    mine = ["daily 22:00-06:00", "Wed 12:00-13:00"]
    mode, windows = combine_modes(ours, mine, theirs, NIGHTS)
    start = datetime(2026, 11, 23, tzinfo=UTC)  # a Monday
    for minute in range(0, 7 * 24 * 60, 29):
        instant = start + timedelta(minutes=minute)
        for idle in (True, False):
            both = _allows(ours, mine, idle, instant) and _allows(theirs, NIGHTS, idle, instant)
            combined = _allows(mode, windows, idle, instant)
            assert combined == both if exact else (not combined or both), (instant, idle, mode, windows)


def test_the_lower_cap_the_longer_idle_threshold_and_both_game_lists_apply() -> None:
    own = Settings.model_validate(
        {"gpu": {"max_temperature_c": 70, "resume_temperature_c": 65}, "work": {"idle_threshold": "5m"}}
    )
    policy = GroupPolicy(max_temperature_c=80, idle_threshold="15m", power_limit_percent=80, pause_processes=["maya"])
    applied = apply_group_policy(own, policy)
    assert applied.gpu.max_temperature_c == 70  # the owner's is stricter
    assert applied.gpu.resume_temperature_c == 65
    assert applied.work.idle_threshold == "15m"  # the studio's wait is longer
    assert applied.gpu.power_limit_percent == 80
    assert applied.games.pause_processes == [*DEFAULT_PAUSE_PROCESSES, "maya"]

    hot_owner = apply_group_policy(Settings.model_validate({"gpu": {"resume_temperature_c": 78}}), policy)
    lower = apply_group_policy(hot_owner, GroupPolicy(max_temperature_c=75))
    assert (lower.gpu.max_temperature_c, lower.gpu.resume_temperature_c) == (75, None)  # 8 below the new cap
    assert apply_group_policy(own, GroupPolicy()) == own  # a group that sets nothing changes nothing


def test_leaving_the_group_gives_back_the_owners_settings_unchanged(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[work]\nmode = "idle"\n[gpu]\nmax_temperature_c = 83\n')
    store = SettingsStore(config, load_settings(config))
    seen: list[tuple[int, int]] = []
    store.on_change(lambda before, after: seen.append((before.gpu.max_temperature_c, after.gpu.max_temperature_c)))
    policy = GroupPolicy(windows=NIGHTS, max_temperature_c=75)
    store.set_overlay(lambda own: apply_group_policy(own, policy))
    assert (store.current.work.mode, store.current.schedule.windows) == ("idle_in_schedule", NIGHTS)
    assert store.current.gpu.max_temperature_c == 75
    store.update({"gpu": {"max_temperature_c": 72}})  # the owner's own change still counts while in the group
    assert store.current.gpu.max_temperature_c == 72
    store.set_overlay(None)
    assert store.current == store.own == load_settings(config)
    assert store.own.work.mode == "idle"
    assert seen == [(83, 75), (75, 72), (72, 72)]
    assert "max_temperature_c = 72" in config.read_text()  # the group's values never reach the owner's file
    assert "idle_in_schedule" not in config.read_text()
