"""Human durations such as ``90m``, ``2h`` or ``1h30m``, and clock times such as ``18:30``."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta

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


def parse_clock_time(text: str, now: datetime) -> datetime | None:
    """The next instant at the local wall time ``HH:MM`` after ``now`` (aware), or None if not a time."""
    match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*", text)
    if not match:
        return None
    hours, minutes = int(match[1]), int(match[2])
    if hours > 23 or minutes > 59:
        raise ValueError(f"'{text}' is not a time of day (00:00 to 23:59)")
    local_now = now.astimezone()
    candidate = datetime.combine(local_now.date(), time(hours, minutes)).astimezone()
    if candidate <= local_now:
        candidate = datetime.combine(local_now.date() + timedelta(days=1), time(hours, minutes)).astimezone()
    return candidate
