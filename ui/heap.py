"""Hand the memory the app freed back to the system every minute (glibc's ``malloc_trim``).

The dashboard rebuilds its texts once a second from worker threads' answers; glibc keeps what they free in
per-thread arenas for reuse, so the resident set crept up for half an hour before it levelled off (135 MB).
Trimming every minute kept it at about 131 MB and flat (docs/benchmarks.md, "Desktop app"). Python's own
allocations do not grow (tracemalloc), so nothing leaks: this only returns freed pages. Elsewhere than glibc
(Windows, musl) there is nothing to trim and nothing is done.

Most of the climb in the first minutes, and a 5 MB saw-tooth, turned out to be the control client loading
the CA bundle for every call (fixed in app/control/client.py): since then ten minutes stay within 0.2 MB,
trimming on. Whether trimming is still needed was not measured; it costs a call a minute.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys
from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer

log = logging.getLogger(__name__)

TRIM_EVERY_MS = 60_000


def malloc_trim() -> Callable[[], int] | None:
    """glibc's ``malloc_trim(0)``, or None where the C library has none."""
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c") or "libc.so.6"
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: int(trim(0))


def start_heap_trimming(parent: QObject, every_ms: int = TRIM_EVERY_MS) -> QTimer | None:
    """A timer, owned by ``parent``, that trims the heap every ``every_ms``; None where nothing can be trimmed."""
    trim = malloc_trim()
    if trim is None:
        return None
    timer = QTimer(parent)
    timer.timeout.connect(trim)
    timer.start(every_ms)
    return timer
