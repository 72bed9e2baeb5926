"""Weekly schedule windows such as "Mon-Fri 19:00-08:00" and "Sat-Sun", in the user's time zone.

Pure: a :class:`WeeklySchedule` answers "is this instant inside a window?" and "when does that
next change?" from wall-clock instants alone, so daylight-saving changes, windows across midnight
and jumps after a suspend need no special state. Times are local wall-clock times of the schedule's
zone; a window that starts or ends in a skipped hour (spring forward) starts or ends at that time
shifted by the gap (02:30 becomes 03:30), and an hour that happens twice counts its first
occurrence.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_ALIASES = {
    **{name: (i,) for i, name in enumerate(DAY_NAMES)},
    **{
        full: (i,)
        for i, full in enumerate(("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"))
    },
    "daily": tuple(range(7)),
    "everyday": tuple(range(7)),
    "weekdays": tuple(range(5)),
    "weekends": (5, 6),
}
_RULE = re.compile(
    r"^\s*(?P<days>[a-z ,\-–]+?)\s*(?:(?P<start>\d{1,2}:\d{2})\s*[-–]\s*(?P<end>\d{1,2}:\d{2})|all\s*day)?\s*$"
)
RULE_EXAMPLES = '"Mon-Fri 19:00-08:00", "Sat-Sun", "Sat-Sun all day", "daily 22:00-06:00"'


class ScheduleError(ValueError):
    """A schedule rule could not be understood; the message shows what is accepted."""


@dataclass(frozen=True)
class WindowRule:
    """Work from ``start`` on each of ``days`` until ``end`` (the next day when end <= start)."""

    days: frozenset[int]  # 0 = Monday
    start: time
    end: time  # equal to start means all day (24 h)

    @property
    def crosses_midnight(self) -> bool:
        return self.end <= self.start

    def spans(self, day: date, zone: ZoneInfo) -> Iterator[tuple[datetime, datetime]]:
        """The window starting on ``day`` (if it is one of ``days``) as aware instants."""
        if day.weekday() not in self.days:
            return
        end_day = day + timedelta(days=1) if self.crosses_midnight else day
        yield _local_instant(day, self.start, zone), _local_instant(end_day, self.end, zone)


def _local_instant(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of a local wall time (Python's rule for DST: the earlier reading wins)."""
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def _parse_days(text: str) -> frozenset[int]:
    days: set[int] = set()
    for part in re.split(r"\s*,\s*|\s+", text.strip()):
        if not part:
            continue
        if "-" in part or "–" in part:
            first, last = re.split(r"[-–]", part, maxsplit=1)
            if first not in DAY_NAMES or last not in DAY_NAMES:
                raise ScheduleError(f"'{part}' is not a day range like Mon-Fri")
            start, end = DAY_NAMES.index(first), DAY_NAMES.index(last)
            days.update((start + i) % 7 for i in range((end - start) % 7 + 1))
        elif part in _DAY_ALIASES:
            days.update(_DAY_ALIASES[part])
        else:
            raise ScheduleError(f"'{part}' is not a day (use Mon, Tue, ... Sun, Mon-Fri, weekdays, weekends, daily)")
    if not days:
        raise ScheduleError("no days given")
    return frozenset(days)


def _parse_time(text: str) -> time:
    hours, minutes = (int(part) for part in text.split(":"))
    if hours == 24 and minutes == 0:
        return time(0, 0)
    if not (0 <= hours < 24 and 0 <= minutes < 60):
        raise ScheduleError(f"'{text}' is not a time of day (00:00 to 23:59)")
    return time(hours, minutes)


def parse_rule(text: str) -> WindowRule:
    match = _RULE.match(text.lower())
    if not match:
        raise ScheduleError(f"'{text}' is not a schedule rule; write it like {RULE_EXAMPLES}")
    days = _parse_days(match["days"])
    if match["start"] is None:
        return WindowRule(days, time(0, 0), time(0, 0))
    return WindowRule(days, _parse_time(match["start"]), _parse_time(match["end"]))


def checked_rules(rules: list[str]) -> list[str]:
    """``rules`` unchanged when every one parses; else a ValueError saying which and how to write them (for
    pydantic validators: the settings file's windows, a studio group's)."""
    for rule in rules:
        try:
            parse_rule(rule)
        except ScheduleError as exc:
            message = str(exc)
            if RULE_EXAMPLES not in message:
                message += f"; write rules like {RULE_EXAMPLES}"
            raise ValueError(message) from None
    return rules


