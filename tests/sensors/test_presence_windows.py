"""The Windows presence source with its Win32 calls injected (they exist only on Windows)."""

from __future__ import annotations

import logging
import sys

import pytest

from sparecycles.agent.sensors.user.windows import (
    QUNS_ACCEPTS_NOTIFICATIONS,
    QUNS_APP,
    QUNS_BUSY,
    QUNS_NOT_PRESENT,
    QUNS_PRESENTATION_MODE,
    QUNS_QUIET_TIME,
    QUNS_RUNNING_D3D_FULL_SCREEN,
    WindowsPresenceSource,
    WindowsUnavailable,
    create_windows_user_calls,
)


class FakeUserCalls:
    """GetLastInputInfo, GetTickCount64, SHQueryUserNotificationState and the foreground process."""

    def __init__(self) -> None:
        self.last_input = 1_000
        self.now = 61_000
        self.state = QUNS_ACCEPTS_NOTIFICATIONS
        self.foreground = "game.exe"
        self.failing: set[str] = set()
        self.foreground_asked = 0

    def _maybe_fail(self, call: str) -> None:
        if call in self.failing:
            raise OSError(f"{call} failed")

    def last_input_tick_ms(self) -> int:
        self._maybe_fail("GetLastInputInfo")
        return self.last_input

    def tick_count_ms(self) -> int:
        self._maybe_fail("GetTickCount64")
        return self.now

    def user_notification_state(self) -> int:
        self._maybe_fail("SHQueryUserNotificationState")
        return self.state

    def foreground_app(self) -> str | None:
        self.foreground_asked += 1
        self._maybe_fail("foreground")
        return self.foreground


def test_idle_time_from_the_last_input_tick() -> None:
    calls = FakeUserCalls()
    sample = WindowsPresenceSource(calls).sample()
    assert sample.source == "windows"
    assert sample.idle_s == pytest.approx(60.0)
    assert sample.locked is False
    assert sample.fullscreen is False
    assert sample.fullscreen_app is None
    assert calls.foreground_asked == 0  # the foreground window is looked up only when fullscreen


@pytest.mark.parametrize(
    ("last_input", "idle_s"),
    [(0xFFFF_FF00, 0.512), (0x0000_0050, 0.176)],
    ids=["input-before-the-wrap", "input-after-the-wrap"],
)
def test_idle_time_across_the_32_bit_tick_wrap(last_input: int, idle_s: float) -> None:
    """GetLastInputInfo's tick is 32 bits; GetTickCount64 goes on past 49.7 days."""
    calls = FakeUserCalls()
    calls.last_input = last_input
    calls.now = 0x1_0000_0100
    assert WindowsPresenceSource(calls).sample().idle_s == pytest.approx(idle_s)


@pytest.mark.parametrize("state", [QUNS_BUSY, QUNS_RUNNING_D3D_FULL_SCREEN, QUNS_PRESENTATION_MODE])
def test_fullscreen_states_are_presence(state: int) -> None:
    calls = FakeUserCalls()
    calls.state = state
    sample = WindowsPresenceSource(calls).sample()
    assert sample.fullscreen is True
    assert sample.fullscreen_app == "game.exe"
    assert sample.locked is False


@pytest.mark.parametrize("state", [QUNS_ACCEPTS_NOTIFICATIONS, QUNS_QUIET_TIME, QUNS_APP])
def test_other_states_are_not_fullscreen(state: int) -> None:
    calls = FakeUserCalls()
    calls.state = state
    sample = WindowsPresenceSource(calls).sample()
    assert (sample.fullscreen, sample.locked) == (False, False)


def test_locked_or_screen_saver_is_not_present() -> None:
    calls = FakeUserCalls()
    calls.state = QUNS_NOT_PRESENT
    sample = WindowsPresenceSource(calls).sample()
    assert sample.locked is True
    assert sample.fullscreen is False


def test_failing_calls_answer_none_and_log_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="sparecycles.agent.sensors.user.windows")
    calls = FakeUserCalls()
    calls.failing = {"GetLastInputInfo", "SHQueryUserNotificationState"}
    source = WindowsPresenceSource(calls)
    for _ in range(3):
        sample = source.sample()
        assert (sample.idle_s, sample.locked, sample.fullscreen) == (None, None, None)
    assert len([r for r in caplog.records if r.levelno >= logging.INFO]) == 2  # once per call, not per sample
    assert source.problem == "GetLastInputInfo failed"

    calls.failing = set()
    assert source.sample().idle_s == pytest.approx(60.0)
    assert source.problem is None


def test_foreground_lookup_failure_keeps_the_fullscreen_answer() -> None:
    calls = FakeUserCalls()
    calls.state = QUNS_BUSY
    calls.failing = {"foreground"}
    sample = WindowsPresenceSource(calls).sample()
    assert sample.fullscreen is True
    assert sample.fullscreen_app is None


@pytest.mark.skipif(sys.platform == "win32", reason="checks the behaviour off Windows")
def test_real_calls_exist_only_on_windows() -> None:
    with pytest.raises(WindowsUnavailable, match="only on Windows"):
        create_windows_user_calls()
