"""Weekly windows: parsing, midnight crossings, daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sparecycles.schedule import ScheduleError, WeeklySchedule, format_rule, parse_rule

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def at(zone: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=zone)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "days", "start", "end"),
    [
        ("Mon-Fri 19:00-08:00", {0, 1, 2, 3, 4}, time(19), time(8)),
        ("Sat-Sun", {5, 6}, time(0), time(0)),
        ("sat-sun all day", {5, 6}, time(0), time(0)),
        ("daily 22:00-06:00", set(range(7)), time(22), time(6)),
        ("Fri-Mon 20:00-23:30", {4, 5, 6, 0}, time(20), time(23, 30)),
        ("Mon, Wed 09:00-17:00", {0, 2}, time(9), time(17)),
        ("weekdays 00:00-24:00", {0, 1, 2, 3, 4}, time(0), time(0)),
        ("Mon–Fri 19:00–08:00", {0, 1, 2, 3, 4}, time(19), time(8)),
    ],
)
def test_rules_people_write(text: str, days: set[int], start: time, end: time) -> None:
    rule = parse_rule(text)
    assert (set(rule.days), rule.start, rule.end) == (days, start, end)
    assert parse_rule(format_rule(rule)) == rule


@pytest.mark.parametrize("text", ["", "nights", "Mon 25:00-26:00", "Mon 19:00", "Funday 10:00-11:00", "Mon-Xyz"])
def test_bad_rules_say_what_is_accepted(text: str) -> None:
    with pytest.raises(ScheduleError):
        parse_rule(text)


def test_window_across_midnight_includes_the_next_morning() -> None:
    schedule = WeeklySchedule.parse(["Mon-Fri 19:00-08:00"], BERLIN)
    assert schedule.contains(at(BERLIN, 2026, 11, 23, 19, 0))  # Monday 19:00
    assert schedule.contains(at(BERLIN, 2026, 11, 24, 7, 59))  # Tuesday morning, from Monday's window
    assert not schedule.contains(at(BERLIN, 2026, 11, 24, 8, 0))
    assert schedule.contains(at(BERLIN, 2026, 11, 28, 7, 0))  # Saturday morning, from Friday's window
    assert not schedule.contains(at(BERLIN, 2026, 11, 23, 7, 0))  # Monday morning: Sunday has no window
    assert not schedule.contains(at(BERLIN, 2026, 11, 29, 22, 0))  # Sunday night


def test_next_change_walks_over_weekend_windows_that_touch() -> None:
    schedule = WeeklySchedule.parse(["Mon-Fri 19:00-08:00", "Sat-Sun"], BERLIN)
    friday_evening = at(BERLIN, 2026, 11, 27, 20, 0)
    # Friday 19:00 → Sat 08:00 overlaps Saturday's all-day window, which runs on to Sunday 24:00;
    # Monday's early hours are not covered (Sunday starts no night window).
    assert schedule.next_change(friday_evening) == at(BERLIN, 2026, 11, 30, 0, 0)
    assert schedule.next_change(at(BERLIN, 2026, 11, 30, 12, 0)) == at(BERLIN, 2026, 11, 30, 19, 0)


def test_spring_forward_keeps_wall_clock_windows() -> None:
    # Europe/Berlin springs forward on 2026-03-29 at 02:00 → 03:00.
    schedule = WeeklySchedule.parse(["daily 22:00-06:00"], BERLIN)
    evening, morning = at(BERLIN, 2026, 3, 28, 22, 0), at(BERLIN, 2026, 3, 29, 6, 0)
    assert schedule.contains(evening)
    assert schedule.next_change(evening) == morning
    elapsed = morning.astimezone(UTC) - evening.astimezone(UTC)
    assert elapsed.total_seconds() == 7 * 3600  # one hour shorter that night
    assert schedule.contains(at(BERLIN, 2026, 3, 29, 5, 59))
    assert not schedule.contains(at(BERLIN, 2026, 3, 29, 6, 0))


def test_fall_back_keeps_wall_clock_windows() -> None:
    # New York falls back on 2026-11-01 at 02:00 → 01:00.
    schedule = WeeklySchedule.parse(["daily 22:00-06:00"], NEW_YORK)
    evening = at(NEW_YORK, 2026, 10, 31, 22, 0)
    end = schedule.next_change(evening)
    assert end is not None
    assert end.astimezone(NEW_YORK).hour == 6
    assert (end - evening.astimezone(UTC)).total_seconds() == 9 * 3600  # one hour longer that night


def test_window_starting_in_the_skipped_hour_still_opens() -> None:
    schedule = WeeklySchedule.parse(["Sun 02:30-04:00"], BERLIN)
    assert schedule.contains(at(BERLIN, 2026, 3, 29, 3, 45))
    assert not schedule.contains(at(BERLIN, 2026, 3, 29, 4, 0))


@given(st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)))
def test_next_change_really_is_the_next_change(instant: datetime) -> None:
    schedule = WeeklySchedule.parse(["Mon-Fri 19:00-08:00", "Sun 10:00-12:00"], BERLIN)
    change = schedule.next_change(instant)
    assert change is not None
    assert schedule.contains(change) != schedule.contains(instant)
    assert schedule.contains(change - timedelta(seconds=1)) == schedule.contains(instant)
