from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sparecycles.durations import parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"), [("90m", 5400), ("2h", 7200), ("1h30m", 5400), ("45", 2700), ("1d", 86400), (" 2H ", 7200)]
)
def test_parses_what_people_type(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "1x", "h", "-5m", "1.5h", "5m later"])
def test_refuses_anything_else_with_an_example(text: str) -> None:
    with pytest.raises(ValueError, match="90m"):
        parse_duration(text)


@given(st.integers(0, 99), st.integers(0, 59))
def test_hours_and_minutes_add_up(hours: int, minutes: int) -> None:
    assert parse_duration(f"{hours}h{minutes}m") == hours * 3600 + minutes * 60


def test_clock_time_is_the_next_such_time() -> None:
    from datetime import UTC, datetime, timedelta

    from sparecycles.durations import parse_clock_time

    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    later_today = parse_clock_time("23:59", now)
    assert later_today is not None
    assert timedelta(0) < later_today - now <= timedelta(days=1)
    assert later_today.astimezone().strftime("%H:%M") == "23:59"
    local_now = now.astimezone()
    past = (local_now - timedelta(minutes=5)).strftime("%H:%M")
    tomorrow = parse_clock_time(past, now)
    assert tomorrow is not None
    assert timedelta(hours=23) < tomorrow - now <= timedelta(days=1)
    assert parse_clock_time("90m", now) is None
    with pytest.raises(ValueError, match="time of day"):
        parse_clock_time("25:00", now)


def test_a_time_of_day_is_read_in_the_zone_given_not_the_systems() -> None:
    """The owner's configured zone (general.timezone), the one the status shows the snooze in."""
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from sparecycles.durations import parse_clock_time

    tokyo = ZoneInfo("Asia/Tokyo")
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # 21:00 in Tokyo
    assert parse_clock_time("22:00", now, tokyo) == datetime(2026, 11, 25, 22, 0, tzinfo=tokyo)
    assert parse_clock_time("18:30", now, tokyo) == datetime(2026, 11, 26, 18, 30, tzinfo=tokyo)
    new_york = ZoneInfo("America/New_York")
    assert parse_clock_time("18:30", now, new_york) == datetime(2026, 11, 25, 18, 30, tzinfo=new_york)


@pytest.mark.parametrize(("evening", "hours", "zone_name"), [((2026, 10, 24), 9, "CET"), ((2026, 3, 28), 7, "CEST")])
def test_a_time_of_day_keeps_its_wall_time_across_a_daylight_saving_change(
    evening: tuple[int, int, int], hours: int, zone_name: str
) -> None:
    from datetime import UTC, datetime, timedelta
    from zoneinfo import ZoneInfo

    from sparecycles.durations import parse_clock_time

    berlin = ZoneInfo("Europe/Berlin")
    now = datetime(*evening, 22, 0, tzinfo=berlin)
    until = parse_clock_time("06:00", now, berlin)
    assert until is not None
    assert until.astimezone(berlin).strftime("%a %H:%M %Z") == f"Sun 06:00 {zone_name}"
    assert until.astimezone(UTC) - now.astimezone(UTC) == timedelta(hours=hours)  # as instants


def test_in_an_autumn_fold_the_second_occurrence_still_comes_today() -> None:
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from sparecycles.durations import parse_clock_time

    berlin = ZoneInfo("Europe/Berlin")
    second_0230 = datetime(2026, 10, 25, 1, 30, tzinfo=UTC)  # 02:30 CET, after the clocks went back
    until = parse_clock_time("02:45", second_0230, berlin)
    assert until is not None
    assert until.astimezone(UTC) == datetime(2026, 10, 25, 1, 45, tzinfo=UTC)
