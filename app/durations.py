"""Human durations such as ``90m``, ``2h`` or ``1h30m``, and clock times such as ``18:30``."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta, tzinfo

_PART = re.compile(r"(\d+)\s*([dhms])")
_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(text: str) -> int:
    """Seconds in ``text``; raises ValueError with an example of what is accepted."""
    compact = text.strip().lower().replace(" ", "")
    if compact.isdigit():
        compact += "m"  # a bare number is minutes, as people say "snooze 30"
    parts = _PART.findall(compact)
    if not compact or "".join(n + u for n, u in parts) != compact:
        raise ValueError(f"'{text}' is not a duration; write it like 90m, 2h or 1h30m")
    return sum(int(number) * _UNIT_SECONDS[unit] for number, unit in parts)


def parse_clock_time(text: str, now: datetime, zone: tzinfo | None = None) -> datetime | None:
    """The next instant at the wall time ``HH:MM`` after ``now`` (aware), or None if not a time.

    ``zone`` is where that wall time is read: the owner's configured zone (``general.timezone``), the one the
    agent's status and reasons use, so that "snooze until 18:30" means the 18:30 they then show. None: the
    system's own zone. Across a daylight-saving change the wall time is kept (06:00 is 06:00 on either side).
    """
    match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*", text)
    if not match:
        return None
    hours, minutes = int(match[1]), int(match[2])
    if hours > 23 or minutes > 59:
        raise ValueError(f"'{text}' is not a time of day (00:00 to 23:59)")
    if zone is None:
        local_now = now.astimezone()
        candidate = datetime.combine(local_now.date(), time(hours, minutes)).astimezone()
        if candidate <= local_now:
            candidate = datetime.combine(local_now.date() + timedelta(days=1), time(hours, minutes)).astimezone()
        return candidate
    today, instant = now.astimezone(zone).date(), now.astimezone(UTC)
    # Compared as instants (two times in one zone compare by wall time), both sides of an autumn fold tried.
    candidates = (
        datetime.combine(day, time(hours, minutes, fold=fold), tzinfo=zone)
        for day in (today, today + timedelta(days=1))
        for fold in (0, 1)
    )
    return next(candidate for candidate in candidates if candidate.astimezone(UTC) > instant)
