"""Idle time on GNOME (X11 or Wayland) from Mutter's IdleMonitor on the session bus."""

from __future__ import annotations

import logging

from sparecycles.agent.sensors.user.failures import FailureLog
from sparecycles.agent.sensors.user.model import PresenceSample
from sparecycles.agent.system.dbus import DBusClient, DBusError

log = logging.getLogger(__name__)

MUTTER_IDLE_SERVICE = "org.gnome.Mutter.IdleMonitor"
MUTTER_IDLE_PATH = "/org/gnome/Mutter/IdleMonitor/Core"
MUTTER_IDLE_INTERFACE = "org.gnome.Mutter.IdleMonitor"


class MutterIdleSource:
    """``GetIdletime`` (milliseconds since the last input, whatever the display server). No lock state:
    GNOME reports that through org.gnome.ScreenSaver and logind."""

    name = "gnome-mutter"

    def __init__(self, bus: DBusClient) -> None:
        """Takes ownership of ``bus`` (the session bus): ``close()`` closes it."""
        self._bus = bus
        self._failures = FailureLog(log, "GNOME Mutter idle monitor")
        self.problem: str | None = None

    def sample(self) -> PresenceSample:
        try:
            idle_ms = self._bus.call_single(MUTTER_IDLE_SERVICE, MUTTER_IDLE_PATH, MUTTER_IDLE_INTERFACE, "GetIdletime")
        except DBusError as exc:
            self.problem = str(exc)
            self._failures.failed(self.problem)
            return PresenceSample(source=self.name)
        if not isinstance(idle_ms, int) or isinstance(idle_ms, bool):
            self.problem = f"GetIdletime answered {idle_ms!r}, not a number of milliseconds"
            self._failures.failed(self.problem)
            return PresenceSample(source=self.name)
        self.problem = None
        self._failures.recovered()
        return PresenceSample(source=self.name, idle_s=idle_ms / 1000.0)

    def close(self) -> None:
        self._bus.close()
