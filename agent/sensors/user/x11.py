"""User presence on an X11 session: input idle time from the XScreenSaver extension, and whether the
active window is fullscreen (EWMH ``_NET_WM_STATE_FULLSCREEN``).

Built on python-xlib rather than ctypes to libX11/libXss, because with python-xlib a lost display
or a window that vanished between two requests is a Python exception; libX11's default error
handlers end the whole process, and replacing them is process-wide. python-xlib also speaks the
MIT-SCREEN-SAVER protocol itself, so libXss need not be installed. One query costs about 140 µs
here (against about 30 µs through libXss), which is nothing at one sample every 100 ms.

One connection is kept open. A lost display is logged once; the source then answers ``None`` and
tries to reconnect at most every ``reconnect_interval_s``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import psutil

from sparecycles.agent.sensors.user.failures import FailureLog
from sparecycles.agent.sensors.user.model import PresenceSample

if TYPE_CHECKING:
    from Xlib.display import Display
    from Xlib.xobject.drawable import Window

log = logging.getLogger(__name__)

SCREEN_SAVER_EXTENSION = "MIT-SCREEN-SAVER"


class X11Unavailable(Exception):
    """No usable X display: not set, not reachable, or without the extension we need."""


def process_name(pid: int) -> str | None:
    """The name of a local process, or None if it is gone or hidden from us."""
    try:
        return psutil.Process(pid).name()
    except (psutil.Error, OSError):
        return None


@dataclass
class _Connection:
    display: Display
    root: Window
    supported: int
    active_window: int
    wm_state: int
    wm_state_fullscreen: int
    wm_pid: int


class X11PresenceSource:
    """Idle time and the fullscreen state of the active window on one X display.

    ``report_idle=False`` keeps only the fullscreen check: under Wayland, Xwayland's idle counter
    sees only input to X clients, so it would claim the owner is away while they type elsewhere.
    """

    name = "x11"

    def __init__(
        self,
        display: str | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        report_idle: bool = True,
        reconnect_interval_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        name_of_process: Callable[[int], str | None] = process_name,
    ) -> None:
        if display is None:
            display = (os.environ if environ is None else environ).get("DISPLAY") or None
        self.display_name = display
        self.report_idle = report_idle
        self._reconnect_interval_s = reconnect_interval_s
        self._clock = clock
        self._name_of_process = name_of_process
        self._lock = threading.Lock()
        self._connection: _Connection | None = None
        self._next_attempt = float("-inf")
        self._failures = FailureLog(log, f"X11 presence on {display or '(no display)'}")
        self.problem: str | None = None

    def sample(self) -> PresenceSample:
        """Read now; ``None`` fields where the display cannot say. Never raises."""
        with self._lock:
            connection = self._connected()
            if connection is None:
                return PresenceSample(source=self.name)
            from Xlib import error as xerror  # importable: a connection exists

            try:
                idle_s = self._idle_s(connection) if self.report_idle else None
                fullscreen, app = self._fullscreen(connection)
            except (xerror.ConnectionClosedError, xerror.DisplayError, OSError) as exc:
                self._lose(f"lost the X display {self.display_name}: {exc}")
                return PresenceSample(source=self.name)
            except Exception as exc:  # a protocol surprise must not stop the agent's presence loop
                self._lose(f"unexpected X11 failure, reconnecting: {type(exc).__name__}: {exc}")
                return PresenceSample(source=self.name)
            self._failures.recovered()
            self.problem = None
            return PresenceSample(source=self.name, idle_s=idle_s, fullscreen=fullscreen, fullscreen_app=app)

    def close(self) -> None:
        with self._lock:
            self._disconnect()
            self._next_attempt = float("inf")

    def _connected(self) -> _Connection | None:
        if self._connection is not None:
            return self._connection
        if self._clock() < self._next_attempt:
            return None
        try:
            self._connection = self._connect()
        except X11Unavailable as exc:
            self._next_attempt = self._clock() + self._reconnect_interval_s
            self.problem = str(exc)
            self._failures.failed(str(exc))
            return None
        return self._connection

    def _connect(self) -> _Connection:
        if not self.display_name:
            raise X11Unavailable("no X display: $DISPLAY is not set")
        try:
            from Xlib import display as xdisplay
            from Xlib import error as xerror
        except ImportError as exc:
            raise X11Unavailable("the python-xlib package is not installed: `pip install python-xlib`") from exc
        try:
            display = xdisplay.Display(self.display_name)
        except (xerror.DisplayError, xerror.ConnectionClosedError, OSError) as exc:
            raise X11Unavailable(f"cannot open the X display {self.display_name}: {exc}") from exc
        try:
            if self.report_idle and not display.has_extension(SCREEN_SAVER_EXTENSION):
                raise X11Unavailable(
                    f"the X server at {self.display_name} lacks the {SCREEN_SAVER_EXTENSION} extension"
                )
            return _Connection(
                display=display,
                root=display.screen().root,
                supported=display.intern_atom("_NET_SUPPORTED"),
                active_window=display.intern_atom("_NET_ACTIVE_WINDOW"),
                wm_state=display.intern_atom("_NET_WM_STATE"),
                wm_state_fullscreen=display.intern_atom("_NET_WM_STATE_FULLSCREEN"),
                wm_pid=display.intern_atom("_NET_WM_PID"),
            )
        except (xerror.XError, xerror.ConnectionClosedError, OSError) as exc:
            with contextlib.suppress(Exception):
                display.close()
            raise X11Unavailable(f"the X display {self.display_name} failed while starting: {exc}") from exc
        except X11Unavailable:
            with contextlib.suppress(Exception):
                display.close()
            raise

    def _idle_s(self, connection: _Connection) -> float:
        from Xlib.ext import screensaver

        return float(screensaver.query_info(connection.root).idle) / 1000.0

    def _fullscreen(self, connection: _Connection) -> tuple[bool | None, str | None]:
        """Whether the active window asked the window manager for fullscreen; None without an EWMH one."""
        from Xlib import Xatom
        from Xlib import error as xerror

        active = connection.root.get_full_property(connection.active_window, Xatom.WINDOW)
        if active is None:
            # No window focused yet, or no EWMH window manager to tell which window is in front.
            supported = connection.root.get_full_property(connection.supported, Xatom.ATOM)
            if supported is not None and connection.active_window in supported.value:
                return False, None
            return None, None
        window_id = int(active.value[0]) if len(active.value) else 0
        if window_id == 0:
            return False, None
        window = connection.display.create_resource_object("window", window_id)
        try:
            state = window.get_full_property(connection.wm_state, Xatom.ATOM)
            if state is None or connection.wm_state_fullscreen not in state.value:
                return False, None
            return True, self._app_name(connection, window)
        except (xerror.BadWindow, xerror.BadDrawable):
            return False, None  # it closed between the two requests

    def _app_name(self, connection: _Connection, window: Window) -> str | None:
        from Xlib import Xatom

        wm_class = window.get_wm_class()
        if wm_class:
            instance, class_name = wm_class
            if class_name or instance:
                return class_name or instance
        pid = window.get_full_property(connection.wm_pid, Xatom.CARDINAL)
        if pid is not None and len(pid.value):
            return self._name_of_process(int(pid.value[0]))
        return None

    def _lose(self, message: str) -> None:
        self._disconnect()
        self._next_attempt = self._clock() + self._reconnect_interval_s
        self.problem = message
        self._failures.failed(message)

    def _disconnect(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.display.close()