def format_rule(rule: WindowRule) -> str:
    days = ", ".join(DAY_NAMES[d].capitalize() for d in sorted(rule.days))
    if rule.start == rule.end:
        return f"{days} all day"
    return f"{days} {rule.start:%H:%M}-{rule.end:%H:%M}"


@dataclass(frozen=True)
class WeeklySchedule:
    rules: tuple[WindowRule, ...]
    zone: ZoneInfo

    @classmethod
    def parse(cls, rules: Iterable[str], zone: ZoneInfo) -> WeeklySchedule:
        return cls(tuple(parse_rule(rule) for rule in rules), zone)

    @property
    def empty(self) -> bool:
        return not self.rules

    def _spans_around(self, instant: datetime) -> Iterator[tuple[datetime, datetime]]:
        local_day = instant.astimezone(self.zone).date()
        for offset in range(-1, 9):
            for rule in self.rules:
                yield from rule.spans(local_day + timedelta(days=offset), self.zone)

    def contains(self, instant: datetime) -> bool:
        """Whether ``instant`` (aware) falls inside any window."""
        return any(start <= instant < end for start, end in self._spans_around(instant))

    def next_change(self, instant: datetime) -> datetime | None:
        """The first instant after ``instant`` at which :meth:`contains` changes, within 8 days."""
        inside = self.contains(instant)
        boundaries = sorted({moment for span in self._spans_around(instant) for moment in span if moment > instant})
        for moment in boundaries:
            if self.contains(moment) != inside:
                return moment
        return None


MINUTES_PER_DAY = 24 * 60
MINUTES_PER_WEEK = 7 * MINUTES_PER_DAY


def _week_spans(rules: Iterable[WindowRule]) -> list[tuple[int, int]]:
    """The rules' windows as merged [start, end) minutes of the week from Monday 00:00; a window that runs
    past Sunday midnight continues at Monday 00:00 (the week wraps)."""
    spans: list[tuple[int, int]] = []
    for rule in rules:
        start = rule.start.hour * 60 + rule.start.minute
        end = rule.end.hour * 60 + rule.end.minute
        length = end - start if end > start else end + MINUTES_PER_DAY - start
        for day in rule.days:
            first = day * MINUTES_PER_DAY + start
            last = first + length
            if last <= MINUTES_PER_WEEK:
                spans.append((first, last))
            else:
                spans += [(first, MINUTES_PER_WEEK), (0, last - MINUTES_PER_WEEK)]
    merged: list[tuple[int, int]] = []
    for first, last in sorted(spans):
        if merged and first <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return merged


def _clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _rules_of_spans(spans: Iterable[tuple[int, int]]) -> list[str]:
    """Week-minute spans as rule texts: one piece per day, days with the same hours joined ("Mon, Tue 09:00-18:00")."""
    by_hours: dict[tuple[int, int], list[int]] = {}
    for first, last in spans:
        cursor = first
        while cursor < last:
            day, offset = divmod(cursor, MINUTES_PER_DAY)
            piece_end = min(last, (day + 1) * MINUTES_PER_DAY)
            by_hours.setdefault((offset, piece_end - day * MINUTES_PER_DAY), []).append(day)
            cursor = piece_end
    rules = []
    for (start, end), days in sorted(by_hours.items(), key=lambda item: (min(item[1]), item[0])):
        unique = sorted(set(days))
        names = "Daily" if len(unique) == len(DAY_NAMES) else ", ".join(DAY_NAMES[day].capitalize() for day in unique)
        rules.append(
            f"{names} all day" if (start, end) == (0, MINUTES_PER_DAY) else f"{names} {_clock(start)}-{_clock(end)}"
        )
    return rules


def intersect_windows(first: Iterable[str], second: Iterable[str]) -> list[str]:
    """The rules of the hours inside both sets of windows (read in the same zone): a studio's schedule and a
    machine owner's own shorter hours give the hours both allow. Empty when they never overlap."""
    ours = _week_spans(parse_rule(rule) for rule in first)
    theirs = _week_spans(parse_rule(rule) for rule in second)
    common = [(max(a, c), min(b, d)) for a, b in ours for c, d in theirs if max(a, c) < min(b, d)]
    return _rules_of_spans(common)
