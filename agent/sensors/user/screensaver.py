"""The screen-saver D-Bus services: org.freedesktop.ScreenSaver (KDE, Xfce, MATE, LXQt) and
org.gnome.ScreenSaver (GNOME Shell).

``GetActive`` says the screen is locked or blanked: either way nobody is looking at it.
``GetSessionIdleTime`` has no written standard and its unit differs: KDE answers milliseconds
(KIdleTime), the older gnome-screensaver and its forks seconds, so the unit is a constructor
argument. KDE on Wayland answers ``NotSupported``; then only ``GetActive`` is used.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sparecycles.agent.sensors.user.failures import FailureLog
from sparecycles.agent.sensors.user.model import PresenceSample
from sparecycles.agent.system.dbus import NOT_SUPPORTED, DBusCallFailed, DBusClient, DBusError

log = logging.getLogger(__name__)

FREEDESKTOP_SERVICE = "org.freedesktop.ScreenSaver"
FREEDESKTOP_PATHS = ("/ScreenSaver", "/org/freedesktop/ScreenSaver")
GNOME_SERVICE = "org.gnome.ScreenSaver"
GNOME_PATHS = ("/org/gnome/ScreenSaver",)

_NO_OBJECT = frozenset(
    {
        "org.freedesktop.DBus.Error.UnknownObject",
        "org.freedesktop.DBus.Error.UnknownMethod",
        "org.freedesktop.DBus.Error.UnknownInterface",
    }
)


class ScreenSaverSource:
    """Lock (screen saver active) and, where the service offers it, idle time."""

    def __init__(
        self,
        bus: DBusClient,
        *,
        service: str = FREEDESKTOP_SERVICE,
        paths: Sequence[str] = FREEDESKTOP_PATHS,
        interface: str | None = None,
        idle_time_unit_s: float | None = 1.0,
        name: str = "freedesktop-screensaver",
    ) -> None:
        """``idle_time_unit_s`` is what one unit of ``GetSessionIdleTime`` is worth in seconds (1.0 for
        seconds, 0.001 for KDE's milliseconds), or None not to ask for idle time at all.
        Takes ownership of ``bus`` (the session bus): ``close()`` closes it."""
        self.name = name
        self._bus = bus
        self._service = service
        self._paths = tuple(paths)
        self._interface = interface or service
        self._idle_unit_s = idle_time_unit_s
        self._path: str | None = None
        self._failures = FailureLog(log, service)
        self._idle_failures = FailureLog(log, f"{service} GetSessionIdleTime")
        self.problem: str | None = None

    @classmethod
    def freedesktop(cls, bus: DBusClient, *, idle_time_unit_s: float | None = 1.0) -> ScreenSaverSource:
        return cls(bus, idle_time_unit_s=idle_time_unit_s)

    @classmethod
    def gnome(cls, bus: DBusClient) -> ScreenSaverSource:
        """GNOME Shell's lock screen; its idle time comes from Mutter instead."""
        return cls(bus, service=GNOME_SERVICE, paths=GNOME_PATHS, idle_time_unit_s=None, name="gnome-screensaver")

    def sample(self) -> PresenceSample:
        try:
            locked = self._locked()
        except DBusError as exc:
            self.problem = str(exc)
            self._failures.failed(self.problem)
            return PresenceSample(source=self.name)
        self.problem = None
        self._failures.recovered()
        return PresenceSample(source=self.name, idle_s=self._idle_s(), locked=locked)

    def close(self) -> None:
        self._bus.close()

    def _locked(self) -> bool:
        """``GetActive`` on the first object path that has it (KDE uses /ScreenSaver, others the long one)."""
        candidates = (self._path,) if self._path else self._paths
        last: DBusError | None = None
        for path in candidates:
            try:
                active = self._bus.call_single(self._service, path, self._interface, "GetActive")
            except DBusCallFailed as exc:
                if exc.name not in _NO_OBJECT:
                    raise
                last = exc
                continue
            if not isinstance(active, bool):
                raise DBusCallFailed(f"{self._service}.GetActive answered {active!r}, not a boolean")
            self._path = path
            return active
        self._path = None
        raise last or DBusCallFailed(f"{self._service} has no screen-saver object")

    def _idle_s(self) -> float | None:
        if self._idle_unit_s is None or self._path is None:
            return None
        try:
            idle = self._bus.call_single(self._service, self._path, self._interface, "GetSessionIdleTime")
        except DBusError as exc:
            if exc.name == NOT_SUPPORTED:  # KDE on Wayland: it will not start answering later
                self._idle_unit_s = None
            self._idle_failures.failed(f"no idle time: {exc}")
            return None
        if not isinstance(idle, int) or isinstance(idle, bool):
            self._idle_failures.failed(f"GetSessionIdleTime answered {idle!r}, not a number")
            return None
        self._idle_failures.recovered()
        return idle * self._idle_unit_s
