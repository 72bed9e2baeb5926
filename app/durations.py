"""Human durations such as ``90m``, ``2h`` or ``1h30m``, for snooze and similar commands."""

from __future__ import annotations

import re

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
