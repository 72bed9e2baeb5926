"""The desktop app hands freed heap back to the system every minute where the C library can (glibc)."""

from __future__ import annotations

import sys

import pytest
from PySide6.QtCore import QObject
from pytestqt.qtbot import QtBot

from sparecycles.ui.heap import TRIM_EVERY_MS, malloc_trim, start_heap_trimming


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim is Linux's")
def test_the_heap_is_trimmed_every_minute_through_glibc(qtbot: QtBot) -> None:
    trim = malloc_trim()
    assert trim is not None
    assert trim() in (0, 1)  # glibc: 1 when memory was handed back, 0 when there was none to hand back
    owner = QObject()
    timer = start_heap_trimming(owner)
    assert timer is not None
    assert (timer.isActive(), timer.interval(), timer.parent()) == (True, TRIM_EVERY_MS, owner)
    fast = start_heap_trimming(owner, every_ms=10)
    assert fast is not None
    with qtbot.waitSignal(fast.timeout, timeout=2000):  # it fires, and trimming from the GUI thread is safe
        pass
