"""User presence on Windows: ``GetLastInputInfo`` for idle time, ``SHQueryUserNotificationState`` for
fullscreen applications (games, videos, presentations) and for a locked or switched-away session.

The system calls sit behind ``WindowsUserCalls`` so that the logic is tested on any platform; the
real ones (ctypes) exist only on Windows. They read the interactive session the agent runs in, so
the agent must run in the owner's session, not as a service in session 0.
"""

from __future__ import annotations

import logging
import sys
from typing import Protocol

from sparecycles.agent.sensors.user.failures import FailureLog
from sparecycles.agent.sensors.user.model import PresenceSample

log = logging.getLogger(__name__)

# QUERY_USER_NOTIFICATION_STATE (shellapi.h)
QUNS_NOT_PRESENT = 1  # screen saver running, machine locked, or another user's session in front
QUNS_BUSY = 2  # a fullscreen application (or a "busy" app) is running
QUNS_RUNNING_D3D_FULL_SCREEN = 3  # a Direct3D exclusive-fullscreen application
QUNS_PRESENTATION_MODE = 4
QUNS_ACCEPTS_NOTIFICATIONS = 5
QUNS_QUIET_TIME = 6
QUNS_APP = 7  # a Windows Store app is in front (not necessarily fullscreen)

FULLSCREEN_STATES = frozenset({QUNS_BUSY, QUNS_RUNNING_D3D_FULL_SCREEN, QUNS_PRESENTATION_MODE})
_TICK_MASK = 0xFFFFFFFF  # GetLastInputInfo's tick is 32 bits and wraps every 49.7 days


class WindowsUserCalls(Protocol):
    """The Win32 calls this source needs; each raises ``OSError`` when Windows refuses."""

    def last_input_tick_ms(self) -> int:
        """``GetLastInputInfo().dwTime``: the 32-bit tick count of the last input in this session."""
        ...

    def tick_count_ms(self) -> int:
        """``GetTickCount64()``: milliseconds since boot."""
        ...

    def user_notification_state(self) -> int:
        """``SHQueryUserNotificationState()``: a ``QUNS_*`` value."""
        ...

    def foreground_app(self) -> str | None:
        """The process name of the foreground window's owner, if any."""
        ...


class WindowsUnavailable(Exception):
    """The Win32 calls exist only on Windows."""


class WindowsPresenceSource:
    """Idle time, fullscreen and locked state from the injected Win32 calls."""

    name = "windows"

    def __init__(self, calls: WindowsUserCalls) -> None:
        self._calls = calls
        self._idle_failures = FailureLog(log, "GetLastInputInfo")
        self._state_failures = FailureLog(log, "SHQueryUserNotificationState")
        self.problem: str | None = None

    def sample(self) -> PresenceSample:
        idle_s = self._idle_s()
        try:
            state = self._calls.user_notification_state()
        except OSError as exc:
            self._state_failures.failed(str(exc))
            return PresenceSample(source=self.name, idle_s=idle_s)
        self._state_failures.recovered()
        fullscreen = state in FULLSCREEN_STATES
        app: str | None = None
        if fullscreen:
            try:
                app = self._calls.foreground_app()
            except OSError as exc:
                log.debug("foreground window's process: %s", exc)
        return PresenceSample(
            source=self.name,
            idle_s=idle_s,
            locked=state == QUNS_NOT_PRESENT,
            fullscreen=fullscreen,
            fullscreen_app=app,
        )

    def close(self) -> None:
        return None

    def _idle_s(self) -> float | None:
        try:
            last = self._calls.last_input_tick_ms()
            now = self._calls.tick_count_ms()
        except OSError as exc:
            self.problem = str(exc)
            self._idle_failures.failed(self.problem)
            return None
        self.problem = None
        self._idle_failures.recovered()
        return ((now - last) & _TICK_MASK) / 1000.0


def create_windows_user_calls() -> WindowsUserCalls:
    """The real Win32 calls; raises ``WindowsUnavailable`` elsewhere."""
    if sys.platform == "win32":
        return _Win32UserCalls()
    raise WindowsUnavailable(f"the Win32 presence calls exist only on Windows, not on {sys.platform}")


if sys.platform == "win32":
    import ctypes
    from ctypes import wintypes

    import psutil

    class _LastInputInfo(ctypes.Structure):
        _fields_ = (("cbSize", wintypes.UINT), ("dwTime", wintypes.DWORD))

    class _Win32UserCalls:
        """ctypes bindings to user32, kernel32 and shell32."""

        def __init__(self) -> None:
            self._user32 = ctypes.WinDLL("user32", use_last_error=True)
            self._kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
            self._shell32 = ctypes.WinDLL("shell32", use_last_error=True)
            self._kernel32.GetTickCount64.restype = ctypes.c_uint64
            self._user32.GetLastInputInfo.argtypes = (ctypes.POINTER(_LastInputInfo),)
            self._user32.GetLastInputInfo.restype = wintypes.BOOL
            self._user32.GetForegroundWindow.restype = wintypes.HWND
            self._user32.GetWindowThreadProcessId.argtypes = (wintypes.HWND, ctypes.POINTER(wintypes.DWORD))
            self._user32.GetWindowThreadProcessId.restype = wintypes.DWORD
            self._shell32.SHQueryUserNotificationState.argtypes = (ctypes.POINTER(ctypes.c_int),)
            self._shell32.SHQueryUserNotificationState.restype = ctypes.c_long

        def last_input_tick_ms(self) -> int:
            info = _LastInputInfo(cbSize=ctypes.sizeof(_LastInputInfo))
            if not self._user32.GetLastInputInfo(ctypes.byref(info)):
                raise ctypes.WinError(ctypes.get_last_error())
            return int(info.dwTime)

        def tick_count_ms(self) -> int:
            return int(self._kernel32.GetTickCount64())

        def user_notification_state(self) -> int:
            state = ctypes.c_int(0)
            result = self._shell32.SHQueryUserNotificationState(ctypes.byref(state))
            if result != 0:
                raise OSError(f"SHQueryUserNotificationState failed with HRESULT {result & 0xFFFFFFFF:#010x}")
            return int(state.value)

        def foreground_app(self) -> str | None:
            window = self._user32.GetForegroundWindow()
            if not window:
                return None
            pid = wintypes.DWORD(0)
            self._user32.GetWindowThreadProcessId(window, ctypes.byref(pid))
            if not pid.value:
                return None
            try:
                return psutil.Process(pid.value).name()
            except psutil.Error:
                return None
