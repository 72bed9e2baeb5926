"""Human sizes such as ``8GiB``, ``500MB`` or ``1.5 GB``, for settings."""

from __future__ import annotations

import math
import re

_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$")


def parse_size(text: str) -> int:
    """Bytes in ``text``; raises ValueError with an example of what is accepted."""
    match = _SIZE.match(text.lower())
    if not match or match[2] not in _UNITS:
        raise ValueError(f"'{text}' is not a size; write it like 500MB, 8GiB or 1.5TB")
    size = float(match[1]) * _UNITS[match[2]]
    if not math.isfinite(size):  # hundreds of digits make a float infinite, which int() cannot take
        raise ValueError(f"'{text}' is too large to be a size; write it like 500MB, 8GiB or 1.5TB")
    return int(size)
