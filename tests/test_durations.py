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
