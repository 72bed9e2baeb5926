"""Pick the presence sources that work in this session, probing each once.

Linux: idle time from X11 (an X session), else GNOME Mutter's idle monitor, else the screen saver
service, else logind's idle hint; the lock state from the same source where it knows it, else the
desktop's screen saver service, else logind. Under Wayland, X11's idle counter is never used (it
sees only input to X clients) but an Xwayland display still tells whether an X game is fullscreen.
Windows: the Win32 calls. Anything else, or nothing answering: a ``NullPresenceSource`` with the
reasons.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Mapping

from sparecycles.agent.sensors.user.composite import CompositePresenceSource
from sparecycles.agent.sensors.user.gnome import MutterIdleSource
from sparecycles.agent.sensors.user.logind import LogindPresenceSource
from sparecycles.agent.sensors.user.model import NullPresenceSource, PresenceSample, PresenceSource
from sparecycles.agent.sensors.user.screensaver import ScreenSaverSource
from sparecycles.agent.sensors.user.windows import (
    WindowsPresenceSource,
    WindowsUnavailable,
    WindowsUserCalls,
    create_windows_user_calls,
)
from sparecycles.agent.sensors.user.x11 import X11PresenceSource
from sparecycles.agent.system.dbus import DBusClient, session_bus_address, system_bus_address

log = logging.getLogger(__name__)

KDE_IDLE_UNIT_S = 0.001  # KDE's GetSessionIdleTime answers milliseconds


def create_presence_source(
    environ: Mapping[str, str] | None = None,
    *,
    platform: str = sys.platform,
    dbus_timeout_s: float = 0.5,
    pid: int | None = None,
    uid: int | None = None,
    windows_calls: Callable[[], WindowsUserCalls] = create_windows_user_calls,
) -> PresenceSource:
    """The best presence source for this session, or a null one whose ``reason`` says what failed.

    ``environ`` gives $DISPLAY, $WAYLAND_DISPLAY, $XDG_SESSION_TYPE, $XDG_CURRENT_DESKTOP and the
    D-Bus addresses; ``pid`` and ``uid`` say whose logind session to read (default: this process).
    """
    environ = os.environ if environ is None else environ
    if platform == "win32":
        try:
            return WindowsPresenceSource(windows_calls())
        except (WindowsUnavailable, OSError) as exc:
            return _null(str(exc))
    if not platform.startswith("linux"):
        return _null(f"no presence source for {platform}")
    return _create_linux(environ, dbus_timeout_s, pid, uid)


def _create_linux(environ: Mapping[str, str], timeout_s: float, pid: int | None, uid: int | None) -> PresenceSource:
    wayland = bool(environ.get("WAYLAND_DISPLAY")) or environ.get("XDG_SESSION_TYPE") == "wayland"
    desktops = {part.strip().lower() for part in environ.get("XDG_CURRENT_DESKTOP", "").split(":")}
    display = environ.get("DISPLAY") or None
    session_bus = session_bus_address(environ)
    system_bus = system_bus_address(environ)
    candidates = _Candidates()
    idle_order: list[str] = []
    lock_order: list[str] = []
    fullscreen_order: list[str] = []

    if display is None:
        candidates.problems.append("x11: $DISPLAY is not set")
    elif wayland:
        candidates.add("xwayland", lambda: X11PresenceSource(display, report_idle=False))
        fullscreen_order.append("xwayland")
    else:
        candidates.add("x11", lambda: X11PresenceSource(display))
        idle_order.append("x11")
    if session_bus is None:
        candidates.problems.append("session bus: $DBUS_SESSION_BUS_ADDRESS is not set")
    else:
        idle_unit_s = KDE_IDLE_UNIT_S if "kde" in desktops else 1.0

        def session_client(address: str = session_bus) -> DBusClient:
            return DBusClient(address, timeout_s=timeout_s)

        candidates.add("mutter", lambda: MutterIdleSource(session_client()))
        candidates.add(
            "freedesktop", lambda: ScreenSaverSource.freedesktop(session_client(), idle_time_unit_s=idle_unit_s)
        )
        candidates.add("gnome-screensaver", lambda: ScreenSaverSource.gnome(session_client()))
        idle_order += ["mutter", "freedesktop"]
        lock_order += ["gnome-screensaver", "freedesktop"]
    candidates.add(
        "logind", lambda: LogindPresenceSource(DBusClient(system_bus, timeout_s=timeout_s), pid=pid, uid=uid)
    )
    idle_order.append("logind")
    lock_order.append("logind")

    chosen: list[str] = []
    idle = candidates.first(idle_order, lambda s: s.idle_s is not None, "no idle time")
    if idle is not None:
        chosen.append(idle)
    if idle is None or candidates.sample(idle).locked is None:
        lock = candidates.first(lock_order, lambda s: s.locked is not None, "no lock state")
        if lock is not None and lock not in chosen:
            chosen.append(lock)
    if not any(candidates.sample(key).fullscreen is not None for key in chosen):
        fullscreen = candidates.first(fullscreen_order, lambda s: s.fullscreen is not None, "no window manager")
        if fullscreen is not None:
            chosen.append(fullscreen)
    parts = candidates.keep(chosen)
    if not parts:
        return _null("; ".join(candidates.problems))
    source = parts[0] if len(parts) == 1 else CompositePresenceSource(parts)
    log.info("User presence from %s", source.name)
    return source


class _Candidates:
    """Sources built and sampled at most once each, on demand; ``keep`` closes the ones not chosen."""

    def __init__(self) -> None:
        self._builders: dict[str, Callable[[], PresenceSource]] = {}
        self._built: dict[str, PresenceSource] = {}
        self._samples: dict[str, PresenceSample] = {}
        self.problems: list[str] = []

    def add(self, key: str, build: Callable[[], PresenceSource]) -> None:
        self._builders[key] = build

    def sample(self, key: str) -> PresenceSample:
        if key not in self._samples:
            self._built[key] = self._builders[key]()
            self._samples[key] = self._built[key].sample()
        return self._samples[key]

    def first(self, keys: list[str], answers: Callable[[PresenceSample], bool], missing: str) -> str | None:
        for key in keys:
            if answers(self.sample(key)):
                return key
            problem = f"{self._built[key].name}: {getattr(self._built[key], 'problem', None) or missing}"
            if problem not in self.problems:
                self.problems.append(problem)
        return None

    def keep(self, keys: list[str]) -> list[PresenceSource]:
        for key, source in self._built.items():
            if key not in keys:
                source.close()
        return [self._built[key] for key in keys]


def _null(reason: str) -> NullPresenceSource:
    source = NullPresenceSource(f"idle time unknown ({reason}): only scheduled hours are used")
    log.warning("No user presence source: %s", source.reason)
    return source
